/*
 * ecom_cart.h: what the cart (ecom_cart.c) shares with the guest carts
 * and their merge (ecom_guest_cart.c), and the guest-cart entry points of
 * the router and of login and register.
 */
#ifndef ECOM_CART_H
#define ECOM_CART_H

#include "ecom_req.h"

/* A cart holds at most this many distinct products, and a line at most
 * ECOM_CART_MAX_QTY units (CHECKed in the schema too), which keeps every
 * cart and order total inside 64 bits (500 x 10^12 x 10^4 < 2^63); the
 * sums are computed with checked arithmetic all the same. A guest cart
 * has the same caps, and a merge keeps them. */
#define ECOM_CART_MAX_LINES 500
#define ECOM_CART_MAX_LINES_SQL "500"
#define ECOM_CART_MAX_QTY 10000
#define ECOM_CART_MAX_QTY_SQL "10000"

/* ECOM_GUEST routes (the router, for ECOM_AUTH_USER): 1 when the request
 * is a guest's: guest carts are on (EcomGuestCartLifetime), no
 * Authorization header was sent, and a Cart-Token was, or the request is
 * the POST that creates a cart. */
int ecom_guest_wanted(ecom_req *q);
/* Then: sets q->guest and checks the Cart-Token (its hash in
 * q->guest_hash) against the live guest carts, resolving it into
 * q->guest_cart_id (PATCH and DELETE push the cart's expiry forward; a
 * POST's statement finds, locks and extends the cart again); a POST
 * without one gets a new token in q->guest_new_token, for the cart its
 * statement creates. Returns 0, or the status of the problem set:
 * 401 for a malformed, unknown or expired token, as
 * ecom_guest_rejected(). A request with neither credentials nor a cart
 * token that may not create one is never a guest's: it gets the 401 of
 * ecom_authenticate(). With deferred set (a GET route flagged
 * ECOM_AUTH_INLINE) a token of the right shape is not looked up: it is
 * left to the route's statement (q->guest_pending), which resolves it by
 * q->guest_hash, one round trip fewer; the route then calls
 * ecom_guest_resolved() with what it found, or ecom_guest_find(). */
int ecom_guest_authenticate(ecom_req *q, int deferred);
/* A pending guest (above): cart_id is the live cart the route's statement
 * found for q->guest_hash (its decimal text; NULL: none). Sets
 * q->guest_cart_id and returns 0, or answers the 401
 * ecom_guest_authenticate would have (a browser session's stale cart
 * token leaves the session) and returns it. */
int ecom_guest_resolved(ecom_req *q, const char *cart_id);
/* A pending guest's cart looked up on its own (a route that does not run
 * its resolving statement: no cache, or a refusal before it): as
 * ecom_guest_resolved, or the 503 of a database failure. */
int ecom_guest_find(ecom_req *q);
/* The 401 of a Cart-Token that names no live guest cart. */
int ecom_guest_rejected(ecom_req *q);

/* Login and register (ecom_auth.c), once the token is issued: when the
 * request carries a Cart-Token, merges that guest cart into user_id's cart
 * (sql/017: one statement under the account's lock, quantities added and
 * capped, the currency rule kept, then the guest cart deleted) and puts
 * the report in answer as "cart_merge": {found, merged, not_merged}, every
 * guest line in one of the two lists. Nothing without the header. Returns
 * 0, or the status of the failure set (the guest cart is then intact). */
int ecom_guest_cart_merge(ecom_req *q, long long user_id, json_t *answer);

/* GET /cart/: answers 200 with the caller's cart (its lines, subtotal,
 * and for an account the coupon with its discount and the total: issue
 * 10, ecom_coupons.c). Returns the status. */
int ecom_cart_send(ecom_req *q);

#endif /* ECOM_CART_H */
