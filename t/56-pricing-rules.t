#!/usr/bin/perl
# Sales (issue 10, "Discounts and dynamic prices": Sales). Staff pricing
# rules under /pricing/rules/ (401 anonymous, 403 customers), validation
# and mass assignment (422, never 5xx), the effective price on product
# detail and list (price, list_price, price_ends_at), windows (a rule in
# the future, in the past, at its boundaries), priority and its tie rule,
# a category rule reaching the subcategories, a storewide rule, the cart
# and the checkout charging the sale price, the expected_total guard when
# a sale ends between cart and checkout, a coupon on top of a sale, and
# the catalog cache invalidated by rule writes.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $staff = staff_token();
my $cust = register_user();
sub iso { POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) }
my $NOW = time;
sub rule {
    my (%b) = @_;
    $b{name} //= 'Sale ' . uniq();
    $b{starts_at} //= iso($NOW - 3600);
    $b{ends_at} //= iso($NOW + 86400);
    my $r = api(POST => '/pricing/rules/', token => $staff, body => \%b);
    die "rule: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    return $r->{json};
}
sub product { api(GET => "/products/$_[0]{id}/")->{json} }
sub drop { is api(DELETE => "/pricing/rules/$_[0]{id}/", token => $staff)->{status}, 204, "rule $_[0]{id} deleted" }

# ---- who may call it ----
{
    my $b = { name => 'x', percent_off => 10, starts_at => iso($NOW), ends_at => iso($NOW + 60) };
    my $r = api(POST => '/pricing/rules/', body => $b);
    is $r->{status}, 401, 'POST anonymous: 401';
    ok bearer_challenge_ok($r), '... with WWW-Authenticate: Bearer';
    is_problem api(POST => '/pricing/rules/', token => $cust->{token}, body => $b), 403, undef, 'POST as a customer: 403';
    is api(GET => '/pricing/rules/')->{status}, 401, 'GET list anonymous: 401';
    is_problem api(GET => '/pricing/rules/', token => $cust->{token}), 403, undef, 'GET list as a customer: 403';
    is api(GET => '/pricing/rules/1/', token => $cust->{token})->{status}, 403, 'GET one as a customer: 403';
    is api(PATCH => '/pricing/rules/1/', token => $cust->{token}, body => { percent_off => 99 })->{status}, 403,
        'PATCH as a customer: 403';
    is api(DELETE => '/pricing/rules/1/', token => $cust->{token})->{status}, 403, 'DELETE as a customer: 403';
    is api(DELETE => '/pricing/rules/1/')->{status}, 401, 'DELETE anonymous: 401';
}

# ---- CRUD and the product's prices ----
my $p = create_product(price => 999, stock => 100);
is $p->{list_price}, 999, 'a new product: list_price';
is $p->{price}, 999, '... price = list_price without a sale';
ok exists $p->{price_ends_at} && !defined $p->{price_ends_at}, '... price_ends_at null';
{
    my $ends = iso($NOW + 7200);
    my $r = api(POST => '/pricing/rules/', token => $staff, body => { name => 'Spring sale', percent_off => 15,
        product_ids => [ $p->{id} ], starts_at => iso($NOW - 60), ends_at => $ends, priority => 5 });
    is $r->{status}, 201, 'staff creates a rule: 201' or diag $r->{content};
    my $rule = $r->{json};
    like $r->{headers}{location} // '', qr{/pricing/rules/$rule->{id}/$}, 'Location';
    is_deeply [ @$rule{qw(name percent_off priority)} ], [ 'Spring sale', 15, 5 ], 'name, percent_off, priority';
    is_deeply $rule->{product_ids}, [ $p->{id} ], 'product_ids';
    ok !defined $rule->{category}, 'no category';
    ok is_true($rule->{active}), 'active now';
    is $rule->{ends_at}, $ends, 'ends_at';
    my $d = product($p);
    is $d->{price}, 849, '15 % off 999 (149.85 rounded half up: 150): 849';
    is $d->{list_price}, 999, 'list_price unchanged';
    is $d->{price_ends_at}, $ends, 'price_ends_at = the rule\'s ends_at';
    my $l = listed($p);
    is $l->{price}, 849, 'the list shows the sale price too';
    is $l->{list_price}, 999, '... and the list price';

    $r = api(GET => "/pricing/rules/$rule->{id}/", token => $staff);
    is $r->{status}, 200, 'GET one';
    is $r->{json}{percent_off}, 15, '... the rule';
    $r = api(PATCH => "/pricing/rules/$rule->{id}/", token => $staff, body => { percent_off => 50 });
    is $r->{status}, 200, 'PATCH percent_off: 200' or diag $r->{content};
    is_deeply $r->{json}{product_ids}, [ $p->{id} ], '... products kept';
    is product($p)->{price}, 999 - 500, 'the product follows at once: 999 - round(499.5) = 499';
    # the cached list is invalidated by the rule write
    is listed($p, 100)->{price}, 499, 'the list page shows it';
    my $again = api(GET => '/products/?sort=newest&limit=100');
    like $again->{headers}{'ecom-cache'} // 'hit', qr/hit/i, 'the same list page again: from the cache';
    api(PATCH => "/pricing/rules/$rule->{id}/", token => $staff, body => { percent_off => 10 });
    is listed($p, 100)->{price}, 899, 'after a rule PATCH the cached list shows the new price (invalidated)';

    my %seen;
    my $path = '/pricing/rules/?limit=1';
    for (1 .. 30) {
        my $pg = api(GET => $path, token => $staff);
        last unless $pg->{status} == 200;
        $seen{ $_->{id} }++ for @{ $pg->{json}{items} };
        last unless defined $pg->{json}{next_cursor};
        $path = "/pricing/rules/?limit=1&cursor=$pg->{json}{next_cursor}";
    }
    ok $seen{ $rule->{id} }, 'the list holds the rule';
    is_problem api(GET => '/pricing/rules/?cursor=zzz', token => $staff), 400, undef, 'bad cursor: 400';

    drop($rule);
    is product($p)->{price}, 999, 'rule deleted: the list price again';
    ok !defined product($p)->{price_ends_at}, '... price_ends_at null';
    is_problem api(GET => "/pricing/rules/$rule->{id}/", token => $staff), 404, 'not-found', 'GET deleted: 404';
    is api(DELETE => "/pricing/rules/$rule->{id}/", token => $staff)->{status}, 404, 'DELETE again: 404';
    is api(PATCH => "/pricing/rules/$rule->{id}/", token => $staff, body => { percent_off => 5 })->{status}, 404,
        'PATCH deleted: 404';
}
# product $q as the list shows it (newest first: it is recent); each call
# a limit of its own (unless given), so that no cached page of an earlier
# call answers
my $LISTED = 0;
sub listed {
    my ($q, $limit) = @_;
    $limit //= 30 + $LISTED++ % 70;
    my ($l) = grep { $_->{id} == $q->{id} } @{ api(GET => "/products/?sort=newest&limit=$limit")->{json}{items} // [] };
    return $l;
}

# ---- bad input: 422 naming the field, never 5xx ----
{
    my %ok = (name => 'n', percent_off => 10, starts_at => iso($NOW), ends_at => iso($NOW + 60));
    my @bad = (
        [ { %ok, percent_off => 0 }, 'percent_off', 'percent_off 0' ],
        [ { %ok, percent_off => 101 }, 'percent_off', 'percent_off 101' ],
        [ { %ok, percent_off => '10' }, 'percent_off', 'percent_off a string' ],
        [ { %ok, percent_off => undef }, 'percent_off', 'percent_off null' ],
        [ { %ok, name => '' }, 'name', 'empty name' ],
        [ { %ok, name => 'x' x 201 }, 'name', 'name too long' ],
        [ { map { $_ => $ok{$_} } qw(percent_off starts_at ends_at) }, 'name', 'no name' ],
        [ { map { $_ => $ok{$_} } qw(name percent_off ends_at) }, 'starts_at', 'no starts_at' ],
        [ { map { $_ => $ok{$_} } qw(name percent_off starts_at) }, 'ends_at', 'no ends_at' ],
        [ { %ok, ends_at => $ok{starts_at} }, 'ends_at', 'empty window' ],
        [ { %ok, starts_at => 'now' }, 'starts_at', 'starts_at not a time' ],
        [ { %ok, ends_at => '2026-04-31T00:00:00Z' }, 'ends_at', 'April 31' ],
        [ { %ok, category => 'no-such-category-x' }, 'category', 'unknown category' ],
        [ { %ok, category => 'Not A Slug' }, 'category', 'category not a slug' ],
        [ { %ok, category => 5 }, 'category', 'category a number' ],
        [ { %ok, product_ids => [ 999999999 ] }, 'product_ids', 'unknown product' ],
        [ { %ok, product_ids => [] }, 'product_ids', 'product_ids empty' ],
        [ { %ok, product_ids => [ 1, 1 ] }, 'product_ids', 'product_ids twice' ],
        [ { %ok, product_ids => [ 'x' ] }, 'product_ids', 'product_ids strings' ],
        [ { %ok, product_ids => 7 }, 'product_ids', 'product_ids not an array' ],
        [ { %ok, product_ids => [ $p->{id} ], category => 'x' }, 'category', 'category and product_ids' ],
        [ { %ok, priority => 1e12 }, 'priority', 'priority huge' ],
        [ { %ok, priority => 1.5 }, 'priority', 'priority a float' ],
        [ { %ok, id => 3 }, 'id', 'mass assignment: id' ],
        [ { %ok, active => JSON::PP::true() }, 'active', 'mass assignment: active' ],
        [ { %ok, price => 1 }, 'price', 'mass assignment: price' ],
    );
    for my $b (@bad) {
        my $r = api(POST => '/pricing/rules/', token => $staff, body => $b->[0]);
        is_problem $r, 422, undef, "POST $b->[2]: 422";
        has_field_error $r, $b->[1], "... names $b->[1]";
    }
    is_problem api(POST => '/pricing/rules/', token => $staff, body => '{"name":'), 400, undef, 'malformed JSON: 400';
    is api(GET => '/pricing/rules/abc/', token => $staff)->{status}, 404, 'a non-numeric id: 404';
    my $rule = rule(percent_off => 5, product_ids => [ $p->{id} ]);
    my $r = api(PATCH => "/pricing/rules/$rule->{id}/", token => $staff, body => { ends_at => iso($NOW - 86400 * 10) });
    is_problem $r, 422, undef, 'PATCH ends_at before starts_at: 422';
    has_field_error $r, 'ends_at';
    $r = api(PATCH => "/pricing/rules/$rule->{id}/", token => $staff, body => { scope => 'all' });
    is_problem $r, 422, undef, 'PATCH an unknown field: 422';
    is api(GET => "/pricing/rules/$rule->{id}/", token => $staff)->{json}{percent_off}, 5, '... nothing changed';
    drop($rule);
}

# ---- windows ----
{
    my $q = create_product(price => 1000, stock => 10);
    my $future = rule(percent_off => 30, product_ids => [ $q->{id} ], starts_at => iso($NOW + 3600), ends_at => iso($NOW + 7200));
    ok is_false($future->{active}), 'a rule starting in an hour: not active';
    is product($q)->{price}, 1000, '... the price is the list price';
    my $past = rule(percent_off => 40, product_ids => [ $q->{id} ], starts_at => iso($NOW - 7200), ends_at => iso($NOW - 3600));
    ok is_false($past->{active}), 'a rule that ended an hour ago: not active';
    is product($q)->{price}, 1000, '... no effect';
    # the boundaries: starts_at inclusive, ends_at exclusive
    psql_do("UPDATE pricing_rules SET starts_at = now() - interval '1 second' WHERE id = $future->{id}");
    is product($q)->{price}, 700, 'starts_at reached: the sale price (30 %)';
    psql_do("UPDATE pricing_rules SET ends_at = now() WHERE id = $future->{id}");
    is product($q)->{price}, 1000, 'ends_at reached: the list price again';
    psql_do("UPDATE pricing_rules SET starts_at = now() + interval '1 second', ends_at = now() + interval '1 hour' WHERE id = $future->{id}");
    is product($q)->{price}, 1000, 'one second before starts_at: the list price';
    my $u = register_user();
    api(POST => '/cart/', token => $u->{token}, body => { product_id => $q->{id}, quantity => 1 });
    sleep 2;
    # the cart is exact at starts_at; the list and the detail read the sale
    # stored on the row (sql/025), which the window edges job stores
    is api(GET => '/cart/', token => $u->{token})->{json}{items}[0]{unit_price}, 700,
        'starts_at passed, nothing written: the cart charges the sale price at once';
    psql_do("SELECT * FROM ecom_sale_edges()");
    is product($q)->{price}, 700, '... the detail after the window edges job (ecom_sale_edges)';
    is listed($q)->{price}, 700, '... the list too';
    # a sale that ends is exact on the list with no job
    psql_do("UPDATE pricing_rules SET ends_at = now() + interval '1 second' WHERE id = $future->{id}");
    is listed($q)->{price}, 700, 'one second before ends_at: the sale price on the list';
    sleep 2;
    is listed($q)->{price}, 1000, '... then the list price with no job (the CASE on now())';
    ok !defined listed($q)->{price_ends_at}, '... and price_ends_at null';
    is product($q)->{price}, 1000, '... the detail too';
    drop($_) for $future, $past;
}

# ---- a lower-priority rule takes over when a higher one ends ----
{
    my $q = create_product(price => 1000, stock => 10);
    my $low = rule(percent_off => 10, priority => 1, product_ids => [ $q->{id} ]);
    my $high = rule(percent_off => 50, priority => 5, product_ids => [ $q->{id} ]);
    is listed($q)->{price}, 500, 'the higher priority on the list';
    is psql_value("SELECT sale_rule_id FROM products WHERE id = $q->{id}"), $high->{id},
        '... stored on the row (sql/025)';
    # the suite's server runs the edges job every 30 s (EcomSaleEdgeInterval):
    # its lease, taken here, keeps it from running inside the next 2 s
    psql_do("INSERT INTO job_leases (job, run_by, started_at) VALUES ('sale edges', 't/56', now()) "
          . "ON CONFLICT (job) DO UPDATE SET run_by = 't/56', started_at = now()");
    psql_do("UPDATE pricing_rules SET ends_at = now() + interval '1 second' WHERE id = $high->{id}");
    sleep 2;
    is listed($q)->{price}, 1000, 'the high rule ended: the list price until the edges job';
    my $edges = psql_value("SELECT status || ' ' || products FROM ecom_sale_edges()");
    like $edges, qr/^done [1-9]/, "the edges job recomputed the rule's products ($edges)";
    is listed($q)->{price}, 900, '... then the lower-priority rule takes over on the list';
    is product($q)->{price}, 900, '... and on the detail';
    drop($_) for $low, $high;
    is listed($q)->{price}, 1000, 'both deleted: the list price';
    is psql_value("SELECT count(*) FROM products WHERE id = $q->{id} AND sale_rule_id IS NULL"), 1,
        '... nothing stored';
}

# ---- priority and ties ----
{
    my $q = create_product(price => 2000, stock => 10);
    my $low = rule(percent_off => 50, priority => 1, product_ids => [ $q->{id} ]);
    my $high = rule(percent_off => 10, priority => 9, product_ids => [ $q->{id} ], ends_at => iso($NOW + 5000));
    my $d = product($q);
    is $d->{price}, 1800, 'the higher priority wins, even with a smaller percent_off';
    is $d->{price_ends_at}, iso($NOW + 5000), "... price_ends_at is the winner's ends_at";
    my $tie = rule(percent_off => 20, priority => 9, product_ids => [ $q->{id} ]);
    is product($q)->{price}, 1600, 'a tie of priority: the larger percent_off wins';
    api(PATCH => "/pricing/rules/$tie->{id}/", token => $staff, body => { percent_off => 10 });
    is product($q)->{price}, 1800, 'a full tie: the same price whichever wins';
    drop($_) for $low, $high, $tie;
    is product($q)->{price}, 2000, 'all deleted: the list price';
}

# ---- a category rule reaches the subcategories; a storewide rule ----
{
    my $u = uniq(); $u =~ tr/A-Z/a-z/; $u =~ s/[^a-z0-9]//g;
    my $top = api(POST => '/categories/', token => $staff, body => { slug => "sale-top-$u", name => "Top $u" });
    is $top->{status}, 201, 'a category' or diag $top->{content};
    my $sub = api(POST => '/categories/', token => $staff, body => { slug => "sale-sub-$u", name => "Sub $u", parent => "sale-top-$u" });
    is $sub->{status}, 201, 'a subcategory' or diag $sub->{content};
    my $in_top = create_product(price => 100, stock => 5, category => "sale-top-$u");
    my $in_sub = create_product(price => 200, stock => 5, category => "sale-sub-$u");
    my $outside = create_product(price => 300, stock => 5);
    my $rule = rule(percent_off => 25, category => "sale-top-$u");
    is $rule->{category}, "sale-top-$u", 'a category rule';
    ok !defined $rule->{product_ids}, '... no product_ids';
    is product($in_top)->{price}, 75, 'a product of the category: on sale';
    is product($in_sub)->{price}, 150, 'a product of a subcategory: on sale';
    is product($outside)->{price}, 300, 'a product elsewhere: not';
    my $all = rule(percent_off => 1, priority => -100, ends_at => iso($NOW + 600));
    ok !defined $all->{category} && !defined $all->{product_ids}, 'a storewide rule (neither category nor product_ids)';
    is product($outside)->{price}, 297, 'storewide: 1 % off 300';
    is product($in_top)->{price}, 75, '... the category rule still wins by priority';
    drop($all);
    $rule = api(PATCH => "/pricing/rules/$rule->{id}/", token => $staff, body => { product_ids => [ $outside->{id} ] })->{json};
    is_deeply $rule->{product_ids}, [ $outside->{id} ], 'PATCH product_ids replaces the category';
    ok !defined $rule->{category}, '... category cleared';
    is product($in_top)->{price}, 100, '... the category is off sale';
    is product($outside)->{price}, 225, '... the product on sale';
    drop($rule);
    # rule writes recompute the products they cover, and only those
    $rule = rule(percent_off => 25, category => "sale-top-$u");
    my $late = create_product(price => 400, stock => 5, category => "sale-sub-$u");
    is product($late)->{price}, 300, 'a product created in a subcategory under sale: on sale';
    is listed($late)->{price}, 300, '... on the list too';
    my $moved = create_product(price => 1000, stock => 5);
    is product($moved)->{price}, 1000, 'a product outside: not on sale';
    my $r = api(PATCH => "/products/$moved->{id}/", token => $staff, body => { category => "sale-sub-$u" });
    is $r->{status}, 200, 'moved into the subcategory' or diag $r->{content};
    is product($moved)->{price}, 750, '... then on sale';
    my $before = psql_value("SELECT count(*) FROM products WHERE sale_rule_id = $rule->{id}");
    is $before, 4, 'the stored sale: the four products of the category subtree';
    my $xmin = psql_value("SELECT xmin FROM products WHERE id = $outside->{id}");
    api(PATCH => "/pricing/rules/$rule->{id}/", token => $staff, body => { percent_off => 40 });
    is psql_value("SELECT xmin FROM products WHERE id = $outside->{id}"), $xmin,
        'a category rule write leaves the rows outside it unwritten';
    is product($late)->{price}, 240, 'PATCH percent_off: the products of the category follow';
    $all = rule(percent_off => 2, priority => 100, ends_at => iso($NOW + 600));
    is psql_value("SELECT count(*) FROM products WHERE sale_rule_id IS DISTINCT FROM $all->{id}"), 0,
        'a storewide rule of the highest priority: stored on every product';
    is listed($outside)->{price}, 294, '... 2 % off 300 on the list';
    drop($all);
    is product($late)->{price}, 240, 'storewide deleted: the category rule again';
    is psql_value("SELECT count(*) FROM products WHERE sale_rule_id = $all->{id}"), 0, '... stored nowhere';
    drop($rule);
    is product($moved)->{price}, 1000, 'category rule deleted: the list price';
}

# ---- the window edges job through the real mod_watchdog; the directive ----
SKIP: {
    my $vh = spare_httpd(start => 0, conf => "<VirtualHost 127.0.0.1:\@PORT0\@>\n"
                         . "    EcomSaleEdgeInterval 5\n</VirtualHost>\n");
    skip "cannot run a spare apache2: $vh", 8 unless ref $vh;
    ok !$vh->{syntax_ok}, 'EcomSaleEdgeInterval in a <VirtualHost> is refused';
    my $iv = spare_httpd(start => 0, conf => "EcomSaleEdgeInterval -1\n");
    like $iv->{syntax}, qr/EcomSaleEdgeInterval must be an integer from 0 to 86400/,
        'EcomSaleEdgeInterval -1 is refused, with its range';
    my $port = $ENV{PGPORT};
    my $h = spare_httpd(conf => <<"CONF");
DBDriver pgsql
DBDParams "host=127.0.0.1 port=$port dbname=$ENV{PGDATABASE} user=$ENV{PGUSER} connect_timeout=2"
DBDPersist On
DBDMin 0
DBDKeep 2
DBDMax 4
LogLevel info ecom:debug
EcomSaleEdgeInterval 1
EcomPurgeInterval 0
EcomPaymentTimeout 0
<Location "/">
    SetHandler ecom
</Location>
CONF
    ok $h->{started}, 'a server with EcomSaleEdgeInterval 1 starts'
        or diag(($h->{syntax} // '') . ($h->{start_output} // ''));
    skip 'the spare apache2 did not start', 5 unless $h->{started};
    my $base = "http://127.0.0.1:$h->{ports}[0]";
    my $q = create_product(price => 5000, stock => 3);
    my $soon = rule(percent_off => 20, product_ids => [ $q->{id} ],
                    starts_at => iso(time + 2), ends_at => iso(time + 3600));
    is api(GET => "/products/$q->{id}/", base => $base)->{json}{price}, 5000, 'a rule starting in 2 s: the list price';
    my $price;
    for (1 .. 40) {
        $price = api(GET => "/products/$q->{id}/", base => $base)->{json}{price};
        last if defined $price && $price == 4000;
        select undef, undef, undef, 0.25;
    }
    is $price, 4000, '... the sale price once it started, stored by the watchdog job, no request written';
    is psql_value("SELECT sale_rule_id FROM products WHERE id = $q->{id}"), $soon->{id}, '... stored on the row';
    my $log = slurp_file($h->{error_log}) // '';
    like $log, qr/ECOM2501: sales window edges/, '... the job logs its runs (ECOM2501)';
    $h->{stop}->();
    drop($soon);
}

# ---- the cart and the checkout charge the sale price; expected_total ----
{
    my $q = create_product(price => 1234, stock => 10);
    my $rule = rule(percent_off => 20, product_ids => [ $q->{id} ]);
    my $u = register_user();
    my $r = api(POST => '/cart/', token => $u->{token}, body => { product_id => $q->{id}, quantity => 3 });
    is $r->{status}, 201, 'added';
    is $r->{json}{unit_price}, 987, 'the added line shows the sale price (1234 - 246.8 -> 987)';
    is $r->{json}{line_total}, 2961, '... and its total';
    my $c = api(GET => '/cart/', token => $u->{token})->{json};
    is $c->{items}[0]{unit_price}, 987, 'the cart line: sale price';
    is $c->{subtotal}, 2961, 'the cart subtotal at the sale price';
    # a coupon applies on top of the sale price
    my $code = 'sale' . uniq(); $code =~ tr/A-Z/a-z/; $code =~ s/[^a-z0-9]//g;
    is api(POST => '/coupons/', token => $staff, body => { code => $code, percent_off => 10 })->{status}, 201, 'a coupon';
    $r = api(POST => '/cart/coupon/', token => $u->{token}, body => { code => $code });
    is $r->{json}{discount}, 296, 'the coupon on the sale subtotal (296.1 -> 296)';
    is $r->{json}{total}, 2665, 'total';
    # the sale ends between the cart and the checkout: expected_total guards
    drop($rule);
    $r = api(POST => '/orders/', token => $u->{token}, body => { expected_total => 2665 });
    is_problem $r, 409, 'price-changed', 'the sale ended before the checkout: 409 price-changed';
    is $r->{json}{total}, 3702 - 370, '... shows the new total (list price, coupon)';
    is psql_value("SELECT count(*) FROM orders WHERE user_id = $u->{id}"), 0, '... nothing ordered';
    $rule = rule(percent_off => 20, product_ids => [ $q->{id} ]);
    $r = api(POST => '/orders/', token => $u->{token}, body => { expected_total => 2665 });
    is $r->{status}, 201, 'on sale again: the checkout at the total shown' or diag $r->{content};
    is $r->{json}{lines}[0]{unit_price}, 987, 'the order line snapshots the sale price';
    is $r->{json}{subtotal}, 2961, 'the order subtotal';
    is $r->{json}{total}, 2665, 'the order total';
    drop($rule);
    is api(GET => "/orders/$r->{json}{id}/", token => $u->{token})->{json}{lines}[0]{unit_price}, 987,
        'the order keeps its price after the sale';
}

done_testing;
