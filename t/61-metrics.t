#!/usr/bin/perl
# Prometheus metrics (issue 11, part 2): SetHandler ecom-metrics at /metrics
# (Require ip 127.0.0.1; /metrics-denied has Require all denied). Scrape,
# send requests from several processes at once (several httpd children
# serve them: told apart by the per-child part of their Ecom-Request-Id),
# scrape again: each route/method/status series grew by exactly what was
# sent, the latency histogram's buckets are cumulative and its _count is
# the requests counted, and checkout, payments and refunds are counted
# once each. promtool (Debian's prometheus package) accepts the output.
# mod_status's ?auto shows the module's section.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use EcomTest;
use EcomLife;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};
my $t0 = time;

# name{labels} => value, and the HELP/TYPE of each family
sub scrape {
    my ($base) = @_;
    my $r = api(GET => '/metrics', base => $base);
    die "scrape: $r->{status} $r->{content}\n" unless $r->{status} == 200;
    my (%v, %type);
    for (split /\n/, $r->{content}) {
        if (/^# TYPE (\S+) (\S+)$/) { $type{$1} = $2; next }
        next if /^#/;
        /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/ or die "bad line: $_\n";
        $v{$1} = $2;
    }
    return { v => \%v, type => \%type, res => $r };
}
sub val { my ($s, $k) = @_; $s->{v}{$k} // 0 }
sub req_key { my ($route, $method, $status) = @_;
              qq(ecom_http_requests_total{route="$route",method="$method",status="$status"}) }
sub delta { my ($a, $b, $k) = @_; val($b, $k) - val($a, $k) }

# --- what is needed before the first scrape ----------------------------------------
my ($staff) = staff_token();
my $buyer = register_user();
my $product = create_product(price => 700, stock => 50);
my $pid = $product->{id};

my $s1 = scrape();
my $res = $s1->{res};
is content_type($res), 'text/plain; version=0.0.4; charset=utf-8',
    'text exposition format 0.0.4';
like $res->{headers}{'ecom-request-id'} // '', qr/\A[A-Za-z0-9\@_-]{20,}\z/,
    'the scrape has an Ecom-Request-Id too';
is $s1->{type}{ecom_http_requests_total}, 'counter', 'requests: TYPE counter';
is $s1->{type}{ecom_http_request_duration_seconds}, 'histogram', 'latency: TYPE histogram';
is $s1->{type}{ecom_argon2_in_flight}, 'gauge', 'argon2 in flight: TYPE gauge';
for my $f (qw(ecom_db_errors_total ecom_db_acquire_failures_total ecom_db_pool_wait_seconds
              ecom_cache_hits_total ecom_cache_misses_total ecom_orders_created_total
              ecom_payments_total ecom_refunds_total ecom_build_info ecom_rate_limited_total
              ecom_login_locked_total)) {
    ok exists $s1->{type}{$f}, "family $f is exposed";
}
my ($version) = $res->{content} =~ /^ecom_build_info\{version="([^"]+)"\} 1$/m;
is $version, api(GET => '/openapi.json')->{json}{info}{version},
    'build info: the version of the OpenAPI document (ECOM_VERSION in ecom_metrics.c)';
is val($s1, 'ecom_argon2_in_flight'), 0, 'no password hashing running at rest';

# --- N requests from several processes ------------------------------------------------
my ($P, $OK, $MISS, $OTHER, $BAD, $LIST) = (8, 6, 3, 3, 2, 2);
my @runs = parallel($P, 1, sub {
    my (%seen, @ids);
    my $want = sub { my ($r, $st) = @_; $seen{"$r->{status}"}++;
                     push @ids, $r->{headers}{'ecom-request-id'} // '' };
    $want->(api(GET => "/products/$pid/"), 200) for 1 .. $OK;
    $want->(api(GET => '/products/999999999/'), 404) for 1 .. $MISS;
    $want->(api(GET => '/no-such-thing/here/'), 404) for 1 .. $OTHER;
    $want->(api(POST => '/cart/', token => $buyer->{token},
                body => { product_id => $pid, quantity => 0 }), 422) for 1 .. $BAD;
    $want->(api(GET => "/products/?limit=2&q=metrics$_"), 200) for 1 .. $LIST;
    return { seen => \%seen, ids => \@ids };
});
my (%status, %children, %ids);
for my $run (@runs) {
    $status{$_} += $run->{seen}{$_} for keys %{ $run->{seen} || {} };
    for my $id (@{ $run->{ids} || [] }) {
        $ids{$id}++;
        # mod_unique_id: a 32-bit time stamp, then bytes random per child
        $children{substr $id, 6, 12}++ if length $id >= 20;
    }
}
is_deeply \%status, { 200 => $P * ($OK + $LIST), 404 => $P * ($MISS + $OTHER), 422 => $P * $BAD },
    'the clients got what they asked for';
is scalar(keys %ids), $P * ($OK + $MISS + $OTHER + $BAD + $LIST), 'every answer has its own request id';
cmp_ok scalar(keys %children), '>=', 2, 'several httpd children served them ('
    . scalar(keys %children) . ')';

my $s2 = scrape();
is delta($s1, $s2, req_key('/products/{id}/', 'GET', 200)), $P * $OK,
    "GET /products/{id}/ 200 grew by exactly @{[ $P * $OK ]}";
is delta($s1, $s2, req_key('/products/{id}/', 'GET', 404)), $P * $MISS,
    "GET /products/{id}/ 404 grew by exactly @{[ $P * $MISS ]}";
is delta($s1, $s2, req_key('other', 'GET', 404)), $P * $OTHER,
    "unknown paths counted as route other: exactly @{[ $P * $OTHER ]}";
is delta($s1, $s2, req_key('/cart/', 'POST', 422)), $P * $BAD,
    "POST /cart/ 422 grew by exactly @{[ $P * $BAD ]}";
is delta($s1, $s2, req_key('ecom-metrics', 'GET', 200)), 1,
    'the first scrape itself counted once, under its handler name';
ok !grep({ /no-such-thing/ } keys %{ $s2->{v} }), 'no raw URL in any label';
is delta($s1, $s2, req_key('/products/', 'GET', 200)), $P * $LIST, 'GET /products/ 200 counted';
is delta($s1, $s2, 'ecom_cache_hits_total') + delta($s1, $s2, 'ecom_cache_misses_total'), $P * $LIST,
    'each list request looked the cache up once (hits + misses, from the cache\'s own counters)';

# the histogram of GET /products/{id}/
my $h = 'ecom_http_request_duration_seconds';
my $lab = 'route="/products/{id}/",method="GET"';
my @le = map { /^\Q${h}_bucket{$lab,le="\E([^"]+)"\}$/ ? $1 : () } keys %{ $s2->{v} };
@le = sort { ($a eq '+Inf') <=> ($b eq '+Inf') || $a <=> $b } @le;
cmp_ok scalar(@le), '>=', 10, 'buckets from 1 ms to 10 s and +Inf';
is $le[0], '0.001000', 'first bucket 1 ms';
is $le[-2], '10.000000', 'last finite bucket 10 s';
my @cum = map { val($s2, "${h}_bucket{$lab,le=\"$_\"}") } @le;
ok !grep({ $cum[$_] < $cum[$_ - 1] } 1 .. $#cum), 'buckets are cumulative (never decrease)';
is $cum[-1], val($s2, "${h}_count{$lab}"), '+Inf bucket equals _count';
is delta($s1, $s2, "${h}_count{$lab}"), $P * ($OK + $MISS),
    '_count grew by the requests of the route (200 and 404)';
# (every status since the server started: the suite before this file also
# got 304s, 400s... from this route)
my $all = 0;
for my $k (keys %{ $s2->{v} }) {
    $all += $s2->{v}{$k} if $k =~ /^ecom_http_requests_total\{route="\/products\/\{id\}\/",method="GET",status="[^"]+"\}$/;
}
is val($s2, "${h}_count{$lab}"), $all, '_count equals the route\'s requests counted, all statuses';
cmp_ok delta($s1, $s2, "${h}_sum{$lab}"), '>', 0, '_sum grew';
cmp_ok delta($s1, $s2, 'ecom_db_pool_wait_seconds_count'), '>', 0,
    'connections taken from the pool were timed';
is val($s2, 'ecom_db_pool_wait_seconds_count'),
    val($s2, 'ecom_db_pool_wait_seconds_bucket{le="+Inf"}'), 'pool wait: _count is the +Inf bucket';

# --- orders, payments, refunds ------------------------------------------------------------
my ($o1) = place_order($buyer, price => 900, stock => 20, quantity => 1);
my ($o2) = place_order($buyer, price => 900, stock => 20, quantity => 1);
pay_ok($buyer, $o1->{id});
my $r = api(POST => "/orders/$o2->{id}/payments/", token => $buyer->{token},
            body => { token => 'tok_declined' });
is $r->{status}, 402, 'a declined payment';
$r = api(POST => "/orders/$o1->{id}/refunds/", token => $staff, body => { amount => 100 });
is $r->{status}, 201, 'a refund';
$r = api(POST => "/orders/$o1->{id}/refunds/", token => $staff, body => { amount => 10**9 });
is $r->{status}, 422, 'a refund above the payment is refused';
# a unique violation (another account's e-mail): a database error of kind conflict
my $other = register_user();
$r = api(PATCH => '/auth/me/', token => $buyer->{token},
         body => { email => $other->{email}, current_password => $EcomTest::PASSWORD });
is $r->{status}, 409, 'taking another account\'s e-mail: 409';
my $s3 = scrape();
is delta($s2, $s3, 'ecom_db_errors_total{kind="conflict"}'), 1,
    'counted once as a database error of kind conflict';
is delta($s2, $s3, 'ecom_db_errors_total{kind="internal"}'), 0, 'and nothing else failed';
# kept for whoever reads the run (build/test-run*/metrics.txt)
if (open my $dump, '>', "$ENV{ECOM_RUNDIR}/metrics.txt") { print $dump $s3->{res}{content}; close $dump }
is delta($s2, $s3, 'ecom_orders_created_total'), 2, 'two orders created';
is delta($s2, $s3, 'ecom_payments_total{status="succeeded"}'), 1, 'one payment succeeded';
is delta($s2, $s3, 'ecom_payments_total{status="failed"}'), 1, 'one payment declined';
is delta($s2, $s3, 'ecom_refunds_total'), 1, 'one refund (the refused one not counted)';
is delta($s2, $s3, req_key('/orders/', 'POST', 201)), 2, 'checkouts counted by route';

# --- the background jobs --------------------------------------------------------------------
# The test servers purge every 2 s (EcomPurgeInterval 2) and the second
# shop's payment timeout looks every 3 s, so both ran without error lately.
{
    # the payment timeout looks every 3 s only with the second shop's 6 s;
    # a server just started has its first turns within those 3 s
    my @jobs = ('purge', $ENV{ECOM_URL2} ? 'payment_timeout' : ());
    my ($j, $deadline) = (scrape(), time + 15);
    until (time > $deadline
           || !grep { !val($j, qq(ecom_job_runs_total{job="$_",outcome="ok"})) } @jobs) {
        sleep 0.5;
        $j = scrape();
    }
    my $now = time;
    is $j->{type}{ecom_job_runs_total}, 'counter', 'ecom_job_runs_total is a counter';
    is $j->{type}{ecom_job_last_success_time_seconds}, 'gauge', 'ecom_job_last_success_time_seconds a gauge';
    is scalar(grep { /^ecom_job_runs_total\{/ } keys %{ $j->{v} }), 18,
        'ecom_job_runs_total: six jobs, three outcomes each';
    for my $job (@jobs) {
        cmp_ok val($j, qq(ecom_job_runs_total{job="$job",outcome="ok"})), '>', 0, "$job: turns that ran";
        my $last = val($j, qq(ecom_job_last_success_time_seconds{job="$job"}));
        cmp_ok abs($now - $last), '<', 30, "$job: last ran without error a few seconds ago (" . int($now - $last) . ' s)';
    }
}
# A server whose database cannot be reached: every turn of its purge fails
# (no connection), is counted failed, and it never succeeds.
SKIP: {
    my $dead = free_port();     # nothing listens there
    my $h = spare_httpd(conf => <<"CONF");
DBDriver pgsql
DBDParams "host=127.0.0.1 port=$dead dbname=ecom user=ecom connect_timeout=1"
DBDMin 0
EcomPurgeInterval 1
<Location "/metrics">
    SetHandler ecom-metrics
    Require all granted
</Location>
CONF
    skip "cannot run a spare apache2: $h", 5 unless ref $h;
    ok $h->{started}, 'a server with an unreachable database starts'
        or diag(($h->{syntax} // '') . ($h->{start_output} // ''));
    skip 'it did not start', 4 unless $h->{started};
    my $base = "http://127.0.0.1:$h->{ports}[0]";
    my ($m, $deadline) = (undef, time + 20);
    while (time < $deadline) {
        $m = eval { scrape($base) };
        last if $m && val($m, 'ecom_job_runs_total{job="purge",outcome="failed"}') >= 2;
        sleep 0.3;
    }
    cmp_ok val($m, 'ecom_job_runs_total{job="purge",outcome="failed"}'), '>=', 2,
        'its purge turns are counted failed';
    is val($m, 'ecom_job_runs_total{job="purge",outcome="ok"}'), 0, 'none ok';
    is val($m, 'ecom_job_last_success_time_seconds{job="purge"}'), 0, 'and it never succeeded (0)';
    like slurp_file($h->{error_log}) // '', qr/ECOM2403: ecom_job_claim skipped: no database connection/,
        'the error log says why';
    $h->{stop}->();
}

# --- promtool ---------------------------------------------------------------------------------
SKIP: {
    my $promtool = `command -v promtool 2>/dev/null`;
    chomp $promtool;
    skip 'promtool not installed (Debian package prometheus, scripts/lib.sh ecom_deps)', 2
        unless $promtool;
    require File::Temp;
    my ($fh, $file) = File::Temp::tempfile(UNLINK => 1);
    print $fh $s3->{res}{content};
    close $fh;
    my $out = `$promtool check metrics < $file 2>&1`;
    is $?, 0, 'promtool check metrics exits 0' or diag $out;
    is $out, '', 'promtool has nothing to say' or diag $out;
}

# --- who may scrape, and how ----------------------------------------------------------------
is api(GET => '/metrics-denied')->{status}, 403, 'Require all denied: 403';
SKIP: {
    require HTTP::Tiny;
    my $far = HTTP::Tiny->new(keep_alive => 0, timeout => 10, local_address => '127.0.0.2')
        ->get("$ENV{ECOM_URL}/metrics");
    skip "cannot connect from 127.0.0.2: $far->{content}", 1 if $far->{status} == 599;
    is $far->{status}, 403, 'a client from 127.0.0.2 (Require ip 127.0.0.1): 403';
}
is_problem api(POST => '/metrics', body => {}), 405, 'method-not-allowed', 'POST: 405';
is api(HEAD => '/metrics')->{status}, 200, 'HEAD: 200';

# --- mod_status ---------------------------------------------------------------------------------
my $st = server_status();
ok $st && defined $st->{'EcomMetrics/EcomRequests'}, 'mod_status ?auto has an EcomMetrics section';
cmp_ok $st->{'EcomMetrics/EcomRequests4xx'} // 0, '>=', $P * ($MISS + $OTHER + $BAD),
    'with the 4xx counted';
is $st->{'EcomMetrics/EcomOrdersCreated'}, val($s3, 'ecom_orders_created_total'),
    'the same figures as the metrics';
{
    # the failed job turns, every job together (none here but after a fault)
    my $m = scrape();
    my $failed = 0;
    $failed += val($m, qq(ecom_job_runs_total{job="$_",outcome="failed"}))
        for qw(purge payment_timeout dynamic_pricing recs_refresh sale_edges search_stats);
    my $again = server_status();
    cmp_ok $again->{'EcomMetrics/EcomJobFailures'} // -1, '>=', $failed,
        "EcomJobFailures is the failed job turns ($failed at the scrape)...";
    cmp_ok $again->{'EcomMetrics/EcomJobFailures'} // -1, '<=', $failed + 5, '... give or take the turns since';
}
my $html = api(GET => '/server-status');
like $html->{content}, qr/mod_ecom requests/, 'and in the HTML report';

# --- a graceful restart keeps the counters -------------------------------------------------
SKIP: {
    my $pidfile = "$ENV{ECOM_RUNDIR}/httpd.pid";
    skip 'no httpd.pid', 4 unless -r $pidfile && $> == 0;
    my $before = scrape();
    open my $pf, '<', $pidfile or die;
    chomp(my $ppid = <$pf>);
    kill 'USR1', $ppid or skip "cannot signal $ppid", 4;   # apachectl -k graceful
    my ($after, $deadline) = (undef, time + 20);
    while (time < $deadline) {
        $after = eval { scrape() };
        last if $after && val($after, 'ecom_config_generation') > val($before, 'ecom_config_generation');
        sleep 0.2;
    }
    cmp_ok val($after, 'ecom_config_generation'), '>', val($before, 'ecom_config_generation'),
        'a new generation after the graceful restart';
    is val($after, 'ecom_metrics_start_time_seconds'), val($before, 'ecom_metrics_start_time_seconds'),
        'the counters did not start again';
    cmp_ok val($after, req_key('/products/{id}/', 'GET', 200)), '>=',
        val($before, req_key('/products/{id}/', 'GET', 200)), 'nor went back';
    is val($after, 'ecom_orders_created_total'), val($before, 'ecom_orders_created_total'),
        'orders still counted';
}

my $took = time - $t0;
diag sprintf 't/61-metrics.t took %.1f s', $took;
cmp_ok $took, '<=', 40, 'within its 40 s budget';
done_testing;
