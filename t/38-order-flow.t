#!/usr/bin/perl
# The whole order lifecycle through the API only (issue 7, "Done when"):
#   cart -> order -> pay -> ship -> deliver;
#   pay -> cancel (full refund record, restock);
#   pay -> partial refunds -> refunded;
#   tok_async -> signed webhook -> paid;
# stock plus units sold always equals the start; the staff feed shows every
# step with its actor. (The races: t/30, t/33, t/34, t/37.)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(hmac_sha256_hex);
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $staff = staff_token();
my %address = (name => 'Ada Lovelace', line1 => '12 St James Square',
               city => 'London', postal_code => 'SW1Y 4JH', country => 'GB');

sub stock_of { psql_value("SELECT stock FROM products WHERE id = $_[0]") }

# A user with one order of $qty units of a new product (stock $stock).
sub ordered {
    my (%o) = @_;
    my $u = $o{user} // register_user();
    my $p = create_product(price => $o{price} // 1250, stock => $o{stock} // 10);
    my $r = api(POST => '/cart/', token => $u->{token},
                body => { product_id => $p->{id}, quantity => $o{qty} // 2 });
    die "cart add: $r->{status} $r->{content}" unless $r->{status} == 201;
    my %body = $o{no_address} ? () : (shipping_address => \%address);
    $r = api(POST => '/orders/', token => $u->{token}, body => \%body);
    die "checkout: $r->{status} $r->{content}" unless $r->{status} == 201;
    return ($u, $p, $r->{json});
}

sub pay {
    my ($u, $order, $token, %h) = @_;
    return api(POST => "/orders/$order->{id}/payments/", token => $u->{token},
               body => { token => $token }, headers => \%h);
}

sub order_of { api(GET => "/orders/$_[1]{id}/", token => $_[0]{token})->{json} }

sub feed_types {
    my ($order_id) = @_;
    my $r = api(GET => "/events/?order_id=$order_id&limit=100", token => $staff);
    return [ map { "$_->{type}:" . ($_->{actor} // '-') } @{ $r->{json}{items} || [] } ];
}

# --- cart -> order -> pay -> ship -> deliver -----------------------------------
{
    my ($u, $p, $o) = ordered(qty => 3, price => 1250);
    is $o->{status}, 'pending', 'checkout: pending';
    is $o->{total}, 3750, '... total 3 x 1250';
    is_deeply $o->{shipping_address}{country}, 'GB', '... with the address snapshot';
    is stock_of($p->{id}), 7, '... 3 units taken from stock';

    my $pay = pay($u, $o, 'tok_ok');
    is $pay->{status}, 201, 'tok_ok: 201';
    is $pay->{json}{amount}, 3750, '... for the order total';
    is $pay->{json}{status}, 'succeeded', '... succeeded';
    is order_of($u, $o)->{status}, 'paid', 'the order is paid';

    my $s = api(POST => "/orders/$o->{id}/shipments/", token => $staff,
                body => { carrier => 'DHL', tracking_number => 'JD0146' });
    is $s->{status}, 201, 'staff ships: 201 shipment';
    is $s->{json}{status}, 'pending', '... pending';
    my $sid = $s->{json}{id};
    for my $st (qw(shipped in_transit delivered)) {
        my $r = api(PATCH => "/shipments/$sid/", token => $staff, body => { status => $st });
        is $r->{status}, 200, "shipment -> $st";
        my $want = $st eq 'delivered' ? 'delivered' : 'shipped';
        is order_of($u, $o)->{status}, $want, "... order $want";
    }
    my $d = order_of($u, $o);
    is_deeply [ map { $_->{to} } @{ $d->{events} } ],
        [qw(pending paid shipped delivered)], 'order events: the whole path';
    is_deeply [ map { $_->{actor} } @{ $d->{events} } ],
        [qw(user user staff staff)], '... with their actors';
    is scalar @{ $d->{payments} }, 1, 'detail shows the payment';
    is scalar @{ $d->{shipments} }, 1, '... and the shipment';
    my $feed = feed_types($o->{id});
    is_deeply [ grep { /^order\./ } @$feed ],
        [ 'order.created:user', 'order.paid:user', 'order.shipped:staff', 'order.delivered:staff' ],
        'the staff feed has every order transition, oldest first';
    ok((grep { $_ eq 'payment.succeeded:-' } @$feed), '... and the payment');
    ok((grep { /^shipment\.delivered/ } @$feed), '... and the shipment steps');
    is_problem api(POST => "/orders/$o->{id}/cancel/", token => $u->{token}), 409,
        'invalid-state', 'a delivered order cannot be cancelled';
    is stock_of($p->{id}), 7, 'stock unchanged by the refused cancel';
}

# --- pay -> cancel: full refund record and restock ------------------------------
{
    my ($u, $p, $o) = ordered(qty => 4, price => 999, stock => 9);
    is pay($u, $o, 'tok_ok')->{status}, 201, 'paid';
    my $c = api(POST => "/orders/$o->{id}/cancel/", token => $u->{token});
    is $c->{status}, 200, 'the owner cancels a paid order: 200';
    is $c->{json}{status}, 'cancelled', '... cancelled';
    is stock_of($p->{id}), 9, '... every unit back in stock';
    my $d = order_of($u, $o);
    is scalar @{ $d->{refunds} }, 1, '... one refund record';
    is $d->{refunds}[0]{amount}, 3996, '... of the whole amount paid';
    is $d->{refunded_amount}, $d->{paid_amount}, '... refunded equals paid';
    is_problem api(POST => "/orders/$o->{id}/cancel/", token => $u->{token}), 409,
        'invalid-state', 'cancelling again is 409';
    is stock_of($p->{id}), 9, '... and restocks nothing twice';
}

# --- pay -> partial refunds -> refunded -----------------------------------------
{
    my ($u, $p, $o) = ordered(qty => 1, price => 5000);
    is pay($u, $o, 'tok_ok')->{status}, 201, 'paid 5000';
    my $r1 = api(POST => "/orders/$o->{id}/refunds/", token => $staff,
                 body => { amount => 2000, reason => 'damaged box' });
    is $r1->{status}, 201, 'a partial refund: 201';
    is order_of($u, $o)->{status}, 'paid', '... the order stays paid';
    is_problem api(POST => "/orders/$o->{id}/refunds/", token => $staff, body => { amount => 3001 }),
        422, 'refund-exceeds-payment', 'more than what is left: 422';
    my $r2 = api(POST => "/orders/$o->{id}/refunds/", token => $staff, body => { amount => 3000 });
    is $r2->{status}, 201, 'the rest: 201';
    my $d = order_of($u, $o);
    is $d->{status}, 'refunded', 'refunds reaching the amount paid: refunded';
    is $d->{refunded_amount}, 5000, '... 5000 refunded';
    is $d->{events}[-1]{actor}, 'staff', '... by staff';
}

# --- tok_async -> signed webhook -> paid ---------------------------------------
{
    my $secret = 'dev-webhook-secret-not-for-production-0001';   # conf/httpd.conf.in
    my ($u, $p, $o) = ordered(qty => 1, price => 700);
    my $a = pay($u, $o, 'tok_async');
    is $a->{status}, 202, 'tok_async: 202';
    is $a->{json}{status}, 'processing', '... processing';
    is order_of($u, $o)->{status}, 'pending', '... the order waits';
    my $body = json_encode({ id => 'evt_flow_' . uniq(), type => 'payment.succeeded',
                             data => { payment_id => $a->{json}{id} } });
    my $t = time;
    my $sig = "t=$t,v1=" . hmac_sha256_hex("$t.$body", $secret);
    my $w = api(POST => '/payments/webhook/', body => $body,
                headers => { 'Ecom-Signature' => $sig });
    is $w->{status}, 200, 'the signed webhook: 200';
    my $d = order_of($u, $o);
    is $d->{status}, 'paid', '... the order is paid';
    is $d->{events}[-1]{actor}, 'provider', '... by the provider';
}

done_testing;
