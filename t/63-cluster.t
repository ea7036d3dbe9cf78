#!/usr/bin/perl
# Several nodes behind a gateway (issue 11, part 4): scripts/cluster.sh
# starts Redis, two mod_ecom nodes (EcomCache redis:) and a
# mod_proxy_balancer gateway with mod_proxy_hcheck on the extra ports
# HTTP_PORT+100 (gateway), +101 and +102 (nodes), +103 (Redis), against the
# suite's PostgreSQL, and the test checks, through the gateway and on the
# nodes directly:
#  1. no state in a node: a write on node 1 (product, cart line, login
#     token, logout) is seen at once on node 2, the cached product list
#     included; the cache is Redis (a page stored by node 2 is a hit on
#     node 1, the keys are in Redis);
#  2. the oversell race across both nodes: stock N, 2N checkouts at once,
#     half on each node: exactly N orders, stock 0;
#  3. node 1 killed with SIGKILL (parent and children) under a load through
#     the gateway: at most as many failures as requests in flight, the
#     balancer marks it down (hcheck), then node 1 started again serves
#     through the gateway again (its access log);
#  4. Redis killed: every answer 2xx, the cache counts misses and reports
#     Redis down; Redis back: hits again;
#  5. the background jobs ran once per period across the nodes (job_runs,
#     rec_refresh_runs), not once per node.
# A deployment test: skipped under the sanitizer pass.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use File::Temp ();
use Time::HiRes qw(sleep time);
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};
plan skip_all => 'a deployment test (processes, ports, SIGKILL): not run under the sanitizers'
    if $ENV{ECOM_SANITIZED};
plan skip_all => 'redis-server not installed (scripts/lib.sh ecom_deps installs it)'
    unless -x '/usr/bin/redis-server';
plan skip_all => 'needs root (httpd User www-data)' if $> != 0;

my $T0 = time;
my ($port) = $ENV{ECOM_URL} =~ /:(\d+)\z/ or die "ECOM_URL without a port\n";
my $BASE = $port + 100;
my $GW = "http://127.0.0.1:$BASE";
my @NODE = (undef, map { "http://127.0.0.1:" . ($BASE + $_) } 1, 2);   # $NODE[1], $NODE[2]
my $REDIS_PORT = $BASE + 3;
my $ROOT = ecom_root();
my $DIR = "$ROOT/build/test-cluster-$port";
my $PURGE = 2;      # EcomPurgeInterval of conf/httpd.conf.in
my $RECS = 3;       # EcomRecsRefreshInterval given to the nodes below
my $EDGES = 2;      # EcomSaleEdgeInterval given to the nodes (the suite's server: 30)
my %ENVC = (ECOM_CLUSTER_PORT => $BASE, ECOM_CLUSTER_DIR => $DIR,
            ECOM_CLUSTER_PG => 0, ECOM_CLUSTER_BUILD => 0,
            ECOM_CLUSTER_NODE_EXTRA => "EcomRecsRefreshInterval $RECS\nEcomSaleEdgeInterval $EDGES");

sub cluster {
    my (@args) = @_;
    local %ENV = (%ENV, %ENVC);
    my $out = `bash $ROOT/scripts/cluster.sh @args 2>&1`;
    return ($? == 0, $out);
}

my $started_by = $$;
END {
    if (defined $started_by && $$ == $started_by) {   # undef: skipped before
        my $rc = $?;
        cluster('stop');
        $? = $rc;
    }
}

my ($ok, $out) = cluster('start');
ok $ok, 'scripts/cluster.sh start: Redis, two nodes and the gateway' or do {
    diag $out;
    done_testing;
    exit;
};
like $out, qr{^\Qhttp://127.0.0.1:$BASE/\E$}m, 'it prints the gateway URL';
my $t_up = time;

sub pid_of {
    my ($file) = @_;
    open my $fh, '<', $file or return undef;
    my $p = <$fh>;
    return defined $p && $p =~ /^(\d+)/ ? $1 : undef;
}
my @node_pid = (undef, pid_of("$DIR/node1/httpd.pid"), pid_of("$DIR/node2/httpd.pid"));
my %node_pids = map { $_ => 1 } grep { defined } @node_pid;   # every node parent there was
sub get { api(GET => $_[0], base => $_[1] // die "get $_[0]: no base\n") }
sub cache_state { $_[0]{headers}{'ecom-cache'} // 'none' }

# ---- 1. no state in the node -------------------------------------------
my $staff = staff_token(base => $NODE[1]);
my $word = join '', map { ('a' .. 'z')[rand 26] } 1 .. 12;
my $p = create_product(_base => $NODE[1], name => "Cluster probe $word", price => 1234, stock => 50);
my $r = get("/products/$p->{id}/", $NODE[2]);
is $r->{status}, 200, 'a product created on node 1 is there on node 2 at once';
my $list = "/products/?q=$word&limit=5";
$r = get($list, $NODE[2]);
is $r->{status}, 200, 'node 2 lists it';
is scalar @{ $r->{json}{items} // [] }, 1, 'one product matches';
is cache_state(get($list, $NODE[2])), 'hit', 'node 2 serves the list again from its cache';
is cache_state(get($list, $NODE[1])), 'hit', 'node 1 serves the page node 2 cached: the cache is shared';
my $keys = `redis-cli -p $REDIS_PORT --scan --pattern 'mod_ecom:*' 2>&1`;
cmp_ok scalar(grep { length } split /\n/, $keys), '>=', 2, 'the pages and generations are keys in Redis';

$r = api(PATCH => "/products/$p->{id}/", base => $NODE[1], token => $staff,
         body => { name => "Cluster renamed $word", price => 1500 });
is $r->{status}, 200, 'staff renames and reprices it on node 1';
$r = get($list, $NODE[2]);
is cache_state($r), 'miss', 'node 2 no longer serves the cached page';
is $r->{json}{items}[0]{name}, "Cluster renamed $word", 'node 2 lists the new name at once';
is get("/products/$p->{id}/", $NODE[2])->{json}{price}, 1500, 'node 2 shows the new price at once';

my $u = register_user();
my $tok = login($u->{email}, $u->{password}, base => $NODE[1]);
is get('/auth/me/', $NODE[2])->{status}, 401, 'node 2 wants a token';
is api(GET => '/auth/me/', base => $NODE[2], token => $tok)->{status}, 200,
   'a token issued by node 1 works on node 2';
$r = api(POST => '/cart/', base => $NODE[1], token => $tok, body => { product_id => $p->{id}, quantity => 2 });
is $r->{status}, 201, 'cart add on node 1';
$r = api(GET => '/cart/', base => $NODE[2], token => $tok);
is_deeply [ map { "$_->{product_id}x$_->{quantity}" } @{ $r->{json}{items} // [] } ], [ "$p->{id}x2" ],
   'node 2 shows the cart line at once';
is api(POST => '/auth/logout/', base => $NODE[2], token => $tok)->{status}, 204, 'logout on node 2';
is api(GET => '/cart/', base => $NODE[1], token => $tok)->{status}, 401,
   'node 1 refuses the revoked token at once';

# ---- 2. the oversell race across both nodes ---------------------------------
my $N = 6;
my $race = create_product(_base => $NODE[1], name => "Cluster race $word", price => 700, stock => $N);
my @users = map { register_user() } 1 .. 2 * $N;
for my $i (0 .. $#users) {
    $r = api(POST => '/cart/', base => $NODE[1 + $i % 2], token => $users[$i]{token},
             body => { product_id => $race->{id}, quantity => 1 });
    die "race cart $i: $r->{status} $r->{content}\n" unless $r->{status} == 201;
}
my @co = parallel(2 * $N, 1, sub {
    my ($i) = @_;
    my $x = api(POST => '/orders/', base => $NODE[1 + $i % 2], token => $users[$i]{token});
    return { status => $x->{status} };
});
my %by;
$by{ $_->{status} // 'error' }++ for @co;
is $by{201} // 0, $N, "exactly $N of the " . 2 * $N . ' checkouts on two nodes succeed';
is $by{409} // 0, $N, 'the others are 409 out of stock';
is psql_value("SELECT stock FROM products WHERE id = $race->{id}"), 0, 'stock 0, never negative';
is psql_value("SELECT coalesce(sum(quantity), 0) FROM order_lines WHERE product_id = $race->{id}"), $N,
   "$N units ordered in all";
# part 5 reads the jobs' runs while both nodes were up: at least 10 s of
# them, five purge periods and three refresh periods
sleep $t_up + 10 - time if time < $t_up + 10;
my $t_both = time;

# ---- 3. a node killed under load ----------------------------------------
# $C clients loop on the product detail through the gateway, each writing
# one status and the time it came per line; node 1 is SIGKILLed in the
# middle. What may fail is what met node 1 dying: each client's request in
# flight, and each client's next one if the gateway sent it over a pooled
# connection to node 1 before it marked the node down; nothing after that.
my $C = 6;
my $tmp = File::Temp::tempdir(CLEANUP => 1);
sub load {
    my ($secs, $tag) = @_;
    my @pids;
    for my $i (1 .. $C) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open my $fh, '>', "$tmp/$tag-$i" or POSIX::_exit(1);
            my $end = time + $secs;
            while (time < $end) {
                my $x = api(GET => "/products/$p->{id}/?load=$tag", base => $GW, timeout => 10);
                printf $fh "%s %.3f\n", $x->{status}, time;
            }
            close $fh;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    return @pids;
}
sub statuses {
    my ($tag) = @_;
    my (%s, @failed_at);
    for my $i (1 .. $C) {
        open my $fh, '<', "$tmp/$tag-$i" or next;
        while (<$fh>) {
            my ($status, $at) = split ' ';
            $s{$status}++;
            push @failed_at, $at if $status ne '200';
        }
    }
    return (\%s, \@failed_at);
}
sub node1_in_balancer {
    my $bm = get("/balancer-manager", $GW);
    (my $text = $bm->{content}) =~ s/<[^>]*>/ /g;
    return $text =~ /\bnode1\b\s+[\d.]+\s+\d*\s*(Init(?: [A-Z][A-Za-z]+)+)/ ? $1 : '?';
}
my @pids = load(6, 'kill');
sleep 2;
my @victims = ($node_pid[1], grep { /^\d+$/ } split ' ', `ps -o pid= --ppid $node_pid[1]`);
is kill('KILL', @victims), scalar @victims, 'node 1 (parent and ' . (@victims - 1) . ' children) SIGKILLed under load';
my $t_kill = time;
my $down = '';
while (time < $t_kill + 3) {
    $down = node1_in_balancer();
    last if $down =~ /\b(?:Err|HcFl)\b/;
    sleep 0.2;
}
like $down, qr/\b(?:Err|HcFl)\b/, "the gateway marks node 1 down within 3 s ($down)";
waitpid $_, 0 for @pids;
my ($s, $failed_at) = statuses('kill');
my $total = 0;
$total += $_ for values %$s;
my $failed = $total - ($s->{200} // 0);
cmp_ok $total, '>', 20, "the load ran ($total requests)";
cmp_ok $failed, '<=', 2 * $C, "at most " . 2 * $C . " requests (each client's in flight and next) failed: $failed";
my $last_failure = @$failed_at ? (sort { $b <=> $a } @$failed_at)[0] - $t_kill : 0;
cmp_ok $last_failure, '<', 3, sprintf('... all of them within 3 s of the kill (the last after %.1f s)', $last_failure);
diag "through the gateway while node 1 died: " . join ', ', map { "$_: $s->{$_}" } sort keys %$s;

($ok, $out) = cluster('node-start', 1);
ok $ok, 'node 1 starts again' or diag $out;
$node_pid[1] = pid_of("$DIR/node1/httpd.pid");
$node_pids{ $node_pid[1] } = 1 if defined $node_pid[1];
my $mark = 'back' . int rand 1e9;
my ($seen, $t_back) = (0, time);
while (!$seen && time < $t_back + 10) {
    get("/products/$p->{id}/?mark=$mark", $GW) for 1 .. 4;
    $seen = (`grep -c 'mark=$mark' $DIR/node1/access.log 2>/dev/null` // '') =~ /^\s*[1-9]/;
    sleep 0.3 unless $seen;
}
ok $seen, sprintf 'the gateway routes to node 1 again (%.1f s after its start)', time - $t_back;
is node1_in_balancer(), 'Init Ok', 'the balancer shows node 1 Ok';

# ---- 4. Redis killed ------------------------------------------------------
# the counters of both nodes (mod_status ?auto, mod_ecom's section)
sub counter {
    my ($name) = @_;
    my $sum = 0;
    for my $n (1, 2) {
        my $st = server_status(base => $NODE[$n]) // return undef;
        $sum += $st->{"EcomCacheStatus/$name"} // return undef;
    }
    return $sum;
}
my ($redis_pid) = `redis-cli -p $REDIS_PORT info server 2>/dev/null` =~ /^process_id:(\d+)/m;
ok $redis_pid && kill('KILL', $redis_pid), 'Redis SIGKILLed';
sleep 0.3;
my ($miss0, $err0) = (counter('EcomCacheMisses'), counter('EcomCacheErrors'));
ok defined $miss0 && defined $err0, 'both nodes report their cache counters (misses, errors)';
my %codes;
my @caches;
for my $i (1 .. 10) {
    for my $path ($list, "/products/$p->{id}/", '/categories/', '/products/?limit=3', $list) {
        my $x = get($path, $GW);
        $codes{ $x->{status} }++;
        push @caches, cache_state($x) if $path eq $list;
    }
}
my $u2 = register_user();
my $x = api(POST => '/cart/', base => $GW, token => $u2->{token}, body => { product_id => $p->{id}, quantity => 1 });
$codes{ $x->{status} }++;
is_deeply [ grep { !/^2/ } keys %codes ], [], 'without Redis every answer through the gateway is 2xx: '
    . join ', ', map { "$_: $codes{$_}" } sort keys %codes;
is scalar(grep { $_ eq 'hit' } @caches), 0, 'no cache hits while Redis is down (' . scalar(@caches) . ' list requests)';
cmp_ok counter('EcomCacheMisses') // 0, '>=', ($miss0 // 0) + 20, 'the nodes count them as misses';
cmp_ok counter('EcomCacheErrors') // 0, '>', $err0 // 0, 'and report the errors of the cache provider';

($ok, $out) = cluster('redis-start');
ok $ok, 'Redis starts again' or diag $out;
my ($hit, $t_redis) = (0, time);
while (!$hit && time < $t_redis + 20) {
    get($list, $NODE[1]);
    $hit = cache_state(get($list, $NODE[1])) eq 'hit';
    sleep 0.5 unless $hit;
}
ok $hit, sprintf 'caching resumes once Redis is back (%.1f s)', time - $t_redis;

# ---- 5. background jobs once across the cluster ---------------------------
# While both nodes ran (from $t_up to $t_both), each one's watchdog asked
# for the purge every $PURGE s and the recommendations refresh every $RECS
# s: once per period between them (and the suite's own server) means runs
# at least 9/10 of the interval apart.
my $from = POSIX::strftime('%Y-%m-%dT%H:%M:%S', gmtime($t_up + 1)) . 'Z';
my $to = POSIX::strftime('%Y-%m-%dT%H:%M:%S', gmtime($t_both)) . 'Z';
my $window = $t_both - $t_up - 1;
my @runs = split /\n/, psql_value(
    "SELECT extract(epoch FROM started_at) || '|' || run_by FROM job_runs
      WHERE job = 'purge' AND started_at BETWEEN '$from' AND '$to' ORDER BY started_at");
my @gaps = map { (split /\|/, $runs[$_])[0] - (split /\|/, $runs[$_ - 1])[0] } 1 .. $#runs;
my $nodes_re = join '|', sort keys %node_pids;
cmp_ok scalar @runs, '>=', 2, sprintf 'the purge ran %d times in %.0f s', scalar @runs, $window;
cmp_ok scalar @runs, '<=', int($window / (0.9 * $PURGE)) + 1,
    "at most once per $PURGE s period, not once per node";
cmp_ok((sort { $a <=> $b } @gaps)[0] // 99, '>=', 0.9 * $PURGE - 0.05, 'no two purge runs in the same period');
my %who;
$who{ (split /\|/)[1] }++ for @runs;
diag 'purge runs by: ' . join ', ', map { "$_ ($who{$_})" } sort keys %who;
# The nodes count the same turns (ecom_job_runs_total): each sale-edges
# period a node claimed is a job_runs row with its parent's pid and a turn
# counted ok (or failed); the purge periods the suite's server had (it
# asks in the same 2 s rhythm and wins them, as the runs above show) are
# counted skipped. Node 1's counters started again with it (section 3): its
# rows are those of its new pid.
SKIP: {
    my $jobs = sub {
        my %v;
        for my $n (1, 2) {
            my $r = api(GET => '/metrics', base => $NODE[$n]);
            return undef unless $r->{status} == 200;
            for (split /\n/, $r->{content}) {
                $v{$n}{$1}{$2} = $3 if /^ecom_job_runs_total\{job="(\w+)",outcome="(\w+)"\} (\d+)$/;
            }
        }
        return \%v;
    };
    my $before = $jobs->();
    skip 'the nodes serve no /metrics', 4 unless $before && defined $node_pid[1] && defined $node_pid[2];
    my $rows = psql_value("SELECT count(*) FROM job_runs WHERE job = 'sale edges'
                             AND (run_by LIKE '% httpd $node_pid[1]' OR run_by LIKE '% httpd $node_pid[2]')");
    my $after = $jobs->();
    my $sum = sub { my ($v, $job, @out) = @_; my $t = 0; for my $n (1, 2) { $t += $v->{$n}{$job}{$_} // 0 for @out } $t };
    cmp_ok $rows, '>', 0, "the nodes' sale-edge runs in job_runs: $rows";
    cmp_ok $sum->($before, 'sale_edges', 'ok'), '<=', $rows, 'each counted ok by its node...';
    cmp_ok $rows, '<=', $sum->($after, 'sale_edges', 'ok', 'failed'), '... and no run left uncounted';
    cmp_ok $sum->($after, 'purge', 'skipped'), '>', 0,
        'the purge periods another process had are counted skipped (' . $sum->($after, 'purge', 'skipped') . ')';
}
# the sale edges every $EDGES s: only the two nodes ask that often (the
# suite's server claims its 30 s period, never free here)
my @edges = split /\n/, psql_value(
    "SELECT extract(epoch FROM started_at) || '|' || run_by FROM job_runs
      WHERE job = 'sale edges' AND started_at BETWEEN '$from' AND '$to' ORDER BY started_at");
my @egaps = map { (split /\|/, $edges[$_])[0] - (split /\|/, $edges[$_ - 1])[0] } 1 .. $#edges;
my %ewho;
$ewho{ (split /\|/)[1] }++ for @edges;
cmp_ok scalar @edges, '>=', 3, sprintf 'the sale edges ran %d times in %.0f s', scalar @edges, $window;
cmp_ok scalar @edges, '<=', int($window / (0.9 * $EDGES)) + 1, "at most once per $EDGES s period between the two nodes";
cmp_ok((sort { $a <=> $b } @egaps)[0] // 99, '>=', 0.9 * $EDGES - 0.05, 'no two sale-edge runs in the same period');
is_deeply [ grep { !/ httpd (?:$nodes_re)\z/ } keys %ewho ], [], 'run by the nodes (' . join(', ', map { "$_: $ewho{$_}" } sort keys %ewho) . ')';
my @recs = split /\n/, psql_value(
    "SELECT extract(epoch FROM started_at) || '|' || extract(epoch FROM finished_at) FROM rec_refresh_runs
      WHERE trigger = 'watchdog' AND started_at BETWEEN '$from' AND '$to' ORDER BY started_at");
cmp_ok scalar @recs, '<=', int($window / (0.9 * $RECS)) + 1,
    sprintf 'the recommendations refresh ran %d times in %.0f s: once per %d s period', scalar @recs, $window, $RECS;
cmp_ok scalar @recs, '>=', 1, 'the nodes did refresh (only they refresh that often)';
my @rgaps = map { (split /\|/, $recs[$_])[0] - (split /\|/, $recs[$_ - 1])[1] } 1 .. $#recs;
cmp_ok((sort { $a <=> $b } @rgaps)[0] // 99, '>=', 0.9 * $RECS - 0.05, 'no two refreshes in the same period');

diag sprintf 't/63-cluster.t took %.1f s', time - $T0;
done_testing;
