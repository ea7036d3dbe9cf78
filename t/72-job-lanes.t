#!/usr/bin/perl
# The background jobs' two watchdogs (mod_ecom.c): the long jobs
# (recommendations refresh, dynamic pricing, search statistics) run on a
# watchdog thread of their own, "mod_ecom-long", so that a refresh which
# takes a minute, or waits on a lock, never holds back the short ones on
# "mod_ecom": here the payment timeout cancels an overdue order while the
# watchdog's refresh waits on a table lock another session holds. With
# every job on one thread (before), the order stayed pending as long as
# the lock.
#
# A scratch database of its own, so that this server's short payment
# timeout sees no other test's orders.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;
use POSIX ();
use Time::HiRes qw(time sleep);

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $name = 'ecom_lanes';
my $sq = scratch_database($name);
my $TIMEOUT = 4;                              # EcomPaymentTimeout below
my $INTERVAL = 2;                             # min(60, timeout / 2)
my $slack = $ENV{ECOM_SANITIZED} ? 10 : 5;
my $db = "host=$ENV{PGHOST} port=$ENV{PGPORT} dbname=$name user=$ENV{PGUSER}";

my $h = spare_httpd(conf => <<"CONF");
LogLevel info watchdog:debug
DBDriver pgsql
DBDParams "$db"
EcomRecsRefreshInterval 1
EcomPurgeInterval 0
EcomPaymentTimeout $TIMEOUT
<Location "/">
    SetHandler ecom
</Location>
CONF
plan skip_all => "no spare httpd: $h" unless ref $h;
ok $h->{started}, "a spare httpd with EcomRecsRefreshInterval 1 and EcomPaymentTimeout $TIMEOUT starts"
    or BAIL_OUT(($h->{syntax} // '') . ($h->{start_output} // ''));
my $base = "http://127.0.0.1:$h->{ports}[0]";

# a pending order of a customer of the scratch shop
$sq->("INSERT INTO products (sku, name, price, currency, stock) VALUES ('LANE-1', 'Lane mug', 500, 'GBP', 10)");
my $pid = $sq->("SELECT id FROM products WHERE sku = 'LANE-1'");
my $reg = api(POST => '/auth/register/', base => $base,
              body => { email => 'lanes-' . uniq() . '@example.com', password => $EcomTest::PASSWORD });
is $reg->{status}, 201, 'a customer registers' or diag $reg->{content};
my $token = $reg->{json}{token};
my $add = api(POST => '/cart/', base => $base, token => $token, body => { product_id => $pid + 0, quantity => 2 });
is $add->{status}, 201, 'adds two mugs to the cart' or diag $add->{content};
my $order = api(POST => '/orders/', base => $base, token => $token);
is $order->{status}, 201, 'and checks out: a pending order' or diag $order->{content};
my $oid = $order->{json}{id} // 0;
is $sq->("SELECT stock FROM products WHERE id = $pid"), 8, 'the order holds 2 of the 10 mugs';

# the lock: rec_item_neighbours, which every refresh rewrites
my $locker = fork // die "fork: $!\n";
if (!$locker) {
    $ENV{PGAPPNAME} = 'ecom-t72-locker';
    $ENV{PGDATABASE} = $name;
    open STDERR, '>', '/dev/null';    # its end below is a terminated backend
    { exec 'psql', '-X', '-q', '-c',
          'BEGIN; LOCK TABLE rec_item_neighbours IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;' }
    POSIX::_exit(127);
}
sub unlock {
    return unless $locker;
    $sq->("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'ecom-t72-locker'");
    kill 'TERM', $locker;
    waitpid $locker, 0;
    $locker = 0;
}
END { unlock() }

# the refresh of the long jobs' watchdog runs every second: it soon waits
my $refresh_waits = sub {
    $sq->("SELECT count(*) FROM pg_stat_activity WHERE datname = '$name' AND wait_event_type = 'Lock' "
          . "AND query LIKE '%ecom_recs_refresh%'");
};
my $until = time + 20;
sleep 0.2 until $refresh_waits->() > 0 || time > $until;
ok $refresh_waits->() > 0, 'the watchdog\'s recommendations refresh waits on the locked table';

# now the order is overdue; the short jobs' watchdog looks every 2 s
$sq->("UPDATE orders SET created_at = now() - interval '1 hour' WHERE id = $oid");
my $t0 = time;
$until = $t0 + $INTERVAL + $slack;
sleep 0.2 until $sq->("SELECT status FROM orders WHERE id = $oid") ne 'pending' || time > $until;
my $took = time - $t0;
is $sq->("SELECT status FROM orders WHERE id = $oid"), 'cancelled',
   sprintf('while the refresh waits, the overdue order is cancelled (after %.1f s; at most %d)', $took, $INTERVAL + $slack);
is $sq->("SELECT stock FROM products WHERE id = $pid"), 10, '... and its mugs are back in stock';
is $sq->("SELECT actor FROM order_events WHERE order_id = $oid AND to_status = 'cancelled'"), 'system',
   '... by the module (actor system)';
ok $refresh_waits->() > 0, 'the refresh was still waiting then (the two jobs ran at once)';

unlock();
# once the lock is gone the refresh ends, on its own thread
$until = time + 20;
sleep 0.2 until $sq->("SELECT count(*) FROM rec_refresh_runs WHERE trigger = 'watchdog'") > 0 || time > $until;
ok $sq->("SELECT count(*) FROM rec_refresh_runs WHERE trigger = 'watchdog'") > 0,
   'after the lock, the watchdog\'s refresh completes';

$h->{stop}->();
my $log = slurp_file($h->{error_log}) // '';
like $log, qr/Watchdog \(mod_ecom\) running/, 'the error log shows the short jobs\' watchdog running';
like $log, qr/Watchdog \(mod_ecom-long\) running/, '... and the long jobs\' one';
like $log, qr/ECOM0901/, 'the cancellation is logged (ECOM0901)';

done_testing;
