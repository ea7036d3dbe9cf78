#!/usr/bin/perl
# The recommendations' refresh (issue 10): ecom_recs_refresh() of
# sql/021_recommendations.sql, scripts/ecom-admin recs-refresh and the
# mod_watchdog job of EcomRecsRefreshInterval.
# - two refreshes at once (a psql session holding one open, and
#   ecom-admin): one runs, the other says "already running" at once;
#   while the first is open, readers (SQL and the API) see the old set
#   whole, and after its commit the new set whole;
# - without --force a refresh right after another is skipped;
# - the watchdog of a spare httpd with EcomRecsRefreshInterval 2 refreshes
#   by itself (a run of trigger 'watchdog'), and several of its rounds
#   within the interval's 9/10 do not run twice;
# - a bad EcomRecsRefreshInterval refuses to start.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use EcomTest;
use EcomAdmin;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $w = 'rf' . join '', map { chr(97 + int rand 26) } 1 .. 8;

# two products bought together, so the refresh has neighbours to write
my $a = create_product(name => "Refresh A $w", stock => 50);
my $b = create_product(name => "Refresh B $w", stock => 50);
{
    my $u = register_user();
    api(POST => '/cart/', token => $u->{token}, body => { product_id => $_->{id}, quantity => 1 }) for $a, $b;
    my $o = api(POST => '/orders/', token => $u->{token});
    die "checkout: $o->{status}\n" unless $o->{status} == 201;
    my $pay = api(POST => "/orders/$o->{json}{id}/payments/", token => $u->{token}, body => { token => 'tok_ok' });
    die "pay: $pay->{status}\n" unless $pay->{status} == 201;
}

my $r = ecom_admin('recs-refresh', '--force');
is $r->{rc}, 0, 'ecom-admin recs-refresh --force: exit 0' or diag $r->{err};
like $r->{err}, qr/neighbours: \d+ rows/, 'it shows each step as it ends (progress)';
like $r->{err}, qr/refreshed in [\d.]+ s: (\d+) neighbours, \d+ user picks, \d+ popular/, '... and a summary';
my $runs = psql_value("SELECT count(*) FROM rec_refresh_runs WHERE trigger = 'admin'");
ok $runs >= 1, 'the run is recorded';
like psql_value("SELECT run_by FROM rec_refresh_runs ORDER BY id DESC LIMIT 1"), qr/^ecom-admin /, '... by whom';

$r = ecom_admin('recs-refresh');
is $r->{rc}, 0, 'right after: exit 0';
like $r->{err}, qr/skipped/, '... skipped without --force (the last run is too recent)';
is psql_value("SELECT count(*) FROM rec_refresh_runs WHERE trigger = 'admin'"), $runs, '... and nothing recorded';
is ecom_admin('recs-refresh', '--similar-budget', 'x')->{rc}, 1, 'a bad --similar-budget: exit 1';

# --- two refreshes at once -----------------------------------------------------
# After the first refresh, a new pair (C bought with A) that only the next
# refresh shows.
my $c = create_product(name => "Refresh C $w", stock => 50);
for (1 .. 3) {
    my $u = register_user();
    api(POST => '/cart/', token => $u->{token}, body => { product_id => $_->{id}, quantity => 1 }) for $a, $c;
    my $o = api(POST => '/orders/', token => $u->{token});
    api(POST => "/orders/$o->{json}{id}/payments/", token => $u->{token}, body => { token => 'tok_ok' });
}
my $before_n = psql_value('SELECT count(*) FROM rec_item_neighbours');
my $before_first = api(GET => "/products/$a->{id}/recommendations/?limit=1")->{json}{items}[0]{id};
is $before_first, $b->{id}, 'before: A\'s first neighbour is B';

# session 1 refreshes and keeps its transaction (and the lock) open 4 s
my $held = fork // die "fork: $!";
if (!$held) {
    exec 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c',
        "BEGIN; SELECT status FROM ecom_recs_refresh('admin', NULL, 'psql session 1'); "
        . "SELECT pg_sleep(4); COMMIT;";
    exit 127;
}
# wait until session 1 holds the lock (its refresh has run)
my $deadline = time + 60;
sleep 0.2 until psql_value("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 7316021 AND granted") > 0
    || time > $deadline;
my $t0 = time;
$r = ecom_admin('recs-refresh', '--force');
my $took = time - $t0;
is $r->{rc}, 3, 'a second refresh meanwhile: exit 3';
like $r->{err}, qr/already running/, '... "already running"';
cmp_ok $took, '<', 3, '... at once, not after the first one';
is psql_value("SELECT status FROM ecom_recs_refresh('watchdog', NULL)"), 'already running',
    'the watchdog\'s call too';
is psql_value('SELECT count(*) FROM rec_item_neighbours'), $before_n,
    'meanwhile readers see the old set whole';
is api(GET => "/products/$a->{id}/recommendations/?limit=1")->{json}{items}[0]{id}, $b->{id},
    '... through the API too';
waitpid $held, 0;
is $?, 0, 'session 1 committed';
is api(GET => "/products/$a->{id}/recommendations/?limit=1")->{json}{items}[0]{id}, $c->{id},
    'after its commit the new set: C (three customers) before B (one)';
is psql_value("SELECT count(*) FROM rec_item_neighbours n WHERE NOT EXISTS "
              . "(SELECT 1 FROM rec_item_neighbours m WHERE m.product_id = n.product_id AND m.rank = n.rank - 1) "
              . "AND n.rank > 1"), 0, 'ranks have no holes (no half-written product)';

# --- the watchdog ----------------------------------------------------------------
SKIP: {
    my $db = "host=$ENV{PGHOST} port=$ENV{PGPORT} dbname=$ENV{PGDATABASE} user=$ENV{PGUSER}";
    my $last = psql_value('SELECT COALESCE(max(id), 0) FROM rec_refresh_runs');
    my $h = spare_httpd(conf => <<"CONF");
DBDriver pgsql
DBDParams "$db options='-c statement_timeout=5000'"
EcomRecsRefreshInterval 2
EcomPurgeInterval 0
EcomPaymentTimeout 0
<Location "/api">
    SetHandler ecom
</Location>
CONF
    skip "no spare httpd: $h", 4 unless ref $h;
    ok $h->{started}, 'a spare httpd with EcomRecsRefreshInterval 2 starts' or diag $h->{syntax}, $h->{start_output};
    my $until = time + 30;
    my $got = 0;
    while (time < $until) {
        $got = psql_value("SELECT count(*) FROM rec_refresh_runs WHERE trigger = 'watchdog' AND id > $last");
        last if $got >= 2;
        sleep 0.5;
    }
    cmp_ok $got, '>=', 1, 'the watchdog refreshes by itself';
    my $gaps = psql_value("SELECT COALESCE(min(started_at - lag), interval '1 hour') > interval '1.7 seconds' FROM "
                          . "(SELECT started_at, lag(finished_at) OVER (ORDER BY id) AS lag FROM rec_refresh_runs "
                          . "WHERE id > $last) x WHERE lag IS NOT NULL");
    is $gaps, 't', 'never two runs closer than 9/10 of the interval';
    $h->{stop}->();
    my $log = slurp_file($h->{error_log}) // '';
    unlike $log, qr/ECOM1102/, 'no refresh failed (ECOM1102)';
}

my $bad = spare_httpd(start => 0, conf => "EcomRecsRefreshInterval -1\n");
SKIP: {
    skip "no spare httpd: $bad", 2 unless ref $bad;
    ok !$bad->{syntax_ok}, 'EcomRecsRefreshInterval -1 refuses the configuration';
    like $bad->{syntax}, qr/EcomRecsRefreshInterval must be an integer from 0 to 604800/, '... saying why';
}

done_testing;
