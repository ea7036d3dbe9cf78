/*
 * ecom_coupons.h: what the coupons (ecom_coupons.c) share with the cart
 * (its coupon, discount and total) and the checkout (a coupon refusal).
 */
#ifndef ECOM_COUPONS_H
#define ECOM_COUPONS_H

#include "ecom_req.h"
#include "ecom_db.h"

/* GET /cart/ of an account: the cart's coupon as the cart shows it, for
 * a cart of subtotal in currency. Sets *coupon (a pool-owned object
 * {code, percent_off, amount_off, currency, applicable, reason}, or JSON
 * null without a coupon) and *discount (0 when it does not apply now).
 * Returns 0, or the status of the failure set. */
int ecom_cart_coupon(ecom_req *q, long long subtotal, const char *currency,
                     json_t **coupon, long long *discount);

/* The checkout's refusal of the cart's coupon code for reason
 * ('exhausted', 'expired'...: sql/023 ecom_coupon_reason): 409
 * coupon-<reason>. Returns the status. */
int ecom_coupon_refused(ecom_req *q, const char *code, const char *reason);

/* Shared by the discounts' readers (coupons, pricing rules, refunds by
 * lines). */
/* An RFC 3339 time ("2026-11-27T10:00:00Z", "...T10:00:00.5+01:00", from
 * 1970) as Unix seconds (a fraction is dropped). 0, or -1 when it is
 * not one. */
int ecom_time_parse(const char *s, long long *out);
/* A body field holding such a time: 1 set (*v), 0 absent, 2 null, -1
 * after a field error. */
int ecom_get_time(json_t *body, const char *field, long long *v,
                  json_t *errs);
/* ecom_get_int, with null accepted: 2. */
int ecom_get_int_null(json_t *body, const char *field, long long min,
                      long long max, long long *v, json_t *errs);
/* A body field holding 1..max distinct positive integer ids: 1 with
 * *literal a PostgreSQL array literal ("{1,2}") and *n their number, 0
 * absent, -1 after a field error. */
int ecom_get_ids(ecom_req *q, json_t *body, const char *field, size_t max,
                 const char **literal, long long *n, json_t *errs);

/* GET of one object: 200 with the row of label(arg) as cols, or 404
 * not-found with missing. Returns the status. */
int ecom_send_one(ecom_req *q, const char *label, const char *arg,
                  const ecom_col *cols, const char *missing);
/* A staff list by ascending id: label takes (after id or NULL, limit + 1);
 * the cursor under tag carries column key. Returns the status. */
int ecom_send_id_page(ecom_req *q, const char *label, char tag,
                      const ecom_col *cols, int key);

#endif /* ECOM_COUPONS_H */
