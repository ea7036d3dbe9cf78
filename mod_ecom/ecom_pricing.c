/*
 * ecom_pricing.c: sales (issue 10): staff pricing rules under
 * /pricing/rules/ (POST, list, GET, PATCH, DELETE by id). A rule takes
 * percent_off (1..100) off the list price of every product (neither
 * category nor product_ids), of a category and its subcategories
 * (category: a slug), or of listed products (product_ids), from starts_at
 * (inclusive) to ends_at (exclusive); when several apply, the highest
 * priority wins, ties to the larger percent_off, then to the newest rule.
 *
 * What a rule does to prices is SQL's, in one place (sql/023: ecom_sale,
 * ecom_sale_price; the statements join them through ecom_pricing.h): the
 * product list and detail show it (price, list_price, price_ends_at), the
 * cart and the checkout charge it. A rule write is one transaction
 * (ecom_pricing_rule_save: the rule and its products) and invalidates the
 * catalog's cached pages (ECOM_CACHE_CATALOG) once committed. The list
 * and the detail read the sale stored on the products row (sql/025: the
 * rule writes' triggers keep it, in their transaction); a sale ends there
 * exactly at its ends_at, and the window edges job here
 * (ecom_sale_edges_run, mod_watchdog every EcomSaleEdgeInterval seconds)
 * stores the sales that start, or take over from one that ended.
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_cache.h"
#include "ecom_util.h"
#include "ecom_coupons.h"
#include "ecom_pricing.h"

/* ecom_sale_edges_run */
enum { E_STATUS, E_RULES, E_PRODUCTS, E_SYS, E_OID, E_NAME, E_NCOLS };

#define RULE_COLS \
    "r.id, r.name, r.percent_off, c.slug, CASE WHEN r.scope = 'products' " \
    "THEN to_json(ARRAY(SELECT rp.product_id FROM pricing_rule_products rp " \
    "WHERE rp.rule_id = r.id ORDER BY rp.product_id))::text END, " \
    ECOM_TS("r.starts_at") ", " ECOM_TS("r.ends_at") ", r.priority, " \
    "(r.starts_at <= now() AND r.ends_at > now()), " \
    ECOM_TS("r.created_at") ", " ECOM_TS("r.updated_at")
#define RULE_FROM \
    " FROM pricing_rules r LEFT JOIN categories c ON c.id = r.category_id "
enum { RU_ID, RU_NAME, RU_PERCENT, RU_CATEGORY, RU_PRODUCTS, RU_STARTS,
       RU_ENDS, RU_PRIORITY, RU_ACTIVE, RU_CREATED, RU_UPDATED, RU_NCOLS };
/* ecom_pricing_rule_lock: a rule as a PATCH merges into it */
enum { RL_NAME, RL_PERCENT, RL_CATEGORY, RL_PRODUCTS, RL_NPRODUCTS,
       RL_STARTS, RL_ENDS, RL_PRIORITY };
/* ecom_pricing_rule_save */
enum { RS_ID, RS_PROBLEM };

static const ecom_stmt pricing_sql[] = {
    /* the window edges job (sql/025 ecom_sale_edges), and what identifies
     * the database in the cache's keys, for the invalidation after it */
    { "ecom_sale_edges_run",
      "SELECT r.status, r.rules, r.products, " ECOM_CACHE_DB_COLS
      " FROM ecom_sale_edges() r, " ECOM_CACHE_DB_FROM, 0 },
    { "ecom_pricing_rule_save",
      "SELECT id, problem FROM ecom_pricing_rule_save(%s::bigint, %s, "
      "%s::int, %s, %s::bigint[], %s::bigint, %s::bigint, %s::int)", 0 },
    { "ecom_pricing_rule_get",
      "SELECT " RULE_COLS RULE_FROM "WHERE r.id = %s::bigint",
      ECOM_STMT_READ },
    { "ecom_pricing_rule_list",
      "SELECT " RULE_COLS RULE_FROM
      "WHERE r.id > COALESCE(%s::bigint, 0) ORDER BY r.id LIMIT %s::int",
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_pricing_rule_lock",
      "SELECT r.name, r.percent_off, c.slug, CASE WHEN r.scope = 'products' "
      "THEN ARRAY(SELECT rp.product_id FROM pricing_rule_products rp "
      "WHERE rp.rule_id = r.id ORDER BY rp.product_id)::text END, "
      "(SELECT count(*) FROM pricing_rule_products rp "
      "WHERE rp.rule_id = r.id), "
      ECOM_TS("r.starts_at") ", " ECOM_TS("r.ends_at") ", r.priority "
      "FROM pricing_rules r LEFT JOIN categories c ON c.id = r.category_id "
      "WHERE r.id = %s::bigint FOR NO KEY UPDATE OF r", 0 },
    { "ecom_pricing_rule_delete",
      "DELETE FROM pricing_rules WHERE id = %s::bigint", 0 },
    { NULL, NULL, 0 }
};

static const ecom_col rule_cols[] = {
    [RU_ID] = { "id", EC_INT }, [RU_NAME] = { "name", EC_STR },
    [RU_PERCENT] = { "percent_off", EC_INT },
    [RU_CATEGORY] = { "category", EC_STR_NULL },
    [RU_PRODUCTS] = { "product_ids", EC_JSON },
    [RU_STARTS] = { "starts_at", EC_TIME }, [RU_ENDS] = { "ends_at", EC_TIME },
    [RU_PRIORITY] = { "priority", EC_INT },
    [RU_ACTIVE] = { "active", EC_BOOL },
    [RU_CREATED] = { "created_at", EC_TIME },
    [RU_UPDATED] = { "updated_at", EC_TIME }, [RU_NCOLS] = { NULL, 0 }
};

static const char *const rule_fields[] = {
    "name", "percent_off", "category", "product_ids", "starts_at", "ends_at",
    "priority", NULL
};

/* A rule's values: a new rule's (has_* 0), or the row a PATCH changes. */
typedef struct {
    const char *name, *category, *products;   /* products: "{1,2}" */
    long long percent, starts, ends, priority, nproducts;
    int has_percent, has_starts, has_ends;
    json_t *out;                              /* the rule written */
} rule_in;

/* Reads the body over r, then checks the result as a whole. */
static void read_rule(ecom_req *q, json_t *body, rule_in *r, json_t *errs)
{
    json_t *cat = json_object_get(body, "category");
    json_t *ids = json_object_get(body, "product_ids");
    long long v = 0;
    const char *s = NULL;
    int rv;

    if (ecom_get_str(body, "name", 1, 200, &s, errs) == 1) {
        r->name = s;
    }
    if (ecom_get_int(body, "percent_off", 1, 100, &v, errs) == 1) {
        r->percent = v;
        r->has_percent = 1;
    }
    if (cat && !json_is_null(cat) && ids && !json_is_null(ids)) {
        ecom_field_error(errs, "category", "give category or product_ids, "
                         "not both (neither: every product)");
    }
    else if (cat) {
        if (json_is_null(cat)) {
            r->category = NULL;
        }
        else if (!json_is_string(cat)
                 || !ecom_slug_valid(json_string_value(cat),
                                     strlen(json_string_value(cat)))) {
            ecom_field_error(errs, "category", "must be a category slug or "
                             "null");
        }
        else {
            r->category = json_string_value(cat);
            r->products = NULL;
            r->nproducts = 0;
        }
    }
    else if (ids) {
        if (json_is_null(ids)) {
            r->products = NULL;
            r->nproducts = 0;
        }
        else if (ecom_get_ids(q, body, "product_ids", 1000, &r->products,
                              &r->nproducts, errs) == 1) {
            r->category = NULL;
        }
    }
    if ((rv = ecom_get_time(body, "starts_at", &v, errs)) == 1) {
        r->starts = v;
        r->has_starts = 1;
    }
    else if (rv == 2) {
        ecom_field_error(errs, "starts_at", "is required");
    }
    if ((rv = ecom_get_time(body, "ends_at", &v, errs)) == 1) {
        r->ends = v;
        r->has_ends = 1;
    }
    else if (rv == 2) {
        ecom_field_error(errs, "ends_at", "is required");
    }
    if (ecom_get_int(body, "priority", -1000000, 1000000, &v, errs) == 1) {
        r->priority = v;
    }
    if (json_array_size(errs)) {
        return;
    }
    if (!r->name) {
        ecom_field_error(errs, "name", "is required");
    }
    if (!r->has_percent) {
        ecom_field_error(errs, "percent_off", "is required (1..100)");
    }
    if (!r->has_starts) {
        ecom_field_error(errs, "starts_at", "is required");
    }
    if (!r->has_ends) {
        ecom_field_error(errs, "ends_at", "is required");
    }
    if (r->has_starts && r->has_ends && r->ends <= r->starts) {
        ecom_field_error(errs, "ends_at", "must be after starts_at");
    }
}

/* Saves r (id 0: a new rule) and reads it back into r->out. */
static ecom_tx_end save_rule(ecom_req *q, long long id, rule_in *r)
{
    const char *args[8];
    apr_dbd_row_t *row;
    const char *problem;
    json_t *errs;
    ecom_err e;

    args[0] = id ? ECOM_LL(q, id) : NULL;
    args[1] = r->name;
    args[2] = ECOM_LL(q, r->percent);
    args[3] = r->category;
    args[4] = r->products;
    args[5] = ECOM_LL(q, r->starts);
    args[6] = ECOM_LL(q, r->ends);
    args[7] = ECOM_LL(q, r->priority);
    if ((e = ecom_db_one(q, "ecom_pricing_rule_save", &row, 8, args))) {
        return ecom_tx_fail(e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    if ((problem = ecom_db_get(q, row, RS_PROBLEM))) {
        if (strcmp(problem, "not-found") == 0) {
            ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                         "No such pricing rule.");
            return ECOM_TX_REFUSE;
        }
        errs = ecom_jarray(q);
        if (strcmp(problem, "category") == 0) {
            ecom_field_error(errs, "category", "no category has this slug");
        }
        else {
            ecom_field_error(errs, "product_ids", "names an id that is no "
                             "product");
        }
        ecom_invalid(q, errs);
        return ECOM_TX_REFUSE;
    }
    args[0] = apr_pstrdup(q->r->pool, ecom_db_get(q, row, RS_ID));
    if ((e = ecom_db_one(q, "ecom_pricing_rule_get", &row, 1, args))) {
        return ecom_tx_fail(e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    r->out = ecom_row_json(q, row, rule_cols, 0);
    return ECOM_TX_COMMIT;
}

static ecom_tx_end rule_create(ecom_req *q, void *data)
{
    return save_rule(q, 0, data);
}

static int ecom_pricing_rule_create(ecom_req *q)
{
    json_t *errs = ecom_jarray(q);
    rule_in r;
    ecom_err e;

    memset(&r, 0, sizeof(r));
    ecom_body_unknown(q, q->body, "", rule_fields, errs);
    read_rule(q, q->body, &r, errs);
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    if ((e = ecom_db_tx(q, rule_create, &r))) {
        return ecom_fail(q, e);
    }
    apr_table_setn(q->r->headers_out, "Location",
                   ecom_url(q, "/pricing/rules/%" APR_INT64_T_FMT "/",
                            (apr_int64_t)json_integer_value(
                                json_object_get(r.out, "id"))));
    return ecom_json(q, HTTP_CREATED, r.out);
}

static int rule_not_found(ecom_req *q)
{
    return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                        "No such pricing rule.");
}

static int ecom_pricing_rule_get(ecom_req *q)
{
    return ecom_send_one(q, "ecom_pricing_rule_get", ECOM_LL(q, q->id[0]),
                         rule_cols, "No such pricing rule.");
}

static int ecom_pricing_rule_list(ecom_req *q)
{
    return ecom_send_id_page(q, "ecom_pricing_rule_list", 'q', rule_cols,
                             RU_ID);
}

static ecom_tx_end rule_patch(ecom_req *q, void *data)
{
    rule_in *r = data;
    json_t *errs = ecom_jarray(q);
    const char *args[1] = { ECOM_LL(q, q->id[0]) };
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, "ecom_pricing_rule_lock", &row, 1, args);

    if (e == ECOM_E_NOT_FOUND) {
        rule_not_found(q);
        return ECOM_TX_REFUSE;
    }
    if (e) {
        return ecom_tx_fail(e);
    }
    r->name = apr_pstrdup(q->r->pool, ecom_db_get(q, row, RL_NAME));
    r->percent = ecom_db_ll(q, row, RL_PERCENT);
    r->has_percent = 1;
    if (ecom_db_get(q, row, RL_CATEGORY)) {
        r->category = apr_pstrdup(q->r->pool,
                                  ecom_db_get(q, row, RL_CATEGORY));
    }
    if (ecom_db_get(q, row, RL_PRODUCTS)) {
        r->products = apr_pstrdup(q->r->pool,
                                  ecom_db_get(q, row, RL_PRODUCTS));
        r->nproducts = ecom_db_ll(q, row, RL_NPRODUCTS);
    }
    r->starts = ecom_db_ll(q, row, RL_STARTS);
    r->ends = ecom_db_ll(q, row, RL_ENDS);
    r->has_starts = r->has_ends = 1;
    r->priority = ecom_db_ll(q, row, RL_PRIORITY);
    read_rule(q, q->body, r, errs);
    if (json_array_size(errs)) {
        ecom_invalid(q, errs);
        return ECOM_TX_REFUSE;
    }
    return save_rule(q, q->id[0], r);
}

static int ecom_pricing_rule_update(ecom_req *q)
{
    json_t *errs = ecom_jarray(q);
    rule_in r;
    ecom_err e;

    memset(&r, 0, sizeof(r));
    ecom_body_unknown(q, q->body, "", rule_fields, errs);
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    if ((e = ecom_db_tx(q, rule_patch, &r))) {
        return ecom_fail(q, e);
    }
    return ecom_json(q, HTTP_OK, r.out);
}

static int ecom_pricing_rule_delete(ecom_req *q)
{
    const char *args[1] = { ECOM_LL(q, q->id[0]) };
    ecom_err e;
    int n = 0;

    if ((e = ecom_db_query(q, "ecom_pricing_rule_delete", &n, 1, args))) {
        return ecom_fail(q, e);
    }
    if (n == 0) {
        return rule_not_found(q);
    }
    return ecom_no_content(q, HTTP_NO_CONTENT);
}

/* ---- the window edges job ---- */

apr_status_t ecom_sale_edges_run(server_rec *s, apr_pool_t *p)
{
    const char *v[E_NCOLS] = { NULL };
    long long changed;

    if (ecom_db_job_row(s, p, "ecom_sale_edges_run", 0, NULL, E_NCOLS, v)
        != APR_SUCCESS) {
        return APR_EGENERAL;
    }
    if (!v[E_STATUS] || strcmp(v[E_STATUS], "done") != 0) {
        return APR_SUCCESS;
    }
    changed = v[E_PRODUCTS] ? apr_atoi64(v[E_PRODUCTS]) : 0;
    if (changed > 0) {
        ecom_cache_invalidate_db(s, p, v[E_SYS], v[E_OID], v[E_NAME],
                                 ECOM_CACHE_CATALOG);
    }
    ap_log_error(APLOG_MARK, changed > 0 ? APLOG_INFO : APLOG_DEBUG, 0, s,
                 "ECOM2501: sales window edges: %s rules started or ended, "
                 "%" APR_INT64_T_FMT " products' sale changed",
                 v[E_RULES] ? v[E_RULES] : "0", (apr_int64_t)changed);
    return APR_SUCCESS;
}

static const ecom_route pricing_routes[] = {
    { M_POST, "pricing/rules", ecom_pricing_rule_create, ECOM_AUTH_STAFF,
      ECOM_BODY | ECOM_IDEMPOTENT, ECOM_CACHE_CATALOG, "pricing.rules.create" },
    { M_GET, "pricing/rules", ecom_pricing_rule_list, ECOM_AUTH_STAFF, 0, 0,
      "pricing.rules.list" },
    { M_GET, "pricing/rules/{id}", ecom_pricing_rule_get, ECOM_AUTH_STAFF, 0,
      0, "pricing.rules.get" },
    { M_PATCH, "pricing/rules/{id}", ecom_pricing_rule_update,
      ECOM_AUTH_STAFF, ECOM_BODY, ECOM_CACHE_CATALOG, "pricing.rules.update" },
    { M_DELETE, "pricing/rules/{id}", ecom_pricing_rule_delete,
      ECOM_AUTH_STAFF, 0, ECOM_CACHE_CATALOG, "pricing.rules.delete" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_pricing_resource = {
    "pricing", pricing_sql, pricing_routes, NULL
};
