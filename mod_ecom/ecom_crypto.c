/*
 * ecom_crypto.c: argon2id password hashes, random tokens, SHA-256 and
 * constant-time comparison (see ecom_crypto.h). Thread-safe: no state.
 */
#include "ecom_crypto.h"
#include "ecom_util.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

int ecom_password_hash(const char *pw, size_t pwlen, char out[ECOM_PWHASH_MAX])
{
    unsigned char salt[ECOM_SALT_LEN];

    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        return -1;
    }
    if (argon2id_hash_encoded(ECOM_ARGON2_T, ECOM_ARGON2_M_KIB, ECOM_ARGON2_P,
                              pw, pwlen, salt, sizeof(salt), ECOM_HASH_LEN,
                              out, ECOM_PWHASH_MAX) != ARGON2_OK) {
        return -1;
    }
    return 0;
}

int ecom_password_verify(const char *encoded, const char *pw, size_t pwlen)
{
    if (!encoded || strncmp(encoded, "$argon2id$", 10) != 0) {
        ecom_password_burn(pw, pwlen);
        return 0;
    }
    /* argon2_verify compares the tags in constant time */
    return argon2id_verify(encoded, pw, pwlen) == ARGON2_OK;
}

void ecom_password_burn(const char *pw, size_t pwlen)
{
    static const unsigned char salt[ECOM_SALT_LEN] = "mod_ecom-burn-16";
    unsigned char tag[ECOM_HASH_LEN];

    (void)argon2id_hash_raw(ECOM_ARGON2_T, ECOM_ARGON2_M_KIB, ECOM_ARGON2_P,
                            pw, pwlen, salt, sizeof(salt), tag, sizeof(tag));
    OPENSSL_cleanse(tag, sizeof(tag));
}

int ecom_token_new(char out[ECOM_TOKEN_LEN + 1])
{
    unsigned char raw[ECOM_TOKEN_BYTES];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return -1;
    }
    ecom_b64url_encode(raw, sizeof(raw), out);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

int ecom_token_shape_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return 0;
        }
    }
    return i == ECOM_TOKEN_LEN;
}

void ecom_sha256_hex(const void *data, size_t len, char out[ECOM_SHA256_HEX])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    ecom_hex(md, sizeof(md), out);
}

int ecom_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
