#!/usr/bin/perl
# PostgreSQL goes away: the API answers 503 database-unavailable quickly,
# never 500 and never hangs, and recovers by itself (no httpd restart) when
# PostgreSQL is back. Runs last: it stops the shared database.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};
my $pgsh = ecom_root() . '/scripts/pg.sh';
plan skip_all => "no $pgsh" unless -f $pgsh;

my ($stopped, $restarted) = (0, 0);
sub pg { my ($what) = @_; system('bash', $pgsh, $what) == 0 }
sub restart_pg { return if $restarted || !$stopped; $restarted = 1; pg('start') or diag 'pg.sh start failed' }
END { restart_pg() }
$SIG{$_} = sub { restart_pg(); exit 1 } for qw(INT TERM HUP);

# before: a working user and product, and the httpd pid (it must not restart)
my $u = register_user();
my $p = create_product(price => 100, stock => 3);
is api(GET => '/health/')->{status}, 200, 'healthy before stopping PostgreSQL';
my $pidfile = defined $ENV{ECOM_RUNDIR} ? "$ENV{ECOM_RUNDIR}/httpd.pid" : undef;
sub httpd_pid { return undef unless $pidfile && open my $fh, '<', $pidfile; my $x = <$fh>; chomp $x if defined $x; $x }
my $pid_before = httpd_pid();

ok pg('stop'), 'pg.sh stop succeeded';
$stopped = 1;

sub timed { my $t0 = time; my $r = api(@_, timeout => 10); ($r, time - $t0) }
for my $round (1 .. 2) {
    my ($r, $dt) = timed(GET => '/products/');
    is_problem $r, 503, 'database-unavailable', "round $round: GET /products/ is 503 database-unavailable";
    is $r->{headers}{'retry-after'}, '1', "round $round: 503 has Retry-After: 1";
    ok $dt < 10, sprintf 'round %d: answered in %.1fs (no hang)', $round, $dt;

    my ($h, $dh) = timed(GET => '/health/');
    is $h->{status}, 503, "round $round: GET /health/ is 503";
    like content_type($h), qr{^application/(?:problem\+)?json\b}i, "round $round: health 503 is JSON";
    is ref $h->{json} eq 'HASH' && $h->{json}{database}, 'unavailable', "round $round: health says database unavailable";
    ok $dh < 10, sprintf 'round %d: health answered in %.1fs', $round, $dh;

    my ($c) = timed(GET => '/cart/', token => $u->{token});
    is_problem $c, 503, 'database-unavailable', "round $round: GET /cart/ with a valid token is 503 (not 401)";
    my ($d) = timed(GET => "/products/$p->{id}/");
    is_problem $d, 503, 'database-unavailable', "round $round: GET /products/{id}/ is 503";
    my ($l) = timed(POST => '/auth/login/', body => { email => $u->{email}, password => $u->{password} });
    is_problem $l, 503, 'database-unavailable', "round $round: POST /auth/login/ is 503";
    my ($o) = timed(POST => '/orders/', token => $u->{token});
    is_problem $o, 503, 'database-unavailable', "round $round: POST /orders/ is 503";
}

ok pg('start'), 'pg.sh start succeeded';
$restarted = 1;

my ($health_ok, $list_ok, $last);
my $deadline = time + 20;
while (time < $deadline) {
    my $h = api(GET => '/health/', timeout => 10);
    $last = $h;
    if ($h->{status} == 200) { $health_ok = 1; last }
    sleep 0.5;
}
ok $health_ok, 'GET /health/ is 200 again within 20 s of PostgreSQL coming back'
    or diag "last: $last->{status} $last->{content}";
$deadline = time + 20;
while (time < $deadline) {
    my $r = api(GET => '/products/', timeout => 10);
    $last = $r;
    if ($r->{status} == 200) { $list_ok = 1; last }
    sleep 0.5;
}
ok $list_ok, 'GET /products/ is 200 again' or diag "last: $last->{status} $last->{content}";
# every pooled connection must have recovered, not just one: several requests in a row
my @s = map { api(GET => "/products/$p->{id}/")->{status} } 1 .. 20;
ok !grep({ $_ >= 500 && $_ != 503 } @s), 'no read after recovery is a 5xx other than 503' or diag "@s";
ok !grep({ $_ != 200 } @s), '20 product reads in a row after recovery are all 200 (no stale pooled connection)' or diag "@s";
is api(GET => '/cart/', token => $u->{token})->{status}, 200, 'the old token still works after recovery';
my $login = api(POST => '/auth/login/', body => { email => $u->{email}, password => $u->{password} });
is $login->{status}, 200, 'login works after recovery';
SKIP: {
    skip 'no httpd.pid', 1 unless defined $pid_before;
    is httpd_pid(), $pid_before, 'httpd was not restarted';
}

# This file runs last: the whole suite must have left no error-level line
# of the module (every 5xx but 503 logs one) and no crashed child.
SKIP: {
    my $log = defined $ENV{ECOM_RUNDIR} ? "$ENV{ECOM_RUNDIR}/error.log" : undef;
    skip 'no error.log', 2 unless $log && -r $log;
    open my $fh, '<', $log or die "$log: $!";
    my @lines = <$fh>;
    my @errors = grep { /\[ecom:(?:error|crit|alert|emerg)\]/ } @lines;
    is scalar @errors, 0, 'no module error in error.log over the whole suite' or diag @errors[0 .. 4];
    my @crashes = grep { /exit signal|AddressSanitizer|runtime error/ } @lines;
    is scalar @crashes, 0, 'no crashed child over the whole suite' or diag @crashes[0 .. 4];
}

done_testing;
