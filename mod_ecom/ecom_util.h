/*
 * ecom_util.h: the httpd-free helpers of mod_ecom.
 *
 * Strict number parsing, input validation (e-mail, currency, idempotency
 * keys, UTF-8), base64url, the opaque pagination cursor and PostgreSQL
 * error text. Nothing here includes an httpd or APR header, so the unit
 * tests (t/unit/) exercise it as plain C. Money arithmetic lives in
 * ecom_money.h, the router's path work in ecom_path.h.
 */
#ifndef ECOM_UTIL_H
#define ECOM_UTIL_H

#include <stddef.h>

/* Parses a whole string as a base-10 integer in [min, max]: no sign other
 * than a leading '-', no spaces, no leading '+', no trailing garbage.
 * Returns 0 on success, -1 otherwise. */
int ecom_parse_ll(const char *s, long long min, long long max, long long *out);

/* Parses a path segment of length len as a resource id: 1..18 digits, > 0. */
int ecom_parse_id(const char *s, size_t len, long long *out);

/* 1 when the len bytes at s are a category slug: 1..100 bytes of
 * [a-z0-9_-], the schema's CHECK on categories.slug (s need not be
 * NUL-terminated; a NUL byte inside len is refused). */
int ecom_slug_valid(const char *s, size_t len);

/* Number of code points of a NUL-terminated UTF-8 string, or -1 when it is
 * not valid UTF-8 (overlongs, surrogates and values > U+10FFFF rejected). */
long ecom_utf8_len(const char *s);

/* 1 when s looks like a deliverable address: local@domain.tld, 3..254
 * bytes, no spaces or control characters, one '@', a dot in the domain. */
int ecom_email_valid(const char *s);

/* 1 when s is three upper-case ASCII letters (ISO 4217 shape). */
int ecom_currency_valid(const char *s);

/* 1 when s is an acceptable Idempotency-Key: 1..255 visible ASCII chars. */
int ecom_idem_key_valid(const char *s);

/* base64url without padding. out must hold ECOM_B64_LEN(n) + 1 bytes. */
#define ECOM_B64_LEN(n) ((((n) + 2) / 3) * 4)
void ecom_b64url_encode(const unsigned char *in, size_t n, char *out);
/* Decodes into out (room for outmax bytes); returns the length or -1. */
long ecom_b64url_decode(const char *in, unsigned char *out, size_t outmax);

/* Lower-case hex of n bytes; out holds 2n + 1 bytes. */
void ecom_hex(const unsigned char *in, size_t n, char *out);

/*
 * Keyset cursors. A cursor carries a one-letter tag naming the ordering it
 * belongs to and up to two integer keys (e.g. price and id). It is opaque to
 * clients (base64url) but not secret; decoding validates everything, so a
 * forged cursor can only point at another place in the same list.
 */
#define ECOM_CURSOR_MAX 64
void ecom_cursor_encode(char tag, long long a, long long b,
                        char out[ECOM_CURSOR_MAX]);
int ecom_cursor_decode(const char *s, char tag, long long *a, long long *b);

/* Unix seconds as RFC 3339 UTC ("2026-11-26T10:00:00Z"); out holds
 * ECOM_RFC3339_LEN bytes. Years outside 0000..9999 are clamped. */
#define ECOM_RFC3339_LEN 80   /* 21 used; room for any int widths */
void ecom_rfc3339(long long epoch, char out[ECOM_RFC3339_LEN]);

/*
 * PostgreSQL error messages as libpq formats them with
 * PQERRORS_VERBOSE: "ERROR:  23514: new row ... violates check constraint
 * \"x\"\nDETAIL:  Failing row contains (...)\n...CONSTRAINT NAME:  x\n".
 * ecom_pg_sqlstate copies the five-character SQLSTATE into out (6 bytes)
 * and returns 0, or returns -1 when msg carries none (libpq's own
 * connection errors). ecom_pg_field copies the value of a "NAME:  value"
 * line (e.g. "CONSTRAINT NAME") into out (outlen bytes, truncated) and
 * returns 0, or -1 when absent. ecom_pg_primary copies the first line's
 * text after the SQLSTATE (the primary message, which never holds row
 * values; DETAIL does) the same way. None of them reads past the NUL.
 */
int ecom_pg_sqlstate(const char *msg, char out[6]);
int ecom_pg_field(const char *msg, const char *name, char *out, size_t outlen);
int ecom_pg_primary(const char *msg, char *out, size_t outlen);

#endif /* ECOM_UTIL_H */
