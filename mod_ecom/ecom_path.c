/*
 * ecom_path.c: route pattern matching, the mount-point-relative path and
 * the list limit (see ecom_path.h), moved out of ecom_router.c so they can
 * be unit-tested and fuzzed without httpd. Thread-safe: no state.
 */
#include "ecom_path.h"
#include "ecom_util.h"

#include <string.h>

int ecom_path_match_slug(const char *pattern, const char *path, long long id[2],
                         const char **slug, size_t *slug_len)
{
    int nid = 0, nslug = 0;

    if (!pattern || !path || !id) {
        return 0;
    }
    for (;;) {
        const char *pe = strchr(pattern, '/'), *se = strchr(path, '/');
        size_t plen = pe ? (size_t)(pe - pattern) : strlen(pattern);
        size_t slen = se ? (size_t)(se - path) : strlen(path);

        if (plen == 4 && memcmp(pattern, "{id}", 4) == 0) {
            if (nid == 2 || ecom_parse_id(path, slen, &id[nid]) != 0) {
                return 0;
            }
            nid++;
        }
        else if (plen == 6 && memcmp(pattern, "{slug}", 6) == 0) {
            if (!slug || !slug_len || nslug == 1
                || !ecom_slug_valid(path, slen)) {
                return 0;
            }
            *slug = path;
            *slug_len = slen;
            nslug++;
        }
        else if (plen != slen || memcmp(pattern, path, plen) != 0) {
            return 0;
        }
        if (!pe || !se) {
            return !pe && !se;
        }
        pattern = pe + 1;
        path = se + 1;
    }
}

int ecom_path_match(const char *pattern, const char *path, long long id[2])
{
    return ecom_path_match_slug(pattern, path, id, NULL, NULL);
}

int ecom_path_relative(const char *uri, const char *base, const char **rel,
                       size_t *rel_len)
{
    size_t blen, n;

    if (!uri || !rel || !rel_len) {
        return -1;
    }
    if (!base) {
        base = "";
    }
    blen = strlen(base);
    if (strncmp(uri, base, blen) != 0 || (uri[blen] && uri[blen] != '/')) {
        return -1;
    }
    uri += blen;
    while (*uri == '/') {
        /* "/api" and "/api/" are both the root; "//x" is not a path we use */
        if (uri[1] == '/') {
            return -1;
        }
        uri++;
    }
    n = strlen(uri);
    if (n && uri[n - 1] == '/') {
        n--;
    }
    *rel = uri;
    *rel_len = n;
    return 0;
}

int ecom_parse_limit(const char *s, int page_size, int page_max, int *out)
{
    size_t n, zeros;
    long long v;

    if (!out) {
        return -1;
    }
    if (!s) {
        *out = page_size;
        return 0;
    }
    n = strspn(s, "0123456789");
    zeros = strspn(s, "0");
    /* any positive integer, however large, is capped to the maximum */
    if (n == 0 || s[n] != '\0' || s[zeros] == '\0') {
        return -1;
    }
    /* leading zeros say nothing of its size: "0000000005" is 5 */
    if (n - zeros > 9 || ecom_parse_ll(s + zeros, 1, 999999999LL, &v) != 0) {
        v = page_max;
    }
    *out = v > page_max ? page_max : (int)v;
    return 0;
}
