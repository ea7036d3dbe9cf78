#!/usr/bin/perl
# The directive documentation follows the module (as mod_auth_openidc's
# test/check_conf_reference.sh holds its reference config to its code):
#  - README.md's directive table lists exactly the directives `apache2 -L`
#    lists for the built module, each with the same default, range (the
#    integer directives' "min..max" from the help text, which ecom_config.c
#    makes from its table) and context;
#  - conf/ecom.conf, the shipped reference configuration, has a line for
#    every directive (commented out is fine), with its default value when the
#    default is a single value;
#  - README.md, docs/ and conf/ name no Ecom* directive that does not exist.
# On drift it fails with a list of every difference.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

my $dirs = module_directives();
plan skip_all => "cannot list the module's directives: $dirs" unless ref $dirs;
my $root = ecom_root();

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or die "$f: $!\n";
    local $/;
    return <$fh>;
}

# --- README.md's table ------------------------------------------------------
my $readme = slurp("$root/README.md");
my ($section) = $readme =~ /^## Directives\n(.*?)(?=^## )/ms;
ok defined $section, 'README.md has a "## Directives" section' or BAIL_OUT('no directive section in README.md');
my @lines = grep { /^\|/ } split /\n/, $section;
my @head = cells(shift @lines // '');
shift @lines;    # | --- | --- |
is_deeply \@head, [qw(directive syntax default range context description)],
    "the table's columns are: directive, syntax, default, range, context, description";

# a table row's cells, "\|" kept as "|", backticks and outer spaces dropped
sub cells {
    my ($line) = @_;
    $line =~ s/^\|//;
    $line =~ s/\|\s*$//;
    my @c = split /(?<!\\)\|/, $line, -1;
    for (@c) { s/\\\|/|/g; s/`//g; s/^\s+|\s+$//g; s/\s+/ /g }
    return @c;
}

my %doc;
for my $l (@lines) {
    my %row;
    @row{@head} = cells($l);
    $doc{ $row{directive} } = \%row;
}

my @diff;
for my $name (sort keys %$dirs) {
    my $m = $dirs->{$name};
    my $d = $doc{$name} or do { push @diff, "$name: listed by apache2 -L, missing from README.md's table"; next };
    my $range = defined $m->{min} ? "$m->{min} .. $m->{max}" : '';
    my %want = (default => $m->{default} // '(none in the help text)', range => $range,
                context => $m->{context});
    for my $col (qw(default range context)) {
        push @diff, "$name $col: README.md says '$d->{$col}', the module says '$want{$col}'"
            if $d->{$col} ne $want{$col};
    }
    push @diff, "$name syntax: README.md's '$d->{syntax}' does not start with the directive"
        unless $d->{syntax} =~ /^\Q$name\E /;
}
push @diff, "$_: in README.md's table, not a directive of the module (apache2 -L)"
    for grep { !$dirs->{$_} } sort keys %doc;
ok !@diff, 'README.md\'s directive table and the module agree ('
           . scalar(keys %$dirs) . ' directives: names, defaults, ranges, contexts)'
    or diag join "\n", 'README.md and apache2 -L differ:', map { "  $_" } @diff;

# --- conf/ecom.conf, the reference configuration -----------------------------
my $conf = slurp("$root/conf/ecom.conf");
my @cdiff;
for my $name (sort keys %$dirs) {
    my $def = $dirs->{$name}{default} // '';
    my @at = $conf =~ /^[#\s]*\Q$name\E(?:\s+(\S.*?))?\s*$/mg;
    if (!@at) {
        push @cdiff, "$name: no line in conf/ecom.conf (add '#$name"
                     . ($def =~ /^\S+$/ ? " $def" : ' ...') . "')";
    }
    elsif ($def =~ /^\S+$/ && !grep { defined && $_ eq $def } @at) {
        push @cdiff, "$name: conf/ecom.conf has '" . join("', '", map { $_ // '' } @at)
                     . "', not the default '$def'";
    }
}
ok !@cdiff, 'conf/ecom.conf has every directive, with its default'
    or diag join "\n", 'conf/ecom.conf and apache2 -L differ:', map { "  $_" } @cdiff;

# --- no stale directive names in the documentation ---------------------------
# (names of other kinds that look like directives: mod_status's ?auto keys
# of the cache's report, ecom_cache.c, and of the metrics', ecom_metrics.c;
# t/lib/EcomLoad.pm, the load generator of t/64 and make soak)
my %not_directives = map { $_ => 1 } qw(EcomCacheStatus EcomCacheProvider
    EcomCacheHits EcomCacheMisses EcomCacheStores EcomCacheInvalidationsCatalog
    EcomCacheInvalidationsCategories EcomCacheInvalidationsReviews
    EcomCacheInvalidations EcomCacheErrors
    EcomMetrics EcomRequests EcomDbErrors EcomDbAcquireFailures EcomDbPoolWaits
    EcomDbPoolWaitSeconds EcomOrdersCreated EcomPaymentsSucceeded EcomRefunds
    EcomJobFailures EcomLoad);
my @stale;
# (files only: conf/www/ is the example page, conf/www/* is searched too)
for my $f (sort(grep { -f } glob("$root/README.md $root/docs/*.md $root/conf/* $root/conf/www/*"))) {
    my $text = slurp($f);
    (my $short = $f) =~ s/^\Q$root\E\///;
    my %seen;
    push @stale, "$short names $_, which is not a directive"
        for grep { !$dirs->{$_} && !$not_directives{$_} && !$seen{$_}++ } $text =~ /\b(Ecom[A-Z][A-Za-z]*)\b/g;
}
ok !@stale, 'README.md, docs/ and conf/ name only existing Ecom* directives'
    or diag join "\n", map { "  $_" } @stale;

done_testing;
