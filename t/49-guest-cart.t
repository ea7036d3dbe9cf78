#!/usr/bin/perl
# Guest carts (issue 9, part 5): POST /cart/ without credentials makes a
# guest cart and answers its Cart-Token; the token (stored only as its
# SHA-256) then reads and changes that cart, with the user cart's
# validation, caps and currency rule; without credentials nor a token every
# other cart call stays 401; an unknown, malformed or expired token is 401;
# checkout needs an account; a login or register carrying the token merges
# the guest cart into the account's (quantities added and capped, currency
# conflicts and unavailable products reported, nothing lost or duplicated,
# the guest cart gone, a second login merges nothing, a full cart's new
# lines reported; concurrent logins with one token merge once, adds racing
# a merge lose nothing); expired carts are refused at once and purged by
# mod_watchdog (EcomPurgeInterval 2 here).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(time sleep);
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $TOKEN_RE = qr/\A[A-Za-z0-9_-]{43}\z/;
sub g { my ($t) = @_; return (headers => { 'Cart-Token' => $t }) }
sub guest_cart_count { psql_value("SELECT count(*) FROM guest_carts WHERE token_hash = '" . sha256_hex($_[0]) . "'") }
sub new_guest {
    my ($pid, $qty) = @_;
    my $r = api(POST => '/cart/', body => { product_id => $pid, quantity => $qty });
    die "guest cart: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    return $r->{headers}{'cart-token'};
}

my $cur = api(GET => '/cart/', token => register_user()->{token})->{json}{currency} // 'EUR';
my $other_cur = $cur eq 'USD' ? 'JPY' : 'USD';
my $p1 = create_product(price => 250, stock => 10);
my $p2 = create_product(price => 1000, stock => 4);
my $fx = create_product(price => 300, stock => 10, currency => $other_cur);

# --- create -------------------------------------------------------------------
my $guests_before = psql_value('SELECT count(*) FROM guest_carts');
my $r = api(POST => '/cart/', body => { product_id => $p1->{id}, quantity => 2 });
is $r->{status}, 201, 'POST /cart/ without credentials: 201';
my $tok = $r->{headers}{'cart-token'};
like $tok // '', $TOKEN_RE, 'answers a Cart-Token header';
is $r->{json}{product_id}, $p1->{id}, 'the line is the product';
is $r->{json}{quantity}, 2, 'with its quantity';
is $r->{json}{line_total}, 500, 'and its total';
like $r->{headers}{'cache-control'} // '', qr/private/, 'the answer is private';
is psql_value('SELECT count(*) FROM guest_carts') - $guests_before, 1, 'one guest cart was made';
is guest_cart_count($tok), 1, 'stored under the SHA-256 of its token';
is psql_value("SELECT count(*) FROM guest_carts WHERE token_hash = '$tok'"), 0, 'never the token itself';
my $line1 = $r->{json}{id};

# refusals of a new cart make no cart
$guests_before = psql_value('SELECT count(*) FROM guest_carts');
$r = api(POST => '/cart/', body => { product_id => 999999999, quantity => 1 });
is_problem $r, 404, 'not-found', 'an unknown product: 404';
ok !defined $r->{headers}{'cart-token'}, 'and no Cart-Token';
is_problem api(POST => '/cart/', body => { product_id => $p2->{id}, quantity => 5 }), 409, 'out-of-stock',
    'more than in stock: 409';
$r = api(POST => '/cart/', body => { product_id => $p1->{id}, quantity => 0 });
is_problem $r, 422, 'validation', 'quantity 0: 422';
has_field_error $r, 'quantity';
is_problem api(POST => '/cart/', body => { product_id => $p1->{id}, quantity => 10001 }), 422, 'validation',
    'above the line cap: 422';
is psql_value('SELECT count(*) FROM guest_carts') - $guests_before, 0, 'no refused add made a guest cart';

# --- use it by its token ------------------------------------------------------
$r = api(POST => '/cart/', g($tok), body => { product_id => $p1->{id}, quantity => 1 });
is $r->{status}, 201, 'POST /cart/ with the Cart-Token: 201';
is $r->{json}{id}, $line1, 'the same product keeps its line';
is $r->{json}{quantity}, 3, 'its quantity raised (2 + 1)';
ok !defined $r->{headers}{'cart-token'}, 'no new Cart-Token';
$r = api(POST => '/cart/', g($tok), body => { product_id => $p2->{id}, quantity => 1 });
is $r->{status}, 201, 'a second product';
my $line2 = $r->{json}{id};
is_problem api(POST => '/cart/', g($tok), body => { product_id => $fx->{id}, quantity => 1 }), 409, 'conflict',
    'a product in another currency: 409 (one currency per cart)';
is_problem api(POST => '/cart/', g($tok), body => { product_id => $p2->{id}, quantity => 4 }), 409, 'out-of-stock',
    'beyond the stock with what the cart holds: 409';
$r = api(GET => '/cart/', g($tok));
is $r->{status}, 200, 'GET /cart/ with the Cart-Token: 200';
is scalar @{ $r->{json}{items} // [] }, 2, 'two lines';
is $r->{json}{total}, 3 * 250 + 1000, 'total from current prices';
is $r->{json}{currency}, $cur, 'in the cart currency';

$r = api(PATCH => "/cart/$line2/", g($tok), body => { quantity => 3 });
is $r->{status}, 200, 'PATCH /cart/{id}/ with the Cart-Token: 200';
is $r->{json}{quantity}, 3, 'quantity set';
is_problem api(PATCH => "/cart/$line2/", g($tok), body => { quantity => 5 }), 409, 'out-of-stock',
    'PATCH beyond the stock: 409';
is_problem api(PATCH => "/cart/$line2/", g($tok), body => { quantity => 0 }), 422, 'validation', 'PATCH quantity 0: 422';

# another guest's and a user's lines are not this cart's
my $tok2 = new_guest($p1->{id}, 1);
isnt $tok2, $tok, 'a second guest gets its own token';
my $other_line = api(GET => '/cart/', g($tok2))->{json}{items}[0]{id};
is_problem api(PATCH => "/cart/$other_line/", g($tok), body => { quantity => 2 }), 404, 'not-found',
    "another guest's line: PATCH 404";
is_problem api(DELETE => "/cart/$other_line/", g($tok)), 404, 'not-found', "another guest's line: DELETE 404";
my $alice = register_user();
my $al = api(POST => '/cart/', token => $alice->{token}, body => { product_id => $p1->{id}, quantity => 1 })->{json};
is_problem api(DELETE => "/cart/$al->{id}/", g($tok)), 404, 'not-found', "a user's line with a Cart-Token: 404";
is_problem api(PATCH => "/cart/$line1/", token => $alice->{token}, body => { quantity => 1 }), 404, 'not-found',
    "a guest's line with a user's token: 404";
is psql_value("SELECT quantity FROM guest_cart_items WHERE id = $other_line"), 1, "the other guest's line is untouched";

# credentials win over a Cart-Token
$r = api(GET => '/cart/', token => $alice->{token}, g($tok));
is scalar @{ $r->{json}{items} }, 1, 'Authorization and Cart-Token: the user\'s cart';
is $r->{json}{items}[0]{id}, $al->{id}, 'the user\'s line';

is api(DELETE => "/cart/$line2/", g($tok))->{status}, 204, 'DELETE /cart/{id}/ with the Cart-Token: 204';
is_problem api(DELETE => "/cart/$line2/", g($tok)), 404, 'not-found', 'DELETE again: 404';
is scalar @{ api(GET => '/cart/', g($tok))->{json}{items} }, 1, 'one line left';

# --- what needs credentials ---------------------------------------------------
for my $c (['GET', '/cart/'], ['PATCH', "/cart/$line1/", { quantity => 1 }], ['DELETE', "/cart/$line1/"]) {
    my ($m, $path, $body) = @$c;
    my $res = api($m => $path, ($body ? (body => $body) : ()));
    is_problem $res, 401, 'unauthorized', "$m $path without credentials nor Cart-Token: 401";
    ok bearer_challenge_ok($res), 'with a Bearer challenge';
}
for my $bad ('A' x 43, 'not a token', '') {
    my $res = api(GET => '/cart/', g($bad));
    is_problem $res, 401, 'unauthorized', "Cart-Token '" . substr($bad, 0, 12) . "': GET 401";
    ok bearer_challenge_ok($res), 'with a challenge';
    is_problem api(POST => '/cart/', g($bad), body => { product_id => $p1->{id} }), 401, 'unauthorized',
        'and POST 401 (no new cart)';
    is_problem api(POST => '/cart/', g($bad), body => '{"product_id":'), 401, 'unauthorized',
        'the token is answered before a malformed body';
}
is_problem api(POST => '/orders/', g($tok)), 401, 'unauthorized', 'checkout with only a Cart-Token: 401';
is_problem api(POST => '/orders/', g($tok), body => {}), 401, 'unauthorized', 'also with a body';
is guest_cart_count($tok), 1, 'the guest cart is still there';

# --- expiry ---------------------------------------------------------------------
{
    my $before = psql_value("SELECT expires_at > now() + interval '6 days' FROM guest_carts WHERE token_hash = '"
                            . sha256_hex($tok) . "'");
    is $before, 't', 'a guest cart lives 7 days after its last change';
    my $t3 = new_guest($p1->{id}, 1);
    psql_do("UPDATE guest_carts SET expires_at = now() - interval '1 minute' WHERE token_hash = '"
            . sha256_hex($t3) . "'");
    is_problem api(GET => '/cart/', g($t3)), 401, 'unauthorized', 'an expired guest cart: GET 401';
    is_problem api(POST => '/cart/', g($t3), body => { product_id => $p1->{id} }), 401, 'unauthorized',
        'POST 401';
    my $u = register_user();
    $r = api(POST => '/auth/login/', g($t3), body => { email => $u->{email}, password => $u->{password} });
    is $r->{status}, 200, 'a login with an expired cart\'s token still logs in';
    ok $r->{json}{cart_merge} && is_false($r->{json}{cart_merge}{found}), 'and reports no cart found';
    my $deadline = time + 30;
    my $left;
    while (time < $deadline) {
        $left = guest_cart_count($t3);
        last unless $left;
        sleep 0.5;
    }
    is $left, 0, 'the expired guest cart was purged by the watchdog';
    is guest_cart_count($tok), 1, 'a live one was kept';
}

# --- merge on login ---------------------------------------------------------------
{
    my $u = register_user();
    my $pa = create_product(price => 100, stock => 50);      # both carts: added
    my $pb = create_product(price => 200, stock => 50);      # guest only: new line
    my $pc = create_product(price => 300, stock => 5);       # capped by stock
    my $pd = create_product(price => 400, stock => 20000);   # capped by the line cap
    my $pe = create_product(price => 500, stock => 10);      # no longer sold
    my $pf = create_product(price => 600, stock => 10);      # stock gone below the user's line
    for ([$pa, 2], [$pc, 4], [$pd, 9999], [$pf, 3]) {
        is api(POST => '/cart/', token => $u->{token}, body => { product_id => $_->[0]{id}, quantity => $_->[1] })->{status},
            201, "user cart: $_->[1] x product";
    }
    my $gt = new_guest($pa->{id}, 3);
    api(POST => '/cart/', g($gt), body => { product_id => $_->[0]{id}, quantity => $_->[1] })->{status} == 201
        or die "guest add failed\n" for [$pb, 5], [$pc, 3], [$pd, 5], [$pe, 1], [$pf, 2];
    psql_do("UPDATE products SET active = false WHERE id = $pe->{id}");
    psql_do("UPDATE products SET stock = 2 WHERE id = $pf->{id}");
    my $guest_lines = psql_value("SELECT count(*) FROM guest_cart_items WHERE cart_id = "
                                 . "(SELECT id FROM guest_carts WHERE token_hash = '" . sha256_hex($gt) . "')");
    is $guest_lines, 6, 'the guest cart holds six lines';

    $r = api(POST => '/auth/login/', g($gt), body => { email => $u->{email}, password => $u->{password} });
    is $r->{status}, 200, 'login with a Cart-Token: 200';
    ok $r->{json}{token}, 'a token as usual';
    my $m = $r->{json}{cart_merge} // {};
    ok is_true($m->{found}), 'cart_merge: found';
    my %merged = map { $_->{product_id} => $_ } @{ $m->{merged} // [] };
    my %not = map { $_->{product_id} => $_ } @{ $m->{not_merged} // [] };
    is scalar(@{ $m->{merged} // [] }) + scalar(@{ $m->{not_merged} // [] }), 6,
        'every guest line is reported once';
    is_deeply [ sort { $a <=> $b } keys %merged, keys %not ],
              [ sort { $a <=> $b } map { $_->{id} } $pa, $pb, $pc, $pd, $pe, $pf ], 'no line twice, none missing';
    is_deeply [ @{ $merged{ $pa->{id} } }{qw(requested added quantity)} ], [3, 3, 5], 'a: 2 + 3 = 5';
    ok !exists $merged{ $pa->{id} }{limited_by}, 'a: not limited';
    is_deeply [ @{ $merged{ $pb->{id} } }{qw(requested added quantity)} ], [5, 5, 5], 'b: a new line of 5';
    is_deeply [ @{ $merged{ $pc->{id} } }{qw(requested added quantity limited_by)} ], [3, 1, 5, 'stock'],
        'c: 4 + 3 capped at the stock of 5, reported';
    is_deeply [ @{ $merged{ $pd->{id} } }{qw(requested added quantity limited_by)} ], [5, 1, 10000, 'line_cap'],
        'd: 9999 + 5 capped at 10,000 a line, reported';
    is_deeply [ @{ $not{ $pe->{id} } // {} }{qw(requested added reason)} ], [1, 0, 'unavailable'],
        'e: no longer sold, not merged, reported';
    is_deeply [ @{ $not{ $pf->{id} } // {} }{qw(requested added quantity reason)} ], [2, 0, 3, 'stock'],
        'f: stock below the user\'s line: not merged, the line not lowered';
    my %db = map { split /\|/ } split /\n/, psql_value("SELECT product_id, quantity FROM cart_items WHERE user_id = $u->{id}");
    is_deeply \%db, { $pa->{id} => 5, $pb->{id} => 5, $pc->{id} => 5, $pd->{id} => 10000, $pf->{id} => 3 },
        'the user cart in the database is what the report says';
    is psql_value("SELECT count(*) - count(DISTINCT product_id) FROM cart_items WHERE user_id = $u->{id}"), 0,
        'no product twice';
    for my $id (keys %merged) {
        is $db{$id}, $merged{$id}{quantity}, "reported quantity of $id is the recount";
    }
    is guest_cart_count($gt), 0, 'the guest cart is gone';
    is psql_value("SELECT count(*) FROM guest_cart_items gi WHERE NOT EXISTS "
                  . "(SELECT 1 FROM guest_carts g WHERE g.id = gi.cart_id)"), 0, 'and its lines with it';
    is_problem api(GET => '/cart/', g($gt)), 401, 'unauthorized', 'its token no longer works';

    $r = api(POST => '/auth/login/', g($gt), body => { email => $u->{email}, password => $u->{password} });
    is $r->{status}, 200, 'a second login with the same Cart-Token';
    ok is_false($r->{json}{cart_merge}{found}), 'finds no guest cart';
    is_deeply [ $r->{json}{cart_merge}{merged}, $r->{json}{cart_merge}{not_merged} ], [ [], [] ], 'and merges nothing';
    my %db2 = map { split /\|/ } split /\n/, psql_value("SELECT product_id, quantity FROM cart_items WHERE user_id = $u->{id}");
    is_deeply \%db2, \%db, 'the user cart is unchanged';

    $r = api(POST => '/auth/login/', body => { email => $u->{email}, password => $u->{password} });
    ok !exists $r->{json}{cart_merge}, 'a login without a Cart-Token has no cart_merge';
    $r = api(POST => '/auth/login/', g('garbage'), body => { email => $u->{email}, password => $u->{password} });
    is $r->{status}, 200, 'a malformed Cart-Token does not stop a login';
    ok is_false($r->{json}{cart_merge}{found}), 'it finds no cart';
    $r = api(POST => '/auth/login/', g($tok), body => { email => $u->{email}, password => 'wrong password!' });
    is_problem $r, 401, 'unauthorized', 'a failed login';
    is guest_cart_count($tok), 1, 'merges nothing';
}

# --- a full account cart: existing lines still grow, new ones are reported ---------------
{
    my $u = register_user();
    my $tag = uniq();
    psql_do("INSERT INTO products (sku, name, price, currency, stock) "
            . "SELECT 'full-$tag-' || i, 'Full $tag ' || i, 100, '$cur', 5 FROM generate_series(1, 500) i");
    psql_do("INSERT INTO cart_items (user_id, product_id, quantity) "
            . "SELECT $u->{id}, id, 1 FROM products WHERE sku LIKE 'full-$tag-%'");
    my $in = 0 + psql_value("SELECT min(id) FROM products WHERE sku LIKE 'full-$tag-%'");
    my $x = create_product(price => 100, stock => 5);
    my $gt = new_guest($x->{id}, 1);
    is api(POST => '/cart/', g($gt), body => { product_id => $in, quantity => 2 })->{status}, 201,
        'the guest cart also holds a product of the full cart';
    $r = api(POST => '/auth/login/', g($gt), body => { email => $u->{email}, password => $u->{password} });
    is $r->{status}, 200, 'login into a cart of 500 lines';
    is_deeply [ map { [ @$_{qw(product_id added quantity)} ] } @{ $r->{json}{cart_merge}{merged} } ],
              [ [ $in, 2, 3 ] ], 'the line already there grew';
    is_deeply [ map { [ @$_{qw(product_id reason)} ] } @{ $r->{json}{cart_merge}{not_merged} } ],
              [ [ $x->{id}, 'cart_full' ] ], 'the new product is reported: cart_full';
    is psql_value("SELECT count(*) FROM cart_items WHERE user_id = $u->{id}"), 500, 'still 500 lines';
}

# --- concurrency: two logins with one Cart-Token, and adds racing a merge ----------------
{
    my $u = register_user();
    my $x = create_product(price => 100, stock => 10000);
    is api(POST => '/cart/', token => $u->{token}, body => { product_id => $x->{id}, quantity => 1 })->{status}, 201,
        'the user cart holds 1';
    my $gt = new_guest($x->{id}, 5);
    my @res = parallel(8, 1, sub {
        my ($i) = @_;
        if ($i < 3) {
            my $l = api(POST => '/auth/login/', g($gt), body => { email => $u->{email}, password => $u->{password} });
            return { login => $l->{status}, found => ($l->{json}{cart_merge}{found} ? 1 : 0),
                     added => [ map { $_->{added} } @{ $l->{json}{cart_merge}{merged} // [] } ] };
        }
        return { add => api(POST => '/cart/', token => $u->{token}, body => { product_id => $x->{id}, quantity => 1 })->{status} };
    });
    my @logins = grep { exists $_->{login} } @res;
    is scalar(grep { $_->{login} == 200 } @logins), 3, 'three concurrent logins with one Cart-Token: all 200';
    is scalar(grep { $_->{found} } @logins), 1, 'exactly one of them merged the guest cart';
    is_deeply [ map { @{ $_->{added} } } grep { $_->{found} } @logins ], [5], 'adding its 5';
    is scalar(grep { ($_->{add} // 0) == 201 } @res), 5, 'five adds raced the merge: all 201';
    is psql_value("SELECT quantity FROM cart_items WHERE user_id = $u->{id} AND product_id = $x->{id}"), 1 + 5 + 5,
        'the line holds 1 + 5 merged + 5 added: nothing lost, nothing twice';
    is guest_cart_count($gt), 0, 'the guest cart is gone';
}

# --- currency conflict ------------------------------------------------------------
{
    my $u = register_user();
    my $x = create_product(price => 100, stock => 10);
    my $y = create_product(price => 100, stock => 10, currency => $other_cur);
    is api(POST => '/cart/', token => $u->{token}, body => { product_id => $x->{id}, quantity => 1 })->{status}, 201,
        'the user cart is in the shop currency';
    my $gt = new_guest($y->{id}, 2);
    $r = api(POST => '/auth/login/', g($gt), body => { email => $u->{email}, password => $u->{password} });
    is $r->{status}, 200, 'login with a guest cart in another currency';
    is_deeply $r->{json}{cart_merge}{merged}, [], 'nothing merged';
    is_deeply [ map { [ $_->{product_id}, $_->{reason}, $_->{requested} ] } @{ $r->{json}{cart_merge}{not_merged} } ],
              [ [ $y->{id}, 'currency', 2 ] ], 'the line reported: currency';
    is psql_value("SELECT count(*) FROM cart_items WHERE user_id = $u->{id}"), 1, 'the user cart keeps its one line';
    is guest_cart_count($gt), 0, 'the guest cart is gone (its line was reported)';
    # an empty user cart takes the guest cart's currency
    my $v = register_user();
    my $gt2 = new_guest($y->{id}, 2);
    $r = api(POST => '/auth/login/', g($gt2), body => { email => $v->{email}, password => $v->{password} });
    is_deeply [ map { $_->{added} } @{ $r->{json}{cart_merge}{merged} } ], [2], 'into an empty cart: all merged';
    is api(GET => '/cart/', token => $r->{json}{token})->{json}{currency}, $other_cur, 'the cart is in that currency';
}

# --- merge on register, and checkout after it -----------------------------------
{
    my $x = create_product(price => 700, stock => 10);
    my $gt = new_guest($x->{id}, 2);
    my $email = 'guest-' . uniq() . '@example.com';
    $r = api(POST => '/auth/register/', g($gt), body => { email => $email, password => $EcomTest::PASSWORD });
    is $r->{status}, 201, 'register with a Cart-Token: 201';
    is_deeply [ map { [ $_->{product_id}, $_->{added}, $_->{quantity} ] } @{ $r->{json}{cart_merge}{merged} // [] } ],
              [ [ $x->{id}, 2, 2 ] ], 'the guest cart became the new account\'s';
    is guest_cart_count($gt), 0, 'the guest cart is gone';
    my $o = api(POST => '/orders/', token => $r->{json}{token});
    is $o->{status}, 201, 'and the account checks it out';
    is $o->{json}{total}, 1400, 'at the cart\'s total';
}

# --- concurrent adds to one guest cart ------------------------------------------------
{
    my $x = create_product(price => 100, stock => 10000);
    my $gt = new_guest($x->{id}, 1);
    my @res = parallel(20, 1, sub {
        api(POST => '/cart/', g($gt), body => { product_id => $x->{id}, quantity => 2 })->{status}
    });
    is scalar(grep { $_ == 201 } @res), 20, '20 concurrent adds to one guest cart: all 201';
    is api(GET => '/cart/', g($gt))->{json}{items}[0]{quantity}, 41, 'and none lost (1 + 20 x 2)';
}

done_testing;
