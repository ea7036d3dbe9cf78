#!/usr/bin/perl
# Catalog: staff create/update, validation, listing, pagination, filters,
# sorting, ETags. The database is shared with other test files, so lists are
# checked by walking them, never by assuming what else is in them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $staff = staff_token();
my $cust = register_user();
my $currency = api(GET => '/cart/', token => $cust->{token})->{json}{currency};
like $currency // '', qr/\A[A-Z]{3}\z/, 'the default currency (empty cart) is 3 upper-case letters';

# Walks a list with cursors; returns (items, pages, error).
sub walk {
    my ($query, %o) = @_;
    my (@items, $cursor, $pages);
    my $max = $o{max_pages} // 5000;
    while (1) {
        my $q = $query . (defined $cursor ? '&cursor=' . uri($cursor) : '');
        my $r = api(GET => "/products/?$q", token => $o{token});
        return (\@items, $pages, "page $pages: status $r->{status}: $r->{content}")
            unless $r->{status} == 200 && ref $r->{json} eq 'HASH' && ref $r->{json}{items} eq 'ARRAY';
        $pages++;
        push @{ $o{page_sizes} }, scalar @{ $r->{json}{items} } if $o{page_sizes};
        push @items, @{ $r->{json}{items} };
        return (\@items, $pages, 'next_cursor key missing') unless exists $r->{json}{next_cursor};
        $cursor = $r->{json}{next_cursor};
        last unless defined $cursor;
        return (\@items, $pages, 'too many pages') if $pages >= $max;
    }
    return (\@items, $pages, undef);
}
sub uri { my $s = shift; $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge; $s }
sub ids { [ map { $_->{id} } @{ $_[0] } ] }
sub strictly_increasing { my @a = @_; for (1 .. $#a) { return 0 unless $a[$_] > $a[$_ - 1] } 1 }

# --- create ------------------------------------------------------------------
my $u = uniq();
my %fields = (sku => "sku-$u", name => "Widget $u", description => 'A fine widget',
              price => 1999, currency => $currency, stock => 5, active => JSON::PP::true);
my $c = api(POST => '/products/', token => $staff, body => \%fields);
is $c->{status}, 201, 'staff POST /products/ is 201';
my $p = $c->{json} // {};
my $pid = $p->{id};
ok is_int($pid) && $pid > 0, 'created product has a positive integer id';
like $c->{headers}{location} // '', qr{/products/\Q$pid\E/?\z}, 'Location points at the new product';
for my $f (qw(sku name description price currency stock)) {
    is $p->{$f}, $fields{$f}, "created product has $f as sent";
}
ok is_true($p->{active}), 'created product is active (JSON true)';
ok exists $p->{category} && !defined $p->{category}, 'category is null';
ok is_rfc3339($p->{created_at}) && is_rfc3339($p->{updated_at}), 'created_at/updated_at are RFC 3339';
ok is_int($p->{price}) && is_int($p->{stock}), 'price and stock are JSON integers';

{
    my $r = api(POST => '/products/', token => $staff, body => { name => "Defaults $u", price => 0 });
    is $r->{status}, 201, 'POST with only name and price (price 0) is 201';
    my $d = $r->{json} // {};
    is $d->{description}, '', 'description defaults to ""';
    is $d->{stock}, 0, 'stock defaults to 0';
    ok is_true($d->{active}), 'active defaults to true';
    is $d->{currency}, $currency, 'currency defaults to EcomCurrency';
    ok exists $d->{sku} && !defined $d->{sku}, 'sku defaults to null';
}
{
    my $r = api(POST => '/products/', token => $staff, body => {
        name => 'n' x 300, price => 10**12, stock => 2147483647, sku => substr("s-$u-" . ('s' x 64), 0, 64), description => 'd' x 10000 });
    is $r->{status}, 201, 'boundary values (name 300, price 10^12, stock 2^31-1, sku 64, description 10000) are accepted';
    is $r->{json}{price}, 10**12, 'price 10^12 round-trips';
    is $r->{json}{stock}, 2147483647, 'stock 2147483647 round-trips';
    # keep it out of lists other tests walk
    api(PATCH => "/products/$r->{json}{id}/", token => $staff, body => { active => JSON::PP::false })
        if is_int($r->{json}{id});
}
{
    my $r = api(POST => '/products/', token => $staff, body => {
        name => "Unicode \x{2603} \x{e9}t\x{e9} $u", price => 100 });
    is $r->{status}, 201, 'a name with non-ASCII characters is accepted';
    is $r->{json}{name}, "Unicode \x{2603} \x{e9}t\x{e9} $u", 'non-ASCII name round-trips';
}

{
    my $r = api(POST => '/products/', token => $cust->{token}, body => { name => 'x', price => 1 });
    is_problem $r, 403, 'forbidden', 'non-staff POST /products/ is 403';
    my $a = api(POST => '/products/', body => { name => 'x', price => 1 });
    is_problem $a, 401, 'unauthorized', 'anonymous POST /products/ is 401';
    ok bearer_challenge_ok($a), 'anonymous 401 has WWW-Authenticate: Bearer';
}

# --- validation ------------------------------------------------------------------
my @bad = (
    [ 'negative price', { price => -1 }, 'price' ],
    [ 'float price 9.99', { price => 9.99 }, 'price' ],
    [ 'float price 10.0', { raw_price => '10.0' }, 'price' ],
    [ 'string price', { price => '999' }, 'price' ],
    [ 'price over 10^12', { price => 10**12 + 1 }, 'price' ],
    [ 'boolean price', { price => JSON::PP::true }, 'price' ],
    [ 'null price', { price => undef }, 'price' ],
    [ 'negative stock', { stock => -1 }, 'stock' ],
    [ 'stock 2147483648', { stock => 2147483648 }, 'stock' ],
    [ 'string stock', { stock => '5' }, 'stock' ],
    [ "currency 'eur'", { currency => 'eur' }, 'currency' ],
    [ "currency 'EURO'", { currency => 'EURO' }, 'currency' ],
    [ 'numeric currency', { currency => 978 }, 'currency' ],
    [ 'empty name', { name => '' }, 'name' ],
    [ 'name of 301 chars', { name => 'n' x 301 }, 'name' ],
    [ 'numeric name', { name => 12 }, 'name' ],
    [ 'description of 10001 chars', { description => 'd' x 10001 }, 'description' ],
    [ 'string active', { active => 'yes' }, 'active' ],
    [ 'empty sku', { sku => '' }, 'sku' ],
    [ 'sku of 65 chars', { sku => 's' x 65 }, 'sku' ],
    [ 'unknown category', { category => 'no-such-category-' . lc uniq() }, 'category' ],
);
for my $c (@bad) {
    my ($what, $over, $field) = @$c;
    my %body = (name => "Bad $u", price => 100, %$over);
    my $raw;
    if (exists $body{raw_price}) {
        delete $body{price};
        my $rp = delete $body{raw_price};
        ($raw = json_encode(\%body)) =~ s/\}\z/,"price":$rp}/;
    }
    my $r = api(POST => '/products/', token => $staff, body => $raw // \%body);
    is_problem $r, 422, 'validation', "POST /products/ with $what is 422";
    has_field_error $r, $field, "422 for $what names field '$field'";
}
for my $missing (qw(name price)) {
    my %body = (name => "Missing $u", price => 100);
    delete $body{$missing};
    my $r = api(POST => '/products/', token => $staff, body => \%body);
    is_problem $r, 422, 'validation', "POST /products/ without $missing is 422";
    has_field_error $r, $missing;
}
is psql_value("SELECT count(*) FROM products WHERE name = 'Bad $u'"), 0,
    'none of the invalid products was written';

{
    my $r = api(POST => '/products/', token => $staff, body => { sku => "sku-$u", name => 'dup', price => 1 });
    is_problem $r, 409, undef, 'duplicate sku is 409';
}

# --- Idempotency-Key on POST /products/ ---------------------------------------------
{
    my $key = 'prod-' . uniq();
    my $sku = 'idem-' . uniq();
    my %o = (token => $staff, headers => { 'Idempotency-Key' => $key },
             body => { name => "Idempotent $u", price => 10, sku => $sku });
    my $r1 = api(POST => '/products/', %o);
    is $r1->{status}, 201, 'POST /products/ with an Idempotency-Key is 201';
    my $r2 = api(POST => '/products/', %o);
    is $r2->{status}, 201, 'the same key again is 201 (not a duplicate-sku 409)';
    is lc($r2->{headers}{'idempotent-replayed'} // ''), 'true', 'with Idempotent-Replayed: true';
    is $r2->{json}{id}, $r1->{json}{id}, 'and the same product id';
    is psql_value("SELECT count(*) FROM products WHERE sku = '$sku'"), 1, 'only one product was created';
}

# --- category ------------------------------------------------------------------
{
    my $slug = 'cat-' . lc(uniq());
    psql_do("INSERT INTO categories (slug, name) VALUES ('$slug', 'Test category')");
    my $r = api(POST => '/products/', token => $staff, body => { name => "Categorised $u", price => 500, category => $slug, stock => 1 });
    is $r->{status}, 201, 'product with an existing category slug is 201';
    is $r->{json}{category}, $slug, 'category is the slug';
    my $other = create_product(name => "Uncategorised $u");
    my ($items, undef, $err) = walk("category=$slug&limit=50");
    is $err, undef, 'walking ?category= works';
    is_deeply ids($items), [ $r->{json}{id} ], '?category= returns exactly the product of that category';
}

# --- detail, ETag -------------------------------------------------------------------
my $etag;
{
    my $r = api(GET => "/products/$pid/");
    is $r->{status}, 200, 'GET /products/{id}/ is 200';
    is $r->{json}{id}, $pid, 'detail has the id';
    is $r->{json}{stock}, 5, 'detail has stock';
    is $r->{json}{price}, 1999, 'detail has price';
    $etag = $r->{headers}{etag};
    ok defined $etag && length $etag, 'detail has an ETag';
    my $r2 = api(GET => "/products/$pid");
    is $r2->{status}, 200, 'GET /products/{id} without trailing slash is 200';
    is $r2->{json}{id}, $pid, '... and is the same product';
    my $nm = api(GET => "/products/$pid/", headers => { 'If-None-Match' => $etag // '"x"' });
    is $nm->{status}, 304, 'If-None-Match with the ETag is 304';
    is $nm->{content}, '', '304 has no body';
    my $other = api(GET => "/products/$pid/", headers => { 'If-None-Match' => '"not-the-etag"' });
    is $other->{status}, 200, 'If-None-Match with another ETag is 200';
    is $other->{json}{id}, $pid, '... with the product';
}

# --- stock changes: relative, or conditional on what was read ------------------
{
    my $p = create_product(stock => 10);
    my $id = $p->{id};
    my $abs = api(PATCH => "/products/$id/", token => $staff, body => { stock => 50 });
    is_problem $abs, 422, 'validation', 'an absolute stock without expected_stock is 422';
    ok has_field_error($abs, 'stock'), '... naming stock';
    is api(GET => "/products/$id/")->{json}{stock}, 10, 'stock unchanged';
    my $stale = api(PATCH => "/products/$id/", token => $staff, body => { stock => 50, expected_stock => 9, name => 'not applied' });
    is_problem $stale, 409, 'stock-changed', 'a stale expected_stock is 409 stock-changed';
    is $stale->{json}{stock}, 10, '... showing the current stock';
    isnt api(GET => "/products/$id/")->{json}{name}, 'not applied', 'nothing of that PATCH was applied';
    my $ok = api(PATCH => "/products/$id/", token => $staff, body => { stock => 50, expected_stock => 10 });
    is $ok->{status}, 200, 'a matching expected_stock sets the stock';
    is $ok->{json}{stock}, 50, 'stock is 50';
    my $adj = api(PATCH => "/products/$id/", token => $staff, body => { stock_adjustment => -8 });
    is $adj->{status}, 200, 'a relative adjustment is 200';
    is $adj->{json}{stock}, 42, 'stock 50 - 8 = 42';
    is api(PATCH => "/products/$id/", token => $staff, body => { stock_adjustment => 8 })->{json}{stock}, 50,
       'and back up by 8';
    my $neg = api(PATCH => "/products/$id/", token => $staff, body => { stock_adjustment => -51 });
    is_problem $neg, 409, 'out-of-stock', 'an adjustment below 0 is 409';
    is $neg->{json}{stock}, 50, '... showing the stock';
    my $big = api(PATCH => "/products/$id/", token => $staff, body => { stock_adjustment => 2147483647 });
    is_problem $big, 409, 'out-of-stock', 'an adjustment past the largest stock is 409, not a 5xx';
    my $both = api(PATCH => "/products/$id/", token => $staff, body => { stock => 1, expected_stock => 50, stock_adjustment => 1 });
    is_problem $both, 422, 'validation', 'stock and stock_adjustment together are 422';
    is api(GET => "/products/$id/")->{json}{stock}, 50, 'stock still 50';

    # a checkout between the staff read and the staff write is not undone
    my $buyer = register_user();
    is api(POST => '/cart/', token => $buyer->{token}, body => { product_id => $id, quantity => 3 })->{status}, 201, 'buyer adds 3';
    my $read = api(GET => "/products/$id/", token => $staff)->{json}{stock};
    is api(POST => '/orders/', token => $buyer->{token})->{status}, 201, 'buyer checks out 3';
    my $late = api(PATCH => "/products/$id/", token => $staff, body => { stock => $read + 10, expected_stock => $read });
    is_problem $late, 409, 'stock-changed', "staff's absolute set based on the pre-sale read is refused";
    is api(GET => "/products/$id/")->{json}{stock}, 47, 'the sale is not overwritten (50 - 3)';
    is api(PATCH => "/products/$id/", token => $staff, body => { stock_adjustment => 10 })->{json}{stock}, 57,
       'a relative +10 applies on top of the sale';
}

# --- PATCH ------------------------------------------------------------------------
{
    my $before = api(GET => "/products/$pid/")->{json}{stock};
    my $r = api(PATCH => "/products/$pid/", token => $staff,
                body => { price => 2499, stock => 7, expected_stock => $before, name => "Widget $u v2" });
    is $r->{status}, 200, 'staff PATCH is 200';
    is $r->{json}{price}, 2499, 'PATCH updated price';
    is $r->{json}{stock}, 7, 'PATCH updated stock';
    is $r->{json}{name}, "Widget $u v2", 'PATCH updated name';
    is $r->{json}{sku}, "sku-$u", 'PATCH left sku alone';
    is $r->{json}{description}, 'A fine widget', 'PATCH left description alone';
    my $g = api(GET => "/products/$pid/");
    is $g->{json}{price}, 2499, 'GET after PATCH shows the new price';
    isnt $g->{headers}{etag} // '', $etag // '', 'ETag changed after PATCH';
    my $nm = api(GET => "/products/$pid/", headers => { 'If-None-Match' => $etag // '"x"' });
    is $nm->{status}, 200, 'the old ETag no longer gives 304';
    my $nm2 = api(GET => "/products/$pid/", headers => { 'If-None-Match' => $g->{headers}{etag} // '"x"' });
    is $nm2->{status}, 304, 'the new ETag gives 304';
}
{
    my $r = api(PATCH => "/products/$pid/", token => $cust->{token}, body => { price => 1 });
    is_problem $r, 403, 'forbidden', 'non-staff PATCH is 403';
    is_problem api(PATCH => "/products/$pid/", body => { price => 1 }), 401, 'unauthorized', 'anonymous PATCH is 401';
    is api(GET => "/products/$pid/")->{json}{price}, 2499, 'price unchanged after refused PATCHes';
    is_problem api(PATCH => '/products/999999999999/', token => $staff, body => { price => 1 }),
        404, 'not-found', 'PATCH unknown id is 404';
    my $bad = api(PATCH => "/products/$pid/", token => $staff, body => { price => -5 });
    is_problem $bad, 422, 'validation', 'PATCH with a negative price is 422';
    has_field_error $bad, 'price';
    my $bad2 = api(PATCH => "/products/$pid/", token => $staff, body => { name => '' });
    is_problem $bad2, 422, 'validation', 'PATCH with an empty name is 422';
    my $other = create_product();
    is_problem api(PATCH => "/products/$other->{id}/", token => $staff, body => { sku => "sku-$u" }),
        409, undef, 'PATCH to a duplicate sku is 409';
}
is_problem api(GET => '/products/abc/'), 404, 'not-found', 'GET /products/abc/ is 404';
is_problem api(GET => '/products/999999999999/'), 404, 'not-found', 'GET of an unknown id is 404';

{   # inactive
    my $ip = create_product(name => "Soon inactive $u");
    my $r = api(PATCH => "/products/$ip->{id}/", token => $staff, body => { active => JSON::PP::false });
    is $r->{status}, 200, 'PATCH active=false is 200';
    ok is_false($r->{json}{active}), 'PATCH made it inactive';
    is_problem api(GET => "/products/$ip->{id}/"), 404, 'not-found', 'inactive product detail is 404 for anonymous';
    is_problem api(GET => "/products/$ip->{id}/", token => $cust->{token}), 404, 'not-found',
        'inactive product detail is 404 for a customer';
    my $s = api(GET => "/products/$ip->{id}/", token => $staff);
    is $s->{status}, 200, 'staff see the inactive product';
}

# --- list and pagination -------------------------------------------------------------
{
    my $r = api(GET => '/products/');
    is $r->{status}, 200, 'GET /products/ is 200';
    is ref $r->{json}{items}, 'ARRAY', 'list has items[]';
    ok exists $r->{json}{next_cursor}, 'list has next_cursor';
    is api(GET => '/products')->{status}, 200, 'GET /products without slash is 200';
}
my $pre = 'pg' . lc(uniq()) =~ s/-//gr;
my @mine = map { create_product(name => "Paged $_ $pre", price => 100 + $_) } 1 .. 7;
my $inactive = create_product(name => "Paged hidden $pre", active => JSON::PP::false);
ok is_false($inactive->{active}), 'created an inactive product';
# make sure > 100 active products exist, to test the caps
psql_do("INSERT INTO products (sku, name, price, currency, stock) "
      . "SELECT 'bulk-$pre-' || g, 'Bulk product $pre ' || g, 100 + g, '$currency', 3 "
      . "FROM generate_series(1, 105) g");
{
    my @sizes;
    my ($items, $pages, $err) = walk('limit=3', page_sizes => \@sizes);
    is $err, undef, 'walking the whole list with limit=3 ends with next_cursor null';
    ok !grep({ $_ > 3 } @sizes), 'no page has more than 3 items';
    ok strictly_increasing(@{ ids($items) }), 'ids strictly increase over all pages (id ascending, no duplicates)';
    my %seen = map { $_->{id} => $_ } @$items;
    ok !grep({ !$seen{$_->{id}} } @mine), 'all 7 created active products appear';
    ok !$seen{ $inactive->{id} }, 'the inactive product does not appear';
    ok !grep({ !is_true($_->{active}) } @$items), 'every listed product is active';
    ok @$items >= 112, 'the walk saw at least the 112 active products made here';
}
{
    my $r = api(GET => '/products/');
    is scalar @{ $r->{json}{items} // [] }, 20, 'default page size is 20';
    ok defined $r->{json}{next_cursor}, 'a full first page has a next_cursor';
    my $big = api(GET => '/products/?limit=1000');
    is $big->{status}, 200, 'limit=1000 is 200';
    is scalar @{ $big->{json}{items} // [] }, 100, 'limit=1000 is capped at 100 items';
    my $huge = api(GET => '/products/?limit=99999999999999999999999');
    is $huge->{status}, 200, 'a limit beyond 64 bits is capped too, not refused';
    is scalar @{ $huge->{json}{items} // [] }, 100, 'and gives 100 items';
    is api(GET => '/products/?limit=000')->{status}, 400, 'limit=000 is 400';
    my $one = api(GET => '/products/?limit=1');
    is scalar @{ $one->{json}{items} // [] }, 1, 'limit=1 gives 1 item';
}
for my $bad ('limit=0', 'limit=-1', 'limit=abc', 'limit=1.5', 'limit=', 'cursor=zzz', 'cursor=') {
    is_problem api(GET => "/products/?$bad"), 400, 'bad-request', "GET /products/?$bad is 400";
}
{   # a tampered cursor
    my $r = api(GET => '/products/?limit=2');
    my $cur = $r->{json}{next_cursor} // 'x';
    my $t = $cur;
    substr($t, length($t) / 2, 1) = substr($t, length($t) / 2, 1) eq 'A' ? 'B' : 'A';
    is_problem api(GET => '/products/?limit=2&cursor=' . uri($t)), 400, 'bad-request', 'a tampered cursor is 400';
    is api(GET => '/products/?limit=2&cursor=' . uri($cur))->{status}, 200, 'the untampered cursor is 200';
    is api(GET => '/products/?limit=2&unknown_param=zzz')->{status}, 200, 'unknown query parameters are ignored';
}
{   # keyset pagination is stable under inserts
    my $r1 = api(GET => '/products/?limit=5');
    my $last = $r1->{json}{items}[-1]{id};
    create_product(name => "Inserted during paging $pre");
    my $r2 = api(GET => '/products/?limit=5&cursor=' . uri($r1->{json}{next_cursor} // ''));
    my $first = $r2->{json}{items}[0]{id} // 0;
    ok $first > ($last // 0), 'the next page after an insert starts after the last id seen';
}

# --- filters and sorting -------------------------------------------------------------
my $word = 'zq' . join '', map { ('a' .. 'z')[rand 26] } 1 .. 10;
my $word2 = 'zq' . join '', map { ('a' .. 'z')[rand 26] } 1 .. 10;
my @prices = (500, 100, 300, 300, 900, 700, 100, 200);
my @fp = map { create_product(name => "Filter $word item $_", price => $prices[$_], stock => ($_ == 2 ? 0 : 4)) } 0 .. $#prices;
my $both = create_product(name => "Both $word", description => "also $word2", price => 650, stock => 1);
my $only2 = create_product(name => "Only $word2", price => 650, stock => 1);
my %ours = map { $_->{id} => $_ } @fp, $both;
{
    my ($items, undef, $err) = walk("q=$word&limit=50");
    is $err, undef, 'q= search works';
    is_deeply [ sort { $a <=> $b } @{ ids($items) } ], [ sort { $a <=> $b } keys %ours ], 'q= finds exactly the products with that word';
    my ($i2) = walk("q=" . uri("$word $word2") . "&limit=50");
    is_deeply ids($i2), [ $both->{id} ], 'q= with two words ANDs them (name and description)';
    my ($i3) = walk("q=" . uri(uc $word) . "&limit=50");
    is scalar @$i3, scalar keys %ours, 'q= is case-insensitive';
}
{
    my ($items, undef, $err) = walk("q=$word&min_price=200&max_price=700&limit=50");
    is $err, undef, 'min_price/max_price filter works';
    my @want = sort { $a <=> $b } map { $_->{id} } grep { $_->{price} >= 200 && $_->{price} <= 700 } values %ours;
    is_deeply [ sort { $a <=> $b } @{ ids($items) } ], \@want, 'min_price/max_price are inclusive bounds';
    my ($all) = walk('min_price=600&max_price=700&limit=100');
    ok !grep({ $_->{price} < 600 || $_->{price} > 700 } @$all), 'over the whole catalog, min/max_price hold';
}
{
    my ($items) = walk("q=$word&in_stock=true&limit=50");
    ok !grep({ $_->{id} == $fp[2]{id} } @$items), 'in_stock=true hides the out-of-stock product';
    is scalar @$items, scalar(keys %ours) - 1, 'in_stock=true keeps the others';
    ok !grep({ $_->{stock} <= 0 } @$items), 'in_stock=true items all have stock > 0';
    is api(GET => '/products/?in_stock=false')->{status}, 200, 'in_stock=false is accepted';
}
for my $bad ('min_price=abc', 'max_price=1.5', 'in_stock=maybe', 'sort=bogus', 'sort=rating2', 'min_price=-1x') {
    is_problem api(GET => "/products/?$bad"), 400, 'bad-request', "GET /products/?$bad is 400";
}
{
    my @sizes;
    my ($items, $pages, $err) = walk("q=$word&sort=price&limit=3", page_sizes => \@sizes);
    is $err, undef, 'sort=price walk ends';
    ok $pages >= 3, 'sort=price walk took several pages';
    my @p = map { $_->{price} } @$items;
    is_deeply \@p, [ sort { $a <=> $b } map { $_->{price} } values %ours ], 'sort=price orders prices non-decreasing over pages';
    my %u; $u{$_}++ for @{ ids($items) };
    ok !grep({ $_ > 1 } values %u), 'sort=price pages have no duplicates';
    is scalar keys %u, scalar keys %ours, 'sort=price pages miss nothing (ties across pages)';

    my ($d) = walk("q=$word&sort=-price&limit=3");
    is_deeply [ map { $_->{price} } @$d ], [ sort { $b <=> $a } map { $_->{price} } values %ours ],
        'sort=-price orders prices non-increasing over pages';
    my %ud; $ud{$_}++ for @{ ids($d) };
    is scalar keys %ud, scalar keys %ours, 'sort=-price pages: no duplicates, none missing';

    my ($n) = walk("q=$word&sort=newest&limit=3");
    is_deeply ids($n), [ sort { $b <=> $a } keys %ours ], 'sort=newest gives newest first';

    my ($whole, undef, $werr) = walk('sort=price&limit=100', max_pages => 2000);
    is $werr, undef, 'sort=price over the whole catalog ends';
    my $ok = 1;
    for (1 .. $#$whole) { $ok = 0 if $whole->[$_]{price} < $whole->[$_ - 1]{price} }
    ok $ok, 'sort=price over the whole catalog is non-decreasing';
}
{   # a cursor from one sort used with another
    my $r = api(GET => "/products/?q=$word&sort=price&limit=2");
    my $cur = $r->{json}{next_cursor};
    my $x = api(GET => "/products/?q=$word&sort=-price&limit=2&cursor=" . uri($cur // ''));
    ok $x->{status} == 400 || $x->{status} == 200, 'a cursor used with another sort is 400 (or ignored), not a server error'
        or diag "status $x->{status}";
}

# --- search: stemming, prefixes, relevance, typos ------------------------------------
{
    my $tag = 'zq' . join '', map { ('a' .. 'z')[rand 26] } 1 .. 9;
    my $mug = create_product(name => "Enamel Mug $tag", description => 'A sturdy cup');
    my $desc = create_product(name => "Plain tray $tag$tag", description => "Goes with the $tag range");
    my $lights = create_product(name => "Christmas Lights $tag", description => 'Warm white');
    my ($r) = walk('q=' . uri("mugs $tag") . '&limit=50');
    is_deeply ids($r), [ $mug->{id} ], 'stemming: "mugs" finds "Mug"';
    ($r) = walk('q=' . uri("$tag christmas lig") . '&limit=50');
    is_deeply ids($r), [ $lights->{id} ], 'the last word matches as a prefix (type-ahead)';
    ($r) = walk('q=' . uri("$tag light") . '&limit=50');
    is_deeply ids($r), [ $lights->{id} ], 'stemming: "light" finds "Lights"';
    # relevance: the word in the name ranks above the word in the description
    my $mid = create_product(name => "Rack $tag", description => "a $tag rack");
    my $x = api(GET => '/products/?limit=50&q=' . uri($tag . ' '));
    is $x->{status}, 200, 'search answers';
    my @got = @{ ids($x->{json}{items}) };
    is $got[-1], $desc->{id}, 'with q the default order is relevance: a match in the description only comes last'
        or diag "@got";
    is scalar(@got), 4, 'all four products with the word (as a whole word: the name, or the description)';
    my ($walked, $pages) = walk('q=' . uri($tag . ' ') . '&sort=relevance&limit=1');
    is_deeply ids($walked), \@got, 'sort=relevance pages one by one in the same order, none skipped or repeated';
    my $none = api(GET => '/products/?sort=relevance');
    is $none->{status}, 400, 'sort=relevance without q is 400';
    like $none->{json}{detail} // '', qr/relevance needs a search text/, '... and says why';
    # typos: nothing matches the words at all, so similar names are listed
    my $odd = 'zq' . join '', map { ('a' .. 'z')[rand 26] } 1 .. 10;
    (my $typo = $odd) =~ s/(.)(.)$/$2$1/;   # the last two letters swapped
    my $fz = create_product(name => "Vintage \u$odd lamp");
    ($r) = walk('q=' . uri($typo) . '&limit=50');
    is_deeply ids($r), [ $fz->{id} ], "typo-tolerant: '$typo' finds '$odd' when nothing matches exactly";
    ($r) = walk('q=' . uri($typo) . '&limit=50&max_price=0');
    is_deeply ids($r), [], 'the other filters apply to the typo-tolerant matches too';
    # no query syntax reaches PostgreSQL
    for my $q ("$tag & !", "$tag:*", "'$tag'", "$tag | x", '!!', '&', '(', "\\") {
        my $y = api(GET => '/products/?q=' . uri($q));
        ok $y->{status} == 200, "q=" . uri($q) . ' is searched as words, not syntax (200)' or diag "status $y->{status}";
    }
    ($r) = walk('q=' . uri("$tag & !:* mugs") . '&limit=50');
    is_deeply ids($r), [ $mug->{id} ], 'punctuation only separates words';
    # the fallback's order (similarity, ties by id) pages without a skip
    # or a repeat: three names equally similar to the typo
    my @same = map { create_product(name => "Vintage \u$odd lamp") } 1 .. 2;
    my ($fb) = walk('q=' . uri($typo) . '&limit=50');
    my ($fb1) = walk('q=' . uri($typo) . '&limit=1');
    is_deeply [ sort { $a <=> $b } @{ ids($fb) } ], [ sort { $a <=> $b } map { $_->{id} } $fz, @same ],
        'the typo-tolerant matches: the three similar names';
    is_deeply ids($fb1), ids($fb), 'the typo-tolerant order pages one by one (ties by id), none skipped or repeated';
}

# --- relevance in tiers (sql/032) -----------------------------------------------------
# tier 2: every word in the name; tier 1: the other matches; by id within
# a tier; the cursor holds (tier, id), whatever the page size
{
    # consonants only, no s or y: English stemming leaves such words and
    # their prefixes as they are (the last word is a prefix here)
    my @cons = qw(b c d f g h j k l m n p r t v w x z);
    my $wa = 'zq' . join '', map { $cons[rand @cons] } 1 .. 9;
    my $wb = 'zq' . join '', map { $cons[rand @cons] } 1 .. 9;
    # [tier, product], ids increasing, the tiers interleaved
    my @made = (
        [ 1, create_product(name => "Stool $wa", description => "goes with $wb") ],
        [ 2, create_product(name => "Lamp $wa $wb", description => 'brass') ],
        [ 1, create_product(name => "Shelf", description => "$wa and $wb") ],
        [ 2, create_product(name => "Shade $wb for $wa", description => "$wa $wb") ],
        [ 1, create_product(name => "Chair $wb", description => "$wa") ],
        [ 2, create_product(name => "Desk $wb $wa", description => 'oak', stock => 0) ],
        [ 2, create_product(name => "Rug $wa $wb", description => 'wool', price => 99999) ],
        [ 1, create_product(name => "Mat", description => "$wb $wa", stock => 0) ],
    );
    create_product(name => "Only $wa", description => 'not the other word');   # no match
    my @want = map { $_->[1]{id} } (grep({ $_->[0] == 2 } @made), grep({ $_->[0] == 1 } @made));
    # the last word a prefix: the tiers hold for type-ahead too
    my $q = uri("$wa " . substr($wb, 0, 7));
    for my $limit (1, 2, 3, 50) {
        my ($items, undef, $err) = walk("q=$q&limit=$limit");
        is $err, undef, "relevance walk, limit=$limit, ends";
        is_deeply ids($items), \@want,
            "relevance, limit=$limit: names with every word first, then the rest, by id in each tier, none skipped or repeated";
    }
    my ($expl) = walk("q=$q&sort=relevance&limit=2");
    is_deeply ids($expl), \@want, 'sort=relevance is the same order';
    my ($stock) = walk("q=$q&in_stock=true&limit=2");
    is_deeply ids($stock), [ grep { my $id = $_; !grep { $_->[1]{id} == $id && $_->[1]{stock} == 0 } @made } @want ],
        'with in_stock=true: the same tiers, the sold-out products left out';
    my ($cheap) = walk("q=$q&max_price=50000&limit=3");
    is_deeply ids($cheap), [ grep { my $id = $_; !grep { $_->[1]{id} == $id && $_->[1]{price} > 50000 } @made } @want ],
        'with max_price: the same tiers, the dearer product left out';
    my ($byprice) = walk("q=$q&sort=price&limit=3");
    is_deeply [ sort { $a <=> $b } @{ ids($byprice) } ], [ sort { $a <=> $b } @want ], 'sort=price with q lists the same products';

    # cursors: the first page's, a relevance cursor of the ts_rank order
    # before sql/032 (tag s), and forged ones
    my $p1 = api(GET => "/products/?q=$q&limit=3");
    is_deeply ids($p1->{json}{items}), [ @want[0 .. 2] ], 'the first page of three';
    my $c1 = $p1->{json}{next_cursor} // '';
    require MIME::Base64;
    my $cur = sub { (my $c = MIME::Base64::encode_base64url(shift)) =~ s/=+\z//; $c };
    my $plain = MIME::Base64::decode_base64url($c1);
    is $plain, "t:2:$want[2]", 'the cursor holds the tier and the id of the last product';
    my $t1 = api(GET => "/products/?q=$q&limit=50&cursor=" . $cur->("t:1:$want[4]"));
    is_deeply ids($t1->{json}{items}), [ @want[5 .. $#want] ], 'a cursor in tier 1 goes on in tier 1 only';
    is_problem api(GET => "/products/?q=$q&limit=3&cursor=" . $cur->("s:60792:$want[1]")), 400, 'bad-request',
        'a relevance cursor of the ts_rank order (before sql/032) is 400';
    is_problem api(GET => "/products/?q=$q&limit=3&cursor=" . $cur->("t:-1:0")), 400, 'bad-request', 'a negative tier is 400';
    is_problem api(GET => "/products/?q=$q&limit=3&cursor=" . $cur->("t:99999999:0")), 400, 'bad-request', 'a huge tier is 400';
    is api(GET => "/products/?q=$q&limit=3&cursor=" . $cur->("t:7:0"))->{status}, 200, 'a tier above 2 reads as 2 (200)';
    is_problem api(GET => "/products/?q=$q&sort=price&limit=3&cursor=" . uri($c1)), 400, 'bad-request',
        'a relevance cursor with sort=price is 400';
}

done_testing;
