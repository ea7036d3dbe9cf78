/*
 * test_rate.c: the throttle's arithmetic (ecom_rate.c).
 */
#include "ecom_rate.h"
#include "unit.h"

#define SEC INT64_C(1000000)

static void test_gcra_burst(void)
{
    int64_t now = 1000 * SEC, tat = 0;
    ecom_gcra g;
    int passed = 0;

    for (int i = 0; i < 12; i++) {
        ecom_gcra_take(now, tat, 10, 60 * SEC, &g);
        if (g.allowed) {
            passed++;
            tat = g.tat;
        }
        if (i == 0) {
            OK(g.allowed && g.remaining == 9, "gcra: first of 10 leaves 9");
        }
    }
    OK(passed == 10, "gcra: a burst of 12 lets exactly the limit (10) through");
    OK(!g.allowed && g.remaining == 0, "gcra: refused with 0 remaining");
    OK(g.retry == 6 * SEC, "gcra: retry after one emission interval (6 s)");
    OK(g.reset == 60 * SEC, "gcra: the whole budget is back after the window");
    ecom_gcra_take(now + 6 * SEC, tat, 10, 60 * SEC, &g);
    OK(g.allowed && g.remaining == 0, "gcra: one more passes after 6 s");
    ecom_gcra_take(now + 600 * SEC, g.tat, 10, 60 * SEC, &g);
    OK(g.allowed && g.remaining == 9, "gcra: a quiet key has its burst back");
}

static void test_backoff(void)
{
    OK(ecom_backoff(4, 5, 300 * SEC) == 0, "backoff: free failures cost nothing");
    OK(ecom_backoff(6, 5, 300 * SEC) == 1 * SEC, "backoff: 1 s after the first paid one");
    OK(ecom_backoff(9, 5, 300 * SEC) == 8 * SEC, "backoff: doubles (8 s at the 4th)");
    OK(ecom_backoff(200, 5, 300 * SEC) == 300 * SEC, "backoff: capped");
    OK(ecom_ceil_sec(1) == 1 && ecom_ceil_sec(SEC) == 1 && ecom_ceil_sec(0) == 0
       && ecom_ceil_sec(SEC + 1) == 2, "ceil_sec");
}

void test_rate(void)
{
    test_gcra_burst();
    test_backoff();
}
