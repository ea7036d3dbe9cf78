/*
 * ecom_router.c: from request_rec to handler and back.
 *
 * One table maps (path pattern, method) to a handler and what it needs:
 * authentication level, a JSON body, idempotency. The dispatcher strips the
 * mount point and one trailing slash, matches the pattern ("{id}" segments
 * must be positive integers, else the path is unknown), answers 404 / 405
 * with Allow, authenticates, reads and parses the body (413, 415, 400), runs
 * the handler and finally writes the response it built.
 */
#include "ecom.h"
#include "ecom_util.h"

#include "util_script.h"

enum {
    NEED_USER  = 1 << 0,
    NEED_STAFF = 1 << 1,
    BODY       = 1 << 2,   /* a JSON object body is required */
    BODY_OPT   = 1 << 3,   /* a JSON object body may be sent */
    IDEMPOTENT = 1 << 4    /* honours Idempotency-Key */
};

typedef struct {
    const char *pattern;   /* segments joined by '/', "{id}" captures */
    ecom_handler_fn fn;
    int method;            /* M_GET, M_POST, ... */
    unsigned flags;
} ecom_route;

static const ecom_route routes[] = {
    { "auth/register", ecom_register, M_POST, BODY },
    { "auth/login", ecom_login, M_POST, BODY },
    { "products", ecom_products_list, M_GET, 0 },
    { "products", ecom_product_create, M_POST, NEED_STAFF | BODY | IDEMPOTENT },
    { "products/{id}", ecom_product_get, M_GET, 0 },
    { "products/{id}", ecom_product_update, M_PATCH, NEED_STAFF | BODY },
    { "cart", ecom_cart_get, M_GET, NEED_USER },
    { "cart", ecom_cart_add, M_POST, NEED_USER | BODY | IDEMPOTENT },
    { "cart/{id}", ecom_cart_update, M_PATCH, NEED_USER | BODY },
    { "cart/{id}", ecom_cart_delete, M_DELETE, NEED_USER },
    { "orders", ecom_orders_list, M_GET, NEED_USER },
    { "orders", ecom_order_create, M_POST, NEED_USER | BODY_OPT | IDEMPOTENT },
    { "orders/{id}", ecom_order_get, M_GET, NEED_USER },
    { "health", ecom_health, M_GET, 0 },
    { "openapi.json", ecom_openapi, M_GET, 0 },
    { NULL, NULL, 0, 0 }
};

/* Matches path (no leading or trailing slash) against pattern, capturing
 * ids. Returns 1 on a match. */
static int match(const char *pattern, const char *path, long long id[2])
{
    int nid = 0;

    for (;;) {
        const char *pe = strchr(pattern, '/'), *se = strchr(path, '/');
        size_t plen = pe ? (size_t)(pe - pattern) : strlen(pattern);
        size_t slen = se ? (size_t)(se - path) : strlen(path);

        if (plen == 4 && memcmp(pattern, "{id}", 4) == 0) {
            if (nid == 2 || ecom_parse_id(path, slen, &id[nid]) != 0) {
                return 0;
            }
            nid++;
        }
        else if (plen != slen || memcmp(pattern, path, plen) != 0) {
            return 0;
        }
        if (!pe || !se) {
            return !pe && !se;
        }
        pattern = pe + 1;
        path = se + 1;
    }
}

/* Allow header names; GET routes answer HEAD too. */
static const char *method_name(int m)
{
    switch (m) {
    case M_GET:
        return "GET, HEAD";
    case M_POST:
        return "POST";
    case M_PATCH:
        return "PATCH";
    case M_PUT:
        return "PUT";
    default:
        return "DELETE";
    }
}

/* The path below the mount point, without its leading slash and one
 * trailing slash; NULL when r->uri is not under the mount point. */
static const char *relative_path(ecom_req *q)
{
    const char *uri = q->r->uri, *base = q->dc->base ? q->dc->base : "";
    size_t blen = strlen(base), n;

    if (strncmp(uri, base, blen) != 0 || (uri[blen] && uri[blen] != '/')) {
        return NULL;
    }
    uri += blen;
    while (*uri == '/') {
        /* "/api" and "/api/" are both the root; "//x" is not a path we use */
        if (uri[1] == '/') {
            return NULL;
        }
        uri++;
    }
    n = strlen(uri);
    if (n && uri[n - 1] == '/') {
        n--;
    }
    return apr_pstrmemdup(q->r->pool, uri, n);
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
 * A route that anyone may call (no NEED_USER or NEED_STAFF) gets the small
 * EcomMaxAnonBodySize cap: its body is parsed before anything is known of
 * the caller, and jansson's tree takes many times the body's size. */
static int parse_body(ecom_req *q, unsigned flags)
{
    request_rec *r = q->r;
    apr_off_t limit = q->dc->max_body;
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    const char *te = apr_table_get(r->headers_in, "Transfer-Encoding");
    int has_body = (cl && strcmp(cl, "0") != 0) || te;
    json_error_t err;
    json_t *j;
    int rv;

    if (!has_body && (flags & BODY_OPT)) {
        return 0;
    }
    if (!is_json_type(apr_table_get(r->headers_in, "Content-Type"))) {
        r->connection->keepalive = AP_CONN_CLOSE;
        return ecom_problem(q, HTTP_UNSUPPORTED_MEDIA_TYPE,
                            "unsupported-media-type",
                            "Send the body as application/json.");
    }
    if (!(flags & (NEED_USER | NEED_STAFF)) && q->dc->max_anon_body < limit) {
        limit = q->dc->max_anon_body;
    }
    if ((rv = ecom_read_body(q, limit))) {
        return rv;
    }
    if (q->raw_len == 0 && (flags & BODY_OPT)) {
        return 0;
    }
    j = json_loadb(q->raw_body, q->raw_len, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            apr_psprintf(r->pool, "Malformed JSON at line %d, "
                                         "column %d: %s", err.line, err.column,
                                         err.text));
    }
    ecom_json_pool(q, j);
    if (!json_is_object(j)) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "The body must be a JSON object.");
    }
    q->body = j;
    return 0;
}

static void send_response(ecom_req *q)
{
    request_rec *r = q->r;

    r->status = q->status ? q->status : HTTP_INTERNAL_SERVER_ERROR;
    /* JSON is never to be sniffed as something else; answers to an
     * authenticated caller are private to them */
    apr_table_setn(r->err_headers_out, "X-Content-Type-Options", "nosniff");
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

static int run(ecom_req *q)
{
    request_rec *r = q->r;
    const ecom_route *rt, *hit = NULL;
    const char *path = relative_path(q), *allow = NULL, *idem = NULL;
    int m = r->method_number, rv;

    if (path) {
        for (rt = routes; rt->pattern; rt++) {
            long long id[2] = { 0, 0 };
            if (!match(rt->pattern, path, id)) {
                continue;
            }
            if (rt->method == m) {
                hit = rt;
                q->route = rt->pattern;
                q->id[0] = id[0];
                q->id[1] = id[1];
                break;
            }
            allow = allow ? apr_pstrcat(r->pool, allow, ", ",
                                        method_name(rt->method), NULL)
                          : method_name(rt->method);
        }
    }
    if (!hit) {
        if (!allow) {
            return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                                "No such resource.");
        }
        apr_table_setn(r->err_headers_out, "Allow", allow);
        if (m == M_OPTIONS) {
            return ecom_no_content(q, HTTP_NO_CONTENT);
        }
        return ecom_problem(q, HTTP_METHOD_NOT_ALLOWED, "method-not-allowed",
                            apr_psprintf(r->pool, "%s is not allowed here; "
                                         "allowed: %s.", r->method, allow));
    }
    if (r->args && strstr(r->args, "%00")) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "The query string may not contain NUL bytes.");
    }
    if (r->args) {
        q->args = apr_table_make(r->pool, 8);
        ap_args_to_table(r, &q->args);
    }
    else {
        q->args = apr_table_make(r->pool, 1);
    }
    rv = ecom_authenticate(q, (hit->flags & NEED_STAFF) ? 2
                              : (hit->flags & NEED_USER) ? 1 : 0);
    if (rv) {
        return rv;
    }
    if (hit->flags & (BODY | BODY_OPT)) {
        if ((rv = parse_body(q, hit->flags))) {
            return rv;
        }
    }
    else {
        ap_discard_request_body(r);
    }
    idem = apr_table_get(r->headers_in, "Idempotency-Key");
    if ((hit->flags & IDEMPOTENT) && q->user_id && idem) {
        return ecom_idem_run(q, idem, hit->fn);
    }
    return hit->fn(q);
}

int ecom_dispatch(request_rec *r)
{
    ecom_req *q = apr_pcalloc(r->pool, sizeof(*q));

    q->r = r;
    q->dc = ap_get_module_config(r->per_dir_config, &ecom_module);
    q->sc = ap_get_module_config(r->server->module_config, &ecom_module);
    run(q);
    send_response(q);
    return OK;
}

int ecom_page_args(ecom_req *q, int *limit)
{
    const char *l = apr_table_get(q->args, "limit");
    size_t n = l ? strspn(l, "0123456789") : 0;
    long long v;

    *limit = q->dc->page_size;
    if (l) {
        /* any positive integer, however large, is capped to the maximum */
        if (n == 0 || l[n] != '\0' || l[strspn(l, "0")] == '\0') {
            return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                                "limit must be an integer >= 1.");
        }
        if (n > 9 || ecom_parse_ll(l, 1, 999999999LL, &v) != 0) {
            v = q->dc->page_max;
        }
        *limit = v > q->dc->page_max ? q->dc->page_max : (int)v;
    }
    return 0;
}
