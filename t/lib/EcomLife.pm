package EcomLife;
# Helpers shared by the order lifecycle tests (t/33-36): an order placed
# through the API, and pay_ok(), which pays it through the API (tok_ok).
use strict;
use warnings;
use Exporter 'import';
use EcomTest;

our @EXPORT = qw(pay_ok place_order address order_of);

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

# Pays order $id of $user through the API with the sandbox provider's
# tok_ok: a succeeded payment of the total, the order paid (actor user).
sub pay_ok {
    my ($u, $id) = @_;
    my $r = api(POST => "/orders/$id/payments/", token => $u->{token},
                body => { token => 'tok_ok' });
    die "pay_ok: order $id: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    return $r->{json};
}

sub order_of {
    my ($token, $id) = @_;
    return api(GET => "/orders/$id/", token => $token);
}

1;
