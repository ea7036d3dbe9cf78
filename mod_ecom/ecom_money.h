/*
 * ecom_money.h: checked money arithmetic, without httpd.
 *
 * An amount is an integer number of minor units (cents) in a long long,
 * never a float. Amounts are >= 0: a negative operand is invalid input.
 * Every function returns 0 on success and -1 on invalid input or when the
 * result would not fit; it never wraps, and on -1 it leaves its output
 * untouched. Rounding is spelled out where it happens (percent: half up;
 * split: largest remainder), so a total always equals the sum of its parts
 * to the cent.
 */
#ifndef ECOM_MONEY_H
#define ECOM_MONEY_H

#include <stddef.h>

/* *out = a + b (a, b >= 0). */
int ecom_money_add(long long a, long long b, long long *out);

/* *out = amount * qty (amount, qty >= 0). */
int ecom_money_mul(long long amount, long long qty, long long *out);

/* *acc += price * qty (price, qty >= 0; *acc is not checked for sign), for
 * totals built line by line. On -1 *acc is unchanged. */
int ecom_money_add_line(long long *acc, long long price, long long qty);

/* *out = amount * basis_points / 10000, rounded half up (0.5 cent goes up),
 * for amount >= 0 and basis_points in 0..10000 (0 .. 100.00 %). The product
 * is formed in 128 bits, so any amount works and *out <= amount. */
int ecom_money_percent(long long amount, long long basis_points, long long *out);

/*
 * Splits total (>= 0) across n lines in proportion to weights (each >= 0,
 * their sum > 0 unless total == 0), writing out[0..n-1]:
 *   - sum(out) == total exactly: no cent lost or created;
 *   - each out[i] is its exact share total * w[i] / sum(w), rounded down or
 *     up (never further): every line first gets the floor of its share, and
 *     the cents left over go one each to the lines with the largest
 *     remainders, ties to the lowest index (largest-remainder method, so the
 *     result depends on the inputs only);
 *   - a line of weight 0 gets 0, and when total <= sum(w), out[i] <= w[i]
 *     (a refund spread over the lines never exceeds a line's amount).
 * For spreading a discount or a partial refund across order lines. n == 0
 * is fine when total == 0. weights and out may not overlap. No allocation.
 */
int ecom_money_split(long long total, const long long *weights, size_t n,
                     long long *out);

#endif /* ECOM_MONEY_H */
