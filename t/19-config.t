#!/usr/bin/perl
# Directives and memory, checked in throwaway apache2 servers (spare_httpd):
# the limits are the operator's, so a .htaccess file may not set them; and a
# request body costs memory by its size, not by the largest size allowed.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $pgport = $ENV{PGPORT} // 55432;
my $h = spare_httpd(modules => ['alias'], conf => <<"CONF");
DBDriver pgsql
DBDParams "host=127.0.0.1 port=$pgport dbname=ecom user=ecom connect_timeout=2"
DBDMin 0
Alias /ht/ "\@DIR\@/ht/"
<Directory "\@DIR\@/ht">
    AllowOverride All
    Require all granted
</Directory>
CONF
plan skip_all => "cannot run a spare apache2: $h" unless ref $h;
ok $h->{started}, 'the spare apache2 starts' or diag(($h->{syntax} // '') . ($h->{start_output} // ''));
BAIL_OUT('the spare apache2 did not start') unless $h->{started};

# --- no limits from .htaccess ------------------------------------------------------
my %htaccess = (
    EcomMaxBodySize => 1073741824,
    EcomMaxAnonBodySize => 1048576,
    EcomPageSize    => 1000,
    EcomPageSizeMax => 1000,
    EcomCurrency    => 'USD',
);
my $base = "http://127.0.0.1:$h->{ports}[0]";
for my $d (sort keys %htaccess) {
    my $dir = "$h->{dir}/ht/$d";
    mkdir "$h->{dir}/ht";
    mkdir $dir;
    for ([ '.htaccess', "$d $htaccess{$d}\n" ], [ 'x.txt', "static\n" ]) {
        open my $fh, '>', "$dir/$_->[0]" or die "$dir/$_->[0]: $!\n";
        print $fh $_->[1];
        close $fh;
        chmod 0644, "$dir/$_->[0]";
    }
    chmod 0755, "$h->{dir}/ht", $dir;
    my $from = -s $h->{error_log} // 0;
    my $r = api(GET => "/ht/$d/x.txt", base => $base);
    is $r->{status}, 500, "$d in .htaccess is a configuration error (500)";
    my $text = slurp_file($h->{error_log}, $from) // '';
    like $text, qr/\Q$d\E not allowed here/, "error.log says $d is not allowed in .htaccess";
}

$h->{stop}->();

# --- EcomMaxAnonBodySize: range and relation to EcomMaxBodySize ------------------
for my $c ([ "EcomMaxBodySize 4096\n    EcomMaxAnonBodySize 8192", qr/may not exceed EcomMaxBodySize/ ],
           [ "EcomMaxAnonBodySize 8192\n    EcomMaxBodySize 4096", qr/may not exceed EcomMaxBodySize/ ],
           [ "EcomMaxAnonBodySize 100", qr/EcomMaxAnonBodySize must be an integer from 512/ ],
           [ "EcomMaxAnonBodySize 4096\n    EcomMaxBodySize 4096", undef ]) {
    my ($body, $err) = @$c;
    (my $show = $body) =~ s/\s+/ /g;
    my $t = spare_httpd(start => 0, conf => "<Location \"/\">\n    SetHandler ecom\n    $body\n</Location>\n");
    plan skip_all => "cannot run a spare apache2: $t" unless ref $t;
    if ($err) {
        ok !$t->{syntax_ok}, "apache2 -t refuses '$show'";
        like $t->{syntax}, $err, 'with a message naming the directive';
    } else {
        ok $t->{syntax_ok}, "apache2 -t accepts '$show'" or diag $t->{syntax};
    }
}

# --- a small body does not reserve EcomMaxBodySize ---------------------------------
# One child process; EcomMaxBodySize at its largest (1 GiB). The child's peak
# virtual size (VmPeak) must not jump by the limit when a small body comes in.
my $m = spare_httpd(conf => <<"CONF");
DBDriver pgsql
DBDParams "host=127.0.0.1 port=$pgport dbname=ecom user=ecom connect_timeout=2"
DBDMin 0
<Location "/">
    SetHandler ecom
    EcomMaxBodySize 1073741824
</Location>
CONF
ok ref $m && $m->{started}, 'a spare apache2 with EcomMaxBodySize 1 GiB starts'
    or BAIL_OUT('the spare apache2 did not start: ' . (ref $m ? ($m->{syntax} // '') : $m));

# VmPeak in KiB of the child of parent pid $ppid
sub child_peak {
    my ($ppid) = @_;
    for my $st (glob '/proc/[0-9]*/status') {
        open my $fh, '<', $st or next;
        my $t = do { local $/; <$fh> } // '';
        next unless $t =~ /^PPid:\s+$ppid$/m;
        return $1 if $t =~ /^VmPeak:\s+(\d+) kB/m;
    }
    return undef;
}

my $mbase = "http://127.0.0.1:$m->{ports}[0]";
my $u = register_user();
# warm up: the child's database connection, prepared statements, threads
for (1 .. 3) {
    api(GET => '/health/', base => $mbase);
    api(GET => '/cart/', base => $mbase, token => $u->{token});
}
my $before = child_peak($m->{pid});
ok defined $before, "the child's VmPeak is readable ($before kB)" or BAIL_OUT('no child process');
my @bodies = (
    [ 'a small body', { product_id => 999999999, quantity => 1 } ],
    [ 'a small chunked body', do { my @p = ('{"product_id": 999999999,', ' "quantity": 1}'); sub { shift @p } } ],
    [ 'a chunked body of 200 KiB', do {
        my @p = ('{"product_id": 999999999, "quantity": 1, "pad": "', ('x' x 4096) x 50, '"}');
        sub { shift @p } } ],
);
for my $b (@bodies) {
    my $r = api(POST => '/cart/', base => $mbase, token => $u->{token}, body => $b->[1]);
    is $r->{status}, 404, "POST /cart/ with $b->[0] is read (404: no such product)" or diag $r->{content};
}
my $after = child_peak($m->{pid});
my $grew = ($after // 0) - $before;
cmp_ok $grew, '<', 64 * 1024, "the bodies did not reserve the 1 GiB limit (VmPeak grew by $grew kB)";
$m->{stop}->();

done_testing;
