/*
 * ecom_order_state.h: the order life cycle of DESIGN.md, without httpd.
 *
 *   pending -> paid -> shipped -> delivered
 *   pending, paid -> cancelled          (restocks)
 *   paid, shipped, delivered -> refunded (refunds reaching the amount paid)
 *
 * One static table in ecom_order_state.c is the only place that says which
 * transition is allowed; anything else (self-transitions, leaving cancelled
 * or refunded, skipping a step) is refused and answered 409 by the caller.
 * The names are the API's and the database's lowercase strings. Values
 * outside 0 .. ECOM_ORDER_NSTATES - 1 are never valid.
 */
#ifndef ECOM_ORDER_STATE_H
#define ECOM_ORDER_STATE_H

typedef enum {
    ECOM_ORDER_PENDING,
    ECOM_ORDER_PAID,
    ECOM_ORDER_SHIPPED,
    ECOM_ORDER_DELIVERED,
    ECOM_ORDER_CANCELLED,
    ECOM_ORDER_REFUNDED,
    ECOM_ORDER_NSTATES
} ecom_order_state;

/* "pending", "paid", ...; NULL when s is out of range. */
const char *ecom_order_state_name(ecom_order_state s);

/* Exact, case-sensitive match of a state name. 0 and *out set, or -1. */
int ecom_order_state_parse(const char *name, ecom_order_state *out);

/* 1 when an order may move from `from` to `to`, 0 otherwise (also for
 * out-of-range values). */
int ecom_order_transition_allowed(ecom_order_state from, ecom_order_state to);

/* "pending, paid, shipped, delivered, cancelled, refunded", for error
 * messages that list the valid values. */
const char *ecom_order_states_list(void);

#endif /* ECOM_ORDER_STATE_H */
