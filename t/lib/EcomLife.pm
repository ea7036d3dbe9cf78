package EcomLife;
# Helpers shared by the order lifecycle tests (t/33-36): an order placed
# through the API, and make_paid_sql(), which pays it with SQL because the
# payment endpoint is built on another branch (issue 7). Once POST
# /orders/{id}/payments/ is merged, make_paid_sql can become a tok_ok
# payment through the API; its callers only need an order that is paid.
use strict;
use warnings;
use Exporter 'import';
use EcomTest;

our @EXPORT = qw(make_paid_sql place_order address order_of);

# A valid shipping address, with overrides.
sub address {
    my (%o) = @_;
    return { name => 'Ada Lovelace', line1 => '12 Rue de Rivoli',
             city => 'Paris', postal_code => '75001', country => 'FR', %o };
}

# place_order($user, price => 1000, stock => 10, quantity => 2,
#             address => {...} | undef, products => [$p, ...])
# Returns (order json, product json). Dies unless checkout is 201.
sub place_order {
    my ($u, %o) = @_;
    my $p = $o{product} // create_product(price => $o{price} // 1000,
                                          stock => $o{stock} // 10);
    my $r = api(POST => '/cart/', token => $u->{token},
                body => { product_id => $p->{id}, quantity => $o{quantity} // 2 });
    die "add to cart: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    my %body;
    $body{shipping_address} = $o{address} if exists $o{address} && defined $o{address};
    $body{shipping_address} = address() unless exists $o{address};
    $r = api(POST => '/orders/', token => $u->{token}, body => \%body);
    die "checkout: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    return ($r->{json}, $p);
}

# Pays order $id as the sandbox provider's tok_ok would: a succeeded
# payment of the total, status paid, paid_amount = total, and the
# pending -> paid event with actor 'user', in one transaction.
sub make_paid_sql {
    my ($id) = @_;
    die "bad id\n" unless $id =~ /\A\d+\z/;
    psql_do(<<"SQL");
INSERT INTO payments (order_id, provider, status, amount, currency)
    SELECT id, 'sandbox', 'succeeded', total, currency FROM orders
    WHERE id = $id AND status = 'pending';
WITH m AS (UPDATE orders SET status = 'paid', paid_amount = total,
                             updated_at = now()
           WHERE id = $id AND status = 'pending' RETURNING id, user_id)
INSERT INTO order_events (order_id, actor_id, from_status, to_status, actor)
    SELECT id, user_id, 'pending', 'paid', 'user' FROM m;
SQL
    my $st = psql_value("SELECT status FROM orders WHERE id = $id");
    die "make_paid_sql: order $id is $st\n" unless $st eq 'paid';
}

sub order_of {
    my ($token, $id) = @_;
    return api(GET => "/orders/$id/", token => $token);
}

1;
