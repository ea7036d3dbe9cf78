#!/usr/bin/perl
# Registration, login, bearer tokens: shapes, validation, privilege fields that
# must not be applied, 401 answers, expiry, and secrets kept out of DB and logs.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $log_start = error_log_size();
my @secrets;    # every token and password sent: none may reach error.log

# --- register: shape --------------------------------------------------------
my $email = 'auth-' . uniq() . '@example.com';
my $password = 'pw-' . uniq() . ' secret';
push @secrets, $password;
my $reg = api(POST => '/auth/register/',
              body => { email => $email, password => $password, name => 'Ada Lovelace' });
is $reg->{status}, 201, 'register is 201';
like content_type($reg), qr{^application/json\b}i, 'register answers application/json';
my $j = $reg->{json} // {};
my $user = $j->{user} // {};
ok is_int($user->{id}) && $user->{id} > 0, 'user.id is a positive integer';
is $user->{email}, $email, 'user.email is the registered email';
is $user->{name}, 'Ada Lovelace', 'user.name is the registered name';
ok is_false($user->{is_staff}), 'user.is_staff is JSON false';
ok is_rfc3339($user->{created_at}), 'user.created_at is RFC 3339 UTC';
ok !exists $user->{password} && !exists $user->{password_hash}, 'user has no password fields';
my $token = $j->{token};
ok defined $token && !ref $token && length($token) >= 43, 'token is a string of >= 43 chars';
push @secrets, $token if defined $token;
ok is_rfc3339($j->{expires_at}), 'expires_at is RFC 3339 UTC';
my $uid = $user->{id};

{
    my $r = api(GET => '/cart/', token => $token);
    is $r->{status}, 200, 'the token from register works on GET /cart/';
}

# --- register: privilege fields are ignored ---------------------------------
{
    my $e = 'sneaky-' . uniq() . '@example.com';
    my $r = api(POST => '/auth/register/', body => {
        email => $e, password => $EcomTest::PASSWORD, name => 'Mallory',
        is_staff => JSON::PP::true, role => 'admin', id => 1, user_id => 1 });
    is $r->{status}, 201, 'register with is_staff/role/id in the body still succeeds';
    my $u = $r->{json}{user} // {};
    ok is_false($u->{is_staff}), 'is_staff in the register body is not applied';
    isnt $u->{id}, 1, 'id in the register body is not applied';
    if (is_int($u->{id})) {
        is psql_value("SELECT is_staff::text FROM users WHERE id = $u->{id}"), 'false',
            'the database has is_staff false for that user';
    } else { fail 'no user id to check in the database' }
    my $t = $r->{json}{token};
    push @secrets, $t if defined $t;
    my $p = api(POST => '/products/', token => $t,
                body => { name => 'should not exist', price => 100 });
    is_problem $p, 403, 'forbidden', 'that user gets 403 on staff-only POST /products/';
}

# --- register: duplicates -----------------------------------------------------
{
    my $r = api(POST => '/auth/register/', body => { email => $email, password => $EcomTest::PASSWORD });
    is_problem $r, 409, undef, 'registering the same email again is 409';
    my $r2 = api(POST => '/auth/register/', body => { email => uc $email, password => $EcomTest::PASSWORD });
    is_problem $r2, 409, undef, 'registering the same email in upper case is 409';
    (my $mixed = $email) =~ s/^(\w)/\u$1/;
    my $r3 = api(POST => '/auth/register/', body => { email => $mixed, password => $EcomTest::PASSWORD });
    is_problem $r3, 409, undef, 'registering the same email in mixed case is 409';
    is psql_value("SELECT count(*) FROM users WHERE lower(email) = lower('$email')"), 1,
        'only one user row exists for that email';
}

# --- register: validation ----------------------------------------------------
my @invalid = (
    [ 'invalid email', { email => 'not-an-email', password => $EcomTest::PASSWORD }, 'email' ],
    [ 'email without domain', { email => 'someone@', password => $EcomTest::PASSWORD }, 'email' ],
    [ 'empty email', { email => '', password => $EcomTest::PASSWORD }, 'email' ],
    [ 'numeric email', { email => 12345, password => $EcomTest::PASSWORD }, 'email' ],
    [ 'password of 9 chars', { email => 'v-' . uniq() . '@example.com', password => '123456789' }, 'password' ],
    [ 'password of 1025 chars', { email => 'v-' . uniq() . '@example.com', password => 'p' x 1025 }, 'password' ],
    [ 'numeric password', { email => 'v-' . uniq() . '@example.com', password => 12345678901 }, 'password' ],
    [ 'missing email', { password => $EcomTest::PASSWORD }, 'email' ],
    [ 'missing password', { email => 'v-' . uniq() . '@example.com' }, 'password' ],
    [ 'name of 201 chars', { email => 'v-' . uniq() . '@example.com', password => $EcomTest::PASSWORD, name => 'n' x 201 }, 'name' ],
    [ 'name that is a number', { email => 'v-' . uniq() . '@example.com', password => $EcomTest::PASSWORD, name => 42 }, 'name' ],
);
for my $c (@invalid) {
    my ($what, $body, $field) = @$c;
    my $r = api(POST => '/auth/register/', body => $body);
    is_problem $r, 422, 'validation', "register with $what is 422";
    has_field_error $r, $field, "register with $what names field '$field'";
}
{
    my $r = api(POST => '/auth/register/', body => {});
    is_problem $r, 422, 'validation', 'register with an empty object is 422';
    has_field_error $r, 'email', 'empty register names email';
    has_field_error $r, 'password', 'empty register names password';
}
{   # boundaries that are valid
    my $r = api(POST => '/auth/register/', body => {
        email => 'b-' . uniq() . '@example.com', password => '1234567890', name => 'n' x 200 });
    is $r->{status}, 201, 'a password of exactly 10 chars and a name of 200 chars are accepted';
    push @secrets, '1234567890';
}
{   # no name at all
    my $r = api(POST => '/auth/register/', body => {
        email => 'noname-' . uniq() . '@example.com', password => $EcomTest::PASSWORD });
    is $r->{status}, 201, 'register without a name is 201';
}

# --- login -------------------------------------------------------------------
my $login = api(POST => '/auth/login/', body => { email => $email, password => $password });
is $login->{status}, 200, 'login is 200';
my $lj = $login->{json} // {};
ok defined $lj->{token} && length($lj->{token}) >= 43, 'login returns a token of >= 43 chars';
push @secrets, $lj->{token} if defined $lj->{token};
isnt $lj->{token}, $token, 'login issues a new token';
ok is_rfc3339($lj->{expires_at}), 'login expires_at is RFC 3339';
is $lj->{user}{id}, $uid, 'login user.id is the registered user';
is $lj->{user}{email}, $email, 'login user.email';
ok is_false($lj->{user}{is_staff}), 'login user.is_staff is false';
is api(GET => '/cart/', token => $lj->{token})->{status}, 200, 'the login token works on GET /cart/';
is api(GET => '/cart/', token => $token)->{status}, 200, 'the register token still works after a login';

{
    my $r = api(POST => '/auth/login/', body => { email => uc $email, password => $password });
    is $r->{status}, 200, 'login with the email in upper case works (emails are case-insensitive)';
}

my $wrong = api(POST => '/auth/login/', body => { email => $email, password => 'wrong password!!' });
is_problem $wrong, 401, 'unauthorized', 'login with a wrong password is 401';
my $unknown = api(POST => '/auth/login/',
                  body => { email => 'nobody-' . uniq() . '@example.com', password => 'wrong password!!' });
is_problem $unknown, 401, 'unauthorized', 'login with an unknown email is 401';
is $unknown->{content}, $wrong->{content}, 'wrong password and unknown email give identical bodies';
{
    my $r = api(POST => '/auth/login/', body => { email => $email });
    is_problem $r, 422, 'validation', 'login without a password is 422';
    has_field_error $r, 'password';
    my $r2 = api(POST => '/auth/login/', body => { password => $password });
    is_problem $r2, 422, 'validation', 'login without an email is 422';
    has_field_error $r2, 'email';
}

# --- 401 answers -----------------------------------------------------------------
{
    my $r = api(GET => '/cart/');
    is_problem $r, 401, 'unauthorized', 'GET /cart/ without a token is 401';
    ok bearer_challenge_ok($r), 'the 401 has WWW-Authenticate: Bearer'
        or diag 'WWW-Authenticate: ' . ($r->{headers}{'www-authenticate'} // 'missing');
}
my @bad_auth = (
    [ 'a garbage bearer token', 'Bearer garbage', 1 ],
    [ 'a well-formed but unknown token', 'Bearer ' . ('A' x 43), 1 ],
    [ 'the token without the Bearer scheme', $token, 0 ],
    [ 'Basic credentials', 'Basic dXNlcjpwYXNz', 0 ],
    [ 'an empty Bearer', 'Bearer', 0 ],
    [ 'the token with one char changed', 'Bearer ' . (substr($token, 0, -1) . (substr($token, -1) eq 'A' ? 'B' : 'A')), 1 ],
);
for my $c (@bad_auth) {
    my ($what, $hdr, $invalid) = @$c;
    my $r = api(GET => '/cart/', headers => { Authorization => $hdr });
    is_problem $r, 401, 'unauthorized', "GET /cart/ with $what is 401";
    ok bearer_challenge_ok($r, $invalid), "401 for $what has WWW-Authenticate: Bearer"
        . ($invalid ? ' with error="invalid_token"' : '')
        or diag 'WWW-Authenticate: ' . ($r->{headers}{'www-authenticate'} // 'missing');
}
{
    my $r = api(GET => '/products/', headers => { Authorization => 'Bearer garbage' });
    is_problem $r, 401, 'unauthorized', 'an invalid token on public GET /products/ is 401';
}

# --- expiry -------------------------------------------------------------------
{
    my $u = register_user();
    is api(GET => '/cart/', token => $u->{token})->{status}, 200, 'a fresh token works';
    psql_do("UPDATE auth_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $u->{id}");
    my $r = api(GET => '/cart/', token => $u->{token});
    is_problem $r, 401, 'unauthorized', 'an expired token is 401';
    ok bearer_challenge_ok($r, 1), 'expired token 401 has WWW-Authenticate: Bearer error="invalid_token"';
    my $l = api(POST => '/auth/login/', body => { email => $u->{email}, password => $u->{password} });
    is $l->{status}, 200, 'logging in again after expiry works';
    is api(GET => '/cart/', token => $l->{json}{token})->{status}, 200, 'the new token works';
}
{   # revoked
    my $u = register_user();
    psql_do("UPDATE auth_tokens SET revoked_at = now() WHERE user_id = $u->{id}");
    is_problem api(GET => '/cart/', token => $u->{token}), 401, 'unauthorized', 'a revoked token is 401';
}

# --- POST /cart/ and POST /orders/ resolve the token in their own statement ---
# (ECOM_AUTH_INLINE, sql/010_inline_auth.sql): the same 401s as every other
# route, the token checked before any body error is answered, and nothing
# written for a token that resolves to no one. With an Idempotency-Key the
# token is looked up first, as before.
{
    my $p = create_product(price => 120, stock => 20);
    my $add = { product_id => $p->{id}, quantity => 1 };
    my %spoil = (
        expired => "expires_at = now() - interval '1 second'",
        revoked => 'revoked_at = now()',
    );
    for my $how (sort keys %spoil) {
        my $u = register_user();
        is api(POST => '/cart/', token => $u->{token}, body => $add)->{status}, 201, "$how: a cart add with a fresh token";
        psql_do("UPDATE auth_tokens SET $spoil{$how} WHERE user_id = $u->{id}");
        my $r = api(POST => '/cart/', token => $u->{token}, body => $add);
        is_problem $r, 401, 'unauthorized', "$how token: POST /cart/ is 401";
        ok bearer_challenge_ok($r, 1), "$how token: with WWW-Authenticate error=\"invalid_token\"";
        $r = api(POST => '/orders/', token => $u->{token});
        is_problem $r, 401, 'unauthorized', "$how token: POST /orders/ is 401";
        ok bearer_challenge_ok($r, 1), "$how token: POST /orders/ names invalid_token";
        is psql_value("SELECT quantity FROM cart_items WHERE user_id = $u->{id}"), 1, "$how token: the cart line was not touched";
        is psql_value("SELECT count(*) FROM orders WHERE user_id = $u->{id}"), 0, "$how token: no order was written";
        $r = api(POST => '/orders/', token => $u->{token}, headers => { 'Idempotency-Key' => "inline-$how-" . uniq() });
        is_problem $r, 401, 'unauthorized', "$how token with an Idempotency-Key: 401 too";
        for my $bad (['{"product_id": ', 'malformed JSON'], [{ product_id => $p->{id}, quantity => 0 }, 'quantity 0']) {
            $r = api(POST => '/cart/', token => $u->{token}, body => $bad->[0]);
            is_problem $r, 401, 'unauthorized', "$how token and $bad->[1]: the token is answered first (401, as on other routes)";
        }
        $r = api(POST => '/orders/', token => $u->{token}, body => { shipping_address => { country => 'XX' } });
        is_problem $r, 401, 'unauthorized', "$how token and a bad address: POST /orders/ answers the token first";
        my $l = api(POST => '/auth/login/', body => { email => $u->{email}, password => $u->{password} });
        $r = api(POST => '/orders/', token => $l->{json}{token});
        is $r->{status}, 201, "$how: a new token checks the same cart out";
        is $r->{json}{events}[0]{actor_id}, $u->{id}, 'the order event names the user the token resolved to';
        is $r->{headers}{'cache-control'}, 'private, no-store', 'and the answer is private to that user';
    }
    my $u = register_user();
    is_problem api(POST => '/cart/', token => $u->{token}, body => '{"product_id": '), 400, 'bad-request',
        'a valid token and malformed JSON: 400, as before';
    is_problem api(POST => '/cart/', headers => { Authorization => 'Bearer ' . ('A' x 43) }, body => $add), 401, 'unauthorized',
        'a well-formed token that was never issued: 401';
    is_problem api(POST => '/orders/', headers => { Authorization => 'Bearer ' . ('A' x 43) }), 401, 'unauthorized',
        'and on POST /orders/';
    {
        # no token at all: a guest cart (t/49-guest-cart.t), no user's cart
        my $g = api(POST => '/cart/', body => $add);
        is $g->{status}, 201, 'no token at all: a guest cart is made';
        like $g->{headers}{'cart-token'} // '', qr/\A[A-Za-z0-9_-]{43}\z/, 'and its Cart-Token answered';
        is_problem api(GET => '/cart/'), 401, 'unauthorized', 'no token at all on GET /cart/: 401';
    }
    my $other = register_user();
    is api(POST => '/cart/', token => $other->{token}, body => $add)->{status}, 201, 'another user adds';
    my $r = api(POST => '/cart/', token => $u->{token}, body => $add);
    is $r->{status}, 201, 'the token adds to its own cart';
    is $r->{json}{quantity}, 1, 'a line of its own (the other user\'s line is not touched)';
    is psql_value("SELECT quantity FROM cart_items WHERE user_id = $other->{id}"), 1, 'the other cart still holds 1';
}

# --- secrets in the database --------------------------------------------------
SKIP: {
    skip 'token has characters unsafe to put in SQL', 4
        unless defined $token && $token =~ /\A[A-Za-z0-9._~+\/=-]+\z/;
    is psql_value("SELECT count(*) FROM auth_tokens WHERE token_hash = '$token'"), 0,
        'the plaintext token is not stored as token_hash';
    ok psql_value("SELECT count(*) FROM auth_tokens WHERE user_id = $uid") >= 2,
        'the user has token rows (register and login)';
    is psql_value("SELECT count(*) FROM auth_tokens WHERE position('$token' in token_hash) > 0"), 0,
        'no token_hash contains the plaintext token';
    like psql_value("SELECT password_hash FROM users WHERE id = $uid"), qr/\A\$argon2id\$/,
        'password_hash is an argon2id hash';
}
isnt psql_value("SELECT password_hash FROM users WHERE id = $uid"), $password,
    'the password is not stored in clear';

# --- secrets in the error log ---------------------------------------------------
SKIP: {
    skip 'ECOM_RUNDIR not set', 2 unless defined $ENV{ECOM_RUNDIR};
    my $log = error_log_text($log_start);
    ok defined $log, 'error.log is readable';
    $log //= '';
    my @leaks = grep { index($log, $_) >= 0 } @secrets;
    ok !@leaks, 'error.log contains none of the tokens and passwords sent'
        or diag scalar(@leaks) . ' secret(s) found in error.log';
}

done_testing;
