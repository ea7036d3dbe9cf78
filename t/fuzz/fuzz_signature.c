/*
 * fuzz_signature.c: libFuzzer target for ecom_signature.c, which parses
 * the Ecom-Signature header of webhook calls (sent by anyone who finds the
 * URL). The input's first line is the header (copied to a buffer of its
 * exact size), the rest is the body. Checks, beyond "no crash":
 *   - verify with a fixed secret and time answers one of the five results,
 *     each with a reason;
 *   - the body signed at a time t taken from the input verifies OK at t,
 *     also with upper-case hex and with the input's first line appended as
 *     an unknown element (commas removed, if it stays within 4096 bytes);
 *     STALE one second past the tolerance; MISMATCH with any one hex digit
 *     of the MAC changed or a bit of the body flipped.
 */
#include "ecom_signature.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char secret[] = "whsec_fuzz_secret";
#define SECRET_LEN (sizeof(secret) - 1)
#define NOW 1700000000LL
#define TOL 300

static void expect(ecom_sig_result got, ecom_sig_result want)
{
    if (got != want) {
        abort();
    }
}

static void round_trip(const uint8_t *data, size_t size, const char *header,
                       const char *body, size_t body_len)
{
    char sig[ECOM_SIGNATURE_MAX], both[ECOM_SIGNATURE_HEADER_MAX + 1];
    unsigned long long raw = 0;
    long long t;
    size_t n, hlen = strlen(header);

    memcpy(&raw, data, size < sizeof(raw) ? size : sizeof(raw));
    t = (long long)(raw % 1000000000000000000ULL);
    if (ecom_signature_sign(secret, SECRET_LEN, t, body, body_len, sig,
                            sizeof(sig)) != 0) {
        abort();
    }
    expect(ecom_signature_verify(sig, secret, SECRET_LEN, body, body_len, t, 0),
           ECOM_SIG_OK);
    expect(ecom_signature_verify(sig, secret, SECRET_LEN, body, body_len,
                                 t + TOL + 1, TOL), ECOM_SIG_STALE);
    /* upper-case hex is the same MAC */
    memcpy(both, sig, strlen(sig) + 1);
    for (char *p = strstr(both, "v1=") + 3; *p; p++) {
        *p = (char)toupper((unsigned char)*p);
    }
    expect(ecom_signature_verify(both, secret, SECRET_LEN, body, body_len, t, 0),
           ECOM_SIG_OK);
    /* any one hex digit changed: no match (every byte of the MAC counts) */
    {
        char *hex = strstr(both, "v1=") + 3;
        size_t at = size ? data[size - 1] % 64 : 0;

        hex[at] = hex[at] == '0' ? '1' : '0';
        expect(ecom_signature_verify(both, secret, SECRET_LEN, body, body_len, t,
                                     0), ECOM_SIG_MISMATCH);
    }
    /* an unknown element, whatever its value, changes nothing */
    n = strlen(sig);
    if (n + 3 + hlen <= ECOM_SIGNATURE_HEADER_MAX) {
        memcpy(both, sig, n);
        memcpy(both + n, ",x=", 3);
        n += 3;
        for (size_t i = 0; i < hlen; i++) {
            if (header[i] != ',') {
                both[n++] = header[i];
            }
        }
        both[n] = '\0';
        expect(ecom_signature_verify(both, secret, SECRET_LEN, body, body_len, t,
                                     0), ECOM_SIG_OK);
    }
    if (body_len) {
        char *flipped = malloc(body_len);
        if (!flipped) {
            abort();
        }
        memcpy(flipped, body, body_len);
        flipped[body_len / 2] ^= 0x20;
        expect(ecom_signature_verify(sig, secret, SECRET_LEN, flipped, body_len,
                                     t, 0), ECOM_SIG_MISMATCH);
        free(flipped);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : size;
    size_t body_len = nl ? size - hlen - 1 : 0;
    char *header = malloc(hlen + 1), *body = malloc(body_len ? body_len : 1);
    ecom_sig_result r;

    if (!header || !body) {
        abort();
    }
    memcpy(header, data, hlen);
    header[hlen] = '\0';
    if (body_len) {
        memcpy(body, nl + 1, body_len);
    }
    r = ecom_signature_verify(header, secret, SECRET_LEN, body, body_len, NOW, TOL);
    if ((int)r < ECOM_SIG_OK || r > ECOM_SIG_MISMATCH
        || !ecom_signature_reason(r)) {
        abort();
    }
    round_trip(data, size, header, body, body_len);
    free(header);
    free(body);
    return 0;
}
