/*
 * ecom_req.h: the per-request state every glue layer shares, and the
 * module record. Below the data layer (ecom_db.h) and the handler layer
 * (ecom_http.h): it renders nothing and runs nothing.
 *
 * A request's path: mod_ecom.c (handler) -> ecom_router.c (route, auth,
 * body; the routes come from the resource descriptors of ecom_registry.c)
 * -> a resource's handler -> ecom_db.c (prepared statements) ->
 * PostgreSQL, and back through ecom_http.c (JSON and problem+json).
 * The per-request state is one ecom_req, allocated from r->pool.
 */
#ifndef ECOM_REQ_H
#define ECOM_REQ_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_strings.h"
#include "apr_dbd.h"
#include "mod_dbd.h"

#include <jansson.h>

#include "ecom_config.h"

extern module AP_MODULE_DECLARE_DATA ecom_module;
#if defined(APLOG_USE_MODULE) && !defined(ECOM_MODULE_C)
APLOG_USE_MODULE(ecom);
#endif

struct ecom_route;

typedef struct ecom_req {
    request_rec *r;
    const ecom_dir_conf *dc;
    const ecom_srv_conf *sc;
    const struct ecom_route *route;  /* the matched route */
    apr_table_t *args;         /* decoded query string */
    long long id[2];           /* ids captured from the path */
    const char *slug;          /* the "{slug}" captured from the path
                                * (ecom_slug_valid), or NULL */
    const char *token_hash;    /* ECOM_AUTH_INLINE routes: the bearer
                                * token's SHA-256 (hex), until the route's
                                * statement resolves it into user_id */
    ap_dbd_t *dbd;             /* acquired on first use */
    int db_unreachable;        /* acquiring failed once: do not wait for
                                * the database twice in one request */
    int db_turn;               /* holds a turn of the child's connection
                                * queue (EcomDBConcurrency, ecom_db.c) */
    int in_tx;                 /* a BEGIN of ours is open on dbd */
    int release_cleanup;       /* the pool cleanup that hands dbd back is set */
    int keep_refusal;          /* a body inside the Idempotency-Key
                                * transaction ended ECOM_TX_COMMIT_REFUSAL:
                                * its 4xx answer is stored WITH its effect
                                * (ecom_db.h, ecom_idempotency.c) */
    unsigned cache_dirty;      /* cache sections to invalidate once the
                                * transaction commits */
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
    /* issue 9, guest carts (ecom_guest_cart.c): a cart route served to a
     * client without credentials by its Cart-Token (ECOM_GUEST) */
    int guest;                 /* 1: the caller is a guest cart */
    long long guest_cart_id;   /* its cart once resolved (POST /cart/
                                * resolves it in its statement), else 0 */
    const char *guest_hash;    /* SHA-256 (hex) of the Cart-Token sent, or
                                * of guest_new_token */
    const char *guest_new_token; /* POST /cart/ without a Cart-Token: the
                                  * token of the cart it creates */
    int guest_pending;         /* the Cart-Token (guest_hash) is left to
                                * the route's statement (ECOM_AUTH_INLINE
                                * GET routes, ecom_cart.h) until
                                * ecom_guest_resolved() */
    /* issue 9, accounts and roles (ecom_account.c), set by
     * ecom_authenticate and ecom_auth_caller; 0 on the ECOM_AUTH_INLINE
     * writes (cart add, checkout) resolved inline */
    long long token_id;        /* the bearer token's auth_tokens.id */
    int reads_all;             /* role staff or support: may read every
                                * order and user (is_staff: staff only) */
    /* issue 9, browser sessions (ecom_session.c): the token came from the
     * request's mod_session session, not an Authorization header */
    int via_session;
    /* the throttle's state of this request (ecom_throttle.c), or NULL */
    struct ecom_throttle_req *thr;
    /* issue 11, metrics (ecom_metrics.c): ECOM_EV_* events the request's
     * committed writes made, counted when it ends */
    unsigned metrics_events;
} ecom_req;

static inline apr_status_t ecom_json_cleanup(void *j)
{
    json_decref((json_t *)j);
    return APR_SUCCESS;
}

/* Ties j to the request pool (decref'd when the pool goes); returns j (a
 * NULL j, jansson out of memory, is returned as is). Every json_t the
 * module holds is owned this way from birth, so no error path decrefs. */
static inline json_t *ecom_jown(ecom_req *q, json_t *j)
{
    if (j) {
        apr_pool_cleanup_register(q->r->pool, j, ecom_json_cleanup,
                                  apr_pool_cleanup_null);
    }
    return j;
}
#define ecom_jobject(q) ecom_jown((q), json_object())
#define ecom_jarray(q)  ecom_jown((q), json_array())

/* Formats a long long into pool memory, for statement arguments. */
#define ECOM_LL(q, v) apr_psprintf((q)->r->pool, "%" APR_INT64_T_FMT, \
                                   (apr_int64_t)(v))

#endif /* ECOM_REQ_H */
