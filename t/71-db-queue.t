#!/usr/bin/perl
# The child's queue for database connections (EcomDBConcurrency,
# EcomDBQueueTimeout; ecom_db.c, README "Tuning"). Spare servers with one
# child of eight threads, ONE pooled connection (DBDMax 1) and one turn:
#  - a request that holds the turn (its cart add waits for the account's
#    advisory lock, held by an outside session) makes the next five wait;
#    they are served in the order they came (the order PostgreSQL handed
#    out their cart lines' ids), each 201;
#  - with EcomDBQueueTimeout 1 a request that waits longer gets 503
#    database-busy with Retry-After after about a second, logged ECOM0135,
#    and nothing of it is written; the holder still finishes with 201;
#  - no turn is lost on either path: afterwards sequential and concurrent
#    requests through the one turn are all answered;
#  - the directives are refused outside the main server and out of range.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep time);
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $pgport = $ENV{PGPORT} // 25433;
my $slow = $ENV{ECOM_SANITIZED} ? 2 : 1;    # the sanitizer build is slower

sub queue_server {
    my ($timeout) = @_;
    return spare_httpd(conf => <<"CONF");
ThreadsPerChild 8
MaxRequestWorkers 8
MaxSpareThreads 8
DBDriver pgsql
DBDParams "host=127.0.0.1 port=$pgport dbname=ecom user=ecom connect_timeout=2 options='-c statement_timeout=20000 -c lock_timeout=15000'"
DBDPersist On
DBDMin 0
DBDKeep 1
DBDMax 1
EcomDBConcurrency 1
EcomDBQueueTimeout $timeout
<Location "/">
    SetHandler ecom
</Location>
CONF
}

# Holds the account's advisory lock (class 7316002, sql/010: what a cart
# add takes first) from an outside session for $secs seconds.
sub hold_account_lock {
    my ($uid, $secs) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        { exec 'psql', '-XAtq', '-c', "SELECT pg_advisory_lock(7316002, $uid); SELECT pg_sleep($secs)" }
        POSIX::_exit(127);
    }
    my $t = time + 5;
    sleep 0.05 until time > $t
        || psql_value("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 7316002 AND objid = $uid AND granted") > 0;
    return $pid;
}

# Runs $code in a child; its answer (a status, and the seconds it took)
# comes back through a pipe as "status seconds".
sub bg_request {
    my ($code) = @_;
    pipe my $r, my $w or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $r;
        my $t0 = time;
        my $res = $code->();
        printf $w "%s %.3f %s\n", $res->{status}, time - $t0, $res->{headers}{'retry-after'} // '-';
        close $w;
        POSIX::_exit(0);
    }
    close $w;
    return { pid => $pid, fh => $r };
}

sub bg_result {
    my ($b) = @_;
    my $line = readline($b->{fh}) // '';
    waitpid $b->{pid}, 0;
    my ($status, $secs, $retry) = split ' ', $line;
    return { status => $status // 'none', secs => $secs // 0, retry_after => $retry // '-' };
}

sub cart_add {
    my ($base, $user, $pid) = @_;
    return api(POST => '/cart/', base => $base, token => $user->{token}, timeout => 30,
               body => { product_id => $pid, quantity => 1 });
}

# A new customer's cart add takes the server's one turn and holds it while
# it waits for the account's lock (held outside for 3 s); returns what
# ends it: its answer, once the lock is gone.
sub hold_the_turn {
    my ($base) = @_;
    my $holder = register_user();
    my $hp = create_product(price => 300, stock => 50);
    my $lock = hold_account_lock($holder->{id}, 3 * $slow);
    my $first = bg_request(sub { cart_add($base, $holder, $hp->{id}) });
    sleep 0.3 * $slow;     # the holder has the one turn, waiting for the lock
    return sub { my $r = bg_result($first); waitpid $lock, 0; return $r };
}

# --- first come, first served ---------------------------------------------
SKIP: {
    my $h = queue_server(20);
    skip "cannot run a spare apache2: $h", 6 unless ref $h;
    ok $h->{started}, 'a server with EcomDBConcurrency 1 and DBDMax 1 starts'
        or diag(($h->{syntax} // '') . ($h->{start_output} // ''));
    skip 'the spare apache2 did not start', 5 unless $h->{started};
    my $base = "http://127.0.0.1:$h->{ports}[0]";
    my $v = register_user();
    my @p = map { create_product(price => 100 + $_, stock => 50) } 1 .. 5;
    # warm the child (first connection, prepared statements) outside the test
    is api(GET => '/cart/', base => $base, token => $v->{token})->{status}, 200, 'the server answers';

    my $finish = hold_the_turn($base);
    my @queued;
    for my $p (@p) {
        push @queued, bg_request(sub { cart_add($base, $v, $p->{id}) });
        sleep 0.25 * $slow;   # each one is in the queue before the next comes
    }
    my $r0 = $finish->();
    my @r = map { bg_result($_) } @queued;
    is $r0->{status}, 201, 'the request holding the turn is served once the lock goes';
    is_deeply [ map { $_->{status} } @r ], [ (201) x 5 ], 'the five that waited for it: 201 each';
    my $order = psql_value("SELECT string_agg(product_id::text, ',' ORDER BY id) FROM cart_items WHERE user_id = $v->{id}");
    is $order, join(',', map { $_->{id} } @p),
        'they were served in the order they came (their lines were written in that order)';
    my @after = map { api(GET => '/cart/', base => $base, token => $v->{token})->{status} } 1 .. 5;
    my @many = parallel(8, 1, sub { api(GET => '/cart/', base => $base, token => $v->{token}, timeout => 20)->{status} });
    is_deeply [ @after, @many ], [ (200) x 13 ],
        'then five sequential and eight concurrent requests through the one turn: 200 each (no turn lost)';
    $h->{stop}->();
    my $log = slurp_file($h->{error_log}) // '';
    unlike $log, qr/ECOM0135|ECOM0114|exit signal|AH00052/, 'no queue timeout, no transaction handed back open, no crashed child';
}

# --- a bounded wait -----------------------------------------------------------
SKIP: {
    my $h = queue_server(1);
    skip "cannot run a spare apache2: $h", 7 unless ref $h;
    ok $h->{started}, 'a server with EcomDBQueueTimeout 1 starts'
        or diag(($h->{syntax} // '') . ($h->{start_output} // ''));
    skip 'the spare apache2 did not start', 6 unless $h->{started};
    my $base = "http://127.0.0.1:$h->{ports}[0]";
    my $v = register_user();
    my $p = create_product(price => 120, stock => 50);
    is api(GET => '/cart/', base => $base, token => $v->{token})->{status}, 200, 'the server answers';

    my $finish = hold_the_turn($base);
    my $t0 = time;
    my $res = cart_add($base, $v, $p->{id});
    my $took = time - $t0;
    is_problem $res, 503, 'database-busy', 'a request that waits longer than EcomDBQueueTimeout: 503 database-busy';
    ok defined $res->{headers}{'retry-after'}, 'with Retry-After';
    ok $took >= 0.9 && $took < 1 + 2 * $slow,
        "after about the timeout (1 s), not the holder's 3 s" or diag "took ${took}s";
    is $finish->()->{status}, 201, 'the holder still finishes: 201';
    my $written = psql_value("SELECT count(*) FROM cart_items WHERE user_id = $v->{id}");
    my @many = parallel(8, 1, sub { api(GET => '/cart/', base => $base, token => $v->{token}, timeout => 20)->{status} });
    is_deeply [ $written, @many ], [ 0, (200) x 8 ],
        'nothing of the refused add was written, and eight concurrent requests then get 200 (the timed-out waiter left the queue)';
    $h->{stop}->();
    my $log = slurp_file($h->{error_log}) // '';
    like $log, qr/ECOM0135: no turn for a database connection within 1 s/, 'the refusal is logged (ECOM0135)';
}

# --- where the directives may go --------------------------------------------
SKIP: {
    my $vh = spare_httpd(start => 0, conf => "<VirtualHost 127.0.0.1:\@PORT0\@>\nEcomDBConcurrency 2\n</VirtualHost>\n");
    skip "cannot run a spare apache2: $vh", 3 unless ref $vh;
    like $vh->{syntax}, qr/EcomDBConcurrency cannot occur within <VirtualHost> section/,
        'EcomDBConcurrency inside <VirtualHost> is refused (main server only)';
    my $neg = spare_httpd(start => 0, conf => "EcomDBConcurrency -1\n");
    like $neg->{syntax}, qr/EcomDBConcurrency must be an integer from 0 to 1024/, 'a negative EcomDBConcurrency is refused';
    my $zero = spare_httpd(start => 0, conf => "EcomDBQueueTimeout 0\n");
    like $zero->{syntax}, qr/EcomDBQueueTimeout must be an integer from 1 to 300/, 'EcomDBQueueTimeout 0 is refused';
}

done_testing;
