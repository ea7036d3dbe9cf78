/*
 * ecom_bounds.h: the rule of a product's price bounds (issue 10,
 * demand-based prices), without httpd: price_floor and price_ceiling are
 * both set or both absent, and floor <= price <= ceiling. ecom_dynprice.c
 * checks a staff write with it and renders the answer; sql/024's CHECK
 * constraint holds the same rule in the schema.
 */
#ifndef ECOM_BOUNDS_H
#define ECOM_BOUNDS_H

typedef enum {
    ECOM_BOUNDS_OK,
    ECOM_BOUNDS_ONE_MISSING,     /* one bound without the other */
    ECOM_BOUNDS_CROSSED,         /* floor above ceiling */
    ECOM_BOUNDS_OUTSIDE          /* the price outside [floor, ceiling] */
} ecom_bounds_verdict;

/* The values a write leaves (NULL: absent; price NULL: unknown, nothing to
 * compare); only_price: the write sends the price and no bound. Returns
 * the verdict and, unless OK, in *field the member to name in the 422:
 * the missing bound; price_floor for crossed bounds; for a price outside,
 * price when only the price was sent, else the bound it crossed. */
ecom_bounds_verdict ecom_bounds_check(const long long *floor,
                                      const long long *ceiling,
                                      const long long *price, int only_price,
                                      const char **field);

#endif /* ECOM_BOUNDS_H */
