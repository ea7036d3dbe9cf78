#!/usr/bin/perl
# The cart: shape, adding, merging, stock limits, validation, ownership,
# totals, and request-body handling (415, 400, 413).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $staff = staff_token();
my $alice = register_user();
my $bob = register_user();

my $empty = api(GET => '/cart/', token => $alice->{token});
is $empty->{status}, 200, 'GET /cart/ is 200';
like content_type($empty), qr{^application/json\b}i, 'cart is application/json';
{
    my $j = $empty->{json} // {};
    is_deeply $j->{items}, [], 'empty cart has items []';
    ok is_int($j->{subtotal}) && $j->{subtotal} == 0, 'empty cart subtotal 0';
    ok is_int($j->{discount}) && $j->{discount} == 0, 'empty cart discount 0';
    ok is_int($j->{total}) && $j->{total} == 0, 'empty cart total 0';
    like $j->{currency} // '', qr/\A[A-Z]{3}\z/, 'empty cart has a currency';
}
my $currency = $empty->{json}{currency} // 'GBP';
is api(GET => '/cart', token => $alice->{token})->{status}, 200, 'GET /cart without slash is 200';
is_problem api(GET => '/cart/'), 401, 'unauthorized', 'GET /cart/ anonymous is 401';
# POST /cart/ without credentials starts a guest cart (t/49-guest-cart.t);
# the other cart calls without credentials nor a Cart-Token stay 401
is_problem api(PATCH => '/cart/1/', body => { quantity => 1 }), 401, 'unauthorized',
    'PATCH /cart/{id}/ anonymous is 401';
is_problem api(DELETE => '/cart/1/'), 401, 'unauthorized', 'DELETE /cart/{id}/ anonymous is 401';

my $p1 = create_product(price => 1250, stock => 5);
my $p2 = create_product(price => 399, stock => 10);
my $p3 = create_product(price => 777, stock => 3);

# --- add ---------------------------------------------------------------------
my $add = api(POST => '/cart/', token => $alice->{token}, body => { product_id => $p1->{id}, quantity => 2 });
is $add->{status}, 201, 'POST /cart/ is 201';
my $line = $add->{json} // {};
ok is_int($line->{id}) && $line->{id} > 0, 'cart line has an id';
is $line->{product_id}, $p1->{id}, 'cart line product_id';
is $line->{name}, $p1->{name}, 'cart line name is the product name';
is $line->{quantity}, 2, 'cart line quantity';
is $line->{unit_price}, 1250, 'cart line unit_price is the product price';
is $line->{line_total}, 2500, 'cart line line_total = unit_price * quantity';
is $line->{currency}, $currency, 'cart line currency';

my $again = api(POST => '/cart/', token => $alice->{token}, body => { product_id => $p1->{id}, quantity => 1 });
is $again->{status}, 201, 'adding the same product again is 201';
is $again->{json}{id}, $line->{id}, 'adding the same product again keeps the same line';
is $again->{json}{quantity}, 3, 'adding the same product again raises the quantity (2 + 1)';
is $again->{json}{line_total}, 3750, 'line_total follows';
{
    my $c = api(GET => '/cart/', token => $alice->{token})->{json};
    is scalar @{ $c->{items} }, 1, 'the cart has one line for the product';
    is $c->{items}[0]{quantity}, 3, 'with quantity 3';
}

my $over = api(POST => '/cart/', token => $alice->{token}, body => { product_id => $p1->{id}, quantity => 3 });
is_problem $over, 409, undef, 'raising the quantity over the stock (3 + 3 > 5) is 409';
is api(GET => '/cart/', token => $alice->{token})->{json}{items}[0]{quantity}, 3, 'quantity unchanged after the 409';
is api(POST => '/cart/', token => $alice->{token}, body => { product_id => $p1->{id}, quantity => 2 })->{status},
    201, 'raising it to exactly the stock (5) is allowed';
is_problem api(POST => '/cart/', token => $bob->{token}, body => { product_id => $p3->{id}, quantity => 4 }),
    409, undef, 'adding more than the stock to an empty cart is 409';

my $dflt = api(POST => '/cart/', token => $alice->{token}, body => { product_id => $p2->{id} });
is $dflt->{status}, 201, 'POST /cart/ without quantity is 201';
is $dflt->{json}{quantity}, 1, 'quantity defaults to 1';

# --- validation -------------------------------------------------------------------
my @badq = (
    [ 'quantity 0', 0 ], [ 'quantity -1', -1 ], [ "quantity 'x'", 'x' ], [ 'quantity 1.5', 1.5 ],
    [ "quantity '2' (string)", '2' ], [ 'quantity 10001', 10001 ], [ 'quantity true', JSON::PP::true ],
    [ 'quantity []', [] ], [ 'quantity 1e20', 1e20 ],
);
for my $c (@badq) {
    my ($what, $q) = @$c;
    my $r = api(POST => '/cart/', token => $bob->{token}, body => { product_id => $p2->{id}, quantity => $q });
    is_problem $r, 422, 'validation', "POST /cart/ with $what is 422";
    has_field_error $r, 'quantity', "422 for $what names quantity";
}
for my $c ([ 'missing product_id', {} ], [ "product_id 'abc'", { product_id => 'abc' } ],
           [ 'product_id 1.5', { product_id => 1.5 } ], [ 'product_id null', { product_id => undef } ]) {
    my ($what, $body) = @$c;
    my $r = api(POST => '/cart/', token => $bob->{token}, body => { quantity => 1, %$body });
    is_problem $r, 422, 'validation', "POST /cart/ with $what is 422";
    has_field_error $r, 'product_id', "422 for $what names product_id";
}
is_deeply api(GET => '/cart/', token => $bob->{token})->{json}{items}, [], 'no invalid request added a line';

is_problem api(POST => '/cart/', token => $bob->{token}, body => { product_id => 999999999999, quantity => 1 }),
    404, 'not-found', 'unknown product is 404';
{
    my $ip = create_product(active => JSON::PP::false);
    is_problem api(POST => '/cart/', token => $bob->{token}, body => { product_id => $ip->{id}, quantity => 1 }),
        404, 'not-found', 'inactive product is 404';
}

# --- price in the body is ignored ----------------------------------------------------
{
    my $r = api(POST => '/cart/', token => $bob->{token},
                body => { product_id => $p3->{id}, quantity => 1, price => 1, unit_price => 1,
                          line_total => 1, user_id => $alice->{id} });
    is $r->{status}, 201, 'POST /cart/ with price/unit_price/user_id in the body is 201';
    is $r->{json}{unit_price}, 777, 'price in the body is ignored: unit_price is the product price';
    is $r->{json}{line_total}, 777, 'line_total from the product price';
    my $ac = api(GET => '/cart/', token => $alice->{token})->{json};
    ok !grep({ $_->{product_id} == $p3->{id} } @{ $ac->{items} }), 'user_id in the body did not put it in another cart';
}

# --- totals -------------------------------------------------------------------
{
    my $c = api(GET => '/cart/', token => $alice->{token})->{json};
    is scalar @{ $c->{items} }, 2, 'cart A has two lines';
    my $sum = 0;
    $sum += $_->{line_total} for @{ $c->{items} };
    my $bad = grep { $_->{line_total} != $_->{unit_price} * $_->{quantity} } @{ $c->{items} };
    ok !$bad, 'every line_total = unit_price * quantity';
    is $c->{subtotal}, $sum, 'subtotal = sum of line_total';
    is $sum, 5 * 1250 + 399, 'subtotal is the expected amount';
    is $c->{discount}, 0, 'discount is 0';
    is $c->{total}, $c->{subtotal} - $c->{discount}, 'total = subtotal - discount';
    is $c->{currency}, $currency, 'cart currency';
}
{   # current prices
    api(PATCH => "/products/$p2->{id}/", token => $staff, body => { price => 450 });
    my $c = api(GET => '/cart/', token => $alice->{token})->{json};
    my ($l) = grep { $_->{product_id} == $p2->{id} } @{ $c->{items} };
    is $l->{unit_price}, 450, 'the cart shows the current price after a price change';
    is $c->{subtotal}, 5 * 1250 + 450, 'subtotal follows the current price';
}

# --- PATCH and DELETE lines ----------------------------------------------------------
my $lid = $line->{id};
{
    my $r = api(PATCH => "/cart/$lid/", token => $alice->{token}, body => { quantity => 4 });
    is $r->{status}, 200, 'PATCH /cart/{id}/ is 200';
    is $r->{json}{quantity}, 4, 'PATCH sets the quantity';
    is $r->{json}{line_total}, 5000, 'PATCH returns the new line_total';
    is_problem api(PATCH => "/cart/$lid/", token => $alice->{token}, body => { quantity => 6 }), 409, undef,
        'PATCH over the stock is 409';
    my $z = api(PATCH => "/cart/$lid/", token => $alice->{token}, body => { quantity => 0 });
    is_problem $z, 422, 'validation', 'PATCH quantity 0 is 422';
    has_field_error $z, 'quantity';
    is_problem api(PATCH => "/cart/$lid/", token => $bob->{token}, body => { quantity => 1 }), 404, 'not-found',
        "PATCH of another user's line is 404";
    my ($l) = grep { $_->{id} == $lid } @{ api(GET => '/cart/', token => $alice->{token})->{json}{items} };
    is $l && $l->{quantity}, 4, 'quantity still 4 after the refused PATCHes';
}
{
    my $r = api(DELETE => "/cart/$lid/", token => $bob->{token});
    is_problem $r, 404, 'not-found', "DELETE of another user's line is 404";
    my $c = api(GET => '/cart/', token => $alice->{token})->{json};
    ok scalar(grep { $_->{id} == $lid } @{ $c->{items} }), 'the line still exists for its owner';
    my $d = api(DELETE => "/cart/$lid/", token => $alice->{token});
    is $d->{status}, 204, 'DELETE own line is 204';
    is $d->{content}, '', '204 has no body';
    is_problem api(DELETE => "/cart/$lid/", token => $alice->{token}), 404, 'not-found', 'DELETE it again is 404';
    my $c2 = api(GET => '/cart/', token => $alice->{token})->{json};
    ok !grep({ $_->{id} == $lid } @{ $c2->{items} }), 'the line is gone';
    is scalar @{ $c2->{items} }, 1, 'the other line is still there';
    is_problem api(DELETE => '/cart/999999999999/', token => $alice->{token}), 404, 'not-found', 'DELETE unknown line is 404';
    is_problem api(DELETE => "/cart/abc/", token => $alice->{token}), 404, 'not-found', 'DELETE /cart/abc/ is 404';
    is_problem api(DELETE => "/cart/$lid/"), 401, 'unauthorized', 'DELETE anonymous is 401';
}

# --- mixing currencies ------------------------------------------------------------------
{
    my $other = $currency eq 'XTS' ? 'XXX' : 'XTS';
    my $fx = create_product(currency => $other, price => 100, stock => 5);
    is_problem api(POST => '/cart/', token => $alice->{token}, body => { product_id => $fx->{id}, quantity => 1 }),
        409, undef, 'adding a product in another currency to a non-empty cart is 409';
}

# --- Idempotency-Key on POST /cart/ ----------------------------------------------------
{
    my $u = register_user();
    my $p = create_product(price => 100, stock => 10);
    my $key = 'cart-' . uniq();
    my %o = (token => $u->{token}, body => { product_id => $p->{id}, quantity => 2 },
             headers => { 'Idempotency-Key' => $key });
    my $r1 = api(POST => '/cart/', %o);
    is $r1->{status}, 201, 'POST /cart/ with an Idempotency-Key is 201';
    my $r2 = api(POST => '/cart/', %o);
    is $r2->{status}, 201, 'the same key again is 201';
    is lc($r2->{headers}{'idempotent-replayed'} // ''), 'true', 'with Idempotent-Replayed: true';
    is $r2->{json}{quantity}, 2, 'the replay is the first response';
    is api(GET => '/cart/', token => $u->{token})->{json}{items}[0]{quantity}, 2,
        'the replay did not add the quantity again';
    my $r3 = api(POST => '/cart/', %o, body => { product_id => $p->{id}, quantity => 3 });
    is_problem $r3, 422, 'idempotency-conflict', 'the same key with another body is 422';
}

# --- request bodies -------------------------------------------------------------------
my $pb = create_product(price => 10, stock => 100);
my $okbody = json_encode({ product_id => $pb->{id}, quantity => 1 });
{
    my $r = api(POST => '/cart/', token => $bob->{token}, body => $okbody, content_type => 'text/plain');
    is_problem $r, 415, 'unsupported-media-type', 'Content-Type text/plain is 415';
    my $r2 = api(POST => '/cart/', token => $bob->{token}, body => $okbody,
                 content_type => 'application/x-www-form-urlencoded');
    is_problem $r2, 415, 'unsupported-media-type', 'Content-Type form-urlencoded is 415';
    my $raw = raw_request("POST /cart/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        . "Authorization: Bearer $bob->{token}\r\nContent-Length: " . length($okbody) . "\r\n\r\n$okbody");
    is_problem $raw, 415, 'unsupported-media-type', 'a body without Content-Type is 415';
    my $cs = api(POST => '/cart/', token => $bob->{token}, body => $okbody,
                 content_type => 'application/json; charset=utf-8');
    is $cs->{status}, 201, 'Content-Type application/json; charset=utf-8 is accepted';
}
for my $c ([ 'malformed JSON', '{"product_id": ' ], [ 'a JSON array', '[1, 2]' ],
           [ 'a JSON string', '"hello"' ], [ 'trailing garbage', qq({"product_id": $pb->{id}} x) ],
           [ 'invalid UTF-8', qq({"product_id": $pb->{id}, "note": "\xff\xfe"}) ],
           [ 'an empty body', '' ]) {
    my ($what, $body) = @$c;
    my $r = api(POST => '/cart/', token => $bob->{token}, body => $body, content_type => 'application/json');
    if ($what eq 'an empty body') {
        ok $r->{status} == 400 || $r->{status} == 422, "POST /cart/ with $what is 400 or 422"
            or diag "got $r->{status}";
        is_problem $r, $r->{status}, undef, "POST /cart/ with $what is a problem";
    } else {
        is_problem $r, 400, 'bad-request', "POST /cart/ with $what is 400";
    }
}
{
    my $auth = "Authorization: Bearer $bob->{token}\r\n";
    my $big = '{"product_id": ' . $pb->{id} . ', "pad": "' . ('x' x (64 * 1024 + 100)) . '"}';
    my $r = raw_request("POST /cart/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n$auth"
        . "Content-Type: application/json\r\nContent-Length: " . length($big) . "\r\n\r\n$big");
    is_problem $r, 413, 'payload-too-large', 'a body over EcomMaxBodySize (64 KiB) is 413';
    my $chunked = '';
    my $head = '{"product_id": ' . $pb->{id} . ', "pad": "';
    $chunked .= sprintf("%x\r\n%s\r\n", length $head, $head);
    my $chunk = 'x' x 65536;
    $chunked .= sprintf("%x\r\n%s\r\n", length $chunk, $chunk) for 1 .. 2;
    $chunked .= "2\r\n\"}\r\n0\r\n\r\n";
    my $r2 = raw_request("POST /cart/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n$auth"
        . "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n$chunked");
    is_problem $r2, 413, 'payload-too-large', 'a chunked body over EcomMaxBodySize (64 KiB) is 413';
    my $r3 = api(POST => '/cart/', token => $bob->{token}, body => do {
        my @parts = ($okbody); sub { shift @parts } });
    ok $r3->{status} == 201, 'a small chunked JSON body is accepted' or diag "got $r3->{status} $r3->{content}";
    my $before = api(GET => '/cart/', token => $bob->{token})->{json};
    my ($l) = grep { $_->{product_id} == $pb->{id} } @{ $before->{items} };
    is $l && $l->{quantity}, 2, 'only the accepted requests (charset one and chunked one) changed the cart';
}
is api(GET => '/health/')->{status}, 200, 'server healthy after the body tests';

# --- headers: private answers are not cached by intermediaries -----------------
{
    my $u = register_user();
    my $c = api(GET => '/cart/', token => $u->{token});
    is $c->{headers}{'cache-control'}, 'private, no-store', 'the cart is private, no-store';
    is $c->{headers}{'x-content-type-options'}, 'nosniff', 'and nosniff';
    my $anon = api(GET => '/products/?limit=1');
    is $anon->{headers}{'x-content-type-options'}, 'nosniff', 'public answers are nosniff too';
    ok !defined $anon->{headers}{'cache-control'}, 'an anonymous catalog page is not marked private';
    my $e = api(GET => '/cart/');
    is $e->{headers}{'x-content-type-options'}, 'nosniff', 'error answers are nosniff';
}

done_testing;
