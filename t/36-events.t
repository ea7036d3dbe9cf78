#!/usr/bin/perl
# The staff event feed (issue 7): GET /events/ lists what the triggers of
# sql/005 recorded, oldest first, cursor-paginated, filtered by ?type=
# (exact or the kind before the dot) and ?order_id=; 403 for users, 400
# for a bad filter or cursor. A whole order's life shows in order with
# its actors.
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
sub feed { api(GET => "/events/$_[0]", token => $_[1] // $staff) }
sub all_events {
    my ($query) = @_;
    my (@items, $cursor);
    for (1 .. 200) {
        my $q = "?limit=3$query";
        $q .= '&cursor=' . ($cursor =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ger) if defined $cursor;
        my $r = feed($q);
        return undef unless $r->{status} == 200;
        push @items, @{ $r->{json}{items} };
        $cursor = $r->{json}{next_cursor};
        last unless defined $cursor;
    }
    return \@items;
}

# --- access and bad filters -----------------------------------------------------------
is_problem feed('', $alice->{token}), 403, 'forbidden', 'a user reading the feed is 403';
is_problem api(GET => '/events/'), 401, 'unauthorized', 'anonymous is 401';
for my $bad ('type=', 'type=Payment', 'type=payment.', 'type=.failed', 'type=payment.failed.x',
             'type=pay%25', 'type=' . ('a' x 101), 'order_id=0', 'order_id=-1', 'order_id=abc',
             'order_id=1.5', 'cursor=zzz', 'limit=0') {
    is_problem feed("?$bad"), 400, 'bad-request', "?$bad is 400";
}
{
    # a cursor of another list is refused
    my $orders = api(GET => '/orders/?limit=1', token => $staff);
    my $oc = $orders->{json}{next_cursor};
    if (defined $oc) {
        is_problem feed("?cursor=$oc"), 400, 'bad-request', "the orders list's cursor is 400 here";
    } else {
        pass 'no second page of orders to take a cursor from';
    }
}

# --- a whole life: created, paid, shipped, delivered, refunded ----------------------------
my ($o, $p) = place_order($alice, price => 900, quantity => 1);
my $id = $o->{id};
pay_ok($alice, $id);
my $sid = api(POST => "/orders/$id/shipments/", token => $staff,
              body => { carrier => 'DPD', tracking_number => 'DPD1' })->{json}{id};
api(PATCH => "/shipments/$sid/", token => $staff, body => { status => 'shipped' });
api(PATCH => "/shipments/$sid/", token => $staff, body => { status => 'delivered' });
api(POST => "/orders/$id/refunds/", token => $staff, body => { amount => 400 });
api(POST => "/orders/$id/refunds/", token => $staff, body => { amount => 500, reason => 'lost' });

my $items = all_events("&order_id=$id");
ok $items, 'the feed of one order reads through every page (limit 3)';
is_deeply [ map { $_->{type} } @$items ],
    [ qw(order.created payment.succeeded order.paid shipment.created shipment.shipped order.shipped
         shipment.delivered order.delivered refund.succeeded refund.succeeded order.refunded) ],
    'each change in order: created, paid, shipment created/shipped, shipped, delivered, two refunds, refunded';
is_deeply [ map { $_->{actor} } grep { $_->{type} =~ /^order\./ } @$items ],
    [ qw(user user staff staff staff) ], 'order events carry their actors';
my @ids = map { $_->{id} } @$items;
is_deeply \@ids, [ sort { $a <=> $b } @ids ], 'oldest first (ascending ids)';
ok !grep({ $_->{order_id} != $id } @$items), 'only the order asked for';
my $e0 = $items->[0];
ok is_int($e0->{id}) && is_rfc3339($e0->{created_at}), 'an event has an id and created_at';
is_deeply [ sort keys %$e0 ], [ qw(actor created_at data id order_id type) ], 'an event has exactly its fields';
is ref $e0->{data}, 'HASH', 'data is an object';
is $e0->{data}{to}, 'pending', 'the order event data holds from and to';
my ($refund_ev) = grep { $_->{type} eq 'refund.succeeded' } @$items;
is $refund_ev->{data}{amount}, 400, 'a refund event holds the refund';
my ($ship_ev) = grep { $_->{type} eq 'shipment.created' } @$items;
is $ship_ev->{data}{tracking_number}, 'DPD1', 'a shipment event holds the shipment';

# --- type filters -----------------------------------------------------------------------
my $pay = all_events("&order_id=$id&type=payment");
is_deeply [ map { $_->{type} } @$pay ], [ 'payment.succeeded' ], '?type=payment: the payment kind';
my $ship = all_events("&order_id=$id&type=shipment");
is_deeply [ map { $_->{type} } @$ship ], [ qw(shipment.created shipment.shipped shipment.delivered) ],
    '?type=shipment: every shipment event';
my $exact = all_events("&order_id=$id&type=order.paid");
is_deeply [ map { $_->{type} } @$exact ], [ 'order.paid' ], '?type=order.paid: exactly that type';
is_deeply all_events("&order_id=$id&type=ship"), [], '?type=ship is not a prefix match of shipment';
is_deeply all_events('&order_id=999999999'), [], 'an unknown order_id: an empty list';

# --- stable under inserts: a cursor continues after new events ----------------------
{
    my $first = feed("?order_id=$id&limit=100")->{json};
    is $first->{next_cursor}, undef, 'one page holds the order: next_cursor null';
    my $page = feed("?order_id=$id&limit=10")->{json};
    my $c = $page->{next_cursor};
    ok defined $c, 'ten of eleven: a next cursor';
    my $r = api(POST => "/orders/$id/cancel/", token => $alice->{token});
    is_problem $r, 409, 'invalid-state', 'a refunded order cannot be cancelled (no event)';
    my $next = feed("?order_id=$id&limit=10&cursor=" . ($c =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ger))->{json};
    is_deeply [ map { $_->{type} } @{ $next->{items} } ], [ 'order.refunded' ], 'the next page continues after the cursor';
}

# --- a cancel of a paid order: refund event, then the cancel by the user ---------------
{
    my ($o2) = place_order($alice);
    pay_ok($alice, $o2->{id});
    api(POST => "/orders/$o2->{id}/cancel/", token => $alice->{token});
    my $ev = all_events("&order_id=$o2->{id}");
    is_deeply [ map { [ $_->{type}, $_->{actor} ] } @$ev ],
        [ [ 'order.created', 'user' ], [ 'payment.succeeded', undef ], [ 'order.paid', 'user' ],
          [ 'refund.succeeded', undef ], [ 'order.cancelled', 'user' ] ],
        'pay then cancel: the refund, then order.cancelled by the user';
}

done_testing;
