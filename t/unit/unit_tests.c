/*
 * unit_tests.c: plain C tests of mod_ecom's httpd-free layer, printing TAP
 * so prove can run them (t/00-unit.t). This file holds main() and the tests
 * of ecom_util.c and ecom_crypto.c; each t/unit/test_*.c file tests one
 * other core file (see unit.h). Built with ASan and UBSan by `make unit`.
 */
#include "ecom_crypto.h"
#include "ecom_util.h"
#include "unit.h"

#include <string.h>
#include <stdio.h>
#include <time.h>

int unit_n_tests, unit_n_failed;

static void test_parse(void)
{
    long long v = 0;

    OK(ecom_parse_ll("42", 0, 100, &v) == 0 && v == 42, "parse 42");
    OK(ecom_parse_ll("-5", -10, 10, &v) == 0 && v == -5, "parse negative");
    OK(ecom_parse_ll("", 0, 100, &v) != 0, "empty rejected");
    OK(ecom_parse_ll(" 4", 0, 100, &v) != 0, "leading space rejected");
    OK(ecom_parse_ll("+4", 0, 100, &v) != 0, "plus sign rejected");
    OK(ecom_parse_ll("4x", 0, 100, &v) != 0, "trailing garbage rejected");
    OK(ecom_parse_ll("101", 0, 100, &v) != 0, "above max rejected");
    OK(ecom_parse_ll("99999999999999999999", 0, 9223372036854775807LL, &v) != 0,
       "overflow rejected");
    OK(ecom_parse_ll("1.5", 0, 100, &v) != 0, "decimal rejected");
    OK(ecom_parse_id("17", 2, &v) == 0 && v == 17, "id 17");
    OK(ecom_parse_id("0", 1, &v) != 0, "id 0 rejected");
    OK(ecom_parse_id("-1", 2, &v) != 0, "id -1 rejected");
    OK(ecom_parse_id("1234567890123456789", 19, &v) != 0, "19-digit id rejected");
    OK(ecom_parse_id("12ab", 4, &v) != 0, "id with letters rejected");
    OK(ecom_parse_id("123/", 3, &v) == 0 && v == 123, "id parses only len bytes");
}

static void test_validation(void)
{
    OK(ecom_email_valid("a@example.com"), "plain e-mail valid");
    OK(ecom_email_valid("A.B+tag@sub.example.co"), "tagged e-mail valid");
    OK(!ecom_email_valid("no-at.example.com"), "no @ invalid");
    OK(!ecom_email_valid("@example.com"), "empty local part invalid");
    OK(!ecom_email_valid("a@example"), "no dot in domain invalid");
    OK(!ecom_email_valid("a@.com"), "dot right after @ invalid");
    OK(!ecom_email_valid("a@b.com."), "trailing dot invalid");
    OK(!ecom_email_valid("a b@example.com"), "space invalid");
    OK(!ecom_email_valid("a@@example.com"), "two @ invalid");
    OK(!ecom_email_valid("a@ex\xff.com"), "invalid UTF-8 invalid");
    OK(ecom_currency_valid("EUR") && ecom_currency_valid("GBP"), "EUR GBP valid");
    OK(!ecom_currency_valid("eur") && !ecom_currency_valid("EURO")
       && !ecom_currency_valid("E1R") && !ecom_currency_valid(""),
       "bad currencies invalid");
    OK(ecom_idem_key_valid("order-2026-11-26-abc"), "idempotency key valid");
    OK(!ecom_idem_key_valid("") && !ecom_idem_key_valid("has space")
       && !ecom_idem_key_valid("tab\tkey"), "bad idempotency keys invalid");
    {
        char longkey[300];
        memset(longkey, 'k', 256);
        longkey[256] = '\0';
        OK(!ecom_idem_key_valid(longkey), "256-char idempotency key invalid");
        longkey[255] = '\0';
        OK(ecom_idem_key_valid(longkey), "255-char idempotency key valid");
    }
    OK(ecom_utf8_len("abc") == 3, "utf8 ascii length");
    OK(ecom_utf8_len("\xc3\xa9t\xc3\xa9") == 3, "utf8 two-byte length");
    OK(ecom_utf8_len("\xf0\x9f\x98\x80") == 1, "utf8 four-byte length");
    OK(ecom_utf8_len("\xc0\xaf") < 0, "overlong rejected");
    OK(ecom_utf8_len("\xed\xa0\x80") < 0, "surrogate rejected");
    OK(ecom_utf8_len("\xf4\x90\x80\x80") < 0, "above U+10FFFF rejected");
    OK(ecom_utf8_len("\xe2\x82") < 0, "truncated sequence rejected");
}

static void test_encoding(void)
{
    char out[64];
    unsigned char back[64];
    long n;
    long long a = 0, b = 0;

    ecom_b64url_encode((const unsigned char *)"hello?>", 7, out);
    OK(strcmp(out, "aGVsbG8_Pg") == 0, "base64url encodes with - and _, no padding");
    n = ecom_b64url_decode(out, back, sizeof(back));
    OK(n == 7 && memcmp(back, "hello?>", 7) == 0, "base64url round trip");
    OK(ecom_b64url_decode("a", back, sizeof(back)) < 0, "length 1 mod 4 rejected");
    OK(ecom_b64url_decode("aGVs+G8", back, sizeof(back)) < 0, "'+' rejected");
    OK(ecom_b64url_decode("aGVsbG9", back, 2) < 0, "decode respects outmax");
    OK(ecom_b64url_decode("aGVsbG9=", back, sizeof(back)) < 0, "padding rejected");
    ecom_hex((const unsigned char *)"\x00\xff\x10", 3, out);
    OK(strcmp(out, "00ff10") == 0, "hex");

    ecom_cursor_encode('p', 1250, 77, out);
    OK(ecom_cursor_decode(out, 'p', &a, &b) == 0 && a == 1250 && b == 77,
       "cursor round trip");
    OK(ecom_cursor_decode(out, 'i', &a, &b) != 0, "cursor of another sort rejected");
    OK(ecom_cursor_decode("zzz", 'p', &a, &b) != 0, "garbage cursor rejected");
    OK(ecom_cursor_decode("", 'p', &a, &b) != 0, "empty cursor rejected");
    ecom_b64url_encode((const unsigned char *)"p:12x:3", 7, out);
    OK(ecom_cursor_decode(out, 'p', &a, &b) != 0, "non-numeric key rejected");
    ecom_b64url_encode((const unsigned char *)"p:1\0:3", 6, out);
    OK(ecom_cursor_decode(out, 'p', &a, &b) != 0, "NUL inside cursor rejected");
    ecom_cursor_encode('o', -5, 9223372036854775807LL, out);
    OK(ecom_cursor_decode(out, 'o', &a, &b) == 0 && a == -5
       && b == 9223372036854775807LL, "cursor extremes round trip");
}

static void test_time(void)
{
    char ts[ECOM_RFC3339_LEN];

    ecom_rfc3339(0, ts);
    OK(strcmp(ts, "1970-01-01T00:00:00Z") == 0, "epoch 0");
    ecom_rfc3339(1291193100LL, ts);
    OK(strcmp(ts, "2010-12-01T08:45:00Z") == 0, "first UCI invoice time");
    ecom_rfc3339(1709208000LL, ts);
    OK(strcmp(ts, "2024-02-29T12:00:00Z") == 0, "leap day");
    ecom_rfc3339(-1, ts);
    OK(strcmp(ts, "1969-12-31T23:59:59Z") == 0, "before the epoch");
    ecom_rfc3339(9223372036854775807LL, ts);
    OK(strcmp(ts, "9999-12-31T23:59:59Z") == 0, "far future clamped to year 9999");
    ecom_rfc3339(-9223372036854775807LL, ts);
    OK(strcmp(ts, "0000-01-01T00:00:00Z") == 0, "far past clamped to year 0000");
    {
        /* every 7,919th second from 1900 to 2100 (every field's values),
         * and then the boundary years, against strftime */
        long long e;
        int same = 1;

        for (e = -2208988800LL; e < 4102444800LL && same; e += 7919 * 97LL) {
            char want[64];
            time_t t = (time_t)e;
            struct tm tm;

            gmtime_r(&t, &tm);
            strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
            ecom_rfc3339(e, ts);
            same = !strcmp(ts, want);
            if (!same) {
                fprintf(stderr, "# %lld: got %s, want %s\n", e, ts, want);
            }
        }
        OK(same, "1900-2100 agree with strftime");
        ecom_rfc3339(-62135596800LL, ts);
        OK(strcmp(ts, "0001-01-01T00:00:00Z") == 0, "year 0001 with its leading zeros");
        ecom_rfc3339(253402300799LL - 86400 * 365LL, ts);
        OK(strcmp(ts, "9998-12-31T23:59:59Z") == 0, "year 9998");
    }
}

static void test_crypto(void)
{
    char hash[ECOM_PWHASH_MAX], hash2[ECOM_PWHASH_MAX];
    char tok[ECOM_TOKEN_LEN + 1], tok2[ECOM_TOKEN_LEN + 1];
    char hex[ECOM_SHA256_HEX];
    const char *pw = "correct horse battery";

    OK(ecom_password_hash(pw, strlen(pw), hash) == 0, "password hashes");
    OK(strncmp(hash, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0,
       "hash is argon2id with OWASP parameters");
    OK(ecom_password_verify(hash, pw, strlen(pw)) == 1, "right password verifies");
    OK(ecom_password_verify(hash, "correct horse batterY", 21) == 0,
       "wrong password fails");
    OK(ecom_password_hash(pw, strlen(pw), hash2) == 0 && strcmp(hash, hash2) != 0,
       "salts differ between hashes");
    OK(ecom_password_verify("!", pw, strlen(pw)) == 0, "unusable hash never verifies");
    OK(ecom_password_verify("$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", pw,
                            strlen(pw)) == 0, "non-argon2id hash refused");
    OK(ecom_token_new(tok) == 0 && strlen(tok) == ECOM_TOKEN_LEN, "token is 43 chars");
    OK(ecom_token_new(tok2) == 0 && strcmp(tok, tok2) != 0, "tokens differ");
    OK(ecom_token_shape_ok(tok), "token shape accepted");
    OK(!ecom_token_shape_ok("short") && !ecom_token_shape_ok(""), "short tokens refused");
    tok2[5] = '+';
    OK(!ecom_token_shape_ok(tok2), "token with '+' refused");
    ecom_sha256_hex("abc", 3, hex);
    OK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
       == 0, "sha256 of abc");
    OK(ecom_ct_equal("abcd", "abcd", 4) && !ecom_ct_equal("abcd", "abce", 4),
       "constant-time equality");
}

static void test_pg_errors(void)
{
    const char *check =
        "ERROR:  23514: new row for relation \"products\" violates check "
        "constraint \"products_stock_check\"\n"
        "DETAIL:  Failing row contains (1, secret@example.com, -1).\n"
        "SCHEMA NAME:  public\nTABLE NAME:  products\n"
        "CONSTRAINT NAME:  products_stock_check\n"
        "LOCATION:  ExecConstraints, execMain.c:1921\n";
    char state[6], buf[64];

    OK(ecom_pg_sqlstate(check, state) == 0 && strcmp(state, "23514") == 0,
       "SQLSTATE of a verbose check violation");
    OK(ecom_pg_field(check, "CONSTRAINT NAME", buf, sizeof(buf)) == 0
       && strcmp(buf, "products_stock_check") == 0, "constraint name");
    OK(ecom_pg_primary(check, buf, sizeof(buf)) == 0
       && strncmp(buf, "new row for relation", 20) == 0
       && !strstr(buf, "secret"), "primary message without the row");
    OK(ecom_pg_field(check, "DATATYPE NAME", buf, sizeof(buf)) == -1,
       "absent field");
    OK(ecom_pg_sqlstate("server closed the connection unexpectedly\n",
                        state) == -1, "libpq's own errors have no SQLSTATE");
    OK(ecom_pg_sqlstate("FATAL:  57P01: terminating connection due to "
                        "administrator command\n", state) == 0
       && strcmp(state, "57P01") == 0, "FATAL carries a SQLSTATE");
    OK(ecom_pg_sqlstate("ERROR:  canceling statement\n", state) == -1,
       "terse message: no SQLSTATE");
    OK(ecom_pg_sqlstate("ERROR:  5701", state) == -1, "truncated SQLSTATE");
    OK(ecom_pg_sqlstate(NULL, state) == -1, "NULL message");
    OK(ecom_pg_field("CONSTRAINT NAME:  abcdefghijklmnop", "CONSTRAINT NAME",
                     buf, 5) == 0 && strcmp(buf, "abcd") == 0, "truncation");
}

int main(void)
{
    test_err();
    test_money();
    test_order_state();
    test_signature();
    test_path();
    test_country();
    test_shipment_state();
    test_rate();
    test_bounds();
    test_pg_errors();
    test_parse();
    test_validation();
    test_encoding();
    test_time();
    test_crypto();
    printf("1..%d\n", unit_n_tests);
    return unit_n_failed ? 1 : 0;
}
