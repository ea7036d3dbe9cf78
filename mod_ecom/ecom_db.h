/*
 * ecom_db.h: the data layer (ecom_db.c), the only code that talks to
 * apr_dbd. It returns an ecom_err kind (ecom_err.h) and logs a failure
 * once, where it is classified; it never writes an HTTP answer, so nothing
 * it does (a best-effort write that fails included) can overwrite one.
 * The handler layer renders a kind with ecom_fail() (ecom_http.h).
 */
#ifndef ECOM_DB_H
#define ECOM_DB_H

#include "ecom_req.h"
#include "ecom_err.h"

#include "apr_dbd.h"

/* ECOM_STMT_READ marks a statement that changes nothing: only those are
 * run a second time after the connection broke under them (a write may
 * have committed before the answer was lost). */
#define ECOM_STMT_READ 1u
/* ECOM_STMT_LIST marks the statement of a list page (a cursor and a
 * LIMIT): t/41-list-plans.t EXPLAINs every one of them, with the
 * parameters it keeps for each label, on a database of some size, and
 * fails on a sequential scan of a large table. ecom-status shows both
 * flags with each statement's text. */
#define ECOM_STMT_LIST 2u

typedef struct {
    const char *label;
    const char *sql;
    unsigned flags;
} ecom_stmt;

/* Column kinds for ecom_row_json. EC_JSON: a json or jsonb column sent
 * as text (col::text), embedded as its JSON value (SQL NULL: null).
 * EC_RATING: a rating summary sent as "<key>/<count>" (PRODUCT_RATING,
 * ecom_products.h), rendered as {"average": key / 100 or null, "count": n}. */
typedef enum {
    EC_INT, EC_INT_NULL, EC_STR, EC_STR_NULL, EC_BOOL, EC_TIME, EC_JSON,
    EC_RATING
} ecom_coltype;
typedef struct {
    const char *name;
    ecom_coltype type;
} ecom_col;

/* A timestamptz column as whole Unix seconds, in SQL; ecom_row_json's
 * EC_TIME (or ecom_db_time) renders it as RFC 3339 UTC. Formatting in C
 * is much cheaper for PostgreSQL than to_char() on every row. */
#define ECOM_TS(col) "floor(extract(epoch FROM " col "))::bigint"

/* Registers every statement of every registered resource with mod_dbd
 * for s (post_config). */
void ecom_db_register(server_rec *s);
/* child_init: background jobs' connections are given back (their
 * statements cancelled) before mod_dbd's pool goes at the child's exit */
void ecom_db_child_init(apr_pool_t *pchild, server_rec *s);
/* Deletes expired tokens and idempotency records older than 24 hours
 * through a connection of s's pool (mod_watchdog's thread, no request).
 * Logs what it did; returns APR_SUCCESS or the failure. */
apr_status_t ecom_db_purge(server_rec *s, apr_pool_t *p);
/* The payment timeout (mod_watchdog's thread, no request): cancels and
 * restocks, with an order event of actor system, every pending order of
 * s's database created more than timeout seconds ago, in batches of one
 * transaction each (sql/007_payment_timeout.sql: FOR UPDATE SKIP LOCKED, so
 * any number of processes and hosts may run it at once, and an order a
 * payment holds is left to it). Logs how many it cancelled; timeout 0
 * does nothing. Returns APR_SUCCESS or the failure. */
apr_status_t ecom_db_expire_orders(server_rec *s, apr_pool_t *p,
                                   int timeout);
/* One statement by label outside any request (a mod_watchdog job of
 * another file: ecom_dynprice.c, ecom_pricing.c), through a connection of s's pool: the
 * first row's first ncols columns go to out (p's strings, NULL for SQL
 * NULL), the rest is read and dropped. APR_SUCCESS, APR_NOTFOUND (no row)
 * or APR_EGENERAL (logged). */
apr_status_t ecom_db_job_row(server_rec *s, apr_pool_t *p, const char *label,
                             int nargs, const char **args, int ncols,
                             const char **out);
/* The same without the connection's statement_timeout for that statement
 * (restored after it): for a job that may take longer than a request may
 * (ecom_recs.c's refresh, ecom_products.c's search statistics). */
apr_status_t ecom_db_job_row_untimed(server_rec *s, apr_pool_t *p,
                                     const char *label, int nargs,
                                     const char **args, int ncols,
                                     const char **out);
/* The same in steps, for a job that runs several statements on one
 * connection (ecom_db_job_row_untimed: a session setting around it):
 * ecom_db_job_open (NULL when there is no connection, logged with label),
 * ecom_db_job_run (as ecom_db_job_row, on dbd), ecom_db_job_close. */
ap_dbd_t *ecom_db_job_open(server_rec *s, apr_pool_t *p, const char *label);
apr_status_t ecom_db_job_run(server_rec *s, apr_pool_t *p, ap_dbd_t *dbd,
                             const char *label, int nargs, const char **args,
                             int ncols, const char **out);
void ecom_db_job_close(server_rec *s, ap_dbd_t *dbd);

/* Run a prepared statement by label. ECOM_OK, or the failure's kind:
 * UNAVAILABLE (the database is unreachable), BUSY (a timeout, a lock
 * that could not be had in time), CONFLICT / CONSTRAINT (an integrity
 * violation that slipped past the handler's own checks), INTERNAL. */
ecom_err ecom_db_select(ecom_req *q, const char *label,
                        apr_dbd_results_t **res, int nargs, const char **args);
ecom_err ecom_db_query(ecom_req *q, const char *label, int *nrows,
                       int nargs, const char **args);
/* ecom_db_select for a statement that must return a row: NOT_FOUND when
 * it returns none (nothing is logged: that is the caller's answer). */
ecom_err ecom_db_one(ecom_req *q, const char *label, apr_dbd_row_t **row,
                     int nargs, const char **args);
/* The first row of res, or NULL when it has none. */
apr_dbd_row_t *ecom_db_row(ecom_req *q, apr_dbd_results_t *res);
/* Iterates: start with *row = NULL; 1 while a row is there. Once it returns
 * 0 the result is freed, so no row of it may be read afterwards. */
int ecom_db_next(ecom_req *q, apr_dbd_results_t *res, apr_dbd_row_t **row);
int ecom_db_nrows(ecom_req *q, apr_dbd_results_t *res);
/* Column readers, by the column's index in its SELECT: every resource
 * names them with an enum next to the statement. */
const char *ecom_db_get(ecom_req *q, apr_dbd_row_t *row, int col);  /* NULL if SQL NULL */
long long ecom_db_ll(ecom_req *q, apr_dbd_row_t *row, int col);
int ecom_db_bool(ecom_req *q, apr_dbd_row_t *row, int col);
/* An ECOM_TS() column as an RFC 3339 string in pool memory. */
const char *ecom_db_time(ecom_req *q, apr_dbd_row_t *row, int col);
/* The columns cols[0..] read from row's columns first_col.. as a JSON
 * object owned by the request pool. */
json_t *ecom_row_json(ecom_req *q, apr_dbd_row_t *row, const ecom_col *cols,
                      int first_col);

/*
 * Transactions. A transaction body returns an ecom_tx_end, never an int:
 * a renderer's HTTP status (ecom_json() returns 201...) cannot be
 * returned from it by mistake, so a body cannot roll back silently
 * because something rendered. Its four ends:
 *  - ECOM_TX_COMMIT: commit;
 *  - ECOM_TX_REFUSE: the body set a 4xx answer (ecom_problem...): roll
 *    back and answer with it;
 *  - ECOM_TX_COMMIT_REFUSAL: the body set a 4xx answer AND what it wrote
 *    must be kept (a declined payment is recorded, ecom_payments.c):
 *    commit, then answer with the refusal. ecom_db_tx returns
 *    ECOM_E_REFUSED once committed (the caller renders it with ecom_fail,
 *    which keeps the answer), or the COMMIT's failure. Inside the
 *    Idempotency-Key transaction it sets q->keep_refusal, and
 *    ecom_idem_run then keeps the effect with the stored 4xx answer
 *    instead of rolling back to its savepoint;
 *  - ecom_tx_fail(e): a data-layer failure e: roll back, the caller
 *    renders e.
 * ecom_db_tx also checks the answer against the end: COMMIT with a 4xx
 * or 5xx answer set, REFUSE without one, or COMMIT_REFUSAL without a 4xx
 * (a 5xx included) is a bug: it rolls back, logs it and returns INTERNAL.
 */
typedef struct {
    ecom_err err;
    int keep;      /* COMMIT_REFUSAL: commit although err is REFUSED */
} ecom_tx_end;

#define ECOM_TX_COMMIT ((ecom_tx_end){ ECOM_OK, 0 })
#define ECOM_TX_REFUSE ((ecom_tx_end){ ECOM_E_REFUSED, 0 })
#define ECOM_TX_COMMIT_REFUSAL ((ecom_tx_end){ ECOM_E_REFUSED, 1 })

static inline ecom_tx_end ecom_tx_fail(ecom_err e)
{
    ecom_tx_end end = { e, 0 };
    return end;
}

typedef ecom_tx_end (*ecom_tx_fn)(ecom_req *q, void *ctx);

/* Runs fn in one transaction (see above). Returns ECOM_OK once committed,
 * ECOM_E_REFUSED when fn refused (the answer is set; committed for
 * ECOM_TX_COMMIT_REFUSAL, else rolled back), or a failure kind.
 * Every multi-row write goes through it. Inside a transaction the request
 * already opened (an Idempotency-Key request, ecom_idempotency.c) fn
 * simply runs in it, and the owner of the outer transaction commits or
 * rolls back. */
ecom_err ecom_db_tx(ecom_req *q, ecom_tx_fn fn, void *ctx);
/* ecom_db_tx for a body that sends ONE statement (a function that
 * locks, checks and writes, such as ecom_checkout): outside a
 * transaction the statement is its own, without BEGIN and COMMIT round
 * trips; inside one it runs like ecom_db_tx. The body must write nothing
 * when it refuses (its statement has committed by then), so it may not
 * return ECOM_TX_COMMIT_REFUSAL. */
ecom_err ecom_db_tx_single(ecom_req *q, ecom_tx_fn fn, void *ctx);
/* The primitives behind ecom_db_tx. BEGIN, COMMIT, ROLLBACK and SAVEPOINT
 * are sent as constant statements, never through apr_dbd's transaction
 * API (apr-util 1.6.3's pgsql driver writes through a NULL pointer when
 * BEGIN fails). Rollbacks never fail (a dead session has rolled back by
 * itself). */
ecom_err ecom_db_begin(ecom_req *q);
ecom_err ecom_db_commit(ecom_req *q);
void ecom_db_rollback(ecom_req *q);
ecom_err ecom_db_savepoint(ecom_req *q);
ecom_err ecom_db_rollback_to_savepoint(ecom_req *q);
/* A round trip: ECOM_OK or UNAVAILABLE / BUSY. */
ecom_err ecom_db_ping(ecom_req *q);
/* Hands the request's connection back to mod_dbd's pool (rolling back a
 * transaction left open, which is logged as a bug). The router calls it
 * before reading a body and before writing the answer, so a connection is
 * held only while statements run; the next statement takes one again. */
void ecom_db_release(ecom_req *q);

#endif /* ECOM_DB_H */
