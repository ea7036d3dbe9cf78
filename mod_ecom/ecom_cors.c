/*
 * ecom_cors.c: cross-origin requests from browsers (CORS), and the
 * security headers every answer carries.
 *
 * CORS is off unless EcomCORSOrigins lists origins: then nothing about it
 * is sent, and a browser page on another origin cannot read an answer.
 * With origins listed, a request whose Origin is one of them (exactly:
 * scheme, host and port) gets Access-Control-Allow-Origin with that origin
 * (never "*"), Access-Control-Allow-Credentials: true and the response
 * headers a client needs (Access-Control-Expose-Headers); a preflight
 * (OPTIONS with Access-Control-Request-Method) is answered 204 with the
 * path's methods, the request headers the API reads and a Max-Age of 10
 * minutes. Any other origin gets none of these, preflight included, so
 * the browser refuses. Every answer then says Vary: Origin, since it
 * depends on it. OPTIONS without CORS keeps its answer: 204 with Allow.
 *
 * Security headers, on every answer of the API, errors included (in
 * err_headers_out): X-Content-Type-Options: nosniff (the router),
 * Referrer-Policy: no-referrer, X-Frame-Options: DENY and
 * Content-Security-Policy: default-src 'none'; frame-ancestors 'none' (a
 * JSON API is never a page nor a frame), and Strict-Transport-Security
 * over TLS when EcomHSTSMaxAge is set.
 *
 * Log tags: ECOM48xx.
 */
#include "ecom_cors.h"

#include "http_ssl.h"
#include "apr_lib.h"

#define CORS_MAX_AGE "600"
#define CORS_ALLOW_HEADERS "Authorization, Content-Type, Idempotency-Key, " \
                           "If-None-Match, Cart-Token, X-CSRF-Token"
#define CORS_EXPOSE_HEADERS "Location, ETag, Retry-After, RateLimit, " \
                            "RateLimit-Policy, Idempotent-Replayed, Cart-Token"

/* "scheme://host[:port]" as browsers send it: http or https, a host, an
 * optional port, nothing else (no path, no trailing slash). */
static int origin_valid(const char *o)
{
    const char *h;

    if (!strncmp(o, "https://", 8)) {
        h = o + 8;
    }
    else if (!strncmp(o, "http://", 7)) {
        h = o + 7;
    }
    else {
        return 0;
    }
    if (!*h || *h == ':') {
        return 0;
    }
    for (; *h; h++) {
        if (!apr_isalnum(*h) && !strchr("-.:[]", *h)) {
            return 0;
        }
    }
    return 1;
}

const char *ecom_cors_set_origins(cmd_parms *cmd, void *cfg, const char *arg)
{
    ecom_srv_conf *sc = ap_get_module_config(cmd->server->module_config,
                                             &ecom_module);
    char *o = apr_pstrdup(cmd->pool, arg);

    ap_str_tolower(o);
    if (!origin_valid(o)) {
        return apr_psprintf(cmd->pool, "EcomCORSOrigins: '%s' is not an "
                            "origin: write scheme://host[:port], e.g. "
                            "https://shop.example (no path, no '*')", arg);
    }
    if (!sc->cors_origins) {
        sc->cors_origins = apr_array_make(cmd->pool, 4, sizeof(const char *));
    }
    APR_ARRAY_PUSH(sc->cors_origins, const char *) = o;
    return NULL;
}

/* The request's Origin when it is listed, else NULL. */
const char *ecom_cors_listed_origin(ecom_req *q)
{
    const apr_array_header_t *list = q->sc->cors_origins;
    const char *o = apr_table_get(q->r->headers_in, "Origin");

    if (!list || !o) {
        return NULL;
    }
    for (int i = 0; i < list->nelts; i++) {
        if (!strcasecmp(o, APR_ARRAY_IDX(list, i, const char *))) {
            return o;
        }
    }
    return NULL;
}

void ecom_cors_preflight(ecom_req *q, const char *allow)
{
    apr_table_t *h = q->r->err_headers_out;
    const char *o = ecom_cors_listed_origin(q);

    if (!o || !apr_table_get(q->r->headers_in,
                             "Access-Control-Request-Method")) {
        return;
    }
    apr_table_setn(h, "Access-Control-Allow-Methods", allow);
    apr_table_setn(h, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
    apr_table_setn(h, "Access-Control-Max-Age", CORS_MAX_AGE);
    apr_table_mergen(h, "Vary", "Access-Control-Request-Method, "
                     "Access-Control-Request-Headers");
}

void ecom_response_headers(ecom_req *q)
{
    request_rec *r = q->r;
    apr_table_t *h = r->err_headers_out;
    const char *o = ecom_cors_listed_origin(q);

    apr_table_setn(h, "Referrer-Policy", "no-referrer");
    apr_table_setn(h, "X-Frame-Options", "DENY");
    apr_table_setn(h, "Content-Security-Policy",
                   "default-src 'none'; frame-ancestors 'none'");
    if (q->sc->hsts_max_age > 0 && ap_ssl_conn_is_ssl(r->connection)) {
        apr_table_setn(h, "Strict-Transport-Security",
                       apr_psprintf(r->pool, "max-age=%d",
                                    q->sc->hsts_max_age));
    }
    if (!q->sc->cors_origins) {
        return;
    }
    apr_table_mergen(h, "Vary", "Origin");
    if (!o) {
        return;
    }
    apr_table_setn(h, "Access-Control-Allow-Origin", o);
    apr_table_setn(h, "Access-Control-Allow-Credentials", "true");
    if (r->method_number != M_OPTIONS) {
        apr_table_setn(h, "Access-Control-Expose-Headers",
                       CORS_EXPOSE_HEADERS);
    }
}
