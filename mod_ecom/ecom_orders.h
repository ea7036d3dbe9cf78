/*
 * ecom_orders.h: what the resources built on orders (payments, refunds,
 * shipments, cancel) use of them (ecom_orders.c).
 */
#ifndef ECOM_ORDERS_H
#define ECOM_ORDERS_H

#include "ecom_req.h"
#include "ecom_err.h"
#include "ecom_order_state.h"

/* Who moved an order (order_events.actor, the feed's actor): the caller as
 * a customer or as staff, the module itself (the payment timeout), or the
 * payment provider (a signed webhook). */
typedef enum {
    ECOM_ACTOR_USER,
    ECOM_ACTOR_STAFF,
    ECOM_ACTOR_SYSTEM,
    ECOM_ACTOR_PROVIDER
} ecom_actor;

/* "user", "staff", "system", "provider". */
const char *ecom_actor_name(ecom_actor a);

/* Moves order_id from `from` to `to` inside the caller's transaction
 * (ecom_db_tx, or the Idempotency-Key transaction): one statement that
 * updates the order only while it is still in `from` and writes its
 * order_events row (actor kind; actor id: the caller for USER and STAFF,
 * none for SYSTEM and PROVIDER), so the
 * audit trail can never miss a transition nor record one that did not
 * happen. Returns ECOM_OK; NOT_FOUND when the order is not (or no longer)
 * in `from`, which the caller answers as 409 invalid-state (or 404 for an
 * order the caller may not see); INTERNAL, logged, when DESIGN.md's table
 * (ecom_order_transition_allowed) forbids the move or no transaction is
 * open: both are bugs of the caller. */
ecom_err ecom_order_transition(ecom_req *q, long long order_id,
                               ecom_order_state from, ecom_order_state to,
                               ecom_actor actor);

#endif /* ECOM_ORDERS_H */
