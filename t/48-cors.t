#!/usr/bin/perl
# CORS (EcomCORSOrigins, ecom_cors.c) and the security headers of every
# answer: nothing about CORS by default (the suite's server); on a server
# with two listed origins, preflights answered for them only, actual
# answers (errors too) readable by them only; the security headers on a
# 2xx, a 4xx and a 503; Strict-Transport-Security over TLS only, when
# EcomHSTSMaxAge asks; bad origins refused at start-up.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $SHOP = 'https://shop.example';
my $EVIL = 'https://evil.example';

sub hdr { my ($r, $n) = @_; my $v = $r->{headers}{lc $n}; ref $v ? join(', ', @$v) : $v }
sub cors_headers { my ($r) = @_; grep { /^access-control-/ } keys %{ $r->{headers} } }
sub preflight {
    my ($path, $origin, %o) = @_;
    return api(OPTIONS => $path, base => $o{base}, headers => {
        Origin => $origin, 'Access-Control-Request-Method' => $o{method} // 'POST',
        'Access-Control-Request-Headers' => 'authorization, content-type' });
}

# --- by default: no CORS at all ------------------------------------------------------
my $r = api(GET => '/products/', headers => { Origin => $SHOP });
is $r->{status}, 200, 'a cross-origin GET on the suite\'s server (no EcomCORSOrigins)';
is_deeply [ cors_headers($r) ], [], '... carries no Access-Control-* header';
$r = preflight('/cart/', $SHOP);
is $r->{status}, 204, 'a preflight there gets the plain OPTIONS answer (204)';
like hdr($r, 'Allow') // '', qr/\bPOST\b/, '... with Allow';
is_deeply [ cors_headers($r) ], [], '... and no Access-Control-* header';
unlike hdr($r, 'Vary') // '', qr/Origin/, 'no Vary: Origin without CORS';

# --- a server with CORS ------------------------------------------------------------
my $pgport = $ENV{PGPORT} // 55432;
my $rundir = $ENV{ECOM_RUNDIR} // '';
my $tls = -s "$rundir/tls/server.crt" ? <<"TLS" : '';
<VirtualHost 127.0.0.1:\@PORT1\@>
    ServerName 127.0.0.1
    SSLEngine on
    SSLCertificateFile "$rundir/tls/server.crt"
    SSLCertificateKeyFile "$rundir/tls/server.key"
</VirtualHost>
TLS
my $h = spare_httpd(ports => 2, modules => [ 'socache_shmcb', ($tls ? 'ssl' : ()) ], conf => <<"CONF" . $tls);
DBDriver pgsql
DBDParams "host=127.0.0.1 port=$pgport dbname=ecom user=ecom connect_timeout=2"
DBDMin 0
EcomCORSOrigins $SHOP http://localhost:3000
EcomHSTSMaxAge 31536000
<Location "/">
    SetHandler ecom
</Location>
CONF
plan skip_all => "cannot run a spare apache2: $h" unless ref $h;
ok $h->{started}, 'a server with EcomCORSOrigins starts' or diag(($h->{syntax} // '') . ($h->{start_output} // ''));
BAIL_OUT('the spare apache2 did not start') unless $h->{started};
my $base = "http://127.0.0.1:$h->{ports}[0]";

$r = preflight('/cart/', $SHOP, base => $base);
is $r->{status}, 204, 'preflight from a listed origin: 204';
is hdr($r, 'Access-Control-Allow-Origin'), $SHOP, 'Access-Control-Allow-Origin echoes the origin';
is hdr($r, 'Access-Control-Allow-Credentials'), 'true', 'Access-Control-Allow-Credentials: true';
is hdr($r, 'Access-Control-Allow-Methods'), hdr($r, 'Allow'), 'Access-Control-Allow-Methods: the path\'s methods';
like hdr($r, 'Access-Control-Allow-Methods') // '', qr/\bPOST\b/, '... POST among them';
my $ah = hdr($r, 'Access-Control-Allow-Headers') // '';
for my $want (qw(Authorization Content-Type Idempotency-Key If-None-Match Cart-Token X-CSRF-Token)) {
    like $ah, qr/(?:^|, )\Q$want\E(?:,|$)/, "Access-Control-Allow-Headers has $want";
}
is hdr($r, 'Access-Control-Max-Age'), '600', 'Access-Control-Max-Age: 600';
like hdr($r, 'Vary') // '', qr/\bOrigin\b/, 'Vary: Origin';
is $r->{content}, '', 'no body';

$r = preflight('/cart/', 'http://localhost:3000', base => $base, method => 'DELETE');
is hdr($r, 'Access-Control-Allow-Origin'), 'http://localhost:3000', 'the second listed origin too';

$r = preflight('/cart/', $EVIL, base => $base);
is $r->{status}, 204, 'preflight from an unlisted origin: the plain OPTIONS answer';
is_deeply [ cors_headers($r) ], [], '... with no Access-Control-* header';
$r = preflight('/cart/', 'https://shop.example.evil.example', base => $base);
is_deeply [ cors_headers($r) ], [], 'an origin that only starts like a listed one gets none either';
$r = preflight('/cart/', "$SHOP:444", base => $base);
is_deeply [ cors_headers($r) ], [], 'nor one on another port';
$r = api(OPTIONS => '/cart/', base => $base);
is $r->{status}, 204, 'OPTIONS without Origin: 204';
like hdr($r, 'Allow') // '', qr/\bGET\b/, '... with Allow, as before';
is_deeply [ cors_headers($r) ], [], '... no Access-Control-*';
$r = preflight('/no-such-thing/', $SHOP, base => $base);
is_problem $r, 404, 'not-found', 'a preflight of an unknown path is 404';

$r = api(GET => '/products/', base => $base, headers => { Origin => $SHOP });
is $r->{status}, 200, 'an actual GET from a listed origin';
is hdr($r, 'Access-Control-Allow-Origin'), $SHOP, '... Access-Control-Allow-Origin';
is hdr($r, 'Access-Control-Allow-Credentials'), 'true', '... credentials allowed';
my $eh = hdr($r, 'Access-Control-Expose-Headers') // '';
for my $want (qw(Location ETag Retry-After RateLimit RateLimit-Policy Idempotent-Replayed Cart-Token)) {
    like $eh, qr/(?:^|, )\Q$want\E(?:,|$)/, "Access-Control-Expose-Headers has $want";
}
like hdr($r, 'Vary') // '', qr/\bOrigin\b/, '... Vary: Origin';
$r = api(GET => '/cart/', base => $base, headers => { Origin => $SHOP });
is $r->{status}, 401, 'an error answer to a listed origin';
is hdr($r, 'Access-Control-Allow-Origin'), $SHOP, '... is readable by it too (Access-Control-Allow-Origin)';
$r = api(GET => '/products/', base => $base, headers => { Origin => $EVIL });
is_deeply [ cors_headers($r) ], [], 'an actual GET from an unlisted origin: no Access-Control-*';
like hdr($r, 'Vary') // '', qr/\bOrigin\b/, '... but Vary: Origin (the answer depends on it)';

# --- security headers: 2xx, 4xx, 503 --------------------------------------------------
my %answers = (
    '2xx' => api(GET => '/products/', base => $base),
    '4xx' => api(GET => '/no-such-thing/', base => $base),
    # no EcomWebhookSecret on this server: the webhook is refused with 503
    '503' => api(POST => '/payments/webhook/', base => $base, body => {}),
);
is $answers{'2xx'}{status}, 200, 'the 2xx answer';
is $answers{'4xx'}{status}, 404, 'the 4xx answer';
is $answers{'503'}{status}, 503, 'the 503 answer (webhook not configured)';
for my $k (sort keys %answers) {
    my $a = $answers{$k};
    is hdr($a, 'X-Content-Type-Options'), 'nosniff', "$k: X-Content-Type-Options: nosniff";
    is hdr($a, 'Referrer-Policy'), 'no-referrer', "$k: Referrer-Policy: no-referrer";
    is hdr($a, 'X-Frame-Options'), 'DENY', "$k: X-Frame-Options: DENY";
    is hdr($a, 'Content-Security-Policy'), "default-src 'none'; frame-ancestors 'none'",
        "$k: Content-Security-Policy";
    ok !defined hdr($a, 'Strict-Transport-Security'), "$k: no Strict-Transport-Security over plain HTTP";
}
$r = api(GET => '/products/');
is hdr($r, 'Referrer-Policy'), 'no-referrer', 'the suite\'s server sends them too';
SKIP: {
    skip 'no TLS certificate of the test run', 2 unless $tls;
    my $t = api(GET => '/products/', base => "https://127.0.0.1:$h->{ports}[1]");
    is $t->{status}, 200, 'a GET over TLS';
    is hdr($t, 'Strict-Transport-Security'), 'max-age=31536000', '... has Strict-Transport-Security (EcomHSTSMaxAge)';
}
$h->{stop}->();

# --- bad origins stop start-up --------------------------------------------------------
for my $bad ('*', 'https://shop.example/', 'shop.example', 'ftp://shop.example', 'https://shop.example/path') {
    my $s = spare_httpd(start => 0, conf => "EcomCORSOrigins $bad\n");
    ok ref $s && !$s->{syntax_ok}, "EcomCORSOrigins $bad is refused";
    like $s->{syntax} // '', qr/EcomCORSOrigins: '\Q$bad\E' is not an origin/, '... with a message naming it';
}

done_testing;
