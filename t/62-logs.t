#!/usr/bin/perl
# Logs an operator can use (issue 11, part 3). The test server loads
# mod_unique_id and logs with the documented formats (conf/httpd.conf.in):
#   LogFormat "%h %l %u %t \"%r\" %>s %b %D %{UNIQUE_ID}e %{ecom-route}n %{ecom-user}n" ecom
#   ErrorLogFormat "... [req\ %-L] ..."
# Every answer of the module, errors included, carries Ecom-Request-Id; that
# id is on the request's access-log line with the route pattern and the
# user id (notes ecom-route, ecom-user), and on the module's error-log
# lines of that request; ids differ between requests. A spare server
# without mod_unique_id still sends one (httpd's own log id, %L).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};
plan skip_all => 'ECOM_RUNDIR not set' unless $ENV{ECOM_RUNDIR};
my $t0 = time;
my $access = "$ENV{ECOM_RUNDIR}/access.log";

# The access-log line of the request with this id (the log is written when
# the request ends: wait a little for it).
sub access_line {
    my ($id) = @_;
    my $deadline = time + 5;
    while (time < $deadline) {
        if (open my $fh, '<', $access) {
            while (my $l = <$fh>) {
                return $l if index($l, " $id ") >= 0;
            }
        }
        sleep 0.1;
    }
    return '';
}
# status, route and user of an access-log line in the ecom format
sub fields {
    my ($l) = @_;
    return $l =~ /" (\d{3}) \S+ \d+ (\S+) (\S+) (\S+)$/ ? ($1, $2, $3, $4) : ();
}
sub rid { my $v = $_[0]{headers}{'ecom-request-id'}; ref $v ? $v->[0] : $v }

my $u = register_user();

# --- an authenticated request ------------------------------------------------------
my $r = api(GET => '/auth/me/', token => $u->{token});
is $r->{status}, 200, 'GET /auth/me/';
my $id = rid($r);
like $id // '', qr/\A[A-Za-z0-9\@_-]{20,}\z/, "Ecom-Request-Id is mod_unique_id's id";
my ($st, $uid, $route, $user) = fields(access_line($id));
is $st, 200, 'its access-log line has the status';
is $uid, $id, 'and the same id (UNIQUE_ID)';
is $route, '/auth/me/', 'the route pattern (note ecom-route)';
is $user, $u->{id}, 'and the user id (note ecom-user)';

# --- anonymous, a path with an id, an unknown path ------------------------------------
$r = api(GET => '/products/999999999/');
is $r->{status}, 404, 'unknown product: 404';
my $id2 = rid($r);
ok defined $id2, 'an error answer has Ecom-Request-Id too';
($st, $uid, $route, $user) = fields(access_line($id2 // 'none'));
is_deeply [$st, $route, $user], [404, '/products/{id}/', '-'],
    'pattern, not the URL; "-" for no user';

$r = api(GET => '/nothing/here/');
($st, $uid, $route, $user) = fields(access_line(rid($r) // 'none'));
is_deeply [$st, $route], [404, 'other'], 'an unknown path is route "other"';

$r = api(GET => '/cart/');
is $r->{status}, 401, 'no token: 401';
ok defined rid($r), '401 answers have Ecom-Request-Id';

my %ids = map { (rid(api(GET => '/health/')) // '') => 1 } 1 .. 5;
is scalar(keys %ids), 5, 'ids differ between requests';
ok !exists $ids{''}, 'every answer has one';

# --- an error the module logs, with the same id in the error log ----------------------
my $from = error_log_size();
$r = api(POST => '/payments/webhook/', body => { id => 'evt_x', type => 'payment.succeeded' },
         headers => { 'Ecom-Signature' => 't=1,v1=00' });
is $r->{status}, 400, 'a webhook with a bad signature: 400 (logged as ECOM0208)';
my $hid = rid($r);
my $deadline = time + 5;
my $err = '';
until ($err =~ /ECOM0208/ || time > $deadline) { sleep 0.1; $err = error_log_text($from) // '' }
my ($line) = grep { /ECOM0208/ } split /\n/, $err;
ok $line, 'the module logged the refusal' or diag $err;
like $line // '', qr/\[req \Q$hid\E\]/, 'its error-log line carries the answer\'s Ecom-Request-Id';
($st, $uid, $route) = fields(access_line($hid));
is_deeply [$st, $route], [400, '/payments/webhook/'], 'and the access log the same request';

# --- without mod_unique_id ------------------------------------------------------------------
SKIP: {
    my ($port) = $ENV{ECOM_URL} =~ /:(\d+)$/;
    my $h = spare_httpd(fixed_ports => [$port + 100], conf => <<"CONF");
ErrorLogFormat "[%l] [req\\ %-L] %M"
LogLevel info ecom:trace1
DBDriver pgsql
DBDParams "host=127.0.0.1 port=$ENV{PGPORT} dbname=ecom user=ecom connect_timeout=2"
DBDMin 0
<Location "/">
    SetHandler ecom
</Location>
CONF
    skip "cannot run a spare apache2: $h", 4 unless ref $h && $h->{started};
    my $base = "http://127.0.0.1:$h->{ports}[0]";
    my $a = api(GET => '/nowhere/', base => $base);
    is $a->{status}, 404, 'spare server without mod_unique_id: 404';
    my $sid = rid($a);
    ok defined $sid && length $sid, "Ecom-Request-Id is httpd's own log id ("
        . ($sid // 'none') . ')';
    my $b = rid(api(GET => '/nowhere/', base => $base));
    isnt $b, $sid, 'and differs between requests';
    my $log = '';
    my $until = time + 5;
    until ($log =~ /ECOM0202/ || time > $until) {
        sleep 0.1;
        $log = slurp_file($h->{error_log}) // '';
    }
    like $log, qr/\[req \Q$sid\E\] .*ECOM0202/, 'the error log (%L) has the same id';
    $h->{stop}->();
}

my $took = time - $t0;
diag sprintf 't/62-logs.t took %.1f s', $took;
cmp_ok $took, '<=', 20, 'within its 20 s budget';
done_testing;
