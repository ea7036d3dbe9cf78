#!/usr/bin/perl
# Directives checked in a throwaway apache2 (spare_httpd): the limits are the
# operator's, so a .htaccess file may not set them.
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
    EcomPageSize    => 1000,
    EcomPageSizeMax => 1000,
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
    open my $log, '<', $h->{error_log} or die "$h->{error_log}: $!\n";
    seek $log, $from, 0;
    my $text = do { local $/; <$log> } // '';
    like $text, qr/\Q$d\E not allowed here/, "error.log says $d is not allowed in .htaccess";
}

$h->{stop}->();
done_testing;
