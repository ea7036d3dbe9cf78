#!/usr/bin/perl
# Recommendations (issue 10): GET /products/{id}/recommendations/,
# GET /recommendations/ (?user_id= for staff and support, ?new_only=),
# GET /cart/recommendations/ (a user's cart or a guest cart), served from
# the tables of sql/021_recommendations.sql after a refresh.
# A small known order set: "bought together" puts the most co-bought
# product first; never the product itself, nothing inactive or out of
# stock; a product without history falls back to similar names, one with
# neither to what is popular, and `strategy` says which; personal picks
# hold "buy again" and new_only drops what was bought; the never-bought
# ones come from the random walk with its popularity penalty (sql/030,
# checked on a hand-computed case); a new user gets
# popular ones; another user's cart never shows through; bad limit,
# new_only and user_id values: 400 problem+json, never a 5xx.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;
use EcomAdmin;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $staff = staff_token();
my $w = 'rc' . join '', map { chr(97 + int rand 26) } 1 .. 8;

# buyer: a customer with one paid order holding every product given
# (EcomTest's paid_buyer).
sub buyer { return paid_buyer(@_) }
sub refresh {
    my $r = ecom_admin('recs-refresh', '--force');
    is $r->{rc}, 0, 'ecom-admin recs-refresh --force succeeds' or diag $r->{err};
    like $r->{err}, qr/refreshed in [\d.]+ s/, 'it reports the rows and seconds';
}
sub recs {
    my ($path, %o) = @_;
    return api(GET => $path, %o);
}
sub ids { [ map { $_->{id} } @{ $_[0]{json}{items} || [] } ] }

# --- a small known order set -------------------------------------------------
# A with B (three customers), A with C (one), A with E and F (one each; E
# then sells out, F is deactivated). D is never bought.
my %p;
$p{$_} = create_product(name => "Rec $_ $w " . join('', map { chr(97 + int rand 26) } 1 .. 6),
                        stock => 100, price => 900) for qw(A B C E F);
buyer($p{A}, $p{B}) for 1 .. 3;
my $ac = buyer($p{A}, $p{C});
buyer($p{A}, $p{E});
buyer($p{A}, $p{F});
# twelve more products, one order: enough popular ones to fill a list
buyer(map { create_product(name => "Rec filler $w $_", stock => 100) } 1 .. 12);
is api(PATCH => "/products/$p{E}{id}/", token => $staff, body => { stock => 0, expected_stock => 99 })->{status},
   200, 'E sold out';
is api(PATCH => "/products/$p{F}{id}/", token => $staff, body => { active => JSON::PP::false })->{status},
   200, 'F deactivated';
# a content-based pair (similar names, no orders) and a loner
my $g = create_product(name => "Enamel camping kettle $w green", description => "enamel kettle for camping $w");
my $h = create_product(name => "Enamel camping kettle $w blue", description => "enamel kettle for camping $w");
my $k = create_product(name => 'Qxzv' . uniq());
# categorised products (sql/029): similar ones come from the product's own
# category only, the most similar name first, even when another category
# holds a nearer name
my %cat;
for my $c (qw(tools toys)) {
    $cat{$c} = "rec-$c-$w";
    my $cr = api(POST => '/categories/', token => $staff, body => { slug => $cat{$c}, name => "Rec $c $w" });
    die "category: $cr->{status} $cr->{content}\n" unless $cr->{status} == 201;
}
my $t1 = create_product(category => $cat{tools}, name => "Copper watering can $w", description => "copper can $w");
my $t2 = create_product(category => $cat{tools}, name => "Copper watering can $w large", description => "copper can $w");
my $t3 = create_product(category => $cat{tools}, name => "Zinc garden bucket $w", description => "bucket $w");
my $y1 = create_product(category => $cat{toys}, name => "Copper watering can $w", description => "copper can $w");
# personal picks of products never bought (sql/030): the random walk's
# neighbours with the popularity penalty. W with P in three orders, P with
# R in five more (P is in 8 orders), W with Q in two (Q: 2); a customer
# bought W alone. Walk from W: P 3 x 1/2 / 8^0.4 = 0.653, Q 2 x 1/2 / 2^0.4
# = 0.758: Q first, P at 0.653 / 0.758 = 1.5 x 0.25^0.4 = 0.8615 of it. The
# bought-together cosine (022) ranks P first: 3 / (sqrt(6 x 8) + 5) = 0.251
# against Q's 2 / (sqrt(6 x 2) + 5) = 0.236.
my %q;
$q{$_} = create_product(name => "Walk $_ $w " . join('', map { chr(97 + int rand 26) } 1 .. 6),
                        stock => 100, price => 500) for qw(W P Q R);
buyer($q{W}, $q{P}) for 1 .. 3;
buyer($q{P}, $q{R}) for 1 .. 5;
buyer($q{W}, $q{Q}) for 1 .. 2;
my $walker = buyer($q{W});
refresh();

# --- bought together ---------------------------------------------------------
my $r = recs("/products/$p{A}{id}/recommendations/");
is $r->{status}, 200, 'product recommendations: 200 for anyone';
my @items = @{ $r->{json}{items} || [] };
is $items[0]{id}, $p{B}{id}, 'the product bought with A by the most customers comes first';
is $items[0]{strategy}, 'bought_together', '... as bought_together';
is $items[1]{id}, $p{C}{id}, 'then the one bought with it once';
ok !(grep { $_->{id} == $p{A}{id} } @items), 'never the product itself';
ok !(grep { $_->{id} == $p{E}{id} } @items), 'nothing out of stock';
ok !(grep { $_->{id} == $p{F}{id} } @items), 'nothing inactive';
ok !(grep { !$_->{active} || $_->{stock} <= 0 } @items), 'every item active and in stock';
is scalar @items, 10, 'filled to the default limit of 10';
my %tier = (bought_together => 0, similar => 1, popular => 2);
my @tiers = map { $tier{ $_->{strategy} } // 9 } @items;
is_deeply \@tiers, [ sort { $a <=> $b } @tiers ], '... the rest from similar names, then popular, in that order';
ok !(grep { $_ == 9 } @tiers), 'every item says its strategy';
is $r->{json}{strategy}, 'mixed', 'strategy of the answer: mixed';
for my $f (qw(id name price currency stock rating)) {
    ok exists $items[0]{$f}, "an item is a product summary ($f)";
}
ok $items[0]{score} > 0 && !ref $items[0]{score}, 'with a numeric score';
$r = recs("/products/$p{B}{id}/recommendations/?limit=1");
is_deeply ids($r), [ $p{A}{id} ], 'B: A first; limit=1 gives one item';
is $r->{json}{strategy}, 'bought_together', 'strategy bought_together when all items are';

# --- fallbacks ---------------------------------------------------------------
$r = recs("/products/$g->{id}/recommendations/?limit=5");
is $r->{status}, 200, 'a product without orders: 200';
is $r->{json}{items}[0]{id}, $h->{id}, 'its first is the product with the most similar name';
is $r->{json}{items}[0]{strategy}, 'similar', '... as similar';
$r = recs("/products/$t1->{id}/recommendations/?limit=5");
is $r->{json}{items}[0]{id}, $t2->{id}, 'a categorised product: the most similar name of its category first';
my @sim = grep { $_->{strategy} eq 'similar' } @{ $r->{json}{items} };
is_deeply [ sort { $a <=> $b } map { $_->{id} } @sim ], [ sort { $a <=> $b } $t2->{id}, $t3->{id} ],
    '... its similar ones are its category\'s, never the same name in another category';
$r = recs("/products/$k->{id}/recommendations/?limit=5");
is scalar @{ $r->{json}{items} }, 5, 'a product with no history and no similar name: still 5 items';
ok !(grep { $_->{strategy} ne 'popular' } @{ $r->{json}{items} }), '... all popular';
is $r->{json}{strategy}, 'popular', '... strategy popular';
ok !(grep { $_ == $k->{id} } @{ ids($r) }), '... never itself';

# --- product: 404 and bad input ----------------------------------------------
is_problem recs('/products/999999999/recommendations/'), 404, undef, 'unknown product: 404';
is_problem recs("/products/$p{F}{id}/recommendations/"), 404, undef, 'inactive product: 404 to a customer';
is recs("/products/$p{F}{id}/recommendations/", token => $staff)->{status}, 200, '... 200 to staff';
for my $bad ('0', '51', 'x', '-1', '1.5', '', '10abc', '99999999999999999999') {
    is_problem recs("/products/$p{A}{id}/recommendations/?limit=$bad"), 400, undef, "limit=$bad: 400";
}
is recs("/products/$p{A}{id}/recommendations/?limit=50")->{status}, 200, 'limit=50: 200';
is recs("/products/$p{A}{id}/recommendations")->{status}, 200, 'without the trailing slash too';

# --- personal picks ----------------------------------------------------------
is recs('/recommendations/')->{status}, 401, 'personal picks need a user: 401';
$r = recs('/recommendations/?limit=50', token => $ac->{token});
is $r->{status}, 200, 'personal picks: 200';
my %src = map { $_->{id} => $_->{strategy} } @{ $r->{json}{items} };
is $src{ $p{A}{id} }, 'buy_again', 'what the customer bought is there as buy_again (A)';
is $src{ $p{C}{id} }, 'buy_again', '... (C)';
is $src{ $p{B}{id} }, 'personal', 'a neighbour of their history as personal (B)';
ok !exists $src{ $p{E}{id} } && !exists $src{ $p{F}{id} }, 'nothing out of stock or inactive';
my $new = recs('/recommendations/?limit=50&new_only=true', token => $ac->{token});
is $new->{status}, 200, 'new_only=true: 200';
ok !(grep { $_ == $p{A}{id} || $_ == $p{C}{id} } @{ ids($new) }), 'new_only: nothing the customer bought';
ok((grep { $_ == $p{B}{id} } @{ ids($new) }), 'new_only: the personal pick stays');
is recs('/recommendations/?new_only=false', token => $ac->{token})->{status}, 200, 'new_only=false: 200';
is_problem recs('/recommendations/?new_only=yes', token => $ac->{token}), 400, undef, 'new_only=yes: 400';
is_problem recs('/recommendations/?limit=0', token => $ac->{token}), 400, undef, 'personal, limit=0: 400';

# the walk's popularity penalty (sql/030; the numbers above)
$r = recs("/products/$q{W}{id}/recommendations/?limit=2");
is_deeply ids($r), [ $q{P}{id}, $q{Q}{id} ], 'W\'s page (bought together, cosine): P before Q';
$new = recs('/recommendations/?new_only=true', token => $walker->{token});
is_deeply [ map { $_->{id} } @{ $new->{json}{items} }[0, 1] ], [ $q{Q}{id}, $q{P}{id} ],
    'new_only for a buyer of W: Q before the more popular P (the walk divides by orders^0.4)';
is_deeply [ map { $_->{strategy} } @{ $new->{json}{items} }[0, 1] ], [ 'personal', 'personal' ], '... as personal';
ok abs($new->{json}{items}[0]{score} - 1) < 1e-6 && abs($new->{json}{items}[1]{score} - 1.5 * 0.25**0.4) < 1e-4,
    "scores 1 and 1.5 x 0.25^0.4 = 0.8615 ($new->{json}{items}[0]{score}, $new->{json}{items}[1]{score})";
$r = recs('/recommendations/?limit=3', token => $walker->{token});
is_deeply ids($r), [ $q{W}{id}, $q{Q}{id}, $q{P}{id} ], 'all products: W again, then Q, then P';
is $r->{json}{items}[0]{strategy}, 'buy_again', '... W as buy_again';

my $newbie = register_user();
$r = recs('/recommendations/', token => $newbie->{token});
is $r->{status}, 200, 'a new user: 200';
ok @{ $r->{json}{items} } > 0, '... with items';
is $r->{json}{strategy}, 'popular', '... popular ones';

# ?user_id=
my $sees = recs('/recommendations/?limit=20', token => $ac->{token});
my $preview = recs("/recommendations/?limit=20&user_id=$ac->{id}", token => $staff);
is $preview->{status}, 200, 'staff may preview a customer\'s picks';
is_deeply ids($preview), ids($sees), '... and see what the customer sees';
is_problem recs("/recommendations/?user_id=$ac->{id}", token => $newbie->{token}), 403, undef,
    'a customer asking for another user\'s picks: 403';
is recs("/recommendations/?user_id=$newbie->{id}", token => $newbie->{token})->{status}, 200,
    'their own user_id: 200';
is_problem recs('/recommendations/?user_id=999999999', token => $staff), 404, undef, 'staff, unknown user: 404';
is_problem recs('/recommendations/?user_id=abc', token => $staff), 400, undef, 'user_id=abc: 400';
is_problem recs('/recommendations/?user_id=0', token => $staff), 400, undef, 'user_id=0: 400';
my $support = register_user();
my $sr = ecom_admin('set-role', '--email', $support->{email}, '--role', 'support');
is $sr->{rc}, 0, 'a support user' or diag $sr->{err};
is recs("/recommendations/?user_id=$ac->{id}", token => $support->{token})->{status}, 200,
    'support may preview too';

# --- cart --------------------------------------------------------------------
is recs('/cart/recommendations/')->{status}, 401, 'cart recommendations without credentials: 401';
my $shopper = register_user();
is api(POST => '/cart/', token => $shopper->{token}, body => { product_id => $p{A}{id}, quantity => 1 })->{status},
   201, 'a cart holding A';
$r = recs('/cart/recommendations/?limit=5', token => $shopper->{token});
is $r->{status}, 200, 'cart recommendations: 200';
is $r->{json}{items}[0]{id}, $p{B}{id}, 'basket completion: B for a cart holding A';
ok !(grep { $_ == $p{A}{id} } @{ ids($r) }), 'nothing already in the cart';
my $other = register_user();
$r = recs('/cart/recommendations/?limit=5', token => $other->{token});
is $r->{json}{strategy}, 'popular', 'another user with an empty cart: popular ones, nothing of the first cart';
is api(POST => '/cart/', token => $other->{token}, body => { product_id => $p{C}{id}, quantity => 1 })->{status},
   201, 'the other user puts C in their cart';
$r = recs('/cart/recommendations/?limit=5', token => $other->{token});
is $r->{json}{items}[0]{id}, $p{A}{id}, '... and gets A (bought with C), from their own cart';
ok !(grep { $_ == $p{C}{id} } @{ ids($r) }), '... never C itself';
is_problem recs('/cart/recommendations/?limit=51', token => $other->{token}), 400, undef, 'cart, limit=51: 400';

# a guest cart, by its Cart-Token
my $gc = api(POST => '/cart/', body => { product_id => $p{B}{id}, quantity => 1 });
SKIP: {
    skip 'guest carts are off', 3 unless $gc->{status} == 201 && $gc->{headers}{'cart-token'};
    my $tok = $gc->{headers}{'cart-token'};
    $r = api(GET => '/cart/recommendations/?limit=3', headers => { 'Cart-Token' => $tok });
    is $r->{status}, 200, 'a guest cart: 200';
    is $r->{json}{items}[0]{id}, $p{A}{id}, '... completion of its own contents (A for B)';
    is recs('/cart/recommendations/', headers => { 'Cart-Token' => 'x' x 43 })->{status}, 401,
        'an unknown Cart-Token: 401';
}

# --- the response cache (EcomCache; the suite logs at debug level, so
# answers say Ecom-Cache: hit|miss) -------------------------------------------
SKIP: {
    my $c1 = recs("/products/$p{A}{id}/recommendations/?limit=5");
    skip 'the response cache is off', 14 unless ($c1->{headers}{'ecom-cache'} // '') =~ /^(?:hit|miss)$/;
    my $c2 = recs("/products/$p{A}{id}/recommendations/?limit=5");
    is $c2->{headers}{'ecom-cache'}, 'hit', 'product recommendations: the same request again is a cache hit';
    is_deeply ids($c2), ids($c1), '... with the same answer';
    is recs("/products/$p{A}{id}/recommendations/?limit=4")->{headers}{'ecom-cache'}, 'miss',
        'another limit is another entry';
    # a product of the answer sells out (a staff write): never served again
    my $gone = $c2->{json}{items}[0];
    is api(PATCH => "/products/$gone->{id}/", token => $staff,
           body => { stock => 0, expected_stock => $gone->{stock} })->{status}, 200,
       'the first recommended product goes out of stock';
    my $c3 = recs("/products/$p{A}{id}/recommendations/?limit=5");
    is $c3->{headers}{'ecom-cache'}, 'miss', '... the cached answer is not served';
    ok !(grep { $_ == $gone->{id} } @{ ids($c3) }), '... and the new one leaves it out';
    is api(PATCH => "/products/$gone->{id}/", token => $staff,
           body => { stock => $gone->{stock}, expected_stock => 0 })->{status}, 200, 'back in stock';
    # a refresh run outside httpd (ecom-admin) makes every answer old
    recs("/products/$p{A}{id}/recommendations/?limit=5") for 1 .. 2;
    refresh();
    is recs("/products/$p{A}{id}/recommendations/?limit=5")->{headers}{'ecom-cache'}, 'miss',
        'after a refresh by ecom-admin the cached answer is not served';
    # personal picks: a new order of the user is a new key
    my $u = register_user();
    recs('/recommendations/?new_only=true', token => $u->{token});
    is recs('/recommendations/?new_only=true', token => $u->{token})->{headers}{'ecom-cache'}, 'hit',
        'personal picks: cached per user';
    my $bought = recs('/recommendations/?new_only=true', token => $u->{token})->{json}{items}[0]{id};
    api(POST => '/cart/', token => $u->{token}, body => { product_id => $bought, quantity => 1 });
    my $o = api(POST => '/orders/', token => $u->{token});
    api(POST => "/orders/$o->{json}{id}/payments/", token => $u->{token}, body => { token => 'tok_ok' });
    my $after = recs('/recommendations/?new_only=true', token => $u->{token});
    is $after->{headers}{'ecom-cache'}, 'miss', '... an order of theirs makes it old';
    ok !(grep { $_ == $bought } @{ ids($after) }), '... and new_only leaves out what they just bought';
    # carts: keyed by the basket's products
    my $s1 = register_user();
    api(POST => '/cart/', token => $s1->{token}, body => { product_id => $p{C}{id}, quantity => 1 });
    recs('/cart/recommendations/', token => $s1->{token});
    is recs('/cart/recommendations/', token => $s1->{token})->{headers}{'ecom-cache'}, 'hit',
        'cart recommendations: cached';
    api(POST => '/cart/', token => $s1->{token}, body => { product_id => $p{A}{id}, quantity => 1 });
    my $c4 = recs('/cart/recommendations/', token => $s1->{token});
    is $c4->{headers}{'ecom-cache'}, 'miss', '... a product added to the cart makes it old';
    ok !(grep { $_ == $p{A}{id} || $_ == $p{C}{id} } @{ ids($c4) }), '... and the new answer leaves out the cart\'s products';
}

done_testing;
