#!/usr/bin/perl
# Runs the C unit tests of the httpd-free layer (t/unit/unit_tests.c, built
# with ASan/UBSan by `make unit`) and passes their TAP through.
use strict;
use warnings;
use FindBin ();
my $root = $ENV{ECOM_ROOT} || "$FindBin::Bin/..";
my $bin = "$root/build/unit_tests";
if (!-x $bin) {
    system('make', '-s', '-C', $root, 'build/unit_tests') == 0
        or do { print "1..1\nnot ok 1 - build unit tests\n"; exit 1 };
}
exec $bin or die "cannot run $bin: $!";
