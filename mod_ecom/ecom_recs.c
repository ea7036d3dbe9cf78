/*
 * ecom_recs.c: recommendations (issue 10): "bought together" for a
 * product, personal picks for a user, basket completion for a cart, and
 * the background refresh that mod_watchdog runs (mod_ecom.c).
 *
 * Nothing is computed in a request: each endpoint is ONE prepared
 * statement that calls a read function of sql/021_recommendations.sql
 * (ecom_recs_product, _user, _basket; migration 022 may replace them)
 * over the precomputed tables, joined to the product summary the catalog
 * list shows (ecom_products.h), in the function's order. The read
 * functions exclude the product(s) asked about, inactive products and
 * products out of stock, and fill up to the limit from what is popular.
 * Answers: {"items": [summary + "score" + "strategy"], "strategy"}, the
 * answer's strategy being its items' one when they share it, "mixed"
 * otherwise, "none" for no item.
 *
 * The response cache (EcomCache, ecom_cache.c) keeps the answers in its
 * catalog section, so every write that changes what a product list shows
 * (a product's price, stock reaching 0, active, rating; a sale's edge)
 * makes them unreachable as it does list pages. What only the
 * recommendation tables change (a refresh, which ecom-admin may run outside
 * httpd) and what a cart or a user's orders change is read first, by one
 * small statement (ecom_recs_*_gen: the last refresh run's id, the user's
 * last order, the cart's products), and made part of the key: an answer is
 * never served after the refresh, order or cart change that makes it old.
 * A hit then costs that statement and the cache lookup instead of the
 * read function and ten product rows. The user and user-cart routes are
 * ECOM_AUTH_INLINE: their small statement also resolves the bearer token
 * (ECOM_CALLER_SQL, the rule of ecom_token_user), so a hit is ONE round
 * trip, and the caller is known (a 401 answered) before any key is made or
 * looked up: a token revoked after a cached answer never gets it. Without
 * a cache, the small statement is not run and the token is resolved the
 * usual way (ecom_authenticate), so every answer is the same with and
 * without a cache. A guest cart's Cart-Token is resolved the same way by
 * its small statement (the router leaves it: ecom_guest_authenticate's
 * deferred lookup).
 *
 * Who sees what: a product's recommendations are anyone's (an inactive
 * product is a 404 but to staff, as its detail); personal picks are the
 * caller's own, and staff and support may preview a customer's with
 * ?user_id= (403 for anyone else, 404 for an unknown user); a cart's are
 * the caller's cart, or the guest cart of its Cart-Token (ECOM_GUEST), so
 * one cart never shows through another's.
 *
 * The refresh (ecom_recs_refresh_bg): ecom_recs_refresh('watchdog',
 * interval) on a connection of the server's mod_dbd pool. The function
 * takes a transaction-level advisory lock (a second caller, on any
 * process or host, returns "already running" at once) and skips when the
 * last run finished less than the interval ago, so children, processes
 * and hosts never refresh at once nor more often than the interval. The
 * session's statement_timeout (DBDParams) is lifted for that one statement
 * and restored after. Log tags: ECOM11xx.
 */
#include "ecom_resource.h"
#include "ecom_auth.h"
#include "ecom_http.h"
#include "ecom_cache.h"
#include "ecom_cart.h"
#include "ecom_products.h"
#include "ecom_recs.h"
#include "ecom_util.h"

/* the columns before the product summary */
enum { C_TARGET, C_SCORE, C_STRATEGY, C_PRODUCT };

#define RECS_MAX 50
#define RECS_DEFAULT 10

/* a read function's rows, in its order, joined to the summary. Not WITH
 * ORDINALITY: PostgreSQL inlines a SQL function only without it (then the
 * function's query is planned with the statement, and its popular branch
 * is skipped by a one-time filter when the first source fills the limit:
 * 0.2 ms instead of 2.4 ms on the demo data); row_number() numbers the
 * rows in the order the function's ORDER BY gave them. */
#define RECS_JOIN(fn) \
    "LEFT JOIN LATERAL (SELECT f.product_id, f.score, f.strategy, " \
    "row_number() OVER () AS ord FROM " fn " f) r ON true " \
    "LEFT JOIN products p ON p.id = r.product_id " \
    "LEFT JOIN categories c ON c.id = p.category_id "

/* the last refresh run's id ("0" before the first), part of every key */
#define RECS_GEN "(SELECT COALESCE(max(id), 0) FROM rec_refresh_runs)"
/* the caller of a generation statement, by the token's hash: one row
 * whoever it names (ecom_auth.h) */
#define RECS_CALLER \
    "FROM (VALUES (1)) one LEFT JOIN (" ECOM_CALLER_SQL ") a ON true"

static const ecom_stmt recs_sql[] = {
    /* what a cached answer depends on besides the catalog (see the head) */
    { "ecom_recs_product_gen", "SELECT " RECS_GEN, ECOM_STMT_READ },
    /* a user's and a user cart's: the caller first, resolved from the
     * bearer token's hash (the last parameter; NULL when the router
     * authenticated the caller: then columns of NULLs) by ecom_token_user's
     * rule, so a cache hit is this one round trip and the lookup; the
     * user asked about is the first parameter, or else the caller */
    { "ecom_recs_user_gen",
      "SELECT a.*, " RECS_GEN ", (SELECT COALESCE(max(o.id), 0) FROM orders o "
      "WHERE o.user_id = COALESCE(%s::bigint, a.caller_id)) " RECS_CALLER,
      ECOM_STMT_READ },
    { "ecom_recs_cart_gen",
      "SELECT a.*, " RECS_GEN ", ARRAY(SELECT ci.product_id FROM cart_items "
      "ci WHERE ci.user_id = COALESCE(%s::bigint, a.caller_id) "
      "ORDER BY ci.id)::text " RECS_CALLER, ECOM_STMT_READ },
    /* a guest cart's: the cart first, found by its Cart-Token's hash (the
     * last parameter; NULL when the router found it: the first is its id),
     * by ecom_guest_cart_find's rule */
    { "ecom_recs_guest_cart_gen",
      "SELECT g.id, " RECS_GEN ", ARRAY(SELECT gi.product_id FROM "
      "guest_cart_items gi WHERE gi.cart_id = COALESCE(%s::bigint, g.id) "
      "ORDER BY gi.id)::text FROM (VALUES (1)) one LEFT JOIN guest_carts g "
      "ON g.token_hash = %s AND g.expires_at > now()", ECOM_STMT_READ },
    /* the product asked about is the row's first column: no row at all
     * is a 404, one row with NULLs an empty list */
    { "ecom_recs_product",
      "SELECT t.id, r.score, r.strategy, " PRODUCT_COLS " FROM products t "
      RECS_JOIN("ecom_recs_product(t.id, %s::int)")
      "WHERE t.id = %s::bigint AND (t.active OR %s::boolean) ORDER BY r.ord",
      ECOM_STMT_READ },
    { "ecom_recs_user",
      "SELECT u.id, r.score, r.strategy, " PRODUCT_COLS " FROM users u "
      RECS_JOIN("ecom_recs_user(u.id, %s::int, %s::boolean)")
      "WHERE u.id = %s::bigint ORDER BY r.ord", ECOM_STMT_READ },
    /* the cart's products read first, in the order they were added (the
     * basket weighs the last ones most, sql/022), as a column of a
     * subquery kept apart by OFFSET 0: a function whose argument holds a
     * sub-select is never inlined (1.7 ms instead of 3.6 ms for a
     * 3-product cart) */
    { "ecom_recs_cart",
      "SELECT 0, r.score, r.strategy, " PRODUCT_COLS " FROM (SELECT "
      "ARRAY(SELECT ci.product_id FROM cart_items ci "
      "WHERE ci.user_id = %s::bigint ORDER BY ci.id) AS ids OFFSET 0) b "
      RECS_JOIN("ecom_recs_basket(b.ids, %s::int)") "ORDER BY r.ord",
      ECOM_STMT_READ },
    { "ecom_recs_guest_cart",
      "SELECT 0, r.score, r.strategy, " PRODUCT_COLS " FROM (SELECT "
      "ARRAY(SELECT gi.product_id FROM guest_cart_items gi "
      "WHERE gi.cart_id = %s::bigint ORDER BY gi.id) AS ids OFFSET 0) b "
      RECS_JOIN("ecom_recs_basket(b.ids, %s::int)") "ORDER BY r.ord",
      ECOM_STMT_READ },
    /* the basket as ecom_recs_cart_gen read it (a cache miss) */
    { "ecom_recs_basket",
      "SELECT 0, r.score, r.strategy, " PRODUCT_COLS " FROM (SELECT "
      "%s::bigint[] AS ids OFFSET 0) b "
      RECS_JOIN("ecom_recs_basket(b.ids, %s::int)") "ORDER BY r.ord",
      ECOM_STMT_READ },
    /* the background refresh (no request): its session's statement
     * timeout lifted around it */
    { "ecom_recs_refresh",
      "SELECT status, neighbours, user_picks, popular, similar_computed, "
      "seconds FROM ecom_recs_refresh('watchdog', "
      "make_interval(secs => %s::int / 1000.0), %s)", 0 },
    { NULL, NULL, 0 }
};

/* ?limit= of a recommendation list: 1..50, default 10. 0 or the status
 * of the 400 set. */
static int limit_arg(ecom_req *q, int *limit)
{
    const char *v = apr_table_get(q->args, "limit");
    long long n = RECS_DEFAULT;

    if (v && ecom_parse_ll(v, 1, RECS_MAX, &n) != 0) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "Query parameter limit must be an integer from "
                            "1 to 50.");
    }
    *limit = (int)n;
    return 0;
}

/* A real column's text as a number (0 when it is not one). */
static double score_of(const char *text)
{
    char *end = NULL;
    double v = text ? strtod(text, &end) : 0;

    return end && end != text ? v : 0;
}

/* Renders the rows of a recommendation statement; 404 (what) when it
 * returned none (the product or user does not exist). */
static int render(ecom_req *q, const char *label, int nargs,
                  const char **args, const char *what, const char *ckey)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    json_t *items = ecom_jarray(q);
    const char *strategy = NULL;
    int rows = 0, status;
    ecom_err e;

    if ((e = ecom_db_select(q, label, &res, nargs, args))) {
        return ecom_fail(q, e);
    }
    while (ecom_db_next(q, res, &row)) {
        const char *s = ecom_db_get(q, row, C_STRATEGY);
        json_t *item;

        rows++;
        if (!s || !ecom_db_get(q, row, C_PRODUCT)) {
            continue;   /* the LEFT JOIN's row of an empty list */
        }
        item = ecom_row_json(q, row, ecom_product_summary, C_PRODUCT);
        json_object_set_new(item, "score",
                            json_real(score_of(ecom_db_get(q, row, C_SCORE))));
        json_object_set_new(item, "strategy", json_string(s));
        json_array_append(items, item);
        strategy = !strategy ? apr_pstrdup(q->r->pool, s)
                   : strcmp(strategy, s) != 0 ? "mixed" : strategy;
    }
    if (rows == 0) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found", what);
    }
    status = ecom_json(q, HTTP_OK,
                       ecom_jown(q, json_pack("{s:O, s:s}", "items", items,
                                              "strategy",
                                              strategy ? strategy : "none")));
    ecom_cache_store(q, ckey);
    return status;
}

/* Whose a generation statement resolves first (its leading columns):
 * no one (a product's), the bearer token's caller (ECOM_CALLER_SQL: the
 * route is ECOM_AUTH_INLINE, q->token_hash), a guest's cart
 * (q->guest_pending, q->guest_hash). */
enum { GEN_ANYONE, GEN_USER, GEN_GUEST };

/* What a cached answer depends on besides the catalog (see the head),
 * read by the generation statement label into gen[0..n-1], after the
 * caller (by): the statement's parameters are whose (the user or guest
 * cart asked about; NULL: the one the token names) and the token's hash
 * (NULL when the router resolved it: then leading columns of NULLs), none
 * for GEN_ANYONE. Returns 0 with the caller known, or the status set (401,
 * 503). Without a cache the statement is not run: gen[0] is NULL (no key)
 * and a token left to the route is resolved the usual way, so that every
 * answer is the same with and without a cache. */
static int recs_gen(ecom_req *q, int by, const char *label, const char *whose,
                    int n, const char **gen)
{
    const char *args[2];
    apr_dbd_row_t *row;
    int i, first = by == GEN_USER ? ECOM_CALLER_NCOLS : by == GEN_GUEST;
    int rv = 0;
    ecom_err e;

    gen[0] = NULL;
    if (!q->sc->cache) {
        return q->token_hash ? ecom_authenticate(q, 1) : ecom_guest_find(q);
    }
    args[0] = whose;
    args[1] = by == GEN_USER ? q->token_hash
              : q->guest_pending ? q->guest_hash : NULL;
    if ((e = ecom_db_one(q, label, &row, by == GEN_ANYONE ? 0 : 2, args))) {
        return ecom_fail(q, e);
    }
    if (by == GEN_USER && q->token_hash) {
        rv = ecom_auth_caller(q, row, 0);
    }
    else if (by == GEN_GUEST && q->guest_pending) {
        rv = ecom_guest_resolved(q, ecom_db_get(q, row, 0));
    }
    if (rv) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        gen[i] = ecom_db_get(q, row, first + i);
    }
    return 0;
}

/* The cache key of this answer (NULL: not cached): kind, then what
 * recs_gen read (n values; none when gen[0] is NULL), then the handler's
 * arguments (nargs), each one field of the key (ecom_cache_key_of). */
static const char *recs_key(ecom_req *q, const char *kind, int n,
                            const char **gen, int nargs, const char **args)
{
    const char **vals;
    int i;

    if (!gen[0]) {
        return NULL;
    }
    vals = apr_palloc(q->r->pool, sizeof(*vals) * (apr_size_t)(n + nargs));
    for (i = 0; i < n; i++) {
        if (!gen[i]) {
            return NULL;
        }
        vals[i] = gen[i];
    }
    for (i = 0; i < nargs; i++) {
        vals[n + i] = args[i];
    }
    return ecom_cache_key_of(q, ECOM_CACHE_CATALOG, kind, n + nargs, vals);
}

/* GET /products/{id}/recommendations/ */
static int ecom_recs_product(ecom_req *q)
{
    const char *args[3], *gen[1], *ckey;
    int limit = RECS_DEFAULT, rv;

    if ((rv = limit_arg(q, &limit))
        || (rv = recs_gen(q, GEN_ANYONE, "ecom_recs_product_gen", NULL, 1,
                          gen))) {
        return rv;
    }
    args[0] = apr_itoa(q->r->pool, limit);
    args[1] = ECOM_LL(q, q->id[0]);
    args[2] = q->is_staff ? "true" : "false";
    ckey = recs_key(q, "recs-product", 1, gen, 3, args);
    if (ecom_cache_serve(q, ckey)) {
        return HTTP_OK;
    }
    return render(q, "ecom_recs_product", 3, args, "No such product.", ckey);
}

/* GET /recommendations/ (ECOM_AUTH_INLINE: the caller is known once
 * recs_gen returns; the query is checked before, and a bad one answered
 * after the token, by the router, as on every route) */
static int ecom_recs_user(ecom_req *q)
{
    const char *uid = apr_table_get(q->args, "user_id");
    const char *new_only = apr_table_get(q->args, "new_only");
    const char *args[3], *gen[2], *ckey;
    long long user = 0;
    int limit = RECS_DEFAULT, rv;

    if ((rv = limit_arg(q, &limit))) {
        return rv;
    }
    if (new_only && strcmp(new_only, "true") != 0
        && strcmp(new_only, "false") != 0) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "Query parameter new_only must be true or false.");
    }
    if (uid && ecom_parse_ll(uid, 1, APR_INT64_MAX, &user) != 0) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "Query parameter user_id must be a positive "
                            "integer.");
    }
    if ((rv = recs_gen(q, GEN_USER, "ecom_recs_user_gen",
                       uid ? ECOM_LL(q, user) : q->token_hash ? NULL
                       : ECOM_LL(q, q->user_id), 2, gen))) {
        return rv;
    }
    if (!uid) {
        user = q->user_id;
    }
    else if (!q->reads_all && user != q->user_id) {
        return ecom_problem(q, HTTP_FORBIDDEN, "forbidden",
                            "Only staff and support may see another "
                            "user's recommendations (user_id).");
    }
    args[0] = apr_itoa(q->r->pool, limit);
    args[1] = new_only && strcmp(new_only, "true") == 0 ? "true" : "false";
    args[2] = ECOM_LL(q, user);
    ckey = recs_key(q, "recs-user", 2, gen, 3, args);
    if (ecom_cache_serve(q, ckey)) {
        return HTTP_OK;
    }
    return render(q, "ecom_recs_user", 3, args, "No such user.", ckey);
}

/* GET /cart/recommendations/: the caller's cart, or its guest cart, each
 * resolved by recs_gen (ECOM_AUTH_INLINE) */
static int ecom_recs_cart(ecom_req *q)
{
    const char *args[2], *gen[2], *ckey;
    int limit = RECS_DEFAULT, rv;

    if ((rv = limit_arg(q, &limit))) {
        return rv;
    }
    if (q->guest) {
        rv = recs_gen(q, GEN_GUEST, "ecom_recs_guest_cart_gen",
                      q->guest_pending ? NULL
                      : ECOM_LL(q, q->guest_cart_id), 2, gen);
    }
    else {
        rv = recs_gen(q, GEN_USER, "ecom_recs_cart_gen", q->token_hash ? NULL
                      : ECOM_LL(q, q->user_id), 2, gen);
    }
    if (rv) {
        return rv;
    }
    args[0] = ECOM_LL(q, q->guest ? q->guest_cart_id : q->user_id);
    args[1] = apr_itoa(q->r->pool, limit);
    /* keyed by the basket's products (in the order they were added), not
     * by the cart: carts holding the same products share the answer */
    ckey = recs_key(q, "recs-basket", 2, gen, 1, &args[1]);
    if (!ckey) {
        return render(q, q->guest ? "ecom_recs_guest_cart" : "ecom_recs_cart",
                      2, args, "No such cart.", NULL);
    }
    if (ecom_cache_serve(q, ckey)) {
        return HTTP_OK;
    }
    args[0] = gen[1];
    return render(q, "ecom_recs_basket", 2, args, "No such cart.", ckey);
}

/* ---- the background refresh (mod_watchdog, no request) ---- */

apr_status_t ecom_recs_refresh_bg(server_rec *s, apr_pool_t *p, int interval)
{
    const char *args[2], *out[6];

    /* 9/10 of the interval, in milliseconds (ecom_recs.h) */
    args[0] = apr_psprintf(p, "%" APR_INT64_T_FMT,
                           (apr_int64_t)interval * 900);
    args[1] = apr_psprintf(p, "%s pid %" APR_PID_T_FMT,
                           s->server_hostname ? s->server_hostname : "httpd",
                           getpid());
    /* the refresh runs without the connection's statement timeout, which
     * is restored after it (the statement's error is logged by
     * ecom_db_job_run) */
    if (ecom_db_job_row_untimed(s, p, "ecom_recs_refresh", 2, args, 6, out)
        != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ECOM1102: "
                     "refreshing the recommendations failed");
        return APR_EGENERAL;
    }
    if (strcmp(out[0], "refreshed") == 0) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "ECOM1103: recommendations "
                     "refreshed in %s s: %s neighbours, %s user picks, %s "
                     "popular, %s products' similar ones computed",
                     out[5], out[1], out[2], out[3], out[4]);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "ECOM1104: recommendations "
                     "not refreshed: %s", out[0]);
    }
    return APR_SUCCESS;
}

static const ecom_route recs_routes[] = {
    { M_GET, "products/{id}/recommendations", ecom_recs_product,
      ECOM_AUTH_NONE, 0, 0, "recs.product" },
    { M_GET, "recommendations", ecom_recs_user, ECOM_AUTH_USER,
      ECOM_AUTH_INLINE, 0, "recs.user" },
    { M_GET, "cart/recommendations", ecom_recs_cart, ECOM_AUTH_USER,
      ECOM_AUTH_INLINE | ECOM_GUEST, 0, "recs.cart" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_recs_resource = {
    "recs", recs_sql, recs_routes, NULL
};
