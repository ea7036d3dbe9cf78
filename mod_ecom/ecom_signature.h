/*
 * ecom_signature.h: webhook signatures, without httpd (Stripe's scheme).
 *
 *   Ecom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 *
 * The signed payload is the t value exactly as sent, a '.', and the raw
 * request body. Elements are "key=value" separated by ','; spaces and tabs
 * around an element are ignored, elements with other keys are ignored
 * (room for future schemes), and a header may carry up to
 * ECOM_SIGNATURE_MAX_V1 v1 values so that a sender can sign with the old
 * and the new secret while they rotate: any match passes. Verification
 * fails closed (an empty secret matches nothing), checks the timestamp
 * before the MAC (replays of old events are stale) and compares MACs in
 * constant time. Thread-safe: no state.
 */
#ifndef ECOM_SIGNATURE_H
#define ECOM_SIGNATURE_H

#include <stddef.h>

typedef enum {
    ECOM_SIG_OK = 0,
    ECOM_SIG_MISSING,     /* no header, or an empty one */
    ECOM_SIG_MALFORMED,   /* not t=<digits> and 1..8 v1=<64 hex digits> */
    ECOM_SIG_STALE,       /* |now - t| > tolerance */
    ECOM_SIG_MISMATCH     /* well-formed and fresh, but no v1 matches */
} ecom_sig_result;

#define ECOM_SIGNATURE_HEADER_MAX 4096   /* longest header accepted, bytes */
#define ECOM_SIGNATURE_MAX_V1     8      /* most v1 values in one header */
/* room for "t=<up to 18 digits>,v1=<64 hex digits>" and the NUL (89) */
#define ECOM_SIGNATURE_MAX        96

/*
 * Checks header (the Ecom-Signature value) against body under secret at
 * time now (unix seconds), accepting timestamps within tolerance seconds
 * (>= 0) either side of now. Results, in the order they are decided:
 *   MISSING    header NULL or "";
 *   MALFORMED  longer than ECOM_SIGNATURE_HEADER_MAX bytes, an element
 *              without '=' or with an empty key, no t or more than one, t
 *              not 1..18 decimal digits, no v1, a v1 that is not exactly
 *              64 hex digits (either case), more than ECOM_SIGNATURE_MAX_V1;
 *   STALE      |now - t| > tolerance;
 *   MISMATCH   no v1 equals the HMAC (also when secret is NULL or empty,
 *              or body is NULL with body_len > 0);
 *   OK         otherwise.
 */
ecom_sig_result ecom_signature_verify(const char *header,
                                      const unsigned char *secret,
                                      size_t secret_len, const char *body,
                                      size_t body_len, long long now,
                                      long long tolerance);

/* Writes "t=<t>,v1=<lowercase hex>" into out (outlen bytes, at most
 * ECOM_SIGNATURE_MAX needed). Returns 0, or -1 (and out = "" when outlen > 0)
 * when out is too small, t is outside 0 .. 10^18 - 1, the secret is empty,
 * or HMAC fails. */
int ecom_signature_sign(const unsigned char *secret, size_t secret_len,
                        long long t, const char *body, size_t body_len,
                        char *out, size_t outlen);

/* A short English sentence for a result, for problem details; never NULL. */
const char *ecom_signature_reason(ecom_sig_result r);

#endif /* ECOM_SIGNATURE_H */
