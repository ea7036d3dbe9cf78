/*
 * ecom-passwd: prints the argon2id hash of the password in $ECOM_PASSWORD,
 * made exactly as mod_ecom makes them. scripts/ecom-admin uses it so that an
 * operator can create staff users; the password never appears in argv.
 */
#include "ecom_crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    const char *pw = getenv("ECOM_PASSWORD");
    char hash[ECOM_PWHASH_MAX];

    if (!pw || strlen(pw) < 10) {
        fputs("ecom-passwd: set ECOM_PASSWORD (at least 10 characters)\n", stderr);
        return 2;
    }
    if (ecom_password_hash(pw, strlen(pw), hash) != 0) {
        fputs("ecom-passwd: hashing failed\n", stderr);
        return 1;
    }
    puts(hash);
    return 0;
}
