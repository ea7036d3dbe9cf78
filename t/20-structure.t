#!/usr/bin/perl
# The module's structure, checked: resources plug in through the registry
# (the operator view lists every route, and the OpenAPI document has
# exactly those), the operator handler sits behind httpd's Require, the
# layers include only downwards (no cycles; the data layer renders nothing;
# the httpd-free core includes no httpd header), a transaction body cannot
# return a renderer's HTTP status (it does not compile), GET /categories/
# (a resource added as one file plus one registry line) and its cache
# section, and routing decisions logged at LogLevel ecom:trace1.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use EcomTest;

my $root = ecom_root();
my $src = "$root/mod_ecom";

# --- static: the include graph ---------------------------------------------------
my %inc;
opendir my $dh, $src or die "$src: $!";
my @files = sort grep { /\.[ch]\z/ } readdir $dh;
for my $f (@files) {
    open my $fh, '<', "$src/$f" or die "$f: $!";
    $inc{$f} = [ map { /^\s*#\s*include\s+"([^"]+)"/ ? $1 : () } <$fh> ];
}
# headers reachable from each header; a cycle is a header reaching itself
my %seen_cycle;
for my $h (grep { /\.h\z/ } @files) {
    my %reach;
    my @todo = @{ $inc{$h} };
    while (defined(my $x = shift @todo)) {
        next if $reach{$x}++;
        push @todo, @{ $inc{$x} || [] };
    }
    ok !$reach{$h}, "no include cycle through $h";
}
sub includes_transitively {
    my ($f, $target) = @_;
    my %reach;
    my @todo = @{ $inc{$f} || [] };
    while (defined(my $x = shift @todo)) {
        return 1 if $x eq $target;
        next if $reach{$x}++;
        push @todo, @{ $inc{$x} || [] };
    }
    return 0;
}
sub text_of { open my $fh, '<', "$src/$_[0]" or die; local $/; my $t = <$fh>; $t =~ s{/\*.*?\*/}{}gs; $t }
for my $f (qw(ecom_db.c ecom_db.h ecom_err.c ecom_err.h ecom_req.h)) {
    ok !includes_transitively($f, 'ecom_http.h'), "data layer: $f does not include ecom_http.h";
    unlike text_of($f), qr/\becom_(?:problem|problem_with|json|fail|invalid|no_content)\s*\(/,
        "data layer: $f calls no renderer";
}
# the core: what the unit tests link (CORE_SRC in the Makefile)
my $mtext = slurp_file("$root/Makefile") // die "Makefile: $!";
$mtext =~ s/\\\n/ /g;
my ($core) = $mtext =~ /^CORE_SRC\s*:=\s*(.*)$/m;
my @core = map { m{([^/\s]+)\.c\z} ? $1 : () } split ' ', $core // '';
ok @core >= 3, 'the Makefile names the httpd-free core (' . join(' ', @core) . ')';
for my $c (@core) {
    for my $f ("$c.c", "$c.h") {
        next unless -f "$src/$f";
        my @sys = do { open my $fh, '<', "$src/$f"; map { /^\s*#\s*include\s+<([^>]+)>/ ? $1 : () } <$fh> };
        my @bad = grep { /^(?:httpd|http_|apr|apu|mod_|util_|ap_)/ } (@sys, @{ $inc{$f} });
        ok !@bad, "core: $f includes no httpd or APR header" or diag "@bad";
        my %core_h = map { ("$_.h" => 1) } @core;
        ok !grep({ !$core_h{$_} } @{ $inc{$f} }),
            "core: $f includes only core headers" or diag "@{ $inc{$f} }";
    }
}
# the router and the data layer know no resource by name
for my $f (qw(ecom_router.c ecom_db.c)) {
    unlike text_of($f), qr/\becom_(?:products|cart|orders|auth|categories|misc|status)_(?:resource|sql)\b|\becom_(?:product|cart|order)_[a-z]+\s*\(/,
        "$f names no resource";
}

# --- a transaction body cannot return an HTTP status -------------------------------
SKIP: {
    my $apxs = `command -v apxs 2>/dev/null`; chomp $apxs;
    skip 'apxs not found', 2 unless $apxs;
    chomp(my $cc = `apxs -q CC`);
    my @flags = ('-std=gnu11', '-fsyntax-only', '-Wall', '-Werror', "-I$src",
                 '-I' . `apxs -q INCLUDEDIR`, split(' ', `apr-1-config --includes` . ' ' . `apu-1-config --includes`),
                 '-I' . `pg_config --includedir`);
    chomp @flags;
    my $dir = tempdir(CLEANUP => 1);
    my $head = qq{#include "ecom_db.h"\n#include "ecom_http.h"\n};
    my %case = (
        good => "static ecom_tx_end body(ecom_req *q, void *c)\n{\n    ecom_problem(q, 409, \"conflict\", \"x\");\n    return ECOM_TX_REFUSE;\n}\n",
        bad  => "static ecom_tx_end body(ecom_req *q, void *c)\n{\n    return ecom_problem(q, 409, \"conflict\", \"x\");\n}\n",
    );
    for my $k (sort keys %case) {
        open my $fh, '>', "$dir/$k.c" or die;
        print $fh $head, $case{$k}, "ecom_err run(ecom_req *q);\necom_err run(ecom_req *q) { return ecom_db_tx(q, body, NULL); }\n";
        close $fh;
    }
    my $good = `$cc @flags $dir/good.c 2>&1`;
    is $?, 0, 'a transaction body that sets a problem and returns ECOM_TX_REFUSE compiles' or diag $good;
    my $bad = `$cc @flags $dir/bad.c 2>&1`;
    ok $? != 0 && $bad =~ /incompatible types|incompatible type/,
        'a transaction body returning ecom_problem()\'s status does not compile' or diag $bad;
}

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};
(my $origin = $ENV{ECOM_URL}) =~ s{^(https?://[^/]+).*}{$1};

# --- the operator view ------------------------------------------------------------
my $st = api(GET => '/ecom-status', base => $origin);
is $st->{status}, 200, 'SetHandler ecom-status answers an allowed client';
my $resources = ref $st->{json} eq 'HASH' ? $st->{json}{resources} : undef;
ok ref $resources eq 'ARRAY' && @$resources >= 8, 'it lists the registered resources';
my %res = map { $_->{name} => $_ } @{ $resources || [] };
ok $res{categories} && $res{products} && $res{orders}, 'products, orders and categories are registered';
is $st->{json}{config}{cache_ttl}, 5, 'it shows the resolved EcomCacheTTL (default 5)';
is $st->{json}{config}{webhook_tolerance}, 300, 'and EcomWebhookTolerance (default 300)';
is $st->{json}{config}{payment_provider}, 'sandbox', 'and EcomPaymentProvider (default sandbox)';
is $st->{json}{config}{payment_timeout}, 1800, 'and EcomPaymentTimeout (default 1800)';
is $st->{json}{config}{max_pending_orders}, 3, 'and EcomMaxPendingOrders (default 3)';
ok exists $st->{json}{config}{webhook_secret} && !grep({ defined && /[0-9a-f]{32}/ } values %{ $st->{json}{config} }),
   'whether a webhook secret is set, never its value';
is $st->{headers}{'cache-control'}, 'no-store', 'never cached';
my $denied = api(GET => '/ecom-status-denied', base => $origin);
is $denied->{status}, 403, "behind 'Require all denied' httpd answers 403 itself";
unlike $denied->{content}, qr/"resources"/, 'and nothing of the view leaks';
is api(POST => '/ecom-status', base => $origin, body => {})->{status}, 405, 'POST is 405';
my $c0 = $st->{json}{cache};
ok $c0 && is_true($c0->{enabled}), 'the view shows the response cache';
my $u0 = uniq();
api(GET => "/products/?limit=2&q=nothing$u0") for 1 .. 5;
my $c1 = api(GET => '/ecom-status', base => $origin)->{json}{cache};
is(($c1->{hits} + $c1->{misses}) - ($c0->{hits} + $c0->{misses}), 5,
   'five list requests count five lookups (hits + misses), across children');
is $c1->{misses} - $c0->{misses}, 1, 'one of them a miss (the first)';
is api(GET => '/status/')->{status}, 404, 'the operator route is not part of the API';

# every API route is in the OpenAPI document, and every documented operation is a route
my $doc = api(GET => '/openapi.json')->{json};
my %documented;
for my $p (keys %{ $doc->{paths} || {} }) {
    (my $norm = $p) =~ s/\{[^}]+\}/{id}/g;
    $documented{uc($_) . " $norm"} = 1 for grep { /^(?:get|post|patch|put|delete)\z/ } keys %{ $doc->{paths}{$p} };
}
my %routed;
for my $r (map { @{ $_->{routes} } } @{ $resources || [] }) {
    next if $r->{auth} eq 'operator';
    my $p = $r->{path} eq '/openapi.json/' ? '/openapi.json' : $r->{path};
    $p =~ s/\{[^}]+\}/{id}/g;   # "{slug}" too, as the documented paths
    $routed{"$r->{method} $p"} = 1;
}
is_deeply [sort keys %routed], [sort keys %documented], 'the routes and the OpenAPI operations are the same set';

# --- GET /categories/ ----------------------------------------------------------------
# (the tree, its writes and its counts in depth: t/42-categories.t)
my $u = uniq();
my $parent = "t-parent-$u";
my $child = "t-child-$u";
psql_do("INSERT INTO categories (slug, name) VALUES ('$parent', 'Parent $u')");
psql_do("INSERT INTO categories (slug, name, parent_id) SELECT '$child', 'Child $u', id FROM categories WHERE slug = '$parent'");
# every node of the tree, depth first
sub all_categories {
    my $r = api(GET => '/categories/');
    return [] unless $r->{status} == 200 && ref $r->{json}{items} eq 'ARRAY';
    my @out;
    my @todo = @{ $r->{json}{items} };
    while (my $n = shift @todo) { push @out, $n; unshift @todo, @{ $n->{children} || [] } }
    return \@out;
}
my ($c) = grep { $_->{slug} eq $child } @{ all_categories() };
ok $c, 'a new category is in the tree';
is $c->{parent}, $parent, 'with its parent slug';
is $c->{product_count}, 0, 'and no products yet';
my $p = create_product(category => $child);
my ($c2) = grep { $_->{slug} eq $child } @{ all_categories() };
is $c2->{product_count}, 1, 'a product created in it counts at once (its route invalidates the categories section)';
my ($p2) = grep { $_->{slug} eq $parent } @{ all_categories() };
is $p2->{product_count}, 1, 'and in its parent (the subtree count)';
my $st2 = api(PATCH => "/products/$p->{id}/", token => scalar staff_token(), body => { active => JSON::PP::false() });
is $st2->{status}, 200, 'deactivate it';
($c2) = grep { $_->{slug} eq $child } @{ all_categories() };
is $c2->{product_count}, 0, 'an inactive product is not counted';
ok is_problem(api(POST => '/categories/', body => { slug => "x-$u", name => 'X' }), 401),
    'POST /categories/ without a token is 401 (staff only)';

# --- trace logs of routing decisions -------------------------------------------------
my $from = error_log_size();
is api(GET => '/products/?limit=1', base => "$origin/traced")->{status}, 200, 'the API under /traced/';
is api(GET => '/nope/', base => "$origin/traced")->{status}, 404, 'an unknown path there';
my $log;
for (1 .. 50) { $log = error_log_text($from) // ''; last if $log =~ /ECOM0202/; select undef, undef, undef, 0.1 }
like $log, qr/\[ecom:trace1\].*ECOM0204: GET "products" -> products\.list \(auth none/, 'trace1 logs the route chosen';
like $log, qr/\[ecom:trace1\].*ECOM0202: no route for "nope"/, 'and the path that has none';
my $quiet = error_log_size();
api(GET => '/products/?limit=1');
unlike error_log_text($quiet) // '', qr/ECOM0204/, 'not at the default level';

done_testing;
