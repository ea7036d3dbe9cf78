#!/usr/bin/perl
# Every list statement reads through an index (issue 8): each statement the
# module registers with ECOM_STMT_LIST, as ecom-status shows it, is
# EXPLAINed under a generic plan (what mod_dbd's prepared statements get
# with the shipped plan_cache_mode) with the parameters kept below for its
# label, on a scratch database of some size (30,000 products, 40,000
# orders of 2,000 users, 40,000 feed events). A sequential scan of a table
# of 10,000 rows or more fails, and so does a list statement this file has
# no parameters for. Some cases also name the index they must use: a
# user's orders through orders_user, never a walk of every order
# (GET /orders/ once had one statement with "user_id = $1 OR $2").
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $DB = 'ecom_plans';
my $LARGE = 10_000;

# --- the statements, from the operator view ------------------------------------
my $st = api(GET => '/ecom-status');
is $st->{status}, 200, 'ecom-status answers' or BAIL_OUT('no ecom-status');
my %list;
for my $res (@{ $st->{json}{resources} // [] }) {
    for my $p (@{ $res->{prepared} // [] }) {
        ok defined $p->{label} && defined $p->{sql}, "a prepared statement of $res->{name} has a label and its SQL";
        $list{ $p->{label} } = $p->{sql} if $p->{list};
    }
}
ok scalar(keys %list) >= 10, 'the module registers its list statements (' . scalar(keys %list) . ')';
ok !grep({ !/\bLIMIT\b/i } values %list), 'every list statement has a LIMIT';

# --- the scratch database --------------------------------------------------------
sub as_postgres {
    my ($sql) = @_;
    system('psql', '-XAtq', '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', $sql) == 0
        or die "psql as postgres failed: $sql\n";
}
as_postgres("DROP DATABASE IF EXISTS $DB");
as_postgres("CREATE DATABASE $DB OWNER " . ($ENV{PGUSER} // 'ecom'));
END { eval { as_postgres("DROP DATABASE IF EXISTS $DB") } if $DB }
{
    local $ENV{PGDATABASE} = $DB;
    my $out = `bash @{[ ecom_root() ]}/scripts/migrate.sh 2>&1`;
    is $?, 0, 'the migrations apply to the scratch database' or diag $out;
}

sub db {
    my ($sql) = @_;
    local $ENV{PGDATABASE} = $DB;
    return psql_value($sql);
}
db(<<'SQL');
INSERT INTO categories (slug, name) SELECT 'cat-' || g, 'Category ' || g FROM generate_series(1, 20) g;
INSERT INTO products (sku, name, description, price, currency, stock, active, category_id)
SELECT 'PLAN-' || g, 'Plan product ' || g, 'A mug, a lamp or a chair number ' || g,
       100 + (g * 37) % 100000, 'GBP', (g % 7) * 3, g % 50 <> 0,
       (SELECT id FROM categories ORDER BY id OFFSET (g % 20) LIMIT 1)
  FROM generate_series(1, 30000) g;
INSERT INTO users (email, name, password_hash)
SELECT 'plan-' || g || '@example.com', 'Plan user ' || g, 'x' FROM generate_series(1, 2000) g;
INSERT INTO orders (user_id, status, currency, subtotal, discount, total)
SELECT (SELECT min(id) FROM users) + (g % 1999),
       (ARRAY['pending','paid','shipped','delivered','cancelled','refunded'])[1 + g % 6],
       'GBP', 1000, 0, 1000
  FROM generate_series(1, 40000) g;
INSERT INTO events (type, order_id, actor, data)
SELECT (ARRAY['order.created','payment.succeeded','refund.created','shipment.shipped'])[1 + g % 4],
       (SELECT min(id) FROM orders) + g % 40000, 'system', '{}'::jsonb
  FROM generate_series(1, 40000) g;
ANALYZE;
SQL
my $uid = db('SELECT max(id) FROM users');   # user 2000: holds no orders
my $busy = db('SELECT user_id FROM orders GROUP BY user_id ORDER BY count(*) DESC LIMIT 1');
my $oid = db('SELECT min(id) + 20000 FROM orders');
my $pid = db('SELECT min(id) + 15000 FROM products');
my $eid = db('SELECT min(id) + 30000 FROM events');
my %rows = map { split /\|/ } split /\n/, db(
    "SELECT c.relname || '|' || c.reltuples::bigint FROM pg_class c "
    . "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'");
ok $rows{products} >= $LARGE && $rows{orders} >= $LARGE && $rows{events} >= $LARGE,
    'products, orders and events are large tables here';

# --- the parameters of each list statement ------------------------------------------
# label => [ [ what, [ parameters, in placeholder order ], index it must use (optional) ] ]
my $F0 = [ (undef) x 10 ];   # LIST_FILTERS: category, min, max, in_stock, q (each twice)
sub filters { my %f = @_; [ map { ($_, $_) } @f{qw(category min max in_stock q)} ] }
my %cases = (
    ecom_orders_mine => [
        [ 'a user without orders', [ $uid, undef, 21 ], 'orders_user' ],
        [ 'a busy user, second page', [ $busy, $oid, 21 ], 'orders_user' ] ],
    ecom_orders_mine_status => [
        [ 'a user without orders, status paid', [ $uid, 'paid', undef, 21 ], 'orders_user' ] ],
    ecom_orders_all => [
        [ 'staff, first page', [ undef, 21 ] ],
        [ 'staff, deep page', [ $oid, 21 ] ] ],
    ecom_orders_all_status => [
        [ 'staff, status refunded', [ 'refunded', undef, 21 ] ] ],
    ecom_products_i => [ [ 'first page', [ undef, 21 ] ], [ 'deep page', [ $pid, 21 ] ] ],
    ecom_products_n => [ [ 'newest first', [ undef, 21 ] ] ],
    ecom_products_p => [ [ 'by price', [ undef, undef, 21 ] ] ],
    ecom_products_d => [ [ 'by price, descending', [ undef, undef, 21 ] ] ],
    ecom_products_fi => [
        [ 'min_price', [ @{ filters(min => 90000) }, undef, 21 ] ],
        [ 'category', [ @{ filters(category => 'cat-3') }, undef, 21 ] ],
        [ 'q', [ @{ filters(q => 'lamp') }, undef, 21 ] ],
        [ 'in_stock', [ @{ filters(in_stock => 'true') }, undef, 21 ] ] ],
    ecom_products_fn => [ [ 'max_price, newest', [ @{ filters(max => 500) }, undef, 21 ] ] ],
    ecom_products_fp => [ [ 'category by price', [ @{ filters(category => 'cat-3') }, undef, undef, 21 ] ] ],
    ecom_products_fd => [ [ 'min_price by price desc', [ @{ filters(min => 50000) }, undef, undef, 21 ] ] ],
    ecom_events => [ [ 'the whole feed', [ undef, 21 ] ], [ 'a deep page', [ $eid, 21 ] ] ],
    ecom_events_t => [ [ 'one type', [ 'payment.succeeded', undef, 21 ] ] ],
    ecom_events_k => [ [ 'one kind', [ 'refund.', 'refund/', undef, 21 ] ] ],
    ecom_events_o => [ [ 'one order', [ $oid, undef, 21 ], 'events_order' ] ],
    ecom_events_ot => [ [ 'one order, one type', [ $oid, 'order.created', undef, 21 ], 'events_order' ] ],
    ecom_events_ok => [ [ 'one order, one kind', [ $oid, 'order.', 'order/', undef, 21 ], 'events_order' ] ],
    ecom_categories_tree => [ [ 'the tree', [ 10000 ] ] ],
);
my @missing = grep { !$cases{$_} } sort keys %list;
is_deeply \@missing, [], 'every list statement has parameters here' or diag "no cases for: @missing";

sub literal {
    my ($v) = @_;
    return 'NULL' unless defined $v;
    return $v if $v =~ /\A-?\d+\z/;
    $v =~ s/'/''/g;
    return "'$v'";
}
# every scan node of a plan: [node type, relation, index name]
sub scans {
    my ($node, $out) = @_;
    push @$out, [ $node->{'Node Type'}, $node->{'Relation Name'} // '', $node->{'Index Name'} // '' ]
        if $node->{'Node Type'} =~ /Scan/;
    scans($_, $out) for @{ $node->{Plans} // [] };
    return $out;
}

for my $label (sort keys %list) {
    my $sql = $list{$label};
    my $n = 0;
    $sql =~ s/%s/'$' . ++$n/ge;
    for my $case (@{ $cases{$label} // [] }) {
        my ($what, $args, $index) = @$case;
        is scalar @$args, $n, "$label ($what): $n parameters" or next;
        my $json = db("SET plan_cache_mode = force_generic_plan; PREPARE s AS $sql; "
                      . 'EXPLAIN (FORMAT JSON) EXECUTE s(' . join(', ', map { literal($_) } @$args) . ')');
        my $plan = eval { JSON::PP->new->decode($json)->[0]{Plan} };
        ok $plan, "$label ($what): EXPLAIN gives a plan" or do { diag $json; next };
        my $scans = scans($plan, []);
        my @seq = grep { $_->[0] eq 'Seq Scan' && ($rows{ $_->[1] } // 0) >= $LARGE } @$scans;
        ok !@seq, "$label ($what): no sequential scan of a large table"
            or diag "seq scan of @{[ map { $_->[1] } @seq ]}: " . join('; ', map { "@$_" } @$scans);
        if ($index) {
            ok grep({ $_->[2] eq $index } @$scans), "$label ($what): reads through $index"
                or diag join('; ', map { "@$_" } @$scans);
        }
    }
}

done_testing;
