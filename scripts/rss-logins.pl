#!/usr/bin/perl
# scripts/rss-logins.pl --base URL --pid PARENT [-n 1000] [-c 16] [--no-retry] [--json]
#
# What password hashing leaves resident in httpd's children: registers one
# user, then makes n successful logins with c concurrent clients (a 503 from
# EcomArgon2MaxInFlight is retried after 20 ms, so n logins really run;
# with --no-retry it is counted and the client goes on: a burst of n),
# and prints each child's VmRSS and VmHWM (peak) from /proc/PID/status
# before and after, in MiB. --json prints one JSON object instead, for
# t/47-throttle.t. Needs to read /proc of the children (root, or the same
# user). Each argon2id hashing takes 19 MiB (ecom_crypto.h).
use strict;
use warnings;
use Getopt::Long;
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time sleep);

my ($base, $pid, $n, $c, $json, $noretry) = (undef, undef, 1000, 16, 0, 0);
GetOptions('base=s' => \$base, 'pid=i' => \$pid, 'n=i' => \$n, 'c=i' => \$c,
           'json' => \$json, 'no-retry' => \$noretry) && $base && $pid
    or die "usage: $0 --base URL --pid PARENT [-n 1000] [-c 16] [--json]\n";

sub children {
    map { /(\d+)/ ? $1 : () } split /\n/, `ps -o pid= --ppid $pid`;
}

sub mem {
    my %m;
    for my $k (children()) {
        open my $fh, '<', "/proc/$k/status" or next;
        while (<$fh>) {
            $m{$k}{rss} = sprintf '%.1f', $1 / 1024 if /^VmRSS:\s+(\d+)/;
            $m{$k}{hwm} = sprintf '%.1f', $1 / 1024 if /^VmHWM:\s+(\d+)/;
        }
    }
    return \%m;
}

my $J = JSON::PP->new->canonical;
my $ua = HTTP::Tiny->new(timeout => 60, keep_alive => 0);
my $email = sprintf 'rss-%d-%d@example.com', $$, time * 1000;
my $pw = 'rss password 0123';
my $res;
for (1 .. 50) {
    $res = $ua->post("$base/auth/register/", { headers => { 'content-type' => 'application/json' },
                     content => $J->encode({ email => $email, password => $pw }) });
    last unless $res->{status} == 503;
    sleep 0.05;
}
die "register: $res->{status} $res->{content}\n" unless $res->{status} == 201;

my $before = mem();
my $t0 = time;
require File::Temp;
my $dir = File::Temp::tempdir(CLEANUP => 1);
my @kids;
for my $w (0 .. $c - 1) {
    my $k = fork // die "fork: $!";
    if (!$k) {
        my $u = HTTP::Tiny->new(timeout => 60, keep_alive => 0);
        my ($ok, $busy, $bad) = (0, 0, 0);
        for (my $i = $w; $i < $n; $i += $c) {
            while (1) {
                my $r = $u->post("$base/auth/login/", { headers => { 'content-type' => 'application/json' },
                                 content => $J->encode({ email => $email, password => $pw }) });
                if ($r->{status} == 503) { $busy++; last if $noretry; sleep 0.02; next }
                if ($r->{status} == 200) { $ok++ }
                else { $bad++; warn "login: $r->{status} " . substr($r->{content} // '', 0, 200) . "\n" if $bad <= 3 }
                last;
            }
        }
        if (open my $fh, '>', "$dir/$w") { print $fh "$ok $busy\n"; close $fh }
        POSIX::_exit($bad ? 1 : 0);
    }
    push @kids, $k;
}
my $failed = 0;
for (@kids) { waitpid $_, 0; $failed++ if $? }
die "$failed clients saw logins fail (not 200 nor 503)\n" if $failed;
my $secs = time - $t0;
my ($ok, $busy) = (0, 0);
for my $w (0 .. $c - 1) {
    open my $fh, '<', "$dir/$w" or next;
    my ($o, $b) = split ' ', <$fh> // '0 0';
    $ok += $o;
    $busy += $b;
}
sleep 1;
my $after = mem();
my %out = (logins => $n, ok => $ok, busy => $busy, clients => $c, seconds => sprintf('%.1f', $secs),
           per_second => sprintf('%.0f', $n / ($secs || 1)),
           before => $before, after => $after);
if ($json) {
    print $J->encode(\%out), "\n";
    exit 0;
}
printf "%d logins (%d ran, %d answered 503 busy), %d clients, %.1f s (%.0f/s)\n",
    $n, $ok, $busy, $c, $secs, $n / ($secs || 1);
for my $k (sort { $a <=> $b } keys %$after) {
    printf "child %d: VmRSS %s MiB before, %s MiB after (peak VmHWM %s MiB)\n", $k,
        $before->{$k}{rss} // '?', $after->{$k}{rss}, $after->{$k}{hwm};
}
