#!/usr/bin/perl
# Roles (issue 9, part 6): the read-only support role. Support reads every
# order, shipment and user, changes nothing that is not its own: every
# staff-only route is 403 for it (the list comes from ecom-status, so a new
# staff route is covered too), another user's order is as closed to its
# writes as to any customer's. Roles are granted by scripts/ecom-admin
# set-role only and hold at once, on the tokens already issued. is_staff
# and role stay equal whichever one a statement writes (sql/016).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use EcomTest;
use EcomAdmin;
use EcomLife;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

sub role_of { psql_value("SELECT role || '|' || is_staff::text FROM users WHERE id = $_[0]") }

# --- the schema: role and is_staff stay equal ----------------------------------------
my ($staff, $staff_id) = staff_token();
is role_of($staff_id), 'staff|true', 'ecom-admin create-staff (which writes is_staff) makes role staff';
{
    my $u = register_user();
    is role_of($u->{id}), 'customer|false', 'a registered user is a customer';
    psql_do("UPDATE users SET is_staff = true WHERE id = $u->{id}");
    is role_of($u->{id}), 'staff|true', 'writing is_staff = true sets role staff';
    psql_do("UPDATE users SET role = 'support' WHERE id = $u->{id}");
    is role_of($u->{id}), 'support|false', 'writing role support clears is_staff';
    psql_do("UPDATE users SET is_staff = true, role = 'customer' WHERE id = $u->{id}");
    is role_of($u->{id}), 'customer|false', 'both written: role wins';
    my $out = `psql -XAtq -c "UPDATE users SET role = 'admin' WHERE id = $u->{id}" 2>&1`;
    like $out, qr/users_role_check/, 'an unknown role is refused by the schema (CHECK)';
    $out = `psql -XAtq -c "ALTER TABLE users DISABLE TRIGGER users_role_sync; UPDATE users SET is_staff = true WHERE id = $u->{id}" 2>&1`;
    like $out, qr/users_role_is_staff/, 'and, the trigger aside, role and is_staff may not disagree (CHECK)';
    psql_do('ALTER TABLE users ENABLE TRIGGER users_role_sync');
}

# --- ecom-admin set-role ----------------------------------------------------------------
my $sup = register_user(name => 'Sam Support');
{
    my $r = ecom_admin('set-role', '--email', uc $sup->{email}, '--role', 'support');
    is $r->{rc}, 0, 'set-role --role support exits 0' or diag $r->{err};
    is $r->{out}, "$sup->{id}\n", 'and prints the user id';
    like $r->{err}, qr/customer -> support/, 'stderr names the old and new role';
    is role_of($sup->{id}), 'support|false', 'the user is support (not staff)';
    $r = ecom_admin('set-role', '--email', $sup->{email}, '--role', 'admin');
    isnt $r->{rc}, 0, 'an unknown role is refused';
    $r = ecom_admin('set-role', '--email', $sup->{email});
    isnt $r->{rc}, 0, 'no role is refused';
    $r = ecom_admin('set-role', '--email', 'nobody-' . uniq() . '@example.com', '--role', 'support');
    isnt $r->{rc}, 0, 'an unknown email is refused';
    like $r->{err}, qr/no open account/, 'saying so';
    is role_of($sup->{id}), 'support|false', 'the refused calls changed nothing';
    my $me = api(GET => '/auth/me/', token => $sup->{token})->{json} // {};
    is $me->{role}, 'support', 'GET /auth/me/ shows role support with the token issued before';
    ok is_false($me->{is_staff}), 'and is_staff false';
}

# --- support reads every order and user -----------------------------------------------
my $cust = register_user(name => 'Carl Customer');
my $order = pending_order($cust);
{
    my $r = api(GET => "/orders/$order->{id}/", token => $sup->{token});
    is $r->{status}, 200, 'support reads another user\'s order';
    is $r->{json}{id}, $order->{id}, 'that order';
    my $list = api(GET => '/orders/?limit=100', token => $sup->{token});
    is $list->{status}, 200, 'GET /orders/ is 200 for support';
    ok scalar(grep { $_->{id} == $order->{id} } @{ $list->{json}{items} // [] }), 'and lists other users\' orders';
    $list = api(GET => '/orders/?status=pending&limit=100', token => $sup->{token});
    ok scalar(grep { $_->{id} == $order->{id} } @{ $list->{json}{items} // [] }), 'with the status filter too';
    my $cl = api(GET => '/orders/?limit=100', token => $cust->{token})->{json}{items} // [];
    is_deeply [ map { $_->{id} } @$cl ], [ $order->{id} ], 'a customer still sees only their own';
    is_problem api(GET => "/orders/$order->{id}/", token => register_user()->{token}), 404, 'not-found',
        'and another customer gets 404 for it';

    # a shipment of another user's paid order
    my ($so) = place_order($cust, address => address());
    pay_ok($cust, $so->{id});
    $r = api(POST => "/orders/$so->{id}/shipments/", token => $staff, body => { carrier => 'DHL', tracking_number => 'R' . uniq() });
    is $r->{status}, 201, 'staff ships another order of the customer';
    my $sid = $r->{json}{id};
    $r = api(GET => "/shipments/$sid/", token => $sup->{token});
    is $r->{status}, 200, 'support reads that shipment';
    is $r->{json}{order_id}, $so->{id}, 'the right one';
    is_problem api(GET => "/shipments/$sid/", token => register_user()->{token}), 404, 'not-found', 'another customer: 404';
    is_problem api(PATCH => "/shipments/$sid/", token => $sup->{token}, body => { status => 'shipped' }), 403, 'forbidden',
        'support cannot move it';
    is psql_value("SELECT status FROM shipments WHERE id = $sid"), 'pending', 'which is still pending';

    $r = api(GET => '/users/', token => $sup->{token});
    is $r->{status}, 200, 'GET /users/ is 200 for support';
    ok scalar(@{ $r->{json}{items} // [] }) >= 2, 'a list of users';
    $r = api(GET => '/users/?email=' . uc($cust->{email}), token => $sup->{token});
    is scalar(@{ $r->{json}{items} // [] }), 1, '?email= finds one user (case-insensitive)';
    my $u = $r->{json}{items}[0] // {};
    is $u->{id}, $cust->{id}, 'the customer';
    is $u->{role}, 'customer', 'with its role';
    ok exists $u->{closed_at} && !defined $u->{closed_at}, 'closed_at null for an open account';
    ok !grep({ /password/ } keys %$u), 'no password field';
    my $p1 = api(GET => '/users/?limit=1', token => $sup->{token});
    ok defined $p1->{json}{next_cursor}, 'the list pages (limit=1 has a next_cursor)';
    my $p2 = api(GET => "/users/?limit=1&cursor=$p1->{json}{next_cursor}", token => $sup->{token});
    ok $p2->{json}{items}[0]{id} > $p1->{json}{items}[0]{id}, 'id ascending across pages';
    is_problem api(GET => '/users/?cursor=nope', token => $sup->{token}), 400, 'bad-request', 'a bad cursor is 400';
    $r = api(GET => "/users/$cust->{id}/", token => $sup->{token});
    is $r->{status}, 200, 'GET /users/{id}/ is 200 for support';
    is $r->{json}{email}, $cust->{email}, 'with the email';
    is_problem api(GET => '/users/999999999999/', token => $sup->{token}), 404, 'not-found', 'an unknown user is 404';
    is api(GET => "/users/$cust->{id}/", token => $staff)->{status}, 200, 'staff reads users too';
    is_problem api(GET => '/users/', token => $cust->{token}), 403, 'forbidden', 'a customer gets 403 on GET /users/';
    is_problem api(GET => "/users/$cust->{id}/", token => $cust->{token}), 403, 'forbidden', 'and on GET /users/{id}/ (also its own)';
    is_problem api(GET => '/users/'), 401, 'unauthorized', 'no token: 401';
}

# --- support changes nothing: every staff route is 403 -------------------------------------
{
    my $st = api(GET => '/ecom-status');
    is $st->{status}, 200, 'ecom-status lists the routes';
    my @staff_routes = grep { $_->{auth} eq 'staff' } map { @{ $_->{routes} || [] } } @{ $st->{json}{resources} || [] };
    cmp_ok scalar(@staff_routes), '>=', 9, 'there are staff-only routes (' . scalar(@staff_routes) . ')';
    my $slug = 'role-test-' . lc(uniq());
    for my $rt (@staff_routes) {
        (my $path = $rt->{path}) =~ s/\{id\}/$order->{id}/g;
        $path =~ s/\{slug\}/$slug/g;
        my %o = (token => $sup->{token});
        $o{body} = { name => 'support was here', price => 1, status => 'shipped', amount => 1, slug => $slug }
            unless $rt->{method} eq 'GET' || $rt->{method} eq 'DELETE';
        is_problem api($rt->{method}, $path, %o), 403, 'forbidden', "support: $rt->{method} $rt->{path} is 403";
        is api($rt->{method}, $path, %o, token => $cust->{token})->{status}, 403, "a customer: $rt->{method} $rt->{path} is 403 too";
    }
    is psql_value("SELECT count(*) FROM products WHERE name = 'support was here'"), 0, 'no product was written';
    is psql_value("SELECT count(*) FROM categories WHERE slug = '$slug'"), 0, 'no category was written';

    # the owner-or-staff writes on another user's order: as for any customer
    is_problem api(POST => "/orders/$order->{id}/cancel/", token => $sup->{token}), 404, 'not-found',
        'support cannot cancel another user\'s order (404, as for a customer)';
    is_problem api(PATCH => "/orders/$order->{id}/", token => $sup->{token},
                   body => { shipping_address => { name => 'X', line1 => 'Y', city => 'Z', postal_code => '1', country => 'DE' } }),
        404, 'not-found', 'nor change its address';
    is_problem api(POST => "/orders/$order->{id}/payments/", token => $sup->{token}, body => { token => 'tok_ok' }), 404, 'not-found',
        'nor pay it';
    my $o = api(GET => "/orders/$order->{id}/", token => $cust->{token})->{json};
    is $o->{status}, 'pending', 'the order is still pending';
    is $o->{shipping_address}, undef, 'with no address';
}

# --- support's own customer writes still work -------------------------------------------
{
    my $p = create_product(price => 300, stock => 10);
    my $r = api(POST => '/cart/', token => $sup->{token}, body => { product_id => $p->{id}, quantity => 1 });
    is $r->{status}, 201, 'support adds to its own cart';
    $r = api(POST => '/orders/', token => $sup->{token});
    is $r->{status}, 201, 'and checks out';
    my $own = $r->{json}{id};
    is api(GET => "/orders/$own/", token => $sup->{token})->{status}, 200, 'reads its own order';
    $r = api(POST => "/orders/$own/cancel/", token => $sup->{token});
    is $r->{status}, 200, 'and cancels it';
    is $r->{json}{events}[-1]{actor}, 'user', 'as a user, not as staff';
    is api(PATCH => '/auth/me/', token => $sup->{token}, body => { name => 'Sam S.' })->{status}, 200, 'edits its profile';
}

# --- a role change holds at once, on the same token -------------------------------------
{
    my $r = ecom_admin('set-role', '--email', $sup->{email}, '--role', 'staff');
    is $r->{rc}, 0, 'set-role --role staff';
    is role_of($sup->{id}), 'staff|true', 'is_staff follows';
    is api(POST => '/products/', token => $sup->{token},
           body => { name => 'Made by a promoted user', price => 100, sku => 'role-' . uniq() })->{status}, 201,
        'the same token now creates a product';
    $r = ecom_admin('set-role', '--email', $sup->{email}, '--role', 'customer');
    is $r->{rc}, 0, 'set-role --role customer';
    is role_of($sup->{id}), 'customer|false', 'back to customer';
    is_problem api(GET => '/users/', token => $sup->{token}), 403, 'forbidden', 'the same token: GET /users/ is 403 at once';
    is_problem api(GET => "/orders/$order->{id}/", token => $sup->{token}), 404, 'not-found', 'and the other user\'s order is 404';
    my $mine = api(GET => '/orders/?limit=100', token => $sup->{token})->{json}{items} // [];
    ok !grep({ $_->{id} == $order->{id} } @$mine), 'GET /orders/ lists only its own again';
}

# --- a closed account cannot be given a role ----------------------------------------------
{
    my $u = register_user();
    is api(DELETE => '/auth/me/', token => $u->{token}, body => { password => $u->{password} })->{status}, 204, 'an account closed';
    my $r = ecom_admin('set-role', '--email', "closed-$u->{id}\@invalid", '--role', 'support');
    isnt $r->{rc}, 0, 'set-role refuses a closed account';
    is role_of($u->{id}), 'customer|false', 'which stays a customer';
    $r = api(GET => "/users/$u->{id}/", token => $staff);
    ok is_rfc3339($r->{json}{closed_at}), 'staff see when it was closed';
    is $r->{json}{name}, '', 'and no name';
}

done_testing;
