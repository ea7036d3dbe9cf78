#!/usr/bin/perl
# Facets on the product list (issue 8, item 4): ?facets=category,price,
# in_stock adds the counts of what the list's pages hold, per category,
# per price bucket and in / out of stock, for the current filters. Without
# a price bound or q they come from product_facet_counts (sql/015), which a
# trigger on products keeps; with one they are counted over the matching
# products. Both are checked against what they must be, the table against
# a recount after every kind of product write (and so is sql/031's table of
# sold-out ids, which ?in_stock=false reads), and bad values of the
# parameter are 400.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $staff = staff_token();
my $u = uniq();
$u =~ s/[^a-z0-9]//g;
sub cat {
    my ($slug, $parent) = @_;
    my $r = api(POST => '/categories/', token => $staff,
                body => { slug => $slug, name => "Facet $slug", (parent => $parent) x !!$parent });
    is $r->{status}, 201, "category $slug created" or diag $r->{content};
}
my ($root, $ca, $cb) = ("fz$u", "fz$u-a", "fz$u-b");
cat($root);
cat($ca, $root);
cat($cb, $root);
my $word = 'zq' . join '', map { ('a' .. 'z')[rand 26] } 1 .. 9;
my %p;
$p{a1} = create_product(category => $ca, price => 100,   stock => 5, name => "Facet $word one");
$p{a2} = create_product(category => $ca, price => 600,   stock => 0, name => 'Facet two');
$p{a3} = create_product(category => $ca, price => 3000,  stock => 2, name => "Facet $word three");
$p{b1} = create_product(category => $cb, price => 700,   stock => 1, name => 'Facet four');
$p{b2} = create_product(category => $cb, price => 60000, stock => 9, name => "Facet $word five");

sub facets {
    my ($query) = @_;
    my $r = api(GET => "/products/?$query");
    is $r->{status}, 200, "GET /products/?$query" or diag $r->{content};
    return $r->{json}{facets};
}
# [counts per bucket 0..7]
sub buckets { [ map { $_->{count} } @{ $_[0]{price} // [] } ] }
sub cats { +{ map { $_->{slug} => $_->{count} } @{ $_[0]{category} // [] } } }

my $f = facets("category=$root&facets=category,price,in_stock");
is_deeply cats($f), { $ca => 3, $cb => 2 }, 'per category, over the subtree asked for';
is $f->{category}[0]{slug}, $ca, '... the largest first';
is_deeply buckets($f), [ 1, 2, 0, 1, 0, 0, 0, 1 ], 'per price bucket';
is_deeply [ map { [ $_->{min}, $_->{max} ] } @{ $f->{price} } ],
    [ [0, 500], [500, 1000], [1000, 2500], [2500, 5000], [5000, 10000], [10000, 25000], [25000, 50000], [50000, undef] ],
    'the buckets and their bounds';
is_deeply $f->{in_stock}, { true => 4, false => 1 }, 'in and out of stock';

$f = facets("category=$root&in_stock=true&facets=category,in_stock");
is_deeply cats($f), { $ca => 2, $cb => 2 }, 'with in_stock=true, per category';
is_deeply $f->{in_stock}, { true => 4, false => 0 }, '... and in stock';
ok !exists $f->{price}, 'only the facets asked for';

# a price bound or q: counted over the matching products
$f = facets("category=$root&min_price=500&facets=category,price,in_stock");
is_deeply cats($f), { $ca => 2, $cb => 2 }, 'min_price: per category';
is_deeply buckets($f), [ 0, 2, 0, 1, 0, 0, 0, 1 ], 'min_price: per bucket';
is_deeply $f->{in_stock}, { true => 3, false => 1 }, 'min_price: in stock';
$f = facets("q=$word&facets=category,price,in_stock");
is_deeply cats($f), { $ca => 2, $cb => 1 }, 'q: per category';
is_deeply buckets($f), [ 1, 0, 0, 1, 0, 0, 0, 1 ], 'q: per bucket';
$f = facets("q=$word&max_price=5000&sort=price&facets=price");
is_deeply buckets($f), [ 1, 0, 0, 1, 0, 0, 0, 0 ], 'q and max_price';

# the table follows every kind of product write
sub patch { my ($k, %b) = @_; my $r = api(PATCH => "/products/$p{$k}{id}/", token => $staff, body => \%b);
            is $r->{status}, 200, "PATCH $k " . join(',', %b) or diag $r->{content}; }
patch(a1 => price => 30000);        # bucket 0 -> 6
patch(a2 => stock_adjustment => 3);  # out -> in
patch(a3 => active => JSON::PP::false);
patch(b1 => category => $ca);
$f = facets("category=$root&facets=category,price,in_stock");
is_deeply cats($f), { $ca => 3, $cb => 1 }, 'after writes: per category';
is_deeply buckets($f), [ 0, 2, 0, 0, 0, 0, 1, 1 ], 'after writes: per bucket';
is_deeply $f->{in_stock}, { true => 4, false => 0 }, 'after writes: in stock';
# a checkout that sells the last unit moves the product out of stock
{
    my $tok = register_user()->{token};
    my $c = api(POST => '/cart/', token => $tok, body => { product_id => $p{b2}{id}, quantity => 9 });
    is $c->{status}, 201, 'the last 9 units in a cart' or diag $c->{content};
    my $o = api(POST => '/orders/', token => $tok);
    is $o->{status}, 201, 'checked out' or diag $o->{content};
    $f = facets("category=$root&facets=in_stock");
    is_deeply $f->{in_stock}, { true => 3, false => 1 }, 'a checkout selling out moves the product out of stock';
}

# ?in_stock=false by id or newest walks sql/031's product_sold_out, which
# triggers keep with the same writes
{
    my $r = api(GET => '/products/?in_stock=false&sort=newest&limit=100');
    is $r->{status}, 200, 'in_stock=false, newest first' or diag $r->{content};
    my @ids = map { $_->{id} } @{ $r->{json}{items} // [] };
    ok grep({ $_ == $p{b2}{id} } @ids), 'in_stock=false lists the product a checkout sold out';
    ok !grep({ $_ == $p{a2}{id} } @ids), '... not the one restocked';
    ok !grep({ $_->{stock} != 0 || !$_->{active} } @{ $r->{json}{items} // [] }), '... only active products of stock 0';
}
is psql_value(<<'SQL'), 0, 'product_sold_out holds exactly the products of stock 0';
SELECT count(*) FROM ((SELECT id FROM products WHERE stock = 0 EXCEPT SELECT id FROM product_sold_out)
                      UNION ALL (SELECT id FROM product_sold_out EXCEPT SELECT id FROM products WHERE stock = 0)) d
SQL

# the whole table equals a recount of every active product (after all the
# writes of the tests before this one, when run in the suite)
is psql_value(<<'SQL'), 0, 'product_facet_counts equals a recount of the active products';
SELECT count(*) FROM (
  (SELECT coalesce(category_id, 0), ecom_price_bucket(price), stock > 0, count(*)
     FROM products WHERE active GROUP BY 1, 2, 3
   EXCEPT SELECT category_id, bucket, in_stock, n FROM product_facet_counts WHERE n > 0)
  UNION ALL
  (SELECT category_id, bucket, in_stock, n FROM product_facet_counts WHERE n > 0
   EXCEPT SELECT coalesce(category_id, 0), ecom_price_bucket(price), stock > 0, count(*)
     FROM products WHERE active GROUP BY 1, 2, 3)) d
SQL

# bad values
for my $bad ('', 'colour', 'price,colour', ',', 'PRICE', "price\x00", "category\xc3\xa9") {
    (my $q = $bad) =~ s/([^A-Za-z0-9,])/sprintf '%%%02X', ord $1/ge;
    my $r = api(GET => "/products/?facets=$q");
    ok is_problem($r, 400, 'bad-request'), "facets=$q is 400" or diag "$r->{status} $r->{content}";
}
my $none = api(GET => '/products/?limit=1');
ok !exists $none->{json}{facets}, 'no facets unless asked for';

done_testing;
