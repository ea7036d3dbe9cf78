/*
 * mod_ecom.c: the module record and its hooks.
 *
 * The handler hands "ecom" (the API) and the operator handler names of
 * the registered resources ("ecom-status") to the router, and declines
 * the rest. post_config registers every SQL statement with mod_dbd, once
 * per distinct mod_dbd configuration, so each pooled connection prepares
 * them when it opens; refuses a DBDMax below ThreadsPerChild (a thread
 * would wait for ever for a connection: mod_dbd's pool has no timeout);
 * and registers the background jobs with mod_watchdog, which runs them
 * in one child at a time: the housekeeping (expired tokens and idempotency
 * records, every EcomPurgeInterval seconds) and the payment timeout
 * (pending orders unpaid for EcomPaymentTimeout seconds are cancelled and
 * restocked, checked every min(60, timeout / 2) seconds). The jobs run on
 * two watchdogs, each its own thread: the short ones whose lateness shows
 * (purge, payment timeout, sale edges) on "mod_ecom", the long ones
 * (recommendations refresh, dynamic pricing, search statistics: up to a
 * minute at a million products) on "mod_ecom-long", so that a long run
 * never holds an unpaid order's cancellation back. With several
 * hosts on one database, the purge, the payment timeout and the sale
 * edges claim their period first (ecom_cluster.c), so each runs once per
 * interval across the cluster. This file owns no request logic.
 */
#define ECOM_MODULE_C
#include "ecom_resource.h"
#include "ecom_cache.h"
#include "ecom_throttle.h"
#include "ecom_payment.h"
#include "ecom_util.h"
#include "ecom_dynprice.h"
#include "ecom_recs.h"
#include "ecom_pricing.h"
#include "ecom_metrics.h"
#include "ecom_cluster.h"
#include "ecom_products.h"

#include "http_request.h"
#include "ap_mpm.h"
#include "http_core.h"
#include "mod_watchdog.h"

/* the watchdogs (mod_watchdog instances, a thread each): see the head */
#define ECOM_WATCHDOG "mod_ecom"
#define ECOM_WATCHDOG_LONG "mod_ecom-long"

/* The servers with a mod_dbd configuration of their own (the first server
 * of each), for the background jobs, and each one's payment timeout: the
 * shortest non-zero EcomPaymentTimeout of the servers sharing that
 * database configuration (0: none of them expires orders). */
typedef struct {
    apr_array_header_t *servers;   /* server_rec * */
    apr_array_header_t *timeouts;  /* int, one per server */
    int recs_interval;             /* EcomRecsRefreshInterval (issue 10) */
    /* issue 11: the periods the purge, payment timeout and sale edges
     * claim across the hosts of a database (ecom_cluster.c) */
    int purge_interval, expire_every, sale_edge_interval;
} purge_ctx;

/* Counts a turn of job that ran (ecom_metrics_job, "ecom_job_runs_total"),
 * by what it returned. */
static void ran(const server_rec *s, ecom_job job, apr_status_t rv)
{
    ecom_metrics_job(s, job, rv == APR_SUCCESS ? ECOM_JOB_OK
                                               : ECOM_JOB_FAILED);
}

/* ecom_job_claim, with the turns it refuses counted: skipped when another
 * process has the period, failed when the claim could not be made. */
static int claimed(server_rec *s, apr_pool_t *p, ecom_job job,
                   const char *name, int interval)
{
    int c = ecom_job_claim(s, p, name, interval);

    if (c <= 0) {
        ecom_metrics_job(s, job, c < 0 ? ECOM_JOB_FAILED : ECOM_JOB_SKIPPED);
    }
    return c > 0;
}

static apr_status_t purge_callback(int state, void *data, apr_pool_t *pool)
{
    purge_ctx *ctx = data;

    if (state == AP_WATCHDOG_STATE_RUNNING) {
        for (int i = 0; i < ctx->servers->nelts; i++) {
            server_rec *s = APR_ARRAY_IDX(ctx->servers, i, server_rec *);
            if (claimed(s, pool, ECOM_JOB_PURGE, "purge",
                        ctx->purge_interval)) {
                ran(s, ECOM_JOB_PURGE, ecom_db_purge(s, pool));
            }
        }
    }
    return APR_SUCCESS;
}

static apr_status_t expire_callback(int state, void *data, apr_pool_t *pool)
{
    purge_ctx *ctx = data;

    if (state == AP_WATCHDOG_STATE_RUNNING) {
        for (int i = 0; i < ctx->servers->nelts; i++) {
            server_rec *s = APR_ARRAY_IDX(ctx->servers, i, server_rec *);
            int timeout = APR_ARRAY_IDX(ctx->timeouts, i, int);
            /* per timeout: servers on one database with other timeouts
             * each have their run */
            if (timeout > 0
                && claimed(s, pool, ECOM_JOB_PAYMENT_TIMEOUT,
                           apr_psprintf(pool, "payment timeout %d", timeout),
                           ctx->expire_every)) {
                ran(s, ECOM_JOB_PAYMENT_TIMEOUT,
                    ecom_db_expire_orders(s, pool, timeout));
            }
        }
    }
    return APR_SUCCESS;
}

/* issue 10: demand-based prices (ecom_dynprice.c), every
 * EcomDynamicPricingInterval seconds of the main server (the first) */
static apr_status_t dynprice_callback(int state, void *data, apr_pool_t *pool)
{
    purge_ctx *ctx = data;
    const server_rec *main_s = APR_ARRAY_IDX(ctx->servers, 0, server_rec *);
    const ecom_srv_conf *sc = ap_get_module_config(main_s->module_config,
                                                   &ecom_module);

    if (state == AP_WATCHDOG_STATE_RUNNING) {
        for (int i = 0; i < ctx->servers->nelts; i++) {
            server_rec *s = APR_ARRAY_IDX(ctx->servers, i, server_rec *);
            ran(s, ECOM_JOB_DYNAMIC_PRICING,
                ecom_dynprice_run(s, pool, sc->dynprice_interval));
        }
    }
    return APR_SUCCESS;
}

/* issue 10: the recommendations' refresh (ecom_recs.c), every
 * EcomRecsRefreshInterval seconds; a failure is logged there and the
 * callback keeps its turn (mod_watchdog stops calling a callback that
 * fails) */
static apr_status_t recs_callback(int state, void *data, apr_pool_t *pool)
{
    purge_ctx *ctx = data;

    if (state == AP_WATCHDOG_STATE_RUNNING) {
        for (int i = 0; i < ctx->servers->nelts; i++) {
            server_rec *s = APR_ARRAY_IDX(ctx->servers, i, server_rec *);
            ran(s, ECOM_JOB_RECS_REFRESH,
                ecom_recs_refresh_bg(s, pool, ctx->recs_interval));
        }
    }
    return APR_SUCCESS;
}

/* issue 10: the sales that start (ecom_pricing.c), every
 * EcomSaleEdgeInterval seconds */
static apr_status_t sale_edge_callback(int state, void *data, apr_pool_t *pool)
{
    purge_ctx *ctx = data;

    if (state == AP_WATCHDOG_STATE_RUNNING) {
        for (int i = 0; i < ctx->servers->nelts; i++) {
            server_rec *s = APR_ARRAY_IDX(ctx->servers, i, server_rec *);
            if (claimed(s, pool, ECOM_JOB_SALE_EDGES, "sale edges",
                        ctx->sale_edge_interval)) {
                ran(s, ECOM_JOB_SALE_EDGES, ecom_sale_edges_run(s, pool));
            }
        }
    }
    return APR_SUCCESS;
}

/* issue 8: the search terms' document frequencies (sql/034), from which
 * a q page's reading is chosen, counted once an hour by one node (the
 * claim, asked every ECOM_SEARCH_STATS_TICK seconds: soon after a start
 * when the last count is older); no directive: the count takes about 3 s
 * at a million products, and staleness costs speed, never a wrong page */
static apr_status_t search_stats_callback(int state, void *data,
                                          apr_pool_t *pool)
{
    purge_ctx *ctx = data;

    if (state == AP_WATCHDOG_STATE_RUNNING) {
        for (int i = 0; i < ctx->servers->nelts; i++) {
            server_rec *s = APR_ARRAY_IDX(ctx->servers, i, server_rec *);
            if (claimed(s, pool, ECOM_JOB_SEARCH_STATS, "search stats",
                        ECOM_SEARCH_STATS_INTERVAL)) {
                ran(s, ECOM_JOB_SEARCH_STATS, ecom_search_stats_run(s, pool));
            }
        }
    }
    return APR_SUCCESS;
}

/* How often the payment timeout looks for overdue orders: every
 * min(60, timeout / 2) seconds (at least 1) of the shortest timeout, so an
 * order is cancelled at most that long after it became overdue. */
static int expire_interval(const apr_array_header_t *timeouts)
{
    int shortest = 0;

    for (int i = 0; i < timeouts->nelts; i++) {
        int t = APR_ARRAY_IDX(timeouts, i, int);
        if (t > 0 && (shortest == 0 || t < shortest)) {
            shortest = t;
        }
    }
    if (shortest == 0) {
        return 0;
    }
    return shortest / 2 > 60 ? 60 : shortest / 2 < 1 ? 1 : shortest / 2;
}

/* The watchdog (a singleton in the children: one child at a time runs
 * it) named name, created on first use into *wd. */
static apr_status_t watchdog(ap_watchdog_t **wd, const char *name,
                             apr_pool_t *pconf, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get_instance
        = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    apr_status_t rv;

    if (*wd) {
        return APR_SUCCESS;
    }
    if ((rv = get_instance(wd, name, 0, 1, pconf)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "ECOM0034: could not create the watchdog %s", name);
    }
    return rv;
}

static int start_jobs(apr_pool_t *pconf, server_rec *s, purge_ctx *ctx)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_cb;
    const ecom_srv_conf *sc;
    int interval, expire_every;
    /* the short jobs' watchdog and the long ones' (see the head) */
    ap_watchdog_t *wd[2] = { NULL, NULL };
    static const char *const wd_name[2] = { ECOM_WATCHDOG,
                                            ECOM_WATCHDOG_LONG };
    apr_status_t rv;

    if (!s) {
        return OK;
    }
    sc = ap_get_module_config(s->module_config, &ecom_module);
    interval = sc->purge_interval;
    expire_every = expire_interval(ctx->timeouts);
    ctx->recs_interval = sc->recs_refresh_interval;
    ctx->purge_interval = interval;
    ctx->expire_every = expire_every;
    ctx->sale_edge_interval = sc->sale_edge_interval;
    /* the module's periodic jobs: seconds between runs (0: off), the
     * watchdog (0 short, 1 long), the callback, and the log tag and name
     * of a failed registration */
    const struct {
        int every, lane;
        ap_watchdog_callback_fn_t *callback;
        const char *tag, *what;
    } jobs[] = {
        { interval, 0, purge_callback, "ECOM0035", "purge" },
        { expire_every, 0, expire_callback, "ECOM0037", "payment timeout" },
        { sc->sale_edge_interval, 0, sale_edge_callback, "ECOM2502",
          "sales window edges" },
        { sc->dynprice ? sc->dynprice_interval : 0, 1, dynprice_callback,
          "ECOM2402", "dynamic pricing" },
        { ctx->recs_interval, 1, recs_callback, "ECOM1105",
          "recommendations refresh" },
        { ECOM_SEARCH_STATS_TICK, 1, search_stats_callback, "ECOM3402",
          "search statistics" },
    };
    int any = 0;

    for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
        any |= jobs[i].every > 0;
    }
    if (!any) {
        return OK;
    }
    register_cb = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance) || !register_cb) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "ECOM0033: mod_watchdog is not loaded: expired tokens and "
                     "idempotency records are not purged (EcomPurgeInterval), "
                     "unpaid orders are not cancelled (EcomPaymentTimeout), "
                     "demand-based prices do not move (EcomDynamicPricing), "
                     "recommendations are not refreshed "
                     "(EcomRecsRefreshInterval), sales that start are not "
                     "shown on the list (EcomSaleEdgeInterval), the search "
                     "terms are not counted again (sql/034)");
        return OK;
    }
    for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
        int lane = jobs[i].lane;

        if (jobs[i].every == 0) {
            continue;
        }
        if (watchdog(&wd[lane], wd_name[lane], pconf, s) != APR_SUCCESS) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        rv = register_cb(wd[lane], apr_time_from_sec(jobs[i].every), ctx,
                         jobs[i].callback);
        if (rv != APR_SUCCESS && rv != APR_EEXIST) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "%s: could not "
                         "register the mod_ecom %s callback", jobs[i].tag,
                         jobs[i].what);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

/* s's mod_dbd server config (NULL without mod_dbd). */
static void *dbd_config(module *dbd, const server_rec *s)
{
    return dbd ? ap_get_module_config(s->module_config, dbd) : NULL;
}

static int ecom_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *s)
{
    module *dbd = ap_find_linked_module("mod_dbd.c");
    purge_ctx *jobs = apr_pcalloc(pconf, sizeof(*jobs));
    apr_array_header_t *servers = apr_array_make(pconf, 4,
                                                 sizeof(server_rec *));
    server_rec *sp;

    if (ecom_cache_post_config(pconf, ptemp, s) != OK
        || ecom_throttle_post_config(pconf, ptemp, s) != OK
        || ecom_metrics_post_config(pconf, s) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare)
        || !APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "ECOM0001: mod_ecom needs mod_dbd: LoadModule dbd_module first");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    jobs->servers = servers;
    jobs->timeouts = apr_array_make(pconf, 4, sizeof(int));
    for (sp = s; sp; sp = sp->next) {
        /* virtual hosts without DBD directives share the main server's
         * mod_dbd config: register once per distinct config (servers
         * keeps the first server of each) */
        void *cfg = dbd_config(dbd, sp);
        const ecom_srv_conf *sc = ap_get_module_config(sp->module_config,
                                                       &ecom_module);
        int dup = -1;
        for (int i = 0; i < servers->nelts && dup < 0; i++) {
            if (dbd_config(dbd, APR_ARRAY_IDX(servers, i, server_rec *))
                == cfg) {
                dup = i;
            }
        }
        if (dup >= 0) {
            int *t = &APR_ARRAY_IDX(jobs->timeouts, dup, int);
            if (sc->payment_timeout > 0
                && (*t == 0 || sc->payment_timeout < *t)) {
                *t = sc->payment_timeout;
            }
            continue;
        }
        APR_ARRAY_PUSH(servers, server_rec *) = sp;
        APR_ARRAY_PUSH(jobs->timeouts, int) = sc->payment_timeout;
        ecom_db_register(sp);
    }
    /* the warnings of ecom_config.c's check (its refusals stopped
     * ecom_check_config already). DBDMax has no lower bound beyond
     * mod_dbd's: a request holds a connection only while its statements
     * run (ecom_db.c), so threads waiting for one wait for those. */
    if (ecom_config_check(ptemp, s, 1) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* the watchdog only in the real start, not the config-test pass */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    return start_jobs(pconf, s, jobs);
}

/* Contradictions between directives refuse the configuration here, after
 * the virtual hosts are merged and before "Syntax OK", so `apachectl
 * configtest` and a graceful restart see them, not only a full start. */
static int ecom_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    return ecom_config_check(ptemp, s, 0);
}

static int ecom_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp)
{
    if (ecom_throttle_pre_config(pconf, plog) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ecom_metrics_pre_config(pconf);
    return ecom_cache_pre_config(pconf, plog);
}

static void ecom_register_hooks(apr_pool_t *p)
{
    /* before mod_dbd's post_config, which turns the registered statements
     * into per-connection-group prepare lists */
    static const char *const succ[] = { "mod_dbd.c", NULL };

    ap_hook_post_config(ecom_post_config, NULL, succ, APR_HOOK_MIDDLE);
    ap_hook_pre_config(ecom_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(ecom_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ecom_db_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ecom_cache_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ecom_throttle_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(ecom_dispatch, NULL, NULL, APR_HOOK_MIDDLE);
    /* the built-in payment provider; other modules register theirs the
     * same way (ecom_payment.h) */
    ecom_pay_sandbox_register(p);
}

/* ALWAYS_MERGE: every virtual host gets a server config of its own, even
 * one without Ecom directives, because each holds state of its own (its
 * part of the cache keys, see ecom_cache.c). */
AP_DECLARE_MODULE(ecom) = {
    STANDARD20_MODULE_STUFF,
    ecom_create_dir_conf,
    ecom_merge_dir_conf,
    ecom_create_srv_conf,
    ecom_merge_srv_conf,
    ecom_cmds,
    ecom_register_hooks,
    AP_MODULE_FLAG_ALWAYS_MERGE
};
