/*
 * ecom_rate.c: GCRA and the failed-login backoff (see ecom_rate.h).
 *
 * GCRA keeps, per key, the time at which the budget would be exactly
 * spent if requests had come evenly (tat). Each request moves it one
 * emission interval (window / limit) later; a request is refused when that
 * would put tat more than one window ahead of now. So a quiet client has
 * the whole limit as a burst, and a steady one gets limit per window.
 */
#include "ecom_rate.h"

#define SEC INT64_C(1000000)

void ecom_gcra_take(int64_t now, int64_t tat, int64_t limit, int64_t window,
                    ecom_gcra *out)
{
    int64_t step = limit > 0 ? window / limit : window;
    int64_t next, allow_at;

    if (step < 1) {
        step = 1;
    }
    if (tat < now) {
        tat = now;
    }
    next = tat + step;
    allow_at = next - window;
    if (now < allow_at) {
        out->allowed = 0;
        out->tat = tat;
        out->remaining = 0;
        out->reset = tat - now;
        out->retry = allow_at - now;
        return;
    }
    out->allowed = 1;
    out->tat = next;
    out->remaining = (now + window - next) / step;
    out->reset = next - now;
    out->retry = 0;
}

int64_t ecom_backoff(int fails, int free, int64_t max_us)
{
    int64_t d = SEC;
    int n = fails - free;

    if (n <= 0) {
        return 0;
    }
    while (--n > 0 && d < max_us) {
        d *= 2;
    }
    return d < max_us ? d : max_us;
}

int64_t ecom_ceil_sec(int64_t us)
{
    return us <= 0 ? 0 : (us + SEC - 1) / SEC;
}
