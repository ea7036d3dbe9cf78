#!/usr/bin/perl
# Order lifecycle (issue 7): the shipping address snapshot (checkout and
# PATCH while pending, 422 per field, mass assignment), the order detail's
# new fields and arrays, and cancel (pending or paid; restock once, a full
# refund record for a paid order; 409 from any other state; 404 for
# another user's order).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;
use EcomLife;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my ($staff, $staff_id) = staff_token();
my $alice = register_user();
my $bob = register_user();
sub stock_of { psql_value("SELECT stock FROM products WHERE id = $_[0]{id}") }

# --- checkout with an address: the normalised snapshot ------------------------
{
    my ($o) = place_order($alice, address => address(country => 'fr', line2 => 'Bâtiment B',
                                                     region => undef, phone => '+33 1 23 45 67 89'));
    is_deeply $o->{shipping_address},
        { name => 'Ada Lovelace', line1 => '12 Rue de Rivoli', line2 => 'Bâtiment B', city => 'Paris',
          postal_code => '75001', country => 'FR', phone => '+33 1 23 45 67 89' },
        'POST /orders/ stores the address: country upper-cased, a null optional field left out';
    is psql_value("SELECT shipping_address->>'country' FROM orders WHERE id = $o->{id}"), 'FR',
        'the snapshot is in orders.shipping_address';
    is $o->{paid_amount}, 0, 'paid_amount 0';
    is $o->{refunded_amount}, 0, 'refunded_amount 0';
    is_deeply [ map { ref $o->{$_} } qw(payments refunds shipments events) ], [ ('ARRAY') x 4 ],
        'payments, refunds, shipments, events are arrays';
    is $o->{events}[0]{actor}, 'user', 'the creation event has actor user';
    is $o->{events}[0]{actor_id}, $alice->{id}, '... and keeps actor_id';
}
{
    my ($o) = place_order($alice, address => undef);
    ok exists $o->{shipping_address} && !defined $o->{shipping_address},
        'without an address, shipping_address is null';
}

# --- validation: 422 per field, nothing ordered -----------------------------------
{
    my $p = create_product(price => 500, stock => 5);
    api(POST => '/cart/', token => $bob->{token}, body => { product_id => $p->{id}, quantity => 1 });
    my $n = psql_value("SELECT count(*) FROM orders WHERE user_id = $bob->{id}");
    my $try = sub { api(POST => '/orders/', token => $bob->{token}, body => { shipping_address => $_[0] }) };
    my $r = $try->(address(country => 'UK'));
    is_problem $r, 422, undef, 'country UK (not ISO 3166-1) is 422';
    has_field_error $r, 'shipping_address.country';
    $r = $try->(address(country => 'FRA'));
    has_field_error $r, 'shipping_address.country', 'a three-letter country is refused';
    $r = $try->({ line1 => 'x', city => 'y', postal_code => '1', country => 'DE' });
    is_problem $r, 422, undef, 'missing name is 422';
    has_field_error $r, 'shipping_address.name';
    $r = $try->(address(postal_code => '1' x 21, phone => 'call me', city => '', name => '   '));
    has_field_error $r, 'shipping_address.postal_code', 'postal_code over 20 characters refused';
    has_field_error $r, 'shipping_address.phone', 'phone with letters refused';
    has_field_error $r, 'shipping_address.city', 'empty city refused';
    has_field_error $r, 'shipping_address.name', 'blank name refused';
    $r = $try->(address(line1 => 'a' x 201));
    has_field_error $r, 'shipping_address.line1', 'line1 over 200 characters refused';
    $r = $try->(address(line1 => 42));
    has_field_error $r, 'shipping_address.line1', 'a number for line1 refused';
    $r = $try->(address(user_id => 1, is_default => JSON::PP::true));
    is_problem $r, 422, undef, 'unknown fields in the address are 422';
    has_field_error $r, 'shipping_address.user_id';
    $r = $try->('12 Rue de Rivoli, Paris');
    has_field_error $r, 'shipping_address', 'an address that is a string is 422';
    is psql_value("SELECT count(*) FROM orders WHERE user_id = $bob->{id}"), $n, 'no order was created';
    is scalar @{ api(GET => '/cart/', token => $bob->{token})->{json}{items} }, 1, 'the cart is intact';
}

# --- PATCH /orders/{id}/ -----------------------------------------------------------
{
    my ($o) = place_order($alice, address => undef);
    my $id = $o->{id};
    my $r = api(PATCH => "/orders/$id/", token => $alice->{token},
                body => { shipping_address => address(country => 'de', city => 'Berlin') });
    is $r->{status}, 200, 'PATCH the address of a pending order is 200';
    is $r->{json}{shipping_address}{city}, 'Berlin', '... the detail shows it';
    is $r->{json}{shipping_address}{country}, 'DE', '... normalised';
    is psql_value("SELECT shipping_address->>'city' FROM orders WHERE id = $id"), 'Berlin', '... stored';

    is_problem api(PATCH => "/orders/$id/", token => $bob->{token}, body => { shipping_address => address() }),
        404, 'not-found', "PATCH another user's order is 404";
    is psql_value("SELECT shipping_address->>'city' FROM orders WHERE id = $id"), 'Berlin', '... unchanged';
    is_problem api(PATCH => '/orders/999999999/', token => $alice->{token}, body => { shipping_address => address() }),
        404, 'not-found', 'PATCH an unknown order is 404';
    is_problem api(PATCH => "/orders/$id/", token => undef, body => { shipping_address => address() }),
        401, 'unauthorized', 'PATCH anonymous is 401';

    for my $f ([status => 'paid'], [total => 1], [user_id => $bob->{id}], [paid_amount => 10_000],
               [refunded_amount => 0], [currency => 'USD']) {
        $r = api(PATCH => "/orders/$id/", token => $alice->{token},
                 body => { shipping_address => address(), $f->[0] => $f->[1] });
        is_problem $r, 422, undef, "PATCH with $f->[0] is 422 (mass assignment)";
        has_field_error $r, $f->[0];
    }
    is psql_value("SELECT status || ' ' || total || ' ' || user_id || ' ' || paid_amount FROM orders WHERE id = $id"),
        "pending $o->{total} $alice->{id} 0", 'nothing of those was applied';
    is_problem api(PATCH => "/orders/$id/", token => $alice->{token}, body => {}), 422, undef,
        'PATCH without shipping_address is 422';
    is_problem api(PATCH => "/orders/$id/", token => $alice->{token}, body => { shipping_address => undef }), 422, undef,
        'PATCH with a null address is 422';

    $r = api(PATCH => "/orders/$id/", token => $staff, body => { shipping_address => address(city => 'Lyon') });
    is $r->{status}, 200, 'staff may PATCH the address of any pending order';
    is $r->{json}{shipping_address}{city}, 'Lyon', '... applied';

    pay_ok($alice, $id);
    $r = api(PATCH => "/orders/$id/", token => $alice->{token}, body => { shipping_address => address(city => 'Nice') });
    is_problem $r, 409, 'invalid-state', 'PATCH the address of a paid order is 409';
    is $r->{json}{order_status}, 'paid', '... naming the state';
    is psql_value("SELECT shipping_address->>'city' FROM orders WHERE id = $id"), 'Lyon', '... unchanged';
}

# --- cancel a pending order -----------------------------------------------------------
{
    my ($o, $p) = place_order($alice, stock => 3, quantity => 3);
    is stock_of($p), 0, 'checkout took the whole stock';
    is_problem api(POST => "/orders/$o->{id}/cancel/", token => $bob->{token}), 404, 'not-found',
        "cancel another user's order is 404";
    is_problem api(POST => '/orders/999999999/cancel/', token => $alice->{token}), 404, 'not-found',
        'cancel an unknown order is 404';
    is_problem api(POST => "/orders/$o->{id}/cancel/"), 401, 'unauthorized', 'cancel anonymous is 401';
    is psql_value("SELECT status FROM orders WHERE id = $o->{id}"), 'pending', 'still pending';

    my $r = api(POST => "/orders/$o->{id}/cancel/", token => $alice->{token});
    is $r->{status}, 200, 'the owner cancels a pending order: 200';
    is $r->{json}{status}, 'cancelled', '... cancelled';
    is stock_of($p), 3, '... the stock is back';
    ok psql_value("SELECT restocked_at IS NOT NULL FROM orders WHERE id = $o->{id}") eq 't', '... restocked_at set';
    is_deeply $r->{json}{refunds}, [], '... no refund for an unpaid order';
    my $last = $r->{json}{events}[-1];
    is_deeply [ @$last{qw(from to actor actor_id)} ], [ 'pending', 'cancelled', 'user', $alice->{id} ],
        '... the event: pending -> cancelled by the user';
    my $pl = api(GET => "/products/$p->{id}/");
    is $pl->{json}{stock}, 3, 'the product reads in stock again';

    $r = api(POST => "/orders/$o->{id}/cancel/", token => $alice->{token});
    is_problem $r, 409, 'invalid-state', 'cancelling twice is 409';
    is stock_of($p), 3, '... and restocks nothing more';
    is psql_value("SELECT count(*) FROM order_events WHERE order_id = $o->{id} AND to_status = 'cancelled'"), 1,
        '... one cancel event';
}

# --- cancel a paid order: full refund, restock, by staff ---------------------------
{
    my ($o, $p) = place_order($alice, price => 1250, stock => 5, quantity => 2);
    pay_ok($alice, $o->{id});
    my $r = api(POST => "/orders/$o->{id}/cancel/", token => $staff);
    is $r->{status}, 200, 'staff cancels a paid order: 200';
    my $j = $r->{json};
    is $j->{status}, 'cancelled', '... cancelled';
    is $j->{paid_amount}, 2500, '... paid_amount 2500';
    is $j->{refunded_amount}, 2500, '... refunded_amount = paid_amount';
    is scalar @{ $j->{refunds} }, 1, '... one refund';
    my $rf = $j->{refunds}[0];
    is_deeply [ @$rf{qw(order_id amount currency status)} ], [ $o->{id}, 2500, $o->{currency}, 'succeeded' ],
        '... a full refund of what was paid';
    ok is_true($rf->{restock}), '... with restock true';
    is stock_of($p), 5, '... the stock is back';
    is $j->{events}[-1]{actor}, 'staff', '... the cancel event has actor staff';
    is $j->{events}[-1]{actor_id}, $staff_id, '... and the staff id';
    is scalar @{ $j->{payments} }, 1, 'the order shows its payment';
    is_deeply [ @{ $j->{payments}[0] }{qw(provider status amount)} ], [ 'sandbox', 'succeeded', 2500 ],
        '... provider, status, amount';
    ok !exists $j->{payments}[0]{failure_reason}, '... no failure_reason on a succeeded payment';
}

# --- a product back in stock: the cached catalog pages go, after the commit --------
{
    my $price = 333_000 + int rand 1000;
    my $p = create_product(price => $price, stock => 1);
    my $q = "/products/?min_price=$price&max_price=$price&in_stock=true&limit=100";
    my ($o) = place_order($alice, product => $p, quantity => 1);
    my $before = api(GET => $q);
    ok !grep({ $_->{id} == $p->{id} } @{ $before->{json}{items} || [] }), 'sold out: not on the in_stock page';
    is api(GET => $q)->{headers}{'ecom-cache'}, 'hit', '... a page the cache holds';
    is api(POST => "/orders/$o->{id}/cancel/", token => $alice->{token})->{status}, 200, 'cancel 200';
    my $after = api(GET => $q);
    is $after->{headers}{'ecom-cache'}, 'miss', 'the cancel that restocked from 0 invalidated the catalog';
    ok grep({ $_->{id} == $p->{id} } @{ $after->{json}{items} || [] }), '... the product is listed in stock at once';

    # the same through a refund with restock, with an Idempotency-Key (its
    # transaction commits in ecom_idempotency.c)
    my ($o2) = place_order($alice, product => $p, quantity => 1);
    pay_ok($alice, $o2->{id});
    api(GET => $q);
    is api(GET => $q)->{headers}{'ecom-cache'}, 'hit', 'sold out again: the page is cached';
    is api(POST => "/orders/$o2->{id}/refunds/", token => $staff, headers => { 'Idempotency-Key' => 'rs-' . uniq() },
           body => { amount => 1, restock => JSON::PP::true })->{status}, 201, 'a refund with restock: 201';
    my $again = api(GET => $q);
    is $again->{headers}{'ecom-cache'}, 'miss', '... invalidated the catalog too';
    ok grep({ $_->{id} == $p->{id} } @{ $again->{json}{items} || [] }), '... in stock again';
}

# --- cancel from other states: 409 ---------------------------------------------------
for my $st (qw(shipped delivered refunded)) {
    my ($o) = place_order($alice);
    pay_ok($alice, $o->{id});
    psql_do("UPDATE orders SET status = '$st' WHERE id = $o->{id}");
    my $r = api(POST => "/orders/$o->{id}/cancel/", token => $alice->{token});
    is_problem $r, 409, 'invalid-state', "cancel a $st order is 409";
    is $r->{json}{order_status}, $st, "... naming $st";
}

# --- two cancels at once: one wins, one restock ------------------------------------
{
    my ($o, $p) = place_order($alice, stock => 4, quantity => 4);
    my @res = parallel(2, 1, sub { api(POST => "/orders/$o->{id}/cancel/", token => $alice->{token})->{status} });
    is_deeply [ sort @res ], [ 200, 409 ], 'two concurrent cancels: 200 and 409';
    is stock_of($p), 4, '... the stock came back once';
}

# --- cancel racing a payment ---------------------------------------------------------
# Whichever commits first, the end is consistent: cancelled, stock back, and
# a refund of everything paid when the payment won (else the payment is 409).
for my $round (1 .. 6) {
    my ($o, $p) = place_order($alice, price => 800, stock => 2, quantity => 2);
    my $id = $o->{id};
    my @res = parallel(2, 1, sub {
        return api(POST => "/orders/$id/cancel/", token => $alice->{token})->{status} if $_[0] == 0;
        return api(POST => "/orders/$id/payments/", token => $alice->{token},
                   body => { token => 'tok_ok' })->{status};
    });
    is $res[0], 200, "round $round: cancel racing a payment is 200 (from pending or from paid)";
    like $res[1], qr/\A(?:201|409)\z/, "... the payment is 201 (first) or 409 (after the cancel): $res[1]";
    my $paid = psql_value("SELECT count(*) FROM payments WHERE order_id = $id AND status = 'succeeded'");
    is $paid, $res[1] == 201 ? 1 : 0, '... a succeeded payment exactly when it answered 201';
    is psql_value("SELECT status || ' ' || paid_amount || ' ' || refunded_amount FROM orders WHERE id = $id"),
        $paid ? 'cancelled 1600 1600' : 'cancelled 0 0',
        '... cancelled, ' . ($paid ? 'after the payment: all of it refunded' : 'before the payment: nothing paid');
    is psql_value("SELECT coalesce(sum(amount), 0) FROM refunds WHERE order_id = $id"), $paid ? 1600 : 0,
        '... the refund rows match';
    is stock_of($p), 2, '... the stock is back, once';
}

done_testing;
