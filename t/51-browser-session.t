#!/usr/bin/perl
# Cookie sessions for browsers (EcomSessions, ecom_session.c), over HTTP
# from Perl: what a browser would send, header by header. The test server
# has the API with sessions at /browser/ (mod_session_cookie +
# mod_session_crypto, conf/httpd.conf.in) and without them at /.
#  - off by default: login at / sets no cookie;
#  - login and register at /browser/ answer with the session cookie (Secure,
#    HttpOnly, SameSite=Lax; encrypted: the token is not in it) and the
#    ecom_csrf cookie (Secure, SameSite=Lax, readable by scripts) holding the
#    answer's csrf_token;
#  - the cookie authenticates reads; writes need the X-CSRF-Token header equal
#    to the session's token and the cookie (missing, wrong, another session's
#    -> 403), and a same-origin Origin / Sec-Fetch-Site (-> 403); bearer
#    requests are unaffected;
#  - a revoked token ends the session (401, cookies cleared), and an old copy
#    of the cookie stays dead; logout ends it (when POST /auth/logout/ exists);
#  - EcomSessions On without mod_session does not start; with no Session On
#    where it is set, login still works, with a warning.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use MIME::Base64 qw(decode_base64);
use Digest::SHA qw(sha256_hex);
use EcomTest;

plan skip_all => 'ECOM_URL/ECOM_TLS_URL not set (run through scripts/test.sh)'
    unless $ENV{ECOM_URL} && $ENV{ECOM_TLS_URL};
my ($can, $why) = HTTP::Tiny->can_ssl;
plan skip_all => "no TLS support in HTTP::Tiny: $why" unless $can;

my $tls  = $ENV{ECOM_TLS_URL};           # https://127.0.0.1:PORT
my $self = $tls;                          # this server's origin
my $B    = '/browser';

# set_cookies: EcomTest's.

# A browser-like request to the session API: jar => {name => value} is sent
# as the Cookie header, csrf => value as X-CSRF-Token.
sub b {
    my ($method, $path, %o) = @_;
    my %h = %{ $o{headers} || {} };
    my $jar = $o{jar} || {};
    $h{Cookie} = join '; ', map { "$_=$jar->{$_}" } sort keys %$jar if %$jar;
    $h{'X-CSRF-Token'} = $o{csrf} if defined $o{csrf};
    return api($method, "$B$path", base => $tls, headers => \%h,
               (exists $o{body} ? (body => $o{body}) : ()),
               (defined $o{token} ? (token => $o{token}) : ()));
}

# Logs $u in through /browser/: { jar, csrf, token, res }.
sub browser_login {
    my ($u) = @_;
    my $r = b(POST => '/auth/login/', body => { email => $u->{email}, password => $u->{password} });
    my $c = set_cookies($r);
    return { res => $r, token => $r->{json}{token}, csrf => $r->{json}{csrf_token},
             jar => { map { $_ => $c->{$_}{value} } grep { length $c->{$_}{value} } keys %$c } };
}

sub cart_lines {
    my ($u) = @_;
    my $r = api(GET => '/cart/', token => $u->{token});
    return $r->{status} == 200 ? scalar @{ $r->{json}{items} } : "status $r->{status}";
}

# --- sessions are off by default ----------------------------------------------
my $u = register_user();
{
    my $r = api(POST => '/auth/login/', base => $tls, body => { email => $u->{email}, password => $u->{password} });
    is $r->{status}, 200, 'login at / (no EcomSessions) is 200';
    ok !defined $r->{headers}{'set-cookie'}, 'and sets no cookie: sessions are off by default';
    ok !exists $r->{json}{csrf_token}, 'and has no csrf_token';
    ok defined $r->{json}{token}, 'only the bearer token';
}

# --- login at /browser/: the session and the CSRF token ----------------------
my $s = browser_login($u);
is $s->{res}{status}, 200, 'login at /browser/ is 200' or diag $s->{res}{content};
ok defined $s->{token} && length $s->{token} == 43, 'the answer still has the bearer token';
like $s->{csrf} // '', qr/\A[A-Za-z0-9_-]{43}\z/, 'and a csrf_token (256 random bits, base64url)';
is $s->{res}{headers}{'cache-control'}, 'no-store', 'the login answer is not stored by caches';
{
    my $c = set_cookies($s->{res});
    my $sc = $c->{ecom_session};
    ok $sc && length $sc->{value}, 'Set-Cookie ecom_session (mod_session_cookie)' or diag explain $s->{res}{headers};
    ok $sc->{attrs}{secure}, 'the session cookie is Secure';
    ok $sc->{attrs}{httponly}, 'the session cookie is HttpOnly';
    is lc($sc->{attrs}{samesite} // ''), 'lax', 'the session cookie is SameSite=Lax';
    is $sc->{attrs}{path}, '/', 'the session cookie has Path=/';
    my $raw = $sc->{value};
    unlike $raw, qr/\Q$s->{token}\E/, 'the session cookie does not hold the token in clear';
    unlike decode_base64($raw), qr/\Q$s->{token}\E/, 'nor base64-encoded: it is encrypted (mod_session_crypto)';
    unlike $raw, qr/ecom-token|ecom-csrf/, 'nor the session\'s keys';

    my $cc = $c->{ecom_csrf};
    ok $cc, 'Set-Cookie ecom_csrf';
    is $cc->{value}, $s->{csrf}, 'holding the csrf_token of the answer';
    ok $cc->{attrs}{secure}, 'ecom_csrf is Secure';
    ok !$cc->{attrs}{httponly}, 'ecom_csrf is not HttpOnly (the page reads it)';
    is lc($cc->{attrs}{samesite} // ''), 'lax', 'ecom_csrf is SameSite=Lax';
    is lc($cc->{attrs}{path} // ''), '/', 'ecom_csrf has Path=/';
}

# --- the cookie authenticates ---------------------------------------------------
my $p = create_product(price => 250, stock => 50);
{
    my $r = b(GET => '/cart/', jar => $s->{jar});
    is $r->{status}, 200, 'GET /browser/cart/ with the session cookie and no Authorization is 200';
    is $r->{headers}{'cache-control'}, 'private, no-store', 'an answer to the session\'s user is not stored';
    is_problem b(GET => '/cart/'), 401, 'unauthorized', 'without the cookie it is 401';
    my $root = api(GET => '/cart/', base => $tls, headers => { Cookie => "ecom_session=$s->{jar}{ecom_session}" });
    is_problem $root, 401, 'unauthorized', 'the cookie means nothing where sessions are off (/)';
    my $o = b(GET => '/orders/', jar => $s->{jar});
    is $o->{status}, 200, 'GET /browser/orders/ (a route that resolves the token first) with the cookie is 200';
}

# --- CSRF: state-changing requests by cookie ------------------------------------
my $add = { product_id => $p->{id}, quantity => 1 };
{
    my $r = b(POST => '/cart/', jar => $s->{jar}, csrf => $s->{csrf}, body => $add,
              headers => { Origin => $self, 'Sec-Fetch-Site' => 'same-origin' });
    is $r->{status}, 201, 'POST /browser/cart/ with the cookie, X-CSRF-Token and a same-origin Origin is 201'
        or diag $r->{content};
    is cart_lines($u), 1, 'the line is in the cart';
    $r = b(POST => '/cart/', jar => $s->{jar}, csrf => $s->{csrf}, body => $add);
    is $r->{status}, 201, 'without Origin and Sec-Fetch-Site (not a browser) the token alone is enough';
}
{
    my $r = b(POST => '/cart/', jar => $s->{jar}, body => $add);
    is_problem $r, 403, 'csrf-token-missing', 'no X-CSRF-Token: 403 csrf-token-missing';
    like $r->{json}{detail}, qr/X-CSRF-Token/, 'the detail names the header';
    is_problem b(POST => '/cart/', jar => $s->{jar}, csrf => '', body => $add), 403, 'csrf-token-missing',
        'an empty X-CSRF-Token: 403 csrf-token-missing';
    my $wrong = 'A' x 43;
    is_problem b(POST => '/cart/', jar => { %{ $s->{jar} }, ecom_csrf => $wrong }, csrf => $wrong, body => $add),
        403, 'csrf-token-invalid', 'a made-up token (header equal to the cookie): 403 csrf-token-invalid';
    is_problem b(POST => '/cart/', jar => $s->{jar}, csrf => substr($s->{csrf}, 0, 42), body => $add),
        403, 'csrf-token-invalid', 'a truncated token: 403 csrf-token-invalid';
    my %no_cookie = %{ $s->{jar} };
    delete $no_cookie{ecom_csrf};
    is_problem b(POST => '/cart/', jar => \%no_cookie, csrf => $s->{csrf}, body => $add),
        403, 'csrf-token-invalid', 'the right token without the ecom_csrf cookie: 403 (double submit)';

    my $other = browser_login(register_user());
    is_problem b(POST => '/cart/', jar => { %{ $s->{jar} }, ecom_csrf => $other->{csrf} }, csrf => $other->{csrf},
                 body => $add), 403, 'csrf-token-invalid',
        'another session\'s CSRF token, as header and cookie: 403 (bound to the session)';

    is_problem b(POST => '/cart/', jar => $s->{jar}, csrf => $s->{csrf}, body => $add,
                 headers => { Origin => 'https://evil.example' }), 403, 'csrf-origin',
        'the right token from another origin: 403 csrf-origin';
    (my $other_port = $self) =~ s/:(\d+)$/':' . ($1 + 1)/e;
    is_problem b(POST => '/cart/', jar => $s->{jar}, csrf => $s->{csrf}, body => $add,
                 headers => { Origin => $other_port }), 403, 'csrf-origin',
        'from the same host on another port (same site, another origin): 403';
    (my $plain = $self) =~ s/^https/http/;
    is_problem b(POST => '/cart/', jar => $s->{jar}, csrf => $s->{csrf}, body => $add,
                 headers => { Origin => $plain }), 403, 'csrf-origin', 'from http:// of the same host: 403';
    is_problem b(POST => '/cart/', jar => $s->{jar}, csrf => $s->{csrf}, body => $add,
                 headers => { Origin => 'null' }), 403, 'csrf-origin', 'Origin: null (sandboxed, redirected): 403';
    for my $site (qw(cross-site same-site)) {
        my $r = b(POST => '/cart/', jar => $s->{jar}, csrf => $s->{csrf}, body => $add,
                  headers => { 'Sec-Fetch-Site' => $site });
        is_problem $r, 403, 'csrf-origin', "Sec-Fetch-Site: $site (no Origin): 403 csrf-origin";
        like $r->{json}{detail}, qr/\Q$site\E/, 'the detail names it';
    }
    is_problem b(POST => '/cart/', jar => $s->{jar}, csrf => $s->{csrf}, body => $add,
                 headers => { Origin => $self, 'Sec-Fetch-Site' => 'cross-site' }), 403, 'csrf-origin',
        'a same-origin Origin with Sec-Fetch-Site: cross-site: 403';
    is cart_lines($u), 1, 'none of the refused requests changed the cart';
}
{
    # bearer requests never need the CSRF defence: browsers do not send the
    # header on their own
    my $r = b(POST => '/cart/', token => $s->{token}, body => $add,
              headers => { Origin => 'https://evil.example', 'Sec-Fetch-Site' => 'cross-site' });
    is $r->{status}, 201, 'a bearer request with a foreign Origin and no CSRF token is unaffected (201)';
    $r = b(POST => '/cart/', token => $s->{token}, jar => $s->{jar}, body => $add);
    is $r->{status}, 201, 'bearer plus the cookie, no CSRF token: the bearer token decides (201)';
    is_problem b(POST => '/cart/', token => 'B' x 43, jar => $s->{jar}, csrf => $s->{csrf}, body => $add),
        401, 'unauthorized', 'a bad bearer token is not rescued by the cookie (401)';
}
{
    # reads never need it
    my $r = b(GET => '/cart/', jar => $s->{jar},
              headers => { Origin => 'https://evil.example', 'Sec-Fetch-Site' => 'cross-site' });
    is $r->{status}, 200, 'GET needs no CSRF token, whatever the origin';
    $r = api(HEAD => "$B/cart/", base => $tls, headers => { Cookie => "ecom_session=$s->{jar}{ecom_session}" });
    is $r->{status}, 200, 'HEAD neither';
}
{
    # PATCH and DELETE are guarded too
    my $cart = b(GET => '/cart/', jar => $s->{jar});
    my $line = $cart->{json}{items}[0]{id};
    is_problem b(PATCH => "/cart/$line/", jar => $s->{jar}, body => { quantity => 2 }), 403, 'csrf-token-missing',
        'PATCH by cookie without the token: 403';
    is_problem b(DELETE => "/cart/$line/", jar => $s->{jar}), 403, 'csrf-token-missing',
        'DELETE by cookie without the token: 403';
    is cart_lines($u), 1, 'the line is still there';
    my $r = b(PATCH => "/cart/$line/", jar => $s->{jar}, csrf => $s->{csrf}, body => { quantity => 2 });
    is $r->{status}, 200, 'PATCH with the token: 200' or diag $r->{content};
    $r = b(DELETE => "/cart/$line/", jar => $s->{jar}, csrf => $s->{csrf});
    is $r->{status}, 204, 'DELETE with the token: 204';
    is cart_lines($u), 0, 'the cart is empty';
}
{
    # the classic forgery: a body-less POST that a cross-site <form> can send
    my $order = pending_order($u);
    my $path = "/orders/$order->{id}/cancel/";
    my $r = b(POST => $path, jar => $s->{jar}, headers => { Origin => 'https://evil.example',
              'Content-Type' => 'application/x-www-form-urlencoded', 'Sec-Fetch-Site' => 'cross-site' });
    is_problem $r, 403, 'csrf-origin', 'a cross-site form POST to cancel an order: 403';
    is_problem b(POST => $path, jar => $s->{jar}), 403, 'csrf-token-missing',
        'the same POST from this origin without the token: 403';
    is api(GET => "/orders/$order->{id}/", token => $u->{token})->{json}{status}, 'pending',
        'the order is still pending';
    $r = b(POST => $path, jar => $s->{jar}, csrf => $s->{csrf}, headers => { Origin => $self });
    is $r->{status}, 200, 'with the token, from this origin: 200' or diag $r->{content};
    is $r->{json}{status}, 'cancelled', 'the order is cancelled';
}
{
    # login CSRF: a session cannot be planted from another site
    my $r = b(POST => '/auth/login/', body => { email => $u->{email}, password => $u->{password} },
              headers => { Origin => 'https://evil.example' });
    is_problem $r, 403, 'csrf-origin', 'a login posted from another origin: 403';
    ok !defined $r->{headers}{'set-cookie'}, 'and no cookie';
    is_problem b(POST => '/auth/register/', body => { email => 'x-' . uniq() . '@example.com', password => $u->{password} },
                 headers => { 'Sec-Fetch-Site' => 'cross-site' }), 403, 'csrf-origin',
        'a cross-site register: 403';
    # a stale session and no CSRF token: login does not use the old session
    my $again = b(POST => '/auth/login/', jar => $s->{jar}, body => { email => $u->{email}, password => $u->{password} },
                  headers => { Origin => $self });
    is $again->{status}, 200, 'login with a live session cookie and no X-CSRF-Token is 200 (a new session)';
    my $c = set_cookies($again);
    ok $c->{ecom_session} && $c->{ecom_csrf}, 'with new cookies';
    isnt $again->{json}{csrf_token}, $s->{csrf}, 'and a new CSRF token';
}

# --- register answers with a session too -----------------------------------------
my $reg_email = 'sess-' . uniq() . '@example.com';
my $reg = b(POST => '/auth/register/', body => { email => $reg_email, password => $EcomTest::PASSWORD });
is $reg->{status}, 201, 'register at /browser/ is 201';
like $reg->{json}{csrf_token} // '', qr/\A[A-Za-z0-9_-]{43}\z/, 'with a csrf_token';
{
    my $c = set_cookies($reg);
    ok $c->{ecom_session} && $c->{ecom_session}{attrs}{httponly}, 'and the session cookie';
    my $r = b(GET => '/cart/', jar => { ecom_session => $c->{ecom_session}{value} });
    is $r->{status}, 200, 'which authenticates';
}

# --- a guest's cart in the session (no account yet) ---------------------------------
{
    my $r = b(POST => '/cart/', body => { product_id => $p->{id}, quantity => 2 }, headers => { Origin => $self });
    is $r->{status}, 201, 'a guest POST /browser/cart/ (no credentials) is 201' or diag $r->{content};
    ok $r->{headers}{'cart-token'}, 'with the Cart-Token header, as everywhere';
    my $c = set_cookies($r);
    ok $c->{ecom_session} && $c->{ecom_csrf}, 'and, sessions being on, the session cookie and ecom_csrf';
    my %jar = map { $_ => $c->{$_}{value} } qw(ecom_session ecom_csrf);
    my $g = b(GET => '/cart/', jar => \%jar);
    is $g->{status}, 200, 'the cookie alone reads the guest cart';
    is_deeply [ map { [ $_->{product_id}, $_->{quantity} ] } @{ $g->{json}{items} || [] } ], [ [ $p->{id}, 2 ] ],
        'with its line';
    is_problem b(POST => '/cart/', jar => \%jar, body => $add), 403, 'csrf-token-missing',
        'a guest write by cookie without X-CSRF-Token: 403';
    is_problem b(POST => '/cart/', jar => \%jar, csrf => $jar{ecom_csrf}, body => $add,
                 headers => { Origin => 'https://evil.example' }), 403, 'csrf-origin', 'from another origin: 403';
    is_problem b(POST => '/cart/', body => $add, headers => { 'Cart-Token' => $r->{headers}{'cart-token'},
                 Origin => 'https://evil.example' }), 403, 'csrf-origin',
        'a guest write with the Cart-Token header from another origin: 403 too (every write here)';
    my $a = b(POST => '/cart/', jar => \%jar, csrf => $jar{ecom_csrf}, body => $add);
    is $a->{status}, 201, 'with the token: 201';
    ok !defined $a->{headers}{'cart-token'}, 'into the same cart (no new Cart-Token)';
    is b(GET => '/cart/', jar => \%jar)->{json}{items}[0]{quantity}, 3, 'which has 3 now';

    my $v = register_user();
    my $l = b(POST => '/auth/login/', jar => \%jar, body => { email => $v->{email}, password => $v->{password} },
              headers => { Origin => $self });
    is $l->{status}, 200, 'a login with the guest\'s session cookie';
    ok $l->{json}{cart_merge} && is_true($l->{json}{cart_merge}{found}), 'merges the session\'s guest cart'
        or diag explain $l->{json};
    is cart_lines($v), 1, 'into the account\'s cart';
    my $lc = set_cookies($l);
    my %ujar = map { $_ => $lc->{$_}{value} } qw(ecom_session ecom_csrf);
    my $uc = b(GET => '/cart/', jar => \%ujar);
    is $uc->{json}{items}[0]{quantity}, 3, 'the new session reads the account\'s cart, with the merged line';
    is_problem b(GET => '/cart/', jar => \%jar), 401, 'unauthorized', 'the old guest cookie: its cart is gone (401)';
    my $np = b(POST => '/cart/', jar => \%jar, csrf => $jar{ecom_csrf}, body => $add);
    is $np->{status}, 201, 'a POST with it starts a new guest cart';
    ok $np->{headers}{'cart-token'}, 'with a new Cart-Token';
    is cart_lines($v), 1, 'the account\'s cart is untouched';
}

# --- a tampered cookie is no session ------------------------------------------------
{
    my $v = $s->{jar}{ecom_session};
    substr($v, 20, 1) = substr($v, 20, 1) eq 'A' ? 'B' : 'A';
    my $r = b(GET => '/cart/', jar => { ecom_session => $v });
    is_problem $r, 401, 'unauthorized', 'a tampered session cookie: 401 (not decrypted), not a 5xx';
}

# --- a revoked token ends the session ------------------------------------------------
{
    my $t = browser_login($u);
    is b(GET => '/cart/', jar => $t->{jar})->{status}, 200, 'a second session works';
    my $hash = sha256_hex($t->{token});
    psql_do("UPDATE auth_tokens SET revoked_at = now() WHERE token_hash = '$hash'");
    my $r = b(GET => '/cart/', jar => $t->{jar});
    is_problem $r, 401, 'unauthorized', 'after its token is revoked the cookie gets 401';
    my $c = set_cookies($r);
    ok $c->{ecom_session}, 'the answer rewrites the session cookie' or diag explain $r->{headers};
    ok !length($c->{ecom_session}{value} // 'x') || ($c->{ecom_session}{attrs}{'max-age'} // '') eq '0'
        || ($c->{ecom_session}{attrs}{expires} // '') =~ /1970/,
        'emptied: the browser drops it' or diag $c->{ecom_session}{line};
    ok $c->{ecom_csrf} && ($c->{ecom_csrf}{attrs}{'max-age'} // '') eq '0', 'and expires ecom_csrf'
        or diag explain $c;
    is_problem b(POST => '/cart/', jar => $t->{jar}, csrf => $t->{csrf}, body => $add), 401, 'unauthorized',
        'a write with the old cookie and its CSRF token: 401 (replaying a copied cookie gains nothing)';
    is b(GET => '/cart/', jar => $s->{jar})->{status}, 200, 'the first session is untouched';
}

# --- logout (POST /auth/logout/, issue 9 part 1) ---------------------------------------
SKIP: {
    my $probe = b(POST => '/auth/logout/');
    skip 'POST /auth/logout/ is not in this build (issue 9 part 1 adds it)', 6 if $probe->{status} == 404;
    my $t = browser_login($u);
    is_problem b(POST => '/auth/logout/', jar => $t->{jar}), 403, 'csrf-token-missing',
        'logout by cookie without the token is refused (403): no forced logout from other sites';
    my $r = b(POST => '/auth/logout/', jar => $t->{jar}, csrf => $t->{csrf}, headers => { Origin => $self });
    ok $r->{status} == 204 || $r->{status} == 200, 'logout by cookie with the token: 2xx' or diag $r->{content};
    my $c = set_cookies($r);
    ok $c->{ecom_csrf} && ($c->{ecom_csrf}{attrs}{'max-age'} // '') eq '0', 'the logout answer expires ecom_csrf'
        or diag explain $r->{headers};
    ok $c->{ecom_session}, 'and rewrites the session cookie';
    is_problem b(GET => '/cart/', jar => $t->{jar}), 401, 'unauthorized', 'the next call with the old cookie: 401';
    is_problem api(GET => '/cart/', token => $t->{token}), 401, 'unauthorized', 'and its token is revoked';
}
SKIP: {
    my $probe = b(GET => '/auth/sessions/');
    skip 'GET /auth/sessions/ is not in this build (issue 9 part 1 adds it)', 7 if $probe->{status} == 404;
    # revoking the session's own token from the token list is a logout too
    my $t = browser_login($u);
    my $list = b(GET => '/auth/sessions/', jar => $t->{jar});
    is $list->{status}, 200, 'GET /auth/sessions/ by cookie';
    my ($mine) = grep { is_true($_->{current}) } @{ $list->{json}{items} || [] };
    ok $mine, 'lists the session\'s token as the current one' or diag explain $list->{json};
    my $r = b(DELETE => "/auth/sessions/$mine->{id}/", jar => $t->{jar}, csrf => $t->{csrf});
    is $r->{status}, 204, 'DELETE /auth/sessions/{current}/ by cookie: 204';
    my $c = set_cookies($r);
    ok $c->{ecom_csrf} && ($c->{ecom_csrf}{attrs}{'max-age'} // '') eq '0', 'and the session ends (ecom_csrf expired)';
    is_problem b(GET => '/cart/', jar => $t->{jar}), 401, 'unauthorized', 'the next call: 401';
    # closing the account ends the session
    my $w = register_user();
    my $ws = browser_login($w);
    $r = b(DELETE => '/auth/me/', jar => $ws->{jar}, csrf => $ws->{csrf}, body => { password => $w->{password} });
    is $r->{status}, 204, 'DELETE /auth/me/ by cookie: 204' or diag $r->{content};
    $c = set_cookies($r);
    ok $c->{ecom_csrf} && ($c->{ecom_csrf}{attrs}{'max-age'} // '') eq '0', 'and the session ends';
}

# --- configuration -----------------------------------------------------------------------
{
    my $h = spare_httpd(start => 0, conf => "<Location \"/x/\">\n    SetHandler ecom\n    EcomSessions On\n</Location>\n");
    SKIP: {
        skip "cannot run a spare apache2: $h", 2 unless ref $h;
        ok !$h->{syntax_ok}, 'EcomSessions On without mod_session: apache2 -t fails';
        like $h->{syntax}, qr/EcomSessions On needs mod_session/, 'saying what to load' or diag $h->{syntax};
    }
    # a spare server on the test database with EcomSessions On at /, the
    # modules and the <Location>'s other lines given
    my $session_httpd = sub {
        my ($modules, @lines) = @_;
        my $pgport = $ENV{PGPORT} // 55432;
        return spare_httpd(modules => $modules, conf => join '', map { "$_\n" }
            'DBDriver pgsql', "DBDParams \"host=127.0.0.1 port=$pgport dbname=ecom user=ecom connect_timeout=2\"",
            'DBDMin 0', '<Location "/">', '    SetHandler ecom', '    EcomSessions On', (map { "    $_" } @lines),
            '</Location>');
    };
    $h = $session_httpd->(['session']);
    SKIP: {
        skip "cannot run a spare apache2: $h", 3 unless ref $h && $h->{started};
        my $r = api(POST => '/auth/login/', base => "http://127.0.0.1:$h->{ports}[0]",
                    body => { email => $u->{email}, password => $u->{password} });
        is $r->{status}, 200, 'EcomSessions On where mod_session has no session (no Session On): login still works';
        ok !exists $r->{json}{csrf_token}, 'with the bearer token only';
        my $log = slurp_file($h->{error_log}) // '';
        like $log, qr/ECOM1803: EcomSessions is on/, 'and a warning naming the missing setting';
        $h->{stop}->();
    }
    # SessionMaxAge: the CSRF cookie lives as long as the session cookie,
    # and both are renewed with every answer to the session
    $h = $session_httpd->([qw(session session_cookie session_crypto)], 'Session On', 'SessionMaxAge 600',
                          'SessionCookieName ecom_session path=/;Secure;HttpOnly;SameSite=Lax',
                          'SessionCryptoPassphrase spare-test-passphrase-0123456789abcdef');
    SKIP: {
        skip "cannot run a spare apache2: $h", 6 unless ref $h && $h->{started};
        my $base = "http://127.0.0.1:$h->{ports}[0]";
        my $r = api(POST => '/auth/login/', base => $base, body => { email => $u->{email}, password => $u->{password} });
        is $r->{status}, 200, 'with SessionMaxAge 600: login is 200';
        my $c = set_cookies($r);
        is $c->{ecom_session}{attrs}{'max-age'}, 600, 'the session cookie has Max-Age=600' or diag explain $c;
        is $c->{ecom_csrf}{attrs}{'max-age'}, 600, 'and so has ecom_csrf';
        my %jar = map { $_ => $c->{$_}{value} } keys %$c;
        my $g = api(GET => '/cart/', base => $base,
                    headers => { Cookie => join '; ', map { "$_=$jar{$_}" } sort keys %jar });
        is $g->{status}, 200, 'the session authenticates';
        my $c2 = set_cookies($g);
        is $c2->{ecom_csrf}{value}, $jar{ecom_csrf}, 'a read renews ecom_csrf (same token)';
        is $c2->{ecom_csrf}{attrs}{'max-age'}, 600, 'for another 600 s, as mod_session renews its cookie';
        $h->{stop}->();
    }
}

# EcomCORSOrigins: a listed origin (a same-site shop on a sibling host)
# passes the origin check of cookie sessions; the double-submit token still
# applies to it, and an unlisted origin is still refused
{
    my $pgport = $ENV{PGPORT} // 55432;
    my $shop = 'https://shop.example.test';
    my $h = spare_httpd(modules => [qw(session session_cookie session_crypto)], conf => join '', map { "$_\n" }
        'DBDriver pgsql', "DBDParams \"host=127.0.0.1 port=$pgport dbname=ecom user=ecom connect_timeout=2\"",
        'DBDMin 0', "EcomCORSOrigins $shop", '<Location "/">', '    SetHandler ecom', '    EcomSessions On',
        '    Session On', '    SessionCookieName ecom_session path=/;Secure;HttpOnly;SameSite=Lax',
        '    SessionCryptoPassphrase spare-test-passphrase-0123456789abcdef', '</Location>');
    SKIP: {
        skip "cannot run a spare apache2: $h", 6 unless ref $h && $h->{started};
        my $base = "http://127.0.0.1:$h->{ports}[0]";
        my $from = sub { my ($origin, %x) = @_; return { Origin => $origin, 'Sec-Fetch-Site' => 'same-site', %x } };
        my $r = api(POST => '/auth/login/', base => $base, headers => $from->($shop),
                    body => { email => $u->{email}, password => $u->{password} });
        is $r->{status}, 200, 'login from a listed origin (EcomCORSOrigins) passes the origin check';
        my $c = set_cookies($r);
        my $cookie = join '; ', map { "$_=$c->{$_}{value}" } sort keys %$c;
        my $p = create_product(price => 300, stock => 5);
        is_problem api(POST => '/cart/', base => $base, headers => $from->($shop, Cookie => $cookie),
                       body => { product_id => $p->{id}, quantity => 1 }), 403, 'csrf-token-missing',
            'from the listed origin without X-CSRF-Token: still 403 csrf-token-missing';
        $r = api(POST => '/cart/', base => $base,
                 headers => $from->($shop, Cookie => $cookie, 'X-CSRF-Token' => $c->{ecom_csrf}{value}),
                 body => { product_id => $p->{id}, quantity => 1 });
        is $r->{status}, 201, 'from the listed origin with the token: 201';
        is_problem api(POST => '/cart/', base => $base,
                       headers => $from->('https://evil.example.test', Cookie => $cookie,
                                          'X-CSRF-Token' => $c->{ecom_csrf}{value}),
                       body => { product_id => $p->{id}, quantity => 1 }), 403, 'csrf-origin',
            'an unlisted origin on the same server: 403 csrf-origin';
        is_problem api(POST => '/auth/login/', base => $base, headers => $from->('https://evil.example.test'),
                       body => { email => $u->{email}, password => $u->{password} }), 403, 'csrf-origin',
            'and its login too';
        is psql_value("SELECT count(*) FROM cart_items WHERE user_id = $u->{id} AND product_id = $p->{id}"), 1,
            'one line: the refused adds wrote nothing';
        $h->{stop}->();
    }
}

# EcomTokenRateLimit counts a cookie session's requests by the token it
# holds, as it counts the same token sent as a bearer: one budget for both
{
    my $pgport = $ENV{PGPORT} // 55432;
    my $h = spare_httpd(modules => [qw(session session_cookie session_crypto socache_shmcb)], conf => join '', map { "$_\n" }
        'DBDriver pgsql', "DBDParams \"host=127.0.0.1 port=$pgport dbname=ecom user=ecom connect_timeout=2\"",
        'DBDMin 0', 'EcomTokenRateLimit 3', 'EcomRateLimitWindow 600', 'EcomAuthRateLimit 0',
        '<Location "/">', '    SetHandler ecom', '    EcomSessions On',
        '    Session On', '    SessionCookieName ecom_session path=/;Secure;HttpOnly;SameSite=Lax',
        '    SessionCryptoPassphrase spare-test-passphrase-0123456789abcdef', '</Location>');
    SKIP: {
        skip "cannot run a spare apache2: $h", 4 unless ref $h && $h->{started};
        my $base = "http://127.0.0.1:$h->{ports}[0]";
        my $r = api(POST => '/auth/login/', base => $base, body => { email => $u->{email}, password => $u->{password} });
        is $r->{status}, 200, 'EcomTokenRateLimit 3: login (no token yet, not counted)';
        my $c = set_cookies($r);
        my $cookie = join '; ', map { "$_=$c->{$_}{value}" } sort keys %$c;
        my @st = map { api(GET => '/cart/', base => $base, headers => { Cookie => $cookie })->{status} } 1 .. 2;
        push @st, api(GET => '/cart/', base => $base, token => $r->{json}{token})->{status};
        is "@st", '200 200 200', 'two requests by the cookie and one by the same token as a bearer';
        is_problem api(GET => '/cart/', base => $base, headers => { Cookie => $cookie }), 429, 'rate-limited',
            'the fourth, by the cookie: 429 (one budget for the token, however it comes)';
        is api(GET => '/cart/', base => $base, token => api(POST => '/auth/login/', base => $base,
                          body => { email => $u->{email}, password => $u->{password} })->{json}{token})->{status}, 200,
            'another token has its own budget';
        $h->{stop}->();
    }
}

done_testing;
