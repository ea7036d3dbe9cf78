/*
 * fuzz_core.c: libFuzzer target for the httpd-free parsers that see client
 * input first (cursors, base64url, ids, integers, UTF-8, e-mail addresses,
 * idempotency keys, country codes, shipment states). Built with ASan + UBSan by `make fuzz`, which runs it
 * for FUZZ_SECONDS (default 30). Any crash, sanitizer report or broken
 * round trip aborts.
 */
#include "ecom_country.h"
#include "ecom_shipment_state.h"
#include "ecom_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[512];
    unsigned char out[512];
    char enc[ECOM_CURSOR_MAX];
    long long a = 0, b = 0, v = 0;
    size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;

    memcpy(s, data, n);
    s[n] = '\0';

    (void)ecom_parse_ll(s, -1000, 1000, &v);
    (void)ecom_parse_id(s, strlen(s), &v);
    (void)ecom_utf8_len(s);
    (void)ecom_email_valid(s);
    (void)ecom_currency_valid(s);
    (void)ecom_idem_key_valid(s);
    (void)ecom_b64url_decode(s, out, sizeof(out));
    {
        /* a valid country normalises to a valid upper-case code; a
         * shipment state that parses names itself */
        char cc[3];
        ecom_shipment_state st;
        if (ecom_country_normalise(s, cc) == 0
            && (!ecom_country_valid(cc) || cc[0] < 'A' || cc[0] > 'Z'
                || cc[1] < 'A' || cc[1] > 'Z' || cc[2] != '\0')) {
            abort();
        }
        if (ecom_shipment_state_parse(s, &st) == 0
            && strcmp(ecom_shipment_state_name(st), s) != 0) {
            abort();
        }
    }
    {
        /* database error text is parsed for SQLSTATE and constraint names */
        char state[6], field[32];
        (void)ecom_pg_sqlstate(s, state);
        (void)ecom_pg_field(s, "CONSTRAINT NAME", field, sizeof(field));
        (void)ecom_pg_primary(s, field, sizeof(field));
    }

    /* a cursor that decodes must encode back to an equivalent cursor */
    if (ecom_cursor_decode(s, 'p', &a, &b) == 0) {
        long long a2 = 0, b2 = 0;
        ecom_cursor_encode('p', a, b, enc);
        if (ecom_cursor_decode(enc, 'p', &a2, &b2) != 0 || a2 != a || b2 != b) {
            abort();
        }
    }
    /* any two integers survive a cursor round trip */
    if (size >= 16) {
        long long x, y, x2 = 0, y2 = 0;
        memcpy(&x, data, 8);
        memcpy(&y, data + 8, 8);
        if (x != (-9223372036854775807LL - 1) && y != (-9223372036854775807LL - 1)) {
            ecom_cursor_encode('o', x, y, enc);
            if (ecom_cursor_decode(enc, 'o', &x2, &y2) != 0 || x2 != x || y2 != y) {
                abort();
            }
        }
    }
    /* base64url round trip of the raw bytes */
    if (size <= 300) {
        char b64[ECOM_B64_LEN(300) + 1];
        long m;
        ecom_b64url_encode(data, size, b64);
        m = ecom_b64url_decode(b64, out, sizeof(out));
        if (m != (long)size || (size && memcmp(out, data, size) != 0)) {
            abort();
        }
    }
    return 0;
}
