/*
 * unit.h: the TAP helpers shared by the unit test files of t/unit/ (one
 * binary, build/unit_tests; main() is in unit_tests.c). Each file exports
 * its test_*() functions here; OK() prints one TAP line per check.
 */
#ifndef ECOM_UNIT_H
#define ECOM_UNIT_H

#include <stdio.h>

extern int unit_n_tests, unit_n_failed;

#define OK(cond, name) do { \
    unit_n_tests++; \
    if (cond) { printf("ok %d - %s\n", unit_n_tests, name); } \
    else { unit_n_failed++; printf("not ok %d - %s (%s:%d)\n", unit_n_tests, \
                                   name, __FILE__, __LINE__); } \
} while (0)

/* A fixed-seed xorshift64 generator for the property loops: the same
 * inputs on every run and every machine. */
static inline unsigned long long unit_rand(unsigned long long *state)
{
    unsigned long long x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

void test_err(void);
void test_money(void);
void test_order_state(void);
void test_path(void);
void test_signature(void);
void test_country(void);
void test_shipment_state(void);
void test_rate(void);
void test_bounds(void);

#endif /* ECOM_UNIT_H */
