#!/usr/bin/perl
# Payments (issue 7, "Payments"): POST /orders/{id}/payments/ with the
# sandbox provider. tok_ok 201 and the order paid; tok_declined 402 with the
# failed payment COMMITTED (with and without an Idempotency-Key) and the
# order still payable; tok_async 202 processing; other tokens 422; not
# pending 409; a processing payment 409; another user's order 404 (staff
# too); mass assignment 422; Idempotency-Key replays the same payment; ten
# concurrent payments of one order: one 201, the rest 409, paid once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep);
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my ($staff) = staff_token();

sub pay {
    my ($u, $order, $token, %o) = @_;
    return api(POST => "/orders/$order->{id}/payments/", token => $u->{token},
               body => $o{body} // { token => $token }, headers => $o{headers} // {});
}
sub order_row {
    my ($id) = @_;
    my ($status, $paid, $refunded) = split /\|/, psql_value("SELECT status, paid_amount, refunded_amount FROM orders WHERE id = $id");
    return { status => $status, paid => $paid, refunded => $refunded };
}
sub n_payments { psql_value("SELECT count(*) FROM payments WHERE order_id = $_[0]" . ($_[1] ? " AND status = '$_[1]'" : '')) }

my $alice = register_user();
my $bob = register_user();

# --- tok_ok: 201, the payment, the order paid ----------------------------------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 1250, qty => 2);
    is $o->{total}, 2500, 'order total 2500';
    my $r = pay($alice, $o, 'tok_ok');
    is $r->{status}, 201, 'tok_ok: 201';
    my $p = $r->{json};
    is_deeply [sort keys %$p], [sort qw(id order_id provider status amount currency created_at)],
        'payment has exactly {id, order_id, provider, status, amount, currency, created_at}';
    ok is_int($p->{id}), 'id is an integer';
    is $p->{order_id}, $o->{id}, 'order_id';
    is $p->{provider}, 'sandbox', 'provider sandbox';
    is $p->{status}, 'succeeded', 'status succeeded';
    ok is_int($p->{amount}) && $p->{amount} == 2500, 'amount is the order total, an integer';
    is $p->{currency}, $o->{currency}, 'currency of the order';
    ok is_rfc3339($p->{created_at}), 'created_at RFC 3339';
    like $r->{headers}{location} // '', qr{/orders/$o->{id}/\z}, 'Location is the order';
    is_deeply order_row($o->{id}), { status => 'paid', paid => 2500, refunded => 0 }, 'order paid, paid_amount 2500';
    is api(GET => "/orders/$o->{id}/", token => $alice->{token})->{json}{status}, 'paid', 'GET shows the order paid';
    is psql_value("SELECT actor || ':' || from_status || '>' || to_status || ':' || (actor_id = $alice->{id})::text FROM order_events WHERE order_id = $o->{id} ORDER BY id DESC LIMIT 1"),
        'user:pending>paid:true', 'order event pending -> paid, actor user, actor_id the owner';
    is psql_value("SELECT count(*) FROM events WHERE order_id = $o->{id} AND type IN ('payment.succeeded', 'order.paid')"), 2,
        'the feed has payment.succeeded and order.paid';

    my $again = pay($alice, $o, 'tok_ok');
    is_problem $again, 409, 'invalid-state', 'paying a paid order is 409 invalid-state';
    is n_payments($o->{id}), 1, '... and records nothing';
}

# --- tok_declined: 402, recorded, the order still pending and payable ---------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 700, qty => 1);
    my $r = pay($alice, $o, 'tok_declined');
    is_problem $r, 402, 'payment-declined', 'tok_declined: 402 payment-declined';
    like $r->{json}{type} // '', qr/payment-declined\z/, 'type ends in payment-declined';
    is $r->{json}{payment}{status}, 'failed', 'the problem carries the failed payment';
    ok length($r->{json}{payment}{failure_reason} // ''), '... with its failure_reason';
    is n_payments($o->{id}, 'failed'), 1, 'the failed payment is committed (no Idempotency-Key)';
    is_deeply order_row($o->{id}), { status => 'pending', paid => 0, refunded => 0 }, 'the order stays pending, nothing paid';
    is psql_value("SELECT count(*) FROM events WHERE order_id = $o->{id} AND type = 'payment.failed'"), 1, 'the feed has payment.failed';
    my $ok = pay($alice, $o, 'tok_ok');
    is $ok->{status}, 201, 'the order can be paid again after a decline';
    is n_payments($o->{id}), 2, 'two payments: the failed one and the succeeded one';
    is order_row($o->{id})->{status}, 'paid', 'order paid';
}

# --- tok_declined with an Idempotency-Key: committed with the stored 402 -------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 300, qty => 3);
    my $key = 'decl-' . uniq();
    my $r = pay($alice, $o, 'tok_declined', headers => { 'Idempotency-Key' => $key });
    is_problem $r, 402, 'payment-declined', 'tok_declined with a key: 402';
    is n_payments($o->{id}, 'failed'), 1, 'the failed payment is committed with the key too';
    is psql_value("SELECT status_code FROM idempotency_keys WHERE user_id = $alice->{id} AND key = '$key'"), 402,
        'the 402 is stored under the key';
    my $r2 = pay($alice, $o, 'tok_declined', headers => { 'Idempotency-Key' => $key });
    is $r2->{status}, 402, 'the same key replays the 402';
    is lc($r2->{headers}{'idempotent-replayed'} // ''), 'true', '... marked replayed';
    is $r2->{json}{payment}{id}, $r->{json}{payment}{id}, '... with the same payment';
    is n_payments($o->{id}), 1, '... and charges nothing again';
    is order_row($o->{id})->{status}, 'pending', 'order still pending';
    my $r3 = pay($alice, $o, 'tok_ok', headers => { 'Idempotency-Key' => $key });
    is_problem $r3, 422, 'idempotency-conflict', 'the same key with another token is 422';
    my $r4 = pay($alice, $o, 'tok_ok', headers => { 'Idempotency-Key' => "ok-$key" });
    is $r4->{status}, 201, 'a new key pays';
    is order_row($o->{id})->{paid}, 900, 'paid 900';
}

# --- Idempotency-Key replays the same successful payment ------------------------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 400, qty => 1);
    my %h = ('Idempotency-Key' => 'pay-' . uniq());
    my $r1 = pay($alice, $o, 'tok_ok', headers => \%h);
    is $r1->{status}, 201, 'tok_ok with a key: 201';
    my $r2 = pay($alice, $o, 'tok_ok', headers => \%h);
    is $r2->{status}, 201, 'same key again: 201 (not 409)';
    is lc($r2->{headers}{'idempotent-replayed'} // ''), 'true', '... replayed';
    is_deeply $r2->{json}, $r1->{json}, '... the same payment';
    is n_payments($o->{id}), 1, 'one payment';
    is order_row($o->{id})->{paid}, 400, 'paid once';
}

# --- tok_async: 202 processing; a second attempt is 409 -------------------------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 999, qty => 1);
    my $r = pay($alice, $o, 'tok_async');
    is $r->{status}, 202, 'tok_async: 202';
    is $r->{json}{status}, 'processing', 'status processing';
    is $r->{json}{amount}, 999, 'amount the total';
    ok !exists $r->{json}{failure_reason}, 'no failure_reason';
    is_deeply order_row($o->{id}), { status => 'pending', paid => 0, refunded => 0 }, 'order stays pending';
    is_problem pay($alice, $o, 'tok_ok'), 409, 'payment-in-progress', 'paying while one is processing: 409 payment-in-progress';
    is_problem pay($alice, $o, 'tok_async'), 409, 'payment-in-progress', '... also with tok_async';
    is n_payments($o->{id}), 1, 'still one payment';
}

# --- invalid tokens 422, nothing recorded ----------------------------------------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 100, qty => 1);
    for my $case ([ { token => 'tok_bogus' }, 'an unknown token' ],
                  [ {}, 'no token' ],
                  [ { token => '' }, 'an empty token' ],
                  [ { token => 42 }, 'a number as token' ],
                  [ { token => undef }, 'a null token' ],
                  [ { token => 'x' x 256 }, 'a 256-character token' ]) {
        my $r = pay($alice, $o, undef, body => $case->[0]);
        is_problem $r, 422, undef, "$case->[1]: 422";
        has_field_error $r, 'token';
    }
    is_problem api(POST => "/orders/$o->{id}/payments/", token => $alice->{token}), 415, undef,
        'no body: 415 (a JSON body is required)';
    is n_payments($o->{id}), 0, 'nothing recorded';
    is order_row($o->{id})->{status}, 'pending', 'order pending';
}

# --- mass assignment: amount, status, provider, currency ------------------------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 5000, qty => 1);
    for my $f ([ amount => 1 ], [ status => 'succeeded' ], [ provider => 'free' ],
               [ currency => 'XXX' ], [ order_id => 1 ]) {
        my $r = pay($alice, $o, undef, body => { token => 'tok_ok', $f->[0] => $f->[1] });
        is_problem $r, 422, undef, "$f->[0] in the body: 422";
        has_field_error $r, $f->[0];
    }
    is n_payments($o->{id}), 0, 'nothing recorded';
    my $r = pay($alice, $o, 'tok_ok');
    is $r->{json}{amount}, 5000, 'the amount is always the order total';
}

# --- BOLA: another user's order is 404, staff's too; unknown 404 ---------------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 100, qty => 1);
    is_problem pay($bob, $o, 'tok_ok'), 404, 'not-found', "another user's order: 404";
    is_problem pay($bob, $o, 'tok_ok', body => { token => 'tok_ok', amount => 1 }), 422, undef,
        '... (a bad body is 422 before anything is looked up)';
    is_problem api(POST => "/orders/$o->{id}/payments/", token => $staff, body => { token => 'tok_ok' }), 404, 'not-found',
        "staff paying a user's order: 404 (owner only)";
    is_problem pay($alice, { id => 999999999 }, 'tok_ok'), 404, 'not-found', 'an unknown order: 404';
    is_problem api(POST => "/orders/$o->{id}/payments/", body => { token => 'tok_ok' }), 401, 'unauthorized', 'anonymous: 401';
    is n_payments($o->{id}), 0, 'nothing recorded';
    is order_row($o->{id})->{status}, 'pending', 'order untouched';
    my $r = api(GET => "/orders/$o->{id}/payments/", token => $alice->{token});
    is $r->{status}, 405, 'GET on the payments path: 405';
}

# --- not pending: 409 ------------------------------------------------------------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 100, qty => 1);
    psql_do("UPDATE orders SET status = 'cancelled' WHERE id = $o->{id}");
    is_problem pay($alice, $o, 'tok_ok'), 409, 'invalid-state', 'a cancelled order: 409 invalid-state';
    is n_payments($o->{id}), 0, 'nothing recorded';
}

# --- ten concurrent payments with different keys: one 201, nine 409 ------------
for my $round (1 .. 2) {
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 1111, qty => 1);
    my @res = parallel(10, 1, sub {
        my ($i) = @_;
        my $r = pay($alice, $o, 'tok_ok', headers => { 'Idempotency-Key' => "race-$round-$i-" . uniq() });
        return { status => $r->{status}, type => ($r->{json} // {})->{type} };
    });
    my %n;
    $n{ $_->{status} // 'error' }++ for @res;
    is $n{201}, 1, "round $round: exactly one 201 of ten";
    is $n{409}, 9, "round $round: nine 409" or diag explain \@res;
    is n_payments($o->{id}), 1, "round $round: one payment row";
    is n_payments($o->{id}, 'succeeded'), 1, "round $round: one succeeded payment";
    is_deeply order_row($o->{id}), { status => 'paid', paid => 1111, refunded => 0 }, "round $round: paid once";
    is psql_value("SELECT count(*) FROM order_events WHERE order_id = $o->{id} AND to_status = 'paid'"), 1,
        "round $round: one pending -> paid event";
}
# the same without keys
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 2222, qty => 1);
    my @res = parallel(10, 1, sub { my $r = pay($alice, $o, 'tok_ok'); return { status => $r->{status} } });
    my %n;
    $n{ $_->{status} // 'error' }++ for @res;
    is $n{201}, 1, 'no keys: exactly one 201 of ten';
    is $n{409}, 9, 'no keys: nine 409' or diag explain \@res;
    is order_row($o->{id})->{paid}, 2222, 'no keys: paid once';
}

# --- the schema's last guard: a unique violation is 409, never 500 --------------
{
    my $alice = register_user();
    # a live payment the pre-check already reads: 409
    my $o = pending_order($alice, price => 100, qty => 1);
    psql_do("INSERT INTO payments (order_id, provider, status, amount, currency) VALUES ($o->{id}, 'sandbox', 'succeeded', 100, 'EUR')");
    is_problem pay($alice, $o, 'tok_ok'), 409, 'payment-in-progress', 'a live payment on a pending order: 409';

    # one the pre-check cannot see: an outside transaction writes a
    # processing payment without the foreign key's lock on the order (as a
    # path that skipped the order lock would), and commits while the
    # module's INSERT waits on payments_one_live: the unique violation
    my $o2 = pending_order($alice, price => 100, qty => 1);
    my $holder = fork // die "fork: $!";
    if (!$holder) {
        open STDOUT, '>', '/dev/null';
        { exec 'psql', '-XAtq', '-c', "BEGIN; SET LOCAL session_replication_role = replica; "
              . "INSERT INTO payments (order_id, provider, status, amount, currency) VALUES ($o2->{id}, 'other', 'processing', 100, 'EUR'); "
              . "SELECT pg_sleep(1); COMMIT;" }
        POSIX::_exit(127);
    }
    sleep 0.4;
    my $r = pay($alice, $o2, 'tok_ok');
    waitpid $holder, 0;
    is_problem $r, 409, 'payment-in-progress', 'a unique violation of payments_one_live: 409, not 500';
    is psql_value("SELECT string_agg(provider || ':' || status, ',') FROM payments WHERE order_id = $o2->{id}"),
        'other:processing', '... only the outside payment exists';
    is psql_value("SELECT status FROM orders WHERE id = $o2->{id}"), 'pending', '... the order stays pending';
}

# --- the order detail shows the failed payment ---------------------------------
# LEAD: after merging the "life" branch (GET /orders/{id}/ reads payments),
# switch this block to assert through the API: the detail's payments array
# has the failed payment {status: "failed", amount, failure_reason}.
subtest 'the order detail shows the failed payment' => sub {
    my $o = pending_order($alice, price => 640, qty => 1);
    my $r = pay($alice, $o, 'tok_declined');
    is $r->{status}, 402, 'tok_declined: 402';
    my $d = api(GET => "/orders/$o->{id}/", token => $alice->{token});
    is $d->{status}, 200, 'the detail reads';
    my @p = @{ $d->{json}{payments} || [] };
    is scalar @p, 1, 'one payment on the order';
    is $p[0]{status}, 'failed', '... failed';
    is $p[0]{amount}, 640, '... of the total';
    ok defined $p[0]{failure_reason} && length $p[0]{failure_reason}, '... with its reason';
    is $d->{json}{status}, 'pending', 'the order stays pending';
    is pay($alice, $o, 'tok_ok')->{status}, 201, '... and can be paid again';
    $d = api(GET => "/orders/$o->{id}/", token => $alice->{token});
    is_deeply [ map { $_->{status} } @{ $d->{json}{payments} } ], [qw(failed succeeded)],
        'the detail lists both attempts, oldest first';
};

done_testing;
