#!/usr/bin/perl
# Checkout is one statement (ecom_checkout, sql/008_perf_checkout.sql) that
# runs without BEGIN/COMMIT when there is no Idempotency-Key: every refusal
# must still write nothing (no order, no order event, no feed event, stock
# and cart as they were), keep the answers the module always gave, and
# check in the same order (currencies before stock, stock before
# expected_total). The out-of-stock list names every short or inactive
# product in ascending id order.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my ($staff) = staff_token();
my $u = register_user();

sub add {
    my ($p, $q) = @_;
    my $r = api(POST => '/cart/', token => $u->{token}, body => { product_id => $p->{id}, quantity => $q });
    die "add to cart failed: $r->{status} $r->{content}\n" unless $r->{status} == 201;
}
sub stock_of { psql_value("SELECT stock FROM products WHERE id = $_[0]{id}") }
sub state {
    join ' ', map { psql_value($_) }
        "SELECT count(*) FROM orders WHERE user_id = $u->{id}",
        "SELECT count(*) FROM order_events e JOIN orders o ON o.id = e.order_id WHERE o.user_id = $u->{id}",
        "SELECT count(*) FROM events e JOIN orders o ON o.id = e.order_id WHERE o.user_id = $u->{id}",
        "SELECT count(*) || ':' || COALESCE(sum(quantity), 0) FROM cart_items WHERE user_id = $u->{id}";
}
sub checkout { api(POST => '/orders/', token => $u->{token}, body => { @_ }) }

my $a = create_product(price => 700, stock => 5);
my $b = create_product(price => 300, stock => 3);
my $c = create_product(price => 100, stock => 9);
add($a, 2);
add($b, 3);
add($c, 1);
my $before = state();
my %stock = map { $_->{id} => stock_of($_) } $a, $b, $c;

# --- mixed currencies (a line put there behind the cart's guard) ----------------
{
    my $cur = psql_value("SELECT currency FROM products WHERE id = $a->{id}");
    my $fx = create_product(currency => $cur eq 'XTS' ? 'XXX' : 'XTS', price => 100, stock => 5);
    psql_do("INSERT INTO cart_items (user_id, product_id, quantity) VALUES ($u->{id}, $fx->{id}, 1)");
    psql_do("UPDATE products SET stock = 0 WHERE id = $b->{id}");
    my $r = checkout();
    is_problem $r, 409, 'conflict', 'a cart of two currencies is 409, before the stock is looked at';
    is $r->{json}{detail}, 'The cart mixes currencies.', 'with the detail it always had';
    psql_do("DELETE FROM cart_items WHERE user_id = $u->{id} AND product_id = $fx->{id}");
    psql_do("UPDATE products SET stock = 3 WHERE id = $b->{id}");
    is state(), $before, 'nothing was written';
}

# --- out of stock: every short or inactive product, in id order ------------------
psql_do("UPDATE products SET stock = 1 WHERE id = $b->{id}");
psql_do("UPDATE products SET active = false WHERE id = $c->{id}");
{
    my $r = checkout(expected_total => 1);
    is_problem $r, 409, 'out-of-stock', 'a short and an inactive product: 409 out-of-stock, before expected_total';
    is_deeply $r->{json}{products},
        [ { product_id => $b->{id}, name => $b->{name}, requested => 3, available => 1 },
          { product_id => $c->{id}, name => $c->{name}, requested => 1, available => 0 } ],
        'the list names each short product once, in id order, with requested and available (0 when inactive)';
    is state(), $before, 'nothing was written';
    is stock_of($a), $stock{ $a->{id} }, 'the stock of the product that had enough is untouched';
    is stock_of($b), 1, 'the short product keeps its stock';
}

# --- expected_total, once every line can be served -------------------------------
psql_do("UPDATE products SET stock = 3 WHERE id = $b->{id}");
psql_do("UPDATE products SET active = true WHERE id = $c->{id}");
{
    my $r = checkout(expected_total => 2399);
    is_problem $r, 409, 'price-changed', 'a wrong expected_total is 409 price-changed';
    is $r->{json}{total}, 2 * 700 + 3 * 300 + 100, 'with the current total';
    is $r->{json}{currency}, psql_value("SELECT currency FROM products WHERE id = $a->{id}"), 'and its currency';
    is state(), $before, 'nothing was written';
    is stock_of($_), $stock{ $_->{id} }, "stock of product $_->{id} unchanged" for $a, $b, $c;
}

# --- the same cart checks out, and the refusals left no trace --------------------
{
    my $r = checkout(expected_total => 2400);
    is $r->{status}, 201, 'the right expected_total checks out (201), without an Idempotency-Key';
    is_deeply [ map { [ $_->{product_id}, $_->{quantity}, $_->{line_total} ] } @{ $r->{json}{lines} } ],
        [ [ $a->{id}, 2, 1400 ], [ $b->{id}, 3, 900 ], [ $c->{id}, 1, 100 ] ],
        'lines in product id order with their totals';
    is $r->{json}{item_count}, 6, 'item_count';
    is_deeply [ map { stock_of($_) } $a, $b, $c ],
        [ $stock{ $a->{id} } - 2, $stock{ $b->{id} } - 3, $stock{ $c->{id} } - 1 ], 'stock taken once';
    is psql_value("SELECT count(*) FROM cart_items WHERE user_id = $u->{id}"), 0, 'the cart is empty';
    is psql_value("SELECT count(*) FROM orders WHERE user_id = $u->{id}"), 1, 'one order';
    is psql_value("SELECT string_agg(type, ',' ORDER BY id) FROM events WHERE order_id = $r->{json}{id}"),
        'order.created', 'one feed event, order.created';
    my $g = api(GET => "/orders/$r->{json}{id}/", token => $u->{token});
    is_deeply $g->{json}, $r->{json}, 'the answer is what GET /orders/{id}/ shows';
    is_problem checkout(), 422, undef, 'checking out the emptied cart is 422';
}

done_testing;
