/*
 * ecom_db.c: the only file that talks to apr_dbd.
 *
 * Statements are registered with mod_dbd by label at post_config (each
 * resource keeps its SQL texts in one table next to its handlers) and are
 * prepared on every pooled connection when it opens. Requests fetch them
 * by label and run them with parameters only; no SQL is ever built from
 * input. Results are read in random-access mode, so a connection is never
 * left with unread rows.
 *
 * Failures: if the connection is gone the answer is 503 (mod_dbd drops the
 * connection and opens a new one on a later request, so service resumes by
 * itself); any other database error is logged and answered with 500, except
 * unique and check violations that slipped past the handlers' own checks
 * (409 and 422).
 */
#include "ecom.h"
#include "ecom_util.h"

static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) *dbd_prepare_fn;
static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire_fn;

/* Every resource's statement table. */
static const ecom_stmt *const all_tables[] = {
    ecom_auth_sql, ecom_product_sql, ecom_cart_sql, ecom_order_sql,
    ecom_idem_sql, ecom_misc_sql, ecom_cache_sql, NULL
};

void ecom_db_register(server_rec *s)
{
    /* Looked up once per (re)configuration, as mod_authn_dbd does. */
    dbd_prepare_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    dbd_acquire_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    for (int t = 0; all_tables[t]; t++) {
        for (const ecom_stmt *st = all_tables[t]; st->label; st++) {
            dbd_prepare_fn(s, st->sql, st->label);
        }
    }
}

/*
 * When PostgreSQL restarts, mod_dbd's connection check (PQreset) silently
 * reconnects a pooled connection, but server-side prepared statements died
 * with the old session. Prepare them again on this connection; the caller
 * retries its statement once.
 */
static int reprepare(ecom_req *q)
{
    int failures = 0;

    for (int t = 0; all_tables[t]; t++) {
        for (const ecom_stmt *st = all_tables[t]; st->label; st++) {
            apr_dbd_prepared_t *stmt = NULL;
            if (apr_dbd_prepare(q->dbd->driver, q->dbd->pool, q->dbd->handle,
                                st->sql, st->label, &stmt) == 0) {
                apr_hash_set(q->dbd->prepared, st->label, APR_HASH_KEY_STRING,
                             stmt);
            }
            else {
                failures++;
            }
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, q->r, APLOGNO(10907)
                  "database session was reset; statements prepared again "
                  "(%d failed)", failures);
    return failures == 0;
}

static int unavailable(ecom_req *q)
{
    apr_table_setn(q->r->err_headers_out, "Retry-After", "1");
    return ecom_problem(q, HTTP_SERVICE_UNAVAILABLE, "database-unavailable",
                        "The database is unavailable; try again shortly.");
}

static int acquire(ecom_req *q)
{
    if (!q->dbd) {
        q->dbd = dbd_acquire_fn ? dbd_acquire_fn(q->r) : NULL;
        if (!q->dbd) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r, APLOGNO(10902)
                          "no database connection");
            return unavailable(q);
        }
    }
    return 0;
}

static int failed(ecom_req *q, const char *label, int rv)
{
    const char *msg = apr_dbd_error(q->dbd->driver, q->dbd->handle, rv);

    if (apr_dbd_check_conn(q->dbd->driver, q->r->pool, q->dbd->handle)
        != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r, APLOGNO(10903)
                      "database connection lost during %s", label);
        return unavailable(q);
    }
    if (msg && strstr(msg, "prepared statement") && strstr(msg, "does not exist")) {
        return unavailable(q);
    }
    if (msg && strstr(msg, "duplicate key value")) {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            "A resource with these values already exists.");
    }
    if (msg && strstr(msg, "violates check constraint")) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, APLOGNO(10904)
                      "%s: %s", label, msg);
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            "The change would break a data constraint.");
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, APLOGNO(10905)
                  "statement %s failed: %s", label, msg ? msg : "(unknown)");
    return ecom_problem(q, HTTP_INTERNAL_SERVER_ERROR, "internal",
                        "The request could not be completed.");
}

static apr_dbd_prepared_t *statement(ecom_req *q, const char *label)
{
    return apr_hash_get(q->dbd->prepared, label, APR_HASH_KEY_STRING);
}

static int missing(ecom_req *q, const char *label)
{
    /* Prepared statements are missing when preparing failed on this
     * connection, e.g. the schema is not migrated. */
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, APLOGNO(10906)
                  "prepared statement %s is not available (is the schema "
                  "migrated?)", label);
    return ecom_problem(q, HTTP_INTERNAL_SERVER_ERROR, "internal",
                        "The request could not be completed.");
}

/*
 * Decides whether a failed statement, outside any transaction, is worth a
 * second try on the same pooled connection:
 *  - the session died (PostgreSQL restarted): libpq only notices when a
 *    statement fails; apr_dbd_check_conn() then reconnects (PQreset);
 *  - the session was reset, so its prepared statements are gone.
 * Returns 1 when the statement should be run again.
 */
static int retry_after(ecom_req *q, int rv)
{
    const char *msg;

    if (!rv || q->tx) {
        return 0;
    }
    msg = apr_dbd_error(q->dbd->driver, q->dbd->handle, rv);
    if (msg && strstr(msg, "prepared statement") && strstr(msg, "does not exist")) {
        return reprepare(q);
    }
    if (!msg || !*msg || strstr(msg, "connection") || strstr(msg, "SSL")) {
        return apr_dbd_check_conn(q->dbd->driver, q->r->pool, q->dbd->handle)
               == APR_SUCCESS && reprepare(q);
    }
    return 0;
}

int ecom_db_select(ecom_req *q, const char *label, apr_dbd_results_t **res,
                   int nargs, const char **args)
{
    apr_dbd_prepared_t *st;
    int rv;

    if ((rv = acquire(q))) {
        return rv;
    }
    if (!(st = statement(q, label))) {
        return missing(q, label);
    }
    *res = NULL;
    rv = apr_dbd_pselect(q->dbd->driver, q->r->pool, q->dbd->handle, res, st,
                         1, nargs, args);
    if (retry_after(q, rv)) {
        *res = NULL;
        rv = apr_dbd_pselect(q->dbd->driver, q->r->pool, q->dbd->handle, res,
                             statement(q, label), 1, nargs, args);
    }
    return rv ? failed(q, label, rv) : 0;
}

int ecom_db_query(ecom_req *q, const char *label, int *nrows, int nargs,
                  const char **args)
{
    apr_dbd_prepared_t *st;
    int rv, n = 0;

    if ((rv = acquire(q))) {
        return rv;
    }
    if (!(st = statement(q, label))) {
        return missing(q, label);
    }
    rv = apr_dbd_pquery(q->dbd->driver, q->r->pool, q->dbd->handle, &n, st,
                        nargs, args);
    if (retry_after(q, rv)) {
        rv = apr_dbd_pquery(q->dbd->driver, q->r->pool, q->dbd->handle, &n,
                            statement(q, label), nargs, args);
    }
    if (nrows) {
        *nrows = n;
    }
    return rv ? failed(q, label, rv) : 0;
}

apr_dbd_row_t *ecom_db_row(ecom_req *q, apr_dbd_results_t *res)
{
    apr_dbd_row_t *row = NULL;

    return ecom_db_next(q, res, &row) ? row : NULL;
}

int ecom_db_next(ecom_req *q, apr_dbd_results_t *res, apr_dbd_row_t **row)
{
    /* Sequential reads advance the row the driver hands back, so the same
     * row pointer must be passed again; at the end the driver frees the
     * result and sets *row to NULL. */
    return apr_dbd_get_row(q->dbd->driver, q->r->pool, res, row, -1) == 0;
}

int ecom_db_nrows(ecom_req *q, apr_dbd_results_t *res)
{
    return apr_dbd_num_tuples(q->dbd->driver, res);
}

const char *ecom_db_get(ecom_req *q, apr_dbd_row_t *row, int col)
{
    char *v = NULL;

    if (apr_dbd_datum_get(q->dbd->driver, row, col, APR_DBD_TYPE_STRING, &v)
        != APR_SUCCESS) {
        return NULL;
    }
    return v;
}

long long ecom_db_ll(ecom_req *q, apr_dbd_row_t *row, int col)
{
    const char *v = ecom_db_get(q, row, col);

    return v ? apr_atoi64(v) : 0;
}

const char *ecom_db_time(ecom_req *q, apr_dbd_row_t *row, int col)
{
    char *buf = apr_palloc(q->r->pool, ECOM_RFC3339_LEN);

    ecom_rfc3339(ecom_db_ll(q, row, col), buf);
    return buf;
}

json_t *ecom_row_json(ecom_req *q, apr_dbd_row_t *row, const ecom_col *cols,
                      int first_col)
{
    json_t *o = json_object();
    int i;

    for (i = 0; cols[i].name; i++) {
        const char *v = ecom_db_get(q, row, first_col + i);
        json_t *jv;

        if (!v) {
            jv = json_null();
        }
        else {
            switch (cols[i].type) {
            case EC_INT:
            case EC_INT_NULL:
                jv = json_integer(apr_atoi64(v));
                break;
            case EC_BOOL:
                jv = json_boolean(v[0] == 't');
                break;
            case EC_TIME: {
                char ts[ECOM_RFC3339_LEN];
                ecom_rfc3339(apr_atoi64(v), ts);
                jv = json_string(ts);
                break;
            }
            default:
                jv = json_string(v);
                break;
            }
        }
        json_object_set_new(o, cols[i].name, jv ? jv : json_null());
    }
    return o;
}

int ecom_db_page(ecom_req *q, apr_dbd_results_t *res, int limit,
                 const ecom_col *cols, char tag, int key1, int key2)
{
    json_t *items = json_array();
    apr_dbd_row_t *row = NULL;
    long long k1 = 0, k2 = 0;
    char next[ECOM_CURSOR_MAX];
    int n = 0;

    while (ecom_db_next(q, res, &row)) {
        if (n == limit) {
            /* a next page exists: the cursor points after the last item
             * (rows of res stay readable: the result is not exhausted) */
            break;
        }
        json_array_append_new(items, ecom_row_json(q, row, cols, 0));
        k1 = ecom_db_ll(q, row, key1);
        k2 = key2 >= 0 ? ecom_db_ll(q, row, key2) : 0;
        n++;
    }
    if (row) {
        ecom_cursor_encode(tag, k1, k2, next);
    }
    return ecom_json(q, HTTP_OK, json_pack("{s:o, s:s?}", "items", items,
                                           "next_cursor", row ? next : NULL));
}

/* If a handler returns with the transaction still open (it cannot, but a
 * future edit might), the pool cleanup rolls it back. */
static apr_status_t tx_cleanup(void *data)
{
    ecom_req *q = data;

    if (q->tx) {
        apr_dbd_transaction_mode_set(q->dbd->driver, q->tx,
                                     APR_DBD_TRANSACTION_ROLLBACK);
        apr_dbd_transaction_end(q->dbd->driver, q->r->pool, q->tx);
        q->tx = NULL;
    }
    return APR_SUCCESS;
}

int ecom_db_tx(ecom_req *q, int (*fn)(ecom_req *q, void *ctx), void *ctx)
{
    int rv, status;

    if ((rv = acquire(q))) {
        return rv;
    }
    if ((rv = apr_dbd_transaction_start(q->dbd->driver, q->r->pool,
                                        q->dbd->handle, &q->tx)) != 0) {
        q->tx = NULL;
        return failed(q, "BEGIN", rv);
    }
    apr_pool_cleanup_register(q->r->pool, q, tx_cleanup, apr_pool_cleanup_null);
    status = fn(q, ctx);
    if (status) {
        apr_dbd_transaction_mode_set(q->dbd->driver, q->tx,
                                     APR_DBD_TRANSACTION_ROLLBACK);
    }
    rv = apr_dbd_transaction_end(q->dbd->driver, q->r->pool, q->tx);
    q->tx = NULL;
    apr_pool_cleanup_kill(q->r->pool, q, tx_cleanup);
    if (!status && rv) {
        return failed(q, "COMMIT", rv);
    }
    return status;
}

int ecom_db_ping(ecom_req *q)
{
    apr_dbd_results_t *res = NULL;
    int rv = ecom_db_select(q, "ecom_ping", &res, 0, NULL);

    if (!rv && !ecom_db_row(q, res)) {
        return unavailable(q);
    }
    return rv;
}
