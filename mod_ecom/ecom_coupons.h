/*
 * ecom_coupons.h: what the coupons (ecom_coupons.c) share with the cart
 * (its coupon, discount and total) and the checkout (a coupon refusal).
 */
#ifndef ECOM_COUPONS_H
#define ECOM_COUPONS_H

#include "ecom_req.h"

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

#endif /* ECOM_COUPONS_H */
