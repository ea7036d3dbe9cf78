#!/usr/bin/perl
# What the server around the module sends and accepts (conf/httpd.conf.in,
# the same settings as conf/site-example.conf recommends): no TRACE (it would
# echo the Authorization header), a bare "Server: Apache", HSTS on the TLS
# host, and mod_reqtimeout cutting off a client that stalls in its headers.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use IO::Socket::INET;
use Time::HiRes qw(time);
use EcomTest;

plan skip_all => 'ECOM_URL/ECOM_TLS_URL not set (run through scripts/test.sh)'
    unless $ENV{ECOM_URL} && $ENV{ECOM_TLS_URL};
my ($can, $why) = HTTP::Tiny->can_ssl;
plan skip_all => "no TLS support in HTTP::Tiny: $why" unless $can;
my $tls = $ENV{ECOM_TLS_URL};

# Started first, checked last: a request whose header never ends.
my ($host, $port) = base_url() =~ m{^http://([^/:]+):(\d+)};
my $slow = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp', Timeout => 10)
    or die "connect: $!\n";
syswrite $slow, "GET /health/ HTTP/1.1\r\nHost: $host\r\nX-Slow: ";
my $slow_t0 = time;

my $secret = 'Bearer trace-' . uniq();
for my $base (base_url(), $tls) {
    my $scheme = $base =~ /^https/ ? 'https' : 'http';
    my $r = api(TRACE => '/', base => $base, headers => { Authorization => $secret, 'X-Echo' => 'echo-me' });
    is $r->{status}, 405, "TRACE / over $scheme is 405";
    unlike $r->{content}, qr/\Q$secret\E|echo-me/, "TRACE over $scheme does not echo the request headers";
    unlike $r->{content}, qr{Apache/\d|Server at}, "httpd's own error page over $scheme has no signature";
    is $r->{headers}{server}, 'Apache', "the Server header of httpd's own answers over $scheme is just 'Apache'";
    my $h = api(GET => '/health/', base => $base);
    is $h->{status}, 200, "GET /health/ over $scheme";
    is $h->{headers}{server}, 'Apache', "the Server header of API answers over $scheme is just 'Apache'";
}

{
    my $h = api(GET => '/health/', base => $tls);
    is $h->{headers}{'strict-transport-security'}, 'max-age=31536000', 'HSTS on https answers';
    my $e = api(GET => '/no-such-thing/', base => $tls);
    is $e->{status}, 404, 'an unknown path over https is 404';
    is $e->{headers}{'strict-transport-security'}, 'max-age=31536000', 'HSTS on https error answers too';
    my $p = api(GET => '/health/');
    ok !defined $p->{headers}{'strict-transport-security'}, 'no HSTS header over plain http';
}

# mod_reqtimeout: 20 s for a header (RequestReadTimeout header=20-40);
# without it the core Timeout (60 s) applies. Only an upper bound is checked.
{
    my $limit = 50;
    my $rin = '';
    vec($rin, fileno $slow, 1) = 1;
    my $left = $limit - (time - $slow_t0);
    my $ready = $left > 0 ? select(my $rout = $rin, undef, undef, $left) : 0;
    my $got = '';
    sysread $slow, $got, 4096 if $ready;
    my $secs = time - $slow_t0;
    close $slow;
    ok $ready && ($got eq '' || $got =~ m{\AHTTP/1\.1 408 }),
       sprintf('a client stalling in its request header is cut off (408 or close) within %d s', $limit)
        or diag sprintf('after %.1f s: %s', $secs, $ready ? "got '" . substr($got, 0, 60) . "'" : 'still open');
    note sprintf 'closed after %.1f s', $secs;
}

done_testing;
