/*
 * ecom_metrics.h: the module's counters for operators (ecom_metrics.c):
 * Prometheus text under "SetHandler ecom-metrics", a section in mod_status,
 * and the request's id, route and user for the logs (Ecom-Request-Id, the
 * request notes ecom-route and ecom-user). The router calls
 * ecom_metrics_start() and ecom_metrics_end() around every request it
 * serves; the data layer and the handlers report what they did through the
 * other calls, each one atomic add on shared memory.
 */
#ifndef ECOM_METRICS_H
#define ECOM_METRICS_H

#include "ecom_req.h"
#include "ecom_err.h"

/* Business events a handler notes when its transaction commits; counted
 * when the request ends without a 5xx (ecom_metrics_end), so an
 * Idempotency-Key transaction that fails after the handler counts
 * nothing. */
#define ECOM_EV_ORDER_CREATED      (1u << 0)
#define ECOM_EV_PAYMENT_SUCCEEDED  (1u << 1)
#define ECOM_EV_PAYMENT_PROCESSING (1u << 2)
#define ECOM_EV_PAYMENT_FAILED     (1u << 3)
#define ECOM_EV_REFUND             (1u << 4)

/* Registers the mod_status hook. */
void ecom_metrics_pre_config(apr_pool_t *pconf);
/* Makes (or, after a graceful restart with the same routes, keeps) the
 * shared segment and sets sc->metrics of every server; OK, or 500 after
 * logging. */
int ecom_metrics_post_config(apr_pool_t *pconf, server_rec *s);

/* The router's two calls: before routing (Ecom-Request-Id) and after the
 * answer is written (notes, request counters and latency, events). */
void ecom_metrics_start(ecom_req *q);
void ecom_metrics_end(ecom_req *q);

/* The data layer's: time spent waiting for a pooled connection (ok: one
 * was had), and a failed statement by kind. */
void ecom_metrics_db_wait(ecom_req *q, apr_interval_time_t waited, int ok);
void ecom_metrics_db_error(ecom_req *q, ecom_err kind);
/* A handler's: events (ECOM_EV_*) its committed transaction made. */
void ecom_metrics_event(ecom_req *q, unsigned events);
/* The throttle's: a password hashing starts (+1) or ends (-1). */
void ecom_metrics_argon2(ecom_req *q, int delta);

/* The background jobs (mod_ecom.c's mod_watchdog callbacks) and what one
 * turn of a job did, for ecom_metrics_job(): it ran (or found nothing due),
 * it failed (no database connection, a failed statement: logged where it
 * happened), or another process or host had this period (ecom_job_claim). */
typedef enum {
    ECOM_JOB_PURGE, ECOM_JOB_PAYMENT_TIMEOUT, ECOM_JOB_DYNAMIC_PRICING,
    ECOM_JOB_RECS_REFRESH, ECOM_JOB_SALE_EDGES, ECOM_JOB_SEARCH_STATS,
    ECOM_NJOBS
} ecom_job;
typedef enum { ECOM_JOB_OK, ECOM_JOB_FAILED, ECOM_JOB_SKIPPED,
               ECOM_NJOB_OUTCOMES } ecom_job_outcome;
/* Counts one turn of job, with no request (the watchdog's thread): s is the
 * server the job ran for (any server has the segment). */
void ecom_metrics_job(const server_rec *s, ecom_job job,
                      ecom_job_outcome outcome);

#endif /* ECOM_METRICS_H */
