/*
 * fuzz_path.c: libFuzzer target for ecom_path.c, the first code to see a
 * request's URI and ?limit=. The input is split at '\n' into a route
 * pattern, a URI, a mount point and a limit value (missing pieces are "");
 * each piece is copied to a buffer of its exact size so that any read past
 * its NUL is an ASan report. Checks, beyond "no crash":
 *   - a relative path lies inside the URI, below the base, and starts with
 *     no '/'; it is the rest of the URI without one trailing '/', if any;
 *   - a pattern without a "{id}" segment matches exactly the identical
 *     path; a match has as many segments as its pattern and captures one
 *     id in 1 .. 10^18 - 1 per "{id}" segment, at most two, and one slug
 *     (a whole segment of 1..100 bytes of [a-z0-9_-], pointing into the
 *     path) per "{slug}" segment, at most one; ecom_path_match (no slug
 *     to capture into) never matches a "{slug}" pattern;
 *   - a limit is accepted exactly when it is all digits and not all zeros,
 *     and then lies in 1 .. page_max and equals min(value, page_max).
 */
#include "ecom_path.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NPIECES 4

static char *piece(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    const uint8_t *e = nl ? nl : end;
    size_t n = (size_t)(e - *p);
    char *s = malloc(n + 1);

    if (!s) {
        abort();
    }
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nl ? nl + 1 : end;
    return s;
}

/* Number of '/'-separated segments, and how many are exactly "{id}" and
 * "{slug}". */
static int segments(const char *s, int *ids, int *slugs)
{
    int n = 1;
    const char *seg = s;

    *ids = 0;
    *slugs = 0;
    for (;; s++) {
        if (*s == '/' || !*s) {
            *ids += s - seg == 4 && memcmp(seg, "{id}", 4) == 0;
            *slugs += s - seg == 6 && memcmp(seg, "{slug}", 6) == 0;
            if (!*s) {
                return n;
            }
            n++;
            seg = s + 1;
        }
    }
}

static int slug_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
           || c == '-';
}

static void check_match(const char *pattern, const char *path)
{
    long long id[2] = { 0, 0 }, id3[2] = { 0, 0 };
    const char *slug = NULL;
    size_t slug_len = 0;
    int hit = ecom_path_match_slug(pattern, path, id, &slug, &slug_len);
    int nid, nslug, path_ids, path_slugs;
    int nseg = segments(pattern, &nid, &nslug);

    /* without a slug to capture into, a "{slug}" pattern never matches */
    if (ecom_path_match(pattern, path, id3) != (nslug ? 0 : hit)) {
        abort();
    }
    if (nid == 0 && nslug == 0) {
        if (hit != (strcmp(pattern, path) == 0) || slug) {
            abort();
        }
        return;
    }
    if (hit) {
        if (nid > 2 || nslug > 1 || nseg != segments(path, &path_ids, &path_slugs)) {
            abort();
        }
        for (int i = 0; i < 2; i++) {
            if ((i < nid && (id[i] < 1 || id[i] > 999999999999999999LL))
                || (i >= nid && id[i] != 0)) {
                abort();
            }
        }
        if (nslug != (slug != NULL)) {
            abort();
        }
        if (slug) {
            if (slug < path || slug + slug_len > path + strlen(path)
                || slug_len < 1 || slug_len > 100
                || (slug[slug_len] != '\0' && slug[slug_len] != '/')) {
                abort();
            }
            for (size_t i = 0; i < slug_len; i++) {
                if (!slug_char(slug[i])) {
                    abort();
                }
            }
        }
    }
}

static void check_relative(const char *uri, const char *base)
{
    const char *rel = NULL;
    size_t rel_len = 0, ulen = strlen(uri), blen = strlen(base), rest;
    char *copy;

    if (ecom_path_relative(uri, base, &rel, &rel_len) != 0) {
        return;
    }
    if (rel < uri + blen || rel > uri + ulen || rel_len > ulen
        || strncmp(uri, base, blen) != 0) {
        abort();
    }
    rest = strlen(rel);
    /* exactly one trailing slash goes */
    if ((rest && rel[0] == '/') || rel + rest != uri + ulen
        || rel_len != (rest && rel[rest - 1] == '/' ? rest - 1 : rest)) {
        abort();
    }
    /* what the router does next: match the routes against it */
    copy = strndup(rel, rel_len);
    if (!copy) {
        abort();
    }
    check_match("products/{id}", copy);
    check_match("products/{id}/reviews/{id}", copy);
    check_match("cart", copy);
    check_match("categories/{slug}", copy);
    free(copy);
}

static void check_limit(const char *s, int page_size, int page_max)
{
    size_t n = strspn(s, "0123456789");
    int well_formed = s[0] && s[n] == '\0' && s[strspn(s, "0")] != '\0';
    long long value = 0;
    int out = -7;
    int rv = ecom_parse_limit(s, page_size, page_max, &out);

    if ((rv == 0) != well_formed) {
        abort();
    }
    if (rv != 0) {
        if (out != -7) {
            abort();
        }
        return;
    }
    for (const char *p = s; *p; p++) {
        value = value * 10 + (*p - '0');
        if (value > 1000000000LL) {
            value = 1000000000LL;   /* saturate: only min(value, max) matters */
        }
    }
    if (out < 1 || out > page_max || out != (value < page_max ? value : page_max)) {
        abort();
    }
    if (ecom_parse_limit(NULL, page_size, page_max, &out) != 0 || out != page_size) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *pc[NPIECES];
    int page_max = 1 + (size ? data[0] : 0) * 4, page_size = 1 + page_max / 5;

    for (int i = 0; i < NPIECES; i++) {
        pc[i] = piece(&p, end);
    }
    check_match(pc[0], pc[1]);
    check_match(pc[0], pc[0]);
    check_relative(pc[1], pc[2]);
    check_relative(pc[1], "");
    check_relative(pc[1], "/api");
    check_limit(pc[3], page_size, page_max);
    check_limit(pc[1], page_size, page_max);
    for (int i = 0; i < NPIECES; i++) {
        free(pc[i]);
    }
    return 0;
}
