#!/usr/bin/perl
# Payments when things break (issue 7, "Tests"):
#  - an httpd child SIGKILLed in the middle of a payment (it waits inside
#    its transaction behind an order row lock held from outside): the client
#    retries with the same Idempotency-Key until it gets a final answer;
#    exactly one payment for the key, the order paid once, no key stuck;
#  - PostgreSQL restarted during a stream of payments: every answer is 201,
#    402, 409, 422 or 503 with Retry-After, never a 500; afterwards every
#    order is paid at most once and its paid_amount matches its payments.
# Restarts the shared PostgreSQL (and waits until it is back).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep time);
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};
my $rundir = $ENV{ECOM_RUNDIR} or plan skip_all => 'ECOM_RUNDIR not set';
my $pgsh = ecom_root() . '/scripts/pg.sh';

# --- a child killed mid-payment: one payment per key, no key stuck -----------
for my $token (qw(tok_ok tok_declined)) {
    my $u = register_user();
    my $o = pending_order($u, price => 4321);
    my $key = "kill-$token-" . uniq();
    my $oid = $o->{id};
    # an outside session holds the order row, so the payment waits inside its
    # transaction (after its key was taken) until we kill its child
    my $killed = kill_mid_request(
        lock => "SELECT id FROM orders WHERE id = $oid FOR UPDATE",
        request => sub { api(POST => "/orders/$oid/payments/", token => $u->{token},
                             headers => { 'Idempotency-Key' => $key }, body => { token => $token }, timeout => 10) },
        while_waiting => sub {
            is psql_value("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                          . "WHERE NOT l.granted AND l.locktype IN ('transactionid', 'tuple')"), 1,
               "$token: the payment waits for the order row lock inside its transaction";
        });
    ok $killed >= 1, "$token: SIGKILLed $killed httpd children mid-payment";

    my ($r, $tries) = retry_until_final(sub {
        api(POST => "/orders/$oid/payments/", token => $u->{token}, headers => { 'Idempotency-Key' => $key },
            body => { token => $token }) });
    my $want = $token eq 'tok_ok' ? 201 : 402;
    is $r->{status}, $want, "$token: the retry with the same key gets $want ($tries tries), no key stuck in flight";
    is psql_value("SELECT count(*) FROM payments WHERE order_id = $oid"), 1, "$token: exactly one payment for the key";
    is psql_value("SELECT status || ':' || paid_amount FROM orders WHERE id = $oid"),
       $token eq 'tok_ok' ? 'paid:4321' : 'pending:0', "$token: the order " . ($token eq 'tok_ok' ? 'paid once' : 'still pending');
    my $again = api(POST => "/orders/$oid/payments/", token => $u->{token}, headers => { 'Idempotency-Key' => $key },
                    body => { token => $token });
    is $again->{status}, $want, "$token: the key now replays $want";
    is lc($again->{headers}{'idempotent-replayed'} // ''), 'true', "$token: ... marked replayed";
    is psql_value("SELECT count(*) FROM payments WHERE order_id = $oid"), 1, "$token: still one payment";
    is psql_value("SELECT count(*) FROM idempotency_keys WHERE user_id = $u->{id} AND status_code IS NULL"), 0,
       "$token: no unanswered key row is left behind";
}

# --- PostgreSQL restarted during a stream of payments --------------------------
SKIP: {
    skip "no $pgsh", 1 unless -f $pgsh;
    # 10 users with 3 pending orders each (the per-account cap of pending
    # orders stays respected)
    my @orders;
    for (1 .. 10) {
        my $u = register_user();
        push @orders, map { [ $u, pending_order($u, price => 100 + $_) ] } 1 .. 3;
    }
    # mostly declines, so orders stay payable while PostgreSQL restarts
    my @tokens = qw(tok_declined tok_declined tok_bogus tok_declined tok_ok tok_declined);
    my $t_end = time + 9;
    # 4 clients pay the orders over and over (each with a fresh key half of
    # the time) while PostgreSQL restarts under them
    my $restarter = fork // die "fork: $!";
    if (!$restarter) {
        sleep 0.8;
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        { exec 'bash', $pgsh, 'restart' }
        POSIX::_exit(127);
    }
    my @res = parallel(4, 0, sub {
        my ($c) = @_;
        my (%n, @bad);
        my $i = $c;
        while (time < $t_end) {
            my ($u, $o) = @{ $orders[$i++ % @orders] };
            my $tok = $tokens[($i + $c) % @tokens];
            my %h = $i % 2 ? ('Idempotency-Key' => "pgr-$c-$i-" . uniq()) : ();
            my $r = api(POST => "/orders/$o->{id}/payments/", token => $u->{token}, headers => \%h,
                        body => { token => $tok }, timeout => 15);
            $n{ $r->{status} }++;
            push @bad, "$r->{status} without Retry-After"
                if $r->{status} == 503 && ($r->{headers}{'retry-after'} // '') !~ /^\d+$/;
            push @bad, "$r->{status}: " . substr($r->{content}, 0, 200)
                unless $r->{status} =~ /\A(?:201|402|409|422|503)\z/;
            sleep 0.05;
        }
        return { n => \%n, bad => \@bad };
    });
    waitpid $restarter, 0;
    is $? >> 8, 0, 'pg.sh restart succeeded';
    my (%n, @bad);
    for my $r (@res) {
        if ($r->{error}) { push @bad, $r->{error}; next }
        $n{$_} += $r->{n}{$_} for keys %{ $r->{n} };
        push @bad, @{ $r->{bad} };
    }
    my $total = 0;
    $total += $_ for values %n;
    diag 'answers during the restart: ' . join ', ', map { "$_ x$n{$_}" } sort keys %n;
    ok $total >= 20, "a stream of $total payments ran";
    ok !@bad, 'only 201, 402, 409, 422, or 503 with Retry-After; never a 500' or diag join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)];
    ok $n{503}, 'some payments met the restart (503)' or diag 'the restart fell between requests';

    # back: every order can reach a final answer, and the books agree
    my $deadline = time + 30;
    my $healthy = 0;
    while (time < $deadline) { last if ($healthy = api(GET => '/health/')->{status} == 200); sleep 0.5 }
    ok $healthy, 'healthy again after the restart';
    # The second shop's pooled sessions (DBDMin: opened when the children
    # started) sat idle through the restart. Each must be found dead when a
    # request takes it (the server's goodbye and the EOF can take two reads)
    # and reconnected before anything is sent: no write may meet one.
    SKIP: {
        skip 'ECOM_URL2 not set (run through scripts/test.sh)', 1 unless $ENV{ECOM_URL2};
        my @st = map {
            api(POST => '/auth/register/', base => $ENV{ECOM_URL2},
                body => { email => 'after-restart-' . uniq() . '@example.com',
                          password => $EcomTest::PASSWORD })->{status}
        } 1 .. 24;
        is_deeply \@st, [ (201) x 24 ], 'after the restart, 24 registrations on the idle second shop: all 201, none met a dead session';
    }
    for my $x (@orders) {
        my ($u, $o) = @$x;
        for (1 .. 20) {
            my $r = api(POST => "/orders/$o->{id}/payments/", token => $u->{token}, body => { token => 'tok_ok' });
            last unless $r->{status} == 503;
            sleep 0.5;
        }
    }
    my $ids = join ',', map { $_->[1]{id} } @orders;
    is psql_value("SELECT count(*) FROM orders WHERE id IN ($ids) AND status = 'paid'"), scalar @orders,
       'every order ends paid';
    is psql_value("SELECT count(*) FROM orders o WHERE o.id IN ($ids) AND (o.paid_amount <> o.total OR "
                  . "(SELECT count(*) FROM payments p WHERE p.order_id = o.id AND p.status = 'succeeded') <> 1 OR "
                  . "(SELECT count(*) FROM order_events e WHERE e.order_id = o.id AND e.to_status = 'paid') <> 1)"), 0,
       'each paid exactly once: one succeeded payment, paid_amount = total, one move to paid';
    is psql_value("SELECT count(*) FROM payments WHERE order_id IN ($ids) AND status = 'processing'"), 0,
       'no payment left processing';
}

is api(GET => '/health/')->{status}, 200, 'server healthy afterwards';
done_testing;
