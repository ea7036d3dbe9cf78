/*
 * ecom_dynprice.h: demand-based prices (ecom_dynprice.c, issue 10): the
 * bounds of the staff product writes, the EcomDynamicPricing flag and the
 * mod_watchdog job's run.
 */
#ifndef ECOM_DYNPRICE_H
#define ECOM_DYNPRICE_H

#include "ecom_req.h"

/* The bounds a product body sends: *_set 1 when the member is there (its
 * value a decimal string, or NULL for null), -1 when it is invalid. */
typedef struct {
    const char *floor, *ceiling;
    int floor_set, ceiling_set;
} ecom_price_bounds;

/* Reads price_floor and price_ceiling of q->body into b and checks them,
 * with the body's price (NULL: not sent), against product id as it is (0:
 * a product being created): both bounds or neither, floor <= price <=
 * ceiling. Field errors go to errs. Returns 0, or the status of the error
 * answer set when the database failed. */
int ecom_dynprice_check(ecom_req *q, long long id, const char *price,
                        ecom_price_bounds *b, json_t *errs);
/* Adds price_floor and price_ceiling (null when unbounded) of product id
 * to obj, for staff. Returns 0 or the status of the error answer set. */
int ecom_dynprice_bounds_json(ecom_req *q, long long id, json_t *obj);
/* EcomDynamicPricing On|Off (main server only). */
const char *ecom_dynprice_set_flag(cmd_parms *cmd, void *cfg, int on);
/* One run of the job for s's database (mod_watchdog's thread, no
 * request), skipped when another run finished less than interval / 2
 * seconds ago; invalidates the catalog pages of the cache when it changed
 * a price. Logs what it did. APR_EGENERAL when its statement failed
 * (logged), APR_SUCCESS otherwise (a skipped run included). */
apr_status_t ecom_dynprice_run(server_rec *s, apr_pool_t *p, int interval);

#endif /* ECOM_DYNPRICE_H */
