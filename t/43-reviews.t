#!/usr/bin/perl
# Reviews and ratings (issue 8, item 2): GET/POST /products/{id}/reviews/,
# GET/PATCH/DELETE /reviews/{id}/. Only a customer with a paid, shipped or
# delivered order holding the product may review it (403 otherwise, a
# pending order included), once (409); the author edits and deletes, other
# users get 404; staff hide and unhide (hidden reviews leave the list and
# the summary). The product's rating {average, count} on detail and lists,
# sort=rating with its keyset cursor, the catalog cache invalidated by
# review writes, 50 concurrent reviews of one product by 50 buyers (the
# summary equals a recount in SQL), and bad input on every field and
# parameter: 4xx problem+json, never 5xx.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $staff = staff_token();

# A customer with a paid order holding $p (one unit), through the API.
sub buyer {
    my ($p, %o) = @_;
    my $u = register_user(name => $o{name} // 'Rita Reviewer');
    my $r = api(POST => '/cart/', token => $u->{token}, body => { product_id => $p->{id}, quantity => 1 });
    die "buyer: cart: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    $r = api(POST => '/orders/', token => $u->{token});
    die "buyer: checkout: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    $u->{order} = $r->{json}{id};
    return $u if $o{unpaid};
    $r = api(POST => "/orders/$u->{order}/payments/", token => $u->{token}, body => { token => 'tok_ok' });
    die "buyer: pay: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    return $u;
}
sub review {
    my ($u, $p, $body, %o) = @_;
    return api(POST => "/products/$p->{id}/reviews/", token => $u->{token}, body => $body, %o);
}
sub rating_of {
    my ($p, %o) = @_;
    my $r = api(GET => "/products/$p->{id}/", token => $o{token});
    return $r->{json}{rating};
}
sub recount {
    my ($pid) = @_;
    # rating_key as 013 defined it: the mean in hundredths, rounded half up
    return psql_value("SELECT count(*) || '|' || COALESCE(sum(rating), 0) || '|' || "
                    . "CASE WHEN count(*) > 0 THEN round(sum(rating) * 100.0 / count(*))::int ELSE -1 END "
                    . "FROM reviews WHERE product_id = $pid AND NOT hidden");
}
sub summary {
    my ($pid) = @_;
    return psql_value("SELECT rating_count || '|' || rating_sum || '|' || rating_key FROM products WHERE id = $pid");
}
sub list_all {
    my ($path, %o) = @_;
    my (@items, $cursor, $pages);
    do {
        my $sep = $path =~ /\?/ ? '&' : '?';
        my $r = api(GET => $path . $sep . 'limit=' . ($o{limit} // 100)
                        . (defined $cursor ? "&cursor=$cursor" : ''), token => $o{token});
        return { status => $r->{status}, res => $r } unless $r->{status} == 200;
        push @items, @{ $r->{json}{items} };
        $cursor = $r->{json}{next_cursor};
        $pages++;
    } while (defined $cursor && $pages < ($o{max_pages} // 1000));
    return { status => 200, items => \@items, pages => $pages };
}

my $word = 'rv' . join '', map { chr(97 + int rand 26) } 1 .. 10;
my $p = create_product(name => "Reviewed mug $word", stock => 500, price => 700);
is_deeply $p->{rating}, { average => undef, count => 0 }, 'a new product has rating {average: null, count: 0}';

# --- who may review ---------------------------------------------------------
my $stranger = register_user();
is_problem review($stranger, $p, { rating => 5 }), 403, 'not-a-buyer', 'a user who never ordered it: 403';
my $pending = buyer($p, unpaid => 1);
is_problem review($pending, $p, { rating => 5 }), 403, 'not-a-buyer', 'a pending (unpaid) order: 403';
is psql_value("SELECT count(*) FROM reviews WHERE product_id = $p->{id}"), 0, 'nothing written by the refusals';
is api(POST => "/products/$p->{id}/reviews/", body => { rating => 5 })->{status}, 401, 'anonymous: 401';

# list on a product with no reviews
{
    my $r = api(GET => "/products/$p->{id}/reviews/");
    is $r->{status}, 200, 'the empty list is 200';
    is_deeply $r->{json}, { items => [], next_cursor => undef }, '... {items: [], next_cursor: null}';
}

my $alice = buyer($p, name => 'Alice A.');
my $r = review($alice, $p, { rating => 5, title => 'Great mug', body => 'Keeps tea hot.' });
is $r->{status}, 201, 'a buyer (paid order) reviews: 201';
my $rev = $r->{json};
is_deeply [sort keys %$rev], [sort qw(id product_id user rating title body hidden created_at updated_at)],
    'review has {id, product_id, user, rating, title, body, hidden, created_at, updated_at}';
ok is_int($rev->{id}), 'id is an integer';
is $rev->{product_id}, $p->{id}, 'product_id';
is $rev->{user}, 'Alice A.', 'user is the display name';
unlike $r->{content}, qr/\Q$alice->{email}\E/, 'the e-mail appears nowhere';
is $rev->{rating}, 5, 'rating';
is $rev->{title}, 'Great mug', 'title';
is $rev->{body}, 'Keeps tea hot.', 'body';
ok is_false($rev->{hidden}), 'not hidden';
ok is_rfc3339($rev->{created_at}) && is_rfc3339($rev->{updated_at}), 'times RFC 3339';
like $r->{headers}{location} // '', qr{/reviews/$rev->{id}/\z}, 'Location is the review';
is_deeply api(GET => "/reviews/$rev->{id}/")->{json}, $rev, 'GET /reviews/{id}/ is the same review';
is_problem review($alice, $p, { rating => 3 }), 409, 'conflict', 'a second review by the same user: 409';
is_deeply rating_of($p), { average => 5, count => 1 }, 'detail: rating {average 5, count 1}';
like api(GET => "/products/$p->{id}/")->{content}, qr/"rating":\{"average":5\.0,"count":1\}/,
    'the average is a JSON number';

# shipped and delivered orders count too
my $bob = buyer($p, name => 'Bob');
psql_do("UPDATE orders SET status = 'shipped' WHERE id = $bob->{order}");
my $carol = buyer($p, name => '');
psql_do("UPDATE orders SET status = 'delivered' WHERE id = $carol->{order}");
my $rb = review($bob, $p, { rating => 4 });
is $rb->{status}, 201, 'a shipped order: 201';
ok !defined $rb->{json}{title} && !defined $rb->{json}{body}, 'title and body null when not sent';
my $rc = review($carol, $p, { rating => 4, title => undef, body => undef });
is $rc->{status}, 201, 'a delivered order: 201 (null title and body accepted)';
ok !defined $rc->{json}{user}, 'user null for an account without a name';
is_deeply rating_of($p), { average => 4.33, count => 3 }, '5, 4, 4: average 4.33 (two decimals), count 3';
like api(GET => "/products/$p->{id}/")->{content}, qr/"average":4\.33,/, '... printed 4.33';
is summary($p->{id}), recount($p->{id}), 'summary equals the recount';

# the list item carries the rating, and the cached list page follows the writes
{
    my $path = "/products/?q=$word";
    my $l = api(GET => $path);
    is $l->{json}{items}[0]{id}, $p->{id}, 'the product in its list';
    is_deeply $l->{json}{items}[0]{rating}, { average => 4.33, count => 3 }, 'list item: rating';
    api(GET => $path) for 1 .. 2;   # cached now
}

# --- the list ----------------------------------------------------------------
{
    my $l = list_all("/products/$p->{id}/reviews/");
    is_deeply [map { $_->{id} } @{ $l->{items} }], [$rc->{json}{id}, $rb->{json}{id}, $rev->{id}], 'newest first';
    my $small = list_all("/products/$p->{id}/reviews/", limit => 1);
    is $small->{pages}, 3, 'pages of one: three pages';
    is_deeply [map { $_->{id} } @{ $small->{items} }], [map { $_->{id} } @{ $l->{items} }], '... walking the same list';
    my $f = list_all("/products/$p->{id}/reviews/?rating=4");
    is_deeply [map { $_->{id} } @{ $f->{items} }], [$rc->{json}{id}, $rb->{json}{id}], '?rating=4: the two 4s';
    my $f1 = list_all("/products/$p->{id}/reviews/?rating=4", limit => 1);
    is_deeply [map { $_->{id} } @{ $f1->{items} }], [$rc->{json}{id}, $rb->{json}{id}], '?rating=4 by pages of one';
    is scalar @{ list_all("/products/$p->{id}/reviews/?rating=1")->{items} }, 0, '?rating=1: none';
}

# --- edits and deletes -------------------------------------------------------------
{
    my $e = api(PATCH => "/reviews/$rev->{id}/", token => $alice->{token}, body => { rating => 2, title => undef });
    is $e->{status}, 200, 'the author edits: 200';
    is $e->{json}{rating}, 2, 'rating changed';
    ok !defined $e->{json}{title}, 'title cleared with null';
    is $e->{json}{body}, 'Keeps tea hot.', 'body kept';
    is_deeply rating_of($p), { average => 3.33, count => 3 }, 'summary follows the edit (2, 4, 4: 3.33)';
    is_deeply api(GET => "/products/?q=$word")->{json}{items}[0]{rating}, { average => 3.33, count => 3 },
        'the cached list page was invalidated by the review write';
    is_problem api(PATCH => "/reviews/$rev->{id}/", token => $bob->{token}, body => { rating => 1 }), 404, 'not-found',
        "another user's review: PATCH 404";
    is_problem api(DELETE => "/reviews/$rev->{id}/", token => $bob->{token}), 404, 'not-found',
        "another user's review: DELETE 404";
    is_problem api(PATCH => "/reviews/$rev->{id}/", token => $alice->{token}, body => { hidden => JSON::PP::true }), 403, 'forbidden',
        'a customer cannot hide (even their own): 403';
    is_problem api(PATCH => "/reviews/$rev->{id}/", token => $staff, body => { rating => 1 }), 403, 'forbidden',
        "staff cannot edit another user's text: 403";
    is api(GET => "/reviews/$rev->{id}/")->{json}{rating}, 2, '... nothing changed';
}

# --- moderation -----------------------------------------------------------------
{
    my $h = api(PATCH => "/reviews/$rb->{json}{id}/", token => $staff, body => { hidden => JSON::PP::true });
    is $h->{status}, 200, 'staff hide a review: 200';
    ok is_true($h->{json}{hidden}), 'hidden true';
    is $h->{json}{updated_at}, $rb->{json}{updated_at}, 'hiding is not an edit: updated_at kept';
    is_deeply rating_of($p), { average => 3, count => 2 }, 'hidden review leaves the summary (2, 4: 3.00)';
    is summary($p->{id}), recount($p->{id}), 'summary equals the recount of visible reviews';
    my @ids = map { $_->{id} } @{ list_all("/products/$p->{id}/reviews/")->{items} };
    ok !grep({ $_ == $rb->{json}{id} } @ids), 'the hidden review is not listed';
    is scalar @ids, 2, '... two listed';
    my @all = map { $_->{id} } @{ list_all("/products/$p->{id}/reviews/", token => $staff)->{items} };
    ok grep({ $_ == $rb->{json}{id} } @all), 'staff see it in the list';
    is api(GET => "/reviews/$rb->{json}{id}/")->{status}, 404, 'GET of a hidden review: 404 to anyone';
    is api(GET => "/reviews/$rb->{json}{id}/", token => $bob->{token})->{status}, 200, '... 200 to its author';
    my $again = api(PATCH => "/reviews/$rb->{json}{id}/", token => $staff, body => { hidden => JSON::PP::true });
    is $again->{status}, 200, 'hiding twice: 200';
    is_deeply rating_of($p), { average => 3, count => 2 }, '... and counts once';
    my $own = api(PATCH => "/reviews/$rb->{json}{id}/", token => $bob->{token}, body => { rating => 1 });
    is $own->{status}, 200, 'the author edits a hidden review';
    is_deeply rating_of($p), { average => 3, count => 2 }, '... which still counts nothing';
    my $u = api(PATCH => "/reviews/$rb->{json}{id}/", token => $staff, body => { hidden => JSON::PP::false });
    is $u->{status}, 200, 'unhide: 200';
    is_deeply rating_of($p), { average => 2.33, count => 3 }, 'unhidden, with its new rating 1 (2, 1, 4: 2.33)';

    my $d = api(DELETE => "/reviews/$rc->{json}{id}/", token => $carol->{token});
    is $d->{status}, 204, 'the author deletes: 204';
    is api(GET => "/reviews/$rc->{json}{id}/")->{status}, 404, 'gone';
    is_deeply rating_of($p), { average => 1.5, count => 2 }, 'summary follows the delete (2, 1: 1.50)';
    is api(DELETE => "/reviews/$rc->{json}{id}/", token => $carol->{token})->{status}, 404, 'deleting again: 404';
    is review($carol, $p, { rating => 5 })->{status}, 201, 'after a delete the buyer may review again';
    is summary($p->{id}), recount($p->{id}), 'summary equals the recount';
}

# --- unknown and inactive products ------------------------------------------------
{
    my $q = create_product(stock => 10);
    my $qb = buyer($q);
    is review($qb, $q, { rating => 4 })->{status}, 201, 'a review of a second product';
    is api(PATCH => "/products/$q->{id}/", token => $staff, body => { active => JSON::PP::false })->{status}, 200, 'deactivate it';
    is_problem api(GET => "/products/$q->{id}/reviews/"), 404, 'not-found', 'reviews of an inactive product: 404';
    is_problem review($qb, $q, { rating => 4 }), 404, 'not-found', 'reviewing an inactive product: 404';
    is_problem api(GET => '/products/999999999999/reviews/'), 404, 'not-found', 'unknown product: 404';
    is_problem review($alice, { id => 999999999999 }, { rating => 4 }), 404, 'not-found', 'reviewing an unknown product: 404';
    is_problem api(PATCH => '/reviews/999999999999/', token => $staff, body => { hidden => JSON::PP::true }), 404, 'not-found',
        'staff: unknown review 404';
}

# --- sort=rating ------------------------------------------------------------------
{
    my $tag = 'rs' . join '', map { chr(97 + int rand 26) } 1 .. 10;
    my @p = map { create_product(name => "Sorted $tag $_", stock => 50) } 1 .. 4;
    # averages: p0 4.50, p1 5.00, p2 4.50, p3 none
    my %want = (0 => [5, 4], 1 => [5], 2 => [4, 5]);
    for my $i (sort keys %want) {
        for my $stars (@{ $want{$i} }) {
            my $b = buyer($p[$i]);
            is review($b, $p[$i], { rating => $stars })->{status}, 201, "product $i: a $stars-star review";
        }
    }
    my $l = list_all("/products/?q=$tag&sort=rating");
    is_deeply [map { $_->{id} } @{ $l->{items} }], [$p[1]{id}, $p[0]{id}, $p[2]{id}, $p[3]{id}],
        'sort=rating (filtered): 5.00, then the two 4.50 by id, then the unrated';
    my $l1 = list_all("/products/?q=$tag&sort=rating", limit => 1);
    is_deeply [map { $_->{id} } @{ $l1->{items} }], [map { $_->{id} } @{ $l->{items} }], '... the same by pages of one';
    # the unfiltered statement: the whole rated head of the catalog, in order
    my $head = list_all('/products/?sort=rating', limit => 7, max_pages => 60);
    my @items = @{ $head->{items} };
    my $ok = 1;
    for my $i (1 .. $#items) {
        my ($a, $b) = map { $_->{rating}{average} // -1 } @items[$i - 1, $i];
        $ok = 0, diag("out of order at $i: $a then $b") if $a < $b || ($a == $b && $items[$i - 1]{id} > $items[$i]{id});
    }
    ok $ok, 'sort=rating walked by pages: average descending, ties by id ascending';
    my %pos;
    @pos{ map { $_->{id} } @items } = 0 .. $#items;
    ok defined $pos{ $p[1]{id} } && defined $pos{ $p[0]{id} } && $pos{ $p[1]{id} } < $pos{ $p[0]{id} }
        && $pos{ $p[0]{id} } < $pos{ $p[2]{id} }, 'the three rated products in their order in the full list';
    my $rcur = api(GET => "/products/?q=$tag&sort=rating&limit=1")->{json}{next_cursor};
    ok defined $rcur, 'a first page of sort=rating has a cursor';
    is_problem api(GET => "/products/?sort=price&cursor=$rcur"), 400, 'bad-request', 'a rating cursor in the price sort: 400';
}

# --- 50 concurrent reviews by 50 buyers ---------------------------------------------
{
    my $N = 50;
    my $c = create_product(name => "Race mug $word", stock => 1000);
    my @buyers = parallel($N, 0, sub { my $b = buyer($c); return { token => $b->{token} } });
    is scalar(grep { $_->{token} } @buyers), $N, "$N buyers with paid orders";
    my @res = parallel($N, 2, sub {
        my $i = shift;
        my $r = api(POST => "/products/$c->{id}/reviews/", token => $buyers[$i]{token},
                    body => { rating => 1 + $i % 5, title => "race $i" });
        return { status => $r->{status}, content => $r->{status} == 201 ? '' : $r->{content} };
    });
    my @ok = grep { ($_->{status} // 0) == 201 } @res;
    is scalar @ok, $N, "all $N concurrent reviews 201" or diag explain [grep { ($_->{status} // 0) != 201 } @res];
    is summary($c->{id}), recount($c->{id}), 'summary equals the recount after the race';
    my $sum = 0;
    $sum += 1 + $_ % 5 for 0 .. $N - 1;
    my $key = int($sum * 100 / $N + 0.5);
    is summary($c->{id}), "$N|$sum|$key", "summary: $N reviews, sum $sum, key $key";
    is_deeply rating_of($c), { average => sprintf('%.2f', $sum / $N) + 0, count => $N }, 'the detail shows it';
    # and edits / hides racing too
    my @ids = split /\n/, psql_value("SELECT id FROM reviews WHERE product_id = $c->{id} ORDER BY id");
    parallel(scalar @ids, 2, sub {
        my $i = shift;
        return api(PATCH => "/reviews/$ids[$i]/", token => $staff, body => { hidden => ($i % 2 ? JSON::PP::true : JSON::PP::false) })->{status};
    });
    is summary($c->{id}), recount($c->{id}), 'summary equals the recount after 50 concurrent hides';
}

# --- bad input: 4xx problem+json, never 5xx ---------------------------------------
{
    my $b = buyer($p);
    my $long = 'x' x 201;
    my @bodies = (
        [ { rating => 0 }, 'rating' ], [ { rating => 6 }, 'rating' ], [ { rating => -1 }, 'rating' ],
        [ { rating => '5' }, 'rating' ], [ { rating => 4.5 }, 'rating' ], [ { rating => undef }, 'rating' ],
        [ { rating => JSON::PP::true }, 'rating' ], [ { rating => 99999999999999999999 }, 'rating' ],
        [ {}, 'rating' ], [ { title => 'no rating' }, 'rating' ],
        [ { rating => 3, title => $long }, 'title' ], [ { rating => 3, title => 7 }, 'title' ],
        [ { rating => 3, title => [] }, 'title' ],
        [ { rating => 3, body => 'y' x 5001 }, 'body' ], [ { rating => 3, body => {} }, 'body' ],
        [ { rating => 3, hidden => JSON::PP::true }, 'hidden' ], [ { rating => 3, user_id => 1 }, 'user_id' ],
    );
    for my $case (@bodies) {
        my ($body, $field) = @$case;
        my $r = review($b, $p, $body);
        is_problem $r, 422, 'validation', 'POST ' . substr(json_encode($body), 0, 60) . ': 422';
        has_field_error $r, $field;
    }
    is review($b, $p, { rating => 3, title => 'é' x 200, body => 'ü' x 5000 })->{status}, 201,
        '200 and 5000 characters (not bytes) are accepted';
    my $mine = psql_value("SELECT id FROM reviews WHERE user_id = $b->{id}");
    for my $case ([ { rating => 0 }, 'rating' ], [ { title => $long }, 'title' ], [ { body => 'z' x 5001 }, 'body' ],
                  [ { hidden => 'yes' }, 'hidden' ], [ { product_id => 1 }, 'product_id' ], [ {}, '' ]) {
        my ($body, $field) = @$case;
        my $r = api(PATCH => "/reviews/$mine/", token => $b->{token}, body => $body);
        is_problem $r, 422, 'validation', 'PATCH ' . substr(json_encode($body), 0, 60) . ': 422';
        has_field_error $r, $field if length $field;
    }
    is_problem review($b, $p, '{"rating": 3'), 400, undef, 'malformed JSON: 400';
    is_problem review($b, $p, '[3]'), 400, undef, 'a JSON array body: 400';
    is review($b, $p, '{"rating": 3}', content_type => 'text/plain')->{status}, 415, 'text/plain: 415';
    for my $q ('rating=0', 'rating=6', 'rating=abc', 'rating=', 'rating=4.0', 'rating=99999999999999999999',
               'limit=0', 'limit=abc', 'limit=-1', 'cursor=abc', 'cursor=', "cursor=%00") {
        my $r = api(GET => "/products/$p->{id}/reviews/?$q");
        is_problem $r, 400, undef, "GET reviews ?$q: 400";
    }
    my $pc = api(GET => '/products/?limit=1')->{json}{next_cursor};
    is_problem api(GET => "/products/$p->{id}/reviews/?cursor=$pc"), 400, undef, "the product list's cursor: 400";
    for my $q ('sort=ratings', 'sort=-rating', 'sort=', 'sort=rating&cursor=abc',
               'sort=rating&cursor=' . forge('r', 99999, 1), 'sort=rating&cursor=' . forge('r', -5, 1)) {
        is_problem api(GET => "/products/?$q"), 400, 'bad-request', "GET /products/?$q: 400";
    }
    for my $path ('/products/abc/reviews/', '/products/0/reviews/', '/reviews/abc/', '/reviews/0/',
                  '/products/1/reviews/1/', '/reviews/') {
        my $r = api(GET => $path);
        ok $r->{status} >= 400 && $r->{status} < 500, "GET $path: 4xx ($r->{status})";
    }
    is api(PUT => "/reviews/$mine/", token => $b->{token}, body => {})->{status}, 405, 'PUT /reviews/{id}/: 405';
    is api(DELETE => "/products/$p->{id}/reviews/", token => $b->{token})->{status}, 405, 'DELETE the list: 405';
    is api(PATCH => "/reviews/$mine/", body => { rating => 1 })->{status}, 401, 'PATCH without a token: 401';
    is api(DELETE => "/reviews/$mine/")->{status}, 401, 'DELETE without a token: 401';
    is summary($p->{id}), recount($p->{id}), 'after all that, the summary still equals the recount';
}

# a cursor with the given tag and keys (the module's own encoding)
sub forge {
    my ($tag, $a, $b) = @_;
    require MIME::Base64;
    (my $c = MIME::Base64::encode_base64url("$tag:$a:$b")) =~ s/=+\z//;
    return $c;
}

done_testing;
