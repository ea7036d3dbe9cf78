#!/usr/bin/perl
# A child that exits while a background job holds a database connection
# (ecom_db.c, "background jobs' connections and the child's exit"): the
# recommendations refresh of mod_watchdog is made to wait on a table lock
# another session holds, then the server is stopped. The child must give
# the connection back (its statement cancelled) before mod_dbd's pool goes:
# no apr_reslist assertion, no child killed by a signal, the parent gone
# in a few seconds, and the failed refresh logged (ECOM1102), not half
# written.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;
use POSIX ();
use Time::HiRes qw(time sleep);

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $db = "host=$ENV{PGHOST} port=$ENV{PGPORT} dbname=$ENV{PGDATABASE} user=$ENV{PGUSER}";
my $before = psql_value('SELECT count(*) FROM rec_item_neighbours');

# the lock: rec_item_neighbours, which the refresh rewrites, held for 60 s
my $locker = fork // die "fork: $!\n";
if (!$locker) {
    $ENV{PGAPPNAME} = 'ecom-t67-locker';
    open STDERR, '>', '/dev/null';    # its end below is a terminated backend
    { exec 'psql', '-X', '-q', '-c',
          'BEGIN; LOCK TABLE rec_item_neighbours IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;' }
    POSIX::_exit(127);
}
# ends the locking session (its backend, not only the psql client)
sub unlock {
    psql_value("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'ecom-t67-locker'");
    if ($locker) {
        kill 'TERM', $locker;
        waitpid $locker, 0;
        $locker = 0;
    }
}
END { unlock() if $locker; }
my $until = time + 10;
sleep 0.1 until time > $until || psql_value("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                                            . "WHERE c.relname = 'rec_item_neighbours' AND l.mode = 'AccessExclusiveLock' AND l.granted") > 0;

my $h = spare_httpd(conf => <<"CONF");
DBDriver pgsql
DBDParams "$db"
EcomRecsRefreshInterval 1
EcomPurgeInterval 0
EcomPaymentTimeout 0
<Location "/api">
    SetHandler ecom
</Location>
CONF
plan skip_all => "no spare httpd: $h" unless ref $h;
ok $h->{started}, 'a spare httpd with EcomRecsRefreshInterval 1 starts' or diag $h->{syntax}, $h->{start_output};

# the watchdog's refresh waits on the lock
my $waiting = 0;
$until = time + 20;
while (time < $until) {
    $waiting = psql_value("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                          . "AND query LIKE '%ecom_recs_refresh%'");
    last if $waiting > 0;
    sleep 0.2;
}
ok $waiting > 0, 'the watchdog\'s refresh waits on the locked table';

my $t0 = time;
$h->{stop}->();
my $took = time - $t0;
ok $took < 10, sprintf('the server stops in %.1f s (at most 10)', $took);
unlock();

my $log = slurp_file($h->{error_log}) // die "$h->{error_log}: $!\n";
unlike $log, qr/Assertion|reslist_cleanup/, 'no apr_reslist assertion at the child\'s exit';
unlike $log, qr/exit signal|AH00052/, 'no child ended by a signal';
like $log, qr/ECOM1102/, 'the cancelled refresh is logged as failed (ECOM1102)';
is psql_value("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%ecom_recs_refresh(%' AND pid <> pg_backend_pid()"),
   0, 'no refresh left running in PostgreSQL';
is psql_value('SELECT count(*) FROM rec_item_neighbours'), $before, 'the neighbours are as they were (nothing half-written)';

done_testing;
