/*
 * ecom_throttle.h: request budgets, failed-login locks and the bound on
 * password hashings in flight (ecom_throttle.c), for the router and the
 * module's hooks.
 */
#ifndef ECOM_THROTTLE_H
#define ECOM_THROTTLE_H

#include "ecom_req.h"

/* Registers the throttle's mutex; OK or 500 after logging. */
int ecom_throttle_pre_config(apr_pool_t *pconf, apr_pool_t *plog);
/* After the cache's post_config: picks the store (see ecom_throttle.c)
 * and sets sc->throttle of every server. OK or 500 after logging. */
int ecom_throttle_post_config(apr_pool_t *pconf, apr_pool_t *ptemp,
                              server_rec *s);
/* Attaches the mutex; makes big allocations (argon2's 19 MiB) go back to
 * the system when freed (M_MMAP_THRESHOLD). */
void ecom_throttle_child_init(apr_pool_t *p, server_rec *s);

/* Before authentication: the per-address, per-token and (on the password
 * endpoints) per-address auth budgets. 0, or the 429 set. Sets the
 * RateLimit-Policy and RateLimit headers of the budgets that apply. */
int ecom_throttle_request(ecom_req *q);
/* After authentication and the body, just before the handler of a
 * password endpoint: the account's lock and a password-hashing slot.
 * 0, or the 429 / 503 set. */
int ecom_throttle_enter(ecom_req *q);
/* After the handler (whatever ecom_throttle_enter returned): records a
 * failed or successful login and gives the slot back. */
void ecom_throttle_leave(ecom_req *q);

/* The settings, the store and the counters (refusals since httpd started,
 * summed over the children), for the operator's view; pool-owned. */
json_t *ecom_throttle_report(ecom_req *q);

/* The same counters as numbers (issue 11, ecom_metrics.c). */
struct ecom_throttle_counters {
    apr_uint64_t rate_limited, login_locked, busy, failed_logins;
};
void ecom_throttle_counters(const server_rec *s,
                            struct ecom_throttle_counters *out);

#endif /* ECOM_THROTTLE_H */
