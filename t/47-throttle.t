#!/usr/bin/perl
# Throttling (ecom_throttle.c), on throwaway servers of two child processes
# each (spare_httpd) with small limits, clients on several loopback
# addresses (127.0.0.x; the server listens on 127.0.0.1):
#  - 200 wrong passwords against one account from 4 addresses end in 429s
#    with Retry-After and slow the attacker to a handful of real guesses,
#    while the owner logs in from a clean address during the attack, and
#    from an address that failed within EcomLoginLockout (3 s here);
#  - the per-address, per-token and auth budgets give 429 problem+json with
#    Retry-After, RateLimit-Policy and RateLimit (also on allowed answers),
#    and hold across both children (exactly the limit passes);
#  - EcomArgon2MaxInFlight 1 gives 503 with Retry-After under a burst;
#  - 1,000 logins leave no child above the documented memory ceiling.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;
use HTTP::Tiny;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
# a SIGTERM (a timeout) ends the test through exit, so guards still run
$SIG{TERM} = sub { exit 143 };

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $pgport = $ENV{PGPORT} // 55432;
my $common = <<"CONF";
LogFormat "%P %a %>s" pid
CustomLog "\@DIR\@/access.log" pid
DBDriver pgsql
DBDParams "host=127.0.0.1 port=$pgport dbname=ecom user=ecom connect_timeout=2"
DBDMin 0
<Location "/">
    SetHandler ecom
</Location>
<Location "/ecom-status">
    SetHandler ecom-status
</Location>
CONF

# two children of 4 threads
my $two = "ServerLimit 2\nStartServers 2\nMaxRequestWorkers 8\nMaxSpareThreads 8\n";
my $h = spare_httpd(ports => 2, modules => ['socache_shmcb'], conf => $two . $common . <<'CONF');
EcomLoginLockout 3
EcomArgon2MaxInFlight 8
EcomAuthRateLimit 100000
<VirtualHost 127.0.0.1:@PORT1@>
    ServerName budget.test
    EcomRateLimit 6
    EcomTokenRateLimit 4
    EcomRateLimitWindow 60
    EcomAuthRateLimit 3
</VirtualHost>
CONF
plan skip_all => "cannot run a spare apache2: $h" unless ref $h;
ok $h->{started}, 'the spare apache2 (two children) starts'
    or diag(($h->{syntax} // '') . ($h->{start_output} // ''));
BAIL_OUT('the spare apache2 did not start') unless $h->{started};
my $base = "http://127.0.0.1:$h->{ports}[0]";
my $budget = "http://127.0.0.1:$h->{ports}[1]";

# api() from a given local address
sub from {
    my ($addr, $method, $url, %o) = @_;
    my $ua = HTTP::Tiny->new(keep_alive => 0, timeout => 30, local_address => $addr);
    my %hd = %{ $o{headers} || {} };
    my %args = (headers => \%hd);
    if ($o{body}) {
        $args{content} = json_encode($o{body});
        $hd{'content-type'} = 'application/json';
    }
    $hd{authorization} = "Bearer $o{token}" if $o{token};
    my $r = $ua->request($method, $url, \%args);
    my %res = (status => $r->{status}, headers => $r->{headers} || {}, content => $r->{content} // '');
    $res{json} = json_decode($res{content}) if length $res{content} && is_json_ct(\%res);
    return \%res;
}

sub pids_in_log {
    open my $fh, '<', "$h->{dir}/access.log" or return {};
    my %p;
    while (<$fh>) { $p{$1}++ if /^(\d+) / }
    return \%p;
}

# --- failed logins ------------------------------------------------------------------
my $email = 'owner-' . uniq() . '@example.com';
my $pw = 'the owner password 1';
my $reg = from('127.0.0.1', POST => "$base/auth/register/", body => { email => $email, password => $pw });
is $reg->{status}, 201, 'the owner registers' or diag $reg->{content};

my $t0 = time;
my @attack = parallel(4, 1, sub {
    my $addr = '127.0.0.' . (2 + $_[0]);
    my (%count, @retry);
    for my $i (1 .. 50) {
        my $r = from($addr, POST => "$base/auth/login/",
                     body => { email => uc($email), password => "wrong guess $i" });
        $count{ $r->{status} }++;
        push @retry, $r->{headers}{'retry-after'} if $r->{status} == 429;
    }
    return { count => \%count, retry => \@retry };
});
my $took = time - $t0;
my (%all, @retry);
for my $a (@attack) {
    $all{$_} += $a->{count}{$_} for keys %{ $a->{count} || {} };
    push @retry, @{ $a->{retry} || [] };
}
my $guesses = $all{401} // 0;
my %rs; $rs{$_}++ for @retry;
diag sprintf "attack: %d real guesses (401), %d refused (429) in %.1f s; Retry-After: %s", $guesses,
    $all{429} // 0, $took, join(', ', map { "$_ s x$rs{$_}" } sort keys %rs);
is +($all{401} // 0) + ($all{429} // 0), 200, '200 wrong passwords: every answer is 401 or 429'
    or diag explain \%all;
cmp_ok $all{429} // 0, '>=', 170, 'most of them are 429 (refused before any hashing)';
cmp_ok $guesses, '<=', 30, "the attacker got $guesses real guesses in 200 tries ("
       . sprintf('%.1f', $took) . ' s)';
ok !grep({ !/^\d+$/ || $_ < 1 || $_ > 3 } @retry),
    'every 429 says Retry-After 1 .. 3 (EcomLoginLockout 3)' or diag "@retry[0..20]";
my $locked;
for (1 .. 5) {
    $locked = from('127.0.0.2', POST => "$base/auth/login/", body => { email => $email, password => 'again wrong' });
    last if $locked->{status} == 429;
}
is_problem $locked, 429, 'login-locked', 'an attacking address is locked out';

# the owner, from an address that never failed, is not held by the lock
my $clean = from('127.0.0.9', POST => "$base/auth/login/", body => { email => $email, password => $pw });
is $clean->{status}, 200, 'the owner logs in from a clean address right after the attack';

# the owner behind an attacking address (shared NAT): the failed address is
# locked, for at most EcomLoginLockout
for my $i (1 .. 6) {
    from('127.0.0.3', POST => "$base/auth/login/", body => { email => $email, password => "more $i" });
}
my $t1 = time;
my $nat = from('127.0.0.3', POST => "$base/auth/login/", body => { email => $email, password => $pw });
is $nat->{status}, 429, 'the right password from a locked address is refused too (429, no hashing)';
my $wait = $nat->{headers}{'retry-after'} // 99;
cmp_ok $wait, '<=', 3, "Retry-After ($wait) is within EcomLoginLockout";
sleep $wait + 0.2;
my $back = from('127.0.0.3', POST => "$base/auth/login/", body => { email => $email, password => $pw });
is $back->{status}, 200, sprintf('the owner gets in from that address after %.1f s', time - $t1);

# unknown e-mail: the same answers (a lock reveals nothing)
my $ghost = 'ghost-' . uniq() . '@example.com';
my @g = map { from('127.0.0.4', POST => "$base/auth/login/", body => { email => $ghost, password => "x$_" })->{status} } 1 .. 6;
is "@g[0..2]", '401 401 401', 'an unknown e-mail gets 401 ...';
ok grep({ $_ == 429 } @g), '... and is locked the same way';

# a stolen token cannot guess the password through the password change
# (POST /auth/password/ of issue 9's account endpoints: 403 on a wrong
# current password); skipped where the route does not exist yet
SKIP: {
    my $u = from('127.0.0.1', POST => "$base/auth/register/",
                 body => { email => 'pwchange-' . uniq() . '@example.com', password => 'the first password' });
    my $tok = ref $u->{json} eq 'HASH' ? $u->{json}{token} : undef;
    my $probe = from('127.0.0.5', POST => "$base/auth/password/", token => $tok,
                     body => { current => 'not it 0', new => 'a brand new password' });
    skip 'no POST /auth/password/ route in this build', 2 if $probe->{status} == 404 || $probe->{status} == 405;
    my @pw = ($probe->{status}, map { from('127.0.0.5', POST => "$base/auth/password/", token => $tok,
                 body => { current => "not it $_", new => 'a brand new password' })->{status} } 1 .. 7);
    like "@pw", qr/^(?:40[13] ){3}/, 'wrong current passwords: 401/403 at first';
    ok grep({ $_ == 429 } @pw), "then 429 login-locked (@pw)";
}

# password reset requests: 5 per e-mail per 15 minutes, whoever asks; a
# 202 clears no lock (it proves nothing)
SKIP: {
    my $victim = 'reset-' . uniq() . '@example.com';
    my @rs = map { from('127.0.0.' . (50 + $_), POST => "$base/auth/password-reset/",
                        body => { email => $victim })->{status} } 1 .. 6;
    skip 'no POST /auth/password-reset/ route in this build', 3 if $rs[0] == 404;
    is "@rs", '202 202 202 202 202 429', 'the 6th reset request for one e-mail is 429, from any address';
    my $other = from('127.0.0.57', POST => "$base/auth/password-reset/", body => { email => 'x' . $victim });
    is $other->{status}, 202, 'another e-mail has its own budget';
    # an address locked on the owner's account stays locked after a reset request
    for (1 .. 6) { from('127.0.0.6', POST => "$base/auth/login/", body => { email => $email, password => "bad $_" }) }
    from('127.0.0.6', POST => "$base/auth/password-reset/", body => { email => $email });
    my $still = from('127.0.0.6', POST => "$base/auth/login/", body => { email => $email, password => $pw });
    is $still->{status}, 429, 'a reset request does not clear the lock of its address';
}

# --- request budgets ----------------------------------------------------------------
my @b = parallel(24, 1, sub { my $r = from('127.0.0.20', GET => "$budget/health/");
    return { status => $r->{status}, policy => $r->{headers}{'ratelimit-policy'},
             rl => $r->{headers}{ratelimit}, retry => $r->{headers}{'retry-after'},
             ct => $r->{headers}{'content-type'} } });
my @ok = grep { $_->{status} != 429 } @b;
my @no = grep { $_->{status} == 429 } @b;
is scalar @ok, 6, 'EcomRateLimit 6: exactly 6 of 24 concurrent requests pass, across both children';
is scalar @no, 18, 'the other 18 get 429';
my $pids = pids_in_log();
cmp_ok scalar(keys %$pids), '>=', 2, 'both children served requests (access log %P: '
    . join(', ', map { "$_ x$pids->{$_}" } sort keys %$pids) . ')';
like $ok[0]{policy} // '', qr/(?:^|, )"addr";q=6;w=60(?:,|$)/, 'an allowed answer has RateLimit-Policy "addr";q=6;w=60';
like $ok[0]{rl} // '', qr/"addr";r=\d;t=\d+/, 'and RateLimit "addr";r=..;t=..';
like $no[0]{rl} // '', qr/"addr";r=0;t=\d+/, 'a refused one RateLimit r=0';
like $no[0]{retry} // '', qr/^\d+$/, 'and Retry-After';
my $r429 = from('127.0.0.20', GET => "$budget/health/");
is_problem $r429, 429, 'rate-limited', 'over budget: 429 problem+json';
my ($t) = ($r429->{headers}{ratelimit} // '') =~ /t=(\d+)/;
is $t, $r429->{headers}{'retry-after'}, 'RateLimit t is the Retry-After time';
is from('127.0.0.21', GET => "$budget/health/")->{status}, 200, 'another address has its own budget';

# per token: the token's budget holds from any address
my $tok = 'A' x 43;
my @tk = map { from('127.0.0.22', GET => "$budget/cart/", token => $tok)->{status} } 1 .. 5;
is "@tk", '401 401 401 401 429', 'EcomTokenRateLimit 4: the 5th request with one token is 429';
my $tk2 = from('127.0.0.23', GET => "$budget/cart/", token => $tok);
is $tk2->{status}, 429, 'the same token from another address is still over budget';
like $tk2->{headers}{'ratelimit-policy'} // '', qr/"token";q=4;w=60/, 'RateLimit-Policy names the token policy';

# auth budget: 3 per minute per address on the password endpoints
my @au = map { from('127.0.0.24', POST => "$budget/auth/login/",
                    body => { email => "n$_-" . uniq() . '@example.com', password => 'x' })->{status} } 1 .. 4;
is "@au", '401 401 401 429', 'EcomAuthRateLimit 3: the 4th login from an address is 429';
my $reg4 = from('127.0.0.24', POST => "$budget/auth/register/", body => { email => 'r-' . uniq() . '@example.com', password => 'long enough password' });
is_problem $reg4, 429, 'rate-limited', 'register shares that budget';
like $reg4->{headers}{'ratelimit-policy'} // '', qr/"auth";q=3;w=60/, 'RateLimit-Policy "auth";q=3;w=60';
is from('127.0.0.25', GET => "$budget/products/")->{status}, 200, 'other routes are not in the auth budget';

# the operator's view: the counters are the whole server's (both children)
my $st = api(GET => '/ecom-status', base => $budget);
is $st->{status}, 200, 'GET /ecom-status';
my $th = ref $st->{json} eq 'HASH' ? $st->{json}{throttle} : {};
is $th->{store}, 'shmcb (own)', 'the throttle keeps its own shmcb segment (no shared EcomCache)';
is $th->{rate_limit}, 6, 'it shows the virtual host\'s EcomRateLimit';
cmp_ok $th->{login_locked} // 0, '>=', $all{429} // 0, "login_locked counts every lock refusal ($th->{login_locked})";
cmp_ok $th->{rate_limited} // 0, '>=', 18 + 1 + 2 + 2, "rate_limited counts the budget refusals ($th->{rate_limited})";
cmp_ok $th->{failed_logins} // 0, '>=', $guesses, "failed_logins ($th->{failed_logins})";
$h->{stop}->();

# --- across hosts: two servers sharing one memcached ----------------------------------
SKIP: {
    my $mc = '/usr/bin/memcached';
    skip 'memcached is not installed (scripts/lib.sh installs it)', 5 unless -x $mc;
    my $mport = free_port();
    my $mpid = fork // die "fork: $!";
    if (!$mpid) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        { exec $mc, '-u', 'nobody', '-l', '127.0.0.1', '-p', $mport, '-U', '0', '-m', '16' }
        POSIX::_exit(127);
    }
    # a test that dies or is timed out still stops it
    my $guard = EcomTest::Guard->new(sub { kill 'TERM', $mpid; waitpid $mpid, 0 });
    my $up = 0;
    for (1 .. 50) {
        last if $up = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $mport, Proto => 'tcp');
        sleep 0.1;
    }
    ok $up, 'memcached runs';
    my @hosts = map { spare_httpd(modules => ['socache_memcache'],
                                  conf => $common . "EcomCache memcache:127.0.0.1:$mport\nEcomRateLimit 10\n") } 1 .. 2;
    ok !grep({ !ref $_ || !$_->{started} } @hosts), 'two servers ("hosts") share it as EcomCache';
    my @st = map { from('127.0.0.40', GET => "http://127.0.0.1:$hosts[$_ % 2]{ports}[0]/health/")->{status} } 0 .. 13;
    is "@st", join(' ', (200) x 10, (429) x 4),
        'EcomRateLimit 10: requests alternating between the two hosts share one budget';
    my $view = api(GET => '/ecom-status', base => "http://127.0.0.1:$hosts[1]{ports}[0]")->{json} // {};
    is +($view->{throttle} // {})->{store}, 'memcache', 'the throttle uses the shared store';
    is from('127.0.0.41', GET => "http://127.0.0.1:$hosts[0]{ports}[0]/health/")->{status}, 200,
        'another address has its own budget there too';
    $_->{stop}->() for grep { ref } @hosts;
    undef $guard;
}

# --- no store: throttling off, with a warning -----------------------------------------
my $h0 = spare_httpd(conf => $common . "EcomAuthRateLimit 1\n");
ok ref $h0 && $h0->{started}, 'a server without mod_socache_shmcb starts';
my @nostore = map { api(POST => '/auth/login/', base => "http://127.0.0.1:$h0->{ports}[0]",
                        body => { email => "ns-" . uniq() . '@example.com', password => 'x' })->{status} } 1 .. 3;
is "@nostore", '401 401 401', 'without a store nothing is throttled (EcomAuthRateLimit 1 has no effect)';
my $log0 = slurp_file($h0->{error_log}) // '';
like $log0, qr/ECOM4701: no store for the throttle/, 'and start-up warned of it (ECOM4701)';
$h0->{stop}->();

# --- the bound on hashings in flight ------------------------------------------------
my $h1 = spare_httpd(modules => ['socache_shmcb'], conf => "ThreadsPerChild 16\nMaxRequestWorkers 16\nMaxSpareThreads 16\n"
                     . $common . "EcomArgon2MaxInFlight 1\n");
ok ref $h1 && $h1->{started}, 'a server with EcomArgon2MaxInFlight 1 starts';
my $b1 = "http://127.0.0.1:$h1->{ports}[0]";
my @burst = parallel(12, 1, sub {
    my $r = api(POST => '/auth/login/', base => $b1,
                body => { email => "b$_[0]-" . uniq() . '@example.com', password => 'whatever' });
    return { status => $r->{status}, retry => $r->{headers}{'retry-after'},
             type => ref $r->{json} eq 'HASH' ? $r->{json}{type} : undef };
});
my @busy = grep { $_->{status} == 503 } @burst;
my @done = grep { $_->{status} == 401 } @burst;
is @busy + @done, 12, '12 concurrent logins: each is 401 or 503' or diag explain \@burst;
cmp_ok scalar @busy, '>=', 1, scalar(@busy) . ' got 503 at once (no queue)';
cmp_ok scalar @done, '>=', 1, scalar(@done) . ' ran';
ok !grep({ ($_->{retry} // '') ne '1' || ($_->{type} // '') ne 'urn:mod-ecom:problem:server-busy' } @busy),
    'each 503 is problem+json server-busy with Retry-After: 1';
$h1->{stop}->();

# --- memory after many logins -------------------------------------------------------
# The ceilings (README.md, "Throttling"): with the default
# EcomArgon2MaxInFlight (4), a child's resident memory stays below 128 MiB at
# its peak (4 x 19 MiB of hashing) and below 32 MiB after the burst (it was
# 490-580 MiB after such a burst before the fix).
my ($CEILING, $PEAK) = (32, 128);
my $N = $ENV{ECOM_SANITIZED} ? 300 : 1000;
my $h2 = spare_httpd(modules => ['socache_shmcb'],
                     conf => "ServerLimit 2\nStartServers 2\nThreadsPerChild 25\nMaxRequestWorkers 50\nMaxSpareThreads 50\n"
                             . "EcomAuthRateLimit 0\n" . $common);
ok ref $h2 && $h2->{started}, 'a server of two children with the default bound starts';
# 1,000 logins from 50 concurrent clients, each 503 (the bound) counted
# and not retried: a burst, as a crowd of clients would send it; then 400
# logins that all run (503s retried), so many hashings come and go
my $rss = sub {
    my ($n, @opt) = @_;
    my $out = `$^X ${\ ecom_root()}/scripts/rss-logins.pl --base http://127.0.0.1:$h2->{ports}[0] --pid $h2->{pid} -n $n -c 50 @opt --json`;
    return json_decode($out // '') // { error => $out };
};
my $burst = $rss->($N, '--no-retry');
ok !$burst->{error} && $burst->{ok} + $burst->{busy} == $N && $burst->{ok} > 0,
    "$N concurrent logins: each is 200 or 503 busy (" . ($burst->{ok} // '?') . ' ran, '
    . ($burst->{busy} // '?') . ' refused)' or diag explain $burst;
my $M = $ENV{ECOM_SANITIZED} ? 100 : 400;
my $m = $rss->($M);
ok !$m->{error} && $m->{ok} == $M, "then $M logins all ran" or diag explain $m;
if (!$m->{error}) {
    my @kids = sort keys %{ $m->{after} };
    cmp_ok scalar @kids, '>=', 2, 'two children measured';
    for my $k (@kids) {
        my $what = "child $k: VmRSS $m->{after}{$k}{rss} MiB after the logins (peak $m->{after}{$k}{hwm} MiB)";
        if ($ENV{ECOM_SANITIZED}) {
            # ASan's allocator keeps freed blocks in its quarantine
            diag "$what (sanitized build: not compared with the ceiling)";
            next;
        }
        cmp_ok $m->{after}{$k}{rss}, '<', $CEILING, $what;
        cmp_ok $m->{after}{$k}{hwm}, '<', $PEAK, "child $k: peak below $PEAK MiB";
    }
    diag "$N concurrent logins in $burst->{seconds} s ($burst->{ok} ran, $burst->{busy} answered 503); "
        . "$M logins in $m->{seconds} s ($m->{per_second}/s)";
}
$h2->{stop}->();

done_testing;

# Runs its code when it goes out of scope or at exit (also on die or a
# SIGTERM from test.sh's timeout, which the handler below turns into exit).
package EcomTest::Guard;
sub new { my ($c, $f) = @_; return bless { f => $f }, $c }
sub DESTROY { my $s = shift; $s->{f}->() if $s->{f}; delete $s->{f} }
