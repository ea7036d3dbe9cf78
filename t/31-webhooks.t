#!/usr/bin/perl
# The payment provider's webhook (issue 7, "Webhooks"): POST
# /payments/webhook/ signed with Ecom-Signature under the test server's
# EcomWebhookSecret (conf/httpd.conf.in). payment.succeeded and
# payment.failed of a processing payment; replays; unknown types recorded
# and ignored; an unknown payment 404; a payment already final ignored; a
# success for an order that is no longer pending refunded in full; bodies
# of the wrong shape 422; forged, tampered, stale and future signatures 400
# with nothing changed; scripts/ecom-admin webhook end to end.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(hmac_sha256_hex);
use File::Temp ();
use POSIX ();
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $SECRET = 'dev-webhook-secret-not-for-production-0001';   # conf/httpd.conf.in

sub sig { my ($body, %o) = @_;
          my $t = $o{t} // time;
          return "t=$t,v1=" . hmac_sha256_hex("$t.$body", $o{secret} // $SECRET) }
# hook($event_hash_or_raw_body, %o): POST it signed (header => ... overrides)
sub hook {
    my ($ev, %o) = @_;
    my $body = ref $ev ? json_encode($ev) : $ev;
    my %h = exists $o{header} ? (defined $o{header} ? ('Ecom-Signature' => $o{header}) : ())
                              : ('Ecom-Signature' => sig($body, %o));
    return api(POST => '/payments/webhook/', body => $body, headers => \%h,
               (exists $o{content_type} ? (content_type => $o{content_type}) : ()),
               (defined $o{token} ? (token => $o{token}) : ()));
}
sub ev { my ($type, $pid, $id) = @_;
         return { id => $id // 'evt_' . uniq(), type => $type, data => { payment_id => $pid } } }

sub async_payment {
    my ($u, $o) = @_;
    my $r = api(POST => "/orders/$o->{id}/payments/", token => $u->{token}, body => { token => 'tok_async' });
    die "tok_async: $r->{status} $r->{content}\n" unless $r->{status} == 202;
    return $r->{json};
}
sub order_row { my ($s, $p, $r) = split /\|/, psql_value("SELECT status, paid_amount, refunded_amount FROM orders WHERE id = $_[0]");
                return { status => $s, paid => $p, refunded => $r } }
sub pay_status { psql_value("SELECT status FROM payments WHERE id = $_[0]") }
sub recorded { psql_value("SELECT coalesce((SELECT outcome || ':' || coalesce(payment_id::text, '-') FROM webhook_events WHERE id = '$_[0]'), 'none')") }
# everything a delivery could change, for "nothing changed"
sub snapshot { psql_value("SELECT (SELECT count(*) FROM webhook_events) || '/' || (SELECT count(*) FROM order_events) || '/' || "
                          . "(SELECT count(*) FROM refunds) || '/' || (SELECT string_agg(status, ',' ORDER BY id) FROM payments WHERE id > $_[0] - 50) || '/' || "
                          . "(SELECT sum(paid_amount) FROM orders)") }

my $alice = register_user();

# --- payment.succeeded: processing -> succeeded, the order paid ----------------
my ($o1, $p1);
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    $o1 = pending_order($alice, price => 1999);
    $p1 = async_payment($alice, $o1);
    is $p1->{status}, 'processing', 'tok_async: processing';
    my $e = ev('payment.succeeded', $p1->{id});
    my $r = hook($e);
    is $r->{status}, 200, 'payment.succeeded: 200';
    is_deeply $r->{json}, { received => JSON::PP::true, outcome => 'applied' }, 'answer {received: true, outcome: applied}';
    is pay_status($p1->{id}), 'succeeded', 'the payment succeeded';
    is_deeply order_row($o1->{id}), { status => 'paid', paid => 1999, refunded => 0 }, 'the order is paid, paid_amount set';
    is psql_value("SELECT actor || ':' || coalesce(actor_id::text, 'null') FROM order_events WHERE order_id = $o1->{id} AND to_status = 'paid'"),
        'provider:null', 'order event actor provider, no actor id';
    is recorded($e->{id}), "applied:$p1->{id}", 'the delivery is recorded applied';

    # replay: the same id again, 200 and no second effect
    my $before = snapshot($p1->{id});
    my $again = hook($e);
    is $again->{status}, 200, 'the same event again: 200';
    is $again->{json}{outcome}, 'duplicate', '... outcome duplicate';
    is snapshot($p1->{id}), $before, '... and nothing changed';
    is psql_value("SELECT count(*) FROM order_events WHERE order_id = $o1->{id} AND to_status = 'paid'"), 1, 'one pending -> paid event';

    # a later, different event for the final payment: recorded ignored
    my $late = ev('payment.failed', $p1->{id});
    my $r3 = hook($late);
    is $r3->{status}, 200, 'payment.failed for a succeeded payment: 200';
    is $r3->{json}{outcome}, 'ignored', '... ignored';
    is recorded($late->{id}), "ignored:$p1->{id}", '... recorded ignored';
    is pay_status($p1->{id}), 'succeeded', '... the payment stays succeeded';
    is order_row($o1->{id})->{status}, 'paid', '... the order stays paid';
}

# --- concurrent deliveries: the same id five times, and two different
# outcomes for one payment: applied once ----------------------------------
{
    my $alice = register_user();
    my $o = pending_order($alice, price => 606);
    my $p = async_payment($alice, $o);
    my $e = ev('payment.succeeded', $p->{id});
    my @res = parallel(5, 1, sub { my $r = hook($e); return { status => $r->{status}, outcome => ($r->{json} // {})->{outcome} } });
    is scalar(grep { ($_->{status} // 0) == 200 } @res), 5, 'the same event five times at once: five 200';
    is scalar(grep { ($_->{outcome} // '') eq 'applied' } @res), 1, '... exactly one applied';
    is scalar(grep { ($_->{outcome} // '') eq 'duplicate' } @res), 4, '... four duplicates' or diag explain \@res;
    is_deeply order_row($o->{id}), { status => 'paid', paid => 606, refunded => 0 }, '... paid once';

    my $o2 = pending_order($alice, price => 707);
    my $p2 = async_payment($alice, $o2);
    my @evs = (ev('payment.succeeded', $p2->{id}), ev('payment.failed', $p2->{id}));
    @res = parallel(2, 1, sub { my $r = hook($evs[$_[0]]); return { status => $r->{status}, outcome => ($r->{json} // {})->{outcome} } });
    is_deeply [sort map { $_->{outcome} // 'none' } @res], [qw(applied ignored)],
        'payment.succeeded and payment.failed at once: one applied, the other ignored';
    my $final = pay_status($p2->{id});
    is_deeply order_row($o2->{id}), $final eq 'succeeded' ? { status => 'paid', paid => 707, refunded => 0 }
                                                           : { status => 'pending', paid => 0, refunded => 0 },
        "... and the order agrees with the payment ($final)";
}

# --- payment.failed: processing -> failed, the order stays pending ------------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 450);
    my $p = async_payment($alice, $o);
    my $r = hook(ev('payment.failed', $p->{id}));
    is $r->{status}, 200, 'payment.failed: 200';
    is $r->{json}{outcome}, 'applied', '... applied';
    is pay_status($p->{id}), 'failed', 'the payment failed';
    is_deeply order_row($o->{id}), { status => 'pending', paid => 0, refunded => 0 }, 'the order stays pending';
    my $again = api(POST => "/orders/$o->{id}/payments/", token => $alice->{token}, body => { token => 'tok_ok' });
    is $again->{status}, 201, 'and can be paid again';
    my $r2 = hook(ev('payment.succeeded', $p->{id}));
    is $r2->{json}{outcome}, 'ignored', 'a success for the failed payment afterwards: ignored';
    is order_row($o->{id})->{paid}, 450, '... paid once';
}

# --- payment.succeeded for an order no longer pending: refunded in full ------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 3210);
    my $p = async_payment($alice, $o);
    # cancelled meanwhile (as the payment timeout would)
    psql_do("UPDATE orders SET status = 'cancelled' WHERE id = $o->{id}");
    my $r = hook(ev('payment.succeeded', $p->{id}));
    is $r->{status}, 200, 'a late payment.succeeded: 200';
    is $r->{json}{outcome}, 'refunded', '... outcome refunded';
    is pay_status($p->{id}), 'succeeded', 'the payment is recorded succeeded (the money was taken)';
    is_deeply order_row($o->{id}), { status => 'cancelled', paid => 3210, refunded => 3210 },
        'the order stays cancelled; paid_amount = refunded_amount = the payment';
    is psql_value("SELECT amount || ':' || payment_id || ':' || status || ':' || currency FROM refunds WHERE order_id = $o->{id}"),
        "3210:$p->{id}:succeeded:$p->{currency}", 'a full refund row for the payment';
    is psql_value("SELECT count(*) FROM order_events WHERE order_id = $o->{id} AND to_status = 'paid'"), 0, 'no move to paid';
}

# --- unknown types: 200, recorded, ignored -------------------------------------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 100);
    my $p = async_payment($alice, $o);
    my $e = ev('charge.dispute.created', $p->{id});
    my $r = hook($e);
    is $r->{status}, 200, 'an unknown type: 200';
    is $r->{json}{outcome}, 'ignored', '... ignored';
    is recorded($e->{id}), "ignored:$p->{id}", '... recorded ignored';
    is pay_status($p->{id}), 'processing', '... the payment is untouched';
    my $e2 = { id => 'evt_' . uniq(), type => 'customer.created', data => { customer => 'cus_1' } };
    is hook($e2)->{status}, 200, 'an unknown type whose data has no payment_id: 200';
    is recorded($e2->{id}), 'ignored:-', '... recorded without a payment';
    is hook($e2)->{json}{outcome}, 'duplicate', '... its replay is a duplicate';
}

# --- an unknown payment: 404, nothing recorded -----------------------------------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $e = ev('payment.succeeded', 999999999);
    is_problem hook($e), 404, 'not-found', 'an unknown payment: 404';
    is recorded($e->{id}), 'none', '... nothing recorded';
}

# --- wrong shape: 422 (or 400 for what is not a JSON object) ------------------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 100);
    my $p = async_payment($alice, $o);
    my $before = snapshot($p->{id});
    for my $case ([ { type => 'payment.succeeded', data => { payment_id => $p->{id} } }, 'id', 'no id' ],
                  [ { id => 'evt_' . uniq(), data => { payment_id => $p->{id} } }, 'type', 'no type' ],
                  [ { id => 'evt_' . uniq(), type => 'payment.succeeded' }, 'data', 'no data' ],
                  [ { id => 'evt_' . uniq(), type => 'payment.succeeded', data => [] }, 'data', 'data an array' ],
                  [ { id => 'evt_' . uniq(), type => 'payment.succeeded', data => {} }, 'payment_id', 'no payment_id' ],
                  [ { id => 'evt_' . uniq(), type => 'payment.failed', data => { payment_id => "$p->{id}" } }, 'payment_id', 'payment_id a string' ],
                  [ { id => 'evt_' . uniq(), type => 'payment.failed', data => { payment_id => 0 } }, 'payment_id', 'payment_id 0' ],
                  [ { id => 5, type => 'payment.failed', data => { payment_id => $p->{id} } }, 'id', 'id a number' ],
                  [ { id => 'x' x 256, type => 'payment.failed', data => { payment_id => $p->{id} } }, 'id', 'id of 256 characters' ]) {
        my $r = hook($case->[0]);
        is_problem $r, 422, undef, "$case->[2]: 422";
        has_field_error $r, $case->[1];
    }
    is_problem hook('[1,2]'), 400, 'bad-request', 'a JSON array: 400';
    is_problem hook('{"id": '), 400, 'bad-request', 'malformed JSON: 400';
    is_problem hook(ev('payment.failed', $p->{id}), content_type => 'text/plain'), 415, undef, 'text/plain: 415';
    is snapshot($p->{id}), $before, 'nothing changed';
    is pay_status($p->{id}), 'processing', 'the payment is still processing';
}

# --- signature forgeries: 400, nothing changed -----------------------------------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $o = pending_order($alice, price => 777);
    my $p = async_payment($alice, $o);
    my $e = ev('payment.succeeded', $p->{id});
    my $body = json_encode($e);
    my $t = time;
    my $good = hmac_sha256_hex("$t.$body", $SECRET);
    my $before = snapshot($p->{id});
    my @forged = (
        [ sig($body, secret => 'another-secret-of-at-least-32-bytes!!'), 'signed with another secret' ],
        [ "t=$t,v1=$good", 'a tampered body', body => $body =~ s/"payment\.succeeded"/"payment.failed"/r ],
        [ undef, 'no Ecom-Signature header' ],
        [ '', 'an empty header' ],
        [ "v1=$good", 'no t=' ],
        [ "t=$t", 'no v1=' ],
        [ "t=$t,v1=" . substr($good, 0, 63), 'a v1 of 63 hex digits' ],
        [ "t=abc,v1=$good", 'a t that is not a number' ],
        [ "t=$t,t=$t,v1=$good", 'two t=' ],
        [ "t=$t,v1=" . ('0' x 64), 'a zero MAC' ],
        [ "garbage", 'garbage' ],
        [ "t=$t,v1=$good" . (",v1=" . ('a' x 64)) x 8, 'nine v1 values' ],
        [ sig($body, t => $t - 301), 'a timestamp 301 s old' ],
        # made when sent, as the server's clock has moved on since $t (a
        # slow machine took over a second to get here, and t + 301 was
        # then only 300 s ahead: within the tolerance)
        [ sub { sig($body, t => time + 302) }, 'a timestamp 302 s in the future' ],
        [ sig($body, t => 0), 'timestamp 0' ],
    );
    for my $f (@forged) {
        my ($header, $name, %o) = @$f;
        $header = $header->() if ref $header eq 'CODE';
        my $r = hook($o{body} // $body, header => $header);
        is_problem $r, 400, 'invalid-signature', "$name: 400 invalid-signature";
    }
    # a bearer token does not stand in for the signature
    is_problem hook($body, header => undef, token => $alice->{token}), 400, 'invalid-signature',
        'a bearer token without a signature: 400';
    is snapshot($p->{id}), $before, 'after all forgeries nothing changed';
    is recorded($e->{id}), 'none', 'the event id was not recorded (the real delivery can still come)';
    is pay_status($p->{id}), 'processing', 'the payment is still processing';

    # several v1= values, one of them right (secret rotation): accepted
    my $r = hook($body, header => "t=$t,v1=" . ('b' x 64) . ",v1=$good,v1=" . ('c' x 64));
    is $r->{status}, 200, 'several v1= with one right: accepted';
    is $r->{json}{outcome}, 'applied', '... applied';
    is order_row($o->{id})->{status}, 'paid', '... the order is paid';
    # within the tolerance on both sides
    my $o2 = pending_order($alice, price => 10);
    my $p2 = async_payment($alice, $o2);
    is hook(ev('payment.failed', $p2->{id}), t => time - 250)->{status}, 200, 'a timestamp 250 s old: accepted';
}

# --- scripts/ecom-admin webhook: the asynchronous flow offline ----------------
{
    # a user of its own: the per-account cap of pending orders stays far
    my $alice = register_user();
    my $admin = ecom_root() . '/scripts/ecom-admin';
    my $run = sub {
        my (@args) = @_;
        my $pid = open my $fh, '-|';
        die "fork: $!" unless defined $pid;
        if (!$pid) { open STDERR, '>&', \*STDOUT; { exec 'bash', $admin, 'webhook', '--url', base_url(), @args } POSIX::_exit(127) }
        my $out = do { local $/; <$fh> } // '';
        close $fh;
        return ($? >> 8, $out);
    };
    my $o = pending_order($alice, price => 1500);
    my $p = async_payment($alice, $o);
    my $evid = 'evt_admin_' . uniq();
    my ($rc, $out) = $run->('--payment', $p->{id}, '--type', 'payment.succeeded', '--event-id', $evid);
    is $rc, 0, 'ecom-admin webhook payment.succeeded: exit 0' or diag $out;
    like $out, qr/HTTP 200/, '... prints the status';
    like $out, qr/"outcome":"applied"/, '... and the answer';
    is order_row($o->{id})->{status}, 'paid', 'the tok_async order is paid through ecom-admin';
    ($rc, $out) = $run->('--payment', $p->{id}, '--type', 'payment.succeeded', '--event-id', $evid);
    is $rc, 0, 'the same --event-id again: exit 0';
    like $out, qr/"outcome":"duplicate"/, '... duplicate';
    {
        local $ENV{ECOM_WEBHOOK_SECRET} = 'not-the-secret-of-the-server-0123456789';
        ($rc, $out) = $run->('--payment', $p->{id}, '--type', 'payment.failed');
        is $rc, 1, 'signed with another secret: exit 1';
        like $out, qr/HTTP 400/, '... HTTP 400';
    }
    my $sf = File::Temp->new;
    print $sf "$SECRET\n";
    close $sf;
    my $o2 = pending_order($alice, price => 250);
    my $p2 = async_payment($alice, $o2);
    ($rc, $out) = $run->('--payment', $p2->{id}, '--type', 'payment.failed', '--secret-file', $sf->filename);
    is $rc, 0, '--secret-file: exit 0' or diag $out;
    is pay_status($p2->{id}), 'failed', '... the payment failed';
    ($rc, $out) = $run->('--payment', 'abc', '--type', 'payment.failed');
    isnt $rc, 0, 'a payment id that is not a number is refused';
}

done_testing;
