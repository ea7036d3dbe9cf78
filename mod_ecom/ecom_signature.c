/*
 * ecom_signature.c: Ecom-Signature parsing, HMAC-SHA256 and constant-time
 * comparison (see ecom_signature.h). The header is read in place, without
 * copies or allocation; the MAC is computed with OpenSSL 3's EVP_MAC over
 * the pieces "<t>", "." and the body, so the body is never copied either.
 */
#include "ecom_signature.h"
#include "ecom_util.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <string.h>

#define MAC_LEN ((size_t)32)
#define T_DIGITS_MAX 18   /* < 10^18: fits a long long, no sign */

typedef struct {
    const char *t;        /* the t value as sent (it is what was signed) */
    size_t t_len;
    long long t_val;
    size_t n_v1;
    unsigned char v1[ECOM_SIGNATURE_MAX_V1][MAC_LEN];
} parsed_header;

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* 64 hex digits of either case into 32 bytes; 0 or -1. */
static int decode_mac(const char *s, size_t len, unsigned char out[MAC_LEN])
{
    if (len != 2 * MAC_LEN) {
        return -1;
    }
    for (size_t i = 0; i < MAC_LEN; i++) {
        int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static int parse_t(const char *s, size_t len, long long *out)
{
    long long v = 0;

    if (len == 0 || len > T_DIGITS_MAX) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* One "key=value" element (already trimmed); 0 or -1 for malformed. */
static int parse_element(const char *e, size_t len, parsed_header *h)
{
    const char *eq = memchr(e, '=', len);
    const char *v;
    size_t klen, vlen;

    if (!eq || eq == e) {
        return -1;
    }
    klen = (size_t)(eq - e);
    v = eq + 1;
    vlen = len - klen - 1;
    if (klen == 1 && e[0] == 't') {
        if (h->t || parse_t(v, vlen, &h->t_val) != 0) {
            return -1;
        }
        h->t = v;
        h->t_len = vlen;
    }
    else if (klen == 2 && e[0] == 'v' && e[1] == '1') {
        if (h->n_v1 == ECOM_SIGNATURE_MAX_V1
            || decode_mac(v, vlen, h->v1[h->n_v1]) != 0) {
            return -1;
        }
        h->n_v1++;
    }
    /* any other key: ignored */
    return 0;
}

static int parse_header(const char *header, size_t len, parsed_header *h)
{
    const char *p = header, *end = header + len;

    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = p, *ee = comma ? comma : end;

        while (e < ee && is_ows(*e)) {
            e++;
        }
        while (ee > e && is_ows(ee[-1])) {
            ee--;
        }
        if (parse_element(e, (size_t)(ee - e), h) != 0) {
            return -1;
        }
        if (!comma) {
            return h->t && h->n_v1 ? 0 : -1;
        }
        p = comma + 1;
    }
}

static int hmac_sha256(const unsigned char *key, size_t key_len,
                       const char *t, size_t t_len, const char *body,
                       size_t body_len, unsigned char mac[MAC_LEN])
{
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    size_t out_len = 0;
    int ok;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    ok = c && EVP_MAC_init(c, key, key_len, params)
         && EVP_MAC_update(c, (const unsigned char *)t, t_len)
         && EVP_MAC_update(c, (const unsigned char *)".", 1)
         && (body_len == 0 || EVP_MAC_update(c, (const unsigned char *)body,
                                             body_len))
         && EVP_MAC_final(c, mac, &out_len, MAC_LEN) && out_len == MAC_LEN;
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    return ok ? 0 : -1;
}

ecom_sig_result ecom_signature_verify(const char *header,
                                      const unsigned char *secret,
                                      size_t secret_len, const char *body,
                                      size_t body_len, long long now,
                                      long long tolerance)
{
    parsed_header h;
    unsigned char mac[MAC_LEN];
    size_t len;
    __int128 age;
    int match = 0;

    if (!header || !*header) {
        return ECOM_SIG_MISSING;
    }
    len = strnlen(header, ECOM_SIGNATURE_HEADER_MAX + 1);
    memset(&h, 0, sizeof(h));
    if (len > ECOM_SIGNATURE_HEADER_MAX || parse_header(header, len, &h) != 0) {
        return ECOM_SIG_MALFORMED;
    }
    /* in 128 bits: now may be anything */
    age = (__int128)now - h.t_val;
    if (age < 0) {
        age = -age;
    }
    if (age > tolerance) {
        return ECOM_SIG_STALE;
    }
    if (!secret || secret_len == 0 || (!body && body_len)
        || hmac_sha256(secret, secret_len, h.t, h.t_len, body, body_len,
                       mac) != 0) {
        return ECOM_SIG_MISMATCH;
    }
    /* every value is compared, so the time taken says nothing of which */
    for (size_t i = 0; i < h.n_v1; i++) {
        match |= CRYPTO_memcmp(mac, h.v1[i], MAC_LEN) == 0;
    }
    OPENSSL_cleanse(mac, sizeof(mac));
    return match ? ECOM_SIG_OK : ECOM_SIG_MISMATCH;
}

int ecom_signature_sign(const unsigned char *secret, size_t secret_len,
                        long long t, const char *body, size_t body_len,
                        char *out, size_t outlen)
{
    char ts[24], hex[2 * MAC_LEN + 1];
    unsigned char mac[MAC_LEN];
    int n;

    if (out && outlen) {
        out[0] = '\0';
    }
    if (!out || !secret || secret_len == 0 || (!body && body_len) || t < 0
        || t > 999999999999999999LL) {
        return -1;
    }
    n = snprintf(ts, sizeof(ts), "%lld", t);
    if (hmac_sha256(secret, secret_len, ts, (size_t)n, body, body_len, mac) != 0) {
        return -1;
    }
    ecom_hex(mac, MAC_LEN, hex);
    OPENSSL_cleanse(mac, sizeof(mac));
    n = snprintf(out, outlen, "t=%s,v1=%s", ts, hex);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen) {
            out[0] = '\0';
        }
        return -1;
    }
    return 0;
}

const char *ecom_signature_reason(ecom_sig_result r)
{
    switch (r) {
    case ECOM_SIG_OK:
        return "The signature is valid.";
    case ECOM_SIG_MISSING:
        return "The Ecom-Signature header is missing.";
    case ECOM_SIG_MALFORMED:
        return "The Ecom-Signature header is malformed: it needs one "
               "t=<unix seconds> and one to eight v1=<64 hex digits>.";
    case ECOM_SIG_STALE:
        return "The signature's timestamp is too far from the current time.";
    case ECOM_SIG_MISMATCH:
        return "No signature in Ecom-Signature matches the payload.";
    }
    return "The signature could not be checked.";
}
