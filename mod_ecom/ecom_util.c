/*
 * ecom_util.c: validation, parsing and encoding helpers with no httpd
 * dependency (see ecom_util.h). Every function is total: any input, however
 * hostile, gives a defined answer and touches no memory outside its buffers.
 */
#include "ecom_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ecom_parse_ll(const char *s, long long min, long long max, long long *out)
{
    const char *p = s;
    char *end;
    long long v;

    if (!s || !*s) {
        return -1;
    }
    if (*p == '-') {
        p++;
    }
    if (*p < '0' || *p > '9') {
        return -1;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

int ecom_parse_id(const char *s, size_t len, long long *out)
{
    long long v = 0;
    size_t i;

    if (len == 0 || len > 18) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    if (v <= 0) {
        return -1;
    }
    *out = v;
    return 0;
}

int ecom_slug_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > 100) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
              || c == '-')) {
            return 0;
        }
    }
    return 1;
}

long ecom_utf8_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long n = 0;

    while (*p) {
        unsigned c = *p;
        unsigned cp;
        int extra;

        if (c < 0x80) {
            p++;
            n++;
            continue;
        }
        else if ((c & 0xE0) == 0xC0) {
            extra = 1;
            cp = c & 0x1F;
        }
        else if ((c & 0xF0) == 0xE0) {
            extra = 2;
            cp = c & 0x0F;
        }
        else if ((c & 0xF8) == 0xF0) {
            extra = 3;
            cp = c & 0x07;
        }
        else {
            return -1;
        }
        p++;
        for (int i = 0; i < extra; i++, p++) {
            if ((*p & 0xC0) != 0x80) {
                return -1;
            }
            cp = (cp << 6) | (*p & 0x3F);
        }
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800)
            || (extra == 3 && cp < 0x10000) || cp > 0x10FFFF
            || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return -1;
        }
        n++;
    }
    return n;
}

int ecom_email_valid(const char *s)
{
    const char *at = NULL, *dot = NULL, *p;
    size_t len;

    if (!s) {
        return 0;
    }
    len = strlen(s);
    if (len < 3 || len > 254) {
        return 0;
    }
    for (p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7F || c == '<' || c == '>' || c == ','
            || c == ';' || c == '"' || c == '\\') {
            return 0;
        }
        if (c == '@') {
            if (at) {
                return 0;
            }
            at = p;
        }
        else if (c == '.' && at) {
            dot = p;
        }
    }
    /* non-empty local part, a dot inside the domain, not at either end */
    return at && at != s && dot && dot > at + 1 && dot[1] != '\0'
           && ecom_utf8_len(s) >= 0;
}

int ecom_currency_valid(const char *s)
{
    return s && strlen(s) == 3
           && s[0] >= 'A' && s[0] <= 'Z'
           && s[1] >= 'A' && s[1] <= 'Z'
           && s[2] >= 'A' && s[2] <= 'Z';
}

int ecom_idem_key_valid(const char *s)
{
    size_t n = 0;

    if (!s) {
        return 0;
    }
    for (; s[n]; n++) {
        if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7E) {
            return 0;
        }
    }
    return n >= 1 && n <= 255;
}

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void ecom_b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i;
    char *o = out;

    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *o++ = b64url[(v >> 18) & 63];
        *o++ = b64url[(v >> 12) & 63];
        *o++ = b64url[(v >> 6) & 63];
        *o++ = b64url[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        *o++ = b64url[(v >> 18) & 63];
        *o++ = b64url[(v >> 12) & 63];
    }
    else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        *o++ = b64url[(v >> 18) & 63];
        *o++ = b64url[(v >> 12) & 63];
        *o++ = b64url[(v >> 6) & 63];
    }
    *o = '\0';
}

static int b64url_val(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

long ecom_b64url_decode(const char *in, unsigned char *out, size_t outmax)
{
    size_t len = strlen(in), o = 0, i;
    unsigned acc = 0;
    int bits = 0;

    if (len % 4 == 1) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        int v = b64url_val(in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outmax) {
                return -1;
            }
            out[o++] = (unsigned char)((acc >> bits) & 0xFF);
        }
    }
    /* the unused low bits of the last character must be zero (canonical) */
    if (bits && (acc & ((1u << bits) - 1))) {
        return -1;
    }
    return (long)o;
}

void ecom_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void ecom_cursor_encode(char tag, long long a, long long b,
                        char out[ECOM_CURSOR_MAX])
{
    char plain[48];
    int n = snprintf(plain, sizeof(plain), "%c:%lld:%lld", tag, a, b);

    ecom_b64url_encode((const unsigned char *)plain, (size_t)n, out);
}

int ecom_cursor_decode(const char *s, char tag, long long *a, long long *b)
{
    unsigned char plain[48];
    char abuf[24], bbuf[24];
    const char *colon;
    long n;
    size_t alen;

    if (!s || strlen(s) >= ECOM_CURSOR_MAX) {
        return -1;
    }
    n = ecom_b64url_decode(s, plain, sizeof(plain) - 1);
    if (n < 5) {
        return -1;
    }
    plain[n] = '\0';
    if (memchr(plain, '\0', (size_t)n) || plain[0] != (unsigned char)tag
        || plain[1] != ':') {
        return -1;
    }
    colon = strchr((const char *)plain + 2, ':');
    if (!colon) {
        return -1;
    }
    alen = (size_t)(colon - (const char *)plain - 2);
    if (alen == 0 || alen >= sizeof(abuf) || strlen(colon + 1) >= sizeof(bbuf)) {
        return -1;
    }
    memcpy(abuf, plain + 2, alen);
    abuf[alen] = '\0';
    memcpy(bbuf, colon + 1, strlen(colon + 1) + 1);
    if (ecom_parse_ll(abuf, -9223372036854775807LL, 9223372036854775807LL, a)
        || ecom_parse_ll(bbuf, -9223372036854775807LL, 9223372036854775807LL, b)) {
        return -1;
    }
    return 0;
}

/* n (0..99) as two digits at out */
static void two_digits(char *out, int n)
{
    out[0] = (char)('0' + n / 10);
    out[1] = (char)('0' + n % 10);
}

void ecom_rfc3339(long long epoch, char out[ECOM_RFC3339_LEN])
{
    /* 0000-01-01 .. 9999-12-31T23:59:59 */
    static const long long lo = -62167219200LL, hi = 253402300799LL;
    time_t t = (time_t)(epoch < lo ? lo : epoch > hi ? hi : epoch);
    struct tm tm;
    int year;

    gmtime_r(&t, &tm);
    /* the digits written directly: every timestamp of every row of a
     * list goes through here, and snprintf's format parsing was a tenth of
     * the rendering's cost */
    year = tm.tm_year + 1900;
    two_digits(out, year / 100);
    two_digits(out + 2, year % 100);
    out[4] = '-';
    two_digits(out + 5, tm.tm_mon + 1);
    out[7] = '-';
    two_digits(out + 8, tm.tm_mday);
    out[10] = 'T';
    two_digits(out + 11, tm.tm_hour);
    out[13] = ':';
    two_digits(out + 14, tm.tm_min);
    out[16] = ':';
    two_digits(out + 17, tm.tm_sec);
    out[19] = 'Z';
    out[20] = '\0';
}

static int is_state_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

/* Start of the first line's text after "SEVERITY:  ", or NULL. */
static const char *after_severity(const char *msg)
{
    static const char *const sev[] = {
        "ERROR:  ", "FATAL:  ", "PANIC:  ", NULL
    };

    if (!msg) {
        return NULL;
    }
    for (int i = 0; sev[i]; i++) {
        size_t n = strlen(sev[i]);
        if (strncmp(msg, sev[i], n) == 0) {
            return msg + n;
        }
    }
    return NULL;
}

int ecom_pg_sqlstate(const char *msg, char out[6])
{
    const char *p = after_severity(msg);

    if (!p) {
        return -1;
    }
    for (int i = 0; i < 5; i++) {
        if (!is_state_char(p[i])) {
            return -1;
        }
    }
    if (p[5] != ':') {
        return -1;
    }
    memcpy(out, p, 5);
    out[5] = '\0';
    return 0;
}

static void copy_line(const char *p, char *out, size_t outlen)
{
    size_t n = strcspn(p, "\r\n");

    if (outlen == 0) {
        return;
    }
    if (n >= outlen) {
        n = outlen - 1;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

int ecom_pg_field(const char *msg, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    const char *p = msg;

    while (p && *p) {
        if (strncmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ') {
                p++;
            }
            copy_line(p, out, outlen);
            return 0;
        }
        p = strchr(p, '\n');
        if (p) {
            p++;
        }
    }
    return -1;
}

int ecom_pg_primary(const char *msg, char *out, size_t outlen)
{
    const char *p = after_severity(msg);
    char state[6];

    if (!p) {
        return -1;
    }
    if (ecom_pg_sqlstate(msg, state) == 0) {
        p += 6;
        while (*p == ' ') {
            p++;
        }
    }
    copy_line(p, out, outlen);
    return 0;
}
