#!/usr/bin/perl
# Health check, the OpenAPI document, unknown paths and wrong methods.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

for my $path ('/health/', '/health') {
    my $r = api(GET => $path);
    is $r->{status}, 200, "GET $path is 200";
    like content_type($r), qr{^application/json; ?charset=utf-8\z}i, "GET $path is application/json; charset=utf-8";
    is_deeply { map { $_ => $r->{json}{$_} } qw(status database) },
        { status => 'ok', database => 'ok' }, "GET $path says status ok, database ok";
}

{
    my $r = api(GET => '/openapi.json');
    is $r->{status}, 200, 'GET /openapi.json is 200';
    like content_type($r), qr{^application/json\b}i, 'openapi.json has a JSON content type';
    my $doc = $r->{json};
    is ref $doc, 'HASH', 'openapi.json is a JSON object';
    like $doc->{openapi} // '', qr/\A3\.1\.\d+\z/, 'openapi version is 3.1.x';
    my $paths = ref $doc eq 'HASH' && ref $doc->{paths} eq 'HASH' ? $doc->{paths} : {};
    for my $p ('/products/', '/cart/', '/orders/', '/auth/register/', '/auth/login/', '/health/') {
        ok exists $paths->{$p}, "openapi paths has $p";
    }
    ok scalar(grep { m!\A/products/\{[^}]+\}/\z! } keys %$paths), 'openapi paths has /products/{id}/';
    ok scalar(grep { m!\A/orders/\{[^}]+\}/\z! } keys %$paths), 'openapi paths has /orders/{id}/';
    ok scalar(grep { m!\A/cart/\{[^}]+\}/\z! } keys %$paths), 'openapi paths has /cart/{item_id}/';
    my $ops = ref $paths->{'/products/'} eq 'HASH' ? $paths->{'/products/'} : {};
    ok exists $ops->{get} && exists $ops->{post}, 'openapi /products/ documents get and post';
}

for my $path ('/no-such-thing/', '/products/1/nope/', '/productsx/', '/auth/', '/cart/1/2/') {
    my $r = api(GET => $path);
    is_problem $r, 404, 'not-found', "GET $path is a 404 not-found problem";
}

sub allow_of {
    my ($r) = @_;
    my $a = $r->{headers}{allow} // '';
    $a = join ',', @$a if ref $a;
    return { map { uc($_) => 1 } grep { length } split /\s*,\s*/, $a };
}

{
    my $r = api(DELETE => '/products/');
    is_problem $r, 405, 'method-not-allowed', 'DELETE /products/ is a 405 problem';
    my $allow = allow_of($r);
    ok $allow->{GET} && $allow->{POST}, 'Allow of /products/ lists GET and POST'
        or diag 'Allow: ' . ($r->{headers}{allow} // 'missing');
    ok !$allow->{DELETE}, 'Allow of /products/ does not list DELETE';
}
{
    my $r = api(PUT => '/cart/', body => {});
    is_problem $r, 405, 'method-not-allowed', 'PUT /cart/ is a 405 problem';
    my $allow = allow_of($r);
    ok $allow->{GET} && $allow->{POST}, 'Allow of /cart/ lists GET and POST';
}
{
    my $r = api(POST => '/health/', body => {});
    is_problem $r, 405, 'method-not-allowed', 'POST /health/ is a 405 problem';
    ok allow_of($r)->{GET}, 'Allow of /health/ lists GET';
}
{
    my $r = api(GET => '/auth/login/');
    is_problem $r, 405, 'method-not-allowed', 'GET /auth/login/ is a 405 problem';
    ok allow_of($r)->{POST}, 'Allow of /auth/login/ lists POST';
}
{
    my $r = api(POST => '/openapi.json', body => {});
    is_problem $r, 405, 'method-not-allowed', 'POST /openapi.json is a 405 problem';
}

done_testing;
