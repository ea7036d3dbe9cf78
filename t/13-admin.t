#!/usr/bin/perl
# scripts/ecom-admin create-staff and accounts that already exist. Anyone can
# register an e-mail through the API; if the operator later makes that e-mail
# staff, the registrant must not end up holding a staff token. So an existing
# account is promoted only with --promote-existing, and the promotion revokes
# every token of the account in the same transaction; a login that races with
# the promotion gets no token.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use IPC::Open2;
use Time::HiRes qw(time sleep);
use EcomTest;
use EcomAdmin;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

# admin($password, @args) -> { rc, out, err } (ecom_admin, t/lib/EcomAdmin.pm)
sub admin {
    my ($pw, @args) = @_;
    local $ENV{ECOM_PASSWORD} = $pw;
    return ecom_admin(@args);
}

sub product_body { { name => 'Admin test ' . uniq(), price => 100, sku => 'adm-' . uniq() } }

# --- an account registered through the API ---------------------------------------
my $victim = register_user();
my $old_token = $victim->{token};
my $hash_before = psql_value("SELECT password_hash FROM users WHERE id = $victim->{id}");
my $new_pw = 'staff password ' . uniq();

is api(POST => '/products/', token => $old_token, body => product_body())->{status}, 403,
   'the self-registered account is not staff';

{
    my $r = admin($new_pw, 'create-staff', '--email', uc $victim->{email});
    isnt $r->{rc}, 0, 'create-staff on an existing e-mail without --promote-existing fails';
    like $r->{err}, qr/already exists/, 'stderr says the account exists';
    like $r->{err}, qr/--promote-existing/, 'and names the flag that would promote it';
    like $r->{err}, qr/nothing was changed/i, 'and that nothing was changed';
    is $r->{out}, '', 'nothing on stdout (no user id)';
    is psql_value("SELECT is_staff FROM users WHERE id = $victim->{id}"), 'f', 'the account is still not staff';
    is psql_value("SELECT password_hash FROM users WHERE id = $victim->{id}"), $hash_before,
       'its password is unchanged';
    is api(GET => '/cart/', token => $old_token)->{status}, 200, 'the registrant token still works';
    is api(POST => '/products/', token => $old_token, body => product_body())->{status}, 403,
       'and is still not a staff token (POST /products/ is 403)';
}

{
    my $second = login($victim->{email}, $EcomTest::PASSWORD);   # a second live token
    my $r = admin($new_pw, 'create-staff', '--email', $victim->{email}, '--promote-existing');
    is $r->{rc}, 0, 'create-staff --promote-existing succeeds' or diag $r->{err};
    like $r->{out}, qr/\A$victim->{id}\n\z/, 'stdout is the user id';
    like $r->{err}, qr/promoted existing user/, 'stderr says the account was promoted';
    like $r->{err}, qr/tokens revoked: 2\b/, 'and that its 2 tokens were revoked';
    for my $t ([ 'registration', $old_token ], [ 'second', $second ]) {
        my $c = api(GET => '/cart/', token => $t->[1]);
        is_problem $c, 401, 'unauthorized', "the $t->[0] token is revoked (401)";
        is api(POST => '/products/', token => $t->[1], body => product_body())->{status}, 401,
           "the $t->[0] token cannot create products";
    }
    is psql_value("SELECT count(*) FROM auth_tokens WHERE user_id = $victim->{id} AND revoked_at IS NULL"), 0,
       'no live token is left';
    my $old = api(POST => '/auth/login/', body => { email => $victim->{email}, password => $EcomTest::PASSWORD });
    is_problem $old, 401, 'unauthorized', 'the old password no longer logs in';
    my $staff = login($victim->{email}, $new_pw);
    my $p = api(POST => '/products/', token => $staff, body => product_body());
    is $p->{status}, 201, 'the new password logs in as staff (POST /products/ is 201)' or diag $p->{content};
}

# --- a new account ----------------------------------------------------------------
{
    my $email = 'admin-new-' . uniq() . '@example.com';
    my $pw = 'staff password ' . uniq();
    my $r = admin($pw, 'create-staff', '--email', $email, '--name', 'New Staff');
    is $r->{rc}, 0, 'create-staff on a new e-mail succeeds' or diag $r->{err};
    my ($id) = $r->{out} =~ /\A(\d+)\n\z/;
    ok $id, 'and prints the new user id';
    like $r->{err}, qr/created staff user/, 'stderr says the user was created';
    like $r->{err}, qr/tokens revoked: 0\b/, 'with no token revoked';
    is psql_value("SELECT is_staff::text || ' ' || name FROM users WHERE id = " . ($id // 0)), 'true New Staff',
       'the user is staff with its name';
    my $again = admin($pw, 'create-staff', '--email', $email);
    isnt $again->{rc}, 0, 'running it again without --promote-existing is refused too';
    my $usage = admin($pw, '--help');
    is $usage->{rc}, 0, '--help: exit 0';
    like $usage->{out}, qr/--promote-existing/, 'the usage text (stdout) documents --promote-existing';
}

# --- a login racing with the promotion ---------------------------------------------
# The promotion's transaction is held open here after it changed the password
# and revoked the tokens. A login with the old password that checked it before
# the commit must not come out of it with a (staff) token.
{
    my $u = register_user();
    my $pid = open2(my $from, my $to, 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1');
    $to->autoflush(1);
    my $wait_for = sub {
        my ($word) = @_;
        while (my $l = <$from>) { return 1 if $l =~ /^\Q$word\E$/ }
        return 0;
    };
    print $to "BEGIN;\n"
            . "UPDATE users SET password_hash = 'changed-by-the-test', is_staff = true WHERE id = $u->{id};\n"
            . "UPDATE auth_tokens SET revoked_at = now() WHERE user_id = $u->{id} AND revoked_at IS NULL;\n"
            . "\\echo locked\n";
    ok $wait_for->('locked'), 'a promotion transaction is open';

    my ($host, $port) = base_url() =~ m{^http://([^/:]+):(\d+)};
    my $body = json_encode({ email => $u->{email}, password => $EcomTest::PASSWORD });
    my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp', Timeout => 10)
        or die "connect: $!\n";
    print $s "POST /auth/login/ HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n"
           . "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
    # Until the login either answered or waits for the promotion's row lock.
    my ($deadline, $waiting) = (time + 30, 0);
    while (time < $deadline) {
        my $rin = '';
        vec($rin, fileno $s, 1) = 1;
        last if select my $rout = $rin, undef, undef, 0.1;
        $waiting = psql_value("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                              . "AND query LIKE '%INSERT INTO auth_tokens%'");
        last if $waiting;
    }
    print $to "COMMIT;\n\\echo done\n";
    ok $wait_for->('done'), 'the promotion commits';
    close $to;
    waitpid $pid, 0;
    my $res = '';
    $s->timeout(30);
    while (sysread $s, my $buf, 65536) { $res .= $buf }
    close $s;
    my ($status) = $res =~ m{\AHTTP/1\.\d (\d{3})};
    my ($json) = $res =~ /\r\n\r\n(.*)\z/s;
    my $j = json_decode($json // '') // {};
    ok $waiting, 'the racing login waited for the promotion to commit';
    is $status, 401, 'the racing login gets no token (401)';
    if (defined $j->{token}) {
        my $c = api(POST => '/products/', token => $j->{token}, body => product_body());
        is $c->{status}, 401, 'the token the racing login got is not a live staff token';
    }
    is psql_value("SELECT count(*) FROM auth_tokens WHERE user_id = $u->{id} AND revoked_at IS NULL"), 0,
       'the account has no live token after the promotion';
}

done_testing;
