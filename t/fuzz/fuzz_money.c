/*
 * fuzz_money.c: libFuzzer target for ecom_money.c. The input is read as
 * 64-bit numbers (each shifted right by an amount taken from the input, so
 * small, huge and negative values all come) for add, mul, percent and a
 * split over up to 32 lines. Every answer is checked against 128-bit
 * arithmetic: a refusal only for invalid input or a result that does not
 * fit, and a split that keeps the total to the cent, gives each line its
 * share rounded down or up, and never more than its weight when the total
 * fits in the weights.
 */
#include "ecom_money.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LL_MAX 9223372036854775807LL
#define MAX_LINES 32

typedef struct {
    const uint8_t *p;
    size_t left;
} reader;

static uint8_t byte(reader *r)
{
    if (!r->left) {
        return 0;
    }
    r->left--;
    return *r->p++;
}

/* A control byte, then 8 bytes: 1 in 16 raw (may be negative), else shifted
 * right by 0..63 (non-negative, any magnitude). */
static long long number(reader *r)
{
    uint8_t ctl = byte(r);
    unsigned long long v = 0;

    for (int i = 0; i < 8; i++) {
        v = v << 8 | byte(r);
    }
    if (ctl % 16 == 0) {
        return (long long)v;
    }
    return (long long)(v >> (1 + ctl % 63));
}

static void check_add_mul(long long a, long long b)
{
    long long out = -1, acc = b;
    __int128 sum = (__int128)a + b, prod = (__int128)a * b;
    int valid = a >= 0 && b >= 0;

    if ((ecom_money_add(a, b, &out) == 0) != (valid && sum <= LL_MAX)
        || (valid && sum <= LL_MAX && out != sum)) {
        abort();
    }
    if ((ecom_money_mul(a, b, &out) == 0) != (valid && prod <= LL_MAX)
        || (valid && prod <= LL_MAX && out != prod)) {
        abort();
    }
    /* acc += a * a (acc is not checked for sign) */
    prod = (__int128)a * a;
    sum = prod + b;
    valid = a >= 0 && prod <= LL_MAX && sum <= LL_MAX && sum >= -LL_MAX - 1;
    if ((ecom_money_add_line(&acc, a, a) == 0) != valid
        || acc != (valid ? sum : b)) {
        abort();
    }
}

static void check_percent(long long amount, long long bp)
{
    long long out = -1;
    int valid = amount >= 0 && bp >= 0 && bp <= 10000;

    if ((ecom_money_percent(amount, bp, &out) == 0) != valid) {
        abort();
    }
    if (valid && (out != ((__int128)amount * bp + 5000) / 10000 || out > amount
                  || out < 0)) {
        abort();
    }
}

static void check_split(long long total, const long long *w, size_t n)
{
    long long out[MAX_LINES];
    __int128 wsum = 0, osum = 0;
    int valid = total >= 0;

    for (size_t i = 0; i < n; i++) {
        valid = valid && w[i] >= 0;
        wsum += w[i];
        out[i] = -42;
    }
    valid = valid && (total == 0 || wsum > 0);
    if ((ecom_money_split(total, w, n, out) == 0) != valid) {
        abort();
    }
    if (!valid) {
        for (size_t i = 0; i < n; i++) {
            if (out[i] != -42) {
                abort();   /* refused: out untouched */
            }
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        __int128 exact = total ? (__int128)total * w[i] : 0;   /* share * wsum */

        osum += out[i];
        if (total && ((__int128)out[i] * wsum > exact + wsum - 1
                      || (__int128)out[i] * wsum < exact - (wsum - 1))) {
            abort();
        }
        if (out[i] < 0 || (w[i] == 0 && out[i] != 0)
            || ((__int128)total <= wsum && out[i] > w[i])) {
            abort();
        }
    }
    if (osum != total) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = { data, size };
    long long a = number(&r), b = number(&r), w[MAX_LINES];
    size_t n = byte(&r) % (MAX_LINES + 1);

    check_add_mul(a, b);
    check_percent(a, b);
    check_percent(a, b % 10002);
    for (size_t i = 0; i < n; i++) {
        w[i] = number(&r);
    }
    check_split(a, w, n);
    if (n) {
        /* total = half the weights: the refund case */
        __int128 wsum = 0;
        for (size_t i = 0; i < n; i++) {
            wsum += w[i] > 0 ? w[i] : 0;
            w[i] = w[i] > 0 ? w[i] : 0;
        }
        if (wsum / 2 <= LL_MAX) {
            check_split((long long)(wsum / 2), w, n);
        }
    }
    return 0;
}
