/*
 * ecom_order_state.c: names and the transition table of the order states
 * (see ecom_order_state.h). Constant data only: thread-safe.
 */
#include "ecom_order_state.h"

#include <stddef.h>
#include <string.h>

static const char *const names[ECOM_ORDER_NSTATES] = {
    [ECOM_ORDER_PENDING]   = "pending",
    [ECOM_ORDER_PAID]      = "paid",
    [ECOM_ORDER_SHIPPED]   = "shipped",
    [ECOM_ORDER_DELIVERED] = "delivered",
    [ECOM_ORDER_CANCELLED] = "cancelled",
    [ECOM_ORDER_REFUNDED]  = "refunded",
};

/* allowed[from][to]: the whole life cycle. Rows not listed are all zero:
 * cancelled and refunded are final. */
static const unsigned char allowed[ECOM_ORDER_NSTATES][ECOM_ORDER_NSTATES] = {
    [ECOM_ORDER_PENDING] = {
        [ECOM_ORDER_PAID] = 1,
        [ECOM_ORDER_CANCELLED] = 1,
    },
    [ECOM_ORDER_PAID] = {
        [ECOM_ORDER_SHIPPED] = 1,
        [ECOM_ORDER_CANCELLED] = 1,
        [ECOM_ORDER_REFUNDED] = 1,
    },
    [ECOM_ORDER_SHIPPED] = {
        [ECOM_ORDER_DELIVERED] = 1,
        [ECOM_ORDER_REFUNDED] = 1,
    },
    [ECOM_ORDER_DELIVERED] = {
        [ECOM_ORDER_REFUNDED] = 1,
    },
};

static int in_range(ecom_order_state s)
{
    /* compared as unsigned, so a negative value cast in is out of range too */
    return (unsigned)s < (unsigned)ECOM_ORDER_NSTATES;
}

const char *ecom_order_state_name(ecom_order_state s)
{
    return in_range(s) ? names[s] : NULL;
}

int ecom_order_state_parse(const char *name, ecom_order_state *out)
{
    if (!name || !out) {
        return -1;
    }
    for (int s = 0; s < ECOM_ORDER_NSTATES; s++) {
        if (strcmp(name, names[s]) == 0) {
            *out = (ecom_order_state)s;
            return 0;
        }
    }
    return -1;
}

int ecom_order_transition_allowed(ecom_order_state from, ecom_order_state to)
{
    return in_range(from) && in_range(to) && allowed[from][to];
}

const char *ecom_order_states_list(void)
{
    return "pending, paid, shipped, delivered, cancelled, refunded";
}
