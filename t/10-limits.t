#!/usr/bin/perl
# Limits and operator commands: a cart holds at most 500 different products
# and a line at most 10,000 units, however it is reached (which keeps every
# total inside 64 bits); the database refuses more too; staff stock changes
# are relative or conditional; and the migration runner is safe to run again.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

# --- cart line limit -------------------------------------------------------
my $buyer = register_user();
my $tag = 'lim-' . uniq();
# 501 products and 500 cart lines straight in the database (through the API
# this would be 1,000 requests); the 501st product goes through the API.
psql_do("INSERT INTO products (sku, name, price, currency, stock)
         SELECT '$tag-' || g, 'Limit test ' || g, 1000000000000, 'GBP', 10000
         FROM generate_series(1, 501) g");
psql_do("INSERT INTO cart_items (user_id, product_id, quantity)
         SELECT $buyer->{id}, id, 10000 FROM products
         WHERE sku LIKE '$tag-%' AND sku <> '$tag-501'");
my $last = psql_value("SELECT id FROM products WHERE sku = '$tag-501'");
my $first = psql_value("SELECT id FROM products WHERE sku = '$tag-1'");

my $r = api(POST => '/cart/', token => $buyer->{token}, body => { product_id => 0 + $last, quantity => 1 });
is_problem $r, 409, 'conflict', 'the 501st different product is refused';
like $r->{json}{detail} // '', qr/full/, 'detail says the cart is full';
is psql_value("SELECT count(*) FROM cart_items WHERE user_id = $buyer->{id}"), 500,
   'cart still has 500 lines';

psql_do("UPDATE products SET stock = 20000 WHERE id = $first");
$r = api(POST => '/cart/', token => $buyer->{token}, body => { product_id => 0 + $first, quantity => 5 });
is_problem $r, 409, 'conflict', 'raising a line already at 10,000 units is refused, even with stock';
like $r->{json}{detail} // '', qr/10000/, 'detail names the line cap';
is psql_value("SELECT quantity FROM cart_items WHERE user_id = $buyer->{id} AND product_id = $first"),
   10000, 'the line stayed at 10,000';
psql_do("UPDATE cart_items SET quantity = 9995 WHERE user_id = $buyer->{id} AND product_id = $first");
$r = api(POST => '/cart/', token => $buyer->{token}, body => { product_id => 0 + $first, quantity => 5 });
is $r->{status}, 201, 'raising a line of a full cart up to exactly 10,000 works';
is $r->{json}{quantity}, 10000, 'quantity raised to 10000';

my $cart = api(GET => '/cart/', token => $buyer->{token});
is $cart->{status}, 200, 'a full cart of the most expensive lines reads fine';
is $cart->{json}{subtotal}, 500 * 10_000 * 1_000_000_000_000,
   'subtotal is exact (no overflow)';
# the schema holds the cap whatever writes the row
my $bad = `psql -XAtq -c "UPDATE cart_items SET quantity = 10001 WHERE user_id = $buyer->{id}" 2>&1`;
like $bad, qr/cart_items_quantity_max/, 'the database refuses a cart line over 10,000 units';
my $co = api(POST => '/orders/', token => $buyer->{token}, body => {});
is $co->{status}, 201, 'the largest possible cart checks out';
is $co->{json}{total}, 500 * 10_000 * 1_000_000_000_000, 'with the exact total';

# two adds of 10,000 to one line: the second is refused (it used to give 20,000)
{
    my $u = register_user();
    my $p = create_product(price => 100, stock => 50_000);
    is api(POST => '/cart/', token => $u->{token}, body => { product_id => $p->{id}, quantity => 10_000 })->{status},
       201, 'first add of 10,000';
    my $second = api(POST => '/cart/', token => $u->{token}, body => { product_id => $p->{id}, quantity => 10_000 });
    is_problem $second, 409, 'conflict', 'second add of 10,000 to the same line is 409';
    is api(GET => '/cart/', token => $u->{token})->{json}{items}[0]{quantity}, 10_000, 'the line holds 10,000';
}

psql_do("DELETE FROM cart_items WHERE user_id = $buyer->{id}");
psql_do("DELETE FROM products WHERE sku LIKE '$tag-%'");

# --- migrations are idempotent --------------------------------------------
my $root = ecom_root();
my @files = glob "$root/sql/[0-9][0-9][0-9]_*.sql";
my $out = `bash $root/scripts/migrate.sh 2>&1`;
is $?, 0, 'migrate.sh runs again without error';
like $out, qr/up to date/i, 'and reports the schema is up to date';
is psql_value('SELECT count(*) FROM schema_migrations'), scalar @files,
   'one schema_migrations row per migration file';

done_testing;
