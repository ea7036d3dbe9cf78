#!/usr/bin/perl
# Concurrency: 40 customers check out the last 5 units at once; one customer
# repeats the same Idempotency-Key 10 times at once; one customer adds the
# same product 10 times at once. Stock never oversells, nothing is created
# twice, no 5xx.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $staff = staff_token();

sub summary { my %c; $c{ $_->{status} // 'error' }++ for @_; join ', ', map { "$_ x$c{$_}" } sort keys %c }

# --- 40 buyers, 5 units -------------------------------------------------------------
my $N = 40;
my $p = create_product(price => 1234, stock => 5, name => 'Scarce ' . uniq());
my $pid = $p->{id};
my @users = parallel($N, 0, sub {
    my $u = register_user();
    my $r = api(POST => '/cart/', token => $u->{token}, body => { product_id => $pid, quantity => 1 });
    die "add to cart: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    return { token => $u->{token}, id => $u->{id} };
});
my @setup_errors = grep { $_->{error} } @users;
is scalar @setup_errors, 0, "$N users registered and put 1 unit in their carts"
    or diag $setup_errors[0]{error};
is psql_value("SELECT count(*) FROM cart_items WHERE product_id = $pid"), $N, "$N cart lines hold the product";

my @res = parallel($N, 1, sub {
    my $r = api(POST => '/orders/', token => $users[$_[0]]{token});
    return { status => $r->{status}, id => (ref $r->{json} eq 'HASH' ? $r->{json}{id} : undef),
             type => (ref $r->{json} eq 'HASH' ? $r->{json}{type} : undef) };
});
my @created = grep { ($_->{status} // 0) == 201 } @res;
my @conflict = grep { ($_->{status} // 0) == 409 } @res;
is scalar @created, 5, 'exactly 5 concurrent checkouts got 201' or diag summary(@res);
is scalar @conflict, $N - 5, 'exactly 35 got 409' or diag summary(@res);
ok !grep({ ($_->{status} // 599) >= 500 } @res), 'no checkout got a 5xx (or no answer)' or diag summary(@res);
ok !grep({ ($_->{type} // '') ne 'urn:mod-ecom:problem:out-of-stock' } @conflict), 'every 409 is out-of-stock';
is psql_value("SELECT stock FROM products WHERE id = $pid"), 0, 'stock is 0 in the database';
is api(GET => "/products/$pid/")->{json}{stock}, 0, 'stock is 0 through the API';
is psql_value("SELECT count(DISTINCT order_id) FROM order_lines WHERE product_id = $pid"), 5,
    'exactly 5 orders contain the product';
is psql_value("SELECT coalesce(sum(quantity), 0) FROM order_lines WHERE product_id = $pid"), 5,
    'exactly 5 units were sold';
is_deeply [ sort { $a <=> $b } map { $_->{id} // 0 } @created ],
    [ split /\n/, psql_value("SELECT order_id FROM order_lines WHERE product_id = $pid ORDER BY order_id") ],
    'the 201 answers carry the ids of those orders';
is psql_value("SELECT count(*) FROM cart_items WHERE product_id = $pid"), $N - 5,
    'the 35 losers still have the product in their carts';

# --- one user, one Idempotency-Key, 10 at once -------------------------------------
{
    my $u = register_user();
    my $q = create_product(price => 700, stock => 100);
    my $r = api(POST => '/cart/', token => $u->{token}, body => { product_id => $q->{id}, quantity => 2 });
    is $r->{status}, 201, 'cart filled for the idempotency race';
    my $key = 'race-' . uniq();
    my @r = parallel(10, 1, sub {
        my $x = api(POST => '/orders/', token => $u->{token}, body => {},
                    headers => { 'Idempotency-Key' => $key });
        return { status => $x->{status}, replayed => $x->{headers}{'idempotent-replayed'},
                 id => (ref $x->{json} eq 'HASH' ? $x->{json}{id} : undef),
                 type => (ref $x->{json} eq 'HASH' ? $x->{json}{type} : undef) };
    });
    is psql_value("SELECT count(*) FROM orders WHERE user_id = $u->{id}"), 1, 'exactly one order was created';
    is psql_value("SELECT stock FROM products WHERE id = $q->{id}"), 98, 'stock decremented once';
    ok !grep({ my $s = $_->{status} // 0; $s != 201 && $s != 409 } @r), 'every answer is 201 or 409'
        or diag summary(@r);
    my @ok = grep { ($_->{status} // 0) == 201 } @r;
    ok @ok >= 1, 'at least one 201';
    my %ids = map { ($_->{id} // 'none') => 1 } @ok;
    is scalar keys %ids, 1, 'every 201 carries the same order id';
    my @fresh = grep { lc($_->{replayed} // '') ne 'true' } @ok;
    is scalar @fresh, 1, 'exactly one 201 is not a replay';
    ok !grep({ ($_->{status} // 0) == 409 && ($_->{type} // '') !~ /\Aurn:mod-ecom:problem:/ } @r),
        'the 409s are problem documents';
    my $again = api(POST => '/orders/', token => $u->{token}, body => {}, headers => { 'Idempotency-Key' => $key });
    is $again->{status}, 201, 'after the race, the key replays 201';
    is $again->{json}{id}, (keys %ids)[0], 'with the order id';
}

# --- one user adds the same product 10 times at once ---------------------------------------
{
    my $u = register_user();
    my $q = create_product(price => 50, stock => 100);
    my @r = parallel(10, 1, sub {
        my $x = api(POST => '/cart/', token => $u->{token}, body => { product_id => $q->{id}, quantity => 1 });
        return { status => $x->{status} };
    });
    ok !grep({ ($_->{status} // 599) >= 500 } @r), 'concurrent adds of one product: no 5xx' or diag summary(@r);
    my $n201 = grep { ($_->{status} // 0) == 201 } @r;
    is $n201, 10, 'all 10 concurrent adds are 201' or diag summary(@r);
    my $items = api(GET => '/cart/', token => $u->{token})->{json}{items} // [];
    is scalar @$items, 1, 'the cart has a single line for the product';
    is $items->[0]{quantity}, $n201, 'its quantity is the number of successful adds';
}

is api(GET => '/health/')->{status}, 200, 'server healthy after the races';

done_testing;
