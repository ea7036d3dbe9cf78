#!/usr/bin/perl
# A price range without planning per request (sql/033, issue 8): the
# products counted per price band, ecom_products_price_ids' pages (the id
# walk or one walk per band) equal to the plain SQL's for every kind of
# range and cursor, the rows they read bounded by the bands rather than the
# catalog, the counts kept exact by every write, and the API's pages of a
# price range alone in every order walked to the end.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $DB = 'ecom_bands';
my $db = scratch_database($DB);
sub db { $db->(@_) }

# --- the bands ------------------------------------------------------------------
is db('SELECT ecom_price_band(0)::text || ecom_price_band(1)'), '01', 'price 0 is band 0, 1 minor unit band 1';
is db("SELECT count(*) FROM generate_series(0, 200000) p WHERE ecom_price_band(p) < ecom_price_band(p - 1)"), 0,
    'bands never go down as the price goes up (0 to 200,000)';
is db("SELECT max(b1.top::float8 / b1.bot) <= 1.13 FROM (SELECT x AS bot, lead(x) OVER (ORDER BY x) AS top "
      . "FROM unnest(ecom_price_band_bottoms()) x) b1 WHERE b1.top IS NOT NULL AND b1.bot >= 100"), 't',
    'from 1.00 up, a band\'s top is at most 1.13 times its bottom';
is db('SELECT ecom_price_band(1000000000000) = ecom_price_band(1000000000000000)'), 't',
    'every price from 10^12 up is in the last band';

# --- a catalog with a skew: the first 3,000 products cheap (as the demo's are
# the first and cheapest of the million-product catalog), then 27,000 spread
# evenly on a log scale from 1.00 to 1,000.00, a few free, 2 % inactive, one
# price held by 40 products
db(<<'SQL');
INSERT INTO products (sku, name, price, currency, stock, active)
SELECT 'BAND-' || g, 'Band product ' || g,
       CASE WHEN g <= 3000 THEN 40 + (g * 37) % 960
            WHEN g % 997 = 0 THEN 0
            WHEN g % 701 = 0 THEN 12345
            ELSE round(100 * power(1000, ((g * 7919) % 10007) / 10007.0))::bigint END,
       'GBP', g % 5, g % 50 <> 0
  FROM generate_series(1, 30000) g ORDER BY g;
ANALYZE products;
SQL
db('VACUUM products');
is db('SELECT count(*) FROM (SELECT band, n FROM product_price_bands WHERE n > 0 EXCEPT '
      . 'SELECT ecom_price_band(price), count(*) FROM products WHERE active GROUP BY 1) d'), 0,
    'the counts per band equal a recount after 30,000 inserts';
my $first = db('SELECT min(id) FROM products');
my $mid = $first + 15000;
my $late = $first + 29000;

# --- every page equals the plain SQL's ----------------------------------------
my @ranges = ([undef, undef], [0, 0], [undef, 0], [1, 1], [40, 40], [100, 100], [12345, 12345],
              [12345, 12400], [12300, 12345], [1000, 1100], [40000, undef], [undef, 100], [99, 101],
              [100001, undef], [5, 3], [0, 1000000000000000], [10000, 10000], [9999, 10001],
              [50000, 60000], [200, 50000], [89126, 89126], [60000, undef], [undef, 1000]);
# one statement compares every case: each range in both orders from four
# cursors with three limits
my $vals = join(', ', map { '(' . join(', ', map { defined $_ ? "$_\::bigint" : 'NULL::bigint' } @$_) . ')' } @ranges);
my $bad = db(<<"SQL");
SELECT coalesce(string_agg(format('[%s, %s] newest=%s after=%s limit=%s', r.lo, r.hi, o.newest, a.after, l.n), E'\n'), '')
  FROM (VALUES $vals) r(lo, hi)
 CROSS JOIN (VALUES (false), (true)) o(newest)
 CROSS JOIN (VALUES (NULL::bigint), ($mid), ($late), ($first + 2000)) a(after)
 CROSS JOIN (VALUES (1), (21), (101)) l(n)
 WHERE array(SELECT x.id FROM ecom_products_price_ids(r.lo, r.hi, o.newest, a.after, l.n) x)
       IS DISTINCT FROM
       CASE WHEN o.newest
            THEN array(SELECT p.id FROM products p WHERE p.active AND p.price >= coalesce(r.lo, 0)
                          AND p.price <= coalesce(r.hi, 9223372036854775807)
                          AND p.id < coalesce(a.after, 9223372036854775807) ORDER BY p.id DESC LIMIT l.n)
            ELSE array(SELECT p.id FROM products p WHERE p.active AND p.price >= coalesce(r.lo, 0)
                          AND p.price <= coalesce(r.hi, 9223372036854775807)
                          AND p.id > coalesce(a.after, 0) ORDER BY p.id LIMIT l.n) END
SQL
is $bad, '', scalar(@ranges) . ' ranges x both orders x 4 cursors x 3 limits: every page equals the plain SQL\'s';

# --- a category's subtree with a price range (ecom_products_cat_price_ids):
# the same pages, whether its walks or the planned page serve them
db(<<'SQL');
INSERT INTO categories (slug, name) VALUES ('band-a', 'Band A'), ('band-b', 'Band B');
INSERT INTO categories (slug, name, parent_id) SELECT 'band-a1', 'Band A1', id FROM categories WHERE slug = 'band-a';
UPDATE products SET category_id = (SELECT id FROM categories
                                    WHERE slug = (ARRAY['band-a', 'band-a1', 'band-b'])[1 + id % 3])
 WHERE id % 4 <> 0;
ANALYZE products;
SQL
my $cbad = db(<<"SQL");
SELECT coalesce(string_agg(format('%s [%s, %s] newest=%s after=%s', c.slug, r.lo, r.hi, o.newest, a.after), E'\n'), '')
  FROM (VALUES ('band-a'), ('band-a1'), ('band-b'), ('no-such')) c(slug)
 CROSS JOIN (VALUES (NULL::bigint, 1000::bigint), (12345, 12345), (60000, NULL), (NULL, NULL), (100, 50000)) r(lo, hi)
 CROSS JOIN (VALUES (false), (true)) o(newest)
 CROSS JOIN (VALUES (NULL::bigint), ($mid)) a(after)
 -- the subtree once per case (OFFSET 0: not pulled up into the plain SQL,
 -- where it was computed again for every product row it filtered: 8.8 s)
 CROSS JOIN LATERAL (SELECT ecom_category_subtree(c.slug) AS ids OFFSET 0) t
 WHERE array(SELECT x.id FROM ecom_products_cat_price_ids(c.slug, r.lo, r.hi, o.newest, a.after, 21) x)
       IS DISTINCT FROM
       CASE WHEN o.newest
            THEN array(SELECT p.id FROM products p WHERE p.active AND p.category_id = ANY (t.ids)
                          AND p.price >= coalesce(r.lo, 0) AND p.price <= coalesce(r.hi, 9223372036854775807)
                          AND p.id < coalesce(a.after, 9223372036854775807) ORDER BY p.id DESC LIMIT 21)
            ELSE array(SELECT p.id FROM products p WHERE p.active AND p.category_id = ANY (t.ids)
                          AND p.price >= coalesce(r.lo, 0) AND p.price <= coalesce(r.hi, 9223372036854775807)
                          AND p.id > coalesce(a.after, 0) ORDER BY p.id LIMIT 21) END
SQL
is $cbad, '', 'a category (a leaf, a parent, none) with 5 ranges, both orders, 2 cursors: every page equals the plain SQL\'s';

# --- what a page reads: the nested statements' plans (auto_explain, as
# postgres), rows of products read by every scan (with those its filters
# removed: the counts' table holds one row per band, not the catalog) and
# the largest sort
for my $case (
    # what, range, newest, at most this many rows read
    [ 'a common range (max_price=1000: the cheap first products)', 'NULL, 1000', 'false', 100 ],
    [ 'a range the first 3,000 products miss (min_price=60000): per band, not the id walk', '60000, NULL', 'false', 400 ],
    [ 'the same, newest first', '60000, NULL', 'true', 400 ],
    [ 'one price held by 40 products: a part of one band, read from the price index', '12345, 12345', 'false', 200 ],
    [ 'a narrow range inside one band', '12300, 12345', 'true', 300 ],
    [ 'a range above every price', '100001, NULL', 'false', 10 ],
    [ 'a range over many bands', '150, 90000', 'false', 100 ]) {
    my ($what, $range, $newest, $most) = @$case;
    my @plans = nested_plans($DB, "SELECT count(*) FROM ecom_products_price_ids($range, $newest, NULL, 21)");
    ok @plans >= 2, "$what: the function's statements are seen (" . scalar(@plans) . ')' or next;
    my $w = { read => 0, sorted => 0, scans => [], relation => 'products' };
    plan_work($_->{Plan}, $w) for @plans;
    my $scans = join '; ', @{ $w->{scans} };
    ok $w->{read} <= $most, "$what: reads $w->{read} rows of 30,000 (at most $most)" or diag $scans;
    ok $w->{sorted} <= 2000, "$what: sorts at most 2,000 rows ($w->{sorted})";
    unlike $scans, qr/Seq Scan products\b/, "$what: no sequential scan of products";
}

# --- the counts stay exact under every kind of write ----------------------------
db(<<'SQL');
BEGIN;
UPDATE products SET price = price * 3 WHERE id % 7 = 0;
UPDATE products SET active = NOT active WHERE id % 11 = 0;
UPDATE products SET price = 0, active = true WHERE id % 13 = 0;
UPDATE products SET stock = stock + 1 WHERE id % 17 = 0;
DELETE FROM products WHERE id % 19 = 0;
INSERT INTO products (sku, name, price, currency, stock, active)
SELECT 'BAND-NEW-' || g, 'New band product ' || g, g * 101, 'GBP', 1, g % 3 <> 0
  FROM generate_series(1, 500) g;
COMMIT;
SQL
my $recount = 'SELECT count(*) FROM ((SELECT band, n FROM product_price_bands WHERE n > 0 EXCEPT '
    . 'SELECT ecom_price_band(price), count(*) FROM products WHERE active GROUP BY 1) UNION ALL '
    . '(SELECT ecom_price_band(price), count(*) FROM products WHERE active GROUP BY 1 EXCEPT '
    . 'SELECT band, n FROM product_price_bands)) d';
is db($recount), 0, 'the counts equal a recount after price moves, (de)activations, deletes and inserts';
# concurrent single-product moves in opposite directions between the same
# bands (the trigger touches the lower band first: no deadlock)
my @ids = split /\n/, db("SELECT id FROM products WHERE active AND price BETWEEN 1000 AND 2000 ORDER BY id LIMIT 80");
my @res = parallel(8, 1, sub {
    my ($i) = @_;
    local $ENV{PGDATABASE} = $DB;
    my $errors = 0;
    for my $k (0 .. 9) {
        my $id = $ids[$i * 10 + $k];
        my $price = ($i + $k) % 2 ? 5000 : 100;
        my $ok = eval { psql_value("UPDATE products SET price = $price WHERE id = $id"); 1 };
        $errors++ unless $ok;
        $ok = eval { psql_value("UPDATE products SET price = " . ($price == 100 ? 5000 : 100) . " WHERE id = $id"); 1 };
        $errors++ unless $ok;
    }
    return { errors => $errors };
});
is_deeply [ map { $_->{errors} } @res ], [ (0) x 8 ], '8 sessions moving products both ways between two bands: no error';
is db($recount), 0, '... and the counts equal a recount';
is db('SELECT count(*) FROM product_price_bands WHERE n < 0'), 0, 'no band counts below zero';

# --- a wrong count costs time, never a product ------------------------------------
db('UPDATE product_price_bands SET n = 0');
my $full = db('SELECT array(SELECT id FROM products WHERE active AND price >= 60000 ORDER BY id LIMIT 21)');
is db('SELECT array(SELECT id FROM ecom_products_price_ids(60000, NULL, false, NULL, 21))'), $full,
    'with every count 0 the page is still complete';
db('UPDATE product_price_bands SET n = 1000000');
is db('SELECT array(SELECT id FROM ecom_products_price_ids(60000, NULL, false, NULL, 21))'), $full,
    'with every count far too high, too';

# --- through the API: a price range alone, every order, walked to the end ---
my @mine;
for my $i (1 .. 12) {
    my $p = create_product(name => "Band walk $i", price => 733000 + $i * 7, stock => $i % 3);
    push @mine, $p->{id} if $p && $p->{id};
}
is scalar(@mine), 12, '12 products priced 7,330.07 to 7,330.84';
for my $sort ('id', 'newest', 'price', '-price') {
    for my $f ([ 'min_price=733000&max_price=733999', 12 ], [ 'min_price=733015&max_price=733070', 8 ],
               [ 'min_price=733000&max_price=733000', 0 ]) {
        my ($filter, $n) = @$f;
        my (@seen, $cursor, $pages);
        while (1) {
            my $r = api(GET => "/products/?$filter&sort=$sort&limit=5" . ($cursor ? "&cursor=$cursor" : ''));
            last unless is $r->{status}, 200, "sort=$sort, $filter: page " . ($pages // 0) . ' answers 200';
            push @seen, grep { $_->{list_price} >= 733000 && $_->{list_price} <= 733999 } @{ $r->{json}{items} // [] };
            last if ++$pages > 10 || !($cursor = $r->{json}{next_cursor});
        }
        my @want = map { $_->{id} } @seen;
        my @order = $sort eq 'id' ? sort { $a <=> $b } @want
            : $sort eq 'newest' ? sort { $b <=> $a } @want
            : map { $_->{id} } sort { $sort eq 'price' ? $a->{list_price} <=> $b->{list_price} || $a->{id} <=> $b->{id}
                                                        : $b->{list_price} <=> $a->{list_price} || $a->{id} <=> $b->{id} } @seen;
        is scalar(@seen), $n, "sort=$sort, $filter: all $n products, once each";
        is_deeply \@want, \@order, "sort=$sort, $filter: in order";
    }
}
# a category and a price range through the API, by id and newest
{
    my $slug = 'band-walk-' . uniq();
    my $c = api(POST => '/categories/', token => scalar staff_token(), body => { slug => $slug, name => 'Band walk' });
    is $c->{status}, 201, 'a category for the walk';
    my @in;
    for my $i (1 .. 7) {
        my $p = create_product(name => "Band walk cat $i", price => 733100 + $i, stock => 1, category => $slug);
        push @in, $p->{id};
    }
    create_product(name => 'Band walk cat, dearer', price => 733200, stock => 1, category => $slug);
    for my $sort ('id', 'newest') {
        my (@seen, $cursor, $pages);
        while (1) {
            my $r = api(GET => "/products/?category=$slug&min_price=733100&max_price=733199&sort=$sort&limit=3"
                        . ($cursor ? "&cursor=$cursor" : ''));
            last unless is $r->{status}, 200, "category and price, sort=$sort: answers 200";
            push @seen, map { $_->{id} } @{ $r->{json}{items} // [] };
            last if ++$pages > 5 || !($cursor = $r->{json}{next_cursor});
        }
        is_deeply \@seen, [ $sort eq 'id' ? @in : reverse @in ], "category and price, sort=$sort: the 7 products in order, the dearer one left out";
    }
}
# a cursor of the price order before the range starts: the range's start
{
    my $r = api(GET => '/products/?sort=price&limit=1&max_price=5');
    my $c = $r->{json}{next_cursor};
    SKIP: {
        skip 'no product priced 5 or less in this catalog', 1 unless $c;
        my $p = api(GET => "/products/?sort=price&limit=3&min_price=733000&max_price=733999&cursor=$c");
        is_deeply [ map { $_->{id} } @{ $p->{json}{items} // [] } ], [ @mine[0 .. 2] ],
            'sort=price with a cursor before min_price: the range from its start';
    }
}

done_testing;
