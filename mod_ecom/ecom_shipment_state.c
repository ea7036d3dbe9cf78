/*
 * ecom_shipment_state.c: names and the forward-only order of the shipment
 * states (see ecom_shipment_state.h). Constant data only: thread-safe.
 */
#include "ecom_shipment_state.h"

#include <stddef.h>
#include <string.h>

static const char *const names[ECOM_SHIP_NSTATES] = {
    [ECOM_SHIP_PENDING]    = "pending",
    [ECOM_SHIP_SHIPPED]    = "shipped",
    [ECOM_SHIP_IN_TRANSIT] = "in_transit",
    [ECOM_SHIP_DELIVERED]  = "delivered",
};

static int in_range(ecom_shipment_state s)
{
    /* compared as unsigned, so a negative value cast in is out of range */
    return (unsigned)s < (unsigned)ECOM_SHIP_NSTATES;
}

const char *ecom_shipment_state_name(ecom_shipment_state s)
{
    return in_range(s) ? names[s] : NULL;
}

int ecom_shipment_state_parse(const char *name, ecom_shipment_state *out)
{
    if (!name || !out) {
        return -1;
    }
    for (int s = 0; s < ECOM_SHIP_NSTATES; s++) {
        if (strcmp(name, names[s]) == 0) {
            *out = (ecom_shipment_state)s;
            return 0;
        }
    }
    return -1;
}

int ecom_shipment_transition_allowed(ecom_shipment_state from,
                                     ecom_shipment_state to)
{
    /* the enum is in life-cycle order: forward is a larger value */
    return in_range(from) && in_range(to) && to > from;
}

const char *ecom_shipment_states_list(void)
{
    return "pending, shipped, in_transit, delivered";
}
