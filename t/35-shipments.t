#!/usr/bin/perl
# Shipments (issue 7): staff create them on a paid (or already shipped)
# order with an address (409 address-required without one, 409
# invalid-state otherwise); PATCH moves a shipment only forward (skipping
# forward is allowed; back or same is 409, an unknown status 422); the
# first shipped shipment makes the order shipped, all delivered make it
# delivered, also when two shipments are delivered at the same moment;
# GET is for the owner and staff only (404 for anyone else).
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
sub ship { my ($id, $body, %o) = @_;
           api(POST => "/orders/$id/shipments/", token => $o{token} // $staff, body => $body) }
sub move { my ($sid, $status, %o) = @_;
           api(PATCH => "/shipments/$sid/", token => $o{token} // $staff,
               body => ref $status ? $status : { status => $status }) }
sub order_status { psql_value("SELECT status FROM orders WHERE id = $_[0]") }
my %parcel = (carrier => 'La Poste', tracking_number => '6A12345678901');

# --- create: who, which orders ------------------------------------------------------
my ($o) = place_order($alice, address => address(city => 'Marseille'));
my $id = $o->{id};
is_problem ship($id, \%parcel), 409, 'invalid-state', 'a pending order cannot be shipped (409)';
pay_ok($alice, $id);
is_problem ship($id, \%parcel, token => $alice->{token}), 403, 'forbidden', 'a user creating a shipment is 403';
is_problem api(POST => "/orders/$id/shipments/", body => \%parcel), 401, 'unauthorized', 'anonymous is 401';
is_problem ship(999999999, \%parcel), 404, 'not-found', 'an unknown order is 404';
{
    my $r = ship($id, { carrier => 'La Poste' });
    is_problem $r, 422, undef, 'tracking_number missing is 422';
    has_field_error $r, 'tracking_number';
    $r = ship($id, { carrier => '', tracking_number => 'x' x 101 });
    has_field_error $r, 'carrier', 'an empty carrier is 422';
    has_field_error $r, 'tracking_number', 'a tracking number over 100 characters is 422';
    for my $f ([status => 'delivered'], [order_id => 1], [shipping_address => address()]) {
        $r = ship($id, { %parcel, $f->[0] => $f->[1] });
        is_problem $r, 422, undef, "a body with $f->[0] is 422 (mass assignment)";
        has_field_error $r, $f->[0];
    }
    is psql_value("SELECT count(*) FROM shipments WHERE order_id = $id"), 0, 'no shipment was created';
}
my $r = ship($id, \%parcel);
is $r->{status}, 201, 'staff ship a paid order: 201';
my $s = $r->{json};
ok is_int($s->{id}), '... an id';
is_deeply [ @$s{qw(order_id carrier tracking_number status)} ], [ $id, 'La Poste', '6A12345678901', 'pending' ],
    '... order_id, carrier, tracking_number, status pending';
is $s->{shipping_address}{city}, 'Marseille', "... the order's address";
ok is_rfc3339($s->{created_at}) && is_rfc3339($s->{updated_at}), '... timestamps';
like $r->{headers}{location} // '', qr{/shipments/$s->{id}/\z}, '... Location';
is order_status($id), 'paid', 'the order stays paid while the shipment is pending';

# --- GET: owner and staff; 404 for anyone else --------------------------------------
is api(GET => "/shipments/$s->{id}/", token => $alice->{token})->{status}, 200, 'the owner reads the shipment';
is api(GET => "/shipments/$s->{id}/", token => $staff)->{json}{tracking_number}, '6A12345678901', 'staff read it';
is_problem api(GET => "/shipments/$s->{id}/", token => $bob->{token}), 404, 'not-found', "another user's shipment is 404";
is_problem api(GET => '/shipments/999999999/', token => $alice->{token}), 404, 'not-found', 'an unknown shipment is 404';
is_problem api(GET => "/shipments/$s->{id}/"), 401, 'unauthorized', 'anonymous is 401';
is_problem move($s->{id}, 'shipped', token => $alice->{token}), 403, 'forbidden', 'the owner cannot PATCH a shipment (403)';
is_problem move($s->{id}, 'shipped', token => $bob->{token}), 403, 'forbidden', 'another user cannot PATCH it (403)';
is_problem move(999999999, 'shipped'), 404, 'not-found', 'PATCH an unknown shipment is 404';

# --- PATCH validation -----------------------------------------------------------------
{
    my $x = move($s->{id}, 'returned');
    is_problem $x, 422, undef, 'an unknown status is 422';
    has_field_error $x, 'status';
    $x = move($s->{id}, { status => 'shipped', carrier => 'DHL' });
    is_problem $x, 422, undef, 'PATCH with carrier is 422 (only status moves)';
    has_field_error $x, 'carrier';
    is_problem move($s->{id}, {}), 422, undef, 'PATCH without status is 422';
    is_problem move($s->{id}, 'pending'), 409, 'invalid-state', 'pending -> pending is 409';
}

# --- the full flow: paid -> shipped -> delivered, with a second parcel ---------------
$r = move($s->{id}, 'shipped');
is $r->{status}, 200, 'pending -> shipped is 200';
is $r->{json}{status}, 'shipped', '... the shipment is shipped';
is order_status($id), 'shipped', '... and the order is shipped';
is_problem move($s->{id}, 'pending'), 409, 'invalid-state', 'shipped -> pending (back) is 409';
is_problem move($s->{id}, 'shipped'), 409, 'invalid-state', 'shipped -> shipped (same) is 409';

$r = ship($id, { carrier => 'DHL', tracking_number => 'JD0002' });
is $r->{status}, 201, 'a second parcel on a shipped order is 201';
my $s2 = $r->{json};
is order_status($id), 'shipped', '... the order stays shipped';

is move($s->{id}, 'in_transit')->{status}, 200, 'shipped -> in_transit';
is move($s->{id}, 'delivered')->{status}, 200, 'in_transit -> delivered';
is order_status($id), 'shipped', 'one parcel delivered, one pending: the order stays shipped';
is_problem move($s->{id}, 'in_transit'), 409, 'invalid-state', 'delivered -> in_transit is 409';
$r = move($s2->{id}, 'delivered');
is $r->{status}, 200, 'pending -> delivered (skipping forward) is allowed';
is order_status($id), 'delivered', 'all parcels delivered: the order is delivered';
is_problem ship($id, \%parcel), 409, 'invalid-state', 'a delivered order gets no new shipment';
my $d = order_of($alice->{token}, $id)->{json};
is scalar @{ $d->{shipments} }, 2, 'the order lists both shipments';
is_deeply [ map { [ @$_{qw(from to actor)} ] } @{ $d->{events} } ],
    [ [ undef, 'pending', 'user' ], [ 'pending', 'paid', 'user' ], [ 'paid', 'shipped', 'staff' ],
      [ 'shipped', 'delivered', 'staff' ] ],
    'the order events: created, paid, shipped, delivered with their actors';
is psql_value("SELECT count(*) FROM order_events WHERE order_id = $id AND to_status = 'shipped'"), 1,
    'the order was shipped once, though two parcels shipped';

# --- skipping straight to delivered moves the order through shipped ------------------
{
    my ($o2) = place_order($alice);
    pay_ok($alice, $o2->{id});
    my $x = ship($o2->{id}, \%parcel)->{json};
    is move($x->{id}, 'delivered')->{status}, 200, 'pending -> delivered on a paid order';
    is order_status($o2->{id}), 'delivered', '... the order is delivered';
    is psql_value("SELECT string_agg(to_status, ',' ORDER BY id) FROM order_events WHERE order_id = $o2->{id}"),
        'pending,paid,shipped,delivered', '... through shipped, with both events';
}

# --- address required; cancelled orders -------------------------------------------------
{
    my ($o3) = place_order($alice, address => undef);
    pay_ok($alice, $o3->{id});
    is_problem ship($o3->{id}, \%parcel), 409, 'address-required', 'a paid order without an address: 409 address-required';
    my ($o4) = place_order($alice);
    pay_ok($alice, $o4->{id});
    my $x = ship($o4->{id}, \%parcel)->{json};
    is api(POST => "/orders/$o4->{id}/cancel/", token => $alice->{token})->{status}, 200,
        'a paid order with a pending shipment can still be cancelled';
    my $m = move($x->{id}, 'shipped');
    is_problem $m, 409, 'invalid-state', "the shipment of a cancelled order cannot move";
    is $m->{json}{order_status}, 'cancelled', '... naming the order state';
}

# --- two shipments delivered at the same moment: the order is delivered once --------
for my $round (1 .. 3) {
    my ($o5) = place_order($alice);
    pay_ok($alice, $o5->{id});
    my @ids = map { ship($o5->{id}, { carrier => 'UPS', tracking_number => "1Z$round$_" })->{json}{id} } 1 .. 2;
    move($_, 'shipped') for @ids;
    my @res = parallel(2, 1, sub { move($ids[$_[0]], 'delivered')->{status} });
    is_deeply \@res, [ 200, 200 ], "round $round: both parcels delivered at once: 200, 200";
    is order_status($o5->{id}), 'delivered', '... the order is delivered';
    is psql_value("SELECT count(*) FROM order_events WHERE order_id = $o5->{id} AND to_status = 'delivered'"), 1,
        '... once';
}

done_testing;
