#!/usr/bin/perl
# Demand-based prices (issue 10, sql/024_dynamic_pricing.sql,
# mod_ecom/ecom_dynprice.c): staff bounds (price_floor, price_ceiling) and
# their validation; the pricing run (ecom_reprice) step by step against the
# documented rule: no sales push a price to its floor, fast sales to its
# ceiling, one step of at most 5 % per run, never outside the bounds; every
# change a price_history row (the run's and a staff PATCH's); the staff-only
# history endpoint; one run at a time (advisory lock, last-run check);
# scripts/ecom-admin reprice [--dry-run]; Off by default; and the job
# through a real mod_watchdog (a spare httpd with EcomDynamicPricing On and
# a 2-second interval) whose runs invalidate the cached catalog pages.
#
# The suite's own server runs without EcomDynamicPricing, so every run here
# but the spare's is called by the test itself, and the bounded products
# are this file's only.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use POSIX ();
use EcomTest;
use EcomAdmin;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my ($staff, $staff_id) = staff_token();
my $user = register_user();
my @fivexx;

sub call {
    my $r = api(@_);
    push @fivexx, "$_[0] $_[1]: $r->{status}" if $r->{status} >= 500;
    return $r;
}
sub product_body {
    my (%f) = @_;
    my $u = uniq();
    return { name => "Priced $u", sku => "dp-$u", price => 10000, stock => 100,
             description => 'dynamic pricing test', %f };
}
sub create { call(POST => '/products/', token => $staff, body => product_body(@_)) }
sub patch { my ($id, %b) = @_; call(PATCH => "/products/$id/", token => $staff, body => \%b) }
sub price_of { psql_value("SELECT price FROM products WHERE id = $_[0]") }
sub reprice {
    my ($min) = @_;
    my $row = psql_value("SELECT status || '|' || coalesce(run_id::text, '') || '|' || "
        . "considered || '|' || raised || '|' || lowered FROM ecom_reprice('admin', "
        . "interval '" . ($min // '0') . "')");
    my %r;
    @r{qw(status run_id considered raised lowered)} = split /\|/, $row, -1;
    return \%r;
}
# a paid (or other status) order of $qty units of product $pid, placed
# $age ago
sub sale {
    my ($pid, $qty, %o) = @_;
    my $status = $o{status} // 'paid';
    my $age = $o{age} // '1 hour';
    psql_do("WITH o AS (INSERT INTO orders (user_id, status, currency, subtotal, total, created_at) "
        . "VALUES ($user->{id}, '$status', 'EUR', 0, 0, now() - interval '$age') RETURNING id) "
        . "INSERT INTO order_lines (order_id, product_id, name, unit_price, quantity, line_total) "
        . "SELECT o.id, $pid, 'x', 0, $qty, 0 FROM o");
}
sub history { psql_value("SELECT count(*) FROM price_history WHERE product_id = $_[0]") }

# --- validation of the bounds (422 per field, never a 5xx) ------------------
{
    my $r = create(price_floor => 8000);
    is_problem($r, 422, undef, 'floor without ceiling');
    has_field_error($r, 'price_ceiling', 'floor without ceiling names price_ceiling');
    $r = create(price_ceiling => 12000);
    has_field_error($r, 'price_floor', 'ceiling without floor names price_floor');
    $r = create(price_floor => 10001, price_ceiling => 12000);
    is $r->{status}, 422, 'floor above the price: 422';
    has_field_error($r, 'price_floor', '... naming price_floor');
    $r = create(price_floor => 8000, price_ceiling => 9999);
    has_field_error($r, 'price_ceiling', 'ceiling below the price names price_ceiling');
    $r = create(price_floor => 12000, price_ceiling => 8000);
    has_field_error($r, 'price_floor', 'floor above ceiling names price_floor');
    for my $bad (-1, 'cheap', 1.5, JSON::PP::true, 10**13, [1]) {
        my $r2 = create(price_floor => $bad, price_ceiling => 12000);
        is $r2->{status}, 422, 'price_floor ' . json_encode([$bad]) . ': 422';
        has_field_error($r2, 'price_floor', '... naming price_floor');
    }
    $r = create(price_floor => undef, price_ceiling => 12000);
    has_field_error($r, 'price_floor', 'null floor with a ceiling: 422 on price_floor');
}

my $p = create(price_floor => 8000, price_ceiling => 12000);
is $p->{status}, 201, 'a product with bounds is created';
my $pid = $p->{json}{id};
is $p->{json}{price_floor}, 8000, 'staff see price_floor';
is $p->{json}{price_ceiling}, 12000, 'staff see price_ceiling';
{
    my $pub = call(GET => "/products/$pid/");
    is $pub->{status}, 200, 'the public detail';
    ok !exists $pub->{json}{price_floor} && !exists $pub->{json}{price_ceiling},
        'the public does not see the bounds';
    my $r = patch($pid, price => 12001);
    is $r->{status}, 422, 'PATCH price above the ceiling: 422';
    has_field_error($r, 'price', '... naming price');
    $r = patch($pid, price => 7999);
    has_field_error($r, 'price', 'PATCH price below the floor names price');
    $r = patch($pid, price_ceiling => 9000);
    has_field_error($r, 'price_ceiling', 'PATCH ceiling below the price names price_ceiling');
    $r = patch($pid, price_floor => undef);
    has_field_error($r, 'price_floor', 'PATCH clearing only the floor: 422 on price_floor');
    is price_of($pid), 10000, 'nothing changed by the refused PATCHes';
    is psql_value("SELECT price_floor || '-' || price_ceiling FROM products WHERE id = $pid"),
        '8000-12000', 'the bounds are unchanged';
    $r = patch($pid, price => 12500, price_ceiling => 13000);
    is $r->{status}, 200, 'PATCH price and ceiling together';
    is $r->{json}{price_ceiling}, 13000, '... the new ceiling';
    $r = patch($pid, price => 10000, price_ceiling => 12000);
    is $r->{status}, 200, '... and back';
    my $free = create();
    is $free->{status}, 201, 'a product without bounds';
    is $free->{json}{price_floor}, undef, '... price_floor null for staff';
    $r = patch($free->{json}{id}, price_floor => 100);
    has_field_error($r, 'price_ceiling', 'PATCH a floor alone onto an unbounded product: 422');
    $r = patch($free->{json}{id}, price_floor => undef, price_ceiling => undef);
    is $r->{status}, 200, 'PATCH both null on an unbounded product: 200';
    $r = patch($free->{json}{id}, price_floor => 900, price_ceiling => 1100);
    has_field_error($r, 'price_ceiling', 'PATCH bounds below the price: 422 on price_ceiling');
    $r = patch($free->{json}{id}, price_floor => 9000, price_ceiling => 11000);
    is $r->{status}, 200, 'PATCH bounds onto an unbounded product';
    is $r->{json}{price_floor}, 9000, '... price_floor set';
    $r = patch($free->{json}{id}, price_floor => undef, price_ceiling => undef);
    is $r->{status}, 200, 'PATCH both null clears the bounds';
    is $r->{json}{price_ceiling}, undef, '... price_ceiling null again';
}

# --- a staff price change is a history row ----------------------------------
{
    my $q = create(price_floor => 5000, price_ceiling => 20000, price => 15000);
    my $id = $q->{json}{id};
    is history($id), 0, 'a new product has no history';
    is patch($id, price => 14000)->{status}, 200, 'staff change the price';
    is patch($id, name => 'renamed')->{status}, 200, 'a PATCH without a price change';
    is psql_value("SELECT old_price || ',' || new_price || ',' || actor || ',' || actor_id || ',' || reason "
        . "|| ',' || (run_id IS NULL) FROM price_history WHERE product_id = $id ORDER BY id"),
        "15000,14000,staff,$staff_id,manual,true", 'one row: old, new, actor staff and its id, manual';
    psql_do("UPDATE products SET price = 14500 WHERE id = $id");
    is psql_value("SELECT actor || ',' || coalesce(actor_id::text, '-') FROM price_history "
        . "WHERE product_id = $id ORDER BY id DESC LIMIT 1"), 'database,-',
        'a change outside the API is recorded as actor database';

    # the endpoint: staff only, 404 for an unknown product, newest first
    my $r = call(GET => "/products/$id/price-history/");
    is $r->{status}, 401, 'history without a token: 401';
    $r = call(GET => "/products/$id/price-history/", token => $user->{token});
    is $r->{status}, 403, 'history for a customer: 403';
    $r = call(GET => "/products/999999999/price-history/", token => $staff);
    is_problem($r, 404, undef, 'history of an unknown product: 404');
    my $still = create()->{json}{id};
    $r = call(GET => "/products/$still/price-history/", token => $staff);
    is $r->{status}, 200, 'history of a product without changes: 200';
    is_deeply $r->{json}{items}, [], '... no items';
    $r = call(GET => "/products/$id/price-history/?limit=1", token => $staff);
    is $r->{status}, 200, 'history, one per page';
    is scalar @{ $r->{json}{items} }, 1, '... one item';
    is $r->{json}{items}[0]{new_price}, 14500, '... the newest first';
    is $r->{json}{items}[0]{actor}, 'database', '... its actor';
    is $r->{json}{items}[0]{currency}, $q->{json}{currency}, '... with its currency';
    ok is_rfc3339($r->{json}{items}[0]{created_at}), '... and when';
    ok defined $r->{json}{next_cursor}, '... and a next page';
    my $r2 = call(GET => "/products/$id/price-history/?limit=1&cursor=$r->{json}{next_cursor}",
                  token => $staff);
    is $r2->{json}{items}[0]{old_price}, 15000, 'the second page holds the older change';
    is $r2->{json}{items}[0]{actor_id}, $staff_id, '... by the staff user';
    is $r2->{json}{next_cursor}, undef, '... and is the last';
    is call(GET => "/products/$id/price-history/?cursor=bogus", token => $staff)->{status}, 400,
        'a bad cursor: 400';
    is call(GET => "/products/$id/price-history/?limit=0", token => $staff)->{status}, 400,
        'limit=0: 400';
}

# --- the rule, run by run ---------------------------------------------------
# L: no sales, stock 100: down to the floor. R: 10 sold this week, stock 5
# (cover 3.5 days): up to the ceiling. H: 10 sold, stock 30 (cover 21
# days): held. C: only a cancelled order and an old one: no sales, lowered.
# I: inactive: never moved. Z: no stock and no sales: held.
my %prod;
$prod{L} = create(price_floor => 8000, price_ceiling => 12000)->{json}{id};
$prod{R} = create(price_floor => 5000, price_ceiling => 11000, stock => 5)->{json}{id};
$prod{H} = create(price_floor => 5000, price_ceiling => 20000, stock => 30)->{json}{id};
$prod{C} = create(price_floor => 9000, price_ceiling => 11000, stock => 10)->{json}{id};
$prod{I} = create(price_floor => 5000, price_ceiling => 20000, active => JSON::PP::false)->{json}{id};
$prod{Z} = create(price_floor => 5000, price_ceiling => 20000, stock => 0)->{json}{id};
sale($prod{R}, 6);
sale($prod{R}, 4, status => 'delivered', age => '6 days');
sale($prod{H}, 10, status => 'shipped');
sale($prod{C}, 50, status => 'cancelled');
sale($prod{C}, 50, age => '8 days');
# the products of the earlier sections: back to neutral, no bounds
psql_do("UPDATE products SET price_floor = NULL, price_ceiling = NULL "
    . "WHERE price_floor IS NOT NULL AND id NOT IN (" . join(',', values %prod) . ')');

{
    my $plan = ecom_admin('reprice', '--dry-run');
    is $plan->{rc}, 0, 'ecom-admin reprice --dry-run' or diag $plan->{err};
    my @lines = map { json_decode($_) } grep { /^\{/ } split /\n/, $plan->{out};
    my %rule = map { ($_->{product_id} // 0) => $_ } grep { exists $_->{product_id} } @lines;
    is $rule{$prod{L}}{rule}, 'lower', 'plan: L is lowered';
    is $rule{$prod{L}}{new_price}, 9500, '... to 9500';
    is $rule{$prod{R}}{rule}, 'raise', 'plan: R is raised';
    is $rule{$prod{R}}{units}, 10, '... 10 units sold in the window';
    is $rule{$prod{R}}{cover_days}, 3.5, '... 3.5 days of stock';
    is $rule{$prod{H}}{rule}, 'hold', 'plan: H is held (21 days of cover)';
    is $rule{$prod{C}}{units}, 0, 'plan: cancelled and old orders are not sales';
    is $rule{$prod{Z}}{rule}, 'hold', 'plan: no stock and no sales is held';
    ok !exists $rule{$prod{I}}, 'plan: an inactive product is left out';
    my ($sum) = grep { exists $_->{status} } @lines;
    is $sum->{status}, 'dry-run', 'the summary says dry-run';
    is_deeply [ @$sum{qw(considered raised lowered)} ], [5, 1, 2], '... 5 considered, 1 up, 2 down';
    is price_of($prod{L}), 10000, 'a dry run changes nothing';
    is psql_value('SELECT count(*) FROM price_runs'), 0, '... and records no run';
}

my %seq = (L => [10000], R => [10000], H => [10000], C => [10000], I => [10000], Z => [10000]);
my %bounds = (L => [8000, 12000], R => [5000, 11000], H => [5000, 20000], C => [9000, 11000],
              I => [5000, 20000], Z => [5000, 20000]);
my $first = reprice();
is $first->{status}, 'done', 'a run';
is_deeply [ @$first{qw(considered raised lowered)} ], [5, 1, 2], '... 5 considered, 1 raised, 2 lowered';
push @{ $seq{$_} }, price_of($prod{$_}) for keys %prod;
{
    my $row = psql_value("SELECT old_price || ',' || new_price || ',' || actor || ',' || "
        . "coalesce(actor_id::text, '-') || ',' || reason || ',' || run_id || ',' || "
        . "(inputs->>'units') || ',' || (inputs->>'stock') || ',' || (inputs->>'rule') "
        . "FROM price_history WHERE product_id = $prod{L}");
    is $row, "10000,9500,system,-,demand-lower,$first->{run_id},0,100,lower",
        'the history row of the run: exact';
    $row = psql_value("SELECT old_price || ',' || new_price || ',' || reason || ',' || "
        . "(inputs->>'cover_days') FROM price_history WHERE product_id = $prod{R}");
    is $row, '10000,10500,demand-raise,3.5', 'R: raised by 5 %, with its cover';
    is psql_value("SELECT source || ',' || considered || ',' || raised || ',' || lowered || ',' || "
        . "(finished_at >= started_at) FROM price_runs WHERE id = $first->{run_id}"),
        'admin,5,1,2,true', 'the run is recorded';
}
for (2 .. 8) {
    my $r = reprice();
    is $r->{status}, 'done', "run $_";
    push @{ $seq{$_} }, price_of($prod{$_}) for keys %prod;
}
is_deeply $seq{L}, [10000, 9500, 9025, 8574, 8146, 8000, 8000, 8000, 8000],
    'no sales: down by floor(5 %) a run to the floor, then stays';
is_deeply $seq{R}, [10000, 10500, 11000, 11000, 11000, 11000, 11000, 11000, 11000],
    'fast sales: up to the ceiling, then stays';
is_deeply $seq{H}, [(10000) x 9], 'between 14 and 60 days of cover: held';
is_deeply $seq{I}, [(10000) x 9], 'inactive: never moved';
is_deeply $seq{Z}, [(10000) x 9], 'no stock and no sales: held';
is $seq{C}[-1], 9000, 'cancelled and old orders only: lowered to its floor';
for my $k (sort keys %seq) {
    my @s = @{ $seq{$k} };
    my ($lo, $hi) = @{ $bounds{$k} };
    my @bad = grep { $s[$_] < $lo || $s[$_] > $hi
                     || abs($s[$_] - $s[$_ - 1]) > int($s[$_ - 1] * 0.05) } 1 .. $#s;
    ok !@bad, "$k: every price within [$lo, $hi], every step at most 5 %";
}
is history($prod{L}), 5, 'L: one history row per change (5)';
is history($prod{R}), 2, 'R: two';
is history($prod{H}), 0, 'H: none';
is psql_value("SELECT count(*) FROM price_history h JOIN price_history g ON g.product_id = h.product_id "
    . "AND g.id = (SELECT max(id) FROM price_history WHERE product_id = h.product_id AND id < h.id) "
    . "WHERE h.product_id IN ($prod{L}, $prod{R}) AND g.new_price <> h.old_price"), 0,
    'each row starts where the one before ended';

# --- one run at a time ------------------------------------------------------
{
    is reprice('1 hour')->{status}, 'recent', 'a run within the minimum interval is skipped';
    my $before = history($prod{L});
    psql_do("UPDATE products SET price = 10000 WHERE id = $prod{L}");
    # a run holding its transaction (as a slow run on another host would)
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        open STDOUT, ">", "/dev/null";
        { exec 'psql', '-XAtq', '-c', "BEGIN; SELECT status FROM ecom_reprice('watchdog'); "
              . 'SELECT pg_sleep(2); COMMIT;' }
        POSIX::_exit(127);
    }
    sleep 0.7;
    my $other = reprice();
    is $other->{status}, 'busy', 'a second run while one is in progress: busy, at once';
    my $adm = ecom_admin('reprice');
    is $adm->{rc}, 1, 'ecom-admin reprice meanwhile: exit 1';
    like $adm->{err}, qr/in progress/, '... saying a run is in progress';
    waitpid $pid, 0;
    is $? >> 8, 0, 'the first run commits';
    is price_of($prod{L}), 9500, 'one step only';
    is history($prod{L}), $before + 2, 'one row for the reset, one for the single run';

    # four hosts at once with the same interval: one run
    psql_do("UPDATE products SET price = 10000 WHERE id = $prod{L}");
    psql_do("DELETE FROM price_runs WHERE finished_at > now() - interval '1 hour'");
    my @kids;
    my $at = time + 1;
    for (1 .. 4) {
        my $k = fork // die "fork: $!\n";
        if (!$k) {
            sleep($at - time) if $at > time;
            open STDOUT, ">", "/dev/null";
            { exec 'psql', '-XAtq', '-c', "SELECT status FROM ecom_reprice('watchdog', interval '1 hour')" }
            POSIX::_exit(127);
        }
        push @kids, $k;
    }
    waitpid $_, 0 for @kids;
    is psql_value("SELECT count(*) FROM price_runs WHERE finished_at > now() - interval '1 hour'"), 1,
        'four runs at once: one is made';
    is price_of($prod{L}), 9500, '... and the price moved one step';

    my $adm2 = ecom_admin('reprice');
    is $adm2->{rc}, 0, 'ecom-admin reprice runs at once whatever the interval' or diag $adm2->{err};
    my $out = json_decode((split /\n/, $adm2->{out})[-1]);
    is $out->{status}, 'done', '... and prints the run';
    is price_of($prod{L}), 9025, '... which moved L one more step';
}

# --- Off by default: the suite's server moves nothing -----------------------
{
    psql_do("UPDATE products SET price = 10000 WHERE id = $prod{L}");
    sleep 3;
    is price_of($prod{L}), 10000, 'without EcomDynamicPricing no price moves';
    is psql_value("SELECT count(*) FROM price_runs WHERE source = 'watchdog'"), 1,
        '... and no watchdog run is recorded (only the one this test made)';
}

# --- the directives: main server only, the interval's range -----------------
SKIP: {
    my $vh = spare_httpd(start => 0, conf => "<VirtualHost 127.0.0.1:\@PORT0\@>\n"
                         . "    EcomDynamicPricing On\n</VirtualHost>\n");
    skip "cannot run a spare apache2: $vh", 4 unless ref $vh;
    ok !$vh->{syntax_ok}, 'EcomDynamicPricing in a <VirtualHost> is refused';
    like $vh->{syntax}, qr/EcomDynamicPricing/, '... naming the directive';
    my $iv = spare_httpd(start => 0, conf => "EcomDynamicPricingInterval 0\n");
    ok !$iv->{syntax_ok}, 'EcomDynamicPricingInterval 0 is refused';
    like $iv->{syntax}, qr/EcomDynamicPricingInterval must be an integer from 1 to 604800/,
        '... with its range';
}

# --- the real watchdog, and the cache ----------------------------------------
SKIP: {
    my $port = $ENV{PGPORT};
    my $h = spare_httpd(modules => [qw(socache_shmcb)], conf => <<"CONF");
DBDriver pgsql
DBDParams "host=127.0.0.1 port=$port dbname=$ENV{PGDATABASE} user=$ENV{PGUSER} connect_timeout=2"
DBDPersist On
DBDMin 0
DBDKeep 2
DBDMax 4
LogLevel info ecom:debug
EcomDynamicPricing On
EcomDynamicPricingInterval 2
EcomCacheTTL 3600
EcomPurgeInterval 0
EcomPaymentTimeout 0
<Location "/">
    SetHandler ecom
</Location>
CONF
    skip "cannot run a spare apache2: $h", 10 unless ref $h;
    ok $h->{started}, 'a server with EcomDynamicPricing On starts'
        or diag(($h->{syntax} // '') . ($h->{start_output} // ''));
    skip 'the spare apache2 did not start', 9 unless $h->{started};
    my $base = "http://127.0.0.1:$h->{ports}[0]";
    psql_do("UPDATE products SET price_floor = NULL, price_ceiling = NULL WHERE id <> $prod{L}");
    my $list = "/products/?min_price=7000&max_price=12000&limit=100";
    my $price_in = sub {
        my $r = api(GET => $list, base => $base);
        my ($it) = grep { $_->{id} == $prod{L} } @{ $r->{json}{items} || [] };
        # the list price: a sales rule left live by another test changes
        # the effective price, not this one
        return $it ? $it->{list_price} // $it->{price} : undef;
    };
    # wait for a change by the watchdog, then read the list (cached now)
    my $wait_change = sub {
        my $from = price_of($prod{L});
        my $t = time + 20;
        sleep 0.2 while price_of($prod{L}) == $from && time < $t;
        return price_of($prod{L});
    };
    my $p1 = $wait_change->();
    isnt $p1, 10000, "the watchdog moved the price ($p1)";
    sleep 0.3;
    is $price_in->(), $p1, 'the list shows it';
    my $etag = api(GET => "/products/$prod{L}/", base => $base)->{headers}{etag};
    is api(GET => $list, base => $base)->{headers}{'ecom-cache'}, 'hit', 'the list page is cached';
    my $p2 = $wait_change->();
    ok $p2 < $p1, "the next run moved it again ($p2)";
    sleep 0.3;
    is $price_in->(), $p2, 'the cached list shows the new price (the run invalidated it)';
    my $d = api(GET => "/products/$prod{L}/", base => $base, headers => { 'If-None-Match' => $etag });
    is $d->{status}, 200, 'the old ETag of the detail no longer matches';
    is $d->{json}{list_price} // $d->{json}{price}, $p2, '... and the detail shows the new price';
    ok psql_value("SELECT count(*) FROM price_runs WHERE source = 'watchdog'") >= 3,
        'the runs are recorded as the watchdog\'s';
    $h->{stop}->();
    my $log = slurp_file($h->{error_log}) // die "$h->{error_log}: $!\n";
    like $log, qr/ECOM2401: dynamic pricing run \d+: 1 bounded products, 0 prices raised, 1 lowered/,
        'the run is logged';
}

is_deeply \@fivexx, [], 'no 5xx answer';
done_testing;
