#!/usr/bin/perl
# scripts/soak.pl: the measuring half of `make soak` (scripts/soak.sh starts
# the servers and describes the run and its pass criteria). Needs ECOM_URL,
# ECOM_RUNDIR and the PG* variables of the soak cluster.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Time::HiRes qw(time sleep);
use List::Util qw(max sum);
use EcomLoad qw(load_start load_wait load_kill load_run summarize percentile fmt_counts);
use EcomTest qw(api uniq psql_value);

$| = 1;
my $root = "$FindBin::Bin/..";
my $minutes = $ENV{ECOM_SOAK_MINUTES} // 30;
my $blip_every = $ENV{ECOM_SOAK_BLIP_MINUTES} // 5;
my $share = $ENV{ECOM_SOAK_LOAD} // 0.5;
my $W = $ENV{ECOM_SOAK_WORKERS} // 8;
my $rundir = $ENV{ECOM_RUNDIR} // die "ECOM_RUNDIR is not set\n";
for ($minutes, $blip_every, $W) { die "ECOM_SOAK_*: whole numbers >= 1\n" unless /^\d+$/ && $_ >= 1 }
die "ECOM_SOAK_LOAD: a share of saturation, 0 < x <= 1\n" unless $share =~ /^[\d.]+$/ && $share > 0 && $share <= 1;

my $load;
END { load_kill($load) }
$SIG{$_} = sub { exit 1 } for qw(INT TERM HUP);

# --- the shop: products that cannot sell out, one user per worker ----------
psql_value(q{INSERT INTO products (sku, name, description, price, currency, stock)
             SELECT 'SOAK-' || g, 'Soak product ' || g, 'made by scripts/soak.pl',
                    200 + 13 * g, 'GBP', 100000000 FROM generate_series(1, 20) g});
my @products = split ' ', psql_value(q{SELECT string_agg(id::text, ' ') FROM products WHERE sku LIKE 'SOAK-%'});
my @tokens;
for (1 .. $W) {
    my $r = api(POST => '/auth/register/', body => { email => 'soak-' . uniq() . '@example.com',
                                                     password => 'soak password ' . uniq() });
    die "register: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    push @tokens, $r->{json}{token};
}
my %lo = (url => $ENV{ECOM_URL}, tokens => \@tokens, products => \@products, mix => 'shop', workers => $W);

my $sat = summarize(load_run(%lo, rate => 0, duration => 5));
my $rate = $share * $sat->{rate};
printf "saturation %.0f requests/s (p99 %.1f ms); soak at %.0f %%: %.0f/s for %d min, PostgreSQL restarted every %d min (at %d:30, ...)\n",
    $sat->{rate}, 1000 * $sat->{p99}, 100 * $share, $rate, $minutes, $blip_every, $blip_every;

sub httpd_pids {
    open my $fh, '<', "$rundir/httpd.pid" or return ();
    chomp(my $pp = <$fh> // '');
    return () unless $pp =~ /^\d+$/;
    return ($pp, grep { /^\d+$/ } split ' ', `ps -o pid= --ppid $pp`);
}
sub fds { my $n = 0; for my $p (@_) { opendir my $d, "/proc/$p/fd" or next; $n += grep { !/^\./ } readdir $d } $n }
# rss('VmRSS' | 'RssAnon', pids): the children's resident memory, all of it
# or only the private part (heap, pools, stacks: where a leak shows, not
# library pages touched for the first time)
sub rss {
    my ($what, @pids) = @_;
    my @r;
    for my $p (@pids) {
        open my $fh, '<', "/proc/$p/status" or next;
        while (<$fh>) { if (/^\Q$what\E:\s+(\d+)/) { push @r, $1; last } }
    }
    return @r;
}

my @rows;
my %status_all;
my $bad = 0;
printf "%-4s %7s %7s %8s %8s %6s %8s %8s %8s  %s\n", 'min', 'answers', 'req/s', 'p50 ms', 'p99 ms', 'fds',
    'rss med', 'rss max', 'anon med', 'answers by status';
for my $m (0 .. $minutes - 1) {
    my $t0 = time;
    $load = load_start(%lo, rate => $rate, duration => 60);
    my $blip = '';
    if ($m > 0 && $m % $blip_every == 0) {
        sleep 30;
        my $tb = time;
        system("bash '$root/scripts/pg.sh' restart >/dev/null 2>&1") == 0 or warn "pg.sh restart failed\n";
        $blip = sprintf ' (PostgreSQL restarted at %d:30, %.1f s)', $m, time - $tb;
    }
    my $rec = load_wait($load);
    undef $load;
    my ($parent, @kids) = httpd_pids();
    my $s = summarize($rec);
    my @r = rss(VmRSS => @kids);
    my @a = rss(RssAnon => @kids);
    my $row = { m => $m + 1, n => $s->{n}, rate => $s->{n} / (time - $t0), p50 => $s->{p50} // 0,
                p99 => $s->{p99} // 0, fds => fds(grep { defined } $parent, @kids),
                rss_med => percentile(50, @r) // 0, rss_max => max(@r, 0),
                anon_med => percentile(50, @a) // 0, lat => [ map { $_->{lat} } @$rec ] };
    push @rows, $row;
    $status_all{$_} += $s->{by_status}{$_} for keys %{ $s->{by_status} };
    my $errs = sum(0, values %{ $s->{errors} });
    my $fives = grep { $_->{status} =~ /^5/ && $_->{status} != 503 } @$rec;
    $bad += $errs + $fives;
    printf "%-4d %7d %7.0f %8.1f %8.1f %6d %8d %8d %8d  %s%s%s\n", $row->{m}, $row->{n}, $row->{rate},
        1000 * $row->{p50}, 1000 * $row->{p99}, $row->{fds}, $row->{rss_med}, $row->{rss_max}, $row->{anon_med},
        fmt_counts($s->{by_status}), $errs ? ' connection errors ' . fmt_counts($s->{errors}) : '', $blip;
}

# --- verdict -------------------------------------------------------------------
my $win = $minutes >= 15 ? 5 : max(1, int($minutes / 3));
my @first = @rows[0 .. $win - 1];
my @last = @rows[-$win .. -1];
my $p99_first = percentile(99, map { @{ $_->{lat} } } @first);
my $p99_last = percentile(99, map { @{ $_->{lat} } } @last);
my $fd_first = max(map { $_->{fds} } @first);
my $fd_last = max(map { $_->{fds} } @last);
my $rss_first = max(map { $_->{rss_med} } @first);
my $rss_end = $rows[-1]{rss_med};
my @fail;
push @fail, "$bad answers were a 5xx other than 503 or a failed connection" if $bad;
push @fail, 'p99 grew more than twice' if $p99_last > 2 * $p99_first;
push @fail, 'file descriptors grew' if $fd_last > $fd_first * 1.1 + 10;
push @fail, 'child RSS grew' if $rss_end > $rss_first * 1.1 + 2048;
printf "answers by status over the run: %s\n", fmt_counts(\%status_all);
printf "p99: first %d min %.1f ms, last %d min %.1f ms (limit %.1f ms)\n", $win, 1000 * $p99_first, $win,
    1000 * $p99_last, 2000 * $p99_first;
printf "httpd file descriptors: first %d min at most %d, last %d min at most %d (limit %.0f)\n", $win, $fd_first,
    $win, $fd_last, $fd_first * 1.1 + 10;
printf "median child RSS: first %d min at most %d kB, at the end %d kB (limit %.0f kB)\n", $win, $rss_first,
    $rss_end, $rss_first * 1.1 + 2048;
if (@fail) {
    print 'SOAK FAILED: ', join('; ', @fail), "\n";
    exit 1;
}
print "SOAK PASSED\n";
