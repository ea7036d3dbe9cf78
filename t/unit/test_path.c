/*
 * test_path.c: unit tests of ecom_path.c (route matching, the path below
 * the mount point, ?limit=), hostile inputs included.
 */
#include "ecom_path.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

static int m(const char *pattern, const char *path)
{
    long long id[2] = { 0, 0 };

    return ecom_path_match(pattern, path, id);
}

static void test_match(void)
{
    long long id[2] = { 0, 0 };

    OK(m("products", "products") == 1, "literal match");
    OK(m("products", "product") == 0 && m("products", "productss") == 0,
       "literal prefix or extension does not match");
    OK(m("products", "Products") == 0, "case-sensitive");
    OK(m("auth/login", "auth/login") == 1 && m("auth/login", "auth/logout") == 0,
       "two literal segments");
    OK(m("", "") == 1, "empty pattern matches the root");
    OK(m("cart", "") == 0 && m("", "cart") == 0, "root and a segment differ");
    OK(ecom_path_match("products/{id}", "products/17", id) == 1 && id[0] == 17,
       "{id} captures 17");
    OK(ecom_path_match("products/{id}/reviews/{id}", "products/3/reviews/4", id) == 1
       && id[0] == 3 && id[1] == 4, "two ids captured in order");
    OK(m("a/{id}/b/{id}/c/{id}", "a/1/b/2/c/3") == 0, "a third {id} never matches");
    OK(ecom_path_match("products/{id}", "products/007", id) == 1 && id[0] == 7,
       "leading zeros in an id are accepted (as ecom_parse_id)");
    OK(ecom_path_match("products/{id}", "products/999999999999999999", id) == 1
       && id[0] == 999999999999999999LL, "18-digit id");
    OK(m("products/{id}", "products/1234567890123456789") == 0, "19-digit id refused");
    OK(m("products/{id}", "products/99999999999999999999999999999999") == 0,
       "32-digit id refused");
    OK(m("products/{id}", "products/0") == 0 && m("products/{id}", "products/000") == 0,
       "id 0 refused");
    OK(m("products/{id}", "products/-1") == 0 && m("products/{id}", "products/+1") == 0
       && m("products/{id}", "products/1a") == 0 && m("products/{id}", "products/ 1") == 0,
       "signed or non-numeric ids refused");
    OK(m("products/{id}", "products/{id}") == 0, "a literal {id} in the path is no id");
    OK(m("products/{id}", "products/") == 0 && m("products/{id}", "products") == 0,
       "missing id");
    OK(m("products/{id}", "products/1/") == 0 && m("products/{id}", "products//1") == 0
       && m("products/{id}", "products/1/x") == 0, "extra slashes or segments");
    OK(m("products", "////////////////") == 0 && m("", "/") == 0 && m("{id}", "/") == 0,
       "slashes only");
    OK(m("products/{id}", "products/1\xff") == 0 && m("products", "pr\x01ducts") == 0,
       "control and high bytes");
    OK(ecom_path_match(NULL, "x", id) == 0 && ecom_path_match("x", NULL, id) == 0
       && ecom_path_match("x", "x", NULL) == 0, "NULL arguments never match");
    {
        size_t n = 100000;
        char *p = malloc(n + 1);

        if (!p) {
            OK(0, "malloc");
            return;
        }
        memset(p, 'a', n);
        p[n] = '\0';
        OK(m("products", p) == 0 && m("{id}", p) == 0, "100000-byte segment");
        memset(p, '1', n);
        OK(m("{id}", p) == 0, "100000-digit id");
        for (size_t i = 0; i < n; i++) {
            p[i] = (char)(i % 2 ? '/' : '1');
        }
        p[n - 1] = '1';
        OK(m("{id}/{id}", p) == 0 && m("{id}/{id}", "1/1") == 1,
           "50000 segments of ids");
        free(p);
    }
}

/* 1 when path matches pattern and its slug is want */
static int ms(const char *pattern, const char *path, const char *want)
{
    long long id[2] = { 0, 0 };
    const char *slug = NULL;
    size_t n = 0;

    if (ecom_path_match_slug(pattern, path, id, &slug, &n) != 1) {
        return 0;
    }
    return slug && n == strlen(want) && memcmp(slug, want, n) == 0;
}

static int ms0(const char *pattern, const char *path)
{
    long long id[2] = { 0, 0 };
    const char *slug = NULL;
    size_t n = 0;

    return ecom_path_match_slug(pattern, path, id, &slug, &n);
}

static void test_slug(void)
{
    long long id[2] = { 0, 0 };
    const char *slug = NULL;
    size_t n = 0;
    char big[102];

    OK(ms("categories/{slug}", "categories/home-kitchen", "home-kitchen"),
       "{slug} captures a slug");
    OK(ms("categories/{slug}", "categories/bed_bath_table", "bed_bath_table")
       && ms("categories/{slug}", "categories/42", "42")
       && ms("categories/{slug}", "categories/-", "-"),
       "underscores, digits only, a lone dash");
    OK(ms("categories/{slug}/x", "categories/toys/x", "toys"),
       "a slug followed by another segment: the length stops at '/'");
    OK(ecom_path_match_slug("a/{id}/{slug}", "a/7/bags", id, &slug, &n) == 1
       && id[0] == 7 && n == 4 && memcmp(slug, "bags", 4) == 0,
       "an id and a slug in one pattern");
    OK(ms0("categories/{slug}", "categories/Home") == 0
       && ms0("categories/{slug}", "categories/a.b") == 0
       && ms0("categories/{slug}", "categories/a b") == 0
       && ms0("categories/{slug}", "categories/%41") == 0
       && ms0("categories/{slug}", "categories/\xc3\xa9") == 0,
       "upper case, dots, spaces, percent signs, UTF-8 refused");
    OK(ms0("categories/{slug}", "categories/") == 0
       && ms0("categories/{slug}", "categories") == 0
       && ms0("categories/{slug}", "categories/a/") == 0
       && ms0("categories/{slug}", "categories//a") == 0,
       "missing slug, extra slashes");
    memset(big, 'a', 100);
    big[100] = '\0';
    OK(ms0("{slug}", big) == 1, "100-byte slug");
    big[100] = 'a';
    big[101] = '\0';
    OK(ms0("{slug}", big) == 0, "101-byte slug refused");
    OK(ms0("{slug}/{slug}", "a/b") == 0, "a second {slug} never matches");
    OK(m("categories/{slug}", "categories/toys") == 0,
       "ecom_path_match (no slug to fill) never matches {slug}");
    OK(ecom_path_match_slug("{slug}", "a", id, NULL, &n) == 0
       && ecom_path_match_slug("{slug}", "a", id, &slug, NULL) == 0,
       "NULL slug outputs never match {slug}");
    OK(ms("products/{id}", "products/3", "") == 0 && ms0("products/{id}", "products/3") == 1,
       "a pattern without {slug} matches as before");
}

/* 0 and the relative path equals want (with its length), or -1 wanted. */
static int rel(const char *uri, const char *base, const char *want)
{
    const char *r = NULL;
    size_t n = 99;
    int rv = ecom_path_relative(uri, base, &r, &n);

    if (!want) {
        return rv == -1 && r == NULL && n == 99;
    }
    return rv == 0 && r >= uri && r + n <= uri + strlen(uri) && n == strlen(want)
           && memcmp(r, want, n) == 0;
}

static void test_relative(void)
{
    OK(rel("/api", "/api", "") && rel("/api/", "/api", ""), "/api and /api/ are the root");
    OK(rel("/api/cart", "/api", "cart") && rel("/api/cart/", "/api", "cart"),
       "one trailing slash dropped");
    OK(rel("/api/products/12/", "/api", "products/12"), "nested path");
    OK(rel("/api/cart//", "/api", "cart/"), "only one trailing slash dropped");
    OK(rel("/api/cart//x", "/api", "cart//x"), "later // left to the matcher");
    OK(rel("/apix", "/api", NULL) && rel("/apix/cart", "/api", NULL),
       "/apix is not under /api");
    OK(rel("/ap", "/api", NULL) && rel("/other/api", "/api", NULL) && rel("", "/api", NULL),
       "other paths are not under /api");
    OK(rel("/api//cart", "/api", NULL) && rel("/api//", "/api", NULL),
       "// right after the base refused");
    OK(rel("/", "", "") && rel("", "", "") && rel("/", NULL, ""), "root mount: / is the root");
    OK(rel("/products/", "", "products") && rel("/products/", NULL, "products"),
       "root mount: /products/");
    OK(rel("products", "", NULL), "root mount: a path without its leading slash refused");
    OK(rel("//", "", NULL) && rel("//products", "", NULL), "root mount: // refused");
    OK(rel("/a/b/api/x", "/a/b/api", "x"), "deep mount point");
    OK(ecom_path_relative(NULL, "", &(const char *){ NULL }, &(size_t){ 0 }) == -1,
       "NULL uri refused");
    {
        size_t n = 100000;
        char *u = malloc(n + 1), *want = malloc(n + 1);

        if (!u || !want) {
            OK(0, "malloc");
            free(u);
            free(want);
            return;
        }
        memset(u, '/', n);
        u[n] = '\0';
        memcpy(u, "/api", 4);
        OK(rel(u, "/api", NULL), "100000 slashes after the base refused");
        memset(u + 5, 'x', n - 6);
        memset(want, 'x', n - 6);
        want[n - 6] = '\0';
        OK(rel(u, "/api", want), "100000-byte path, trailing slash dropped");
        free(u);
        free(want);
    }
}

static void test_limit(void)
{
    static const char *const bad[] = {
        "", "0", "00", "000", "-1", "-0", "+5", "1x", " 1", "1 ", "1.5", "0x10",
        "1e2", "abc", "1\xff", "\t1", "--1",
    };
    char big[1001];
    int v = 77, refused = 1;

    OK(ecom_parse_limit(NULL, 20, 100, &v) == 0 && v == 20, "absent: the page size");
    OK(ecom_parse_limit("1", 20, 100, &v) == 0 && v == 1, "1");
    OK(ecom_parse_limit("100", 20, 100, &v) == 0 && v == 100, "the maximum itself");
    OK(ecom_parse_limit("101", 20, 100, &v) == 0 && v == 100, "101 capped to 100");
    OK(ecom_parse_limit("05", 20, 100, &v) == 0 && v == 5, "leading zero: 05 is 5");
    OK(ecom_parse_limit("000000005", 20, 100, &v) == 0 && v == 5, "000000005 is 5");
    OK(ecom_parse_limit("0000000005", 20, 100, &v) == 0 && v == 5,
       "0000000005 is 5, not the maximum (leading zeros are not digits of size)");
    OK(ecom_parse_limit("000000000000000000000000000042", 20, 100, &v) == 0 && v == 42,
       "42 after 28 zeros is 42");
    OK(ecom_parse_limit("0000000001000000000", 20, 100, &v) == 0 && v == 100,
       "10 significant digits after zeros capped");
    OK(ecom_parse_limit("999999999", 20, 100, &v) == 0 && v == 100, "9 digits capped");
    OK(ecom_parse_limit("1000000000", 20, 100, &v) == 0 && v == 100, "10 digits capped");
    OK(ecom_parse_limit("99999999999999999999999", 20, 100, &v) == 0 && v == 100,
       "23 digits capped");
    memset(big, '9', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    OK(ecom_parse_limit(big, 20, 100, &v) == 0 && v == 100, "1000 digits capped");
    OK(ecom_parse_limit("2", 1, 1, &v) == 0 && v == 1, "page_max 1 caps 2 to 1");
    v = 77;
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        if (ecom_parse_limit(bad[i], 20, 100, &v) != -1) {
            printf("# accepted: '%s'\n", bad[i]);
            refused = 0;
        }
    }
    OK(refused && v == 77, "zero, signs, spaces, garbage refused, out untouched");
    OK(ecom_parse_limit("5", 20, 100, NULL) == -1, "NULL out refused");
}

void test_path(void)
{
    test_match();
    test_slug();
    test_relative();
    test_limit();
}
