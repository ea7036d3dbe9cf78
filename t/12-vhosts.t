#!/usr/bin/perl
# Two shops in one httpd: the test server's main host (ECOM_URL, database
# ecom) and a second virtual host (ECOM_URL2, its own DBDParams, database
# ECOM_DB2) mount the API at the same paths and share the one EcomCache.
# Their catalog pages must never be served to each other, and a write in one
# shop must not invalidate the other's pages. Two virtual hosts on the same
# database (the HTTP and the HTTPS host) keep their own pages but see each
# other's writes at once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL, ECOM_URL2 and ECOM_DB2 not set (run through scripts/test.sh)'
    unless $ENV{ECOM_URL} && $ENV{ECOM_URL2} && $ENV{ECOM_DB2};

my ($A, $B, $db2) = ($ENV{ECOM_URL}, $ENV{ECOM_URL2}, $ENV{ECOM_DB2});

# the second host really is another shop: another database behind it
is api(GET => '/health/', base => $B)->{status}, 200, 'the second shop answers';

# one product per shop, at the same price, so the same list URL selects it
my $price = 700_000_000 + int rand 1_000_000;
my $u = uniq();
my $pa = create_product(price => $price, name => "Shop A product $u");
my $pb = create_product(price => $price, name => "Shop B product $u", _base => $B, _db => $db2);
{
    local $ENV{PGDATABASE} = $db2;
    is psql_value("SELECT count(*) FROM products WHERE name = 'Shop B product $u'"), 1,
       "the second shop's product is in $db2";
}
is psql_value("SELECT count(*) FROM products WHERE name = 'Shop B product $u'"), 0,
   'and not in the first shop\'s database';

my $url = "/products/?min_price=$price&max_price=$price";
sub names { my ($r) = @_; [ map { $_->{name} } @{ ref $r->{json} eq 'HASH' ? $r->{json}{items} : [] } ] }
sub cache_of { $_[0]{headers}{'ecom-cache'} // '(none)' }

# warm shop A's page, then ask shop B for the same URL
my $a1 = api(GET => $url, base => $A);
is $a1->{status}, 200, 'shop A list 200';
is_deeply names($a1), ["Shop A product $u"], "shop A lists its own product";
is cache_of(api(GET => $url, base => $A)), 'hit', "shop A's page is cached";

my $b1 = api(GET => $url, base => $B);
is $b1->{status}, 200, 'shop B list 200';
is cache_of($b1), 'miss', "shop B does not get shop A's cached page";
is_deeply names($b1), ["Shop B product $u"], 'shop B lists its own product, not shop A\'s';
my $b2 = api(GET => $url, base => $B);
is cache_of($b2), 'hit', "shop B's page is cached too";
is_deeply names($b2), ["Shop B product $u"], "and the hit is shop B's page";
is_deeply names(api(GET => $url, base => $A)), ["Shop A product $u"],
   'shop A still gets its own page with both cached';

# A staff write in one shop invalidates that shop's pages and no other's:
# write_in($shop, $base, $token, $product, $other_shop, $other_base, $other_name)
sub write_in {
    my ($shop, $base, $token, $product, $other, $other_base, $other_name) = @_;
    my $w = api(PATCH => "/products/$product->{id}/", base => $base, token => $token,
                body => { name => "Shop $shop renamed $u" });
    is $w->{status}, 200, "staff PATCH in shop $shop";
    my $mine = api(GET => $url, base => $base);
    is cache_of($mine), 'miss', "the write invalidates shop ${shop}'s pages";
    is_deeply names($mine), ["Shop $shop renamed $u"], "shop $shop shows the change at once";
    my $theirs = api(GET => $url, base => $other_base);
    is cache_of($theirs), 'hit', "shop ${other}'s cached page survives a write in shop $shop";
    is_deeply names($theirs), [$other_name], "and is still shop ${other}'s";
}
write_in('B', $B, scalar staff_token(base => $B, db => $db2), $pb, 'A', $A, "Shop A product $u");
write_in('A', $A, scalar staff_token(), $pa, 'B', $B, "Shop B renamed $u");

# the HTTPS virtual host serves the same database as the main host
SKIP: {
    my $tls = $ENV{ECOM_TLS_URL};
    my ($can) = HTTP::Tiny->can_ssl;
    skip 'no TLS URL or no TLS support in HTTP::Tiny', 6 unless $tls && $can;
    my $t1 = api(GET => $url, base => $tls);
    is $t1->{status}, 200, 'the same list over the HTTPS host';
    is cache_of($t1), 'miss', 'another virtual host keeps its own pages, even on the same database';
    is_deeply names($t1), ["Shop A renamed $u"], 'with the same catalog';
    is cache_of(api(GET => $url, base => $tls)), 'hit', 'cached on the HTTPS host';
    # a write through the HTTPS host: both hosts of that database see it at once
    my $w3 = api(PATCH => "/products/$pa->{id}/", base => $tls, token => scalar staff_token(),
                 body => { name => "Shop A over TLS $u" });
    is $w3->{status}, 200, 'staff PATCH over the HTTPS host';
    is_deeply names(api(GET => $url, base => $A)), ["Shop A over TLS $u"],
       'the write through one host invalidates the pages of every host on that database';
}

done_testing;
