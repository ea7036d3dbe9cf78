#!/usr/bin/perl
# Limits and operator commands: a cart holds at most 500 different products
# and a line at most 10,000 units, however it is reached (which keeps every
# total inside 64 bits); the database refuses more too; request bodies are
# capped (EcomMaxBodySize, 64 KiB, and EcomMaxAnonBodySize, 8 KiB, on the
# endpoints anyone may call); and the migration runner is safe to run again.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use Time::HiRes ();
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

# --- body caps ---------------------------------------------------------------
sub padded { my ($len, %f) = @_; my $j = json_encode({ %f, pad => '' }); $j =~ s/"pad":""/'"pad":"' . ('p' x ($len - length $j)) . '"'/e; $j }
{
    my %login = (email => 'nobody-' . uniq() . '@example.com', password => 'whatever whatever');
    my $ok = padded(7 * 1024, %login);
    is length $ok, 7 * 1024, 'a 7 KiB login body';
    is_problem api(POST => '/auth/login/', body => $ok), 401, 'unauthorized',
               'a 7 KiB body to /auth/login/ is read (401 for an unknown e-mail)';
    for my $path ('/auth/login/', '/auth/register/') {
        my $r = api(POST => $path, body => padded(9 * 1024, %login));
        is_problem $r, 413, 'payload-too-large', "a 9 KiB body to $path is 413";
        like $r->{json}{detail} // '', qr/\b8192 bytes/, 'the detail names the 8192-byte cap';
    }
    my $big = padded(9 * 1024, %login);
    my $chunked = join('', map { sprintf "%x\r\n%s\r\n", length $_, $_ } unpack '(a1000)*', $big) . "0\r\n\r\n";
    my $r = raw_request("POST /auth/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        . "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n$chunked");
    is_problem $r, 413, 'payload-too-large', 'a chunked 9 KiB body to /auth/login/ is 413';
    # the cap is checked on Content-Length, before the body is sent
    my $t0 = Time::HiRes::time();
    my $early = raw_request("POST /auth/register/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        . "Content-Type: application/json\r\nContent-Length: 9216\r\n\r\n{", timeout => 10,
        first_response_only => 1);
    is_problem $early, 413, 'payload-too-large', 'a declared 9 KiB body to /auth/register/ is 413 before it is sent';
    cmp_ok Time::HiRes::time() - $t0, '<', 9, 'without waiting for the body';
}
{
    my $staff = staff_token();
    # 10,000 two-byte characters: the longest description, 20 KB of JSON
    my %p = (name => 'Body cap ' . uniq(), price => 100, sku => 'cap-' . uniq(), description => "\x{e9}" x 10000);
    my $body = JSON::PP->new->utf8->canonical->encode(\%p);
    cmp_ok length $body, '>', 20 * 1000, 'a product body of about 20 KiB (' . length($body) . ' bytes)';
    my $r = api(POST => '/products/', token => $staff, body => $body);
    is $r->{status}, 201, 'a 20 KiB product from staff is accepted (below 64 KiB)' or diag substr $r->{content}, 0, 300;
    my $big = padded(70 * 1024, name => 'Too big', price => 100);
    $r = api(POST => '/products/', token => $staff, body => $big);
    is_problem $r, 413, 'payload-too-large', 'a 70 KiB product body is 413';
    like $r->{json}{detail} // '', qr/\b65536 bytes/, 'the detail names the 65536-byte cap';
    my $u = register_user();
    is_problem api(POST => '/cart/', token => $u->{token}, body => padded(70 * 1024, product_id => 1, quantity => 1)),
               413, 'payload-too-large', 'a 70 KiB cart body is 413';
    my $c = api(POST => '/cart/', token => $u->{token}, body => padded(9 * 1024, product_id => 999999999, quantity => 1));
    is $c->{status}, 404, 'a 9 KiB body from a signed-in user is read (EcomMaxAnonBodySize is only for anyone)';
}

# --- migrations are idempotent --------------------------------------------
my $root = ecom_root();
my @files = glob "$root/sql/[0-9][0-9][0-9]_*.sql";
my $out = `bash $root/scripts/migrate.sh 2>&1`;
is $?, 0, 'migrate.sh runs again without error';
like $out, qr/up to date/i, 'and reports the schema is up to date';
is psql_value('SELECT count(*) FROM schema_migrations'), scalar @files,
   'one schema_migrations row per migration file';

done_testing;
