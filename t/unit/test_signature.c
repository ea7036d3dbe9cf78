/*
 * test_signature.c: unit tests of ecom_signature.c. The known vector was
 * computed outside this code:
 *   printf '%s' '1700000000.{"id":"evt_1","type":"payment.succeeded"}' \
 *     | openssl dgst -sha256 -hmac whsec_test_secret
 * and likewise for the other hard-coded MACs below.
 */
#include "ecom_signature.h"
#include "unit.h"

#include <string.h>

#define T0 1700000000LL
#define TOL 300
#define BODY "{\"id\":\"evt_1\",\"type\":\"payment.succeeded\"}"
/* HMAC-SHA256("whsec_test_secret", "1700000000." BODY) */
#define SIG "0a731970e30844c135c2ba545c0b030783248e5151afff97d4b4cac22ffa7321"
#define SIG_UPPER "0A731970E30844C135C2BA545C0B030783248E5151AFFF97D4B4CAC22FFA7321"
/* HMAC-SHA256("whsec_old_secret", "1700000000." BODY) */
#define SIG_OLD "f66bbd0789f9987b3b7f9040ed789575c769f76a03a69ecca92f0d92e08460dc"
/* HMAC-SHA256("whsec_test_secret", "0001700000000." BODY) */
#define SIG_ZEROS "16e848e46fda59d1eb33308f908f6f195a86a3824585c37e779cd706b9ed7fd5"
/* HMAC-SHA256("whsec_test_secret", "1700000000.") */
#define SIG_EMPTY "316b9ab98c15bfa039d243f3196acee619cf29749a91a634e6a8154e2f7b6727"
/* HMAC-SHA256("whsec_test_secret", "1700000000.a\0b") */
#define SIG_NUL "1c68785302fdb56dfa4ba16b9548a84be275258764de5cc2fc6aa3e576e157a0"

static const unsigned char secret[] = "whsec_test_secret";
static const unsigned char old_secret[] = "whsec_old_secret";
#define SECRET_LEN (sizeof(secret) - 1)
#define OLD_LEN (sizeof(old_secret) - 1)

static ecom_sig_result check(const char *header, long long now)
{
    return ecom_signature_verify(header, secret, SECRET_LEN, BODY, strlen(BODY),
                                 now, TOL);
}

static void test_known_vector(void)
{
    char out[ECOM_SIGNATURE_MAX];

    OK(ecom_signature_sign(secret, SECRET_LEN, T0, BODY, strlen(BODY), out,
                           sizeof(out)) == 0
       && strcmp(out, "t=1700000000,v1=" SIG) == 0, "sign: known vector");
    OK(check("t=1700000000,v1=" SIG, T0) == ECOM_SIG_OK, "verify: known vector");
    OK(check("t=1700000000,v1=" SIG_UPPER, T0) == ECOM_SIG_OK,
       "verify: upper-case hex accepted");
    OK(check("v1=" SIG ",t=1700000000", T0) == ECOM_SIG_OK, "element order free");
    OK(check(" t=1700000000 ,\tv1=" SIG "\t", T0) == ECOM_SIG_OK,
       "spaces and tabs around elements tolerated");
    OK(check("t=1700000000,v0=abc,k=v,scheme=,v1=" SIG ",x=a=b", T0) == ECOM_SIG_OK,
       "unknown elements ignored");
    OK(check("t=0001700000000,v1=" SIG_ZEROS, T0) == ECOM_SIG_OK,
       "t is signed as sent (leading zeros)");
    OK(check("t=0001700000000,v1=" SIG, T0) == ECOM_SIG_MISMATCH,
       "t is not re-formatted before signing");
    OK(ecom_signature_verify("t=1700000000,v1=" SIG_EMPTY, secret, SECRET_LEN,
                             NULL, 0, T0, TOL) == ECOM_SIG_OK, "empty body");
    OK(ecom_signature_verify("t=1700000000,v1=" SIG_NUL, secret, SECRET_LEN,
                             "a\0b", 3, T0, TOL) == ECOM_SIG_OK,
       "body with a NUL byte is signed by its length");
}

static void test_rotation(void)
{
    const char *both = "t=1700000000,v1=" SIG_OLD ",v1=" SIG;

    OK(check(both, T0) == ECOM_SIG_OK, "rotation: new secret matches the second v1");
    OK(ecom_signature_verify(both, old_secret, OLD_LEN, BODY, strlen(BODY), T0,
                             TOL) == ECOM_SIG_OK,
       "rotation: old secret matches the first v1");
    OK(check("t=1700000000,v1=" SIG_OLD, T0) == ECOM_SIG_MISMATCH,
       "rotation: old signature alone does not pass the new secret");
    OK(check("t=1700000000,v1=" SIG_OLD ",v1=" SIG_OLD ",v1=" SIG_OLD ",v1=" SIG_OLD
             ",v1=" SIG_OLD ",v1=" SIG_OLD ",v1=" SIG_OLD ",v1=" SIG, T0)
       == ECOM_SIG_OK, "eight v1 values, the last one matching");
    OK(check("t=1700000000,v1=" SIG_OLD ",v1=" SIG_OLD ",v1=" SIG_OLD ",v1=" SIG_OLD
             ",v1=" SIG_OLD ",v1=" SIG_OLD ",v1=" SIG_OLD ",v1=" SIG_OLD ",v1=" SIG,
             T0) == ECOM_SIG_MALFORMED, "nine v1 values are malformed");
}

static void test_time(void)
{
    const char *h = "t=1700000000,v1=" SIG;

    OK(check(h, T0 + TOL) == ECOM_SIG_OK, "tolerance boundary: now = t + tolerance");
    OK(check(h, T0 - TOL) == ECOM_SIG_OK, "tolerance boundary: now = t - tolerance");
    OK(check(h, T0 + TOL + 1) == ECOM_SIG_STALE, "stale: one second too old");
    OK(check(h, T0 - TOL - 1) == ECOM_SIG_STALE, "stale: one second in the future");
    OK(check("t=1700000000,v1=" SIG_OLD, T0 + 86400) == ECOM_SIG_STALE,
       "a stale header is stale before its MAC is looked at");
    OK(ecom_signature_verify(h, secret, SECRET_LEN, BODY, strlen(BODY), T0, 0)
       == ECOM_SIG_OK, "tolerance 0, same second");
    OK(ecom_signature_verify(h, secret, SECRET_LEN, BODY, strlen(BODY),
                             -9223372036854775807LL - 1, 9223372036854775807LL)
       == ECOM_SIG_STALE, "now = LLONG_MIN: no overflow, stale");
    OK(ecom_signature_verify(h, secret, SECRET_LEN, BODY, strlen(BODY),
                             9223372036854775807LL, 9223372036854775807LL)
       == ECOM_SIG_OK, "now = LLONG_MAX within a huge tolerance");
    OK(ecom_signature_verify(h, secret, SECRET_LEN, BODY, strlen(BODY), T0, -1)
       == ECOM_SIG_STALE, "a negative tolerance accepts nothing");
}

static void test_mismatch(void)
{
    const char *h = "t=1700000000,v1=" SIG;
    char body[] = BODY;

    body[3] ^= 1;
    OK(ecom_signature_verify(h, secret, SECRET_LEN, body, strlen(body), T0, TOL)
       == ECOM_SIG_MISMATCH, "one body bit changed");
    OK(ecom_signature_verify(h, secret, SECRET_LEN, BODY, strlen(BODY) - 1, T0, TOL)
       == ECOM_SIG_MISMATCH, "body truncated by one byte");
    OK(check("t=1700000001,v1=" SIG, T0) == ECOM_SIG_MISMATCH,
       "another timestamp with the same MAC");
    OK(check("t=1700000000,v1=" SIG_EMPTY, T0) == ECOM_SIG_MISMATCH, "MAC of another body");
    OK(ecom_signature_verify(h, secret, SECRET_LEN - 1, BODY, strlen(BODY), T0, TOL)
       == ECOM_SIG_MISMATCH, "secret one byte short");
    OK(ecom_signature_verify(h, secret, 0, BODY, strlen(BODY), T0, TOL)
       == ECOM_SIG_MISMATCH && ecom_signature_verify(h, NULL, 0, BODY, strlen(BODY),
                                                     T0, TOL) == ECOM_SIG_MISMATCH,
       "an empty or NULL secret matches nothing");
    OK(ecom_signature_verify(h, secret, SECRET_LEN, NULL, 5, T0, TOL)
       == ECOM_SIG_MISMATCH, "NULL body with a length matches nothing");
    OK(check("t=1700000000,v1=0000000000000000000000000000000000000000000000000000000000000000",
             T0) == ECOM_SIG_MISMATCH, "all-zero MAC");
}

static void test_malformed(void)
{
    static const char *const bad[] = {
        "garbage",
        " ",
        ",",
        "t=1700000000",
        "v1=" SIG,
        "t=,v1=" SIG,
        "t=abc,v1=" SIG,
        "t=-1,v1=" SIG,
        "t=+1700000000,v1=" SIG,
        "t=1700000000.5,v1=" SIG,
        "t=1234567890123456789,v1=" SIG,
        "t=1700000000,t=1700000000,v1=" SIG,
        "t=1700000000,v1=" SIG "0",
        "t=1700000000,v1=0a731970e30844c135c2ba545c0b030783248e5151afff97d4b4cac22ffa732",
        "t=1700000000,v1=0g731970e30844c135c2ba545c0b030783248e5151afff97d4b4cac22ffa7321",
        "t=1700000000,v1=",
        "t=1700000000,v1=" SIG ",",
        ",t=1700000000,v1=" SIG,
        "t=1700000000,,v1=" SIG,
        "t=1700000000,=x,v1=" SIG,
        "t=1700000000,novalue,v1=" SIG,
        "t=1700000000;v1=" SIG,
        "t = 1700000000,v1=" SIG,
        "t=1700000000,v1 =" SIG,
        "t=1700000000,v1= " SIG,
        "T=1700000000,V1=" SIG,
    };
    char name[64];
    int all = 1;

    OK(check(NULL, T0) == ECOM_SIG_MISSING, "NULL header is missing");
    OK(check("", T0) == ECOM_SIG_MISSING, "empty header is missing");
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        if (check(bad[i], T0) != ECOM_SIG_MALFORMED) {
            printf("# not malformed: %s\n", bad[i]);
            all = 0;
        }
    }
    snprintf(name, sizeof(name), "%zu malformed variants",
             sizeof(bad) / sizeof(*bad));
    OK(all, name);
    {
        char h[ECOM_SIGNATURE_HEADER_MAX + 2];
        size_t prefix = strlen("t=1700000000,v1=" SIG ",x=");

        memcpy(h, "t=1700000000,v1=" SIG ",x=", prefix);
        memset(h + prefix, 'a', ECOM_SIGNATURE_HEADER_MAX - prefix);
        h[ECOM_SIGNATURE_HEADER_MAX] = '\0';
        OK(check(h, T0) == ECOM_SIG_OK, "header of exactly 4096 bytes accepted");
        h[ECOM_SIGNATURE_HEADER_MAX] = 'a';
        h[ECOM_SIGNATURE_HEADER_MAX + 1] = '\0';
        OK(check(h, T0) == ECOM_SIG_MALFORMED, "header of 4097 bytes malformed");
    }
}

static void test_sign(void)
{
    char out[ECOM_SIGNATURE_MAX];
    size_t need = strlen("t=1700000000,v1=" SIG) + 1;
    unsigned long long seed = 42;
    int roundtrip = 1;

    OK(ecom_signature_sign(secret, SECRET_LEN, T0, BODY, strlen(BODY), out, need)
       == 0, "sign fits in exactly its length + 1");
    strcpy(out, "x");
    OK(ecom_signature_sign(secret, SECRET_LEN, T0, BODY, strlen(BODY), out, need - 1)
       == -1 && out[0] == '\0', "sign refuses a buffer one byte short, out = \"\"");
    OK(ecom_signature_sign(secret, SECRET_LEN, -1, BODY, strlen(BODY), out,
                           sizeof(out)) == -1, "sign refuses t < 0");
    OK(ecom_signature_sign(secret, SECRET_LEN, 1000000000000000000LL, BODY,
                           strlen(BODY), out, sizeof(out)) == -1,
       "sign refuses t >= 10^18");
    OK(ecom_signature_sign(secret, SECRET_LEN, 999999999999999999LL, BODY,
                           strlen(BODY), out, sizeof(out)) == 0
       && strlen(out) == 88
       && ecom_signature_verify(out, secret, SECRET_LEN, BODY, strlen(BODY),
                                999999999999999999LL, 0) == ECOM_SIG_OK,
       "largest t: 88 chars, verifies");
    OK(ecom_signature_sign(secret, 0, T0, BODY, strlen(BODY), out, sizeof(out)) == -1
       && ecom_signature_sign(NULL, 0, T0, BODY, strlen(BODY), out, sizeof(out)) == -1,
       "sign refuses an empty secret");
    OK(ecom_signature_sign(secret, SECRET_LEN, T0, BODY, strlen(BODY), NULL, 0) == -1,
       "sign refuses a NULL out");
    for (int i = 0; i < 200; i++) {
        unsigned char key[40];
        char body[100];
        size_t klen = 1 + unit_rand(&seed) % sizeof(key);
        size_t blen = unit_rand(&seed) % sizeof(body);
        long long t = (long long)(unit_rand(&seed) % 1000000000000000000ULL);

        for (size_t k = 0; k < klen; k++) {
            key[k] = (unsigned char)unit_rand(&seed);
        }
        for (size_t k = 0; k < blen; k++) {
            body[k] = (char)unit_rand(&seed);
        }
        if (ecom_signature_sign(key, klen, t, body, blen, out, sizeof(out)) != 0
            || ecom_signature_verify(out, key, klen, body, blen, t, 0) != ECOM_SIG_OK) {
            roundtrip = 0;
        }
        if (blen) {
            body[0] ^= 1;
            if (ecom_signature_verify(out, key, klen, body, blen, t, 0)
                != ECOM_SIG_MISMATCH) {
                roundtrip = 0;
            }
        }
    }
    OK(roundtrip, "200 random sign -> verify round trips (and a flipped bit fails)");
}

static void test_reason(void)
{
    const char *r[5];
    int ok = 1;

    for (int i = 0; i < 5; i++) {
        r[i] = ecom_signature_reason((ecom_sig_result)i);
        if (!r[i] || !*r[i] || r[i][strlen(r[i]) - 1] != '.') {
            ok = 0;
            r[i] = "";
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(r[i], r[j]) == 0) {
                ok = 0;
            }
        }
    }
    OK(ok, "a distinct sentence per result");
    OK(ecom_signature_reason((ecom_sig_result)99) != NULL, "out-of-range result has a reason");
}

void test_signature(void)
{
    test_known_vector();
    test_rotation();
    test_time();
    test_mismatch();
    test_malformed();
    test_sign();
    test_reason();
}
