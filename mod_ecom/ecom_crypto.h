/*
 * ecom_crypto.h: password hashing and bearer tokens, without httpd.
 *
 * Passwords: argon2id (libargon2) with OWASP's password-storage minimum
 * (m = 19 MiB, t = 2, p = 1), 16-byte random salt, 32-byte tag, stored in
 * the PHC string format so parameters can be raised later without breaking
 * old hashes. Tokens: 256 random bits from OpenSSL's CSPRNG, base64url, and
 * only their SHA-256 is ever stored. Secrets are compared in constant time.
 */
#ifndef ECOM_CRYPTO_H
#define ECOM_CRYPTO_H

#include <stddef.h>

#define ECOM_ARGON2_T      2
#define ECOM_ARGON2_M_KIB  19456
#define ECOM_ARGON2_P      1
#define ECOM_SALT_LEN      16
#define ECOM_HASH_LEN      32
/* room for "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" */
#define ECOM_PWHASH_MAX    128

#define ECOM_TOKEN_BYTES   32
#define ECOM_TOKEN_LEN     43   /* base64url of 32 bytes, no padding */
#define ECOM_SHA256_HEX    65   /* 64 hex digits + NUL */

/* Hashes pw into out (ECOM_PWHASH_MAX bytes). Returns 0 or -1. */
int ecom_password_hash(const char *pw, size_t pwlen, char out[ECOM_PWHASH_MAX]);

/* 1 if pw matches the encoded argon2id hash, 0 otherwise (including any
 * malformed or non-argon2id stored value, such as "!" for "no password"). */
int ecom_password_verify(const char *encoded, const char *pw, size_t pwlen);

/* Spends the same work as a verification, for unknown accounts, so a login
 * for an unknown e-mail takes as long as one with a wrong password. */
void ecom_password_burn(const char *pw, size_t pwlen);

/* A new bearer token (ECOM_TOKEN_LEN chars + NUL). Returns 0 or -1. */
int ecom_token_new(char out[ECOM_TOKEN_LEN + 1]);

/* 1 when s has the exact shape of a token this module issues. */
int ecom_token_shape_ok(const char *s);

/* Lower-case hex SHA-256 of data. */
void ecom_sha256_hex(const void *data, size_t len, char out[ECOM_SHA256_HEX]);

/* Constant-time equality of two n-byte buffers. */
int ecom_ct_equal(const void *a, const void *b, size_t n);

#endif /* ECOM_CRYPTO_H */
