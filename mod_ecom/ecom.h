/*
 * ecom.h: what the httpd layer of mod_ecom shares between its files.
 *
 * A request's path: mod_ecom.c (handler) -> ecom_router.c (route, auth,
 * body) -> ecom_<resource>.c handler -> ecom_db.c (prepared statements)
 * -> PostgreSQL, and back through ecom_http.c (JSON and problem+json).
 * The per-request state is one ecom_req, allocated from r->pool.
 */
#ifndef ECOM_H
#define ECOM_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_dbd.h"
#include "apr_strings.h"
#include "mod_dbd.h"

#include <jansson.h>

extern module AP_MODULE_DECLARE_DATA ecom_module;
#if defined(APLOG_USE_MODULE) && !defined(ECOM_MODULE_C)
APLOG_USE_MODULE(ecom);
#endif

#include "ecom_config.h"

/* ---- the request ---- */

typedef struct ecom_req {
    request_rec *r;
    const ecom_dir_conf *dc;
    const ecom_srv_conf *sc;
    apr_table_t *args;         /* decoded query string */
    long long id[2];           /* ids captured from the path */
    ap_dbd_t *dbd;             /* acquired on first use */
    int in_tx;                 /* a BEGIN of ours is open on dbd */
    int tx_cleanup;            /* the pool cleanup that rolls back is set */
    unsigned cache_dirty;      /* cache sections to invalidate once committed */
    const char *route;         /* the matched route pattern */
    long long user_id;         /* 0: anonymous */
    int is_staff;
    json_t *body;              /* parsed request body (object) or NULL */
    const char *raw_body;
    apr_size_t raw_len;
    /* the response, written out by the router once the handler returns */
    int status;
    const char *out;
    apr_size_t out_len;
    const char *ctype;
} ecom_req;

typedef int (*ecom_handler_fn)(ecom_req *q);

#include "ecom_cache.h"

/* ---- responses (ecom_http.c) ---- */

/* Takes ownership of j (decref'd), serialises it as the response body. */
int ecom_json(ecom_req *q, int status, json_t *j);
/* RFC 9457 answer; slug names the problem type. Returns status. */
int ecom_problem(ecom_req *q, int status, const char *slug, const char *detail);
/* The same, with extra members (a JSON object, ownership taken). */
int ecom_problem_with(ecom_req *q, int status, const char *slug,
                      const char *detail, json_t *extra);
/* 422 with per-field errors; errs is a JSON array (ownership taken). */
int ecom_invalid(ecom_req *q, json_t *errs);
void ecom_field_error(json_t *errs, const char *field, const char *msg);
int ecom_no_content(ecom_req *q, int status);
/* Registers j to be decref'd when the request pool goes. Returns j. */
json_t *ecom_json_pool(ecom_req *q, json_t *j);
/* Serialises j into r->pool memory (compact, stable key order). */
char *ecom_json_dump(ecom_req *q, const json_t *j, apr_size_t *len);
/* The absolute path of a resource under the API's mount point. */
const char *ecom_url(ecom_req *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Reads the request body into q->raw_body (NUL-terminated, r->pool): 413
 * when it is longer than limit bytes, 400 when it cannot be read. */
int ecom_read_body(ecom_req *q, apr_off_t limit);

/* ---- body field helpers (ecom_http.c) ---- */
/* Each returns 1 when the field is present and valid, 0 when absent, and
 * -1 after adding a field error to errs. */
int ecom_get_str(json_t *body, const char *field, size_t minlen, size_t maxlen,
                 const char **out, json_t *errs);
int ecom_get_int(json_t *body, const char *field, long long min, long long max,
                 long long *out, json_t *errs);
int ecom_get_bool(json_t *body, const char *field, int *out, json_t *errs);

/* ---- data access (ecom_db.c) ---- */

/* ECOM_STMT_READ marks a statement that changes nothing: only those are
 * run a second time after the connection broke under them (a write may
 * have committed before the answer was lost). */
#define ECOM_STMT_READ 1u

typedef struct {
    const char *label;
    const char *sql;
    unsigned flags;
} ecom_stmt;

/* Column kinds for ecom_row_json. */
typedef enum {
    EC_INT, EC_INT_NULL, EC_STR, EC_STR_NULL, EC_BOOL, EC_TIME
} ecom_coltype;
typedef struct {
    const char *name;
    ecom_coltype type;
} ecom_col;

/* Registers every statement of every resource with mod_dbd for s. */
void ecom_db_register(server_rec *s);
/* Deletes expired tokens and idempotency records older than 24 hours
 * through a connection of s's pool (mod_watchdog's thread, no request).
 * Logs what it did; returns APR_SUCCESS or the failure. */
apr_status_t ecom_db_purge(server_rec *s, apr_pool_t *p);
/* Each returns 0 on success, or the HTTP status of the problem it already
 * set: 503 (with Retry-After) when the database is unreachable, timed out
 * or a lock could not be had in time; 409 for a unique or check violation
 * that slipped past the handler's own checks; 500 otherwise. */
int ecom_db_select(ecom_req *q, const char *label, apr_dbd_results_t **res,
                   int nargs, const char **args);
int ecom_db_query(ecom_req *q, const char *label, int *nrows,
                  int nargs, const char **args);
/* The first row of res, or NULL when it has none. */
apr_dbd_row_t *ecom_db_row(ecom_req *q, apr_dbd_results_t *res);
/* Iterates: start with *row = NULL; 1 while a row is there. Once it returns
 * 0 the result is freed, so no row of it may be read afterwards. */
int ecom_db_next(ecom_req *q, apr_dbd_results_t *res, apr_dbd_row_t **row);
int ecom_db_nrows(ecom_req *q, apr_dbd_results_t *res);
const char *ecom_db_get(ecom_req *q, apr_dbd_row_t *row, int col);  /* NULL if SQL NULL */
long long ecom_db_ll(ecom_req *q, apr_dbd_row_t *row, int col);
/* An ECOM_TS() column as an RFC 3339 string in pool memory. */
const char *ecom_db_time(ecom_req *q, apr_dbd_row_t *row, int col);
json_t *ecom_row_json(ecom_req *q, apr_dbd_row_t *row, const ecom_col *cols,
                      int first_col);
/* Answers a keyset-paginated list: the first limit rows of res (which
 * holds limit + 1 when a next page exists) as {items, next_cursor}, the
 * cursor carrying columns key1 and key2 (-1: none) of the last item under
 * the tag of the list's ordering. Returns the HTTP status. */
int ecom_db_page(ecom_req *q, apr_dbd_results_t *res, int limit,
                 const ecom_col *cols, char tag, int key1, int key2);
/* Runs fn in one transaction: commit when it returns 0, roll back on any
 * other value (which is returned). Every multi-row write goes through it.
 * Inside a transaction the request already opened (an Idempotency-Key
 * request, ecom_idempotency.c) fn simply runs in it: the owner of the
 * outer transaction commits or rolls back. */
int ecom_db_tx(ecom_req *q, int (*fn)(ecom_req *q, void *ctx), void *ctx);
/* The transaction primitives behind ecom_db_tx. BEGIN, COMMIT, ROLLBACK
 * and SAVEPOINT are sent as constant statements, never through apr_dbd's
 * transaction API (apr-util 1.6.3's pgsql driver writes through a NULL
 * pointer when BEGIN fails). Each returns 0 or the status it set;
 * rollbacks never fail (a dead session has rolled back by itself). */
int ecom_db_begin(ecom_req *q);
int ecom_db_commit(ecom_req *q);
void ecom_db_rollback(ecom_req *q);
int ecom_db_savepoint(ecom_req *q);
int ecom_db_rollback_to_savepoint(ecom_req *q);
int ecom_db_ping(ecom_req *q);

/* Formats a long long into pool memory, for statement arguments. */
#define ECOM_LL(q, v) apr_psprintf((q)->r->pool, "%" APR_INT64_T_FMT, \
                                   (apr_int64_t)(v))
/* An RFC 3339 UTC timestamp from a timestamptz column, in SQL. */
/* A timestamptz column as whole Unix seconds, in SQL; ecom_row_json's
 * EC_TIME (or ecom_db_time) renders it as RFC 3339 UTC. Formatting in C
 * is much cheaper for PostgreSQL than to_char() on every row. */
#define ECOM_TS(col) "floor(extract(epoch FROM " col "))::bigint"

/* ---- auth (ecom_auth.c) ---- */
/* Resolves the bearer token, if any. need: 0 public, 1 user, 2 staff.
 * Returns 0 or the status of the problem it set (401/403/503). */
int ecom_authenticate(ecom_req *q, int need);

/* ---- idempotency (ecom_idempotency.c) ---- */
/* Runs fn for a request that carries an Idempotency-Key: replays a stored
 * answer, or runs fn and stores its answer in the same transaction as its
 * effect. Returns the HTTP status of the answer it set. */
int ecom_idem_run(ecom_req *q, const char *key, ecom_handler_fn fn);

/* ---- resources ---- */
extern const ecom_stmt ecom_auth_sql[], ecom_product_sql[], ecom_cart_sql[],
    ecom_order_sql[], ecom_idem_sql[], ecom_misc_sql[], ecom_purge_sql[],
    ecom_cache_sql[];

int ecom_register(ecom_req *q);
int ecom_login(ecom_req *q);
int ecom_products_list(ecom_req *q);
int ecom_product_get(ecom_req *q);
int ecom_product_create(ecom_req *q);
int ecom_product_update(ecom_req *q);
int ecom_cart_get(ecom_req *q);
int ecom_cart_add(ecom_req *q);
int ecom_cart_update(ecom_req *q);
int ecom_cart_delete(ecom_req *q);
int ecom_orders_list(ecom_req *q);
int ecom_order_get(ecom_req *q);
int ecom_order_create(ecom_req *q);
int ecom_health(ecom_req *q);
int ecom_openapi(ecom_req *q);

/* ---- router (ecom_router.c) ---- */
int ecom_dispatch(request_rec *r);

/* list paging: reads limit and cursor args; returns 0 or a 400 status. */
int ecom_page_args(ecom_req *q, int *limit);

#endif /* ECOM_H */
