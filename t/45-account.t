#!/usr/bin/perl
# The rest of the account API (issue 9, part 1): logout, GET/PATCH/DELETE
# /auth/me/, password change, sessions, password reset and its outbox
# (scripts/ecom-admin reset-outbox). Revocation holds at once on every
# child; privilege fields are never applied; another user's session is a
# 404; reset tokens are single-use, expiring, stored hashed.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use POSIX ();
use Time::HiRes ();
use EcomTest;
use EcomAdmin;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $log_start = error_log_size();
my @secrets;

sub login_res {
    my ($email, $pw, %h) = @_;
    return api(POST => '/auth/login/', body => { email => $email, password => $pw }, headers => \%h);
}
sub token_of { my $r = login_res(@_); push @secrets, $r->{json}{token} if $r->{json}{token}; $r->{json}{token} }

# --- logout: immediate on every child ----------------------------------------------
{
    my $u = register_user();
    push @secrets, $u->{token};
    my $other = token_of($u->{email}, $u->{password});
    is api(GET => '/auth/me/', token => $u->{token})->{status}, 200, 'a fresh token reads /auth/me/';
    is_problem api(POST => '/auth/logout/'), 401, 'unauthorized', 'logout without a token is 401';
    my $r = api(POST => '/auth/logout/', token => $u->{token});
    is $r->{status}, 204, 'POST /auth/logout/ is 204';
    is $r->{content}, '', 'with no body';
    # (the suite's watchdog purges revoked rows every 2 s: gone is as dead)
    like psql_value("SELECT COALESCE((SELECT (revoked_at IS NOT NULL)::text FROM auth_tokens WHERE token_hash = '"
                    . sha256_hex($u->{token}) . "'), 'purged')"), qr/\A(?:true|t|purged)\z/,
        'the token row is marked revoked (or already purged)';
    # every request below is a new connection (HTTP::Tiny, keep_alive => 0),
    # served by whichever child takes it
    my @after = map { api(GET => '/auth/me/', token => $u->{token})->{status} } 1 .. 12;
    is_deeply \@after, [ (401) x 12 ], 'the logged-out token is 401 on 12 new connections at once';
    is_problem api(POST => '/cart/', token => $u->{token}, body => { product_id => 1, quantity => 1 }), 401,
        'unauthorized', 'and on the inline-auth POST /cart/';
    is_problem api(POST => '/orders/', token => $u->{token}), 401, 'unauthorized', 'and on POST /orders/';
    is_problem api(GET => '/products/', token => $u->{token}), 401, 'unauthorized',
        'and on the cached GET /products/ (no cache holds a token)';
    is_problem api(POST => '/auth/logout/', token => $u->{token}), 401, 'unauthorized', 'a second logout with it is 401';
    is api(GET => '/auth/me/', token => $other)->{status}, 200, 'the account\'s other token still works';
    is_problem api(GET => '/auth/logout/', token => $other), 405, 'method-not-allowed', 'GET /auth/logout/ is 405';
}

# --- GET /auth/me/ -----------------------------------------------------------------
my $me_user = register_user(name => 'Grace Hopper');
push @secrets, $me_user->{token};
{
    my $r = api(GET => '/auth/me/', token => $me_user->{token});
    is $r->{status}, 200, 'GET /auth/me/ is 200';
    my $j = $r->{json} // {};
    is $j->{id}, $me_user->{id}, 'id is the caller';
    is $j->{email}, $me_user->{email}, 'email';
    is $j->{name}, 'Grace Hopper', 'name';
    ok is_false($j->{is_staff}), 'is_staff false';
    is $j->{role}, 'customer', 'role customer';
    ok is_rfc3339($j->{created_at}), 'created_at RFC 3339';
    ok !grep({ /password/ } keys %$j), 'no password field';
    is $r->{headers}{'cache-control'}, 'private, no-store', 'private, no-store';
    is_problem api(GET => '/auth/me/'), 401, 'unauthorized', 'GET /auth/me/ without a token is 401';
}

# --- PATCH /auth/me/ -----------------------------------------------------------------
{
    my $u = $me_user;
    my $r = api(PATCH => '/auth/me/', token => $u->{token}, body => { name => 'Grace B. Hopper' });
    is $r->{status}, 200, 'PATCH name is 200';
    is $r->{json}{name}, 'Grace B. Hopper', 'the answer has the new name';
    is psql_value("SELECT name FROM users WHERE id = $u->{id}"), 'Grace B. Hopper', 'stored';

    # mass assignment: refused, nothing applied
    for my $bad ([ is_staff => JSON::PP::true ], [ role => 'staff' ], [ id => 1 ], [ password => 'new password 123' ]) {
        $r = api(PATCH => '/auth/me/', token => $u->{token}, body => { name => 'Mallory', $bad->[0] => $bad->[1] });
        is_problem $r, 422, 'validation', "PATCH /auth/me/ with $bad->[0] is 422";
        has_field_error $r, $bad->[0];
    }
    is psql_value("SELECT name || '|' || is_staff::text || '|' || role FROM users WHERE id = $u->{id}"),
        'Grace B. Hopper|false|customer', 'nothing of those bodies was applied (name, is_staff, role)';

    is_problem api(PATCH => '/auth/me/', token => $u->{token}, body => {}), 422, 'validation', 'an empty PATCH is 422';
    $r = api(PATCH => '/auth/me/', token => $u->{token}, body => { name => 'n' x 201 });
    is_problem $r, 422, 'validation', 'a name of 201 characters is 422';
    has_field_error $r, 'name';

    my $new_email = 'moved-' . uniq() . '@example.com';
    $r = api(PATCH => '/auth/me/', token => $u->{token}, body => { email => $new_email });
    is_problem $r, 422, 'validation', 'a new email without current_password is 422';
    has_field_error $r, 'current_password';
    $r = api(PATCH => '/auth/me/', token => $u->{token},
             body => { email => $new_email, current_password => 'not the password' });
    is_problem $r, 403, 'wrong-password', 'a new email with a wrong current_password is 403 wrong-password';
    $r = api(PATCH => '/auth/me/', token => $u->{token}, body => { email => 'not-an-email', current_password => $u->{password} });
    is_problem $r, 422, 'validation', 'an invalid email is 422';
    has_field_error $r, 'email';
    is psql_value("SELECT email FROM users WHERE id = $u->{id}"), $u->{email}, 'the email did not change';

    my $taken = register_user();
    $r = api(PATCH => '/auth/me/', token => $u->{token}, body => { email => uc $taken->{email}, current_password => $u->{password} });
    is_problem $r, 409, 'conflict', 'another account\'s email (other case) is 409';

    is api(POST => '/auth/password-reset/', body => { email => $u->{email} })->{status}, 202, 'a reset mailed to the old address';
    my $old_reset = psql_value("SELECT o.token FROM password_reset_outbox o JOIN password_resets r ON r.id = o.reset_id WHERE r.user_id = $u->{id}");
    push @secrets, $old_reset;
    $r = api(PATCH => '/auth/me/', token => $u->{token}, body => { email => $new_email, current_password => $u->{password} });
    is $r->{status}, 200, 'a new email with the right current_password is 200';
    is_problem api(POST => '/auth/password-reset/confirm/', body => { token => $old_reset, new_password => 'hijack attempt 1' }),
        422, 'invalid-token', 'the email change spent the reset token mailed to the old address';
    is psql_value("SELECT count(*) FROM password_reset_outbox o JOIN password_resets r ON r.id = o.reset_id WHERE r.user_id = $u->{id}"),
        0, 'and dropped its mail from the outbox';
    is $r->{json}{email}, $new_email, 'the answer has the new email';
    is login_res($new_email, $u->{password})->{status}, 200, 'login with the new email works';
    is_problem login_res($u->{email}, $u->{password}), 401, 'unauthorized', 'login with the old email is 401';
    is api(GET => '/auth/me/', token => $u->{token})->{status}, 200, 'the token still works after an email change';
    $r = api(PATCH => '/auth/me/', token => $u->{token}, body => { email => $new_email, name => 'Same Mail' });
    is $r->{status}, 200, 'sending the unchanged email needs no password';
    $u->{email} = $new_email;
}

# --- POST /auth/password/ -------------------------------------------------------------
{
    my $u = register_user();
    push @secrets, $u->{token};
    my $keep = token_of($u->{email}, $u->{password});
    my $other1 = token_of($u->{email}, $u->{password});
    my $other2 = $u->{token};
    my $new = 'brand new password ' . uniq();
    push @secrets, $new;

    my $r = api(POST => '/auth/password/', token => $keep, body => { current => 'wrong password!!', new => $new });
    is_problem $r, 403, 'wrong-password', 'a wrong current password is 403 wrong-password';
    $r = api(POST => '/auth/password/', token => $keep, body => { current => $u->{password}, new => '123456789' });
    is_problem $r, 422, 'validation', 'a new password of 9 characters is 422 (the registration rule)';
    has_field_error $r, 'new';
    $r = api(POST => '/auth/password/', token => $keep, body => { current => $u->{password}, new => 'p' x 1025 });
    is_problem $r, 422, 'validation', 'a new password of 1025 characters is 422';
    $r = api(POST => '/auth/password/', token => $keep, body => { current => $u->{password} });
    is_problem $r, 422, 'validation', 'no new password is 422';
    has_field_error $r, 'new';
    $r = api(POST => '/auth/password/', token => $keep, body => { current => $u->{password}, new => $new, user_id => 1 });
    is_problem $r, 422, 'validation', 'an unknown member (user_id) is 422';
    has_field_error $r, 'user_id';
    $r = api(POST => '/auth/password/', token => $keep, body => {});
    is_problem $r, 422, 'validation', 'an empty body is 422';
    has_field_error $r, 'current';
    has_field_error $r, 'new';
    is api(GET => '/auth/me/', token => $other1)->{status}, 200, 'refused changes revoked nothing';
    is login_res($u->{email}, $u->{password})->{status}, 200, 'and the old password still works';

    $r = api(POST => '/auth/password/', token => $keep, body => { current => $u->{password}, new => $new });
    is $r->{status}, 204, 'a password change is 204';
    is api(GET => '/auth/me/', token => $keep)->{status}, 200, 'the calling token stays valid';
    is_problem api(GET => '/auth/me/', token => $other1), 401, 'unauthorized', 'another token of the account is revoked';
    is_problem api(GET => '/auth/me/', token => $other2), 401, 'unauthorized', 'and the register token too';
    is_problem login_res($u->{email}, $u->{password}), 401, 'unauthorized', 'the old password no longer logs in';
    is login_res($u->{email}, $new)->{status}, 200, 'the new one does';
    like psql_value("SELECT password_hash FROM users WHERE id = $u->{id}"), qr/\A\$argon2id\$/, 'stored as argon2id';
    is_problem api(POST => '/auth/password/', body => { current => 'x', new => 'y' x 12 }), 401, 'unauthorized',
        'without a token: 401';
}

# --- sessions ----------------------------------------------------------------------------
{
    my $u = register_user();
    push @secrets, $u->{token};
    my $ua = 'acct-test-agent/1.0 ' . uniq();
    my $t2 = token_of($u->{email}, $u->{password}, 'User-Agent' => $ua);
    # HTTP::Tiny sends printable ASCII only: this login goes out byte for byte
    my $body = json_encode({ email => $u->{email}, password => $u->{password} });
    my $raw = raw_request("POST /auth/login/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . "User-Agent: odd \xe9\t agent " . ('L' x 300) . "\xff\r\nContent-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body");
    is $raw->{status}, 200, 'a login with bytes outside ASCII in its User-Agent is 200';
    my $t3 = $raw->{json}{token};
    push @secrets, $t3 if $t3;
    my $stranger = register_user();

    my $r = api(GET => '/auth/sessions/', token => $t2);
    is $r->{status}, 200, 'GET /auth/sessions/ is 200';
    my $items = $r->{json}{items} // [];
    is scalar(@$items), 3, 'three live sessions (register and two logins)';
    my ($cur) = grep { is_true($_->{current}) } @$items;
    my @not = grep { is_false($_->{current}) } @$items;
    ok $cur && @not == 2, 'exactly one is current: true, the others false';
    is $cur->{user_agent}, $ua, 'the current one carries the login\'s User-Agent';
    ok is_int($cur->{id}), 'id is an integer';
    ok is_rfc3339($cur->{$_}), "$_ is RFC 3339" for qw(created_at expires_at last_used_at);
    my @ids = map { $_->{id} } @$items;
    is_deeply \@ids, [ sort { $b <=> $a } @ids ], 'newest first';
    my ($odd) = grep { ($_->{user_agent} // '') =~ /^odd / } @$items;
    ok $odd, 'the odd User-Agent is listed';
    is length($odd->{user_agent} // ''), 256, 'a long User-Agent is cut to 256 bytes';
    like $odd->{user_agent} // '', qr/\Aodd \?\? agent L+\z/, 'a byte outside printable ASCII is kept as "?"';
    ok !grep({ $_->{id} == 0 } @$items), 'no zero id';
    is $r->{json}{next_cursor}, undef, 'next_cursor null on the last page';

    my $p1 = api(GET => '/auth/sessions/?limit=2', token => $t2);
    is scalar(@{ $p1->{json}{items} // [] }), 2, 'limit=2 gives two';
    ok defined $p1->{json}{next_cursor}, 'and a next_cursor';
    my $p2 = api(GET => "/auth/sessions/?limit=2&cursor=$p1->{json}{next_cursor}", token => $t2);
    is_deeply [ map { $_->{id} } @{ $p1->{json}{items} }, @{ $p2->{json}{items} // [] } ], \@ids, 'the pages hold every session once';
    is_problem api(GET => '/auth/sessions/?cursor=bogus', token => $t2), 400, 'bad-request', 'a bad cursor is 400';

    my $ss = api(GET => '/auth/sessions/', token => $stranger->{token})->{json}{items} // [];
    is scalar(@$ss), 1, 'another user sees only their own session';
    my $stranger_sid = $ss->[0]{id};
    ok !grep({ $_ == $stranger_sid } @ids), 'and it is not in the first user\'s list';

    # BOLA
    is_problem api(DELETE => "/auth/sessions/$stranger_sid/", token => $t2), 404, 'not-found',
        'DELETE of another user\'s session id is 404';
    is api(GET => '/auth/me/', token => $stranger->{token})->{status}, 200, 'and that session still works';
    is_problem api(DELETE => '/auth/sessions/999999999999/', token => $t2), 404, 'not-found', 'an unknown session id is 404';
    is_problem api(DELETE => '/auth/sessions/abc/', token => $t2), 404, 'not-found', 'a non-numeric id is 404';

    my $sid3 = (grep { ($_->{user_agent} // '') =~ /^odd / } @$items)[0]{id};
    $r = api(DELETE => "/auth/sessions/$sid3/", token => $t2);
    is $r->{status}, 204, 'DELETE of one\'s own other session is 204';
    is_problem api(GET => '/auth/me/', token => $t3), 401, 'unauthorized', 'that session\'s token is 401 at once';
    is api(GET => '/auth/me/', token => $t2)->{status}, 200, 'the calling one still works';
    is_problem api(DELETE => "/auth/sessions/$sid3/", token => $t2), 404, 'not-found', 'deleting it again is 404';
    is scalar(@{ api(GET => '/auth/sessions/', token => $t2)->{json}{items} // [] }), 2, 'two sessions left';
    is api(DELETE => "/auth/sessions/$cur->{id}/", token => $t2)->{status}, 204, 'deleting the current session is 204';
    is_problem api(GET => '/auth/me/', token => $t2), 401, 'unauthorized', 'and logs it out';
    is_problem api(GET => '/auth/sessions/'), 401, 'unauthorized', 'GET /auth/sessions/ without a token is 401';

    # last_used_at: at most one write per token per 5 minutes
    my $h = sha256_hex($u->{token});
    my $age = sub { psql_value("SELECT round(extract(epoch FROM now() - last_used_at)) FROM auth_tokens WHERE token_hash = '$h'") };
    psql_do("UPDATE auth_tokens SET last_used_at = now() - interval '10 minutes' WHERE token_hash = '$h'");
    api(GET => '/auth/me/', token => $u->{token});
    ok $age->() < 60, 'a token last used 10 minutes ago: its last_used_at moves to now';
    psql_do("UPDATE auth_tokens SET last_used_at = now() - interval '2 minutes' WHERE token_hash = '$h'");
    api(GET => '/auth/me/', token => $u->{token}) for 1 .. 3;
    cmp_ok $age->(), '>=', 115, 'last used 2 minutes ago: three requests write nothing (5-minute granularity)';
    psql_do("UPDATE auth_tokens SET last_used_at = now() - interval '10 minutes' WHERE token_hash = '$h'");
    my $p = create_product(price => 100, stock => 5);
    is api(POST => '/cart/', token => $u->{token}, body => { product_id => $p->{id}, quantity => 1 })->{status}, 201,
        'a cart add with the token';
    cmp_ok $age->(), '>=', 590, 'the inline-auth POST /cart/ does not move last_used_at (no extra statement)';
}

# --- password reset --------------------------------------------------------------------
sub reset_req { api(POST => '/auth/password-reset/', body => { email => $_[0] }) }
sub outbox_token {
    my ($uid) = @_;
    return psql_value("SELECT o.token FROM password_reset_outbox o JOIN password_resets r ON r.id = o.reset_id "
                      . "WHERE r.user_id = $uid ORDER BY o.id DESC LIMIT 1");
}
sub confirm { api(POST => '/auth/password-reset/confirm/', body => { token => $_[0], new_password => $_[1] }) }
{
    my $u = register_user();
    push @secrets, $u->{token};
    my $known = reset_req($u->{email});
    is $known->{status}, 202, 'a reset for an existing account is 202';
    my $unknown = reset_req('nobody-' . uniq() . '@example.com');
    is $unknown->{status}, 202, 'a reset for an unknown email is 202';
    is $unknown->{content}, $known->{content}, 'with a byte-identical body';
    is_deeply [ map { $_->{headers}{'content-type'} } $known, $unknown ],
              [ map { $unknown->{headers}{'content-type'} } 1 .. 2 ], 'and the same content type';
    is $known->{headers}{'cache-control'}, 'no-store', 'no-store';
    is psql_value("SELECT count(*) FROM password_resets WHERE user_id = $u->{id}"), 1, 'one reset token was stored';
    my $tok = outbox_token($u->{id});
    like $tok, qr/\A[A-Za-z0-9_-]{43}\z/, 'the outbox holds the clear token for the mailer';
    push @secrets, $tok;
    is psql_value("SELECT token_hash FROM password_resets WHERE user_id = $u->{id}"), sha256_hex($tok),
        'the reset table holds only its SHA-256';
    is psql_value("SELECT count(*) FROM password_resets WHERE token_hash = '$tok'"), 0, 'never the clear token';
    is psql_value("SELECT round(extract(epoch FROM expires_at - created_at)) FROM password_resets WHERE user_id = $u->{id}"),
        1800, 'it expires after EcomPasswordResetLifetime (default 1800 s)';
    is reset_req(uc $u->{email})->{content}, $known->{content}, 'a second request within a minute: the same answer';
    is psql_value("SELECT count(*) FROM password_resets WHERE user_id = $u->{id}"), 1,
        'but no second token (one per account per minute)';

    for my $c ([ {}, 'no email' ], [ { email => 42 }, 'a numeric email' ], [ { email => 'nope' }, 'an invalid email' ],
               [ { email => $u->{email}, extra => 1 }, 'an unknown field' ]) {
        is_problem api(POST => '/auth/password-reset/', body => $c->[0]), 422, 'validation', "reset with $c->[1] is 422";
    }

    # ecom-admin reset-outbox
    my $o = ecom_admin('reset-outbox');
    is $o->{rc}, 0, 'ecom-admin reset-outbox exits 0';
    my @lines = grep { length } split /\n/, $o->{out};
    my @mine = grep { ($_->{token} // '') eq $tok } map { json_decode($_) // {} } @lines;
    is scalar(@mine), 1, 'it prints the mail as a JSON line';
    is $mine[0]{email}, $u->{email}, 'with the address';
    ok is_rfc3339($mine[0]{expires_at}), 'and the expiry';

    # confirm: validation first, nothing spent
    my $r = confirm($tok, 'short');
    is_problem $r, 422, 'validation', 'confirm with a weak new password is 422';
    has_field_error $r, 'new_password';
    $r = api(POST => '/auth/password-reset/confirm/', body => { new_password => 'long enough 123' });
    is_problem $r, 422, 'validation', 'confirm without a token is 422';
    has_field_error $r, 'token';
    is_problem confirm('A' x 43, 'long enough 123'), 422, 'invalid-token', 'an unknown (well-formed) token is 422 invalid-token';
    is_problem confirm('garbage', 'long enough 123'), 422, 'invalid-token', 'a malformed token is 422 invalid-token';

    my $other_token = token_of($u->{email}, $u->{password});
    my $new = 'reset password ' . uniq();
    push @secrets, $new;
    $r = confirm($tok, $new);
    is $r->{status}, 204, 'confirm with the token and a good password is 204';
    is login_res($u->{email}, $new)->{status}, 200, 'the new password logs in';
    is_problem login_res($u->{email}, $u->{password}), 401, 'unauthorized', 'the old one does not';
    is_problem api(GET => '/auth/me/', token => $u->{token}), 401, 'unauthorized', 'every earlier token is revoked';
    is_problem api(GET => '/auth/me/', token => $other_token), 401, 'unauthorized', 'every one';
    is_problem confirm($tok, 'another password 1'), 422, 'invalid-token', 'the same token again is 422 (single use)';
    is login_res($u->{email}, $new)->{status}, 200, 'and the password it would have set was not';
    is psql_value("SELECT count(*) FROM password_reset_outbox o JOIN password_resets r ON r.id = o.reset_id WHERE r.user_id = $u->{id}"),
        0, 'no clear token of the account is left in the outbox';
}
{   # expiry, and a used token spends the others
    my $u = register_user();
    reset_req($u->{email});
    my $t1 = outbox_token($u->{id});
    psql_do("UPDATE password_resets SET created_at = created_at - interval '2 minutes' WHERE user_id = $u->{id}");
    reset_req($u->{email});
    my $t2 = outbox_token($u->{id});
    isnt $t2, $t1, 'a second token a minute later';
    push @secrets, $t1, $t2;
    psql_do("UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE token_hash = '" . sha256_hex($t1) . "'");
    is_problem confirm($t1, 'expired attempt 123'), 422, 'invalid-token', 'an expired token is 422 invalid-token';
    is login_res($u->{email}, $u->{password})->{status}, 200, 'and changed nothing';
    psql_do("UPDATE password_resets SET created_at = created_at - interval '2 minutes' WHERE user_id = $u->{id}");
    reset_req($u->{email});
    my $t3 = outbox_token($u->{id});
    push @secrets, $t3;
    is confirm($t3, 'third token password')->{status}, 204, 'the newest token works';
    is_problem confirm($t2, 'second token password'), 422, 'invalid-token', 'and spends the older live one';

    # a password change spends outstanding reset tokens too
    psql_do("UPDATE password_resets SET created_at = created_at - interval '2 minutes' WHERE user_id = $u->{id}");
    reset_req($u->{email});
    my $t4 = outbox_token($u->{id});
    push @secrets, $t4;
    my $tok = token_of($u->{email}, 'third token password');
    is api(POST => '/auth/password/', token => $tok, body => { current => 'third token password', new => 'fourth password 1' })->{status},
        204, 'a password change';
    is_problem confirm($t4, 'fifth password 123'), 422, 'invalid-token', 'spends the reset token issued before it';

    # --drain hands every mail over once
    reset_req(register_user()->{email});
    my $d = ecom_admin('reset-outbox', '--drain');
    is $d->{rc}, 0, 'reset-outbox --drain exits 0';
    ok scalar(grep { length } split /\n/, $d->{out}) >= 1, 'and prints the waiting mails';
    is psql_value('SELECT count(*) FROM password_reset_outbox'), 0, 'the outbox is empty afterwards';
    is ecom_admin('reset-outbox')->{out}, '', 'a second look prints nothing';
}

{   # the watchdog's purge deletes expired reset tokens and their mail
    my $u = register_user();
    reset_req($u->{email});
    my $live = psql_value("SELECT id FROM password_resets WHERE user_id = $u->{id}");
    psql_do("INSERT INTO password_resets (user_id, token_hash, created_at, expires_at) "
            . "VALUES ($u->{id}, repeat('e', 64), now() - interval '2 hours', now() - interval '1 hour')");
    psql_do("INSERT INTO password_reset_outbox (reset_id, email, token, expires_at) "
            . "SELECT id, 'x\@example.com', 'expired', expires_at FROM password_resets WHERE token_hash = repeat('e', 64)");
    my ($left, $deadline) = (1, time + 30);
    while (time < $deadline) {
        $left = psql_value("SELECT count(*) FROM password_resets WHERE token_hash = repeat('e', 64)");
        last unless $left;
        sleep 1;
    }
    is $left, 0, 'an expired reset token is purged by the watchdog';
    is psql_value("SELECT count(*) FROM password_reset_outbox WHERE token = 'expired'"), 0, 'with its outbox row';
    is psql_value("SELECT count(*) FROM password_resets WHERE id = $live"), 1, 'a live one is kept';
}

# --- DELETE /auth/me/ ------------------------------------------------------------------
{
    my $p = create_product(price => 700, stock => 10);
    my $u = register_user(name => 'Closing Customer');
    push @secrets, $u->{token};
    my $r = api(POST => '/cart/', token => $u->{token}, body => { product_id => $p->{id}, quantity => 1 });
    $r = api(POST => '/orders/', token => $u->{token});
    my $order = $r->{json}{id};
    is api(POST => "/orders/$order/payments/", token => $u->{token}, body => { token => 'tok_ok' })->{status}, 201, 'a paid order';
    $r = api(POST => "/products/$p->{id}/reviews/", token => $u->{token}, body => { rating => 5, title => 'Great' });
    is $r->{status}, 201, 'and a review';
    my $review = $r->{json}{id};
    is $r->{json}{user}, 'Closing Customer', 'the review shows the name';
    api(POST => '/cart/', token => $u->{token}, body => { product_id => $p->{id}, quantity => 2 });
    my $t2 = token_of($u->{email}, $u->{password});
    reset_req($u->{email});
    is api(POST => '/auth/me/addresses/', token => $u->{token},
           body => { name => 'Closing Customer', line1 => '1 Main St', city => 'Leeds',
                     postal_code => 'LS1 1AA', country => 'GB' })->{status}, 201, 'and an address book entry';

    is_problem api(DELETE => '/auth/me/', token => $u->{token}, body => {}), 422, 'validation', 'DELETE /auth/me/ without password is 422';
    is_problem api(DELETE => '/auth/me/', token => $u->{token}, body => { password => 'not it at all' }), 403, 'wrong-password',
        'with a wrong password: 403 wrong-password';
    is api(GET => '/auth/me/', token => $u->{token})->{status}, 200, 'the account is still open';
    is_problem api(DELETE => '/auth/me/', body => { password => $u->{password} }), 401, 'unauthorized', 'without a token: 401';

    $r = api(DELETE => '/auth/me/', token => $u->{token}, body => { password => $u->{password} });
    is $r->{status}, 204, 'DELETE /auth/me/ with the password is 204';
    is_problem api(GET => '/auth/me/', token => $u->{token}), 401, 'unauthorized', 'the calling token is revoked';
    is_problem api(GET => '/auth/me/', token => $t2), 401, 'unauthorized', 'every token is revoked';
    is_problem login_res($u->{email}, $u->{password}), 401, 'unauthorized', 'login with the old credentials is 401';
    my $row = psql_value("SELECT email || '|' || name || '|' || password_hash || '|' || (closed_at IS NOT NULL)::text FROM users WHERE id = $u->{id}");
    is $row, "closed-$u->{id}\@invalid||!|true", 'the user row keeps no personal data (placeholder email, no name, unusable hash)';
    is psql_value("SELECT count(*) FROM orders WHERE id = $order AND user_id = $u->{id}"), 1, 'the order is kept for the books';
    is psql_value("SELECT count(*) FROM cart_items WHERE user_id = $u->{id}"), 0, 'the cart is emptied';
    is psql_value("SELECT count(*) FROM password_resets WHERE user_id = $u->{id}"), 0, 'reset tokens are gone';
    is psql_value("SELECT count(*) FROM addresses WHERE user_id = $u->{id}"), 0, 'the address book is erased';
    is psql_value("SELECT count(*) FROM auth_tokens WHERE user_id = $u->{id} AND revoked_at IS NULL"), 0, 'no live token';
    $r = api(GET => "/reviews/$review/");
    is $r->{status}, 200, 'the review is kept';
    is $r->{json}{user}, undef, 'anonymised: no author name';
    is_problem login_res("closed-$u->{id}\@invalid", '!'), 401, 'unauthorized', 'the placeholder cannot log in';
    is reset_req($u->{email})->{content}, reset_req('nobody-' . uniq() . '@example.com')->{content},
        'a reset for the closed account\'s old email: the same 202';
    is psql_value("SELECT count(*) FROM password_resets WHERE user_id = $u->{id}"), 0, 'and no token';
    my $again = api(POST => '/auth/register/', body => { email => $u->{email}, password => $u->{password} });
    is $again->{status}, 201, 'the email can register again';
    isnt $again->{json}{user}{id}, $u->{id}, 'as a new account';
    push @secrets, $again->{json}{token} if $again->{json}{token};
}

# --- one transaction each: a statement that cannot finish undoes the others -----------
# An outside session holds a row the last statements need, longer than the
# shipped lock_timeout (2 s): the request gets 503 database-busy and
# nothing it had already written in its transaction is kept.
sub hold_lock {
    my ($sql) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDERR, '>', '/dev/null';
        { exec 'psql', '-XAtq', '-c', "BEGIN; $sql; SELECT pg_sleep(3); COMMIT;" }
        POSIX::_exit(127);
    }
    Time::HiRes::sleep(0.4);
    return $pid;
}
{
    my $p = create_product(price => 100, stock => 5);
    my $u = register_user();
    push @secrets, $u->{token};
    is api(POST => '/cart/', token => $u->{token}, body => { product_id => $p->{id}, quantity => 1 })->{status}, 201, 'a cart line';
    my $holder = hold_lock("SELECT 1 FROM cart_items WHERE user_id = $u->{id} FOR UPDATE");
    my $r = api(DELETE => '/auth/me/', token => $u->{token}, body => { password => $u->{password} });
    waitpid $holder, 0;
    is_problem $r, 503, 'database-busy', 'closing while the cart rows are held elsewhere: 503 database-busy';
    is psql_value("SELECT email || '|' || (closed_at IS NULL)::text FROM users WHERE id = $u->{id}"), "$u->{email}|true",
        'the account was not closed (email kept: the earlier statements rolled back)';
    is api(GET => '/auth/me/', token => $u->{token})->{status}, 200, 'its token still works';
    is psql_value("SELECT count(*) FROM cart_items WHERE user_id = $u->{id}"), 1, 'its cart is untouched';
    is api(DELETE => '/auth/me/', token => $u->{token}, body => { password => $u->{password} })->{status}, 204,
        'once the lock is gone, closing works';

    my $v = register_user();
    push @secrets, $v->{token};
    my $other = token_of($v->{email}, $v->{password});
    api(POST => '/auth/password-reset/', body => { email => $v->{email} });
    $holder = hold_lock("SELECT 1 FROM password_resets WHERE user_id = $v->{id} FOR UPDATE");
    $r = api(POST => '/auth/password/', token => $v->{token}, body => { current => $v->{password}, new => 'never applied 123' });
    waitpid $holder, 0;
    is_problem $r, 503, 'database-busy', 'a password change that cannot spend the reset tokens: 503';
    is login_res($v->{email}, $v->{password})->{status}, 200, 'the old password still logs in (the new hash rolled back)';
    is api(GET => '/auth/me/', token => $other)->{status}, 200, 'and the other token was not revoked';
}

# --- secrets stay out of the error log ---------------------------------------------------
SKIP: {
    skip 'ECOM_RUNDIR not set', 1 unless defined $ENV{ECOM_RUNDIR};
    my $log = error_log_text($log_start) // '';
    my @leaks = grep { defined && length && index($log, $_) >= 0 } @secrets;
    ok !@leaks, 'error.log holds none of the tokens, reset tokens and passwords sent'
        or diag scalar(@leaks) . ' secret(s) found';
}

done_testing;
