#!/usr/bin/perl
# The OpenAPI document as API clients' tools see it (issue 11, part 6):
# Redocly CLI (recommended rules) and Spectral (OWASP API Security ruleset),
# pinned in tools/oaslint and installed by scripts/oaslint.sh, report no
# error and no warning; the server sends what the document promises on every
# response (RateLimit and RateLimit-Policy with EcomRateLimit, the CORS
# headers with EcomCORSOrigins, on a 405 and a 400 too) and refuses strings
# past the maxLength the document gives.
# Skipped in the sanitizer pass: linting a JSON file is not about memory
# (the C changes run under the sanitizers in t/47 and t/48's routes).
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;
use Time::HiRes qw(time);
$SIG{TERM} = sub { exit 143 };

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};
plan skip_all => 'lint of a JSON file: pass 1 covers it' if $ENV{ECOM_SANITIZED};

my $t0 = time;
my $root = ecom_root();
my $doc_file = "$root/openapi/openapi.json";
my $T = "$root/tools/oaslint";
local $ENV{REDOCLY_TELEMETRY} = 'off';
local $ENV{REDOCLY_SUPPRESS_UPDATE_NOTICE} = 'true';
local $ENV{SCARF_ANALYTICS} = 'false';

# ---- the pinned tools ---------------------------------------------------------
my $inst = `bash $root/scripts/oaslint.sh --install-only 2>&1`;
is $?, 0, 'scripts/oaslint.sh installs the pinned linters (npm ci)' or diag $inst;
BAIL_OUT('no linters') unless -x "$T/node_modules/.bin/redocly" && -x "$T/node_modules/.bin/spectral";
my $lock = json_decode(slurp_file("$T/package-lock.json"));
for my $p ('@redocly/cli', '@stoplight/spectral-cli', '@stoplight/spectral-owasp-ruleset') {
    my $want = json_decode(slurp_file("$T/package.json"))->{dependencies}{$p};
    like $want // '', qr/\A\d+\.\d+\.\d+\z/, "$p is pinned to an exact version ($want)";
    is $lock->{packages}{"node_modules/$p"}{version}, $want, "and the lock file has that version";
}

# ---- Redocly: recommended rules ---------------------------------------------------
my $out = `cd $root && $T/node_modules/.bin/redocly lint --config $T/.redocly.yaml --format=json openapi/openapi.json 2>/dev/null`;
my $red = json_decode($out);
ok ref $red eq 'HASH' && ref $red->{totals} eq 'HASH', 'redocly lint answers JSON' or diag $out;
is $red->{totals}{errors}, 0, 'Redocly: no error';
is $red->{totals}{warnings}, 0, 'Redocly: no warning';
diag join "\n", map { "$_->{ruleId}: $_->{message} at " . ($_->{location}[0]{pointer} // '') }
    @{ $red->{problems} || [] } if @{ $red->{problems} || [] };
my $cfg = slurp_file("$T/.redocly.yaml");
like $cfg, qr/^\s*-\s*recommended\b/m, '.redocly.yaml extends the recommended ruleset';
# every switched-off rule has its reason just above it
for my $rule ($cfg =~ /^\s+([a-z0-9-]+):\s*off\b/mg) {
    like $cfg, qr/#[^\n]*\n(?:\s*#[^\n]*\n)*\s+\Q$rule\E:\s*off/, "Redocly rule $rule is off with a comment giving the reason";
}

# ---- Spectral: OWASP -----------------------------------------------------------------
$out = `cd $root && $T/node_modules/.bin/spectral lint --ruleset $T/.spectral.yaml -f json -q openapi/openapi.json 2>/dev/null`;
my $sp = json_decode($out);
is ref $sp, 'ARRAY', 'spectral lint answers JSON' or diag $out;
$sp = [] unless ref $sp eq 'ARRAY';
is scalar(grep { $_->{severity} == 0 } @$sp), 0, 'Spectral OWASP: no error';
is scalar(grep { $_->{severity} == 1 } @$sp), 0, 'Spectral OWASP: no warning';
diag join "\n", map { "$_->{code}: " . join('.', @{ $_->{path} }) } @$sp[0 .. ($#$sp > 19 ? 19 : $#$sp)] if @$sp;
my $scfg = slurp_file("$T/.spectral.yaml");
like $scfg, qr/spectral-owasp-ruleset/, '.spectral.yaml extends the OWASP ruleset';
for my $rule ($scfg =~ /^\s+(owasp:[^:\s]+:[^:\s]+):\s*"?off"?/mg) {
    like $scfg, qr/#[^\n]*\n(?:\s*(?:#[^\n]*|-[^\n]*|files:|rules:)\n)*\s+\Q$rule\E:\s*"?off/,
        "Spectral rule $rule is off with a comment giving the reason";
}

# ---- the document served is the file linted -----------------------------------------
my $file_doc = json_decode(slurp_file($doc_file));
my $served = api(GET => '/openapi.json');
is_deeply $served->{json}, $file_doc, 'GET /openapi.json serves the linted document';

# ---- what the document promises, on a server with EcomRateLimit and CORS -------------
my ($http_port) = $ENV{ECOM_URL} =~ /:(\d+)\z/;
my $port = $http_port + 100;
my $pgport = $ENV{PGPORT} // 55432;
my $shop = 'https://shop.example';
my $h = spare_httpd(fixed_ports => [$port], modules => ['socache_shmcb'], conf => <<"CONF");
DBDriver pgsql
DBDParams "host=127.0.0.1 port=$pgport dbname=ecom user=ecom connect_timeout=2"
DBDMin 0
EcomRateLimit 1000
EcomCORSOrigins $shop
<Location "/">
    SetHandler ecom
</Location>
CONF
SKIP: {
    skip "cannot run a spare apache2: $h", 12 unless ref $h;
    ok $h->{started}, 'a server with EcomRateLimit and EcomCORSOrigins starts'
        or diag(($h->{syntax} // '') . ($h->{start_output} // ''));
    my $base = "http://127.0.0.1:$port";
    my %o = (base => $base, headers => { Origin => $shop });
    for my $c ([ GET => '/products/', 200, 'a 200' ],
               [ DELETE => '/products/', 405, 'a 405 (no route for the method)' ],
               [ GET => '/products/?q=%00', 400, 'a 400 (NUL in the query string)' ],
               [ GET => '/orders/', 401, 'a 401' ]) {
        my ($m, $path, $st, $what) = @$c;
        my $r = api($m => $path, %o);
        is $r->{status}, $st, "$m $path is $st";
        like $r->{headers}{'ratelimit-policy'} // '', qr/\A"addr";q=1000;w=60\z/, "$what carries RateLimit-Policy (components/headers/RateLimitPolicy)";
        like $r->{headers}{ratelimit} // '', qr/\A"addr";r=\d+;t=\d+\z/, "$what carries RateLimit";
        is $r->{headers}{'access-control-allow-origin'}, $shop, "$what carries Access-Control-Allow-Origin";
    }
    $h->{stop}->();
}

# ---- maxLength as documented: one past it is refused ----------------------------------
my $S = $file_doc->{components}{schemas};
{
    my $max = $S->{RegisterRequest}{properties}{name}{maxLength};
    my $r = api(POST => '/auth/register/', body => { email => 'oas-' . uniq() . '@example.com',
                password => 'a long enough password', name => 'n' x ($max + 1) });
    is_problem $r, 422, 'validation', "register: a name of maxLength + 1 ($max + 1) characters is 422";
    has_field_error($r, 'name', 'naming the field');
}
my $staff = staff_token();
{
    my $max = $S->{ProductCreate}{properties}{name}{maxLength};
    my $r = api(POST => '/products/', token => $staff,
                body => { name => 'é' x ($max + 1), price => 100, stock => 1 });
    is_problem $r, 422, 'validation', "product: a name of maxLength + 1 ($max + 1) characters (2 bytes each) is 422";
    $r = api(POST => '/products/', token => $staff,
             body => { name => 'é' x $max, price => 100, stock => 1, sku => 'oas-' . uniq() });
    is $r->{status}, 201, "and of maxLength characters is created";
}
{
    my $max = $S->{CouponCreate}{properties}{starts_at}{maxLength};
    is $max, 35, 'a request time is at most 35 characters (9 fraction digits, a +hh:mm zone)';
    my $t = '2026-01-01T00:00:00.123456789+01:00';
    is length $t, $max, "$t is $max characters";
    my $r = api(POST => '/coupons/', token => $staff,
                body => { code => 'oas-' . uniq(), percent_off => 5, starts_at => $t });
    is $r->{status}, 201, 'a coupon starting at it is created' or diag $r->{content};
    (my $t10 = $t) =~ s/\.(\d+)/.${1}0/;
    $r = api(POST => '/coupons/', token => $staff,
             body => { code => 'oas-' . uniq(), percent_off => 5, starts_at => $t10 });
    is_problem $r, 422, 'validation', "one more fraction digit ($t10) is 422";
    has_field_error($r, 'starts_at', 'naming starts_at');
}
{
    my $max = $file_doc->{components}{parameters}{Cursor}{schema}{maxLength};
    my $r = api(GET => '/products/?cursor=' . ('A' x ($max + 1)));
    is_problem $r, 400, 'bad-request', "a cursor of maxLength + 1 ($max + 1) characters is 400";
}

diag sprintf '66-openapi-lint took %.1f s', time - $t0;
done_testing;
