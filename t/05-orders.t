#!/usr/bin/perl
# Checkout: order shape, stock, cart emptied, ownership, out-of-stock and
# price-changed conflicts, price snapshots, Idempotency-Key, staff listing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my ($staff, $staff_id) = staff_token();
my $alice = register_user();
my $bob = register_user();

sub add { my ($u, $p, $q) = @_;
          my $r = api(POST => '/cart/', token => $u->{token}, body => { product_id => $p->{id}, quantity => $q });
          die "add to cart failed: $r->{status} $r->{content}\n" unless $r->{status} == 201; $r->{json} }
sub stock_of { api(GET => "/products/$_[0]{id}/", token => $staff)->{json}{stock} }
sub cart_of { api(GET => '/cart/', token => $_[0]{token})->{json} }
sub n_orders { psql_value("SELECT count(*) FROM orders WHERE user_id = $_[0]{id}") }
sub all_orders {
    my ($token, $query) = @_;
    my (@items, $cursor);
    for (1 .. 1000) {
        my $q = $query // '';
        $q .= '&cursor=' . ($cursor =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ger) if defined $cursor;
        my $r = api(GET => "/orders/?limit=100$q", token => $token);
        return undef unless $r->{status} == 200;
        push @items, @{ $r->{json}{items} };
        $cursor = $r->{json}{next_cursor};
        last unless defined $cursor;
    }
    return \@items;
}

# --- empty cart ---------------------------------------------------------------
is_problem api(POST => '/orders/', token => $alice->{token}), 422, undef, 'POST /orders/ with an empty cart is 422';
is_problem api(POST => '/orders/'), 401, 'unauthorized', 'POST /orders/ anonymous is 401';
is_problem api(GET => '/orders/'), 401, 'unauthorized', 'GET /orders/ anonymous is 401';
is n_orders($alice), 0, 'no order was created';

# --- checkout --------------------------------------------------------------------
my $p1 = create_product(price => 1500, stock => 10);
my $p2 = create_product(price => 250, stock => 3);
add($alice, $p1, 2);
add($alice, $p2, 3);
my $co = api(POST => '/orders/', token => $alice->{token});
is $co->{status}, 201, 'checkout is 201';
my $o = $co->{json} // {};
my $oid = $o->{id};
ok is_int($oid) && $oid > 0, 'order has an id';
like $co->{headers}{location} // '', qr{/orders/\Q$oid\E/\z}, 'Location ends with /orders/<id>/';
is $o->{status}, 'pending', 'order status is pending';
is $o->{subtotal}, 2 * 1500 + 3 * 250, 'order subtotal';
is $o->{discount}, 0, 'order discount 0';
is $o->{total}, 3750, 'order total';
like $o->{currency} // '', qr/\A[A-Z]{3}\z/, 'order currency';
ok is_int($o->{item_count}), 'order item_count is an integer';
ok is_rfc3339($o->{created_at}) && is_rfc3339($o->{updated_at}), 'order timestamps are RFC 3339';
is ref $o->{lines}, 'ARRAY', 'order has lines';
is scalar @{ $o->{lines} // [] }, 2, 'two lines';
my ($l1) = grep { $_->{product_id} == $p1->{id} } @{ $o->{lines} // [] };
is_deeply { map { $_ => $l1->{$_} } qw(product_id sku name unit_price quantity line_total) },
    { product_id => $p1->{id}, sku => $p1->{sku}, name => $p1->{name}, unit_price => 1500,
      quantity => 2, line_total => 3000 }, 'line for product 1 has the snapshot fields';
ok is_int($l1->{id}), 'line has an id';
is ref $o->{events}, 'ARRAY', 'order has events';
is scalar @{ $o->{events} // [] }, 1, 'one event';
my $ev = $o->{events}[0] // {};
ok exists $ev->{from} && !defined $ev->{from}, 'event from is null';
is $ev->{to}, 'pending', 'event to is pending';
is $ev->{actor_id}, $alice->{id}, 'event actor is the customer';
ok is_rfc3339($ev->{at}), 'event at is RFC 3339';
is_deeply $o->{payments}, [], 'payments []';
is_deeply $o->{shipments}, [], 'shipments []';

is stock_of($p1), 8, 'stock of product 1 decremented by 2';
is stock_of($p2), 0, 'stock of product 2 decremented to 0';
is api(GET => "/products/$p2->{id}/")->{json}{stock}, 0, 'public detail shows stock 0';
is_deeply cart_of($alice)->{items}, [], 'the cart is empty after checkout';
is cart_of($alice)->{total}, 0, 'cart total 0 after checkout';

{
    my $d = api(GET => "/orders/$oid/", token => $alice->{token});
    is $d->{status}, 200, 'GET /orders/{id}/ is 200 for the owner';
    is_deeply [ sort map { $_->{id} } @{ $d->{json}{lines} // [] } ], [ sort map { $_->{id} } @{ $o->{lines} } ],
        'detail has the same lines';
    is $d->{json}{total}, 3750, 'detail total';
    is api(GET => "/orders/$oid", token => $alice->{token})->{status}, 200, 'GET /orders/{id} without slash is 200';
    is_problem api(GET => "/orders/$oid/", token => $bob->{token}), 404, 'not-found', "another user's order is 404";
    is_problem api(GET => "/orders/$oid/"), 401, 'unauthorized', 'anonymous order detail is 401';
    is_problem api(GET => '/orders/999999999999/', token => $alice->{token}), 404, 'not-found', 'unknown order is 404';
    is_problem api(GET => '/orders/abc/', token => $alice->{token}), 404, 'not-found', '/orders/abc/ is 404';
    my $sd = api(GET => "/orders/$oid/", token => $staff);
    is $sd->{status}, 200, 'staff can read any order';
}

# second order, to check newest first
add($alice, $p1, 1);
my $co2 = api(POST => '/orders/', token => $alice->{token});
is $co2->{status}, 201, 'second checkout is 201';
my $oid2 = $co2->{json}{id};
{
    my $r = api(GET => '/orders/', token => $alice->{token});
    is $r->{status}, 200, 'GET /orders/ is 200';
    ok exists $r->{json}{next_cursor}, 'orders list has next_cursor';
    is_deeply [ map { $_->{id} } @{ $r->{json}{items} // [] } ], [ $oid2, $oid ], 'GET /orders/ lists own orders, newest first';
    my $first = $r->{json}{items}[0] // {};
    ok exists $first->{total} && exists $first->{status} && exists $first->{item_count}, 'list items have order fields';
    my $bl = api(GET => '/orders/', token => $bob->{token});
    is $bl->{status}, 200, 'GET /orders/ for another user is 200';
    ok !grep({ $_->{id} == $oid || $_->{id} == $oid2 } @{ $bl->{json}{items} // [] }), "another user's list does not contain them";
    my $page = api(GET => '/orders/?limit=1', token => $alice->{token});
    is scalar @{ $page->{json}{items} // [] }, 1, 'orders ?limit=1 gives one';
    ok defined $page->{json}{next_cursor}, 'and a next_cursor';
    my $cur = $page->{json}{next_cursor} // '';
    $cur =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    my $p2r = api(GET => "/orders/?limit=1&cursor=$cur", token => $alice->{token});
    is_deeply [ map { $_->{id} } @{ $p2r->{json}{items} // [] } ], [ $oid ], 'the second page has the older order';
}

# --- out of stock at checkout ------------------------------------------------------
{
    my $u = register_user();
    my $p = create_product(price => 300, stock => 5);
    my $q = create_product(price => 100, stock => 5);
    add($u, $p, 3);
    add($u, $q, 2);
    my $r0 = api(PATCH => "/products/$p->{id}/", token => $staff, body => { stock => 2, expected_stock => 5 });
    is $r0->{status}, 200, 'staff lowered the stock below the cart quantity';
    my $r = api(POST => '/orders/', token => $u->{token});
    is_problem $r, 409, 'out-of-stock', 'checkout with a line over the stock is 409 out-of-stock';
    like $r->{content}, qr/\b\Q$p->{id}\E\b|\Q$p->{name}\E/, 'the 409 names the product';
    is n_orders($u), 0, 'no order was created';
    is stock_of($p), 2, 'stock of the short product unchanged';
    is stock_of($q), 5, 'stock of the other product unchanged';
    my $c = cart_of($u);
    is_deeply { map { $_->{product_id} => $_->{quantity} } @{ $c->{items} } }, { $p->{id} => 3, $q->{id} => 2 },
        'the cart is intact';
}

# --- expected_total ------------------------------------------------------------
{
    my $u = register_user();
    my $p = create_product(price => 1000, stock => 10);
    add($u, $p, 2);
    my $r = api(POST => '/orders/', token => $u->{token}, body => { expected_total => 1999 });
    is_problem $r, 409, 'price-changed', 'expected_total that does not match is 409 price-changed';
    is $r->{json}{total}, 2000, 'the price-changed body has the current total';
    is n_orders($u), 0, 'no order created on price-changed';
    is stock_of($p), 10, 'stock unchanged on price-changed';
    is scalar @{ cart_of($u)->{items} }, 1, 'cart intact on price-changed';

    api(PATCH => "/products/$p->{id}/", token => $staff, body => { price => 1100 });
    my $r2 = api(POST => '/orders/', token => $u->{token}, body => { expected_total => 2000 });
    is_problem $r2, 409, 'price-changed', 'a price change after adding to the cart is 409 with the old expected_total';
    is $r2->{json}{total}, 2200, '... showing the new total';
    my $ok = api(POST => '/orders/', token => $u->{token}, body => { expected_total => 2200 });
    is $ok->{status}, 201, 'a matching expected_total is 201';
    is $ok->{json}{total}, 2200, 'order total is the expected total';
    add($u, $p, 1);
    my $n = n_orders($u);
    my $bad = api(POST => '/orders/', token => $u->{token}, body => { expected_total => 'abc' });
    is_problem $bad, 422, 'validation', 'a non-integer expected_total (with a non-empty cart) is 422';
    has_field_error $bad, 'expected_total';
    is n_orders($u), $n, 'no order created for a bad expected_total';
}

# --- price snapshot, deactivated product -------------------------------------------
{
    my $u = register_user();
    my $p = create_product(price => 4200, stock => 10);
    add($u, $p, 1);
    my $r = api(POST => '/orders/', token => $u->{token});
    is $r->{status}, 201, 'checkout for the snapshot test';
    my $id = $r->{json}{id};
    api(PATCH => "/products/$p->{id}/", token => $staff, body => { price => 9900, name => 'Renamed later' });
    my $d = api(GET => "/orders/$id/", token => $u->{token})->{json};
    is $d->{lines}[0]{unit_price}, 4200, 'the order keeps the old unit_price after a price change';
    is $d->{lines}[0]{name}, $p->{name}, 'the order keeps the old name';
    is $d->{total}, 4200, 'the order keeps its total';
    api(PATCH => "/products/$p->{id}/", token => $staff, body => { active => JSON::PP::false });
    my $d2 = api(GET => "/orders/$id/", token => $u->{token});
    is $d2->{status}, 200, 'the order is readable after the product is deactivated';
    is scalar @{ $d2->{json}{lines} // [] }, 1, 'and still shows its line';
    is $d2->{json}{lines}[0]{product_id}, $p->{id}, 'with the product id';
}

# --- Idempotency-Key ---------------------------------------------------------------
{
    my $u = register_user();
    my $p = create_product(price => 500, stock => 10);
    add($u, $p, 2);
    my $key = 'order-' . uniq();
    my $r1 = api(POST => '/orders/', token => $u->{token}, body => {}, headers => { 'Idempotency-Key' => $key });
    is $r1->{status}, 201, 'checkout with an Idempotency-Key is 201';
    isnt lc($r1->{headers}{'idempotent-replayed'} // ''), 'true', 'the first response is not marked replayed';
    my $r2 = api(POST => '/orders/', token => $u->{token}, body => {}, headers => { 'Idempotency-Key' => $key });
    is $r2->{status}, 201, 'the same key again is 201';
    is lc($r2->{headers}{'idempotent-replayed'} // ''), 'true', 'with Idempotent-Replayed: true';
    is $r2->{json}{id}, $r1->{json}{id}, 'and the same order id';
    is $r2->{headers}{location}, $r1->{headers}{location}, 'and the same Location';
    my $list = api(GET => '/orders/', token => $u->{token})->{json}{items} // [];
    is scalar @$list, 1, 'only one order exists (GET /orders/)';
    is n_orders($u), 1, 'only one order exists (database)';
    is stock_of($p), 8, 'stock decremented once';

    add($u, $p, 1);
    my $r3 = api(POST => '/orders/', token => $u->{token}, body => { expected_total => 500 },
                 headers => { 'Idempotency-Key' => $key });
    is_problem $r3, 422, 'idempotency-conflict', 'the same key with a different body is 422 idempotency-conflict';
    is n_orders($u), 1, 'still one order';
    is scalar @{ cart_of($u)->{items} }, 1, 'the cart was not consumed';
    my $r4 = api(POST => '/orders/', token => $u->{token}, body => {}, headers => { 'Idempotency-Key' => 'other-' . uniq() });
    is $r4->{status}, 201, 'a new key creates a new order';
    isnt $r4->{json}{id}, $r1->{json}{id}, 'with a new id';

    my $r6 = api(POST => '/cart/', token => $u->{token}, body => {}, headers => { 'Idempotency-Key' => $key });
    is_problem $r6, 422, undef, 'the same key on another path (POST /cart/) is 422';
    like $r6->{content}, qr/Idempotency-Key|idempotency/i, '... because of the key';
    my $v = register_user();
    add($v, $p, 1);
    my $r5 = api(POST => '/orders/', token => $v->{token}, body => {}, headers => { 'Idempotency-Key' => $key });
    is $r5->{status}, 201, "another user's identical key is independent (201)";
    isnt $r5->{json}{id}, $r1->{json}{id}, 'and creates their own order';
    isnt lc($r5->{headers}{'idempotent-replayed'} // ''), 'true', 'not marked replayed';
}

# --- staff listing and status filter -----------------------------------------------
{
    my $all = all_orders($staff, '&status=pending');
    ok defined $all, 'staff GET /orders/?status=pending is 200';
    my %ids = map { $_->{id} => 1 } @{ $all // [] };
    ok $ids{$oid} && $ids{$oid2}, "staff see other users' orders";
    ok !grep({ ($_->{status} // '') ne 'pending' } @{ $all // [] }), 'status=pending returns only pending orders';
    my $ids_desc = 1;
    for (1 .. $#$all) { $ids_desc = 0 unless $all->[$_]{id} < $all->[$_ - 1]{id} }
    ok $ids_desc, 'staff list is newest first over pages';
    my $c = all_orders($staff, '&status=cancelled');
    ok defined $c, 'status=cancelled is 200';
    ok !grep({ $ids{$_->{id}} } @{ $c // [] }), 'status=cancelled does not return pending orders';
    is_problem api(GET => '/orders/?status=bogus', token => $staff), 400, 'bad-request', 'a bad status filter is 400';
    is_problem api(GET => '/orders/?status=bogus', token => $alice->{token}), 400, 'bad-request',
        'a bad status filter is 400 for a customer too';

    my $bo = register_user();
    my $p = create_product(price => 10, stock => 5);
    add($bo, $p, 1);
    my $bord = api(POST => '/orders/', token => $bo->{token})->{json}{id};
    my $mine = all_orders($alice->{token}, '&status=pending');
    ok defined $mine, 'customer GET /orders/?status=pending is 200';
    is_deeply [ map { $_->{id} } @{ $mine // [] } ], [ $oid2, $oid ], "a customer's status filter only returns their own orders";
    ok !grep({ $_->{id} == ($bord // 0) } @{ $mine // [] }), "another user's pending order is not in it";
}

done_testing;
