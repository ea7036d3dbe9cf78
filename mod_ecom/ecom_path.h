/*
 * ecom_path.h: the router's string work, without httpd.
 *
 * A request path is first made relative to the mount point
 * (ecom_path_relative), then matched against route patterns
 * (ecom_path_match); list endpoints read their ?limit= with
 * ecom_parse_limit. All three only read their inputs (the relative path
 * points into the URI, nothing is copied or allocated), accept any
 * NUL-terminated string however hostile, and never read past its NUL.
 */
#ifndef ECOM_PATH_H
#define ECOM_PATH_H

#include <stddef.h>

/*
 * Matches path (relative, no leading or trailing slash) against pattern:
 * segments joined by '/', compared exactly, where a "{id}" segment
 * captures a positive integer of 1..18 digits (ecom_parse_id: leading
 * zeros allowed) into id[0], then id[1], and a "{slug}" segment captures
 * a slug (ecom_slug_valid: 1..100 bytes of [a-z0-9_-]) as a pointer into
 * path and its length (not NUL-terminated: the segment may be followed by
 * '/'). A pattern with a third "{id}" or a second "{slug}" never matches,
 * nor does a "{slug}" pattern when slug or slug_len is NULL. Returns 1 on
 * a match, 0 otherwise; on 0, id[] and the slug may have been partly
 * written.
 */
int ecom_path_match_slug(const char *pattern, const char *path, long long id[2],
                         const char **slug, size_t *slug_len);
/* ecom_path_match_slug without a slug: "{slug}" patterns never match. */
int ecom_path_match(const char *pattern, const char *path, long long id[2]);

/*
 * The part of uri below the mount point base ("" or NULL when mounted at
 * the root; otherwise without a trailing slash, e.g. "/api"): returns 0,
 * points *rel into uri just after base and one '/', and sets *rel_len to
 * the rest's length without ONE trailing '/'. So under "/api", "/api" and
 * "/api/" are the root (*rel_len 0) and "/api/cart/" is "cart".
 * Returns -1 when uri is not under base ("/apix", "/other") or has "//"
 * right after base ("/api//cart"); later "//" are left to the matcher.
 */
int ecom_path_relative(const char *uri, const char *base, const char **rel,
                       size_t *rel_len);

/*
 * The ?limit= value s of a list: NULL (absent) gives page_size; a
 * positive decimal integer gives itself, capped to page_max however many
 * digits it has; anything else ("", "0", "00", "-1", "+1", "1x", " 1",
 * "1.5") is -1, for a 400. The caller keeps 1 <= page_size <= page_max.
 * Returns 0 and sets *out, or -1.
 */
int ecom_parse_limit(const char *s, int page_size, int page_max, int *out);

#endif /* ECOM_PATH_H */
