#!/usr/bin/perl
# Coupons (issue 10, "Discounts and dynamic prices": Coupons). Staff CRUD
# under /coupons/ (401 anonymous, 403 customers), validation and mass
# assignment (422, never 5xx), POST/DELETE /cart/coupon/ with the cart's
# coupon, discount and total, every refusal reason (422 on apply, 409
# coupon-<reason> at checkout with nothing written), eight racing
# checkouts on max_redemptions 3 (exactly three discounted orders, five
# 409 coupon-exhausted), the discount split across the lines to the cent
# (checked against the largest-remainder rule of ecom_money_split, and the
# SQL split against it on fixed cases), stored per line, and a refund by
# lines that returns exactly what was paid for them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $staff = staff_token();
my $n = 0;
sub code { my $c = 'c' . uniq() . '-' . ++$n; $c =~ tr/A-Z/a-z/; $c =~ s/[^a-z0-9_-]//g; substr($c, 0, 40) }
sub coupon {
    my (%b) = @_;
    $b{code} //= code();
    my $r = api(POST => '/coupons/', token => $staff, body => \%b);
    die "coupon: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    return $r->{json};
}
sub iso { POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) }
sub cart_with {
    my ($u, @lines) = @_;
    for my $l (@lines) {
        my $r = api(POST => '/cart/', token => $u->{token}, body => { product_id => $l->[0]{id}, quantity => $l->[1] });
        die "cart: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    }
}
sub apply { my ($u, $code) = @_; api(POST => '/cart/coupon/', token => $u->{token}, body => { code => $code }) }
sub cart  { api(GET => '/cart/', token => $_[0]{token})->{json} }
# the money core's rule (ecom_money_split, mod_ecom/ecom_money.h)
sub split_lr {
    my ($total, @w) = @_;
    my $s = 0; $s += $_ for @w;
    return map { 0 } @w if $s == 0;
    my @fl = map { int($total * $_ / $s) } @w;
    my @rem = map { ($total * $w[$_]) % $s } 0 .. $#w;
    my $left = $total; $left -= $_ for @fl;
    my @ord = sort { $rem[$b] <=> $rem[$a] || $a <=> $b } 0 .. $#w;
    $fl[ $ord[$_] ]++ for 0 .. $left - 1;
    return @fl;
}

# ---- staff CRUD and who may call it ----
my $cust = register_user();
{
    my $code = code();
    my $r = api(POST => '/coupons/', body => { code => $code, percent_off => 10 });
    is $r->{status}, 401, 'POST /coupons/ anonymous: 401';
    ok bearer_challenge_ok($r), '401 with WWW-Authenticate: Bearer';
    is_problem api(POST => '/coupons/', token => $cust->{token}, body => { code => $code, percent_off => 10 }), 403, undef,
        'POST /coupons/ as a customer: 403';
    is_problem api(GET => '/coupons/', token => $cust->{token}), 403, undef, 'GET /coupons/ as a customer: 403';
    is api(GET => '/coupons/')->{status}, 401, 'GET /coupons/ anonymous: 401';

    $r = api(POST => '/coupons/', token => $staff, body => { code => uc $code, percent_off => 15,
        min_subtotal => 500, max_redemptions => 10, once_per_user => JSON::PP::true(),
        starts_at => '2020-01-01T00:00:00Z', ends_at => '2099-01-01T00:00:00+01:00' });
    is $r->{status}, 201, 'staff creates a coupon: 201' or diag $r->{content};
    my $c = $r->{json};
    is $c->{code}, $code, 'the code is lower-cased';
    is $c->{percent_off}, 15, 'percent_off';
    ok !defined $c->{amount_off} && !defined $c->{currency}, 'no amount_off, no currency';
    is $c->{min_subtotal}, 500, 'min_subtotal';
    is $c->{max_redemptions}, 10, 'max_redemptions';
    is $c->{redemptions}, 0, 'no redemptions yet';
    ok is_true($c->{once_per_user}), 'once_per_user';
    is $c->{starts_at}, '2020-01-01T00:00:00Z', 'starts_at';
    is $c->{ends_at}, '2098-12-31T23:00:00Z', 'ends_at (offset applied)';
    like $r->{headers}{location} // '', qr{/coupons/\Q$code\E/$}, 'Location';

    is_problem api(POST => '/coupons/', token => $staff, body => { code => $code, amount_off => 100 }), 409, 'conflict',
        'the same code again: 409';
    $r = api(GET => "/coupons/$code/", token => $staff);
    is $r->{status}, 200, 'GET /coupons/{code}/';
    is $r->{json}{percent_off}, 15, '... the coupon';
    is api(GET => "/coupons/$code/", token => $cust->{token})->{status}, 403, 'GET one as a customer: 403';
    is api(GET => "/coupons/$code/")->{status}, 401, 'GET one anonymous: 401';
    is_problem api(GET => '/coupons/no-such-code-x/', token => $staff), 404, 'not-found', 'unknown code: 404';

    # PATCH: switch to an amount, clear the window, keep the rest
    $r = api(PATCH => "/coupons/$code/", token => $staff, body => { amount_off => 250, starts_at => undef });
    is $r->{status}, 200, 'PATCH to amount_off: 200' or diag $r->{content};
    ok !defined $r->{json}{percent_off}, '... percent_off gone';
    is $r->{json}{amount_off}, 250, '... amount_off';
    like $r->{json}{currency} // '', qr/^[A-Z]{3}$/, '... in the shop currency';
    ok !defined $r->{json}{starts_at}, '... starts_at cleared';
    is $r->{json}{max_redemptions}, 10, '... max_redemptions kept';
    is_problem api(PATCH => "/coupons/$code/", token => $cust->{token}, body => { percent_off => 100 }), 403, undef,
        'PATCH as a customer: 403';
    is api(GET => "/coupons/$code/", token => $staff)->{json}{amount_off}, 250, '... nothing changed';
    $r = api(PATCH => "/coupons/$code/", token => $staff, body => { code => 'other', redemptions => 5 });
    is_problem $r, 422, undef, 'PATCH code or redemptions: 422';
    has_field_error $r, 'code';
    has_field_error $r, 'redemptions';
    $r = api(PATCH => "/coupons/$code/", token => $staff, body => { ends_at => '2019-01-01T00:00:00Z', starts_at => '2019-06-01T00:00:00Z' });
    is_problem $r, 422, undef, 'PATCH ends_at before starts_at: 422';
    has_field_error $r, 'ends_at';
    is_problem api(PATCH => '/coupons/no-such-code-x/', token => $staff, body => { percent_off => 5 }), 404, 'not-found',
        'PATCH unknown: 404';

    # list (staff), paginated
    my %seen;
    my $path = '/coupons/?limit=2';
    for (1 .. 50) {
        my $l = api(GET => $path, token => $staff);
        is $l->{status}, 200, 'list page' or last;
        $seen{ $_->{code} }++ for @{ $l->{json}{items} };
        last unless defined $l->{json}{next_cursor};
        $path = "/coupons/?limit=2&cursor=$l->{json}{next_cursor}";
    }
    ok $seen{$code}, 'the list holds the coupon';
    ok !grep({ $_ > 1 } values %seen), 'no coupon twice across pages';
    is_problem api(GET => '/coupons/?cursor=garbage', token => $staff), 400, undef, 'bad cursor: 400';
    is_problem api(GET => '/coupons/?limit=0', token => $staff), 400, undef, 'limit=0: 400';

    is api(DELETE => "/coupons/$code/", token => $cust->{token})->{status}, 403, 'DELETE as a customer: 403';
    is api(DELETE => "/coupons/$code/", token => $staff)->{status}, 204, 'DELETE: 204';
    is api(GET => "/coupons/$code/", token => $staff)->{status}, 404, 'gone: 404';
    is api(DELETE => "/coupons/$code/", token => $staff)->{status}, 404, 'DELETE again: 404';
}

# ---- bad input: 422 naming the field, never 5xx ----
{
    my @bad = (
        [ { percent_off => 10 }, 'code', 'no code' ],
        [ { code => 'ab', percent_off => 10 }, 'code', 'code too short' ],
        [ { code => 'has space', percent_off => 10 }, 'code', 'code with a space' ],
        [ { code => 'x' x 41, percent_off => 10 }, 'code', 'code too long' ],
        [ { code => code() }, 'percent_off', 'neither percent_off nor amount_off' ],
        [ { code => code(), percent_off => 10, amount_off => 5 }, 'percent_off', 'both' ],
        [ { code => code(), percent_off => 0 }, 'percent_off', 'percent_off 0' ],
        [ { code => code(), percent_off => 101 }, 'percent_off', 'percent_off 101' ],
        [ { code => code(), percent_off => '10' }, 'percent_off', 'percent_off a string' ],
        [ { code => code(), percent_off => 10.5 }, 'percent_off', 'percent_off a float' ],
        [ { code => code(), amount_off => 0 }, 'amount_off', 'amount_off 0' ],
        [ { code => code(), amount_off => -5 }, 'amount_off', 'amount_off negative' ],
        [ { code => code(), amount_off => 5, currency => 'eur' }, 'currency', 'currency lower-case' ],
        [ { code => code(), percent_off => 5, currency => 'EUR' }, 'currency', 'currency with percent_off' ],
        [ { code => code(), percent_off => 5, min_subtotal => -1 }, 'min_subtotal', 'min_subtotal negative' ],
        [ { code => code(), percent_off => 5, max_redemptions => 0 }, 'max_redemptions', 'max_redemptions 0' ],
        [ { code => code(), percent_off => 5, max_redemptions => 2**40 }, 'max_redemptions', 'max_redemptions huge' ],
        [ { code => code(), percent_off => 5, starts_at => 'tomorrow' }, 'starts_at', 'starts_at not a time' ],
        [ { code => code(), percent_off => 5, starts_at => '2026-02-30T00:00:00Z' }, 'starts_at', 'February 30' ],
        [ { code => code(), percent_off => 5, ends_at => '2026-13-01T00:00:00Z' }, 'ends_at', 'month 13' ],
        [ { code => code(), percent_off => 5, ends_at => '2026-01-01 00:00:00' }, 'ends_at', 'no T and zone' ],
        [ { code => code(), percent_off => 5, ends_at => 12345 }, 'ends_at', 'ends_at a number' ],
        [ { code => code(), percent_off => 5, starts_at => '2030-01-01T00:00:00Z', ends_at => '2030-01-01T00:00:00Z' },
          'ends_at', 'empty window' ],
        [ { code => code(), percent_off => 5, once_per_user => 'yes' }, 'once_per_user', 'once_per_user a string' ],
        [ { code => code(), percent_off => 5, redemptions => 3 }, 'redemptions', 'mass assignment: redemptions' ],
        [ { code => code(), percent_off => 5, id => 1 }, 'id', 'mass assignment: id' ],
    );
    for my $b (@bad) {
        my $r = api(POST => '/coupons/', token => $staff, body => $b->[0]);
        is_problem $r, 422, undef, "POST /coupons/ $b->[2]: 422";
        has_field_error $r, $b->[1], "... names $b->[1]";
    }
    is_problem api(POST => '/coupons/', token => $staff, body => '{"code":'), 400, undef, 'malformed JSON: 400';
    is_problem api(POST => '/coupons/', token => $staff, body => '[1]'), 422, undef, 'an array body: 422'
        if 0;  # the router's rule for non-object bodies is covered by t/07
    my $r = api(GET => '/coupons/BAD%20CODE/', token => $staff);
    ok $r->{status} == 404 || $r->{status} == 400, "a code that is no path segment: $r->{status}";
    is_problem apply($cust, ''), 422, undef, 'apply an empty code: 422';
    is_problem api(POST => '/cart/coupon/', token => $cust->{token}, body => { code => 'abc', extra => 1 }), 422, undef,
        'apply with an unknown field: 422';
    is api(POST => '/cart/coupon/', body => { code => 'abc' })->{status}, 401, 'apply anonymous: 401';
    is api(DELETE => '/cart/coupon/')->{status}, 401, 'remove anonymous: 401';
}

# ---- applying: the cart's coupon, discount and total; every reason ----
my $p1 = create_product(price => 1999, stock => 100);
my $p2 = create_product(price => 3333, stock => 100);
{
    my $u = register_user();
    cart_with($u, [$p1, 1], [$p2, 2]);    # 1999 + 6666 = 8665
    my $c = cart($u);
    is $c->{subtotal}, 8665, 'subtotal';
    is $c->{discount}, 0, 'no coupon: discount 0';
    ok !defined $c->{coupon}, 'no coupon: null';

    my $r = apply($u, 'no-such-coupon-x');
    is_problem $r, 422, 'coupon-unknown', 'unknown code: 422 coupon-unknown';
    has_field_error $r, 'code';
    is $r->{json}{reason}, 'unknown', '... reason';

    my $future = coupon(percent_off => 10, starts_at => iso(time + 3600));
    is_problem apply($u, $future->{code}), 422, 'coupon-not-started', 'starts in an hour: 422 coupon-not-started';
    my $past = coupon(percent_off => 10, starts_at => iso(time - 7200), ends_at => iso(time - 3600));
    is_problem apply($u, $past->{code}), 422, 'coupon-expired', 'ended an hour ago: 422 coupon-expired';
    my $min = coupon(percent_off => 10, min_subtotal => 8666);
    is_problem apply($u, $min->{code}), 422, 'coupon-min-subtotal', 'min_subtotal one cent above: 422';
    my $min_ok = coupon(percent_off => 10, min_subtotal => 8665);
    my $other = coupon(amount_off => 100, currency => 'JPY');
    is_problem apply($u, $other->{code}), 422, 'coupon-currency', 'another currency: 422 coupon-currency';
    my $gone = coupon(percent_off => 10, max_redemptions => 1);
    psql_do("UPDATE coupons SET redemptions = 1 WHERE code = '$gone->{code}'");
    is_problem apply($u, $gone->{code}), 422, 'coupon-exhausted', 'no redemptions left: 422 coupon-exhausted';
    ok !defined cart($u)->{coupon}, 'refusals applied nothing';

    # min_subtotal reached exactly (the boundary), upper-case code accepted
    $r = apply($u, uc $min_ok->{code});
    is $r->{status}, 200, 'min_subtotal reached exactly: 200' or diag $r->{content};
    is $r->{json}{coupon}{code}, $min_ok->{code}, 'the answer is the cart with its coupon';
    is $r->{json}{discount}, 867, '10 % of 8665 = 866.5, rounded half up: 867';
    is $r->{json}{total}, 8665 - 867, 'total = subtotal - discount';
    ok is_true($r->{json}{coupon}{applicable}), 'applicable';

    # a second coupon replaces the first; amount_off capped at the subtotal
    my $big = coupon(amount_off => 100000);
    $r = apply($u, $big->{code});
    is $r->{json}{coupon}{code}, $big->{code}, 'a second coupon replaces the first';
    is $r->{json}{discount}, 8665, 'amount_off above the subtotal: capped at the subtotal';
    is $r->{json}{total}, 0, 'total 0, never negative';

    # the cart changes under the coupon: no longer applicable, shown so
    $r = apply($u, $min_ok->{code});
    my $line = (grep { $_->{product_id} == $p1->{id} } @{ cart($u)->{items} })[0];
    is api(DELETE => "/cart/$line->{id}/", token => $u->{token})->{status}, 204, 'a line removed';
    $c = cart($u);
    is $c->{coupon}{code}, $min_ok->{code}, 'the coupon stays on the cart';
    ok is_false($c->{coupon}{applicable}), '... not applicable now';
    is $c->{coupon}{reason}, 'min-subtotal', '... reason min-subtotal';
    is $c->{discount}, 0, '... discount 0';
    is $c->{total}, 6666, '... total = subtotal';
    $r = api(POST => '/orders/', token => $u->{token});
    is_problem $r, 409, 'coupon-min-subtotal', 'checkout with the coupon no longer applicable: 409';
    is cart($u)->{coupon}{code}, $min_ok->{code}, '... the cart and coupon unchanged';
    is scalar @{ cart($u)->{items} }, 1, '... the cart still holds its line';

    is api(DELETE => '/cart/coupon/', token => $u->{token})->{status}, 204, 'DELETE /cart/coupon/: 204';
    ok !defined cart($u)->{coupon}, '... no coupon';
    is_problem api(DELETE => '/cart/coupon/', token => $u->{token}), 404, 'not-found', 'again: 404';

    # a guest cart takes no coupon (documented): no Authorization is 401
    $r = api(POST => '/cart/', body => { product_id => $p1->{id}, quantity => 1 });
    if ($r->{status} == 201 && $r->{headers}{'cart-token'}) {
        my $g = api(POST => '/cart/coupon/', headers => { 'Cart-Token' => $r->{headers}{'cart-token'} },
                    body => { code => $min_ok->{code} });
        is $g->{status}, 401, 'a guest cart cannot take a coupon: 401';
        my $gc = api(GET => '/cart/', headers => { 'Cart-Token' => $r->{headers}{'cart-token'} });
        is $gc->{json}{discount}, 0, "a guest's cart: discount 0";
    }
}

# ---- once_per_user, the window boundary, the checkout and the order ----
{
    my $u = register_user();
    my $once = coupon(percent_off => 25, once_per_user => JSON::PP::true());
    cart_with($u, [$p1, 1]);
    is apply($u, $once->{code})->{status}, 200, 'once_per_user: applied';
    my $r = api(POST => '/orders/', token => $u->{token}, body => { expected_total => 1999 });
    is_problem $r, 409, 'price-changed', 'expected_total without the discount: 409';
    is $r->{json}{total}, 1999 - 500, '... shows the discounted total (25 % of 1999 = 499.75 -> 500)';
    $r = api(POST => '/orders/', token => $u->{token}, body => { expected_total => 1499 });
    is $r->{status}, 201, 'checkout with the coupon: 201' or diag $r->{content};
    my $o = $r->{json};
    is $o->{subtotal}, 1999, 'order subtotal';
    is $o->{discount}, 500, 'order discount';
    is $o->{total}, 1499, 'order total';
    is $o->{coupon}, $once->{code}, 'the order names the coupon';
    is $o->{lines}[0]{discount}, 500, 'the line holds the discount';
    my $d = api(GET => "/orders/$o->{id}/", token => $u->{token})->{json};
    is_deeply [ @$d{qw(subtotal discount total coupon)} ], [ 1999, 500, 1499, $once->{code} ], 'the order detail agrees';
    is $d->{lines}[0]{discount}, 500, '... and its line';
    ok !defined cart($u)->{coupon}, 'the coupon left the cart with the order';
    is api(GET => "/coupons/$once->{code}/", token => $staff)->{json}{redemptions}, 1, 'one redemption counted';
    cart_with($u, [$p1, 1]);
    is_problem apply($u, $once->{code}), 422, 'coupon-already-used', 'once_per_user, second time: 422 coupon-already-used';
    my $v = register_user();
    cart_with($v, [$p1, 1]);
    is apply($v, $once->{code})->{status}, 200, '... another user may';

    # used by this user while on another's cart: the checkout refuses
    my $w = register_user();
    cart_with($w, [$p1, 1]);
    is apply($w, $once->{code})->{status}, 200, 'applied by w';
    psql_do("INSERT INTO coupon_redemptions (coupon_id, user_id, order_id) "
          . "SELECT c.id, $w->{id}, $o->{id} FROM coupons c WHERE c.code = '$once->{code}'");
    is_problem api(POST => '/orders/', token => $w->{token}), 409, 'coupon-already-used',
        'redeemed meanwhile: checkout 409 coupon-already-used';

    # a window ending now: expired at the boundary (ends_at is exclusive)
    my $edge = coupon(percent_off => 5, ends_at => iso(time + 3));
    my $x = register_user();
    cart_with($x, [$p2, 1]);
    is apply($x, $edge->{code})->{status}, 200, 'applied before ends_at';
    psql_do("UPDATE coupons SET ends_at = now() WHERE code = '$edge->{code}'");
    $r = api(POST => '/orders/', token => $x->{token});
    is_problem $r, 409, 'coupon-expired', 'checkout at/after ends_at: 409 coupon-expired';
    is $r->{json}{coupon}, $edge->{code}, '... names the coupon';
    is psql_value("SELECT count(*) FROM orders WHERE user_id = $x->{id}"), 0, '... no order written';
    is api(GET => "/coupons/$edge->{code}/", token => $staff)->{json}{redemptions}, 0, '... no redemption counted';
    my $start = coupon(percent_off => 5, starts_at => iso(time - 1));
    is apply($x, $start->{code})->{status}, 200, 'starts_at just passed: applicable';

    # a deleted coupon leaves the cart
    my $del = coupon(percent_off => 5);
    is apply($x, $del->{code})->{status}, 200, 'applied';
    is api(DELETE => "/coupons/$del->{code}/", token => $staff)->{status}, 204, 'staff deletes it';
    ok !defined cart($x)->{coupon}, 'the cart no longer shows it';
    is api(POST => '/orders/', token => $x->{token})->{json}{discount}, 0, 'checkout without it';
}

# ---- the split to the cent, and a refund by lines ----
{
    # the SQL split against the money core's rule on fixed cases
    for my $case ([100, 1, 1, 1], [1, 1, 1], [2, 1, 1, 1], [7, 3, 0, 5], [999, 1999, 6666, 1], [0, 5, 5],
                  [5, 0, 0, 7], [1000000007, 333333, 666667, 1],
                  [0], [0, 0, 0], [0, 7], [0, 1, 2, 3, 4]) {   # a total of 0: sql/036's short cut
        my ($t, @w) = @$case;
        my $sql = psql_value("SELECT array_to_string(ecom_money_split($t, ARRAY[" . join(',', @w) . "]::bigint[]), ',')");
        is $sql, join(',', split_lr($t, @w)), "ecom_money_split($t, [@w]) agrees with the C rule";
    }
    is psql_value("SELECT array_to_string(ecom_money_split(0, ARRAY[1, NULL]::bigint[]), ',', 'null')"), '0,null',
        'ecom_money_split(0, [1, NULL]): a NULL weight keeps the query\'s answer';
    is psql_value("SELECT ecom_money_split(0, NULL) IS NOT DISTINCT FROM '{}'::bigint[]"), 't',
        'ecom_money_split(0, NULL): an empty split';
    my $pa = create_product(price => 333, stock => 50);
    my $pb = create_product(price => 333, stock => 50);
    my $pc = create_product(price => 334, stock => 50);
    my $u = register_user();
    cart_with($u, [$pa, 1], [$pb, 1], [$pc, 1]);     # 1000
    my $cp = coupon(amount_off => 100);
    is apply($u, $cp->{code})->{json}{total}, 900, 'amount_off 100 on 1000';
    my $r = api(POST => '/orders/', token => $u->{token}, body => { expected_total => 900 });
    is $r->{status}, 201, 'ordered' or diag $r->{content};
    my $o = $r->{json};
    my @lines = sort { $a->{product_id} <=> $b->{product_id} } @{ $o->{lines} };
    my @want = split_lr(100, map { $_->{line_total} } @lines);
    is_deeply [ map { $_->{discount} } @lines ], \@want, "line discounts (@want) by largest remainder";
    my $sum = 0; $sum += $_->{discount} for @lines;
    is $sum, 100, 'they sum to the discount to the cent';
    is psql_value("SELECT sum(discount) FROM order_lines WHERE order_id = $o->{id}"), 100, 'stored per line';
    is api(POST => "/orders/$o->{id}/payments/", token => $u->{token}, body => { token => 'tok_ok' })->{status}, 201, 'paid';

    # refund the line of $c: exactly what was paid for it
    my ($lc) = grep { $_->{product_id} == $pc->{id} } @lines;
    $r = api(POST => "/orders/$o->{id}/refunds/", token => $staff, body => { lines => [ $lc->{id} ] });
    is $r->{status}, 201, 'refund by lines: 201' or diag $r->{content};
    is $r->{json}{amount}, $lc->{line_total} - $lc->{discount}, 'the refund is the line as paid (line_total - discount)';
    is_problem api(POST => "/orders/$o->{id}/refunds/", token => $staff, body => { lines => [ $lc->{id} ] }), 409,
        'line-already-refunded', 'the same line again: 409';
    is_problem api(POST => "/orders/$o->{id}/refunds/", token => $staff, body => { lines => [ 999999999 ] }), 422, undef,
        'a line of no such order: 422';
    my $other = pending_order(register_user());
    my $oline = psql_value("SELECT min(id) FROM order_lines WHERE order_id = $other->{id}");
    $r = api(POST => "/orders/$o->{id}/refunds/", token => $staff, body => { lines => [ $oline ] });
    is_problem $r, 422, undef, "another order's line: 422";
    has_field_error $r, 'lines';
    for my $bad ([], [0], ['x'], [1, 1], 'x') {
        is_problem api(POST => "/orders/$o->{id}/refunds/", token => $staff, body => { lines => $bad }), 422, undef,
            'lines ' . JSON::PP->new->allow_nonref->encode($bad) . ': 422';
    }
    is_problem api(POST => "/orders/$o->{id}/refunds/", token => $staff, body => { lines => [ $lines[0]{id} ], amount => 5 }),
        422, undef, 'lines and amount: 422';
    is_problem api(POST => "/orders/$o->{id}/refunds/", token => $cust->{token}, body => { lines => [ $lines[0]{id} ] }),
        403, undef, 'refund as a customer: 403';
    # the other two lines: the order is refunded in full, exactly the total
    $r = api(POST => "/orders/$o->{id}/refunds/", token => $staff, body => { lines => [ map { $_->{id} } grep { $_->{id} != $lc->{id} } @lines ] });
    is $r->{status}, 201, 'the rest by lines: 201' or diag $r->{content};
    my $d = api(GET => "/orders/$o->{id}/", token => $staff)->{json};
    is $d->{refunded_amount}, 900, 'refunded exactly the 900 paid';
    is $d->{status}, 'refunded', 'the order is refunded';
}

# ---- eight racing checkouts on max_redemptions 3 ----
{
    my $p = create_product(price => 1000, stock => 100);
    my $race = coupon(percent_off => 50, max_redemptions => 3);
    my @u = map { register_user() } 1 .. 8;
    for my $u (@u) {
        cart_with($u, [$p, 1]);
        my $r = apply($u, $race->{code});
        die "apply: $r->{status}\n" unless $r->{status} == 200;
    }
    my $stock0 = psql_value("SELECT stock FROM products WHERE id = $p->{id}");
    my @res = parallel(8, 1, sub {
        my $r = api(POST => '/orders/', token => $u[$_[0]]{token}, body => { expected_total => 500 });
        return { status => $r->{status}, type => $r->{json}{type}, discount => $r->{json}{discount} };
    });
    my @ok = grep { ($_->{status} // 0) == 201 } @res;
    my @ex = grep { ($_->{status} // 0) == 409 && ($_->{type} // '') eq 'urn:mod-ecom:problem:coupon-exhausted' } @res;
    is scalar @ok, 3, 'exactly three checkouts succeed';
    is scalar @ex, 5, 'the five others: 409 coupon-exhausted';
    ok !grep({ ($_->{discount} // 0) != 500 } @ok), 'the three are discounted';
    is api(GET => "/coupons/$race->{code}/", token => $staff)->{json}{redemptions}, 3, 'redemptions = 3';
    is psql_value("SELECT count(*) FROM orders WHERE coupon_code = '$race->{code}'"), 3, 'three orders hold the coupon';
    is psql_value("SELECT count(*) FROM coupon_redemptions r JOIN coupons c ON c.id = r.coupon_id WHERE c.code = '$race->{code}'"),
        3, 'three redemptions recorded';
    is psql_value("SELECT stock FROM products WHERE id = $p->{id}"), $stock0 - 3, 'stock taken for three orders only';
    my $left = 0;
    for my $u (@u) { $left++ if @{ cart($u)->{items} } == 1 && cart($u)->{coupon} }
    is $left, 5, 'the five refused carts are unchanged (line and coupon)';
}

done_testing;
