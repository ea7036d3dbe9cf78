#!/usr/bin/perl
# The API mounted under a <Location> prefix (/api/v1/ in the test server's
# configuration, with EcomPageSize 3, EcomPageSizeMax 5, EcomCurrency EUR):
# routes, Location headers and per-location settings follow the prefix, and
# cached pages are never shared between the two mount points.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $p = create_product(price => 4321, stock => 7);
for (1 .. 5) { create_product(price => 10 + $_) }

my $h = api(GET => '/api/v1/health/');
is $h->{status}, 200, 'health under the prefix';
is $h->{json}{status}, 'ok', 'answers ok';
is api(GET => '/api/v1/health')->{status}, 200, 'without the trailing slash too';

my $root = api(GET => '/products/?sort=price&min_price=11&max_price=15');
my $pref = api(GET => '/api/v1/products/?sort=price&min_price=11&max_price=15');
is $root->{status}, 200, 'list at the root mount';
is $pref->{status}, 200, 'list under the prefix';
is scalar @{ $pref->{json}{items} }, 3, 'the prefix uses its own EcomPageSize (3)';
cmp_ok scalar @{ $root->{json}{items} }, '>=', 5, 'the root mount uses its own page size';
isnt $pref->{content}, $root->{content}, 'same query string, different mount: no shared cache entry';
is scalar @{ api(GET => '/api/v1/products/?limit=50')->{json}{items} }, 5,
   'and its own EcomPageSizeMax (5)';

my $d = api(GET => "/api/v1/products/$p->{id}/");
is $d->{status}, 200, 'product detail under the prefix';
is $d->{json}{id}, $p->{id}, 'same product';

my $staff = staff_token();
my $c = api(POST => '/api/v1/products/', token => $staff, body => { name => 'Mounted ' . uniq(), price => 500 });
is $c->{status}, 201, 'staff create under the prefix';
like $c->{headers}{location} // '', qr{\A/api/v1/products/\d+/\z}, 'Location carries the prefix';
is $c->{json}{currency}, 'EUR', 'the prefix applies its EcomCurrency to new products';

my $u = register_user();
is api(POST => '/api/v1/cart/', token => $u->{token}, body => { product_id => $p->{id}, quantity => 1 })->{status},
   201, 'add to cart under the prefix';
my $o = api(POST => '/api/v1/orders/', token => $u->{token});
is $o->{status}, 201, 'checkout under the prefix';
like $o->{headers}{location} // '', qr{\A/api/v1/orders/\d+/\z}, 'order Location carries the prefix';

is_problem api(GET => '/api/v1/'), 404, 'not-found', 'the prefix itself is not a resource';
is_problem api(GET => '/api/v1/nope/'), 404, 'not-found', 'unknown path under the prefix';
my $m = api(DELETE => '/api/v1/products/');
is_problem $m, 405, 'method-not-allowed', '405 under the prefix';
like $m->{headers}{allow} // '', qr/\bGET\b.*\bPOST\b/, 'with Allow';

done_testing;
