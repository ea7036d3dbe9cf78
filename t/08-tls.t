#!/usr/bin/perl
# The same API over HTTPS (mod_ssl, self-signed certificate: not verified).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use EcomTest;

plan skip_all => 'ECOM_URL/ECOM_TLS_URL not set (run through scripts/test.sh)'
    unless $ENV{ECOM_URL} && $ENV{ECOM_TLS_URL};
my ($can, $why) = HTTP::Tiny->can_ssl;
plan skip_all => "no TLS support in HTTP::Tiny: $why" unless $can;

my $tls = $ENV{ECOM_TLS_URL};
sub tapi { my ($m, $p, %o) = @_; api($m, $p, base => $tls, %o) }

{
    my $r = tapi(GET => '/health/');
    is $r->{status}, 200, 'GET /health/ over https is 200' or diag $r->{content};
    is $r->{json}{status}, 'ok', 'health status ok over https';
}
my $email = 'tls-' . uniq() . '@example.com';
my $reg = tapi(POST => '/auth/register/', body => { email => $email, password => $EcomTest::PASSWORD });
is $reg->{status}, 201, 'register over https is 201';
my $token = $reg->{json}{token};
ok defined $token, 'register over https returns a token';
my $login = tapi(POST => '/auth/login/', body => { email => $email, password => $EcomTest::PASSWORD });
is $login->{status}, 200, 'login over https is 200';
{
    my $r = tapi(GET => '/cart/', token => $login->{json}{token});
    is $r->{status}, 200, 'GET /cart/ over https with the token is 200';
    is_deeply $r->{json}{items}, [], 'the cart is empty';
    my $plain = api(GET => '/cart/', token => $token);
    is $plain->{status}, 200, 'the token from https also works over http (same database)';
}
my $p = create_product(name => 'TLS product ' . uniq(), price => 321);
{
    my $r = tapi(GET => '/products/?limit=5');
    is $r->{status}, 200, 'GET /products/ over https is 200';
    is ref $r->{json}{items}, 'ARRAY', 'product list over https has items';
    my $d = tapi(GET => "/products/$p->{id}/");
    is $d->{status}, 200, 'product detail over https is 200';
    is $d->{json}{price}, 321, 'with the product';
    my $add = tapi(POST => '/cart/', token => $token, body => { product_id => $p->{id}, quantity => 1 });
    is $add->{status}, 201, 'POST /cart/ over https is 201';
    my $e = tapi(GET => '/cart/');
    is_problem $e, 401, 'unauthorized', 'errors over https are problem documents too';
}

done_testing;
