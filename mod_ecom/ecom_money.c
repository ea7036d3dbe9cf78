/*
 * ecom_money.c: checked money arithmetic (see ecom_money.h). Sums and
 * products go through the compiler's overflow builtins; products that feed
 * a division (percent, split) are formed in 128 bits, where they cannot
 * overflow: |a * b| < 2^126 for any two long longs. Thread-safe: no state.
 */
#include "ecom_money.h"

int ecom_money_add(long long a, long long b, long long *out)
{
    long long sum;

    if (!out || a < 0 || b < 0 || __builtin_add_overflow(a, b, &sum)) {
        return -1;
    }
    *out = sum;
    return 0;
}

int ecom_money_mul(long long amount, long long qty, long long *out)
{
    long long product;

    if (!out || amount < 0 || qty < 0
        || __builtin_mul_overflow(amount, qty, &product)) {
        return -1;
    }
    *out = product;
    return 0;
}

int ecom_money_add_line(long long *acc, long long price, long long qty)
{
    long long line, sum;

    if (!acc || price < 0 || qty < 0 || __builtin_mul_overflow(price, qty, &line)
        || __builtin_add_overflow(*acc, line, &sum)) {
        return -1;
    }
    *acc = sum;
    return 0;
}

int ecom_money_percent(long long amount, long long basis_points, long long *out)
{
    if (!out || amount < 0 || basis_points < 0 || basis_points > 10000) {
        return -1;
    }
    /* <= amount * 10000 + 5000, far inside 128 bits; the quotient is
     * <= amount, so it fits back */
    *out = (long long)(((__int128)amount * basis_points + 5000) / 10000);
    return 0;
}

/* Remainder of line i's exact share, in units of 1 / sum. */
static __int128 share_rem(long long total, long long w, __int128 sum)
{
    return (__int128)total * w % sum;
}

/* Lines whose remainder is at least r. */
static size_t count_rem_at_least(long long total, const long long *weights,
                                 size_t n, __int128 sum, __int128 r)
{
    size_t i, c = 0;

    for (i = 0; i < n; i++) {
        if (share_rem(total, weights[i], sum) >= r) {
            c++;
        }
    }
    return c;
}

int ecom_money_split(long long total, const long long *weights, size_t n,
                     long long *out)
{
    __int128 sum = 0, lo, hi;
    long long left = total;
    size_t i;

    if (total < 0 || (n && (!weights || !out))) {
        return -1;
    }
    /* n * LLONG_MAX < 2^127: the sum of the weights cannot overflow */
    for (i = 0; i < n; i++) {
        if (weights[i] < 0) {
            return -1;
        }
        sum += weights[i];
    }
    if (total == 0) {
        for (i = 0; i < n; i++) {
            out[i] = 0;
        }
        return 0;
    }
    if (sum == 0) {
        return -1;
    }
    /* every line gets the floor of its share (<= total, so it fits) */
    for (i = 0; i < n; i++) {
        out[i] = (long long)((__int128)total * weights[i] / sum);
        left -= out[i];
    }
    if (left == 0) {
        return 0;
    }
    /*
     * The remainders add up to left * sum and each is < sum, so more than
     * `left` lines have one and 0 < left < n. Find the left-th largest
     * remainder r by bisection (no allocation, no sort), then give a cent
     * to every line above r and to the lowest-indexed lines at r.
     */
    lo = 1;
    hi = sum - 1;
    while (lo < hi) {
        __int128 mid = lo + (hi - lo + 1) / 2;

        if (count_rem_at_least(total, weights, n, sum, mid) >= (size_t)left) {
            lo = mid;
        }
        else {
            hi = mid - 1;
        }
    }
    for (i = 0; i < n; i++) {
        if (share_rem(total, weights[i], sum) > lo) {
            out[i]++;
            left--;
        }
    }
    for (i = 0; i < n && left > 0; i++) {
        if (share_rem(total, weights[i], sum) == lo) {
            out[i]++;
            left--;
        }
    }
    return 0;
}
