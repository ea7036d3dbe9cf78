#!/usr/bin/perl
# The address book (issue 9, part 5): GET/POST /auth/me/addresses/,
# GET/PATCH/DELETE /auth/me/addresses/{id}/: the order's shipping_address
# validation, one default (the first; switching unsets the other; deleting
# it promotes another; the database holds one per user), at most 20 per
# user (409), another user's address 404, and checkout copying the default
# address when the body names none (an explicit address wins).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $A = '/auth/me/addresses/';
my %home = (name => 'Ada Lovelace', line1 => '12 Rue de la Paix', city => 'Paris',
            postal_code => '75002', country => 'fr', phone => '+33 1 23 45 67 89');
my %work = (name => 'Ada L.', line1 => '1 Main St', line2 => 'Suite 5', city => 'Springfield',
            region => 'IL', postal_code => '62701', country => 'US');

my $u = register_user();
my $t = $u->{token};

# --- auth ---------------------------------------------------------------------
is_problem api(GET => $A), 401, 'unauthorized', 'GET without a token: 401';
is_problem api(POST => $A, body => \%home), 401, 'unauthorized', 'POST without a token: 401';
is_problem api(GET => "${A}1/"), 401, 'unauthorized', 'GET one without a token: 401';

# --- empty, create, first is default ---------------------------------------------
my $r = api(GET => $A, token => $t);
is $r->{status}, 200, 'GET /auth/me/addresses/: 200';
is_deeply $r->{json}, { items => [], next_cursor => undef }, 'empty list';

$r = api(POST => $A, token => $t, body => \%home);
is $r->{status}, 201, 'POST: 201';
my $h = $r->{json};
ok is_int($h->{id}), 'an id';
like $r->{headers}{location} // '', qr{/auth/me/addresses/$h->{id}/\z}, 'Location names it';
ok is_true($h->{is_default}), 'the first address is the default';
is $h->{country}, 'FR', 'country normalised as on orders';
is $h->{line1}, $home{line1}, 'fields kept';
ok !exists $h->{line2}, 'absent optional fields left out';
ok is_rfc3339($h->{created_at}) && is_rfc3339($h->{updated_at}), 'times';

$r = api(POST => $A, token => $t, body => { %work, is_default => JSON::PP::false });
is $r->{status}, 201, 'a second address';
my $w = $r->{json};
ok is_false($w->{is_default}), 'not the default';
is $w->{region}, 'IL', 'with its region';

$r = api(GET => "$A$h->{id}/", token => $t);
is $r->{status}, 200, 'GET one: 200';
is_deeply $r->{json}, $h, 'as created';
$r = api(GET => $A, token => $t);
is_deeply [ map { $_->{id} } @{ $r->{json}{items} } ], [ $h->{id}, $w->{id} ], 'both listed in id order';

# --- validation: the order's ------------------------------------------------------
$r = api(POST => $A, token => $t, body => { name => 'x' });
is_problem $r, 422, 'validation', 'missing fields: 422';
has_field_error $r, $_ for qw(line1 city postal_code country);
$r = api(POST => $A, token => $t, body => { %home, country => 'XX', phone => 'call me', user_id => 1 });
is_problem $r, 422, 'validation', 'bad values: 422';
has_field_error $r, 'country';
has_field_error $r, 'phone';
has_field_error $r, 'user_id', 'an unknown field is refused';
$r = api(POST => $A, token => $t, body => { %home, is_default => 'yes' });
has_field_error $r, 'is_default', 'is_default must be a boolean';
$r = api(POST => $A, token => $t, body => { %home, city => '   ' });
has_field_error $r, 'city', 'blank city refused';
is_problem api(POST => $A, token => $t, body => '{"name":'), 400, 'bad-request', 'malformed JSON: 400';
is psql_value("SELECT count(*) FROM addresses WHERE user_id = $u->{id}"), 2, 'nothing refused was stored';

# --- default switching --------------------------------------------------------------
$r = api(PATCH => "$A$w->{id}/", token => $t, body => { is_default => JSON::PP::true });
is $r->{status}, 200, 'PATCH is_default true: 200';
ok is_true($r->{json}{is_default}), 'it is the default';
is $r->{json}{line2}, 'Suite 5', 'its fields unchanged';
ok is_false(api(GET => "$A$h->{id}/", token => $t)->{json}{is_default}), 'the other is not any more';
is psql_value("SELECT count(*) FROM addresses WHERE user_id = $u->{id} AND is_default"), 1, 'one default in the database';
$r = api(PATCH => "$A$w->{id}/", token => $t, body => { is_default => JSON::PP::false });
is_problem $r, 422, 'validation', 'unsetting the default directly: 422';
has_field_error $r, 'is_default';
$r = api(POST => $A, token => $t, body => { %home, name => 'Third', is_default => JSON::PP::true });
is $r->{status}, 201, 'a new address as the default';
my $third = $r->{json};
ok is_true($third->{is_default}), 'is the default';
is psql_value("SELECT id FROM addresses WHERE user_id = $u->{id} AND is_default"), $third->{id},
    'and the only one';
{
    # psql's error on stderr is the expected refusal: keep it out of the output
    open my $saved, '>&', \*STDERR or die "dup: $!";
    open STDERR, '>', '/dev/null' or die "null: $!";
    my $ok = eval { psql_do("UPDATE addresses SET is_default = true WHERE user_id = $u->{id}"); 1 };
    open STDERR, '>&', $saved or die "restore: $!";
    ok !$ok, 'the database refuses two defaults for one user';
}

# --- PATCH fields -----------------------------------------------------------------------
$r = api(PATCH => "$A$w->{id}/", token => $t, body => { city => 'Chicago', line2 => undef });
is $r->{status}, 200, 'PATCH fields: 200';
is $r->{json}{city}, 'Chicago', 'city changed';
ok !exists $r->{json}{line2}, 'null removes an optional field';
is $r->{json}{line1}, $work{line1}, 'the rest kept';
$r = api(PATCH => "$A$w->{id}/", token => $t, body => { city => undef });
is_problem $r, 422, 'validation', 'null on a required field: 422';
has_field_error $r, 'city';
$r = api(PATCH => "$A$w->{id}/", token => $t, body => { country => 'ZZ', id => 5 });
has_field_error $r, 'country';
has_field_error $r, 'id', 'the id cannot be set';
is api(GET => "$A$w->{id}/", token => $t)->{json}{city}, 'Chicago', 'a refused PATCH changed nothing';

# --- another user's addresses --------------------------------------------------------------
my $eve = register_user();
for my $c ([GET => undef], [PATCH => { city => 'Evil' }], [DELETE => undef]) {
    my ($m, $body) = @$c;
    is_problem api($m => "$A$h->{id}/", token => $eve->{token}, ($body ? (body => $body) : ())), 404, 'not-found',
        "$m another user's address: 404";
}
is_problem api(PATCH => "$A$h->{id}/", token => $eve->{token}, body => { is_default => JSON::PP::true }), 404,
    'not-found', "making another user's address one's default: 404";
is_deeply api(GET => $A, token => $eve->{token})->{json}{items}, [], "the other user's list is empty";
is api(GET => "$A$h->{id}/", token => $t)->{json}{city}, 'Paris', 'the owner\'s address untouched';
is_problem api(GET => "${A}999999999/", token => $t), 404, 'not-found', 'an unknown id: 404';

# --- checkout uses the default address ------------------------------------------------------
{
    my $p = create_product(price => 500, stock => 100);
    api(POST => '/cart/', token => $t, body => { product_id => $p->{id}, quantity => 1 });
    $r = api(POST => '/orders/', token => $t);
    is $r->{status}, 201, 'checkout without an address: 201';
    my %want = map { $_ => $third->{$_} } grep { defined $third->{$_} } qw(name line1 line2 city region postal_code country phone);
    is_deeply $r->{json}{shipping_address}, \%want, 'the order has the default address';
    my $o = api(GET => "/orders/$r->{json}{id}/", token => $t)->{json};
    is_deeply $o->{shipping_address}, \%want, 'as stored on the order';
    # a copy: changing the address book does not change the order
    api(PATCH => "$A$third->{id}/", token => $t, body => { city => 'Lyon' });
    is api(GET => "/orders/$r->{json}{id}/", token => $t)->{json}{shipping_address}{city}, 'Paris',
        'the order keeps its snapshot when the book changes';

    api(POST => '/cart/', token => $t, body => { product_id => $p->{id}, quantity => 1 });
    $r = api(POST => '/orders/', token => $t, body => { shipping_address => \%work });
    is $r->{status}, 201, 'checkout with an address';
    is $r->{json}{shipping_address}{city}, 'Springfield', 'an explicit address wins';

    my $n = register_user();
    api(POST => '/cart/', token => $n->{token}, body => { product_id => $p->{id}, quantity => 1 });
    $r = api(POST => '/orders/', token => $n->{token});
    is $r->{status}, 201, 'checkout without an address book';
    ok !defined $r->{json}{shipping_address}, 'no address';
    # the default is read with the caller's inline token (no Idempotency-Key) and with one
    api(POST => '/cart/', token => $t, body => { product_id => $p->{id}, quantity => 1 });
    $r = api(POST => '/orders/', token => $t, headers => { 'Idempotency-Key' => 'addr-' . uniq() });
    is $r->{status}, 201, 'checkout with an Idempotency-Key';
    is $r->{json}{shipping_address}{city}, 'Lyon', 'has the default address as it is now';
    # cancel those pending orders (EcomMaxPendingOrders)
    api(POST => "/orders/$_->{id}/cancel/", token => $t) for @{ api(GET => '/orders/?status=pending', token => $t)->{json}{items} };
}

# --- delete ---------------------------------------------------------------------------------
is api(DELETE => "$A$third->{id}/", token => $t)->{status}, 204, 'DELETE the default: 204';
is_problem api(DELETE => "$A$third->{id}/", token => $t), 404, 'not-found', 'DELETE again: 404';
is_problem api(GET => "$A$third->{id}/", token => $t), 404, 'not-found', 'it is gone';
$r = api(GET => $A, token => $t);
is_deeply [ map { [ $_->{id}, $_->{is_default} ? 1 : 0 ] } @{ $r->{json}{items} } ],
          [ [ $h->{id}, 0 ], [ $w->{id}, 1 ] ], 'the newest remaining address became the default';

# --- at most 20 -------------------------------------------------------------------------------
{
    my $v = register_user();
    my @st = map { api(POST => $A, token => $v->{token}, body => { %home, name => "N$_" })->{status} } 1 .. 20;
    is scalar(grep { $_ == 201 } @st), 20, '20 addresses: 201';
    $r = api(POST => $A, token => $v->{token}, body => \%home);
    is_problem $r, 409, 'too-many-addresses', 'the 21st: 409';
    is $r->{json}{max}, 20, 'naming the bound';
    is psql_value("SELECT count(*) FROM addresses WHERE user_id = $v->{id}"), 20, 'still 20';
    is psql_value("SELECT count(*) FROM addresses WHERE user_id = $v->{id} AND is_default"), 1, 'one default';
    # concurrent creates of a fresh user: one default, never more than 20
    my $c = register_user();
    my @res = parallel(24, 1, sub {
        api(POST => $A, token => $c->{token}, body => { %home, is_default => JSON::PP::true })->{status}
    });
    is scalar(grep { $_ == 201 } @res), 20, '24 concurrent creates: 20 made';
    is scalar(grep { $_ == 409 } @res), 4, 'and 4 refused';
    is psql_value("SELECT count(*) FROM addresses WHERE user_id = $c->{id} AND is_default"), 1, 'one default';
}

done_testing;
