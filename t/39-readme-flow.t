#!/usr/bin/perl
# README.md's order lifecycle walk-through (between <!-- flow:start --> and
# <!-- flow:end -->) runs as written against the test server: every line
# that ends in "# value" must print exactly that value, in order. So the
# README cannot drift from the API.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $root = ecom_root();
my $readme = slurp_file("$root/README.md") // die "README.md: $!";
my ($block) = $readme =~ /<!-- flow:start -->\s*```sh\n(.*?)```\s*<!-- flow:end -->/s;
ok defined $block, 'README.md has the flow block' or BAIL_OUT('no flow block in README.md');

# what the block promises: the comment of each line that prints a value
my @want;
for my $line (split /\n/, $block) {
    next if $line =~ /^\s*#/ || $line =~ />\s*\/dev\/null/;
    push @want, $1 if $line =~ /\|\s*field\b[^#]*#\s*(\S.*?)\s*$/;
}
cmp_ok scalar @want, '>=', 10, 'the block promises at least 10 printed values';

my $p = create_product(price => 2500, stock => 100);
my $script = "set -eu -o pipefail\ncd '$root'\n$block";
my $out = do {
    local $ENV{API} = base_url();
    local $ENV{P} = $p->{id};
    open my $run, '-|', 'bash', '-c', $script or die "bash: $!";
    local $/; my $o = <$run>; close $run;
    is $?, 0, 'the block runs to the end without an error';
    $o // '';
};
my @got = split /\n/, $out;
is_deeply \@got, \@want, 'every printed value is the one the README says'
    or diag "got:\n$out";
is psql_value("SELECT stock FROM products WHERE id = $p->{id}"), 100 - 2 * 3,
    'stock: 3 orders kept their units (delivered, refunded, paid), the cancelled one came back';

done_testing;
