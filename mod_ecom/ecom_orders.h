/*
 * ecom_orders.h: what the resources built on orders (payments, refunds,
 * shipments, cancel) use of them (ecom_orders.c).
 */
#ifndef ECOM_ORDERS_H
#define ECOM_ORDERS_H

#include "ecom_req.h"
#include "ecom_err.h"
#include "ecom_db.h"
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

/* An order row as ecom_order_lock() read it. */
typedef struct {
    ecom_order_state status;
    long long paid_amount;
    long long refunded_amount;
    const char *currency;
    int has_address;
} ecom_order_row;

/* For a transaction body: locks order_id's row (FOR NO KEY UPDATE, which
 * every UPDATE of the row also takes)
 * and reads it into *o. Scoped like every order read: the caller's own
 * order, any order for staff. Returns an end whose err is ECOM_OK to go
 * on; else the body returns it: ECOM_TX_REFUSE after the 404 answer (an
 * unknown order or another user's), or the failure. Lock order of the lifecycle writes: the order row
 * first, then its shipments, then products in ascending id order
 * (ecom_order_restock), so they cannot deadlock with each other nor with
 * checkout (which locks products but no existing order). */
ecom_tx_end ecom_order_lock(ecom_req *q, long long order_id,
                            ecom_order_row *o);

/* For a transaction body: answers 409 invalid-state (detail, and the
 * order's status as order_status) and returns ECOM_TX_REFUSE. */
ecom_tx_end ecom_order_refuse(ecom_req *q, ecom_order_state s,
                              const char *detail);

/* Puts every line of order_id back to stock, once: restocked_at is
 * claimed by the same statement (a second call changes nothing and
 * returns ECOM_OK). Products are locked in ascending id order first, then
 * one UPDATE adds the aggregated quantities of the order's lines. Runs in
 * the caller's transaction (INTERNAL, logged, when none is open); the
 * caller should hold the order row (ecom_order_lock or a transition).
 * A product that goes from 0 to more than 0 marks the catalog cache
 * section dirty (q->cache_dirty); ecom_order_tx (or the Idempotency-Key
 * transaction) invalidates it once committed. Used by cancel, refunds
 * with restock, and the payment timeout. */
ecom_err ecom_order_restock(ecom_req *q, long long order_id);

/* ecom_db_tx, then the cache sections a committed body noted as dirty
 * (ecom_order_restock) are invalidated, when the transaction was its own
 * (inside an Idempotency-Key transaction, ecom_idem_run does it). */
ecom_err ecom_order_tx(ecom_req *q, ecom_tx_fn fn, void *ctx);

/* A write handler's last steps: 422 when errs (NULL: none) holds field
 * errors, else fn in ecom_order_tx. Returns 0 once committed, or the
 * status of the answer set (the refusal, or the failure rendered). */
int ecom_order_write(ecom_req *q, json_t *errs, ecom_tx_fn fn, void *ctx);

/* The refund object of the API: the columns of ECOM_REFUND_COLS (from
 * refunds r), read with ecom_refund_cols. */
#define ECOM_REFUND_COLS \
    "r.id, r.order_id, r.amount, r.currency, r.status, r.reason, " \
    "r.restock, " ECOM_TS("r.created_at")
extern const ecom_col ecom_refund_cols[];

/* The shipment object: ECOM_SHIPMENT_COLS from shipments s JOIN orders o
 * ON o.id = s.order_id, read with ecom_shipment_cols (ecom_shipments.c). */
#define ECOM_SHIPMENT_COLS \
    "s.id, s.order_id, s.carrier, s.tracking_number, s.status, " \
    "o.shipping_address::text, " ECOM_TS("s.created_at") ", " \
    ECOM_TS("s.updated_at")
extern const ecom_col ecom_shipment_cols[];

/* A shipping address (an order's shipping_address, an address book
 * entry: ecom_addresses.c): validates the object v and returns its
 * normalised snapshot as JSON text (country upper-case, absent or null
 * optional fields left out), or NULL after adding field errors to errs,
 * named "<field>.<member>" ("<member>" when field is NULL: v is the body).
 * Members other than the address's are refused, except those named in
 * also (NULL-terminated, or NULL), which are left to the caller. */
const char *ecom_address_read(ecom_req *q, json_t *v, const char *field,
                              const char *const *also, json_t *errs);

#endif /* ECOM_ORDERS_H */
