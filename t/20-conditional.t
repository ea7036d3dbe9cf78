#!/usr/bin/perl
# Conditional reads of a product (GET /products/{id}/), by httpd's own rules
# (ap_meets_conditions): If-None-Match with the ETag, a weak W/ form of it,
# a list or "*" is 304 with no body; If-Match that matches is 200 and one
# that does not is 412 problem+json. The product has no Last-Modified, so
# If-Modified-Since and If-Unmodified-Since change nothing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $p = create_product(price => 2001, stock => 5);
my $path = "/products/$p->{id}/";
my $g = api(GET => $path);
is $g->{status}, 200, 'detail 200';
my $etag = $g->{headers}{etag};
like $etag // '', qr/\A"[0-9a-f]+"\z/, 'a strong ETag';
ok !exists $g->{headers}{'last-modified'}, 'no Last-Modified';
$etag //= '"none"';

sub get_with { api(GET => $path, headers => { @_ }) }
sub not_modified {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is $r->{status}, 304, "$name: 304";
    is $r->{content}, '', "$name: no body";
    is $r->{headers}{etag}, $etag, "$name: with the ETag";
}
sub full {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is $r->{status}, 200, "$name: 200";
    is ref $r->{json} eq 'HASH' && $r->{json}{id}, $p->{id}, "$name: with the product";
}

# If-None-Match
not_modified(get_with('If-None-Match' => $etag), 'If-None-Match, the ETag');
not_modified(get_with('If-None-Match' => "W/$etag"), 'If-None-Match, its weak form (weak comparison)');
not_modified(get_with('If-None-Match' => qq{"other", $etag}), 'If-None-Match, a list holding it');
not_modified(get_with('If-None-Match' => qq{"other",W/$etag}), 'If-None-Match, a list holding its weak form');
not_modified(get_with('If-None-Match' => '*'), 'If-None-Match: *');
full(get_with('If-None-Match' => '"not-the-etag"'), 'If-None-Match, another ETag');
full(get_with('If-None-Match' => qq{"a", W/"b"}), 'If-None-Match, a list without it');
my $h = api(HEAD => $path, headers => { 'If-None-Match' => $etag });
is $h->{status}, 304, 'HEAD with If-None-Match, the ETag: 304';

# If-Match
full(get_with('If-Match' => $etag), 'If-Match, the ETag');
full(get_with('If-Match' => qq{"other", $etag}), 'If-Match, a list holding it');
full(get_with('If-Match' => '*'), 'If-Match: *');
my $f = get_with('If-Match' => '"not-the-etag"');
is_problem $f, 412, 'precondition-failed', 'If-Match, another ETag: 412 problem+json';
ok !exists $f->{headers}{etag}, 'the 412 carries no ETag (it is not the product)';
is_problem get_with('If-Match' => "W/$etag"), 412, 'precondition-failed',
    'If-Match, the weak form: 412 (If-Match compares strongly)';

# no Last-Modified: dates are not compared with anything
my $now = POSIX::strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime);
my $past = 'Sun, 06 Nov 1994 08:49:37 GMT';
full(get_with('If-Modified-Since' => $now), 'If-Modified-Since, now');
full(get_with('If-Modified-Since' => $past), 'If-Modified-Since, long ago');
not_modified(get_with('If-None-Match' => $etag, 'If-Modified-Since' => $past),
             'If-None-Match, the ETag, with an old If-Modified-Since');
full(get_with('If-Unmodified-Since' => $past), 'If-Unmodified-Since, long ago');
full(get_with('If-Match' => $etag, 'If-Unmodified-Since' => $past),
     'If-Match, the ETag, with an old If-Unmodified-Since');

# after a change the old ETag no longer matches
my $staff = staff_token();
is api(PATCH => $path, token => $staff, body => { name => 'Changed by 20-conditional' })->{status}, 200, 'PATCH 200';
full(get_with('If-None-Match' => $etag), 'If-None-Match, the old ETag after a change');
is_problem get_with('If-Match' => $etag), 412, 'precondition-failed', 'If-Match, the old ETag after a change: 412';

# an inactive product is 404 whatever the conditions
is api(PATCH => $path, token => $staff, body => { active => JSON::PP::false() })->{status}, 200, 'deactivated';
is_problem get_with('If-None-Match' => '*'), 404, 'not-found', 'If-None-Match: * on a hidden product is 404';
is_problem get_with('If-Match' => '*'), 404, 'not-found', 'If-Match: * on a hidden product is 404';

done_testing;
