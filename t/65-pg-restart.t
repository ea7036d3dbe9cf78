#!/usr/bin/perl
# PostgreSQL restarted under a checkout load (issue 11, part 5): shoppers add
# to their carts, check out and pay while the suite's cluster is stopped
# (pg_ctl -m fast: every session is terminated, transactions in flight
# included) and started again a second later.
#
# Pass criteria:
#  - every answer is 201, 409, 422 or 503, never a 500, 502, a reset
#    connection or a hang (each request has 30 s);
#  - every 503 carries Retry-After and is application/problem+json;
#  - once PostgreSQL accepts connections again (scripts/pg.sh start has
#    returned), the service answers 2xx again within 5 s: the first
#    successful checkout comes within 5 s and every request started later
#    than that succeeds (no stale pooled connection answers 503 after);
#  - no order half-written: each order has lines and its subtotal is their
#    sum, each product's stock plus what its order lines took is its starting
#    stock, and there are at least as many orders as 201 answers to
#    POST /orders/ and no more than 201s plus 503s (a checkout whose COMMIT
#    went through just before its connection died is answered 503, and the
#    client finds its order in GET /orders/);
#  - six more restarts (plain pass only) cost each child less than 1.5 MB of
#    RSS (the statements prepared again after each restart used to stay in
#    the connection's pool: 2 to 3 MB after six).
# The load: 8 shoppers at a fixed 60 requests/s in all, a moderate rate on
# purpose: this test is about the answers during the outage, not capacity
# (t/64-restarts.t measures saturation), and it shares two cores.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use EcomTest;
use EcomLoad qw(load_start load_wait load_run load_kill summarize fmt_counts);

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};
my $pgsh = ecom_root() . '/scripts/pg.sh';
plan skip_all => "no $pgsh" unless -f $pgsh;
my $T0 = time;

my ($load, $stopped);
sub pg { my ($what) = @_; system('bash', $pgsh, $what) == 0 }
sub restart_pg { return unless $stopped; $stopped = 0; pg('start') or diag 'pg.sh start failed' }
END { my $rc = $?; load_kill($load); restart_pg(); $? = $rc }
$SIG{$_} = sub { exit 1 } for qw(INT TERM HUP);

my $STOCK = 100_000;
my @products = map { create_product(price => 300 + 7 * $_, stock => $STOCK)->{id} } 1 .. 5;
my $W = 8;
my @users = map { register_user() } 1 .. $W;
my $ids = join ',', @products;
my $uids = join ',', map { $_->{id} } @users;

my $log_from = error_log_size();
my $RUN = 12;
$load = load_start(url => $ENV{ECOM_URL}, tokens => [ map { $_->{token} } @users ],
                   products => \@products, mix => 'checkout', workers => $W,
                   rate => 60, duration => $RUN);
sleep 3;
my $t_down = time;
ok pg('stop'), 'pg.sh stop (fast shutdown) under the checkout load';
$stopped = 1;
sleep 1;
ok pg('start'), 'pg.sh start';
$stopped = 0;
my $t_back = time;
note sprintf 'PostgreSQL down for %.1f s', $t_back - $t_down;
my $rec = load_wait($load);
undef $load;
my $s = summarize($rec);
note sprintf '%d answers: %s', $s->{n}, fmt_counts($s->{by_status});

is fmt_counts($s->{errors}), '', 'no connection refused, reset, cut short or timed out';
my @bad = grep { $_->{status} !~ /^(?:201|409|422|503)$/ } @$rec;
is scalar @bad, 0, 'every answer is 201, 409, 422 or 503'
    or diag join "\n", map { sprintf '%+.2f s %s %s %s', $_->{t} - $t_down, $_->{op}, $_->{status}, $_->{err} } @bad[0 .. ($#bad < 9 ? $#bad : 9)];
my @u503 = grep { $_->{status} == 503 } @$rec;
cmp_ok scalar @u503, '>', 0, sprintf 'the outage was seen: %d answers were 503', scalar @u503;
is scalar(grep { !defined $_->{retry_after} || $_->{retry_after} !~ /^\d+$/ } @u503), 0, 'every 503 has Retry-After';
is scalar(grep { !$_->{problem} } @u503), 0, 'every 503 is application/problem+json';

my ($first_ok) = grep { $_->{t} >= $t_back && $_->{status} == 201 && $_->{op} eq 'order' } @$rec;
my $recovery = $first_ok ? $first_ok->{t} + $first_ok->{lat} - $t_back : undef;
ok defined $recovery && $recovery <= 5,
    sprintf 'a checkout succeeds within 5 s of PostgreSQL accepting connections again (%s s)',
        defined $recovery ? sprintf('%.2f', $recovery) : 'never';
my ($last_503) = reverse grep { $_->{status} == 503 } @$rec;
note sprintf 'last 503 started %.2f s after PostgreSQL was back', $last_503->{t} - $t_back if $last_503;
my @late = grep { $_->{t} > $t_back + 5 } @$rec;
cmp_ok scalar @late, '>', 20, 'the load went on after the recovery window';
is scalar(grep { $_->{status} !~ /^2/ } @late), 0, 'every request started more than 5 s after PostgreSQL was back succeeded'
    or diag join ' ', map { "$_->{op}:$_->{status}" } grep { $_->{status} !~ /^2/ } @late;
is api(GET => '/health/')->{status}, 200, 'GET /health/ is 200';
SKIP: {
    my $log = error_log_text($log_from);
    skip 'no error.log', 2 unless defined $log;
    my @err = $log =~ /^(.*\[ecom:(?:error|crit|alert|emerg)\].*)$/mg;
    is scalar @err, 0, 'the module logged no error (a 503 for a lost database is a warning)' or diag @err[0 .. 4];
    unlike $log, qr/exit signal|AddressSanitizer|runtime error/, 'no child crashed';
}

# --- nothing half-written ---------------------------------------------------
is psql_value("SELECT count(*) FROM orders o WHERE o.user_id IN ($uids)
                 AND NOT EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id)"), 0,
   'every order has its lines';
is psql_value("SELECT count(*) FROM orders o WHERE o.user_id IN ($uids)
                 AND o.subtotal <> (SELECT sum(line_total) FROM order_lines l WHERE l.order_id = o.id)"), 0,
   "every order's subtotal is the sum of its lines";
is psql_value("SELECT count(*) FROM products p WHERE p.id IN ($ids) AND p.stock +
                 (SELECT coalesce(sum(l.quantity), 0) FROM order_lines l JOIN orders o ON o.id = l.order_id
                   WHERE l.product_id = p.id AND o.status NOT IN ('cancelled', 'refunded')) <> $STOCK"), 0,
   'each product: stock + units in its order lines = starting stock';
my $orders = psql_value("SELECT count(*) FROM orders WHERE user_id IN ($uids)");
my $ok201 = grep { $_->{op} eq 'order' && $_->{status} == 201 } @$rec;
my $o503 = grep { $_->{op} eq 'order' && $_->{status} == 503 } @$rec;
cmp_ok $orders, '>=', $ok201, "at least as many orders ($orders) as 201 answers to checkouts ($ok201)";
cmp_ok $orders, '<=', $ok201 + $o503, "no more orders than 201s plus 503s ($ok201 + $o503)";
is psql_value("SELECT count(*) FROM orders o WHERE o.user_id IN ($uids) AND o.status = 'paid'
                 AND NOT EXISTS (SELECT 1 FROM payments y WHERE y.order_id = o.id AND y.status = 'succeeded')"), 0,
   'every paid order has its succeeded payment';

# --- a PostgreSQL restart costs a child no memory ------------------------------
# Each restart makes every pooled connection prepare its statements again
# (ECOM0107); they used to be made in the connection's own pool, which lives
# as long as the child: 330 to 500 kB more per child per restart (2 to 3 MB after
# six). Now each generation goes in a subpool freed by the next.
SKIP: {
    skip 'RSS under AddressSanitizer grows by its quarantine', 1 if $ENV{ECOM_SANITIZED};
    my $pidfile = defined $ENV{ECOM_RUNDIR} ? "$ENV{ECOM_RUNDIR}/httpd.pid" : undef;
    skip 'no httpd.pid', 1 unless $pidfile && open my $fh, '<', $pidfile;
    chomp(my $ppid = <$fh> // '');
    my @kids = grep { /^\d+$/ } split ' ', `ps -o pid= --ppid $ppid`;
    my $rss = sub {
        my @r;
        for my $k (@kids) {
            open my $st, '<', "/proc/$k/status" or next;
            # the private memory (a leak's), not the shared files and cache
            while (<$st>) { if (/^RssAnon:\s+(\d+)/) { push @r, $1; last } }
        }
        return @r;
    };
    # every connection of every child used: 8 readers as fast as answers come
    my $use = sub { load_run(url => $ENV{ECOM_URL}, tokens => [ $users[0]{token} ],
                             products => \@products, mix => 'browse', workers => 8,
                             rate => 0, duration => 1.5) };
    my $restart = sub { $stopped = 1; pg('restart') or diag 'pg.sh restart failed'; $stopped = 0; $use->() };
    # the first reprepare cannot free what mod_dbd prepared when it opened
    # the connection, and the next few still grow the heap (malloc's arenas
    # and free lists settling: 70 to 300 kB each, then 20 to 50 kB): measure
    # from the fourth. A leak of the generation's statements grows by 330 to
    # 500 kB every time (2 to 3 MB over six).
    $use->();
    $restart->() for 1 .. 3;
    my @before = $rss->();
    $restart->() for 1 .. 6;
    my @after = $rss->();
    my @growth = map { $after[$_] - $before[$_] } 0 .. ($#before < $#after ? $#before : $#after);
    my $median = (sort { $a <=> $b } @growth)[ int(@growth / 2) ];
    # measured (RssAnon, sixteen restarts in a row): 7.2 MB after the first,
    # 7.4 to 7.6 after the third, 7.6 to 7.7 after the ninth; 2,968 kB over
    # six without the fix (VmRSS)
    cmp_ok $median // 1e9, '<', 1536, "six more PostgreSQL restarts: child private RSS grew by less than 1.5 MB (median of children: "
        . ($median // 'none') . ' kB; ' . join(' ', map { "$before[$_]->$after[$_]" } 0 .. $#growth) . ')';
}

note sprintf 'took %.1f s', time - $T0;
done_testing;
