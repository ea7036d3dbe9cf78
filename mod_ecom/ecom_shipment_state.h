/*
 * ecom_shipment_state.h: the shipment life cycle, without httpd
 * (ecom_shipment_state.c).
 *
 *   pending -> shipped -> in_transit -> delivered
 *
 * A shipment only moves forward. Skipping forward is allowed (a carrier
 * may report a parcel delivered without an in-transit scan); staying in
 * the same state or going back is refused (409 invalid-state by the
 * caller). delivered is final.
 */
#ifndef ECOM_SHIPMENT_STATE_H
#define ECOM_SHIPMENT_STATE_H

typedef enum {
    ECOM_SHIP_PENDING,
    ECOM_SHIP_SHIPPED,
    ECOM_SHIP_IN_TRANSIT,
    ECOM_SHIP_DELIVERED,
    ECOM_SHIP_NSTATES
} ecom_shipment_state;

/* "pending", "shipped", "in_transit", "delivered"; NULL out of range. */
const char *ecom_shipment_state_name(ecom_shipment_state s);
/* Exact, case-sensitive match. 0 and *out set, or -1. */
int ecom_shipment_state_parse(const char *name, ecom_shipment_state *out);
/* 1 when a shipment may move from `from` to `to` (strictly forward), 0
 * otherwise, also for out-of-range values. */
int ecom_shipment_transition_allowed(ecom_shipment_state from,
                                     ecom_shipment_state to);
/* "pending, shipped, in_transit, delivered", for error messages. */
const char *ecom_shipment_states_list(void);

#endif /* ECOM_SHIPMENT_STATE_H */
