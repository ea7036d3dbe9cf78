#!/usr/bin/perl
# q pages from static statements (issue 8, sql/034): ecom_products_q
# chooses, per relevance tier, an id walk (a common word) or the GIN index
# (a rare one) from the search terms' document frequencies
# (search_lexemes), instead of planning each page.
#   - the same pages as the planned path (sql/032's tiers through
#     ecom_products_ids), walked page by page, for a common word, a rare
#     one, a word in a few names and many descriptions (the pages cross
#     from tier 2 to tier 1), a word only in descriptions, a prefix and a
#     typo (the typo-tolerant fallback), with and without in_stock; and the
#     same again with the counts emptied and with them inflated, so that
#     every tier runs its other statement: stale counts never change a page;
#   - the plans each gets (auto_explain of the function's statements,
#     EXPLAIN ANALYZE): the name tier reads the driving term's postings
#     (sql/038) and about a page of products, none scans products
#     sequentially;
#   - the names' postings equal a recount after inserts, a rename, a new
#     description, a deactivation, a stock change and a delete;
#   - over HTTP: ?q= alone and with in_stock lists what the planned SQL
#     lists, the watchdog's count ran at start (job_runs), and
#     `ecom-admin search-stats` counts the terms.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $DB = 'ecom_search_static';

my $db = scratch_database($DB);
sub db { $db->(@_) }

# 4,000 products: 'static' in every name, 'lamp' in every description and
# no name, 'lantern' in two names, 'gadget' in 20 names and about 300
# descriptions (a walk crosses from tier 2 to tier 1), w0 to w299 in the
# names (13 each); one in 7 sold out, one in 50 inactive
db(<<'SQL');
INSERT INTO products (sku, name, description, price, currency, stock, active)
SELECT 'QS-' || g,
       'Static item ' || g || ' w' || g % 300
           || CASE WHEN g IN (77, 3777) THEN ' lantern' ELSE '' END
           || CASE WHEN g % 200 = 5 THEN ' gadget' ELSE '' END,
       'A lamp for the table' || CASE WHEN g % 13 = 0 THEN ', a gadget' ELSE '' END,
       100 + (g * 37) % 100000, 'GBP', (g % 7) * 3, g % 50 <> 0
  FROM generate_series(1, 4000) g;
ANALYZE products;
ANALYZE search_name_postings;
SQL
db('VACUUM products');
is db('SELECT ecom_search_lexemes_refresh() > 0'), 't', 'the terms are counted';
is db("SELECT nname || ' ' || ndoc FROM search_lexemes WHERE lexeme = 'lantern'"), '2 2',
    'a term counts its products in the name and anywhere';
is db("SELECT nname || ' ' || ndoc FROM search_lexemes WHERE lexeme = 'lamp'"), '0 3920',
    '... a word only in descriptions: 0 names (active products only)';
is db("SELECT nproducts FROM search_lexemes_meta"), 3920, 'the active products are counted';
is db("SELECT nname || ' ' || ndoc FROM ecom_search_estimate(ecom_search_query('static lantern'), 3920)"), '2 2',
    'two words are estimated as independent: every name and two names, 2';
is db("SELECT nname || ' ' || ndoc FROM ecom_search_estimate(ecom_search_query('gadg'), 3920)"),
    db("SELECT count(*) FILTER (WHERE name ~ 'gadget') || ' ' || count(*) FROM products WHERE active AND search @@ 'gadget'"),
    'a prefix sums the lexemes it starts';
is db("SELECT nname || ' ' || ndoc FROM ecom_search_estimate(ecom_search_query('lantern stati'), 3920)"), '2 2',
    'a prefix with a whole word: as independent';
is db("SELECT nname || ' ' || ndoc FROM ecom_search_estimate(ecom_search_query('static nosuchpref'), 3920)"), '0 0',
    'a prefix that starts no lexeme counts 0, whatever the other words';
is db("SELECT nname || ' ' || ndoc FROM ecom_search_estimate(ecom_search_query('nosuchword'), 3920)"), '0 0',
    'a word the counts do not know is taken as rare';

# the words as a tsquery (sql/014, PL/pgSQL since sql/037): all required,
# stemmed, the last a prefix unless q ends in a space
is db("SELECT ecom_search_query('Red  MUGS')::text"), "'red' & 'mug':*", 'words ANDed, stemmed, the last a prefix';
is db("SELECT ecom_search_query('red mugs ')::text"), "'red' & 'mug'", '... no prefix after a trailing space';
is db("SELECT ecom_search_query('o''brien-x')::text"), "'o' & 'brien' & 'x':*", '... words are runs of letters and digits';
is db("SELECT ecom_search_query(' -- ') IS NULL AND ecom_search_query('') IS NULL"), 't',
    '... no word: NULL';
is db("SELECT numnode(ecom_search_query('the of'))"), 0, '... stop words only: an empty query';

# --- the same pages as the planned path ---------------------------------------
# walk(new, q, in_stock, limit): every page in order, each row tier:id,
# joined; the planned path is ecom_products_ids (sql/031, sql/032's tiers)
db(<<'SQL');
CREATE FUNCTION qs_walk(p_new boolean, p_q text, p_stock boolean, p_limit int)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE k1 bigint; k2 bigint; acc text := ''; r record; n int;
BEGIN
    FOR i IN 1..2000 LOOP
        n := 0;
        FOR r IN SELECT x.id, x.rk FROM ecom_products_q(p_stock, p_q, k1, k2, p_limit) x WHERE p_new
                 UNION ALL
                 SELECT x.id, x.rk FROM ecom_products_ids(NULL, NULL, NULL, p_stock, p_q, 's', k1, k2, p_limit) x
                  WHERE NOT p_new LOOP
            acc := acc || r.rk || ':' || r.id || ' ';
            k1 := r.rk; k2 := r.id; n := n + 1;
        END LOOP;
        EXIT WHEN n < p_limit;
    END LOOP;
    RETURN acc;
END $$;
SQL
my @words = ([ 'a common word', 'static' ], [ 'a rare word', 'lantern' ],
             [ 'a word in few names and many descriptions', 'gadget' ],
             [ 'a word only in descriptions', 'lamp' ], [ 'a prefix', 'gadg' ],
             [ 'two words', 'gadget w5' ], [ 'a middling word, whole', 'w7 ' ],
             [ 'a typo (the fallback)', 'lanternn' ]);
my %planned;
for my $w (@words) {
    my ($what, $q) = @$w;
    for my $stock ('NULL', 'true', 'false') {
        my $args = literal($q) . ", $stock, 9";
        $planned{"$q|$stock"} = db("SELECT qs_walk(false, $args)");
    }
}
# the pages are not empty where they should not be: the comparison means something
like $planned{'static|NULL'}, qr/\A(?:2:\d+ ){3920}\z/, 'the planned walk of a common word lists every active product, tier 2';
like $planned{'gadget|NULL'}, qr/\A(?:2:\d+ ){19,20}(?:1:\d+ ){280,302}\z/, '... of gadget: names first, then descriptions';
like $planned{'lamp|true'}, qr/\A(?:1:\d+ ){3000,}\z/, '... of lamp, in stock: tier 1 only';
like $planned{'lanternn|NULL'}, qr/\A\d+:\d+ /, '... of a typo: the fallback finds the word';
for my $counts ([ 'counted', 'SELECT ecom_search_lexemes_refresh()' ],
                [ 'emptied (every tier reads GIN)', 'DELETE FROM search_lexemes' ],
                [ 'inflated (every tier walks the ids)',
                  'INSERT INTO search_lexemes SELECT w, 1000000000, 1000000000 FROM unnest(ARRAY['
                  . "'static', 'lantern', 'gadget', 'lamp', 'w5', 'w7', 'lanternn']) w; "
                  . 'UPDATE search_lexemes_meta SET nproducts = 3920' ]) {
    my ($how, $sql) = @$counts;
    db($sql);
    for my $w (@words) {
        my ($what, $q) = @$w;
        for my $stock ('NULL', 'true', 'false') {
            my $got = db('SELECT qs_walk(true, ' . literal($q) . ", $stock, 9)");
            ok $got eq $planned{"$q|$stock"}, "counts $how: $what ($q), in_stock $stock: the same pages as the planned path"
                or diag "static:  " . substr($got, 0, 300) . "\nplanned: " . substr($planned{"$q|$stock"}, 0, 300);
        }
    }
}
db('SELECT ecom_search_lexemes_refresh()');
# a share of in-stock products counted wrong makes the postings' batches
# too small for sold-out pages (sql/038): several rounds per page, the same pages
db('UPDATE search_lexemes_meta SET nsold_out = nproducts');
ok db("SELECT qs_walk(true, 'static', false, 9)") eq $planned{'static|false'},
    'batches too small (every product counted as sold out): several rounds a page, the same pages';
ok db("SELECT qs_walk(true, 'gadget w5', false, 2)") eq db("SELECT qs_walk(false, 'gadget w5', false, 2)"),
    '... and for two words';
db('SELECT ecom_search_lexemes_refresh()');

# --- the plans: about a page of rows, never the catalog ---------------------------
# auto_explain logs each statement the function runs, with its actual rows:
# those that read products
sub q_plans {
    my ($sql) = @_;
    return grep { $_->{'Query Text'} =~ /\bFROM (?:products p|search_name_postings s)\b/ } nested_plans($DB, $sql);
}
for my $case (
    # what, q, in_stock, at most rows of products read; the name tier
    # (tier 2) reads the driving term's postings (sql/038) in every case
    [ 'a common word', 'static', 'NULL', 40 ],
    [ 'a common word, in stock', 'static', 'true', 40 ],
    [ 'a rare word', 'lantern', 'NULL', 40 ],
    [ 'a rare word, sold out', 'lantern', 'false', 40 ],
    [ 'a word in few names and many descriptions', 'gadget', 'NULL', 200 ],
    [ 'a word only in descriptions', 'lamp', 'NULL', 40 ],
    [ 'two words', 'gadget w5', 'NULL', 40 ]) {
    my ($what, $q, $stock, $max) = @$case;
    my @plans = q_plans('SELECT count(*) FROM ecom_products_q(' . "$stock, " . literal($q) . ', NULL, NULL, 21)');
    ok scalar @plans, "$what: the function's statements are explained" or next;
    my $w = { read => 0, sorted => 0, scans => [], relation => 'products' };
    plan_work($_->{Plan}, $w) for @plans;
    my $scans = join '; ', @{ $w->{scans} };
    unlike $scans, qr/Seq Scan/, "$what: no sequential scan ($scans)";
    like $scans, qr/search_name_postings_pkey/, "$what: the name tier reads the postings";
    ok $w->{read} <= $max, "$what: the first page reads $w->{read} rows of products (at most $max of 4,000)";
    ok $w->{sorted} <= 320, "$what: no sort of more than the word's matches ($w->{sorted} rows)";
}
# the guards above can fail: a page of the sold-out among every name reads
# about 7 rows per row kept, and unknown counts make tier 1 read a common
# word's matches from GIN and sort them all
{
    my $w = { read => 0, sorted => 0, scans => [], relation => 'products' };
    plan_work($_->{Plan}, $w) for q_plans("SELECT count(*) FROM ecom_products_q(false, 'static', NULL, NULL, 21)");
    ok $w->{read} > 100, "the sold-out page of a word in every name reads $w->{read} rows: the read guard can fail";
    db("DELETE FROM search_lexemes WHERE lexeme = 'lamp'");
    $w = { read => 0, sorted => 0, scans => [] };
    plan_work($_->{Plan}, $w) for q_plans("SELECT count(*) FROM ecom_products_q(NULL, 'lamp', NULL, NULL, 21)");
    ok $w->{sorted} > 3000, "unknown counts make a common word sort its matches ($w->{sorted} rows): the sort guard can fail";
    db('SELECT ecom_search_lexemes_refresh()');
}

# --- the names' postings (sql/038) are exact after every kind of write ----------------
{
    my $diff = "SELECT count(*) FROM ((SELECT lexeme, product_id FROM search_name_postings "
        . "EXCEPT SELECT u, p.id FROM products p, unnest(ecom_name_lexemes(p.search)) u) "
        . "UNION ALL (SELECT u, p.id FROM products p, unnest(ecom_name_lexemes(p.search)) u "
        . "EXCEPT SELECT lexeme, product_id FROM search_name_postings)) d";
    is db($diff), 0, 'the postings list every name lexeme of every product, and nothing else';
    ok db("SELECT count(*) FROM search_name_postings WHERE lexeme = 'lantern'") == 2, '... lantern: its two products';
    db(<<'SQL');
INSERT INTO products (sku, name, description, price, currency, stock)
VALUES ('QS-P1', 'Brass lantern hook', 'for a wall', 500, 'GBP', 3),
       ('QS-P2', 'Copper kettle', 'a lantern shape', 700, 'GBP', 0);
UPDATE products SET name = 'Static item 77 w77 teapot' WHERE sku = 'QS-77';
UPDATE products SET description = 'a lantern for the shelf' WHERE sku = 'QS-78';
UPDATE products SET active = false WHERE sku = 'QS-3777';
UPDATE products SET stock = stock + 1 WHERE sku = 'QS-79';
DELETE FROM products WHERE sku = 'QS-80';
SQL
    is db($diff), 0, '... after inserts, a rename, a new description, a deactivation, a stock change and a delete';
    is db("SELECT string_agg(p.sku, ',' ORDER BY p.sku) FROM search_name_postings s JOIN products p ON p.id = s.product_id "
          . "WHERE s.lexeme = 'lantern'"), 'QS-3777,QS-P1',
        '... lantern: the new product and the inactive one (the page filters on active), not the renamed one';
    is db("SELECT count(*) FROM search_name_postings s WHERE s.product_id = (SELECT id FROM products WHERE sku = 'QS-80')"), 0,
        '... and nothing of the deleted product';
    is db("SELECT string_agg(id::text, ',') FROM ecom_products_q(NULL, 'lantern', NULL, NULL, 21)"),
        db("SELECT string_agg(id::text, ',') FROM ecom_products_ids(NULL, NULL, NULL, NULL, 'lantern', 's', NULL, NULL, 21)"),
        '... and q=lantern lists what the planned path lists';
    is db("SELECT ecom_name_term_lexemes('w29', true, 64)::text"), '{w29,w290,w291,w292,w293,w294,w295,w296,w297,w298,w299}',
        'a prefix: the lexemes it starts, in order';
    is db("SELECT ecom_name_term_lexemes('w', true, 64) IS NULL"), 't', '... NULL past the cap (sql/034 reads it then)';
    is db("SELECT ecom_name_term_lexemes('zzz', true, 64)::text"), '{}', '... none: an empty list';
    is db("SELECT ecom_name_term_lexemes('lamp', false, 64)::text"), '{lamp}', '... a whole word: itself';
}

sub literal {
    my ($v) = @_;
    return 'NULL' unless defined $v;
    $v =~ s/'/''/g;
    return "'$v'";
}

# --- over HTTP ----------------------------------------------------------------------
{
    my @cons = qw(b c d f g h j k l m n p r t v w x z);
    my $tag = 'zq' . join '', map { $cons[rand @cons] } 1 .. 9;
    my @made;
    push @made, create_product(name => "Stool $tag $_", description => 'oak', stock => $_ % 3) for 1 .. 4;
    push @made, create_product(name => "Shelf $_", description => "with a $tag", stock => $_ % 2) for 1 .. 3;
    # the planned path's pages, from SQL on the server's database
    for my $stock (undef, 'true', 'false') {
        my $want = psql_value('SELECT string_agg(x.id::text, \',\' ORDER BY o) FROM ecom_products_ids(NULL, NULL, NULL, '
                              . ($stock // 'NULL') . ", '$tag', 's', NULL, NULL, 50) WITH ORDINALITY x(id, rk, o)");
        my @ids;
        my $url = "/products/?q=$tag&limit=2" . (defined $stock ? "&in_stock=$stock" : '');
        my $cursor;
        for (1 .. 10) {
            my $r = api(GET => $url . (defined $cursor ? '&cursor=' . $cursor : ''));
            is $r->{status}, 200, "GET $url: 200" or last;
            push @ids, map { $_->{id} } @{ $r->{json}{items} };
            $cursor = $r->{json}{next_cursor} or last;
        }
        ok length $want, 'the planned path lists products' ;
        is join(',', @ids), $want, "q=tag" . (defined $stock ? ", in_stock=$stock" : '') . ': the same pages as the planned SQL';
    }
    my $typo = substr($tag, 0, 10) . 'a';
    my $r = api(GET => "/products/?q=$typo&limit=50");
    is $r->{status}, 200, 'a typo answers 200';
    ok grep({ $_->{id} == $made[0]{id} } @{ $r->{json}{items} // [] }), '... and the fallback finds the product by a similar word';
    my $bad = api(GET => '/products/?q=' . ('x' x 201));
    is $bad->{status}, 400, 'a q of more than 200 bytes is 400, not a 5xx';
}
# the watchdog counted the terms (asked every 30 s, claimed once an hour)
{
    my $runs = 0;
    for (1 .. 90) {
        $runs = psql_value("SELECT count(*) FROM job_runs WHERE job = 'search stats'");
        last if $runs > 0;
        select undef, undef, undef, 0.5;
    }
    ok $runs >= 1, "the watchdog's search statistics job ran ($runs runs recorded)";
    # ... and counted (claimed is not done: a statement timeout once
    # cancelled the count after its claim)
    my $counted = 'f';
    for (1 .. 40) {
        $counted = psql_value("SELECT refreshed_at >= (SELECT max(started_at) FROM job_runs "
                              . "WHERE job = 'search stats') FROM search_lexemes_meta");
        last if $counted eq 't';
        select undef, undef, undef, 0.5;
    }
    is $counted, 't', '... and counted the terms after its claim';
}
# ecom-admin search-stats
{
    local $ENV{PGDATABASE} = $DB;
    db("DELETE FROM search_lexemes");
    my $out = `bash @{[ ecom_root() ]}/scripts/ecom-admin search-stats 2>/dev/null`;
    is $?, 0, 'ecom-admin search-stats succeeds';
    like $out, qr/\A\d+\n\z/, '... and prints the number of lexemes';
    is db("SELECT nname FROM search_lexemes WHERE lexeme = 'lantern'"),
        db("SELECT count(*) FROM products WHERE active AND ts_filter(search, '{a}') @@ 'lantern'"),
        '... which are counted again';
}

done_testing;
