#!/usr/bin/perl
# The category tree (issue 8, item 1): GET /categories/ and
# GET /categories/{slug}/ with product counts over whole subtrees, staff
# POST / PATCH / DELETE (401 and 403 for others), duplicate slugs, moves
# that would make a cycle, deleting a category that still holds products
# or children, ?category= on the product list taking the subtree, and bad
# input on every new field and path segment: always a 4xx problem, never
# a 5xx. The database is shared with other test files: every slug made
# here carries a unique suffix and lists are only searched, never assumed.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};

my $staff = staff_token();
my $cust = register_user();
my $u = lc uniq();
$u =~ s/[^a-z0-9]/-/g;
my %s = map { $_ => "t42-$_-$u" } qw(a b c d e);   # a > b > c, a > d; e: spare

sub post_cat {
    my (%b) = @_;
    return api(POST => '/categories/', token => $staff, body => \%b);
}
sub get_cat { api(GET => "/categories/$_[0]/") }
sub patch_cat { my ($slug, %b) = @_; api(PATCH => "/categories/$slug/", token => $staff, body => \%b) }
# every node of the tree (depth first), and the roots' slugs
sub tree {
    my $r = api(GET => '/categories/');
    return unless $r->{status} == 200 && ref $r->{json} eq 'HASH' && ref $r->{json}{items} eq 'ARRAY';
    my (@all, %by);
    my @todo = @{ $r->{json}{items} };
    while (my $n = shift @todo) { push @all, $n; $by{ $n->{slug} } = $n; unshift @todo, @{ $n->{children} } }
    return { roots => $r->{json}{items}, all => \@all, by => \%by, res => $r };
}
sub walk_products {
    my ($query) = @_;
    my (@items, $cursor, $pages);
    do {
        my $r = api(GET => "/products/?limit=50&$query" . (defined $cursor ? "&cursor=$cursor" : ''));
        return "status $r->{status}: $r->{content}" unless $r->{status} == 200;
        push @items, @{ $r->{json}{items} };
        $cursor = $r->{json}{next_cursor};
    } while (defined $cursor && ++$pages < 500);
    return [ sort { $a <=> $b } map { $_->{id} } @items ];
}

# --- create -----------------------------------------------------------------------
my $ra = post_cat(slug => $s{a}, name => "A $u");
is $ra->{status}, 201, 'POST /categories/ by staff is 201' or diag $ra->{content};
like $ra->{headers}{location} // '', qr{/categories/\Q$s{a}\E/\z}, 'Location names the new category';
is_deeply [ @{ $ra->{json} }{qw(slug name parent product_count)} ], [ $s{a}, "A $u", undef, 0 ],
    'the answer is the node: slug, name, no parent, no products';
ok is_int($ra->{json}{id}), 'with an integer id';
is_deeply $ra->{json}{children}, [], 'no children';
is_deeply $ra->{json}{ancestors}, [], 'no ancestors (a root)';

my $rb = post_cat(slug => $s{b}, name => "B $u", parent => $s{a});
is $rb->{status}, 201, 'a child of it';
is $rb->{json}{parent}, $s{a}, 'its parent is the slug';
my $rc = post_cat(slug => $s{c}, name => "C $u", parent => $s{b});
is $rc->{status}, 201, 'a grandchild';
is_deeply [ map { $_->{slug} } @{ $rc->{json}{ancestors} } ], [ $s{a}, $s{b} ], 'ancestors from the root down';
my $rd = post_cat(slug => $s{d}, name => "D $u", parent => $s{a}, _ignored => undef);
is $rd->{status}, 422, 'an unknown field is refused';
has_field_error($rd, '_ignored');
$rd = post_cat(slug => $s{d}, name => "D $u", parent => $s{a});
is $rd->{status}, 201, 'a second child of the root';

# Idempotency-Key: the same request again creates nothing
{
    my $key = "t42-$u";
    my %b = (slug => $s{e}, name => "E $u", parent => undef);
    my $r1 = api(POST => '/categories/', token => $staff, body => \%b, headers => { 'Idempotency-Key' => $key });
    my $r2 = api(POST => '/categories/', token => $staff, body => \%b, headers => { 'Idempotency-Key' => $key });
    is $r1->{status}, 201, 'POST with an Idempotency-Key (parent null: a root)';
    is $r2->{status}, 201, 'the same again is replayed';
    is $r2->{headers}{'idempotent-replayed'}, 'true', 'marked as replayed';
    is $r2->{json}{id}, $r1->{json}{id}, 'the same category';
    is api(DELETE => "/categories/$s{e}/", token => $staff)->{status}, 204, 'delete it again';
}

# --- products and subtree counts ---------------------------------------------------------
my @in_c = map { create_product(category => $s{c}) } 1 .. 2;
my $in_b = create_product(category => $s{b});
my $in_a = create_product(category => $s{a});
my $in_d = create_product(category => $s{d});
is api(PATCH => "/products/$in_d->{id}/", token => $staff, body => { active => JSON::PP::false() })->{status},
    200, 'the product of d is deactivated';

my $t = tree();
ok $t, 'GET /categories/ is 200 with items' or BAIL_OUT('no tree');
like content_type($t->{res}), qr{^application/json}, 'as JSON';
ok !exists $t->{res}{json}{next_cursor}, 'the tree is not paginated';
ok grep({ $_->{slug} eq $s{a} } @{ $t->{roots} }), 'the root category is among the roots';
ok !grep({ $_->{slug} eq $s{b} } @{ $t->{roots} }), 'its child is not';
my %want = ($s{a} => 4, $s{b} => 3, $s{c} => 2, $s{d} => 0);
is_deeply { map { $_ => $t->{by}{$_}{product_count} } keys %want }, \%want,
    'product_count covers the whole subtree, active products only (a 4, b 3, c 2, d 0)';
is_deeply [ map { $_->{slug} } @{ $t->{by}{ $s{a} }{children} } ], [ sort $s{b}, $s{d} ], 'children by slug';
is $t->{by}{ $s{c} }{parent}, $s{b}, 'a node names its parent';
my @keys = sort keys %{ $t->{by}{ $s{c} } };
is_deeply \@keys, [qw(children id name parent product_count slug)], 'a node has exactly its documented members';
my @roots = map { $_->{slug} } @{ $t->{roots} };
is_deeply \@roots, [ sort @roots ], 'roots by slug';
ok !grep({ defined $_->{parent} } @{ $t->{roots} }), 'roots have no parent';

my $gb = get_cat($s{b});
is $gb->{status}, 200, 'GET /categories/{slug}/';
is $gb->{json}{product_count}, 3, 'one node with its subtree count';
is_deeply [ map { $_->{slug} } @{ $gb->{json}{children} } ], [ $s{c} ], 'its children';
is $gb->{json}{children}[0]{product_count}, 2, 'with theirs';
is_deeply [ map { $_->{slug} } @{ $gb->{json}{ancestors} } ], [ $s{a} ], 'and its ancestors';

# ?category= takes the subtree
is_deeply walk_products("category=$s{a}"), [ sort { $a <=> $b } map { $_->{id} } @in_c, $in_b, $in_a ],
    '?category=<root> lists the active products of the whole subtree';
is_deeply walk_products("category=$s{b}"), [ sort { $a <=> $b } map { $_->{id} } @in_c, $in_b ],
    '?category=<child> its own and its children\'s';
is_deeply walk_products("category=$s{c}"), [ sort { $a <=> $b } map { $_->{id} } @in_c ], '?category=<leaf> only its own';
is_deeply walk_products("category=$s{d}"), [], 'an inactive product is not listed';
is_deeply walk_products("category=$s{c}&sort=-price&min_price=0"), [ sort { $a <=> $b } map { $_->{id} } @in_c ],
    'with other filters and a sort';
is_deeply walk_products("category=no-such-$u"), [], 'an unknown category lists nothing';

# --- who may write ------------------------------------------------------------------
for my $case ([ 'no token', undef, 401 ], [ 'a customer', $cust->{token}, 403 ]) {
    my ($who, $tok, $st) = @$case;
    ok is_problem(api(POST => '/categories/', token => $tok, body => { slug => "t42-x-$u", name => 'X' }), $st),
        "POST by $who is $st";
    ok is_problem(api(PATCH => "/categories/$s{d}/", token => $tok, body => { name => 'X' }), $st),
        "PATCH by $who is $st";
    ok is_problem(api(DELETE => "/categories/$s{d}/", token => $tok), $st), "DELETE by $who is $st";
}
is get_cat($s{d})->{json}{name}, "D $u", 'nothing was changed by them';
ok !get_cat("t42-x-$u")->{json}{id}, 'nor created';

# --- 404 ----------------------------------------------------------------------------
ok is_problem(get_cat("no-such-$u"), 404, 'not-found'), 'GET of an unknown slug is 404';
ok is_problem(patch_cat("no-such-$u", name => 'x'), 404, 'not-found'), 'PATCH of an unknown slug is 404';
ok is_problem(api(DELETE => "/categories/no-such-$u/", token => $staff), 404, 'not-found'), 'DELETE of an unknown slug is 404';
for my $seg ('Upper', 'a.b', 'a%20b', '%C3%A9t%C3%A9', 'x' x 101, "a'b", '12345678901234567890') {
    my $r = get_cat($seg);
    ok $r->{status} == 404 && is_json_ct($r), "GET /categories/$seg/ is 404 problem (not a slug, or unknown)"
        or diag "$r->{status} $r->{content}";
}
# httpd itself refuses an encoded NUL in a path (404) before the module runs
is get_cat('%00')->{status}, 404, 'GET /categories/%00/ is 404';
{
    my $r = api(PUT => "/categories/$s{d}/", token => $staff, body => {});
    is $r->{status}, 405, 'PUT is 405';
    like $r->{headers}{allow} // '', qr/\bDELETE\b/, 'Allow lists DELETE';
}

# --- conflicts ----------------------------------------------------------------------
ok is_problem(post_cat(slug => $s{b}, name => 'again'), 409, 'conflict'), 'a duplicate slug is 409';
ok is_problem(patch_cat($s{d}, slug => $s{b}), 409, 'conflict'), 'renaming onto a taken slug is 409';
ok is_problem(patch_cat($s{a}, parent => $s{c}), 409, 'category-cycle'), 'moving a category under its grandchild is 409 category-cycle';
ok is_problem(patch_cat($s{a}, parent => $s{b}), 409, 'category-cycle'), 'under its child too';
ok is_problem(patch_cat($s{a}, parent => $s{a}), 409, 'category-cycle'), 'under itself too';
is tree()->{by}{ $s{a} }{parent}, undef, 'the tree is unchanged';

my $del = api(DELETE => "/categories/$s{b}/", token => $staff);
ok is_problem($del, 409, 'category-not-empty'), 'deleting a category with children is 409 category-not-empty';
ok $del->{json}{has_children}, 'it says it has children';
$del = api(DELETE => "/categories/$s{c}/", token => $staff);
ok is_problem($del, 409, 'category-not-empty'), 'deleting a category with products is 409';
ok $del->{json}{has_products} && !$del->{json}{has_children}, 'it says it has products';
ok is_problem(api(DELETE => "/categories/$s{d}/", token => $staff), 409, 'category-not-empty'),
    'an inactive product also keeps a category from being deleted';
is get_cat($s{c})->{status}, 200, 'nothing was deleted';

# --- moves and renames ----------------------------------------------------------------
my $m = patch_cat($s{d}, parent => $s{c});
is $m->{status}, 200, 'PATCH parent moves a category' or diag $m->{content};
is $m->{json}{parent}, $s{c}, 'under its new parent';
is_deeply [ map { $_->{slug} } @{ $m->{json}{ancestors} } ], [ @s{qw(a b c)} ], 'with its new ancestors';
$m = patch_cat($s{d}, parent => undef);
is $m->{status}, 200, 'parent null';
is $m->{json}{parent}, undef, 'moves it to the top';
ok grep({ $_->{slug} eq $s{d} } @{ tree()->{roots} }), 'it is a root of the tree now';
# moving a subtree moves its counts
is patch_cat($s{c}, parent => $s{a})->{status}, 200, 'move c (2 products) from b to a';
$t = tree();
is_deeply [ map { $t->{by}{$_}{product_count} } @s{qw(a b c)} ], [ 4, 1, 2 ], 'the counts follow the move';
is patch_cat($s{c}, parent => $s{b})->{status}, 200, 'and back';

my $new_c = "t42-c2-$u";
$m = patch_cat($s{c}, slug => $new_c, name => "C renamed $u");
is $m->{status}, 200, 'PATCH slug and name';
is_deeply [ @{ $m->{json} }{qw(slug name parent product_count)} ], [ $new_c, "C renamed $u", $s{b}, 2 ],
    'the node under its new slug, same place, same products';
is get_cat($s{c})->{status}, 404, 'the old slug is gone';
is api(GET => "/products/$in_c[0]{id}/")->{json}{category}, $new_c, 'a product shows the new slug';
my ($listed) = grep { $_->{id} == $in_c[0]{id} } @{ api(GET => "/products/?category=$new_c&limit=50")->{json}{items} };
is $listed->{category}, $new_c, 'so does the (cached) product list: category writes invalidate the catalog';
is patch_cat($new_c)->{status}, 200, 'an empty PATCH changes nothing and is 200';
$s{c} = $new_c;

# --- delete -------------------------------------------------------------------------
is api(PATCH => "/products/$in_d->{id}/", token => $staff, body => { category => undef })->{status}, 200,
    'the product of d leaves it';
my $dd = api(DELETE => "/categories/$s{d}/", token => $staff);
is $dd->{status}, 204, 'DELETE of an empty category is 204';
is $dd->{content}, '', 'with no body';
ok is_problem(get_cat($s{d}), 404), 'it is gone';
ok !tree()->{by}{ $s{d} }, 'also from the tree';

# --- bad input: every field, never a 5xx ----------------------------------------------------
my @bad = (
    [ 'no slug', { name => 'x' }, 'slug' ],
    [ 'no name', { slug => "t42-n-$u" }, 'name' ],
    [ 'slug with upper case', { slug => "T42-$u", name => 'x' }, 'slug' ],
    [ 'slug with a space', { slug => "t42 $u", name => 'x' }, 'slug' ],
    [ 'slug with a slash', { slug => "t42/$u", name => 'x' }, 'slug' ],
    [ 'empty slug', { slug => '', name => 'x' }, 'slug' ],
    [ 'slug of 101 bytes', { slug => 'a' x 101, name => 'x' }, 'slug' ],
    [ 'slug a number', { slug => 42, name => 'x' }, 'slug' ],
    [ 'slug null', { slug => undef, name => 'x' }, 'slug' ],
    [ 'slug an object', { slug => {}, name => 'x' }, 'slug' ],
    [ 'empty name', { slug => "t42-n-$u", name => '' }, 'name' ],
    [ 'name of 201 characters', { slug => "t42-n-$u", name => 'n' x 201 }, 'name' ],
    [ 'name an array', { slug => "t42-n-$u", name => [] }, 'name' ],
    [ 'name true', { slug => "t42-n-$u", name => JSON::PP::true() }, 'name' ],
    [ 'unknown parent', { slug => "t42-n-$u", name => 'x', parent => "no-such-$u" }, 'parent' ],
    [ 'parent not a slug', { slug => "t42-n-$u", name => 'x', parent => 'No Such' }, 'parent' ],
    [ 'parent a number', { slug => "t42-n-$u", name => 'x', parent => 7 }, 'parent' ],
    [ 'parent empty', { slug => "t42-n-$u", name => 'x', parent => '' }, 'parent' ],
    [ 'parent an object', { slug => "t42-n-$u", name => 'x', parent => { slug => $s{a} } }, 'parent' ],
    [ 'an id', { slug => "t42-n-$u", name => 'x', id => 1 }, 'id' ],
    [ 'a product_count', { slug => "t42-n-$u", name => 'x', product_count => 9 }, 'product_count' ],
);
for my $b (@bad) {
    my ($what, $body, $field) = @$b;
    my $r = post_cat(%$body);
    ok is_problem($r, 422), "POST, $what: 422";
    has_field_error($r, $field, "POST, $what: names $field");
    next if $what =~ /^no /;
    my %pb = %$body;
    delete $pb{slug} unless $field eq 'slug';
    delete $pb{name} unless $field eq 'name';
    $r = patch_cat($s{a}, %pb);
    ok is_problem($r, 422), "PATCH, $what: 422";
    has_field_error($r, $field, "PATCH, $what: names $field");
}
ok !get_cat("t42-n-$u")->{json}{id}, 'no bad request created anything';
is get_cat($s{a})->{json}{name}, "A $u", 'nor changed anything';
for my $raw ('{', '[]', '"slug"', 'null', '{"slug": "a", "slug": ') {
    for my $req ([ POST => '/categories/' ], [ PATCH => "/categories/$s{a}/" ]) {
        my $r = api(@$req, token => $staff, body => $raw);
        ok $r->{status} >= 400 && $r->{status} < 500 && is_json_ct($r), "$req->[0] with body $raw: 4xx problem"
            or diag "$r->{status} $r->{content}";
    }
}
{
    my $r = api(POST => '/categories/', token => $staff, body => '{"slug":"x","name":"y"}', content_type => 'text/plain');
    is $r->{status}, 415, 'a body that is not JSON is 415';
}
for my $q ('category=%FF', 'category=' . ('x' x 101), 'category=' . ('x' x 500), "category=%27%20OR%201%3D1", 'category=',
           'category=Upper', 'category=a/b') {
    my $r = api(GET => "/products/?$q");
    ok $r->{status} < 500 && is_json_ct($r), "GET /products/?$q: no 5xx ($r->{status})";
}
ok is_problem(api(GET => '/products/?category=%FF'), 400), '?category= that is not UTF-8 is 400';
my $r0 = api(GET => '/categories/?limit=abc&cursor=zzz&x=1');
is $r0->{status}, 200, 'GET /categories/ ignores query parameters';

# --- crossing moves: never a cycle ---------------------------------------------------------
# x under y and y under x at the same moment: each check alone passes, so
# only the writes' serialization (the advisory lock) keeps one of them out
my ($x, $y) = ("t42-x-$u", "t42-y-$u");
is post_cat(slug => $_, name => $_)->{status}, 201, "root $_" for $x, $y;
for my $round (1 .. 5) {
    my @r = parallel(2, 1, sub {
        my ($i) = @_;
        my $r = patch_cat($i ? $y : $x, parent => $i ? $x : $y);
        return { status => $r->{status}, type => ($r->{json} || {})->{type} };
    });
    is_deeply [ sort map { $_->{status} // 0 } @r ], [ 200, 409 ], "round $round: one move wins, the other is a 409";
    my ($lost) = grep { ($_->{status} // 0) == 409 } @r;
    like $lost->{type} // '', qr/category-cycle\z/, "round $round: category-cycle";
    my $tt = tree();
    ok $tt->{by}{$x} && $tt->{by}{$y}, "round $round: both are still in the tree (no cycle hid them)";
    is patch_cat($_, parent => undef)->{status}, 200, "round $round: $_ back to the top" for $x, $y;
}
# the database's own guard, for writers other than the module
psql_do("UPDATE categories SET parent_id = (SELECT id FROM categories WHERE slug = '$y') WHERE slug = '$x'");
ok !eval { psql_do("UPDATE categories SET parent_id = (SELECT id FROM categories WHERE slug = '$x') WHERE slug = '$y'"); 1 },
    'sql/012: an UPDATE that closes a cycle fails in the database too';
ok !eval { psql_do("UPDATE categories SET parent_id = id WHERE slug = '$y'"); 1 }, 'and so does being its own parent';
is get_cat($x)->{json}{parent}, $y, 'the allowed move took effect';
is api(DELETE => "/categories/$x/", token => $staff)->{status}, 204, "delete $x";
is api(DELETE => "/categories/$y/", token => $staff)->{status}, 204, "delete $y";

# --- tidy up ----------------------------------------------------------------------------
for my $p (@in_c, $in_b, $in_a) {
    api(PATCH => "/products/$p->{id}/", token => $staff, body => { category => undef });
}
is api(DELETE => "/categories/$s{$_}/", token => $staff)->{status}, 204, "delete $_" for qw(c b a);

done_testing;
