#!/usr/bin/perl
# Serving the recommendations of a user and a cart (issue 10): GET
# /recommendations/ and GET /cart/recommendations/ resolve the bearer token
# inside their one generation statement when there is a response cache
# (ECOM_AUTH_INLINE, ecom_recs.c), and the usual way without one. Every
# answer must be the same either way, so each case runs twice: against the
# suite's server (EcomCache shmcb; it logs at debug level, so answers say
# Ecom-Cache: hit|miss) and against a spare server on the same database
# with EcomCache none (no Ecom-Cache header at all):
#  - 401 problem+json (WWW-Authenticate: Bearer) for no token, a malformed,
#    unknown, expired or revoked one, also when the same request was just
#    answered from the cache; a bad query with a bad token: the 401 first;
#  - ?user_id=: 403 for a customer's look at someone else, 200 for their
#    own id, staff and support preview, 404 for an unknown user;
#  - a staff preview and the owner's own call give the owner's answer, and
#    the staff member's own call never gets it (nor the other way round);
#    a cart's answer is its own cart's;
#  - an Idempotency-Key (the router then authenticates first) changes
#    nothing; a stale token's last_used_at still moves;
#  - a guest cart's Cart-Token (header or browser session): its own
#    answer, 401 when unknown or expired (after a cached answer too);
#  - a browser's mod_session cookie authenticates both routes, and a
#    revoked token ends the session (401, ecom_csrf expired).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use EcomTest;
use EcomAdmin;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)'
    unless $ENV{ECOM_URL} && $ENV{ECOM_TLS_URL};

my $staff = staff_token();
my $w = 'rs' . join '', map { chr(97 + int rand 26) } 1 .. 8;

# an answer's items, each as id:strategy (the ids alone can coincide: a
# small catalog's popular ones and a buyer's picks hold the same products)
sub ids { join ',', map { "$_->{id}:$_->{strategy}" } @{ $_[0]{json}{items} || [] } }
sub strategies { join ',', sort map { $_->{strategy} } @{ $_[0]{json}{items} || [] } }
sub token_sql { my ($t) = @_; return "token_hash = '" . sha256_hex($t) . "'" }

# Two products bought together by one customer, a filler order so that
# popular ones exist, then a refresh: the buyer's picks hold them as
# buy_again, a newcomer's are popular ones.
my @p = map { create_product(name => "Serve $w $_", stock => 1000, price => 700) } 1 .. 2;
my $owner = paid_buyer(@p);
paid_buyer(map { create_product(name => "Serve filler $w $_", stock => 100) } 1 .. 6);
my $rf = ecom_admin('recs-refresh', '--force');
is $rf->{rc}, 0, 'ecom-admin recs-refresh --force' or diag $rf->{err};
my $support = register_user();
is ecom_admin('set-role', '--email', $support->{email}, '--role', 'support')->{rc}, 0, 'a support user';

# The same cases against one server; $cached: it has a response cache.
sub serve_cases {
    my ($name, $base, $browser_base, $cached) = @_;
    my %b = (base => $base);
    my $get = sub { my ($path, $tok, %o) = @_; api(GET => $path, %b, (defined $tok ? (token => $tok) : ()), %o) };
    my $cache_of = sub { $_[0]{headers}{'ecom-cache'} // 'none' };

    # --- who may ask ------------------------------------------------------
    for my $path ('/recommendations/', '/cart/recommendations/') {
        my $r = $get->($path);
        is_problem $r, 401, 'unauthorized', "$name: $path without a token: 401";
        ok bearer_challenge_ok($r), "$name: $path: WWW-Authenticate: Bearer";
        is_problem api(GET => $path, %b, headers => { Authorization => 'Bearer not-a-token' }), 401,
            'unauthorized', "$name: $path with a malformed token: 401";
        $r = $get->($path, 'Q' x 43);
        is_problem $r, 401, 'unauthorized', "$name: $path with an unknown token: 401";
        ok bearer_challenge_ok($r, 1), "$name: ... error=\"invalid_token\"";
        is_problem $get->("$path?limit=0", 'Q' x 43), 401, 'unauthorized',
            "$name: $path, a bad limit and a bad token: the 401 first";
        is_problem $get->("$path?limit=0", $owner->{token}), 400, 'bad-request',
            "$name: $path, a bad limit and a good token: 400";
    }

    # --- the owner, staff, support, another customer ------------------------
    my $own = $get->('/recommendations/?limit=20', $owner->{token});
    is $own->{status}, 200, "$name: the owner's picks: 200";
    like strategies($own), qr/buy_again/, "$name: ... holding what they bought (buy_again)";
    my $again = $get->('/recommendations/?limit=20', $owner->{token});
    is ids($again), ids($own), "$name: ... the same again";
    is $cache_of->($again), $cached ? 'hit' : 'none', "$name: ... " . ($cached ? 'from the cache' : 'no cache');
    my $preview = $get->("/recommendations/?limit=20&user_id=$owner->{id}", $staff);
    is $preview->{status}, 200, "$name: staff preview of the owner's picks: 200";
    is ids($preview), ids($own), "$name: ... the owner's answer";
    my $mine = $get->('/recommendations/?limit=20', $staff);
    is $mine->{status}, 200, "$name: the staff member's own picks: 200";
    isnt ids($mine), ids($own), "$name: ... never the owner's answer (previewed just before)";
    unlike strategies($mine), qr/buy_again/, "$name: ... nothing bought again by someone who bought nothing";
    is ids($get->('/recommendations/?limit=20', $owner->{token})), ids($own),
        "$name: the owner after the preview: still their own answer";
    is ids($get->("/recommendations/?limit=20&user_id=$owner->{id}", $support->{token})), ids($own),
        "$name: support previews the owner's answer too";
    my $other = register_user();
    is_problem $get->("/recommendations/?user_id=$owner->{id}", $other->{token}), 403, 'forbidden',
        "$name: a customer asking for another user's picks: 403";
    is_problem $get->("/recommendations/?user_id=$owner->{id}", $other->{token}), 403, 'forbidden',
        "$name: ... again (nothing cached changes it)";
    my $theirs = $get->("/recommendations/?limit=20&user_id=$other->{id}", $other->{token});
    is $theirs->{status}, 200, "$name: their own user_id: 200";
    isnt ids($theirs), ids($own), "$name: ... their own answer, not the owner's";
    is_problem $get->('/recommendations/?user_id=999999999', $staff), 404, 'not-found',
        "$name: staff, an unknown user: 404";
    is_problem $get->('/recommendations/?user_id=999999999', $staff), 404, 'not-found', "$name: ... again";
    my $idem = $get->('/recommendations/?limit=20', $owner->{token}, headers => { 'Idempotency-Key' => "k-$w" });
    is ids($idem), ids($own), "$name: with an Idempotency-Key (authenticated first): the same answer";

    # --- carts: each its own ------------------------------------------------
    my $c1 = register_user();
    is api(POST => '/cart/', %b, token => $c1->{token}, body => { product_id => $p[0]{id}, quantity => 1 })->{status},
        201, "$name: a cart holding the first product";
    my $cr = $get->('/cart/recommendations/?limit=5', $c1->{token});
    is $cr->{status}, 200, "$name: its recommendations: 200";
    is $cr->{json}{items}[0]{id}, $p[1]{id}, "$name: ... the product bought with it first";
    is $cache_of->($get->('/cart/recommendations/?limit=5', $c1->{token})), $cached ? 'hit' : 'none',
        "$name: ... " . ($cached ? 'then from the cache' : 'no cache');
    my $empty = $get->('/cart/recommendations/?limit=5', $other->{token});
    is $empty->{status}, 200, "$name: an empty cart's: 200";
    is $empty->{json}{strategy}, 'popular', "$name: ... popular ones, nothing of the other cart";

    # --- a guest cart, by its Cart-Token (resolved in the same statement) ---
    my $gp = api(POST => '/cart/', %b, body => { product_id => $p[0]{id}, quantity => 1 });
    is $gp->{status}, 201, "$name: a guest cart holding the first product";
    my $ct = { 'Cart-Token' => $gp->{headers}{'cart-token'} // 'none' };
    my $gr = api(GET => '/cart/recommendations/?limit=5', %b, headers => $ct);
    is $gr->{status}, 200, "$name: its recommendations: 200";
    is $gr->{json}{items}[0]{id}, $p[1]{id}, "$name: ... from its own contents";
    is $cache_of->(api(GET => '/cart/recommendations/?limit=5', %b, headers => $ct)), $cached ? 'hit' : 'none',
        "$name: ... " . ($cached ? 'then from the cache' : 'no cache');
    is_problem api(GET => '/cart/recommendations/', %b, headers => { 'Cart-Token' => 'Q' x 43 }), 401,
        'unauthorized', "$name: an unknown Cart-Token: 401";
    is_problem api(GET => '/cart/recommendations/?limit=0', %b, headers => { 'Cart-Token' => 'Q' x 43 }), 401,
        'unauthorized', "$name: ... with a bad limit: the 401 first";
    is_problem api(GET => '/cart/recommendations/?limit=0', %b, headers => $ct), 400, 'bad-request',
        "$name: a bad limit with a good Cart-Token: 400";
    psql_do("UPDATE guest_carts SET expires_at = now() - interval '1 second' WHERE token_hash = '"
            . sha256_hex($ct->{'Cart-Token'}) . "'");
    is_problem api(GET => '/cart/recommendations/?limit=5', %b, headers => $ct), 401, 'unauthorized',
        "$name: the guest cart expired after a cached answer: 401";

    # --- tokens that stop being valid after a (cached) answer ---------------
    my $ex = register_user();
    is $get->('/recommendations/', $ex->{token})->{status}, 200, "$name: a token's picks";
    is $get->('/cart/recommendations/', $ex->{token})->{status}, 200, "$name: ... and its cart's";
    psql_do('UPDATE auth_tokens SET expires_at = now() - interval \'1 second\' WHERE ' . token_sql($ex->{token}));
    is_problem $get->('/recommendations/', $ex->{token}), 401, 'unauthorized', "$name: once it expired: 401";
    is_problem $get->('/cart/recommendations/', $ex->{token}), 401, 'unauthorized', "$name: ... for its cart too";
    my $rv = register_user();
    $get->('/recommendations/', $rv->{token}) for 1 .. 2;
    $get->('/cart/recommendations/', $rv->{token}) for 1 .. 2;
    is api(POST => '/auth/logout/', %b, token => $rv->{token})->{status}, 204, "$name: a token logged out";
    is_problem $get->('/recommendations/', $rv->{token}), 401, 'unauthorized',
        "$name: ... its picks, just answered twice: 401";
    is_problem $get->('/cart/recommendations/', $rv->{token}), 401, 'unauthorized', "$name: ... its cart's: 401";

    # --- a stale token's last_used_at moves ---------------------------------
    my $st = register_user();
    psql_do("UPDATE auth_tokens SET last_used_at = now() - interval '1 hour' WHERE " . token_sql($st->{token}));
    is $get->('/recommendations/', $st->{token})->{status}, 200, "$name: a token unused for an hour";
    is psql_value('SELECT last_used_at > now() - interval \'1 minute\' FROM auth_tokens WHERE '
                  . token_sql($st->{token})), 't', "$name: ... its last_used_at moved to now";

    # --- a browser's session ------------------------------------------------
    my %bb = (base => $browser_base);
    my $login = api(POST => '/browser/auth/login/', %bb, body => { email => $owner->{email}, password => $owner->{password} });
    is $login->{status}, 200, "$name: a browser logs in";
    my $c = set_cookies($login);
    my $jar = join '; ', map { "$_=$c->{$_}{value}" } grep { length $c->{$_}{value} } sort keys %$c;
    my $bs = api(GET => '/browser/recommendations/?limit=20', %bb, headers => { Cookie => $jar });
    is $bs->{status}, 200, "$name: the session cookie authenticates the picks";
    is ids($bs), ids($own), "$name: ... the owner's answer";
    is api(GET => '/browser/cart/recommendations/', %bb, headers => { Cookie => $jar })->{status}, 200,
        "$name: ... and the cart's";
    # a browser's guest cart, its Cart-Token kept in the session
    my $gb = api(POST => '/browser/cart/', %bb, body => { product_id => $p[0]{id}, quantity => 1 });
    is $gb->{status}, 201, "$name: a browser's guest cart";
    my $gcj = set_cookies($gb);
    my $gjar = join '; ', map { "$_=$gcj->{$_}{value}" } grep { length $gcj->{$_}{value} } sort keys %$gcj;
    my $gbr = api(GET => '/browser/cart/recommendations/?limit=5', %bb, headers => { Cookie => $gjar });
    is $gbr->{status}, 200, "$name: ... its recommendations by the session cookie alone";
    is $gbr->{json}{items}[0]{id}, $p[1]{id}, "$name: ... from its contents";
    psql_do("UPDATE guest_carts SET expires_at = now() - interval '1 second' WHERE token_hash = '"
            . sha256_hex($gb->{headers}{'cart-token'} // '') . "'");
    is_problem api(GET => '/browser/cart/recommendations/?limit=5', %bb, headers => { Cookie => $gjar }), 401,
        'unauthorized', "$name: ... once the cart expired: 401";

    psql_do('UPDATE auth_tokens SET revoked_at = now() WHERE ' . token_sql($login->{json}{token}));
    my $gone = api(GET => '/browser/recommendations/?limit=20', %bb, headers => { Cookie => $jar });
    is_problem $gone, 401, 'unauthorized', "$name: its token revoked: 401";
    my $gc = set_cookies($gone);
    ok $gc->{ecom_csrf} && ($gc->{ecom_csrf}{attrs}{'max-age'} // '') eq '0', "$name: ... and the session ends"
        or diag explain $gone->{headers};
}

# the browser API of the suite's server is on its TLS port
# (conf/httpd.conf.in, <Location "/browser/">): same database, same cache
serve_cases('cached', $ENV{ECOM_URL}, $ENV{ECOM_TLS_URL}, 1);

SKIP: {
    my ($port) = $ENV{ECOM_URL} =~ /:(\d+)$/;
    my $pgport = $ENV{PGPORT} // 55432;
    my $h = spare_httpd(fixed_ports => [$port + 101], modules => [qw(session session_cookie session_crypto)],
                        conf => join '', map { "$_\n" }
        'LogLevel info ecom:debug', 'DBDriver pgsql',
        "DBDParams \"host=127.0.0.1 port=$pgport dbname=ecom user=ecom connect_timeout=2\"",
        'DBDMin 0', 'EcomCache none', 'EcomPurgeInterval 0', 'EcomPaymentTimeout 0',
        '<Location "/">', '    SetHandler ecom', '</Location>',
        '<Location "/browser/">', '    SetHandler ecom', '    EcomSessions On', '    Session On',
        '    SessionCookieName ecom_session path=/;HttpOnly;SameSite=Lax',
        '    SessionCryptoPassphrase spare-test-passphrase-0123456789abcdef', '</Location>');
    skip "cannot run a spare apache2: $h", 1 unless ref $h && $h->{started};
    my $spare = 'http://127.0.0.1:' . ($port + 101);
    serve_cases('EcomCache none', $spare, $spare, 0);
    $h->{stop}->();
}

done_testing;
