#!/usr/bin/perl
# Every list statement reads through an index (issue 8): each statement the
# module registers with ECOM_STMT_LIST, as ecom-status shows it, is
# EXPLAINed under a generic plan (what mod_dbd's prepared statements get
# with the shipped plan_cache_mode) with the parameters kept below for its
# label, on a scratch database of some size (30,000 products, 40,000
# orders of 2,000 users, 40,000 feed events, 20,000 reviews of 200
# products). A sequential scan of a table
# of 10,000 rows or more fails, and so does a list statement this file has
# no parameters for. Some cases also name the index they must use: a
# user's orders through orders_user, never a walk of every order
# (GET /orders/ once had one statement with "user_id = $1 OR $2").
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $DB = 'ecom_plans';
my $LARGE = 10_000;

# --- the statements, from the operator view ------------------------------------
my $st = api(GET => '/ecom-status');
is $st->{status}, 200, 'ecom-status answers' or BAIL_OUT('no ecom-status');
my %list;
for my $res (@{ $st->{json}{resources} // [] }) {
    for my $p (@{ $res->{prepared} // [] }) {
        ok defined $p->{label} && defined $p->{sql}, "a prepared statement of $res->{name} has a label and its SQL";
        $list{ $p->{label} } = $p->{sql} if $p->{list};
    }
}
ok scalar(keys %list) >= 10, 'the module registers its list statements (' . scalar(keys %list) . ')';
# (the SQL of ecom_products_ids, checked below, ends in its LIMIT; sql/033's
# ecom_products_price_ids and _cat_price_ids take the limit (t/70), and
# ecom_products_q's statements, in t/69-search-static.t, each have one)
ok !grep({ !/\bLIMIT\b/i && !/\becom_products_(?:ids|q|price_ids|cat_price_ids)\(/ } values %list), 'every list statement has a LIMIT';

# --- the scratch database --------------------------------------------------------
my $db = scratch_database($DB);
sub db { $db->(@_) }
db(<<'SQL');
INSERT INTO categories (slug, name) SELECT 'cat-' || g, 'Category ' || g FROM generate_series(1, 20) g;
INSERT INTO products (sku, name, description, price, currency, stock, active, category_id)
SELECT 'PLAN-' || g, 'Plan product ' || g || ' w' || g % 300, 'A mug, a lamp or a chair number ' || g,
       100 + (g * 37) % 100000, 'GBP', (g % 7) * 3, g % 50 <> 0,
       (SELECT id FROM categories ORDER BY id OFFSET (g % 20) LIMIT 1)
  FROM generate_series(1, 30000) g;
-- a rare category (30 products) under cat-3, for the subtree and for a
-- filter that must read its own index
INSERT INTO categories (slug, name, parent_id)
SELECT 'rare', 'Rare', id FROM categories WHERE slug = 'cat-3';
UPDATE products SET category_id = (SELECT id FROM categories WHERE slug = 'rare')
 WHERE sku IN (SELECT 'PLAN-' || g FROM generate_series(1000, 30000, 1000) g);
-- a rare word
UPDATE products SET name = 'Plan lantern ' || id WHERE sku IN ('PLAN-77', 'PLAN-7777');
INSERT INTO users (email, name, password_hash)
SELECT 'plan-' || g || '@example.com', 'Plan user ' || g, 'x' FROM generate_series(1, 2000) g;
INSERT INTO orders (user_id, status, currency, subtotal, discount, total)
SELECT (SELECT min(id) FROM users) + (g % 1999),
       (ARRAY['pending','paid','shipped','delivered','cancelled','refunded'])[1 + g % 6],
       'GBP', 1000, 0, 1000
  FROM generate_series(1, 40000) g;
INSERT INTO events (type, order_id, actor, data)
SELECT (ARRAY['order.created','payment.succeeded','refund.created','shipment.shipped'])[1 + g % 4],
       (SELECT min(id) FROM orders) + g % 40000, 'system', '{}'::jsonb
  FROM generate_series(1, 40000) g;
INSERT INTO reviews (product_id, user_id, rating, title)
SELECT (SELECT min(id) FROM products) + g % 200, (SELECT min(id) FROM users) + g / 200,
       1 + g % 5, 'Plan review ' || g
  FROM generate_series(1, 20000) g;
-- issue 10: price changes of 200 products (sql/024)
INSERT INTO price_history (product_id, old_price, new_price, currency, actor, reason)
SELECT (SELECT min(id) FROM products) + g % 200, 1000, 950, 'GBP', 'system', 'demand-lower'
  FROM generate_series(1, 20000) g;
ANALYZE;
SQL
# as autovacuum leaves a table that is mostly read: the visibility map set,
# which index-only scans rely on
db('VACUUM products');
my $uid = db('SELECT max(id) FROM users');   # user 2000: holds no orders
my $busy = db('SELECT user_id FROM orders GROUP BY user_id ORDER BY count(*) DESC LIMIT 1');
my $oid = db('SELECT min(id) + 20000 FROM orders');
my $pid = db('SELECT min(id) + 15000 FROM products');
my $eid = db('SELECT min(id) + 30000 FROM events');
my $rpid = db('SELECT min(id) + 7 FROM products');
my $rid = db('SELECT min(id) + 10000 FROM reviews');
my $phid = db('SELECT min(id) + 10000 FROM price_history');
my %rows = map { split /\|/ } split /\n/, db(
    "SELECT c.relname || '|' || c.reltuples::bigint FROM pg_class c "
    . "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'");
ok $rows{products} >= $LARGE && $rows{orders} >= $LARGE && $rows{events} >= $LARGE && $rows{reviews} >= $LARGE,
    'products, orders, events and reviews are large tables here';

# --- the parameters of each list statement ------------------------------------------
# label => [ [ what, [ parameters, in placeholder order ], index it must use (optional) ] ]
my %cases = (
    ecom_orders_mine => [
        [ 'a user without orders', [ $uid, undef, 21 ], 'orders_user' ],
        [ 'a busy user, second page', [ $busy, $oid, 21 ], 'orders_user' ] ],
    ecom_orders_mine_status => [
        [ 'a user without orders, status paid', [ $uid, 'paid', undef, 21 ], 'orders_user' ] ],
    ecom_orders_all => [
        [ 'staff, first page', [ undef, 21 ] ],
        [ 'staff, deep page', [ $oid, 21 ] ] ],
    ecom_orders_all_status => [
        [ 'staff, status refunded', [ 'refunded', undef, 21 ] ] ],
    ecom_products_i => [ [ 'first page', [ undef, 21 ] ], [ 'deep page', [ $pid, 21 ] ] ],
    ecom_products_n => [ [ 'newest first', [ undef, 21 ] ] ],
    ecom_products_p => [ [ 'by price', [ undef, undef, 21 ] ] ],
    ecom_products_d => [ [ 'by price, descending', [ undef, undef, 21 ] ] ],
    ecom_products_r => [ [ 'by rating', [ undef, undef, 21 ] ], [ 'by rating, deep page', [ 250, $pid, 21 ] ] ],
    # in_stock alone (sql/031): the sort's index, filtered
    ecom_products_si => [ [ 'sold out, by id', [ 'false', undef, 21 ] ],
                          [ 'in stock, deep page', [ 'true', $pid, 21 ] ] ],
    ecom_products_sn => [ [ 'sold out, newest', [ 'false', undef, 21 ] ] ],
    ecom_products_sp => [ [ 'in stock, by price', [ 'true', undef, undef, 21 ], 'products_active_price' ] ],
    ecom_products_sd => [ [ 'sold out, by price descending', [ 'false', undef, undef, 21 ], 'products_active_price_desc' ] ],
    ecom_products_sr => [ [ 'sold out, by rating', [ 'false', undef, undef, 21 ], 'products_active_rating' ] ],
    # in_stock=false by id or newest: the sold-out ids (sql/031)
    ecom_products_oi => [ [ 'sold out, by id', [ undef, 21 ], 'product_sold_out_pkey' ],
                          [ 'sold out, deep page', [ $pid, 21 ], 'product_sold_out_pkey' ] ],
    ecom_products_on => [ [ 'sold out, newest', [ undef, 21 ], 'product_sold_out_pkey' ] ],
    # category (sql/031): one walk of products_category per category of
    # the subtree, whatever its size (its name exactly: not the primary
    # key, not products_category_active, neither of which gives the order)
    ecom_products_ci => [
        [ 'a rare category', [ 'rare', undef, 21, 21 ], 'products_category' ],
        [ 'a parent category, deep page', [ 'cat-3', $pid, 21, 21 ], 'products_category' ] ],
    ecom_products_cn => [ [ 'a parent category, newest', [ 'cat-3', undef, 21, 21 ], 'products_category' ] ],
    # a price range alone (sql/033): by id or newest through
    # ecom_products_price_ids (its own plans: t/70-price-bands.t), in
    # price order from the range's near end on the price index
    ecom_products_bi => [ [ 'a rare price range', [ 12345, 12345, undef, 21 ] ],
                          [ 'a common min_price, deep page', [ 1000, undef, $pid, 21 ] ] ],
    ecom_products_bn => [ [ 'max_price, newest', [ undef, 5000, undef, 21 ] ] ],
    # a category and a price range (sql/033): the category's walks, or the
    # planned page for a rare range
    ecom_products_ki => [ [ 'a parent category, a common max_price', [ 'cat-3', undef, 50000, undef, 21 ] ],
                          [ 'a rare category, a rare range', [ 'rare', 12345, 12345, $pid, 21 ] ] ],
    ecom_products_kn => [ [ 'a parent category, min_price, newest', [ 'cat-3', 1000, undef, undef, 21 ] ] ],
    ecom_products_bp => [ [ 'a price range by price', [ 5000, 4999, undef, 21 ], 'products_active_price' ] ],
    ecom_products_bd => [ [ 'a price range by price descending', [ 1000, 5001, undef, 21 ], 'products_active_price_desc' ] ],
    ecom_products_page => [
        [ 'category by id', [ 'cat-3', undef, undef, undef, undef, 'i', undef, undef, 21 ], 'products_pkey' ],
        [ 'q by relevance', [ undef, undef, undef, undef, 'lamp', 's', undef, undef, 21 ], 'products_pkey' ] ],
    # q alone by relevance (sql/034): the function's page, each row by
    # primary key (its own statements: t/69-search-static.t)
    ecom_products_q => [
        [ 'q by relevance, a common word', [ undef, 'plan', undef, undef, 21 ], 'products_pkey' ],
        [ 'q in stock, a rare word, second page', [ 'true', 'lantern', 2, $pid, 21 ], 'products_pkey' ] ],
    ecom_reviews => [
        [ 'a product with many reviews', [ 'false', $rpid, 'false', undef, 21 ], 'reviews_product' ],
        [ 'staff, deep page', [ 'true', $rpid, 'true', $rid, 21 ], 'reviews_product' ] ],
    ecom_reviews_r => [ [ 'one rating', [ 'false', $rpid, 'false', 4, undef, 21 ], 'reviews_product_rating' ] ],
    ecom_events => [ [ 'the whole feed', [ undef, 21 ] ], [ 'a deep page', [ $eid, 21 ] ] ],
    ecom_events_t => [ [ 'one type', [ 'payment.succeeded', undef, 21 ] ] ],
    ecom_events_k => [ [ 'one kind', [ 'refund.', 'refund/', undef, 21 ] ] ],
    ecom_events_o => [ [ 'one order', [ $oid, undef, 21 ], 'events_order' ] ],
    ecom_events_ot => [ [ 'one order, one type', [ $oid, 'order.created', undef, 21 ], 'events_order' ] ],
    ecom_events_ok => [ [ 'one order, one kind', [ $oid, 'order.', 'order/', undef, 21 ], 'events_order' ] ],
    ecom_categories_tree => [ [ 'the tree', [ 10000 ] ] ],
    # issue 10: coupons and pricing rules (sql/023), by id
    ecom_coupon_list => [ [ 'coupons, first page', [ undef, 21 ] ] ],
    ecom_pricing_rule_list => [ [ 'pricing rules, a deep page', [ 1000, 21 ] ] ],
    # issue 10: a product's price history (sql/024), newest first
    ecom_price_history => [
        [ 'a product with many changes', [ $rpid, undef, 21 ], 'price_history_product' ],
        [ 'a deep page', [ $rpid, $phid, 21 ], 'price_history_product' ] ],
);
my @missing = grep { !$cases{$_} } sort keys %list;
is_deeply \@missing, [], 'every list statement has parameters here' or diag "no cases for: @missing";

sub literal {
    my ($v) = @_;
    return 'NULL' unless defined $v;
    return $v if $v =~ /\A-?\d+\z/;
    $v =~ s/'/''/g;
    return "'$v'";
}
# every scan node of a plan: [node type, relation, index name]
sub scans {
    my ($node, $out) = @_;
    push @$out, [ $node->{'Node Type'}, $node->{'Relation Name'} // '', $node->{'Index Name'} // '' ]
        if $node->{'Node Type'} =~ /Scan/;
    scans($_, $out) for @{ $node->{Plans} // [] };
    return $out;
}

# check_plan(NAME, EXPLAIN JSON, INDEX, PREFIX): a plan, no sequential
# scan of a large table, and when INDEX is given a scan through it (its
# name exactly, or with PREFIX any index whose name starts with it).
sub check_plan {
    my ($name, $json, $index, $prefix) = @_;
    my $plan = eval { JSON::PP->new->decode($json)->[0]{Plan} };
    ok $plan, "$name: EXPLAIN gives a plan" or do { diag $json; return };
    my $scans = scans($plan, []);
    my @seq = grep { $_->[0] eq 'Seq Scan' && ($rows{ $_->[1] } // 0) >= $LARGE } @$scans;
    ok !@seq, "$name: no sequential scan of a large table"
        or diag "seq scan of @{[ map { $_->[1] } @seq ]}: " . join('; ', map { "@$_" } @$scans);
    if ($index) {
        ok grep({ $prefix ? $_->[2] =~ /^\Q$index\E/ : $_->[2] eq $index } @$scans),
            "$name: reads through $index"
            or diag join('; ', map { "@$_" } @$scans);
    }
}

for my $label (sort keys %list) {
    my $sql = $list{$label};
    my $n = 0;
    $sql =~ s/%s/'$' . ++$n/ge;
    for my $case (@{ $cases{$label} // [] }) {
        my ($what, $args, $index) = @$case;
        is scalar @$args, $n, "$label ($what): $n parameters" or next;
        my $json = db("SET plan_cache_mode = force_generic_plan; PREPARE s AS $sql; "
                      . 'EXPLAIN (FORMAT JSON) EXECUTE s(' . join(', ', map { literal($_) } @$args) . ')');
        check_plan("$label ($what)", $json, $index, 0);
    }
}

# --- the filtered list: the SQL of each page ---------------------------------------
# ecom_products_ids (sql/031; sql/014's ecom_products_page before) runs,
# with EXECUTE ... USING, the SQL that ecom_products_ids_sql writes for the
# filters that are on; PostgreSQL
# plans it for the values (a custom plan): EXPLAIN EXECUTE of that SQL
# with the values shows the plan each page gets. Rare values must read
# their filter's index, common ones may walk the sort's index.
my $TYPES = '(bigint[], bigint, bigint, boolean, text, text, bigint, bigint, int)';
my @page_cases = (
    # what, [category, min, max, in_stock, q, sort], fuzzy, index it must
    # use (a prefix of its name: products_category or _category_active)
    [ 'a rare category (subtree of one), by id', [ 'rare', undef, undef, undef, undef, 'i' ], 0, 'products_category' ],
    [ 'a parent category (its subtree), by id', [ 'cat-3', undef, undef, undef, undef, 'i' ] ],
    [ 'a rare category by price', [ 'rare', undef, undef, undef, undef, 'p' ], 0, 'products_category' ],
    [ 'a high min_price, by id', [ undef, 99900, undef, undef, undef, 'i' ], 0, 'products_active_price' ],
    # a common one walks the id order on the covering index (sql/031)
    [ 'a common min_price, by id', [ undef, 1000, undef, undef, undef, 'i' ], 0, 'products_active_id_price' ],
    [ 'min_price by price', [ undef, 50000, undef, undef, undef, 'p' ], 0, 'products_active_price' ],
    [ 'a low max_price, newest', [ undef, undef, 150, undef, undef, 'n' ], 0, 'products_active_price' ],
    [ 'a price range by price descending', [ undef, 1000, 2000, undef, undef, 'd' ] ],
    [ 'in stock, by id', [ undef, undef, undef, 'true', undef, 'i' ] ],
    [ 'sold out, by id', [ undef, undef, undef, 'false', undef, 'i' ] ],
    [ 'sold out, by rating', [ undef, undef, undef, 'false', undef, 'r' ] ],
    # by id, a rare word may still walk products_active_id: PostgreSQL's
    # guess of a word's frequency is poor on this data set (every name and
    # description holds the same few words), see README, Tuning
    [ 'a rare whole word by id', [ undef, undef, undef, undef, 'lantern ', 'i' ] ],
    [ 'a common word by price', [ undef, undef, undef, undef, 'lamp', 'p' ] ],
    [ 'category, max_price and q', [ 'cat-3', undef, 5000, undef, 'chair', 'i' ] ],
);
for my $case (@page_cases) {
    my ($what, $f, $fuzzy, $index) = @$case;
    my ($cat, $min, $max, $stock, $q, $sort) = @$f;
    # $1 is the subtree's ids, as ecom_products_page reads them
    my $ids = defined $cat ? db('SELECT ecom_category_subtree(' . literal($cat) . ')') : undef;
    my $sql = db(sprintf('SELECT ecom_products_ids_sql(%s, %s, %s, %s, %s, %s, %s)',
                         defined $cat ? 'true' : 'false', defined $min ? 'true' : 'false',
                         defined $max ? 'true' : 'false', literal($stock) eq 'NULL' ? 'NULL' : "'$stock'::boolean",
                         defined $q ? 'true' : 'false', $fuzzy ? 'true' : 'false', literal($sort)));
    ok $sql =~ /\bLIMIT \$9\z/, "page SQL ($what) is written and ends in LIMIT \$9" or next;
    my $json = db("PREPARE s $TYPES AS $sql; EXPLAIN (FORMAT JSON) EXECUTE s("
                  . join(', ', map { literal($_) } $ids, $min, $max, $stock, $q, $sort, undef, undef, 21) . ')');
    check_plan("page ($what)", $json, $index, 1);
}
# relevance in tiers (sql/032): ecom_products_tiers runs the SQL of tier 2
# (every word in the name), then of tier 1 if the page is not full, each
# planned for the words; each must read about a page of rows and never
# sort every match (ts_rank did: every match ranked per page). Run, not
# only planned. 'plan' is in every name (tier 2 walks the ids), 'lamp' in
# every description and no name (tier 2 must learn from
# products_search_name's statistics that it holds nothing, not walk every
# id for nothing; tier 1 walks), 'lantern' in two names. Names also hold
# one of 300 words (w0 to w299), so their statistics have the spread of a
# real catalog's.
like db("SELECT ecom_products_ids_sql(false, false, false, NULL, true, false, 's')"), qr/ecom_products_tiers\(/,
    'relevance: the page runs the tiers';
for my $case ([ 'a word in every name', 'plan', 2 ],
              [ 'a word in every description and no name', 'lamp', 2, 'products_search_name' ],
              [ 'a word in every description and no name', 'lamp', 1 ],
              [ 'a word in two names', 'lantern', 2, 'products_search_name' ],
              [ 'a word in two names, as a whole word', 'lantern ', 2, 'products_search_name' ]) {
    my ($what, $q, $tier, $index) = @$case;
    my $sql = db("SELECT ecom_products_tier_sql(false, false, false, NULL, $tier)");
    my $json = db("PREPARE s $TYPES AS $sql; EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE s(NULL, NULL, NULL, NULL, "
                  . literal($q) . ", NULL, NULL, NULL, 21)");
    my $plan = eval { JSON::PP->new->decode($json)->[0]{Plan} };
    ok $plan, "tier $tier, $what: EXPLAIN ANALYZE gives a plan" or do { diag $json; next };
    my $w = plan_work($plan);
    ok $w->{read} <= 1000, "tier $tier, $what: the first page reads $w->{read} rows of products (at most 1,000 of 30,000)";
    ok $w->{sorted} <= 100, "tier $tier, $what: no sort of every match (the largest sort: $w->{sorted} rows)";
    if ($index) {
        my $scans = scans($plan, []);
        ok grep({ $_->[2] eq $index } @$scans), "tier $tier, $what: reads $index"
            or diag join('; ', map { "@$_" } @$scans);
    }
}
# a price bound by id filters on the index entries alone (sql/031: the
# covering products_active_id_price), reading no row it does not list
{
    my $sql = db("SELECT ecom_products_ids_sql(false, true, false, NULL, false, false, 'i')");
    my $json = db("PREPARE s $TYPES AS $sql; EXPLAIN (FORMAT JSON) EXECUTE s(NULL, 1000, NULL, NULL, NULL, 'i', NULL, NULL, 21)");
    my $scans = scans(JSON::PP->new->decode($json)->[0]{Plan}, []);
    ok grep({ $_->[0] eq 'Index Only Scan' && $_->[2] eq 'products_active_id_price' } @$scans),
        'a common min_price by id: an index-only walk of products_active_id_price'
        or diag join('; ', map { "@$_" } @$scans);
}
# sql/014's ecom_products_page, which builds before sql/031 call, lists the
# rows of ecom_products_ids' page, in its order
for my $args ("'cat-3', NULL, 5000, NULL, 'chair', 'i', NULL, NULL, 21",
              "NULL, 1000, NULL, false, NULL, 'p', NULL, NULL, 21") {
    my $ids = db("SELECT array(SELECT x.id FROM ecom_products_ids($args) x)");
    isnt $ids, '{}', "ecom_products_ids($args) has a page";
    is db("SELECT array(SELECT x.id FROM ecom_products_page($args) x)"), $ids,
        "ecom_products_page($args) lists the same products";
}
# the filters that are off are not in the SQL at all
my $bare = db("SELECT ecom_products_ids_sql(false, true, false, NULL, false, false, 'i')");
unlike $bare, qr/\$1|\$3|\$5|search|category_id = ANY/, 'a page with min_price only has no other filter in its SQL';
like $bare, qr/p\.price >= \$2/, '... and has the min_price condition';

done_testing;
