#!/usr/bin/perl
# The catalog page cache (EcomCache, on for the test server): a repeated list
# request is served from the cache, and every write that changes what a list
# shows (staff create/update, checkout's stock decrement) is visible in the
# very next list request.
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
my $u = api(PATCH => "/products/$p->{id}/", token => $staff, body => { stock => 3, expected_stock => 4, name => 'Renamed by 09-cache' });
is $u->{status}, 200, 'staff PATCH 200';
my $after = api(GET => $q);
is $after->{headers}{'ecom-cache'}, 'miss', 'update invalidates cached pages';
is find_p($after)->{stock}, 3, 'new stock shown right after the update';
is find_p($after)->{name}, 'Renamed by 09-cache', 'new name shown right after the update';

my $buyer = register_user();
is api(POST => '/cart/', token => $buyer->{token}, body => { product_id => $p->{id}, quantity => 2 })->{status},
   201, 'added to cart';
is api(GET => $q)->{headers}{'ecom-cache'}, 'hit', 'adding to a cart does not invalidate';
is api(POST => '/orders/', token => $buyer->{token})->{status}, 201, 'checkout 201';
my $sold = api(GET => $q);
is $sold->{headers}{'ecom-cache'}, 'miss', 'checkout invalidates cached pages';
is find_p($sold)->{stock}, 1, 'stock after checkout shown at once';

my $gone = api(PATCH => "/products/$p->{id}/", token => $staff, body => { active => JSON::PP::false() });
is $gone->{status}, 200, 'deactivated';
ok !find_p(api(GET => $q)), 'deactivated product disappears from the cached list at once';

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
