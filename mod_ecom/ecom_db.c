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
 * Connections come from mod_dbd's pool (ap_dbd_open) at a request's first
 * statement and go back (ap_dbd_close) before its body is read and before
 * its answer is written (ecom_db_release, called by the router), so a
 * connection is held only while statements run, each bounded by the
 * shipped DBDParams. A slow client therefore never holds one, a request
 * waiting for one waits only for other requests' statements, and DBDMax
 * can be sized to what PostgreSQL runs well (a few per core over all
 * children), not to ThreadsPerChild.
 *
 * Transactions are ours, not the driver's: BEGIN, COMMIT, ROLLBACK and
 * SAVEPOINT go out as constant statements (apr-util 1.6.3's pgsql driver
 * crashes when its own BEGIN fails), the state lives in the request
 * (q->in_tx), and ecom_db_release() rolls back whatever a request left
 * open before mod_dbd takes the connection back.
 *
 * Failures are classified by SQLSTATE, which libpq puts in the message
 * once the connection's error verbosity is PQERRORS_VERBOSE (set on every
 * acquire), into an ecom_err kind (ecom_err.h), and logged here once; this
 * file never writes an HTTP answer (ecom_fail() in ecom_http.c does):
 *  - the connection is gone (class 08, 57P01..57P03, or libpq's own
 *    errors with a broken connection): UNAVAILABLE;
 *  - statement_timeout (57014), lock_timeout (55P03), deadlock (40P01),
 *    serialization failure (40001), too many connections (53300): BUSY
 *    (the shipped DBDParams bound every wait);
 *  - unique (23505): CONFLICT; other integrity violations (class 23):
 *    CONSTRAINT;
 *  - anything else: INTERNAL, logged with its SQLSTATE, constraint and
 *    primary message only (never DETAIL, which quotes row values).
 * A statement is run a second time only when it is known not to have
 * executed (its prepared statement was missing, 26000) or when it is a
 * read (ECOM_STMT_READ) whose connection broke: a write that may have
 * reached the server is never repeated.
 */
#include "ecom_db.h"
#include "ecom_resource.h"
#include "ecom_util.h"
#include "ecom_metrics.h"

#include "apr_thread_cond.h"
#include "apr_thread_mutex.h"

#include <libpq-fe.h>
#include <poll.h>

static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) *dbd_prepare_fn;
static APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open_fn;
static APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close_fn;

/* Every statement of every registered resource, in registry order: start
 * with a zeroed iterator; NULL at the end. */
typedef struct {
    const ecom_resource *const *res;
    const ecom_stmt *st;
} stmt_iter;

static const ecom_stmt *next_stmt(stmt_iter *it)
{
    if (!it->res) {
        it->res = ecom_resources;
        it->st = *it->res ? (*it->res)->stmts : NULL;
    }
    else if (it->st) {
        it->st++;
    }
    while (*it->res && (!it->st || !it->st->label)) {
        it->res++;
        it->st = *it->res ? (*it->res)->stmts : NULL;
    }
    return *it->res ? it->st : NULL;
}

void ecom_db_register(server_rec *s)
{
    stmt_iter it = { NULL, NULL };
    const ecom_stmt *st;

    /* Looked up once per (re)configuration, as mod_authn_dbd does. */
    dbd_prepare_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    dbd_open_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    dbd_close_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    while ((st = next_stmt(&it))) {
        dbd_prepare_fn(s, st->sql, st->label);
    }
}

static const ecom_stmt *find_stmt(const char *label)
{
    stmt_iter it = { NULL, NULL };
    const ecom_stmt *st;

    while ((st = next_stmt(&it))) {
        if (strcmp(st->label, label) == 0) {
            return st;
        }
    }
    return NULL;
}

static PGconn *pg_conn(ap_dbd_t *dbd)
{
    if (strcmp(apr_dbd_name(dbd->driver), "pgsql") != 0) {
        return NULL;
    }
    return apr_dbd_native_handle(dbd->driver, dbd->handle);
}

/* SQLSTATE verbosity, so failures can be told apart (see the top). */
static void verbose_errors(ap_dbd_t *dbd)
{
    PGconn *conn = pg_conn(dbd);

    if (conn) {
        PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
    }
}

/*
 * The backend process the connection's statements were prepared in, kept
 * in the connection's own statement table under a key no label can take.
 * mod_dbd prepares them when it opens the connection, so the first
 * backend seen is taken as prepared; a different one later means libpq
 * reset the session (apr_dbd_check_conn) and the statements are gone.
 */
#define SESSION_KEY " ecom backend pid"

static void remember_session(ap_dbd_t *dbd)
{
    PGconn *conn = pg_conn(dbd);
    int *pid;

    if (!conn) {
        return;
    }
    pid = apr_hash_get(dbd->prepared, SESSION_KEY, APR_HASH_KEY_STRING);
    if (!pid) {
        pid = apr_palloc(dbd->pool, sizeof(*pid));
        apr_hash_set(dbd->prepared, SESSION_KEY, APR_HASH_KEY_STRING, pid);
    }
    *pid = PQbackendPID(conn);
}

/*
 * 1 when PostgreSQL has closed an idle pooled session (a restart, a
 * failover, pg_terminate_backend): the server's goodbye and the EOF are
 * already in the socket, and PQconsumeInput, which never blocks, reads
 * them. mod_dbd's own check only looks at libpq's cached status, which
 * stays "OK" until a statement fails.
 */
static int session_lost(ap_dbd_t *dbd)
{
    PGconn *conn = pg_conn(dbd);

    if (!conn) {
        return 0;
    }
    /* the goodbye (an ErrorResponse) and the EOF can take two reads: one
     * read returns the message and libpq still says "OK", and the next
     * statement met the EOF ("server closed the connection
     * unexpectedly", a 503 for a write, seen after PostgreSQL restarts).
     * An idle session has nothing to read: read while the socket does. */
    for (int i = 0; i < 4; i++) {
        struct pollfd pfd = { PQsocket(conn), POLLIN, 0 };
        if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK) {
            return 1;
        }
        if (pfd.fd < 0 || poll(&pfd, 1, 0) != 1) {
            return 0;
        }
    }
    return 0;
}

/* 1 when the session changed since its statements were prepared. */
static int session_was_reset(ap_dbd_t *dbd)
{
    PGconn *conn = pg_conn(dbd);
    const int *pid;

    if (!conn) {
        return 0;
    }
    pid = apr_hash_get(dbd->prepared, SESSION_KEY, APR_HASH_KEY_STRING);
    if (!pid) {
        remember_session(dbd);
        return 0;
    }
    return *pid != PQbackendPID(conn);
}

/* The pool that holds the statements reprepare() made, in the connection's
 * statement table under a key no label can take (as SESSION_KEY). */
#define STMT_POOL_KEY " ecom statement pool"

/*
 * When PostgreSQL restarts, mod_dbd's connection check (PQreset) silently
 * reconnects a pooled connection, but server-side prepared statements died
 * with the old session. Prepare them again on this connection.
 *
 * They are made in a subpool of the connection's pool, one per
 * reprepare: the connection lives as long as the child, and preparing in
 * its own pool kept every generation of statements (156 of them, about
 * 330 to 500 kB per child per PostgreSQL restart: t/65-pg-restart.t). The
 * previous subpool is destroyed once every label points into the new one;
 * when a prepare failed (PostgreSQL gone again) its label keeps the old
 * statement, which a later reprepare replaces (running it meanwhile gives
 * 26000 and another reprepare), so the old subpool is kept then.
 */
static int reprepare(const server_rec *s, const request_rec *r,
                     ap_dbd_t *dbd)
{
    stmt_iter it = { NULL, NULL };
    const ecom_stmt *st;
    int failures = 0;
    apr_pool_t *old = apr_hash_get(dbd->prepared, STMT_POOL_KEY,
                                   APR_HASH_KEY_STRING);
    apr_pool_t *sp;

    if (apr_pool_create(&sp, dbd->pool) != APR_SUCCESS) {
        return 0;
    }
    apr_pool_tag(sp, "ecom_statements");
    verbose_errors(dbd);
    while ((st = next_stmt(&it))) {
        apr_dbd_prepared_t *stmt = NULL;
        if (apr_dbd_prepare(dbd->driver, sp, dbd->handle, st->sql,
                            st->label, &stmt) == 0) {
            apr_hash_set(dbd->prepared, st->label, APR_HASH_KEY_STRING, stmt);
        }
        else {
            failures++;
        }
    }
    apr_hash_set(dbd->prepared, STMT_POOL_KEY, APR_HASH_KEY_STRING, sp);
    if (old && failures == 0) {
        apr_pool_destroy(old);
    }
    remember_session(dbd);
    if (r) {
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "ECOM0107: database "
                      "session was reset; statements prepared again (%d "
                      "failed)", failures);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "ECOM0107: database "
                     "session was reset; statements prepared again for a "
                     "background job (%d failed)", failures);
    }
    return failures == 0;
}

/* Reconnects a broken connection (PQreset through apr_dbd_check_conn) and
 * prepares the statements again. r: the request, NULL for a background
 * job. Returns 1 when the connection works. */
static int reconnect_dbd(const server_rec *s, const request_rec *r,
                         apr_pool_t *p, ap_dbd_t *dbd)
{
    return apr_dbd_check_conn(dbd->driver, p, dbd->handle) == APR_SUCCESS
           && reprepare(s, r, dbd);
}

static int reconnect(ecom_req *q)
{
    return reconnect_dbd(q->r->server, q->r, q->r->pool, q->dbd);
}

/*
 * A pooled connection made fit for the module's statements as it is taken,
 * by a request (ecom_db_acquire) or a background job (job_dbd_open): a
 * session PostgreSQL closed while it sat in the pool is reconnected and
 * its statements prepared again (found dead before anything was sent, so a
 * write never meets a dead session it could not retry); a session mod_dbd's
 * check (PQreset) already replaced gets its statements prepared again.
 * r: the request, NULL for a job. Returns 1 when ready; 0 when a replaced
 * session's statements could not all be prepared (a request's statement
 * that finds its own missing prepares them again: retry_after); -1 when
 * the lost session could not be reconnected and prepared.
 */
static int session_repair(const server_rec *s, const request_rec *r,
                          apr_pool_t *p, ap_dbd_t *dbd)
{
    if (session_lost(dbd)) {
        return reconnect_dbd(s, r, p, dbd) ? 1 : -1;
    }
    if (session_was_reset(dbd)) {
        return reprepare(s, r, dbd);
    }
    return 1;
}

/*
 * The child's queue for connections (EcomDBConcurrency N): at most N of a
 * child's requests hold a connection at once, and the others get their
 * turn in the order they asked. mod_dbd's pool (apr_reslist) hands a
 * returned connection to whichever thread takes its mutex first, so a
 * thread that arrives just then overtakes one that has waited for many
 * turns: at 32 connections on a pool of 4 most requests waited a few ms
 * and one in a hundred 50 to 100 ms (README, "The tail of the latency").
 * With N at most DBDMax a request that has its turn finds a connection
 * free in mod_dbd's pool (a background job's connection aside), so every
 * wait happens here, first come first served: a turn is handed straight
 * to the oldest waiter, never left for a newcomer to take. A wait is
 * bounded by EcomDBQueueTimeout (then 503 with Retry-After, ECOM0135).
 * Each waiter sleeps on a condition of its own (kept for reuse: at most
 * one per thread of the child), so a turn wakes one thread, not all.
 */
typedef struct queue_waiter {
    struct queue_waiter *next;
    apr_thread_cond_t *cond;
    int turn;                  /* handed a turn by queue_leave() */
} queue_waiter;

static struct {
    apr_thread_mutex_t *mutex; /* NULL: no queue (EcomDBConcurrency 0) */
    apr_pool_t *pool;          /* the child's: spare waiters */
    int free;                  /* turns nobody holds */
    apr_interval_time_t timeout;
    queue_waiter *head, *tail; /* waiting, oldest first */
    queue_waiter *spare;
} db_queue;

static void queue_init(apr_pool_t *pchild, server_rec *s)
{
    const ecom_srv_conf *sc = ap_get_module_config(s->module_config,
                                                   &ecom_module);

    memset(&db_queue, 0, sizeof(db_queue));
    if (sc->db_concurrency <= 0
        || apr_thread_mutex_create(&db_queue.mutex, APR_THREAD_MUTEX_DEFAULT,
                                   pchild) != APR_SUCCESS) {
        db_queue.mutex = NULL;
        return;
    }
    db_queue.pool = pchild;
    db_queue.free = sc->db_concurrency;
    db_queue.timeout = apr_time_from_sec(sc->db_queue_timeout);
}

/* Unlinks w from the waiting list (it timed out); under the mutex. */
static void queue_unlink(queue_waiter *w)
{
    queue_waiter **pp = &db_queue.head, *prev = NULL;

    while (*pp && *pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = w->next;
        if (db_queue.tail == w) {
            db_queue.tail = prev;
        }
    }
}

/* Waits for a turn and marks the request as holding it (q->db_turn, until
 * queue_leave); 0 when EcomDBQueueTimeout ran out (or the child could not
 * make a condition). Without a queue every request has its turn. A
 * request without a connection holds no turn (ecom_db_release and a
 * failed open both leave), so a turn is asked for once per connection. */
static int queue_enter(ecom_req *q)
{
    queue_waiter *w;
    apr_time_t until;
    int turn;

    if (!db_queue.mutex) {
        q->db_turn = 1;
        return 1;
    }
    apr_thread_mutex_lock(db_queue.mutex);
    if (db_queue.free > 0 && !db_queue.head) {
        db_queue.free--;
        apr_thread_mutex_unlock(db_queue.mutex);
        q->db_turn = 1;
        return 1;
    }
    if ((w = db_queue.spare) != NULL) {
        db_queue.spare = w->next;
    }
    else {
        w = apr_pcalloc(db_queue.pool, sizeof(*w));
        if (apr_thread_cond_create(&w->cond, db_queue.pool) != APR_SUCCESS) {
            apr_thread_mutex_unlock(db_queue.mutex);
            return 0;
        }
    }
    w->next = NULL;
    w->turn = 0;
    if (db_queue.tail) {
        db_queue.tail->next = w;
    }
    else {
        db_queue.head = w;
    }
    db_queue.tail = w;
    until = apr_time_now() + db_queue.timeout;
    while (!w->turn) {
        apr_interval_time_t left = until - apr_time_now();
        if (left <= 0) {
            break;
        }
        apr_thread_cond_timedwait(w->cond, db_queue.mutex, left);
    }
    turn = w->turn;
    if (!turn) {
        queue_unlink(w);
    }
    w->next = db_queue.spare;
    db_queue.spare = w;
    apr_thread_mutex_unlock(db_queue.mutex);
    if (!turn) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r, "ECOM0135: no "
                      "turn for a database connection within %" APR_TIME_T_FMT
                      " s (EcomDBQueueTimeout)",
                      apr_time_sec(db_queue.timeout));
    }
    q->db_turn = turn;
    return turn;
}

/* Hands the request's turn to the oldest waiter, or back to the queue. */
static void queue_leave(ecom_req *q)
{
    queue_waiter *w;

    if (!q->db_turn) {
        return;
    }
    q->db_turn = 0;
    if (!db_queue.mutex) {
        return;
    }
    apr_thread_mutex_lock(db_queue.mutex);
    if ((w = db_queue.head) != NULL) {
        db_queue.head = w->next;
        if (!db_queue.head) {
            db_queue.tail = NULL;
        }
        w->turn = 1;
        apr_thread_cond_signal(w->cond);
    }
    else {
        db_queue.free++;
    }
    apr_thread_mutex_unlock(db_queue.mutex);
}

/* The request's pool cleanup: a connection still held (a handler that
 * returned early, an aborted request) goes back to mod_dbd's pool, after
 * a rollback of anything left open. */
static apr_status_t release_cleanup(void *data)
{
    ecom_db_release(data);
    return APR_SUCCESS;
}

void ecom_db_release(ecom_req *q)
{
    if (!q->dbd) {
        return;
    }
    if (q->in_tx) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r, "ECOM0114: route "
                      "%s handed its connection back inside a transaction; "
                      "rolled back", q->route ? q->route->name : "-");
        ecom_db_rollback(q);
    }
    dbd_close_fn(q->r->server, q->dbd);
    q->dbd = NULL;
    queue_leave(q);
}

/* Takes a connection from mod_dbd's pool for this request, until
 * ecom_db_release() (see the top: held only while statements run); with
 * EcomDBConcurrency, after a turn of the child's queue. */
static ecom_err acquire(ecom_req *q)
{
    if (q->db_unreachable) {
        return ECOM_E_UNAVAILABLE;
    }
    if (!q->dbd) {
        apr_time_t t0 = apr_time_now();
        if (!queue_enter(q)) {
            ecom_metrics_db_wait(q, apr_time_now() - t0, 0);
            return ECOM_E_BUSY;
        }
        q->dbd = dbd_open_fn && dbd_close_fn
                 ? dbd_open_fn(q->r->pool, q->r->server) : NULL;
        ecom_metrics_db_wait(q, apr_time_now() - t0, q->dbd != NULL);
        if (q->dbd && !q->release_cleanup) {
            apr_pool_cleanup_register(q->r->pool, q, release_cleanup,
                                      apr_pool_cleanup_null);
            q->release_cleanup = 1;
        }
        if (!q->dbd) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r,
                          "ECOM0102: no database connection");
            queue_leave(q);
            q->db_unreachable = 1;
            return ECOM_E_UNAVAILABLE;
        }
        verbose_errors(q->dbd);
        if (session_repair(q->r->server, q->r, q->r->pool, q->dbd) < 0) {
            q->db_unreachable = 1;
            return ECOM_E_UNAVAILABLE;
        }
    }
    return ECOM_OK;
}

typedef enum {
    DBE_GONE,        /* the session is lost */
    DBE_BUSY,        /* a bounded wait ran out */
    DBE_NO_STMT,     /* the prepared statement does not exist (26000) */
    DBE_DUPLICATE,   /* 23505 */
    DBE_INTEGRITY,   /* other class 23 */
    DBE_OTHER
} dberr;

static dberr classify(ecom_req *q, int rv)
{
    const char *msg = apr_dbd_error(q->dbd->driver, q->dbd->handle, rv);
    char state[6];

    if (ecom_pg_sqlstate(msg, state) != 0) {
        /* libpq's own errors: the socket broke, or no server at all */
        return DBE_GONE;
    }
    if (!strncmp(state, "08", 2) || !strcmp(state, "57P01")
        || !strcmp(state, "57P02") || !strcmp(state, "57P03")) {
        return DBE_GONE;
    }
    if (!strcmp(state, "57014") || !strcmp(state, "55P03")
        || !strcmp(state, "40P01") || !strcmp(state, "40001")
        || !strcmp(state, "53300")) {
        return DBE_BUSY;
    }
    if (!strcmp(state, "26000")) {
        return DBE_NO_STMT;
    }
    if (!strcmp(state, "23505")) {
        return DBE_DUPLICATE;
    }
    if (!strncmp(state, "23", 2)) {
        return DBE_INTEGRITY;
    }
    return DBE_OTHER;
}

/* A failure's text for the log, without row values: "SQLSTATE s[,
 * constraint c]: primary message" (libpq's own first line when the server
 * sent none; it holds no server data). */
static const char *failure_text(apr_pool_t *p, apr_dbd_t *handle,
                                const apr_dbd_driver_t *driver, int rv)
{
    const char *msg = apr_dbd_error(driver, handle, rv);
    char state[6] = "-----", primary[256] = "", constraint[128] = "";

    ecom_pg_sqlstate(msg, state);
    if (ecom_pg_primary(msg, primary, sizeof(primary)) != 0 && msg) {
        size_t n = strcspn(msg, "\r\n");
        apr_cpystrn(primary, msg, n + 1 < sizeof(primary) ? n + 1
                                                         : sizeof(primary));
    }
    ecom_pg_field(msg, "CONSTRAINT NAME", constraint, sizeof(constraint));
    return apr_psprintf(p, "SQLSTATE %s%s%s: %s", state,
                        *constraint ? ", constraint " : "", constraint,
                        primary);
}

static void log_failure(ecom_req *q, int level, const char *label, int rv)
{
    ap_log_rerror(APLOG_MARK, level, 0, q->r,
                  "ECOM0105: statement %s failed: %s", label,
                  failure_text(q->r->pool, q->dbd->handle, q->dbd->driver, rv));
}

/* Classifies a failure into its kind and logs it, once. */
static ecom_err failed_kind(ecom_req *q, const char *label, int rv)
{
    switch (classify(q, rv)) {
    case DBE_GONE:
    case DBE_NO_STMT:
        /* mod_dbd checks (and if need be replaces) the connection when
         * the next request acquires it */
        log_failure(q, APLOG_WARNING, label, rv);
        return ECOM_E_UNAVAILABLE;
    case DBE_BUSY:
        log_failure(q, APLOG_WARNING, label, rv);
        return ECOM_E_BUSY;
    case DBE_DUPLICATE:
        log_failure(q, APLOG_INFO, label, rv);
        return ECOM_E_CONFLICT;
    case DBE_INTEGRITY:
        log_failure(q, APLOG_INFO, label, rv);
        return ECOM_E_CONSTRAINT;
    default:
        log_failure(q, APLOG_ERR, label, rv);
        return ECOM_E_INTERNAL;
    }
}

/* The same, counted (ecom_metrics.c). */
static ecom_err failed(ecom_req *q, const char *label, int rv)
{
    ecom_err e = failed_kind(q, label, rv);

    ecom_metrics_db_error(q, e);
    return e;
}

static apr_dbd_prepared_t *statement(ecom_req *q, const char *label)
{
    return apr_hash_get(q->dbd->prepared, label, APR_HASH_KEY_STRING);
}

static ecom_err missing(ecom_req *q, const char *label)
{
    /* Prepared statements are missing when preparing failed on this
     * connection, e.g. the schema is not migrated. */
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r,
                  "ECOM0106: prepared statement %s is not available (is the "
                  "schema migrated?)", label);
    ecom_metrics_db_error(q, ECOM_E_INTERNAL);
    return ECOM_E_INTERNAL;
}

/*
 * Decides whether a failed statement is worth a second try on the same
 * pooled connection. Never inside a transaction (the transaction is lost
 * with the session, and a retry would run outside it). Only when the first
 * try cannot have changed anything:
 *  - its prepared statement was missing (the session was reset): the
 *    statement never ran;
 *  - the session died and the statement is a read.
 * Returns 1 when the statement should be run again.
 */
static int retry_after(ecom_req *q, const char *label, int rv)
{
    const ecom_stmt *st;

    if (!rv || q->in_tx) {
        return 0;
    }
    switch (classify(q, rv)) {
    case DBE_NO_STMT:
        return reprepare(q->r->server, q->r, q->dbd);
    case DBE_GONE:
        st = find_stmt(label);
        if (st && (st->flags & ECOM_STMT_READ)) {
            return reconnect(q);
        }
        /* a write: reconnect for the next request, answer 503 now */
        return 0;
    default:
        return 0;
    }
}

ecom_err ecom_db_select(ecom_req *q, const char *label,
                        apr_dbd_results_t **res, int nargs, const char **args)
{
    apr_dbd_prepared_t *st;
    ecom_err e;
    int rv;

    if ((e = acquire(q))) {
        return e;
    }
    if (!(st = statement(q, label))) {
        return missing(q, label);
    }
    *res = NULL;
    rv = apr_dbd_pselect(q->dbd->driver, q->r->pool, q->dbd->handle, res, st,
                         1, nargs, args);
    if (retry_after(q, label, rv)) {
        *res = NULL;
        rv = apr_dbd_pselect(q->dbd->driver, q->r->pool, q->dbd->handle, res,
                             statement(q, label), 1, nargs, args);
    }
    return rv ? failed(q, label, rv) : 0;
}

ecom_err ecom_db_query(ecom_req *q, const char *label, int *nrows,
                       int nargs, const char **args)
{
    apr_dbd_prepared_t *st;
    ecom_err e;
    int rv, n = 0;

    if ((e = acquire(q))) {
        return e;
    }
    if (!(st = statement(q, label))) {
        return missing(q, label);
    }
    rv = apr_dbd_pquery(q->dbd->driver, q->r->pool, q->dbd->handle, &n, st,
                        nargs, args);
    if (retry_after(q, label, rv)) {
        rv = apr_dbd_pquery(q->dbd->driver, q->r->pool, q->dbd->handle, &n,
                            statement(q, label), nargs, args);
    }
    if (nrows) {
        *nrows = n;
    }
    return rv ? failed(q, label, rv) : ECOM_OK;
}

ecom_err ecom_db_one(ecom_req *q, const char *label, apr_dbd_row_t **row,
                     int nargs, const char **args)
{
    apr_dbd_results_t *res = NULL;
    ecom_err e = ecom_db_select(q, label, &res, nargs, args);

    *row = NULL;
    if (e) {
        return e;
    }
    *row = ecom_db_row(q, res);
    return *row ? ECOM_OK : ECOM_E_NOT_FOUND;
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

int ecom_db_bool(ecom_req *q, apr_dbd_row_t *row, int col)
{
    const char *v = ecom_db_get(q, row, col);

    return v && v[0] == 't';
}

const char *ecom_db_time(ecom_req *q, apr_dbd_row_t *row, int col)
{
    char *buf = apr_palloc(q->r->pool, ECOM_RFC3339_LEN);

    ecom_rfc3339(ecom_db_ll(q, row, col), buf);
    return buf;
}

/* EC_RATING's "<key>/<count>" (PRODUCT_RATING): {"average", "count"}, the
 * average null without ratings; a value of another shape gives NULL */
static json_t *rating_json(const char *v)
{
    char *end;
    long key = strtol(v, &end, 10), count;

    if (end == v || *end != '/') {
        return NULL;
    }
    v = end + 1;
    count = strtol(v, &end, 10);
    if (end == v || *end) {
        return NULL;
    }
    return json_pack("{s:o,s:I}", "average",
                     count > 0 && key >= 0 ? json_real(key / 100.0) : json_null(),
                     "count", (json_int_t)count);
}

json_t *ecom_row_json(ecom_req *q, apr_dbd_row_t *row, const ecom_col *cols,
                      int first_col)
{
    json_t *o = ecom_jobject(q);
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
            case EC_JSON:
                /* PostgreSQL's own output of a json value: always valid */
                jv = json_loads(v, JSON_DECODE_ANY, NULL);
                break;
            case EC_RATING:
                jv = rating_json(v);
                break;
            default:
                jv = json_string(v);
                break;
            }
        }
        /* the names are the code's own ASCII constants */
        json_object_set_new_nocheck(o, cols[i].name, jv ? jv : json_null());
    }
    return o;
}

/* Runs one of the constant transaction-control statements. */
static int control(ecom_req *q, const char *sql)
{
    int n = 0;

    return apr_dbd_query(q->dbd->driver, q->dbd->handle, &n, sql);
}

ecom_err ecom_db_begin(ecom_req *q)
{
    ecom_err e;
    int rv;

    if ((e = acquire(q))) {
        return e;
    }
    rv = control(q, "BEGIN");
    if (rv) {
        /* a pooled session that died while idle: nothing has run yet, so
         * reconnect and begin again */
        if (classify(q, rv) == DBE_GONE && reconnect(q)) {
            rv = control(q, "BEGIN");
        }
        if (rv) {
            return failed(q, "BEGIN", rv);
        }
    }
    /* a request never hands its connection back inside a transaction:
     * ecom_db_release() and its pool cleanup roll back what is open */
    q->in_tx = 1;
    return ECOM_OK;
}

ecom_err ecom_db_commit(ecom_req *q)
{
    int rv;

    if (!q->in_tx) {
        return ECOM_OK;
    }
    rv = control(q, "COMMIT");
    q->in_tx = 0;
    /* when the session died during COMMIT the outcome is unknown:
     * UNAVAILABLE (a client that sent an Idempotency-Key can safely retry
     * with it) */
    return rv ? failed(q, "COMMIT", rv) : ECOM_OK;
}

void ecom_db_rollback(ecom_req *q)
{
    if (q->in_tx) {
        q->in_tx = 0;
        control(q, "ROLLBACK");
    }
}

ecom_err ecom_db_savepoint(ecom_req *q)
{
    int rv = control(q, "SAVEPOINT ecom_sp");

    return rv ? failed(q, "SAVEPOINT", rv) : ECOM_OK;
}

ecom_err ecom_db_rollback_to_savepoint(ecom_req *q)
{
    int rv = control(q, "ROLLBACK TO SAVEPOINT ecom_sp");

    return rv ? failed(q, "ROLLBACK TO SAVEPOINT", rv) : ECOM_OK;
}

/* The body's end against the answer it set (see ecom_db.h): returns the
 * end to act on, logging a body that broke the contract. */
static ecom_err checked_end(ecom_req *q, ecom_tx_end end)
{
    int answered_error = q->status >= 400;

    if (end.err == ECOM_OK && answered_error) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "ECOM0110: a "
                      "transaction body asked to commit after setting a %d "
                      "answer: rolled back", q->status);
        return ECOM_E_INTERNAL;
    }
    if (end.err == ECOM_E_REFUSED && !answered_error) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "ECOM0111: a "
                      "transaction body refused without setting an error "
                      "answer: rolled back");
        return ECOM_E_INTERNAL;
    }
    if (end.keep && (end.err != ECOM_E_REFUSED || q->status >= 500)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "ECOM0112: a "
                      "transaction body asked to commit with a refusal "
                      "but set a %d answer: rolled back", q->status);
        return ECOM_E_INTERNAL;
    }
    return end.err;
}

ecom_err ecom_db_tx(ecom_req *q, ecom_tx_fn fn, void *ctx)
{
    ecom_tx_end end;
    ecom_err e;

    if (q->in_tx) {
        /* the outer transaction's owner commits or rolls back; a refusal
         * to keep tells it so (ecom_idem_run) */
        end = fn(q, ctx);
        e = checked_end(q, end);
        if (e == ECOM_E_REFUSED && end.keep) {
            q->keep_refusal = 1;
        }
        return e;
    }
    if ((e = ecom_db_begin(q))) {
        return e;
    }
    end = fn(q, ctx);
    e = checked_end(q, end);
    if (e == ECOM_E_REFUSED && end.keep) {
        /* the refusal's record is kept: commit it, answer the refusal */
        return (e = ecom_db_commit(q)) ? e : ECOM_E_REFUSED;
    }
    if (e) {
        ecom_db_rollback(q);
        return e;
    }
    return ecom_db_commit(q);
}

ecom_err ecom_db_tx_single(ecom_req *q, ecom_tx_fn fn, void *ctx)
{
    ecom_tx_end end;

    if (q->in_tx) {
        return ecom_db_tx(q, fn, ctx);
    }
    end = fn(q, ctx);
    if (end.keep) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "ECOM0113: a "
                      "single-statement body asked to keep a refusal");
        return ECOM_E_INTERNAL;
    }
    return checked_end(q, end);
}

/*
 * Housekeeping from mod_watchdog (mod_ecom.c): expired or revoked tokens
 * and idempotency records past their 24 hours are deleted in batches, so
 * the tables stay the size of what is live. An advisory lock makes the
 * hosts sharing one database take turns; a host that finds it taken skips
 * this round.
 */
static const ecom_stmt db_sql[] = {
    { "ecom_ping", "SELECT 1", ECOM_STMT_READ },
    { "ecom_purge_lock", "SELECT pg_try_advisory_lock(7316001)", 0 },
    { "ecom_purge_unlock", "SELECT pg_advisory_unlock(7316001)", 0 },
    { "ecom_purge_tokens",
      "DELETE FROM auth_tokens WHERE id IN (SELECT id FROM auth_tokens "
      "WHERE expires_at < now() OR revoked_at IS NOT NULL LIMIT 10000)", 0 },
    { "ecom_purge_idem",
      "DELETE FROM idempotency_keys WHERE (user_id, key) IN "
      "(SELECT user_id, key FROM idempotency_keys "
      "WHERE created_at < now() - interval '24 hours' LIMIT 10000)", 0 },
    /* expired password reset tokens (used ones too, once past their
     * expiry), their outbox rows with them (issue 9, sql/016) */
    { "ecom_purge_resets",
      "DELETE FROM password_resets WHERE id IN (SELECT id FROM "
      "password_resets WHERE expires_at < now() LIMIT 10000)", 0 },
    /* the payment timeout: one transaction per batch, safe to run from
     * any number of processes and hosts at once (sql/007_payment_timeout.sql) */
    { "ecom_expire_orders",
      "SELECT ecom_expire_pending_orders(%s::int, %s::int)", 0 },
    /* a long job's statement without the session's statement_timeout
     * (DBDParams), then restored (SET cannot be prepared: set_config; the
     * first returns the value the second restores) */
    { "ecom_job_no_timeout",
      "SELECT current_setting('statement_timeout'), "
      "set_config('statement_timeout', '0', false)", 0 },
    { "ecom_job_timeout",
      "SELECT set_config('statement_timeout', %s, false)", 0 },
    { NULL, NULL, 0 }
};

/* Orders cancelled per transaction of the payment timeout. */
#define EXPIRE_BATCH 500

static int purge_select_bool(apr_pool_t *p, ap_dbd_t *dbd, const char *label)
{
    apr_dbd_prepared_t *st = apr_hash_get(dbd->prepared, label,
                                          APR_HASH_KEY_STRING);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *v = NULL;

    if (!st || apr_dbd_pselect(dbd->driver, p, dbd->handle, &res, st, 1, 0,
                               NULL) != 0) {
        return -1;
    }
    if (apr_dbd_get_row(dbd->driver, p, res, &row, -1) == 0) {
        v = apr_dbd_get_entry(dbd->driver, row, 0);
    }
    return v && v[0] == 't';
}

/* Deletes in batches until a batch comes back short; returns the count or
 * -1 on failure. */
static long purge_table(server_rec *s, apr_pool_t *p, ap_dbd_t *dbd,
                        const char *label)
{
    apr_dbd_prepared_t *st = apr_hash_get(dbd->prepared, label,
                                          APR_HASH_KEY_STRING);
    long total = 0;
    int n, rv;

    if (!st) {
        return -1;
    }
    do {
        n = 0;
        rv = apr_dbd_pquery(dbd->driver, p, dbd->handle, &n, st, 0, NULL);
        if (rv) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "ECOM0130: purge %s failed: %s", label,
                         failure_text(p, dbd->handle, dbd->driver, rv));
            return -1;
        }
        total += n;
    } while (n >= 10000);
    return total;
}

/* ---- background jobs' connections and the child's exit ----
 *
 * A job (on one of mod_watchdog's two threads, mod_ecom.c: purge, payment
 * timeout, recommendations refresh, prices, sale edges, search statistics;
 * each thread holds one at most) holds a connection of mod_dbd's pool while
 * its statements run, a refresh for many seconds. When the child exits,
 * mod_dbd's connection pool lives in a subpool of the child's pool, which
 * APR destroys before the child pool's own cleanups run, mod_watchdog's
 * joining of its threads among them: a connection still out then fails
 * apr_reslist's "ntotal == 0" assertion and the child aborts (seen at the
 * end of a benchmark and of a cluster test). So every job connection is
 * registered here, and a pre-cleanup of the child pool (run before any
 * subpool goes) refuses new job connections, cancels the statements in
 * flight (PQcancel, the thread-safe way) and waits, at most JOB_DRAIN_WAIT,
 * for the jobs to give their connections back. */
#define JOB_MAX 8
#define JOB_DRAIN_WAIT apr_time_from_sec(5)

static apr_thread_mutex_t *job_mutex;
static ap_dbd_t *job_conns[JOB_MAX];
static volatile int job_stopping;

static void job_dbd_close(server_rec *s, ap_dbd_t *dbd);

static ap_dbd_t *job_dbd_open(apr_pool_t *p, server_rec *s)
{
    ap_dbd_t *dbd;
    int i;

    if (job_stopping || !dbd_open_fn || !dbd_close_fn
        || !(dbd = dbd_open_fn(p, s))) {
        return NULL;
    }
    if (job_mutex) {
        apr_thread_mutex_lock(job_mutex);
        i = 0;
        while (i < JOB_MAX && job_conns[i]) {
            i++;
        }
        if (i < JOB_MAX && !job_stopping) {
            job_conns[i] = dbd;
        }
        else {
            apr_thread_mutex_unlock(job_mutex);
            dbd_close_fn(s, dbd);
            return NULL;
        }
        apr_thread_mutex_unlock(job_mutex);
    }
    /* A job's connection gets a request's repairs (session_repair): after
     * PostgreSQL restarted, a job on a replaced session failed every run
     * until a request happened to take the same pooled connection; on the
     * tests' second shop, which serves few requests, the payment timeout
     * stopped for as long as that took (t/37-expiry.t). No statement of a
     * job retries, so a job runs only when every statement is there.
     * Registered first: the child's exit can cancel the prepares. */
    if (session_repair(s, NULL, p, dbd) != 1) {
        job_dbd_close(s, dbd);
        return NULL;
    }
    return dbd;
}

static void job_dbd_close(server_rec *s, ap_dbd_t *dbd)
{
    int i;

    if (job_mutex) {
        apr_thread_mutex_lock(job_mutex);
        for (i = 0; i < JOB_MAX; i++) {
            if (job_conns[i] == dbd) {
                job_conns[i] = NULL;
            }
        }
        apr_thread_mutex_unlock(job_mutex);
    }
    dbd_close_fn(s, dbd);
}

static apr_status_t jobs_stop(void *data)
{
    server_rec *s = data;
    apr_time_t until = apr_time_now() + JOB_DRAIN_WAIT;
    int i, out;

    job_stopping = 1;
    do {
        out = 0;
        apr_thread_mutex_lock(job_mutex);
        for (i = 0; i < JOB_MAX; i++) {
            if (job_conns[i]) {
                PGconn *conn = apr_dbd_native_handle(job_conns[i]->driver,
                                                     job_conns[i]->handle);
                PGcancel *c = conn ? PQgetCancel(conn) : NULL;
                char err[256];

                if (c) {
                    PQcancel(c, err, sizeof(err));
                    PQfreeCancel(c);
                }
                out++;
            }
        }
        apr_thread_mutex_unlock(job_mutex);
        if (out) {
            apr_sleep(apr_time_from_msec(20));
        }
    } while (out && apr_time_now() < until);
    if (out) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ECOM0134: %d "
                     "background job(s) still hold a database connection "
                     "as the child exits", out);
    }
    return APR_SUCCESS;
}

void ecom_db_child_init(apr_pool_t *pchild, server_rec *s)
{
    queue_init(pchild, s);
    job_stopping = 0;
    if (apr_thread_mutex_create(&job_mutex, APR_THREAD_MUTEX_DEFAULT,
                                pchild) != APR_SUCCESS) {
        job_mutex = NULL;
        return;
    }
    apr_pool_pre_cleanup_register(pchild, s, jobs_stop);
}

apr_status_t ecom_db_purge(server_rec *s, apr_pool_t *p)
{
    ap_dbd_t *dbd;
    long tokens, keys, resets;
    int got;

    if (!(dbd = job_dbd_open(p, s))) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     "ECOM0131: purge skipped: no database connection");
        return APR_EGENERAL;
    }
    verbose_errors(dbd);
    got = purge_select_bool(p, dbd, "ecom_purge_lock");
    if (got != 1) {
        job_dbd_close(s, dbd);
        return got < 0 ? APR_EGENERAL : APR_SUCCESS;
    }
    tokens = purge_table(s, p, dbd, "ecom_purge_tokens");
    keys = purge_table(s, p, dbd, "ecom_purge_idem");
    /* expired guest carts (ecom_guest_cart.c), logged when it fails */
    purge_table(s, p, dbd, "ecom_purge_guest_carts");
    resets = purge_table(s, p, dbd, "ecom_purge_resets");
    purge_select_bool(p, dbd, "ecom_purge_unlock");
    job_dbd_close(s, dbd);
    if (tokens > 0 || keys > 0) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     "ECOM0132: purged %ld expired or revoked tokens and %ld "
                     "idempotency records", tokens > 0 ? tokens : 0,
                     keys > 0 ? keys : 0);
    }
    if (resets > 0) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     "ECOM0133: purged %ld expired password reset tokens",
                     resets);
    }
    return (tokens < 0 || keys < 0 || resets < 0) ? APR_EGENERAL
                                                  : APR_SUCCESS;
}

/* One batch of the payment timeout: the number of orders it cancelled, or
 * -1 (logged). */
static long expire_batch(server_rec *s, apr_pool_t *p, ap_dbd_t *dbd,
                         int timeout)
{
    apr_dbd_prepared_t *st = apr_hash_get(dbd->prepared, "ecom_expire_orders",
                                          APR_HASH_KEY_STRING);
    const char *args[2] = { apr_itoa(p, timeout), apr_itoa(p, EXPIRE_BATCH) };
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *v = NULL;
    int rv;

    if (!st) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "ECOM0902: prepared "
                     "statement ecom_expire_orders is not available (is the "
                     "schema migrated?)");
        return -1;
    }
    rv = apr_dbd_pselect(dbd->driver, p, dbd->handle, &res, st, 1, 2, args);
    if (rv) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "ECOM0903: cancelling unpaid orders failed: %s",
                     failure_text(p, dbd->handle, dbd->driver, rv));
        return -1;
    }
    /* read to the end: the result is freed and the connection clean */
    while (apr_dbd_get_row(dbd->driver, p, res, &row, -1) == 0) {
        v = apr_pstrdup(p, apr_dbd_get_entry(dbd->driver, row, 0));
    }
    return v ? apr_atoi64(v) : 0;
}

apr_status_t ecom_db_expire_orders(server_rec *s, apr_pool_t *p, int timeout)
{
    ap_dbd_t *dbd;
    long total = 0, n;

    if (timeout <= 0) {
        return APR_SUCCESS;
    }
    if (!(dbd = job_dbd_open(p, s))) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "ECOM0904: unpaid orders "
                     "not checked: no database connection");
        return APR_EGENERAL;
    }
    verbose_errors(dbd);
    do {
        n = expire_batch(s, p, dbd, timeout);
        total += n > 0 ? n : 0;
    } while (n >= EXPIRE_BATCH);
    job_dbd_close(s, dbd);
    if (total > 0) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "ECOM0901: cancelled and "
                     "restocked %ld pending orders unpaid for %d seconds "
                     "(EcomPaymentTimeout)", total, timeout);
    }
    return n < 0 ? APR_EGENERAL : APR_SUCCESS;
}

/* The data layer's own statements: the health ping, the purge and the
 * payment timeout. */
const ecom_resource ecom_db_resource = { "db", db_sql, NULL, NULL };

ecom_err ecom_db_ping(ecom_req *q)
{
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, "ecom_ping", &row, 0, NULL);

    return e == ECOM_E_NOT_FOUND ? ECOM_E_UNAVAILABLE : e;
}

/* issue 10, background jobs of other files (ecom_dynprice.c,
 * ecom_pricing.c, ecom_recs.c): statements outside any request. */
ap_dbd_t *ecom_db_job_open(server_rec *s, apr_pool_t *p, const char *label)
{
    ap_dbd_t *dbd;

    if (!(dbd = job_dbd_open(p, s))) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "ECOM2403: %s skipped: "
                     "no database connection", label);
        return NULL;
    }
    verbose_errors(dbd);
    return dbd;
}

void ecom_db_job_close(server_rec *s, ap_dbd_t *dbd)
{
    job_dbd_close(s, dbd);
}

apr_status_t ecom_db_job_run(server_rec *s, apr_pool_t *p, ap_dbd_t *dbd,
                             const char *label, int nargs, const char **args,
                             int ncols, const char **out)
{
    apr_dbd_prepared_t *st;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv, got = 0;

    if (!(st = apr_hash_get(dbd->prepared, label, APR_HASH_KEY_STRING))) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "ECOM2404: prepared "
                     "statement %s is not available (is the schema "
                     "migrated?)", label);
        return APR_EGENERAL;
    }
    /* random access (1): apr_dbd_pgsql's sequential results report a
     * failed statement as no rows, so a job failed without a word */
    rv = apr_dbd_pselect(dbd->driver, p, dbd->handle, &res, st, 1, nargs,
                         args);
    if (rv) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "ECOM2405: %s failed: %s", label,
                     failure_text(p, dbd->handle, dbd->driver, rv));
        return APR_EGENERAL;
    }
    /* read to the end: the result is freed and the connection clean */
    while (apr_dbd_get_row(dbd->driver, p, res, &row, -1) == 0) {
        for (int i = 0; !got && i < ncols; i++) {
            const char *v = apr_dbd_get_entry(dbd->driver, row, i);
            out[i] = v ? apr_pstrdup(p, v) : NULL;
        }
        got = 1;
    }
    return got ? APR_SUCCESS : APR_NOTFOUND;
}

apr_status_t ecom_db_job_row(server_rec *s, apr_pool_t *p, const char *label,
                             int nargs, const char **args, int ncols,
                             const char **out)
{
    ap_dbd_t *dbd = ecom_db_job_open(s, p, label);
    apr_status_t rv;

    if (!dbd) {
        return APR_EGENERAL;
    }
    rv = ecom_db_job_run(s, p, dbd, label, nargs, args, ncols, out);
    ecom_db_job_close(s, dbd);
    return rv;
}

apr_status_t ecom_db_job_row_untimed(server_rec *s, apr_pool_t *p,
                                     const char *label, int nargs,
                                     const char **args, int ncols,
                                     const char **out)
{
    const char *old[1] = { NULL };
    ap_dbd_t *dbd = ecom_db_job_open(s, p, label);
    apr_status_t rv;

    if (!dbd) {
        return APR_EGENERAL;
    }
    rv = ecom_db_job_run(s, p, dbd, "ecom_job_no_timeout", 0, NULL, 1, old);
    if (rv == APR_SUCCESS) {
        rv = ecom_db_job_run(s, p, dbd, label, nargs, args, ncols, out);
    }
    if (old[0]) {
        ecom_db_job_run(s, p, dbd, "ecom_job_timeout", 1, old, 0, NULL);
    }
    ecom_db_job_close(s, dbd);
    return rv;
}
