/*
 * ecom_dynprice.c: demand-based prices within staff-set bounds (issue 10):
 * the bounds of the staff product writes (price_floor, price_ceiling), the
 * mod_watchdog job that moves prices (EcomDynamicPricing,
 * EcomDynamicPricingInterval), and the staff price history,
 * GET /products/{id}/price-history/.
 *
 * The pricing itself is SQL (sql/024_dynamic_pricing.sql): one run of
 * ecom_reprice() is one transaction that decides, locks in id order,
 * moves and records every price; it takes a transaction advisory lock, so
 * two processes or hosts never run it at once (the second returns 'busy'),
 * and skips a run when another finished less than half an interval ago,
 * so several hosts with the same interval make one run per interval. This
 * file only calls it from the watchdog and, when a run changed a price,
 * invalidates the catalog section of the response cache of that database
 * (ecom_cache_invalidate_db: the job has no request), so cached list pages
 * show the new prices at once. The product detail is never cached (its
 * ETag follows its bytes).
 *
 * Bounds are both or neither, and floor <= price <= ceiling always: the
 * handler checks what the body asks for against the row as it is
 * (ecom_dynprice_check) and answers 422 per field; the schema's CHECK
 * constraint holds it whatever writes the row.
 */
#include "ecom_dynprice.h"
#include "ecom_bounds.h"
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_cache.h"
#include "ecom_page.h"
#include "ecom_util.h"

#define HISTORY_COLS \
    "h.id, h.product_id, h.old_price, h.new_price, h.currency, h.actor, " \
    "h.actor_id, h.reason, h.inputs::text, h.run_id, " ECOM_TS("h.created_at")

enum { H_ID, H_PRODUCT_ID, H_OLD, H_NEW, H_CURRENCY, H_ACTOR, H_ACTOR_ID,
       H_REASON, H_INPUTS, H_RUN_ID, H_CREATED_AT, H_NCOLS };
/* ecom_dynprice_bounds */
enum { B_PRICE, B_FLOOR, B_CEILING };
/* ecom_dynprice_run */
enum { J_STATUS, J_RUN, J_CONSIDERED, J_RAISED, J_LOWERED, J_SYS, J_OID,
       J_NAME, J_NCOLS };

static const ecom_stmt dynprice_sql[] = {
    /* a page of one product's history, newest first */
    { "ecom_price_history",
      "SELECT " HISTORY_COLS " FROM price_history h "
      "WHERE h.product_id = %s::bigint "
      "AND h.id < COALESCE(%s::bigint, 9223372036854775807) "
      "ORDER BY h.id DESC LIMIT %s::int", ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_price_product",
      "SELECT id FROM products WHERE id = %s::bigint", ECOM_STMT_READ },
    /* the row a staff write's bounds are checked against */
    { "ecom_dynprice_bounds",
      "SELECT price, price_floor, price_ceiling FROM products "
      "WHERE id = %s::bigint", ECOM_STMT_READ },
    /* one run (the watchdog's), and what identifies the database in the
     * cache's keys, for the invalidation after it */
    { "ecom_dynprice_run",
      "SELECT r.status, r.run_id, r.considered, r.raised, r.lowered, "
      ECOM_CACHE_DB_COLS " FROM ecom_reprice('watchdog', "
      "make_interval(secs => %s::int), false) r, " ECOM_CACHE_DB_FROM, 0 },
    { NULL, NULL, 0 }
};

static const ecom_col history_cols[] = {
    [H_ID] = { "id", EC_INT }, [H_PRODUCT_ID] = { "product_id", EC_INT },
    [H_OLD] = { "old_price", EC_INT }, [H_NEW] = { "new_price", EC_INT },
    [H_CURRENCY] = { "currency", EC_STR }, [H_ACTOR] = { "actor", EC_STR },
    [H_ACTOR_ID] = { "actor_id", EC_INT_NULL },
    [H_REASON] = { "reason", EC_STR }, [H_INPUTS] = { "inputs", EC_JSON },
    [H_RUN_ID] = { "run_id", EC_INT_NULL },
    [H_CREATED_AT] = { "created_at", EC_TIME }, [H_NCOLS] = { NULL, 0 }
};

/* ---- the bounds of staff product writes ---- */

#define MONEY_MAX 1000000000000LL   /* as the product's price */

/* One bound of the body: set (*set = 1) to a number, or to null. */
static void read_bound(ecom_req *q, const char *name, const char **out,
                       int *set, json_t *errs)
{
    json_t *v = json_object_get(q->body, name);
    long long n;

    if (!v) {
        return;
    }
    *set = 1;
    if (json_is_null(v)) {
        *out = NULL;
    }
    else if (ecom_get_int(q->body, name, 0, MONEY_MAX, &n, errs) == 1) {
        *out = ECOM_LL(q, n);
    }
    else {
        *set = -1;      /* invalid: the error is in errs */
    }
}

int ecom_dynprice_check(ecom_req *q, long long id, const char *price,
                        ecom_price_bounds *b, json_t *errs)
{
    const char *cur_price = NULL, *cur_floor = NULL, *cur_ceiling = NULL;
    const char *floor_s, *ceiling_s, *price_s, *field = NULL;
    long long fl, ce, pr;

    read_bound(q, "price_floor", &b->floor, &b->floor_set, errs);
    read_bound(q, "price_ceiling", &b->ceiling, &b->ceiling_set, errs);
    if (b->floor_set < 0 || b->ceiling_set < 0) {
        return 0;
    }
    if (id) {
        const char *args[1] = { ECOM_LL(q, id) };
        apr_dbd_row_t *row;
        ecom_err e = ecom_db_one(q, "ecom_dynprice_bounds", &row, 1, args);

        if (e == ECOM_E_NOT_FOUND) {
            return 0;   /* the update itself answers 404 */
        }
        if (e) {
            return ecom_fail(q, e);
        }
        cur_price = ecom_db_get(q, row, B_PRICE);
        cur_floor = ecom_db_get(q, row, B_FLOOR);
        cur_ceiling = ecom_db_get(q, row, B_CEILING);
    }
    /* the values the row would have after the write */
    floor_s = b->floor_set ? b->floor : cur_floor;
    ceiling_s = b->ceiling_set ? b->ceiling : cur_ceiling;
    price_s = price ? price : cur_price;
    fl = floor_s ? apr_atoi64(floor_s) : 0;
    ce = ceiling_s ? apr_atoi64(ceiling_s) : 0;
    pr = price_s ? apr_atoi64(price_s) : 0;
    switch (ecom_bounds_check(floor_s ? &fl : NULL, ceiling_s ? &ce : NULL,
                              price_s ? &pr : NULL,
                              price && !b->floor_set && !b->ceiling_set,
                              &field)) {
    case ECOM_BOUNDS_ONE_MISSING:
        ecom_field_error(errs, field, apr_pstrcat(q->r->pool, "is required "
                         "with ", floor_s ? "price_floor" : "price_ceiling",
                         " (a product has both bounds or neither)", NULL));
        break;
    case ECOM_BOUNDS_CROSSED:
        ecom_field_error(errs, field, "must not be above price_ceiling");
        break;
    case ECOM_BOUNDS_OUTSIDE:
        ecom_field_error(errs, field, apr_psprintf(q->r->pool,
                         "price %" APR_INT64_T_FMT " must lie within "
                         "price_floor %" APR_INT64_T_FMT " and price_ceiling "
                         "%" APR_INT64_T_FMT, (apr_int64_t)pr,
                         (apr_int64_t)fl, (apr_int64_t)ce));
        break;
    case ECOM_BOUNDS_OK:
        break;
    }
    return 0;
}

int ecom_dynprice_bounds_json(ecom_req *q, long long id, json_t *obj)
{
    const char *args[1] = { ECOM_LL(q, id) };
    const char *fl, *ce;
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, "ecom_dynprice_bounds", &row, 1, args);

    if (e == ECOM_E_NOT_FOUND) {
        return 0;
    }
    if (e) {
        return ecom_fail(q, e);
    }
    fl = ecom_db_get(q, row, B_FLOOR);
    ce = ecom_db_get(q, row, B_CEILING);
    json_object_set_new(obj, "price_floor", fl
                        ? json_integer((json_int_t)apr_atoi64(fl))
                        : json_null());
    json_object_set_new(obj, "price_ceiling", ce
                        ? json_integer((json_int_t)apr_atoi64(ce))
                        : json_null());
    return 0;
}

/* ---- GET /products/{id}/price-history/ ---- */

static int ecom_price_history(ecom_req *q)
{
    const char *args[3];
    long long k1 = 0, k2 = 0;
    apr_dbd_results_t *res;
    int limit, rv;
    ecom_err e;

    if ((rv = ecom_page_args(q, &limit))
        || (rv = ecom_page_cursor(q, 'h', &k1, &k2))) {
        return rv;
    }
    args[0] = ECOM_LL(q, q->id[0]);
    args[1] = apr_table_get(q->args, "cursor") ? ECOM_LL(q, k1) : NULL;
    args[2] = apr_itoa(q->r->pool, limit + 1);
    if ((e = ecom_db_select(q, "ecom_price_history", &res, 3, args))) {
        return ecom_fail(q, e);
    }
    return ecom_page_of_parent(q, res, limit, history_cols, 'h', H_ID,
                               "ecom_price_product", 1, args, "product");
}

/* ---- the job ---- */

const char *ecom_dynprice_set_flag(cmd_parms *cmd, void *cfg, int on)
{
    ecom_srv_conf *sc = ap_get_module_config(cmd->server->module_config,
                                             &ecom_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err) {
        return err;
    }
    sc->dynprice = on;
    return NULL;
}

apr_status_t ecom_dynprice_run(server_rec *s, apr_pool_t *p, int interval)
{
    /* skip when another run finished less than half an interval ago: the
     * next tick of the same host comes one interval after the last run
     * started, a little less after it finished */
    const char *args[1] = { apr_itoa(p, interval / 2) };
    const char *v[J_NCOLS] = { NULL };
    long long raised, lowered;

    if (ecom_db_job_row(s, p, "ecom_dynprice_run", 1, args, J_NCOLS, v)
        != APR_SUCCESS) {
        return APR_EGENERAL;
    }
    if (!v[J_STATUS] || strcmp(v[J_STATUS], "done") != 0) {
        return APR_SUCCESS;
    }
    raised = v[J_RAISED] ? apr_atoi64(v[J_RAISED]) : 0;
    lowered = v[J_LOWERED] ? apr_atoi64(v[J_LOWERED]) : 0;
    if (raised + lowered > 0) {
        ecom_cache_invalidate_db(s, p, v[J_SYS], v[J_OID], v[J_NAME],
                                 ECOM_CACHE_CATALOG);
    }
    ap_log_error(APLOG_MARK, raised + lowered > 0 ? APLOG_INFO : APLOG_DEBUG,
                 0, s, "ECOM2401: dynamic pricing run %s: %s bounded "
                 "products, %" APR_INT64_T_FMT " prices raised, %"
                 APR_INT64_T_FMT " lowered", v[J_RUN] ? v[J_RUN] : "?",
                 v[J_CONSIDERED] ? v[J_CONSIDERED] : "0",
                 (apr_int64_t)raised, (apr_int64_t)lowered);
    return APR_SUCCESS;
}

static const ecom_route dynprice_routes[] = {
    { M_GET, "products/{id}/price-history", ecom_price_history,
      ECOM_AUTH_STAFF, 0, 0, "products.price_history" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_dynprice_resource = {
    "dynprice", dynprice_sql, dynprice_routes, NULL
};
