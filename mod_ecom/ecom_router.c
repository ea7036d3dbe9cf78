/*
 * ecom_router.c: from request_rec to handler and back.
 *
 * The routes are the registered resources' (ecom_registry.c); the router
 * knows none by name. The dispatcher strips the mount point and one
 * trailing slash, matches the pattern ("{id}" segments must be positive
 * integers, else the path is unknown), answers 404 / 405 with Allow,
 * authenticates by the route's auth kind, reads and parses the body (413,
 * 415, 400), runs the handler (through the Idempotency-Key contract when
 * the route honours it), invalidates the cache sections the route names
 * after a 2xx, and finally writes the answer the handler set.
 *
 * Operator routes (ECOM_AUTH_OPERATOR) are never reachable under the API's
 * handler: each is served under its resource's own handler name
 * (SetHandler ecom-status), where httpd's Require decides who may ask, as
 * for mod_status.
 *
 * Routing decisions are logged at LogLevel ecom:trace1. ecom_metrics.c
 * sees every request the dispatcher serves: ecom_metrics_start() before
 * routing (Ecom-Request-Id), ecom_metrics_end() once the answer is written
 * (counters, the log notes ecom-route and ecom-user).
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_auth.h"
#include "ecom_cache.h"
#include "ecom_cart.h"
#include "ecom_cors.h"
#include "ecom_throttle.h"
#include "ecom_idempotency.h"
#include "ecom_path.h"
#include "ecom_signature.h"
#include "ecom_metrics.h"

#include "util_script.h"

/* allow with method's Allow name added (GET routes answer HEAD too). */
static const char *allow_add(apr_pool_t *p, const char *allow, int method)
{
    const char *m = method == M_GET ? "GET, HEAD" : ecom_method_text(method);

    return allow ? apr_pstrcat(p, allow, ", ", m, NULL) : m;
}

/* The path below the mount point, without its leading slash and one
 * trailing slash (ecom_path_relative); NULL when r->uri is not under the
 * mount point. */
static const char *relative_path(ecom_req *q)
{
    const char *rel;
    size_t n;

    if (ecom_path_relative(q->r->uri, q->dc->base ? q->dc->base : "", &rel,
                           &n) != 0) {
        return NULL;
    }
    return apr_pstrmemdup(q->r->pool, rel, n);
}

static int is_json_type(const char *ct)
{
    size_t n;

    if (!ct) {
        return 0;
    }
    while (*ct == ' ') {
        ct++;
    }
    n = strcspn(ct, "; \t");
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* Reads and parses the body; returns 0 or the status of the problem set.
 * A route that anyone may call gets the small EcomMaxAnonBodySize cap: its
 * body is parsed before anything is known of the caller, and jansson's
 * tree takes many times the body's size. */
static int parse_body(ecom_req *q, const ecom_route *rt)
{
    request_rec *r = q->r;
    apr_off_t limit = q->dc->max_body;
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    const char *te = apr_table_get(r->headers_in, "Transfer-Encoding");
    int has_body = (cl && strcmp(cl, "0") != 0) || te;
    int optional = (rt->flags & ECOM_BODY_OPT) != 0;
    json_error_t err;
    json_t *j;
    int rv;

    if (!has_body && optional) {
        return 0;
    }
    if (!is_json_type(apr_table_get(r->headers_in, "Content-Type"))) {
        r->connection->keepalive = AP_CONN_CLOSE;
        return ecom_problem(q, HTTP_UNSUPPORTED_MEDIA_TYPE,
                            "unsupported-media-type",
                            "Send the body as application/json.");
    }
    if ((rt->auth == ECOM_AUTH_NONE || q->guest)
        && q->dc->max_anon_body < limit) {
        limit = q->dc->max_anon_body;
    }
    /* a signed route's body was read (and verified) by authenticate() */
    if (!q->raw_body && (rv = ecom_read_body(q, limit))) {
        return rv;
    }
    if (q->raw_len == 0 && optional) {
        return 0;
    }
    j = ecom_jown(q, json_loadb(q->raw_body, q->raw_len,
                                JSON_REJECT_DUPLICATES, &err));
    if (!j) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            apr_psprintf(r->pool, "Malformed JSON at line %d, "
                                         "column %d: %s", err.line, err.column,
                                         err.text));
    }
    if (!json_is_object(j)) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "The body must be a JSON object.");
    }
    q->body = j;
    return 0;
}

/* ECOM_AUTH_WEBHOOK: the raw body, as received, must carry a valid
 * Ecom-Signature under EcomWebhookSecret (ecom_signature.c: HMAC-SHA256
 * of "<t>.<body>", t within EcomWebhookTolerance seconds, any of several
 * v1 values, compared in constant time). No bearer token is looked at.
 * Without a secret the route is refused with 503 (a provider retries, so
 * no event is lost while the operator sets it). */
static int verify_webhook(ecom_req *q)
{
    const ecom_srv_conf *sc = q->sc;
    ecom_sig_result v;
    int rv;

    if (!sc->webhook_secret || !sc->webhook_secret_len) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r, "ECOM0207: signed "
                      "route %s refused: EcomWebhookSecret is not set",
                      q->route->name);
        apr_table_setn(q->r->err_headers_out, "Retry-After", "60");
        return ecom_problem(q, HTTP_SERVICE_UNAVAILABLE, "webhook-not-configured",
                            "This server does not accept signed deliveries "
                            "yet; try again later.");
    }
    if ((rv = ecom_read_body(q, q->dc->max_body))) {
        return rv;
    }
    v = ecom_signature_verify(apr_table_get(q->r->headers_in, "Ecom-Signature"),
                              sc->webhook_secret, sc->webhook_secret_len,
                              q->raw_body, q->raw_len,
                              (long long)apr_time_sec(apr_time_now()),
                              sc->webhook_tolerance);
    if (v != ECOM_SIG_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, "ECOM0208: signed "
                      "route %s: %s", q->route->name, ecom_signature_reason(v));
        return ecom_problem(q, HTTP_BAD_REQUEST, "invalid-signature",
                            ecom_signature_reason(v));
    }
    return 0;
}

/* Authenticates the caller the way the route asks; 0 or the status set. */
static int authenticate(ecom_req *q, const ecom_route *rt)
{
    switch (rt->auth) {
    case ECOM_AUTH_NONE:
        return ecom_authenticate(q, 0);
    case ECOM_AUTH_USER:
        /* a cart route without credentials: a guest cart (issue 9) */
        if ((rt->flags & ECOM_GUEST) && ecom_guest_wanted(q)) {
            return ecom_guest_authenticate(q, (rt->flags & ECOM_AUTH_INLINE)
                                              && rt->method == M_GET);
        }
        /* an Idempotency-Key's record is keyed by the user: known first */
        if ((rt->flags & ECOM_AUTH_INLINE)
            && !apr_table_get(q->r->headers_in, "Idempotency-Key")) {
            return ecom_authenticate_inline(q);
        }
        return ecom_authenticate(q, 1);
    case ECOM_AUTH_STAFF:
        return ecom_authenticate(q, 2);
    case ECOM_AUTH_WEBHOOK:
        return verify_webhook(q);
    case ECOM_AUTH_OPERATOR:
        /* httpd's Require has decided */
        return 0;
    default:
        break;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r,
                  "ECOM0205: route %s has no usable auth kind", rt->name);
    return ecom_fail(q, ECOM_E_INTERNAL);
}

static void send_response(ecom_req *q)
{
    request_rec *r = q->r;

    r->status = q->status ? q->status : HTTP_INTERNAL_SERVER_ERROR;
    /* JSON is never to be sniffed as something else; answers to an
     * authenticated caller are private to them */
    apr_table_setn(r->err_headers_out, "X-Content-Type-Options", "nosniff");
    ecom_response_headers(q);
    if (q->user_id && !apr_table_get(r->headers_out, "Cache-Control")) {
        apr_table_setn(r->err_headers_out, "Cache-Control", "private, no-store");
    }
    if (q->ctype) {
        ap_set_content_type(r, q->ctype);
    }
    if (q->out && q->out_len && r->status != HTTP_NOT_MODIFIED) {
        ap_set_content_length(r, (apr_off_t)q->out_len);
        ap_rwrite(q->out, (int)q->out_len, r);
    }
    else if (r->status != HTTP_NOT_MODIFIED) {
        ap_set_content_length(r, 0);
    }
}

/* Finds the API route for path and method; *allow collects the methods
 * the path has when the method is not one of them. */
static const ecom_route *find_route(ecom_req *q, const char *path,
                                    const char **allow)
{
    int m = q->r->method_number;   /* HEAD is M_GET */

    for (const ecom_resource *const *res = ecom_resources; *res; res++) {
        for (const ecom_route *rt = (*res)->routes; rt && rt->pattern; rt++) {
            long long id[2] = { 0, 0 };
            const char *slug = NULL;
            size_t slug_len = 0;
            if (rt->auth == ECOM_AUTH_OPERATOR
                || !ecom_path_match_slug(rt->pattern, path, id, &slug,
                                         &slug_len)) {
                continue;
            }
            if (rt->method == m) {
                q->id[0] = id[0];
                q->id[1] = id[1];
                q->slug = slug ? apr_pstrmemdup(q->r->pool, slug, slug_len)
                               : NULL;
                return rt;
            }
            *allow = allow_add(q->r->pool, *allow, rt->method);
        }
    }
    return NULL;
}

static int run_route(ecom_req *q, const ecom_route *rt)
{
    request_rec *r = q->r;
    const char *idem;
    int rv;

    /* counted first, so that every answer of the route, a 400 included,
     * carries the RateLimit headers the OpenAPI document promises */
    if ((rv = ecom_throttle_request(q))) {
        return rv;
    }
    if (r->args && strstr(r->args, "%00")) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "The query string may not contain NUL bytes.");
    }
    q->args = apr_table_make(r->pool, r->args ? 8 : 1);
    if (r->args) {
        ap_args_to_table(r, &q->args);
    }
    if ((rv = authenticate(q, rt))) {
        return rv;
    }
    /* a client sends its body at its own pace: no connection is held
     * meanwhile (ecom_db.c, "Connections") */
    ecom_db_release(q);
    if (rt->flags & (ECOM_BODY | ECOM_BODY_OPT)) {
        rv = parse_body(q, rt);
    }
    else {
        ap_discard_request_body(r);
        rv = 0;
    }
    idem = apr_table_get(r->headers_in, "Idempotency-Key");
    if (rv || (rv = ecom_throttle_enter(q))) {
        /* the body was refused, or the throttle refused the request */
    }
    else if ((rt->flags & ECOM_IDEMPOTENT) && q->user_id && idem) {
        rv = ecom_idem_run(q, idem, rt->fn);
    }
    else {
        rv = rt->fn(q);
    }
    ecom_throttle_leave(q);
    if ((q->token_hash || q->guest_pending) && q->status >= 400
        && q->status < 500 && q->status != HTTP_UNAUTHORIZED) {
        /* ECOM_AUTH_INLINE: refused before its statement resolved the
         * token (or Cart-Token). A bad token is answered first, as on every
         * other route (nothing was written: the statement never ran) */
        int a = q->token_hash ? ecom_authenticate(q, 1) : ecom_guest_find(q);
        rv = a ? a : rv;
    }
    else if ((q->token_hash || q->guest_pending) && q->status < 400) {
        /* an ECOM_AUTH_INLINE handler answered without resolving the token
         * (ecom_auth_resolved, ecom_auth_caller, ecom_guest_resolved): a
         * bug, never an answer */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "ECOM0209: route %s "
                      "answered %d without resolving the caller's token",
                      rt->name, q->status);
        rv = ecom_fail(q, ECOM_E_INTERNAL);
    }
    if (rt->invalidates && q->status >= 200 && q->status < 300) {
        /* the write is committed by now (ecom_db_tx, ecom_idem_run) */
        ecom_cache_invalidate(q, rt->invalidates);
    }
    return rv;
}

static int run(ecom_req *q)
{
    request_rec *r = q->r;
    const ecom_route *rt = NULL;
    const char *path = relative_path(q), *allow = NULL;

    if (!path) {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "ECOM0201: %s is not "
                      "under the mount point %s", r->uri,
                      q->dc->base ? q->dc->base : "/");
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                            "No such resource.");
    }
    rt = find_route(q, path, &allow);
    if (!rt) {
        if (!allow) {
            ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "ECOM0202: no "
                          "route for \"%s\"", path);
            return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                                "No such resource.");
        }
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "ECOM0203: \"%s\" "
                      "has no %s route (allowed: %s)", path, r->method, allow);
        apr_table_setn(r->err_headers_out, "Allow", allow);
        if (r->method_number != M_OPTIONS) {
            /* a 405 counts against the budgets like any request to the
             * API (and says so in RateLimit), or is the 429 */
            int rv = ecom_throttle_request(q);

            if (rv) {
                return rv;
            }
        }
        if (r->method_number == M_OPTIONS) {
            /* a CORS preflight from a listed origin gets its headers */
            ecom_cors_preflight(q, allow);
            return ecom_no_content(q, HTTP_NO_CONTENT);
        }
        return ecom_problem(q, HTTP_METHOD_NOT_ALLOWED, "method-not-allowed",
                            apr_psprintf(r->pool, "%s is not allowed here; "
                                         "allowed: %s.", r->method, allow));
    }
    q->route = rt;
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "ECOM0204: %s \"%s\" -> "
                  "%s (auth %s, ids %" APR_INT64_T_FMT ",%" APR_INT64_T_FMT
                  ")", r->method, path, rt->name, ecom_auth_kind_name(rt->auth),
                  (apr_int64_t)q->id[0], (apr_int64_t)q->id[1]);
    return run_route(q, rt);
}

/* An operator handler: the resource that registered r->handler serves the
 * whole <Location>, by method. */
static int run_operator(ecom_req *q, const ecom_resource *res)
{
    request_rec *r = q->r;
    const char *allow = NULL;

    for (const ecom_route *rt = res->routes; rt && rt->pattern; rt++) {
        if (rt->auth != ECOM_AUTH_OPERATOR) {
            continue;
        }
        if (rt->method == r->method_number) {
            q->route = rt;
            ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "ECOM0206: %s "
                          "%s -> %s (operator handler %s)", r->method,
                          r->uri, rt->name, res->handler);
            return run_route(q, rt);
        }
        allow = allow_add(r->pool, allow, rt->method);
    }
    apr_table_setn(r->err_headers_out, "Allow", allow ? allow : "");
    return ecom_problem(q, HTTP_METHOD_NOT_ALLOWED, "method-not-allowed",
                        apr_psprintf(r->pool, "%s is not allowed here.",
                                     r->method));
}

int ecom_dispatch(request_rec *r)
{
    const ecom_resource *op = NULL;
    ecom_req *q;

    if (!r->handler || strncmp(r->handler, "ecom", 4) != 0) {
        return DECLINED;
    }
    if (r->handler[4]) {
        for (const ecom_resource *const *res = ecom_resources; *res && !op;
             res++) {
            if ((*res)->handler && !strcmp((*res)->handler, r->handler)) {
                op = *res;
            }
        }
        if (!op) {
            return DECLINED;
        }
    }
    q = apr_pcalloc(r->pool, sizeof(*q));
    q->r = r;
    q->dc = ap_get_module_config(r->per_dir_config, &ecom_module);
    q->sc = ap_get_module_config(r->server->module_config, &ecom_module);
    ecom_metrics_start(q);
    if (op) {
        run_operator(q, op);
    }
    else {
        run(q);
    }
    /* nor while the answer goes out */
    ecom_db_release(q);
    send_response(q);
    ecom_metrics_end(q);
    return OK;
}
