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
    psql_value("SELECT md5(string_agg(id || ':' || sku || ':' || price || ':' || stock, ',' ORDER BY id))
                FROM products") . '/' .
    psql_value("SELECT count(*) || ':' || sum(total) FROM orders") . '/' .
    psql_value("SELECT count(*) || ':' || sum(line_total) FROM order_lines");
}

my ($rc, $out) = import_demo();
is $rc, 0, 'import-demo.sh succeeds' or diag $out;
like $out, qr/^==> .*\d+ rows/m, 'it reports progress with row counts';
like $out, qr/summary: \d+ products/, 'and a summary';

my $products = psql_value('SELECT count(*) FROM products');
cmp_ok $products, '>', 3000, "thousands of real products ($products)";
is psql_value('SELECT count(*) FROM categories'), 71, '71 Olist categories';
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
my $q = api(GET => '/products/?q=heart&limit=100');
cmp_ok scalar @{ $q->{json}{items} }, '>', 10, 'full-text search finds real products';
ok !(grep { $_->{name} !~ /heart/i } @{ $q->{json}{items} }), 'every hit mentions the word';

done_testing;
