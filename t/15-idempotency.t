#!/usr/bin/perl
# Idempotency-Key (issue 5, item 5): the stored answer lives in the same
# transaction as the effect, so a child killed mid-checkout leaves no key
# stuck and no second order; the fingerprint is the route pattern plus
# canonical JSON; each user may open at most EcomIdempotencyKeysPerDay new
# keys per 24 h (3 on the test server's /api/v1/ mount).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep time);
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};
my $rundir = $ENV{ECOM_RUNDIR} or plan skip_all => 'ECOM_RUNDIR not set';

# --- the fingerprint: route pattern and canonical JSON ------------------------
{
    my $u = register_user();
    my $p = create_product(price => 300, stock => 20);
    my $key = 'fp-' . uniq();
    my %h = ('Idempotency-Key' => $key);
    my $r1 = api(POST => '/cart/', token => $u->{token}, headers => \%h,
                 body => qq({"product_id": $p->{id}, "quantity": 2}));
    is $r1->{status}, 201, 'POST /cart/ with a key is 201';
    my $r2 = api(POST => '/cart', token => $u->{token}, headers => \%h,
                 body => qq({"quantity":2,"product_id":$p->{id}}));
    is $r2->{status}, 201, 'POST /cart (no slash), same JSON reordered and respaced: the same request';
    is lc($r2->{headers}{'idempotent-replayed'} // ''), 'true', '... replayed';
    is $r2->{json}{id}, $r1->{json}{id}, '... with the same line';
    is api(GET => '/cart/', token => $u->{token})->{json}{items}[0]{quantity}, 2, 'added once';
    my $r3 = api(POST => '/cart/', token => $u->{token}, headers => \%h,
                 body => { product_id => $p->{id}, quantity => 3 });
    is_problem $r3, 422, 'idempotency-conflict', 'a different body with the key is 422';

    # a 4xx answer is stored, and its partial effects are not
    my $k2 = 'oos-' . uniq();
    my $q = create_product(price => 50, stock => 1);
    psql_do("UPDATE products SET stock = 0 WHERE id = $q->{id}");
    my $r4 = api(POST => '/cart/', token => $u->{token}, headers => { 'Idempotency-Key' => $k2 },
                 body => { product_id => $q->{id}, quantity => 1 });
    is_problem $r4, 409, 'out-of-stock', 'a refused add with a key is 409';
    psql_do("UPDATE products SET stock = 5 WHERE id = $q->{id}");
    my $r5 = api(POST => '/cart/', token => $u->{token}, headers => { 'Idempotency-Key' => $k2 },
                 body => { product_id => $q->{id}, quantity => 1 });
    is $r5->{status}, 409, 'its retry replays the stored 409';
    is lc($r5->{headers}{'idempotent-replayed'} // ''), 'true', '... marked replayed';
}

# --- at most EcomIdempotencyKeysPerDay new keys (3 under /api/v1/) -------------
{
    my $u = register_user();
    my $base = base_url() . '/api/v1';
    my @keys = map { "cap-$_-" . uniq() } 1 .. 4;
    my $p = create_product(price => 10, stock => 100);
    for my $i (0 .. 2) {
        my $r = api(POST => '/cart/', base => $base, token => $u->{token},
                    headers => { 'Idempotency-Key' => $keys[$i] }, body => { product_id => $p->{id}, quantity => 1 });
        is $r->{status}, 201, 'key ' . ($i + 1) . ' of 3 accepted';
    }
    my $r = api(POST => '/cart/', base => $base, token => $u->{token},
                headers => { 'Idempotency-Key' => $keys[3] }, body => { product_id => $p->{id}, quantity => 1 });
    is_problem $r, 429, 'rate-limited', 'a 4th new key within 24 h is 429';
    ok(($r->{headers}{'retry-after'} // '') =~ /^\d+$/, '... with Retry-After');
    my $again = api(POST => '/cart/', base => $base, token => $u->{token},
                    headers => { 'Idempotency-Key' => $keys[0] }, body => { product_id => $p->{id}, quantity => 1 });
    is $again->{status}, 201, 'retrying a known key is still replayed';
    is api(POST => '/cart/', base => $base, token => $u->{token}, body => { product_id => $p->{id}, quantity => 1 })->{status},
       201, 'requests without a key are not limited';
}

# --- a child killed mid-checkout: one order per key, no key stuck -------------
{
    my $u = register_user();
    my $p = create_product(price => 1234, stock => 10);
    is api(POST => '/cart/', token => $u->{token}, body => { product_id => $p->{id}, quantity => 2 })->{status},
       201, 'cart filled';
    my $key = 'kill-' . uniq();
    my $pid = $p->{id};
    # an outside session holds the product row, so the checkout waits inside
    # its transaction (after its key was taken) until we kill its child
    my $killed = kill_mid_request(
        lock => "SELECT id FROM products WHERE id = $pid FOR UPDATE",
        request => sub { api(POST => '/orders/', token => $u->{token}, headers => { 'Idempotency-Key' => $key },
                             body => {}, timeout => 10) });
    ok $killed >= 1, "SIGKILLed $killed httpd children mid-checkout";

    # the client retries with its key until it is no longer in flight
    my ($r, $tries) = retry_until_final(sub {
        api(POST => '/orders/', token => $u->{token}, headers => { 'Idempotency-Key' => $key }, body => {}) });
    is $r->{status}, 201, "the retry with the same key gets 201 ($tries tries), not a key stuck in flight";
    is psql_value("SELECT count(*) FROM orders WHERE user_id = $u->{id}"), 1, 'exactly one order for the key';
    is psql_value("SELECT stock FROM products WHERE id = $pid"), 8, 'stock taken once';
    my $again = api(POST => '/orders/', token => $u->{token}, headers => { 'Idempotency-Key' => $key }, body => {});
    is $again->{status}, 201, 'the key now replays';
    is $again->{json}{id}, $r->{json}{id}, '... the same order';
    is lc($again->{headers}{'idempotent-replayed'} // ''), 'true', '... marked replayed';
    is psql_value("SELECT count(*) FROM idempotency_keys WHERE user_id = $u->{id} AND status_code IS NULL"), 0,
       'no unanswered key row is left behind';
}

is api(GET => '/health/')->{status}, 200, 'server healthy afterwards';
done_testing;
