#!/usr/bin/perl
# The demo-data importer (scripts/import-demo.sh) against the test database:
# real UCI Online Retail products, customers and orders; every schema
# constraint holds; a second run gives the same rows (repeatable), and the
# API serves the imported catalog. Runs near the end because it replaces
# the catalog; skipped in the sanitizer pass (it exercises a script, not the
# module) and when the data sets are not beside the checkout.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};
plan skip_all => 'sanitizer pass: the importer is tested in the plain pass' if $ENV{ECOM_SANITIZED};
my $root = ecom_root();
my $data = $ENV{ECOM_DATA_DIR} // "$root/../shared/data";
plan skip_all => "no data sets in $data" unless -r "$data/online-retail/online_retail.csv.xz";

sub import_demo {
    my $out = `bash $root/scripts/import-demo.sh 2>&1`;
    return ($? >> 8, $out);
}
sub snapshot {
    psql_value("SELECT md5(string_agg(id || ':' || sku || ':' || price || ':' || stock || ':' || category_id, ',' ORDER BY id))
                FROM products") . '/' .
    psql_value("SELECT md5(string_agg(id || ':' || slug || ':' || coalesce(parent_id, 0), ',' ORDER BY id)) FROM categories") . '/' .
    psql_value("SELECT count(*) || ':' || sum(total) FROM orders") . '/' .
    psql_value("SELECT count(*) || ':' || sum(line_total) FROM order_lines");
}

my ($rc, $out) = import_demo();
is $rc, 0, 'import-demo.sh succeeds' or diag $out;
like $out, qr/^==> .*\d+ rows/m, 'it reports progress with row counts';
like $out, qr/summary: \d+ products/, 'and a summary';

my $products = psql_value('SELECT count(*) FROM products');
cmp_ok $products, '>', 3000, "thousands of real products ($products)";
# categories: the derived taxonomy (docs/DEMO_DATA.md), no Olist ones without --olist
is psql_value('SELECT count(*) FROM categories'), 31, 'the derived taxonomy: 31 categories';
is psql_value('SELECT count(*) FROM categories WHERE parent_id IS NULL'), 9, '9 of them roots';
is psql_value('SELECT count(*) FROM categories c WHERE parent_id IS NOT NULL
               AND EXISTS (SELECT 1 FROM categories k WHERE k.parent_id = c.id)'), 0, 'two levels only';
is psql_value('SELECT count(*) FROM products WHERE category_id IS NULL'), 0, 'every product has a category';
is psql_value('SELECT count(*) FROM products p WHERE EXISTS (SELECT 1 FROM categories k WHERE k.parent_id = p.category_id)'),
   0, 'and it is a leaf';
my $other = psql_value(q{SELECT count(*) FROM products p JOIN categories c ON c.id = p.category_id WHERE c.slug = 'other'});
cmp_ok $other, '<', 0.1 * psql_value('SELECT count(*) FROM products'), "few fall through to 'other' ($other)";
is psql_value(q{SELECT c.slug FROM products p JOIN categories c ON c.id = p.category_id WHERE p.sku = '85123A'}),
   'home-lighting', 'the T-light holder is filed under candles and lighting (a rule before "hanging" and "heart")';
is psql_value(q{SELECT c.slug FROM products p JOIN categories c ON c.id = p.category_id WHERE p.name = 'PAPER CHAIN KIT 50''S CHRISTMAS'}),
   'seasonal-christmas', 'Christmas comes first';
my $orders = psql_value('SELECT count(*) FROM orders');
cmp_ok $orders, '>', 15000, "real orders imported ($orders)";
cmp_ok psql_value(q{SELECT count(*) FROM users WHERE email LIKE 'customer%@demo.mod-ecom.invalid'}),
    '>=', 4000, 'thousands of demo customers';
is psql_value(q{SELECT count(*) FROM users WHERE email LIKE 'customer%@demo.mod-ecom.invalid'
                AND password_hash LIKE '$argon2id$%'}), 0, 'demo customers have no usable password';
is psql_value('SELECT count(*) FROM orders o WHERE total <> (SELECT sum(line_total) FROM order_lines WHERE order_id = o.id)'),
   0, 'every order total is the sum of its lines';
is psql_value('SELECT count(*) FROM order_lines WHERE line_total <> unit_price * quantity'),
   0, 'every line total is unit price x quantity';
is psql_value(q{SELECT name FROM products WHERE sku = '85123A'}),
   'WHITE HANGING HEART T-LIGHT HOLDER', 'a well-known real product carries its real name';

my $before = snapshot();
($rc, $out) = import_demo();
is $rc, 0, 'a second run succeeds' or diag $out;
is snapshot(), $before, 'and gives exactly the same catalog, orders and lines';

my $list = api(GET => '/products/?limit=5');
is $list->{status}, 200, 'the API lists the imported catalog';
is scalar @{ $list->{json}{items} }, 5, 'five items';
is $list->{json}{items}[0]{currency}, 'GBP', 'priced in GBP minor units';
my $tree = api(GET => '/categories/');
is $tree->{status}, 200, 'the API serves the category tree';
my $sum = 0;
$sum += $_->{product_count} for @{ $tree->{json}{items} || [] };
is $sum, psql_value('SELECT count(*) FROM products WHERE active'), 'the roots count every active product once';
my ($home) = grep { $_->{slug} eq 'home' } @{ $tree->{json}{items} || [] };
my $kids = 0;
$kids += $_->{product_count} for @{ $home->{children} || [] };
is $home->{product_count}, $kids, 'a root counts the products of its leaves';
my ($first) = @{ api(GET => '/products/?category=home&limit=1')->{json}{items} || [] };
like $first->{category} // '', qr/\Ahome-/, '?category=home lists products of its leaves';
my $q = api(GET => '/products/?q=heart&limit=100');
cmp_ok scalar @{ $q->{json}{items} }, '>', 10, 'full-text search finds real products';
ok !(grep { $_->{name} !~ /heart/i } @{ $q->{json}{items} }), 'every hit mentions the word';

done_testing;
