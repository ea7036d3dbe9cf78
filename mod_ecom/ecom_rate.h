/*
 * ecom_rate.h: the arithmetic of the throttle (ecom_rate.c), without httpd:
 * the generic cell rate algorithm (GCRA) of the request budgets, and the
 * growing delay of failed logins. Times are microseconds on any one clock;
 * ecom_throttle.c keeps the values these functions return in the socache.
 */
#ifndef ECOM_RATE_H
#define ECOM_RATE_H

#include <stdint.h>

/* One GCRA decision: limit requests per window, with a burst of the whole
 * limit. The state is one number per key, the theoretical arrival time
 * (tat): 0 when the key is unknown. */
typedef struct {
    int allowed;
    int64_t tat;        /* the value to store (unchanged when refused) */
    int64_t remaining;  /* requests left right now, after this one */
    int64_t reset;      /* until the whole budget is back (us) */
    int64_t retry;      /* refused: until one more request passes (us) */
} ecom_gcra;

void ecom_gcra_take(int64_t now, int64_t tat, int64_t limit, int64_t window,
                    ecom_gcra *out);

/* The lock after the fails-th failure: none for the first free ones, then
 * 1 s, doubling with each further failure, at most max_us. */
int64_t ecom_backoff(int fails, int free, int64_t max_us);

/* Whole seconds covering us (at least 1 when us > 0). */
int64_t ecom_ceil_sec(int64_t us);

#endif /* ECOM_RATE_H */
