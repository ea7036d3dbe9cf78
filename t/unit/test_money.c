/*
 * test_money.c: unit tests of ecom_money.c: edge cases, overflow, and a
 * fixed-seed property loop that checks ecom_money_split against a plain
 * reference implementation of the largest-remainder method.
 */
#include "ecom_money.h"
#include "unit.h"

#include <string.h>

#define LL_MAX 9223372036854775807LL

static void test_add_mul(void)
{
    long long v = 7;

    OK(ecom_money_add(2, 3, &v) == 0 && v == 5, "add 2 + 3");
    OK(ecom_money_add(LL_MAX, 0, &v) == 0 && v == LL_MAX, "add up to LLONG_MAX");
    v = 7;
    OK(ecom_money_add(LL_MAX, 1, &v) == -1 && v == 7, "add overflow refused, out kept");
    OK(ecom_money_add(-1, 3, &v) == -1 && ecom_money_add(3, -1, &v) == -1,
       "add refuses negative amounts");
    OK(ecom_money_add(1, 1, NULL) == -1, "add refuses a NULL out");
    OK(ecom_money_mul(1999, 3, &v) == 0 && v == 5997, "mul 19.99 x 3");
    OK(ecom_money_mul(0, LL_MAX, &v) == 0 && v == 0, "mul by zero");
    OK(ecom_money_mul(3037000499LL, 3037000499LL, &v) == 0
       && v == 9223372030926249001LL, "mul just below the limit");
    v = 7;
    OK(ecom_money_mul(3037000500LL, 3037000500LL, &v) == -1 && v == 7,
       "mul overflow refused, out kept");
    OK(ecom_money_mul(-2, 3, &v) == -1 && ecom_money_mul(2, -3, &v) == -1,
       "mul refuses negative operands");
}

static void test_add_line(void)
{
    long long acc = 0;

    OK(ecom_money_add_line(&acc, 1000000000000LL, 10000) == 0
       && acc == 10000000000000000LL, "price 10^12 x 10^4 fits");
    OK(ecom_money_add_line(&acc, 9223372036854775807LL, 2) == -1
       && acc == 10000000000000000LL, "multiplication overflow refused, acc kept");
    acc = 9223372036854775000LL;
    OK(ecom_money_add_line(&acc, 1000, 1) == -1, "addition overflow refused");
    acc = 0;
    OK(ecom_money_add_line(&acc, -1, 1) == -1, "negative price refused");
    OK(ecom_money_add_line(&acc, 5, 0) == 0 && acc == 0, "zero quantity adds 0");
    OK(ecom_money_add_line(&acc, 5, -1) == -1 && acc == 0, "negative quantity refused");
    OK(ecom_money_add_line(NULL, 5, 1) == -1, "NULL accumulator refused");
}

static void test_percent(void)
{
    long long v = 7;

    OK(ecom_money_percent(1000, 1000, &v) == 0 && v == 100, "10 % of 10.00");
    OK(ecom_money_percent(5, 5000, &v) == 0 && v == 3, "50 % of 5 cents: 2.5 rounds up");
    OK(ecom_money_percent(1, 5000, &v) == 0 && v == 1, "half a cent rounds up");
    OK(ecom_money_percent(1, 4999, &v) == 0 && v == 0, "just under half a cent rounds down");
    OK(ecom_money_percent(199, 2550, &v) == 0 && v == 51, "25.5 % of 1.99 is 50.745 -> 51");
    OK(ecom_money_percent(12345, 0, &v) == 0 && v == 0, "0 %");
    OK(ecom_money_percent(12345, 10000, &v) == 0 && v == 12345, "100 %");
    OK(ecom_money_percent(LL_MAX, 10000, &v) == 0 && v == LL_MAX,
       "100 % of LLONG_MAX: no intermediate overflow");
    OK(ecom_money_percent(LL_MAX, 5000, &v) == 0 && v == 4611686018427387904LL,
       "50 % of LLONG_MAX rounds half up");
    OK(ecom_money_percent(LL_MAX, 1, &v) == 0 && v == 922337203685478LL,
       "0.01 % of LLONG_MAX");
    v = 7;
    OK(ecom_money_percent(-1, 100, &v) == -1 && v == 7, "negative amount refused");
    OK(ecom_money_percent(100, -1, &v) == -1 && ecom_money_percent(100, 10001, &v) == -1
       && v == 7, "basis points outside 0..10000 refused");
    OK(ecom_money_percent(100, 100, NULL) == -1, "NULL out refused");
}

static int same(const long long *a, const long long *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof(*a)) == 0;
}

static void test_split_cases(void)
{
    long long out[8];
    static const long long ones[] = { 1, 1, 1, 1 };

    OK(ecom_money_split(0, NULL, 0, NULL) == 0, "nothing split over no lines");
    OK(ecom_money_split(5, NULL, 0, NULL) == -1, "5 cents over no lines refused");
    OK(ecom_money_split(5, NULL, 2, out) == -1, "NULL weights refused");
    OK(ecom_money_split(5, ones, 2, NULL) == -1, "NULL out refused");
    {
        static const long long w[] = { 7 }, want[] = { 123 };
        OK(ecom_money_split(123, w, 1, out) == 0 && same(out, want, 1),
           "one line takes everything");
    }
    {
        static const long long w[] = { 1, 1, 1 }, want[] = { 34, 33, 33 };
        OK(ecom_money_split(100, w, 3, out) == 0 && same(out, want, 3),
           "100 over three equal lines: the tie goes to the first");
    }
    {
        static const long long w[] = { 1, 1, 1 }, want[] = { 1, 1, 0 };
        OK(ecom_money_split(2, w, 3, out) == 0 && same(out, want, 3),
           "2 over three equal lines: lowest indexes first");
    }
    {
        static const long long want[] = { 1, 1, 1, 0 };
        OK(ecom_money_split(3, ones, 4, out) == 0 && same(out, want, 4),
           "3 over four lines of 1: no line above its weight");
    }
    {
        static const long long w[] = { 1, 2 }, want[] = { 3, 7 };
        OK(ecom_money_split(10, w, 2, out) == 0 && same(out, want, 2),
           "10 over 1:2 -> the larger remainder (6.67) gets the cent");
    }
    {
        static const long long w[] = { 3333, 3333, 3334 }, want[] = { 333, 333, 334 };
        OK(ecom_money_split(1000, w, 3, out) == 0 && same(out, want, 3),
           "discount of 10.00 over 33.33 + 33.33 + 33.34");
    }
    {
        static const long long w[] = { 0, 5, 0, 5 }, want[] = { 0, 5, 0, 5 };
        OK(ecom_money_split(10, w, 4, out) == 0 && same(out, want, 4),
           "lines of weight 0 get nothing");
    }
    {
        static const long long w[] = { 0, 0 }, want[] = { 0, 0 };
        OK(ecom_money_split(0, w, 2, out) == 0 && same(out, want, 2),
           "0 over weights summing to 0");
        OK(ecom_money_split(1, w, 2, out) == -1, "1 over weights summing to 0 refused");
    }
    {
        static const long long w[] = { 1999, 250, 1 };
        OK(ecom_money_split(2250, w, 3, out) == 0 && same(out, w, 3),
           "a full refund gives every line its amount back");
    }
    {
        static const long long w[] = { LL_MAX, LL_MAX },
                               want[] = { 4611686018427387904LL, 4611686018427387903LL };
        OK(ecom_money_split(LL_MAX, w, 2, out) == 0 && same(out, want, 2),
           "LLONG_MAX over two LLONG_MAX weights (128-bit products)");
    }
    {
        static const long long w[] = { LL_MAX, 1 }, want[] = { LL_MAX - 1, 1 };
        OK(ecom_money_split(LL_MAX, w, 2, out) == 0 && same(out, want, 2),
           "LLONG_MAX over LLONG_MAX:1");
    }
    {
        static const long long w[] = { 5, -1 }, keep[] = { 42, 42 };
        out[0] = out[1] = 42;
        OK(ecom_money_split(3, w, 2, out) == -1 && same(out, keep, 2),
           "a negative weight is refused, out untouched");
        OK(ecom_money_split(-3, ones, 2, out) == -1 && same(out, keep, 2),
           "a negative total is refused, out untouched");
    }
}

/* The largest-remainder method written the plain way: floors, then one cent
 * at a time to the largest remaining remainder, lowest index on ties. */
static void split_reference(long long total, const long long *w, size_t n,
                            long long *out)
{
    __int128 sum = 0, rem[64];
    int bumped[64] = { 0 };
    long long left = total;
    size_t i;

    for (i = 0; i < n; i++) {
        sum += w[i];
    }
    for (i = 0; i < n; i++) {
        out[i] = (long long)((__int128)total * w[i] / sum);
        rem[i] = (__int128)total * w[i] % sum;
        left -= out[i];
    }
    while (left-- > 0) {
        size_t best = n;
        for (i = 0; i < n; i++) {
            if (!bumped[i] && (best == n || rem[i] > rem[best])) {
                best = i;
            }
        }
        bumped[best] = 1;
        out[best]++;
    }
}

/* A random value of random bit width, so small and huge numbers both come. */
static long long rand_amount(unsigned long long *seed)
{
    unsigned bits = (unsigned)(unit_rand(seed) % 64);

    return (long long)(unit_rand(seed) & ((1ULL << bits) - 1));
}

static void test_split_property(void)
{
    unsigned long long seed = 0x5eed0fec0ffeeULL;
    int iterations = 20000, sum_ok = 1, bounds_ok = 1, cap_ok = 1, ref_ok = 1,
        rc_ok = 1;

    for (int it = 0; it < iterations; it++) {
        long long w[64], out[64], ref[64], total;
        size_t n = 1 + (size_t)(unit_rand(&seed) % 40), i;
        __int128 wsum = 0, osum = 0;

        for (i = 0; i < n; i++) {
            /* a few zero weights, and sometimes all weights small */
            w[i] = unit_rand(&seed) % 5 == 0 ? 0
                   : it % 3 == 0 ? (long long)(unit_rand(&seed) % 100)
                   : rand_amount(&seed);
            wsum += w[i];
        }
        total = it % 4 == 0 && wsum <= LL_MAX ? (long long)(wsum / 2 + it % 7)
                : rand_amount(&seed);
        if (wsum == 0) {
            w[0] = 1;
            wsum = 1;
        }
        if (ecom_money_split(total, w, n, out) != 0) {
            rc_ok = 0;
            continue;
        }
        split_reference(total, w, n, ref);
        for (i = 0; i < n; i++) {
            __int128 exact = (__int128)total * w[i];   /* share * wsum */
            osum += out[i];
            /* floor(share) <= out <= ceil(share) */
            if ((__int128)out[i] * wsum > exact + wsum - 1
                || (__int128)out[i] * wsum < exact - (wsum - 1) || out[i] < 0) {
                bounds_ok = 0;
            }
            if ((__int128)total <= wsum && out[i] > w[i]) {
                cap_ok = 0;
            }
            if (out[i] != ref[i]) {
                ref_ok = 0;
            }
        }
        if (osum != total) {
            sum_ok = 0;
        }
    }
    OK(rc_ok, "split property: every valid input is accepted");
    OK(sum_ok, "split property: sum(out) == total");
    OK(bounds_ok, "split property: each line within its share rounded down or up");
    OK(cap_ok, "split property: out[i] <= weight[i] when total <= sum of weights");
    OK(ref_ok, "split property: equals the reference largest-remainder split");
}

void test_money(void)
{
    test_add_mul();
    test_add_line();
    test_percent();
    test_split_cases();
    test_split_property();
}
