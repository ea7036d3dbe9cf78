/*
 * test_order_state.c: unit tests of ecom_order_state.c. The 6 x 6 matrix
 * is checked against a table written here by name, from DESIGN.md, not
 * copied from the code's.
 */
#include "ecom_order_state.h"
#include "unit.h"

#include <string.h>

/* DESIGN.md: pending -> paid -> shipped -> delivered, cancelled from
 * pending or paid, refunded from paid, shipped or delivered. */
static const char *const expected_moves[] = {
    "pending>paid", "paid>shipped", "shipped>delivered",
    "pending>cancelled", "paid>cancelled",
    "paid>refunded", "shipped>refunded", "delivered>refunded",
};

static int expected(const char *from, const char *to)
{
    char key[40];

    snprintf(key, sizeof(key), "%s>%s", from, to);
    for (size_t i = 0; i < sizeof(expected_moves) / sizeof(*expected_moves); i++) {
        if (strcmp(key, expected_moves[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static void test_matrix(void)
{
    int allowed = 0;

    for (int f = 0; f < ECOM_ORDER_NSTATES; f++) {
        for (int t = 0; t < ECOM_ORDER_NSTATES; t++) {
            const char *fn = ecom_order_state_name((ecom_order_state)f);
            const char *tn = ecom_order_state_name((ecom_order_state)t);
            int got = ecom_order_transition_allowed((ecom_order_state)f,
                                                    (ecom_order_state)t);
            char name[80];

            snprintf(name, sizeof(name), "%s -> %s %s", fn, tn,
                     expected(fn, tn) ? "allowed" : "refused");
            OK(got == expected(fn, tn), name);
            allowed += got;
        }
    }
    OK(allowed == (int)(sizeof(expected_moves) / sizeof(*expected_moves)),
       "exactly 8 transitions allowed");
}

static void test_names(void)
{
    static const char *const want[] = {
        "pending", "paid", "shipped", "delivered", "cancelled", "refunded"
    };
    char joined[128] = "";
    size_t len = 0;
    int roundtrip = 1;

    OK(ECOM_ORDER_NSTATES == 6, "six states");
    for (int s = 0; s < ECOM_ORDER_NSTATES; s++) {
        const char *n = ecom_order_state_name((ecom_order_state)s);
        ecom_order_state back = ECOM_ORDER_NSTATES;

        if (!n || strcmp(n, want[s]) != 0 || ecom_order_state_parse(n, &back) != 0
            || back != (ecom_order_state)s) {
            roundtrip = 0;
        }
        if (n) {
            len += (size_t)snprintf(joined + len, sizeof(joined) - len, "%s%s",
                                    s ? ", " : "", n);
        }
    }
    OK(roundtrip, "name and parse round trip for every state");
    OK(strcmp(ecom_order_states_list(), joined) == 0,
       "ecom_order_states_list names every state in order");
    OK(strcmp(ecom_order_states_list(),
              "pending, paid, shipped, delivered, cancelled, refunded") == 0,
       "ecom_order_states_list text");
}

static void test_out_of_range(void)
{
    ecom_order_state s = ECOM_ORDER_PAID;
    static const char *const bad[] = {
        "", "Pending", "PAID", "paid ", " paid", "pendin", "pendingx",
        "refund", "canceled", "in_transit", "paid\n",
    };
    int all_refused = 1;

    OK(ecom_order_state_name(ECOM_ORDER_NSTATES) == NULL, "name of NSTATES is NULL");
    OK(ecom_order_state_name((ecom_order_state)-1) == NULL, "name of -1 is NULL");
    OK(ecom_order_state_name((ecom_order_state)1000) == NULL, "name of 1000 is NULL");
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        if (ecom_order_state_parse(bad[i], &s) != -1) {
            all_refused = 0;
        }
    }
    OK(all_refused && s == ECOM_ORDER_PAID,
       "case, spaces, prefixes and unknown names refused, out untouched");
    OK(ecom_order_state_parse(NULL, &s) == -1, "NULL name refused");
    OK(ecom_order_state_parse("paid", NULL) == -1, "NULL out refused");
    OK(!ecom_order_transition_allowed(ECOM_ORDER_PENDING, ECOM_ORDER_NSTATES)
       && !ecom_order_transition_allowed(ECOM_ORDER_NSTATES, ECOM_ORDER_PAID)
       && !ecom_order_transition_allowed((ecom_order_state)-1, ECOM_ORDER_PAID)
       && !ecom_order_transition_allowed(ECOM_ORDER_PAID, (ecom_order_state)-6),
       "transitions with out-of-range states refused");
}

void test_order_state(void)
{
    test_matrix();
    test_names();
    test_out_of_range();
}
