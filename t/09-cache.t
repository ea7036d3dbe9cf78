#!/usr/bin/perl
# The catalog page cache (EcomCache, on for the test server): a repeated list
# request is served from the cache, and every write that changes what a list
# shows (staff create/update, a checkout that takes a product's stock to 0)
# is visible in the very next list request, while a checkout that leaves
# stock above 0 keeps the pages (their stock count may lag by EcomCacheTTL
# seconds; the product detail is live). The cache's counters, summed over
# every httpd child, are in mod_status's report.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $p = create_product(price => 777_001, stock => 4);
# a page that holds $p: sort by price descending from just above its price
my $q = "/products/?sort=price&min_price=777001&max_price=777001&limit=3";

sub find_p { my ($r) = @_; (grep { $_->{id} == $p->{id} } @{ $r->{json}{items} || [] })[0] }

my $first = api(GET => $q);
is $first->{status}, 200, 'list 200';
is $first->{headers}{'ecom-cache'}, 'miss', 'first request after a write is a cache miss';
ok find_p($first), 'the new product is listed at once (create invalidates)';
my $second = api(GET => $q);
is $second->{headers}{'ecom-cache'}, 'hit', 'same request again is a cache hit';
is $second->{content}, $first->{content}, 'the hit has the same body';
# the key is made of the parameters the list reads, nothing else
my $other = api(GET => "$q&x=1");
is $other->{headers}{'ecom-cache'}, 'hit', 'an unknown parameter finds the same entry';
is $other->{content}, $first->{content}, 'with the same page';
my $reordered = api(GET => "/products/?limit=3&max_price=777001&min_price=777001&sort=price");
is $reordered->{headers}{'ecom-cache'}, 'hit', 'so do the same parameters in another order';
is api(GET => "$q&limit=2")->{headers}{'ecom-cache'}, 'miss', 'another value of a known parameter is another entry';
# values are length-prefixed in the key: one holding the others, separators
# included, is its own entry (here an invalid sort, so a 400, never a hit)
my $packed = api(GET => "/products/?sort=price%26min_price%3D777001%26max_price%3D777001%26limit%3D3");
is $packed->{status}, 400, 'a value that spells other parameters is not taken for them';
ok !defined $packed->{headers}{'ecom-cache'} || $packed->{headers}{'ecom-cache'} eq 'miss',
   'and is not served from their entry';

my $staff = staff_token();
my $buyer = register_user();
my $buyer2 = register_user();
# counter deltas between two mod_status reports
my $st = server_status();
ok $st && defined $st->{'EcomCacheStatus/EcomCacheHits'}, 'mod_status reports the cache (?auto)'
    or diag explain $st;
sub counter { my ($s, $name) = @_; ($s && $s->{"EcomCacheStatus/EcomCache$name"}) // 0 }
sub deltas {
    my ($before, $after, @names) = @_;
    return { map { $_ => counter($after, $_) - counter($before, $_) } @names };
}
my @inv = qw(InvalidationsCatalog InvalidationsCategories InvalidationsReviews);

my $u = api(PATCH => "/products/$p->{id}/", token => $staff, body => { stock => 3, expected_stock => 4, name => 'Renamed by 09-cache' });
is $u->{status}, 200, 'staff PATCH 200';
my $st2 = server_status();
is_deeply deltas($st, $st2, @inv),
    { InvalidationsCatalog => 1, InvalidationsCategories => 1, InvalidationsReviews => 0 },
    'a product update invalidates the catalog and categories sections, not reviews';
my $after = api(GET => $q);
is $after->{headers}{'ecom-cache'}, 'miss', 'update invalidates cached pages';
is find_p($after)->{stock}, 3, 'new stock shown right after the update';
is find_p($after)->{name}, 'Renamed by 09-cache', 'new name shown right after the update';

is api(POST => '/cart/', token => $buyer->{token}, body => { product_id => $p->{id}, quantity => 2 })->{status},
   201, 'added to cart';
is api(GET => $q)->{headers}{'ecom-cache'}, 'hit', 'adding to a cart does not invalidate';

# a page stored right now (another limit: its own entry), so it is still
# within EcomCacheTTL when read again however slow the run
my $q4 = "$q&limit=4";
is api(GET => $q4)->{headers}{'ecom-cache'}, 'miss', 'a fresh page';
$st = server_status();
is api(POST => '/orders/', token => $buyer->{token})->{status}, 201, 'checkout 201 (stock 3 -> 1)';
is_deeply deltas($st, server_status(), @inv),
    { InvalidationsCatalog => 0, InvalidationsCategories => 0, InvalidationsReviews => 0 },
    'a checkout that leaves stock above 0 invalidates nothing';
my $kept = api(GET => $q4);
is $kept->{headers}{'ecom-cache'}, 'hit', 'so the catalog page is still a hit after it';
is find_p($kept)->{stock}, 3, 'showing the stock count of before (it may lag by EcomCacheTTL seconds)';
is api(GET => "/products/$p->{id}/")->{json}{stock}, 1, 'while the product detail shows the live stock';

# the last unit: in_stock changes, the pages go
my $qin = "$q&in_stock=true";
my $qout = "$q&in_stock=false";
ok find_p(api(GET => $qin)), 'listed as in stock before selling out';
ok !find_p(api(GET => $qout)), 'and not as out of stock';
is api(GET => $qin)->{headers}{'ecom-cache'}, 'hit', 'the in_stock=true page is cached';
is api(POST => '/cart/', token => $buyer2->{token}, body => { product_id => $p->{id}, quantity => 1 })->{status},
   201, 'the last unit added to another cart';
$st = server_status();
is api(POST => '/orders/', token => $buyer2->{token})->{status}, 201, 'checkout 201 (stock 1 -> 0)';
is_deeply deltas($st, server_status(), @inv),
    { InvalidationsCatalog => 1, InvalidationsCategories => 0, InvalidationsReviews => 0 },
    'a checkout that sells a product out invalidates the catalog section only';
my $sold = api(GET => $q);
is $sold->{headers}{'ecom-cache'}, 'miss', 'a checkout that takes stock to 0 invalidates cached pages';
is find_p($sold)->{stock}, 0, 'stock 0 shown at once';
my $in = api(GET => $qin);
is $in->{headers}{'ecom-cache'}, 'miss', 'the in_stock=true page too';
ok !find_p($in), 'which no longer lists the product';
ok find_p(api(GET => $qout)), 'the in_stock=false page lists it at once';

# the same through an Idempotency-Key request, whose invalidation waits for
# its transaction's commit (ecom_idempotency.c)
{
    my $ip = create_product(price => 777_004, stock => 3);
    my $iq = '/products/?sort=price&min_price=777004&max_price=777004';
    sub find_ip { my ($r, $id) = @_; (grep { $_->{id} == $id } @{ $r->{json}{items} || [] })[0] }
    my $ib = register_user();
    is api(POST => '/cart/', token => $ib->{token}, body => { product_id => $ip->{id}, quantity => 1 })->{status},
       201, 'Idempotency-Key: one unit in the cart';
    is api(GET => $iq)->{headers}{'ecom-cache'}, 'miss', 'Idempotency-Key: a fresh page';
    is api(POST => '/orders/', token => $ib->{token}, headers => { 'Idempotency-Key' => 'c09-' . uniq() })->{status},
       201, 'Idempotency-Key: checkout 201 (stock 3 -> 2)';
    is api(GET => $iq)->{headers}{'ecom-cache'}, 'hit', 'Idempotency-Key: stock above 0, the page stays';
    is api(POST => '/cart/', token => $ib->{token}, body => { product_id => $ip->{id}, quantity => 2 })->{status},
       201, 'Idempotency-Key: the last two units in the cart';
    is api(POST => '/orders/', token => $ib->{token}, headers => { 'Idempotency-Key' => 'c09-' . uniq() })->{status},
       201, 'Idempotency-Key: checkout 201 (stock 2 -> 0)';
    my $ir = api(GET => $iq);
    is $ir->{headers}{'ecom-cache'}, 'miss', 'Idempotency-Key: sold out, the page is invalidated after the commit';
    is find_ip($ir, $ip->{id})->{stock}, 0, 'Idempotency-Key: and shows stock 0';
}

# many buyers at once, none selling a product out: the catalog stays cached
{
    my $bp = create_product(price => 777_005, stock => 1000);
    my $bq = '/products/?sort=price&min_price=777005&max_price=777005';
    my @buyers = map { register_user() } 1 .. 8;
    for my $b (@buyers) {
        api(POST => '/cart/', token => $b->{token}, body => { product_id => $bp->{id}, quantity => 1 });
    }
    is api(GET => $bq)->{headers}{'ecom-cache'}, 'miss', 'concurrent checkouts: a fresh page';
    my @r = parallel(8, 1, sub { api(POST => '/orders/', token => $buyers[$_[0]]{token})->{status} });
    is_deeply \@r, [ (201) x 8 ], '8 checkouts at once all 201';
    is api(GET => $bq)->{headers}{'ecom-cache'}, 'hit', 'the catalog page is still a hit after them';
    is api(GET => "/products/$bp->{id}/")->{json}{stock}, 992, 'the detail shows the live stock';
}

my $gone = api(PATCH => "/products/$p->{id}/", token => $staff, body => { active => JSON::PP::false() });
is $gone->{status}, 200, 'deactivated';
ok !find_p(api(GET => $q)), 'deactivated product disappears from the cached list at once';

# The counters are the server's, summed over every child: N list requests,
# from 8 processes at once on connections of their own (so more than one
# httpd child serves them), add exactly N to hits + misses, and what each
# answer said (Ecom-Cache) adds up to the hits and misses counted.
{
    create_product(price => 777_006);
    my @urls = map { "/products/?sort=price&min_price=777006&max_price=777006&limit=$_" } 1 .. 3;
    my $before = server_status();
    my @seen = map { @$_ } parallel(8, 1, sub {
        my ($i) = @_;
        [ map { api(GET => $urls[($i + $_) % @urls])->{headers}{'ecom-cache'} // 'none' } 1 .. 5 ];
    });
    my $after2 = server_status();
    my %n;
    $n{$_}++ for @seen;
    is scalar @seen, 40, '40 list requests answered';
    is $n{none} // 0, 0, 'each said hit or miss';
    my $d = deltas($before, $after2, qw(Hits Misses Stores));
    is $d->{Hits} + $d->{Misses}, 40, '40 requests: exactly 40 more hits + misses in mod_status';
    is $d->{Hits}, $n{hit} // 0, 'hits counted as the answers said';
    is $d->{Misses}, $n{miss} // 0, 'misses counted as the answers said';
    is $d->{Stores}, $d->{Misses}, 'every miss stored its page';
    cmp_ok $after2->{'EcomCacheStatus/CacheCurrentEntries'} // 0, '>', 0,
        "the provider's own status follows (entries)";
    is $after2->{'EcomCacheStatus/EcomCacheProvider'}, 'shmcb', 'and names the provider';
}

# Ecom-Cache is a diagnostic sent only at LogLevel debug for mod_ecom (the
# test server's default); /api/v1/ has LogLevel ecom:info, as in production
my $mp = create_product(price => 777_002, name => 'Cached under the prefix');
my $mq = '/api/v1/products/?sort=price&min_price=777002&max_price=777002';
my $m1 = api(GET => $mq);
is $m1->{status}, 200, 'list under /api/v1/ 200';
ok !exists $m1->{headers}{'ecom-cache'}, 'no Ecom-Cache header below debug level (miss)';
my $m2 = api(GET => $mq);
ok !exists $m2->{headers}{'ecom-cache'}, 'nor on the next request (hit)';
psql_do("UPDATE products SET name = 'Changed behind the API' WHERE id = $mp->{id}");
is api(GET => $mq)->{json}{items}[0]{name}, 'Cached under the prefix',
   'the page is still served from the cache there';

my $bad = api(GET => '/products/?limit=abc');
is $bad->{status}, 400, 'invalid query still 400 with the cache on';
is api(GET => '/products/?limit=abc')->{status}, 400, 'errors are never cached';

done_testing;
