#!/usr/bin/perl
# Refunds (issue 7): staff only (403 for a user, 404 for an unknown order),
# on paid / shipped / delivered orders (409 otherwise); amount > 0 and never
# above what was paid (422 refund-exceeds-payment with what is left), also
# for two refunds at the same moment; restock once; partial refunds
# reaching the amount paid make the order refunded; Idempotency-Key;
# mass assignment (currency, status, order_id in the body: 422).
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
sub stock_of { psql_value("SELECT stock FROM products WHERE id = $_[0]{id}") }
sub refund { my ($id, $body, %o) = @_;
             api(POST => "/orders/$id/refunds/", token => $o{token} // $staff, body => $body,
                 headers => $o{headers} // {}) }
sub amounts { psql_value("SELECT paid_amount || '/' || refunded_amount || ' ' || status FROM orders WHERE id = $_[0]") }

# --- who, and on what ----------------------------------------------------------------
my ($o, $p) = place_order($alice, price => 1000, stock => 10, quantity => 3);   # total 3000
my $id = $o->{id};
is_problem refund($id, { amount => 100 }), 409, 'invalid-state', 'refund of a pending order is 409';
pay_ok($alice, $id);
is_problem refund($id, { amount => 100 }, token => $alice->{token}), 403, 'forbidden',
    'a user (even the owner) refunding is 403';
is_problem api(POST => "/orders/$id/refunds/", body => { amount => 100 }), 401, 'unauthorized',
    'anonymous refund is 401';
is_problem refund(999999999, { amount => 100 }), 404, 'not-found', 'refund of an unknown order is 404';
is amounts($id), '3000/0 paid', 'nothing refunded yet';

# --- validation and mass assignment ------------------------------------------------
for my $bad ([0, 'zero'], [-5, 'negative'], [1.5, 'fractional'], ['100', 'a string']) {
    my $r = refund($id, { amount => $bad->[0] });
    is_problem $r, 422, undef, "amount $bad->[1] is 422";
    has_field_error $r, 'amount';
}
{
    my $r = refund($id, {});
    is_problem $r, 422, undef, 'amount missing is 422';
    has_field_error $r, 'amount';
    for my $f ([currency => 'USD'], [status => 'failed'], [order_id => 1], [payment_id => 1]) {
        $r = refund($id, { amount => 100, $f->[0] => $f->[1] });
        is_problem $r, 422, undef, "a body with $f->[0] is 422";
        has_field_error $r, $f->[0];
    }
    $r = refund($id, { amount => 100, reason => 'x' x 501 });
    has_field_error $r, 'reason', 'reason over 500 characters is 422';
    $r = refund($id, { amount => 100, restock => 'yes' });
    has_field_error $r, 'restock', 'restock not a boolean is 422';
}
is amounts($id), '3000/0 paid', 'no refused request refunded anything';
is psql_value("SELECT count(*) FROM refunds WHERE order_id = $id"), 0, 'no refund row';

# --- partial refunds up to the total -------------------------------------------------
my $r = refund($id, { amount => 1000, reason => 'damaged box' });
is $r->{status}, 201, 'a partial refund is 201';
my $rf = $r->{json};
ok is_int($rf->{id}), '... with an id';
is_deeply [ @$rf{qw(order_id amount currency status reason)} ], [ $id, 1000, $o->{currency}, 'succeeded', 'damaged box' ],
    '... order_id, amount, the order currency, succeeded, reason';
ok is_false($rf->{restock}), '... restock false by default';
ok is_rfc3339($rf->{created_at}), '... created_at';
like $r->{headers}{location} // '', qr{/orders/$id/\z}, '... Location: the order, which lists its refunds';
is amounts($id), '3000/1000 paid', 'refunded_amount 1000, still paid';
is stock_of($p), 7, 'no restock without restock';

$r = refund($id, { amount => 2001 });
is_problem $r, 422, 'refund-exceeds-payment', 'a refund above what is left is 422';
is $r->{json}{refundable}, 2000, '... telling what can still be refunded';
is amounts($id), '3000/1000 paid', '... nothing changed';

$r = refund($id, { amount => 500, restock => JSON::PP::true });
is $r->{status}, 201, 'a refund with restock is 201';
ok is_true($r->{json}{restock}), '... restock true';
is stock_of($p), 10, '... the lines are back to stock';
$r = refund($id, { amount => 500, restock => JSON::PP::true });
is $r->{status}, 201, 'a second refund with restock is 201';
is stock_of($p), 10, '... and restocks nothing twice';

# idempotent replay
my %h = ('Idempotency-Key' => 'refund-' . uniq());
my $r1 = refund($id, { amount => 400 }, headers => \%h);
my $r2 = refund($id, { amount => 400 }, headers => \%h);
is $r1->{status}, 201, 'a refund with an Idempotency-Key is 201';
is $r2->{status}, 201, '... the same key again replays 201';
is lc($r2->{headers}{'idempotent-replayed'} // ''), 'true', '... marked replayed';
is $r2->{json}{id}, $r1->{json}{id}, '... the same refund';
is amounts($id), '3000/2400 paid', '... refunded once';

$r = refund($id, { amount => 600 });
is $r->{status}, 201, 'the refund that reaches the amount paid is 201';
is amounts($id), '3000/3000 refunded', 'the order is refunded';
my $d = order_of($alice->{token}, $id)->{json};
is scalar @{ $d->{refunds} }, 5, 'the order lists its five refunds';
is $d->{refunded_amount}, 3000, 'refunded_amount 3000';
is_deeply [ @{ $d->{events}[-1] }{qw(from to actor actor_id)} ], [ 'paid', 'refunded', 'staff', $staff_id ],
    'the event paid -> refunded by staff';
is_problem refund($id, { amount => 1 }), 409, 'invalid-state', 'a refunded order cannot be refunded again';

# --- shipped and delivered orders can be refunded; cancelled cannot ----------------
for my $st (qw(shipped delivered)) {
    my ($o2) = place_order($alice, price => 700, quantity => 1);
    pay_ok($alice, $o2->{id});
    psql_do("UPDATE orders SET status = '$st' WHERE id = $o2->{id}");
    is refund($o2->{id}, { amount => 300 })->{status}, 201, "a $st order can be partly refunded";
    is refund($o2->{id}, { amount => 400 })->{status}, 201, "... up to the total";
    is amounts($o2->{id}), '700/700 refunded', "... then the $st order is refunded";
}
{
    my ($o3) = place_order($alice);
    pay_ok($alice, $o3->{id});
    api(POST => "/orders/$o3->{id}/cancel/", token => $alice->{token});
    is_problem refund($o3->{id}, { amount => 1 }), 409, 'invalid-state', 'a cancelled order cannot be refunded';
}

# --- two refunds racing past the amount paid -------------------------------------------
for my $round (1 .. 3) {
    my ($o4) = place_order($alice, price => 1000, quantity => 1);
    pay_ok($alice, $o4->{id});
    my @res = parallel(2, 1, sub {
        my $x = refund($o4->{id}, { amount => 700 });
        return [ $x->{status}, ref $x->{json} eq 'HASH' ? $x->{json}{type} // '' : '' ];
    });
    my @st = sort map { $_->[0] } @res;
    is_deeply \@st, [ 201, 422 ], "round $round: two refunds of 700 on 1000: exactly one wins";
    my ($lost) = grep { $_->[0] == 422 } @res;
    like $lost->[1] // '', qr/refund-exceeds-payment\z/, '... the other is refund-exceeds-payment';
    is amounts($o4->{id}), '1000/700 paid', '... refunded_amount 700 <= paid_amount';
    is psql_value("SELECT coalesce(sum(amount), 0) FROM refunds WHERE order_id = $o4->{id}"), 700,
        '... the refund rows sum to 700';
}
{
    # many small refunds at once: never above the total
    my ($o5) = place_order($alice, price => 1000, quantity => 1);
    pay_ok($alice, $o5->{id});
    my @res = parallel(8, 1, sub { refund($o5->{id}, { amount => 300 })->{status} });
    is scalar(grep { $_ == 201 } @res), 3, 'eight refunds of 300 on 1000 at once: three pass';
    is scalar(grep { $_ == 422 } @res), 5, '... five are 422';
    is amounts($o5->{id}), '1000/900 paid', '... refunded 900';
}

done_testing;
