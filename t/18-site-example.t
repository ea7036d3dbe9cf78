#!/usr/bin/perl
# conf/site-example.conf, the configuration operators copy, run for real: its
# ports, certificate and database replaced by the test ones, in a throwaway
# apache2. The API answers over TLS with HSTS; on port 80 the API path is
# refused (a redirect would come after the client sent its token in clear)
# while other paths redirect to https://.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use EcomTest;

plan skip_all => 'ECOM_URL/ECOM_RUNDIR not set (run through scripts/test.sh)'
    unless $ENV{ECOM_URL} && $ENV{ECOM_RUNDIR};
my ($can, $why) = HTTP::Tiny->can_ssl;
plan skip_all => "no TLS support in HTTP::Tiny: $why" unless $can;

my $file = ecom_root() . '/conf/site-example.conf';
my $site = slurp_file($file) // die "$file: $!\n";

my %subst = (
    '<VirtualHost *:80>'  => '<VirtualHost 127.0.0.1:@PORT0@>',
    '<VirtualHost *:443>' => '<VirtualHost 127.0.0.1:@PORT1@>',
    '/etc/ssl/certs/ssl-cert-snakeoil.pem'   => "$ENV{ECOM_RUNDIR}/tls/server.crt",
    '/etc/ssl/private/ssl-cert-snakeoil.key' => "$ENV{ECOM_RUNDIR}/tls/server.key",
    'port=5432' => 'port=' . ($ENV{PGPORT} // 55432),
    'DocumentRoot /var/www/html' => 'DocumentRoot "@DIR@"',
);
for my $from (sort keys %subst) {
    ok $site =~ s/\Q$from\E/$subst{$from}/g, "the example has '$from' (replaced for the test)";
}

my $h = spare_httpd(
    ports   => 2,
    modules => [qw(alias socache_shmcb ssl headers reqtimeout)],
    conf    => "Define APACHE_LOG_DIR \@DIR\@\n$site",
);
plan skip_all => "cannot run a spare apache2: $h" unless ref $h;
ok $h->{syntax_ok}, 'apache2 -t accepts conf/site-example.conf' or diag $h->{syntax};
ok $h->{started}, 'apache2 starts with it' or diag(($h->{start_output} // '') . `tail -n 20 $h->{error_log} 2>&1`);

SKIP: {
    skip 'the example server did not start', 18 unless $h->{started};
    my ($http, $https) = map { "$_->[0]://127.0.0.1:$_->[1]" } [ http => $h->{ports}[0] ], [ https => $h->{ports}[1] ];

    my $r = api(GET => '/api/health/', base => $https);
    is $r->{status}, 200, 'GET https://.../api/health/ is 200 (module, database and TLS work)';
    is $r->{headers}{'strict-transport-security'}, 'max-age=31536000', 'with HSTS';
    is $r->{headers}{server}, 'Apache', 'and a bare Server header';
    my $e = api(GET => '/api/no-such/', base => $https);
    is $e->{headers}{'strict-transport-security'}, 'max-age=31536000', 'HSTS on error answers too';

    for my $path ('/api/health/', '/api/cart/', '/api') {
        my $p = api(GET => $path, base => $http, token => 'x' x 43);
        is $p->{status}, 403, "GET http://...$path is 403, not a redirect";
        ok !defined $p->{headers}{location}, "with no Location to retry at";
    }
    like api(GET => '/api/cart/', base => $http)->{content}, qr/HTTPS only/, 'the 403 says why';
    my $home = api(GET => '/', base => $http);
    is $home->{status}, 301, 'other paths on port 80 redirect';
    is $home->{headers}{location}, 'https://shop.example.com/', 'to https://';
    my $page = api(GET => '/apiary/page.html', base => $http);
    is $page->{headers}{location}, 'https://shop.example.com/apiary/page.html',
       'a path that merely starts with "api" redirects too';
    my $secret = 'Bearer trace-' . uniq();
    my $t = api(TRACE => '/api/health/', base => $https, headers => { Authorization => $secret });
    is $t->{status}, 405, 'TRACE is off';
    unlike $t->{content}, qr/\Q$secret\E/, 'and echoes nothing';
    my $t80 = api(TRACE => '/', base => $http, headers => { Authorization => $secret });
    isnt $t80->{status}, 200, 'TRACE on port 80 is not answered either';
    unlike $t80->{content}, qr/\Q$secret\E/, 'nor echoed';
    $h->{stop}->();
}

done_testing;
