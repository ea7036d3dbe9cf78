/*
 * ecom_http.c: JSON in and out, RFC 9457 problems, body reading and the
 * typed readers of body fields.
 *
 * jansson allocates with malloc; every value a handler holds is tied to
 * the request pool when it is made (ecom_jown(), ecom_req.h), so no error
 * path leaks and none decrefs. ecom_fail() is the one place a data-layer
 * failure kind (ecom_err.h) becomes an HTTP answer.
 */
#include "ecom_http.h"
#include "ecom_util.h"

#include <stdarg.h>

typedef struct {
    apr_pool_t *pool;
    char *buf;
    apr_size_t len, cap;
} dumpbuf;

static int dump_cb(const char *s, size_t n, void *data)
{
    dumpbuf *d = data;

    if (d->len + n + 1 > d->cap) {
        apr_size_t cap = d->cap ? d->cap * 2 : 1024;
        char *nb;
        while (cap < d->len + n + 1) {
            cap *= 2;
        }
        nb = apr_palloc(d->pool, cap);
        if (d->len) {
            memcpy(nb, d->buf, d->len);
        }
        d->buf = nb;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, s, n);
    d->len += n;
    d->buf[d->len] = '\0';
    return 0;
}

char *ecom_json_dump(ecom_req *q, const json_t *j, apr_size_t *len)
{
    dumpbuf d = { q->r->pool, NULL, 0, 0 };

    /* the only reals in answers are rating averages of two decimals
     * (ecom_products.c): 15 significant digits print them as PostgreSQL
     * wrote them (4.33, not 4.3300000000000001) */
    json_dump_callback(j, dump_cb, &d, JSON_COMPACT | JSON_ENCODE_ANY
                                       | JSON_REAL_PRECISION(15));
    *len = d.len;
    return d.buf ? d.buf : apr_pstrdup(q->r->pool, "");
}

int ecom_json(ecom_req *q, int status, json_t *j)
{
    if (!j) {
        /* jansson could not allocate */
        return ecom_fail(q, ECOM_E_INTERNAL);
    }
    q->status = status;
    q->out = ecom_json_dump(q, j, &q->out_len);
    q->ctype = "application/json; charset=utf-8";
    return status;
}

int ecom_no_content(ecom_req *q, int status)
{
    q->status = status;
    q->out = NULL;
    q->out_len = 0;
    q->ctype = NULL;
    return status;
}

int ecom_problem_with(ecom_req *q, int status, const char *slug,
                      const char *detail, json_t *extra)
{
    const char *title = ap_get_status_line(status);
    json_t *j;

    /* "404 Not Found" -> "Not Found" */
    title = (title && strlen(title) > 4) ? title + 4 : "Error";
    j = ecom_jown(q, json_pack("{s:s, s:s, s:i, s:s}",
                  "type", apr_pstrcat(q->r->pool, "urn:mod-ecom:problem:",
                                      slug, NULL),
                  "title", title,
                  "status", status,
                  "detail", detail ? detail : title));
    if (j && extra) {
        json_object_update_missing(j, extra);
    }
    q->status = status;
    q->out = j ? ecom_json_dump(q, j, &q->out_len) : NULL;
    q->out_len = j ? q->out_len : 0;
    q->ctype = "application/problem+json";
    return status;
}

int ecom_problem(ecom_req *q, int status, const char *slug, const char *detail)
{
    return ecom_problem_with(q, status, slug, detail, NULL);
}

int ecom_fail(ecom_req *q, ecom_err e)
{
    const ecom_err_info *info = ecom_err_describe(e);

    if (e == ECOM_E_REFUSED && q->status >= 400) {
        return q->status;
    }
    if (!info->status) {
        /* ECOM_OK, or REFUSED without an answer: a handler bug */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "ECOM0210: no answer "
                      "for outcome %s", ecom_err_name(e));
        info = ecom_err_describe(ECOM_E_INTERNAL);
    }
    if (info->retry_after) {
        apr_table_setn(q->r->err_headers_out, "Retry-After",
                       apr_itoa(q->r->pool, info->retry_after));
    }
    return ecom_problem(q, info->status, info->slug, info->detail);
}

int ecom_invalid(ecom_req *q, json_t *errs)
{
    return ecom_problem_with(q, HTTP_UNPROCESSABLE_ENTITY, "validation",
                             "The request has invalid fields.",
                             ecom_jown(q, json_pack("{s:O}", "errors", errs)));
}

void ecom_field_error(json_t *errs, const char *field, const char *msg)
{
    json_array_append_new(errs, json_pack("{s:s, s:s}", "field", field,
                                          "message", msg));
}

const char *ecom_url(ecom_req *q, const char *fmt, ...)
{
    va_list ap;
    const char *rest;

    va_start(ap, fmt);
    rest = apr_pvsprintf(q->r->pool, fmt, ap);
    va_end(ap);
    return apr_pstrcat(q->r->pool, q->dc->base ? q->dc->base : "", rest, NULL);
}

static int too_large(ecom_req *q, apr_off_t limit)
{
    q->r->connection->keepalive = AP_CONN_CLOSE;
    return ecom_problem(q, HTTP_REQUEST_ENTITY_TOO_LARGE, "payload-too-large",
                        apr_psprintf(q->r->pool, "The body may be at most "
                                     "%" APR_OFF_T_FMT " bytes.", limit));
}

/* First buffer for a body of unknown length (chunked); it doubles from there. */
#define BODY_CHUNK 8192

/* The buffer is sized by the body, not by the limit: Content-Length when the
 * client declared one (checked against the limit before a byte is read),
 * else BODY_CHUNK doubling up to limit + 1 bytes, the first byte too many
 * telling that the body is too large. Old buffers stay in r->pool, so a
 * chunked body costs at most about twice its size. */
int ecom_read_body(ecom_req *q, apr_off_t limit)
{
    request_rec *r = q->r;
    apr_size_t max = (apr_size_t)limit + 1, cap, len = 0;
    char *buf;
    long n;

    if (ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK) != OK) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "The request body could not be read.");
    }
    if (!ap_should_client_block(r)) {
        q->raw_body = "";
        q->raw_len = 0;
        return 0;
    }
    if (r->remaining > limit) {
        return too_large(q, limit);
    }
    /* one spare byte: a body longer than declared is noticed, not cut */
    cap = (!r->read_chunked && r->remaining > 0) ? (apr_size_t)r->remaining + 1
                                                  : BODY_CHUNK;
    if (cap > max) {
        cap = max;
    }
    buf = apr_palloc(r->pool, cap + 1);
    for (;;) {
        if (len == cap) {
            /* len <= limit here, so cap < max: there is room to grow */
            apr_size_t ncap = cap > max / 2 ? max : cap * 2;
            char *nb = apr_palloc(r->pool, ncap + 1);
            memcpy(nb, buf, len);
            buf = nb;
            cap = ncap;
        }
        n = ap_get_client_block(r, buf + len, cap - len);
        if (n <= 0) {
            break;
        }
        len += (apr_size_t)n;
        if ((apr_off_t)len > limit) {
            return too_large(q, limit);
        }
    }
    if (n < 0) {
        r->connection->keepalive = AP_CONN_CLOSE;
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "The request body could not be read.");
    }
    buf[len] = '\0';
    q->raw_body = buf;
    q->raw_len = len;
    return 0;
}

int ecom_get_str(json_t *body, const char *field, size_t minlen, size_t maxlen,
                 const char **out, json_t *errs)
{
    json_t *v = body ? json_object_get(body, field) : NULL;
    long n;

    if (!v) {
        return 0;
    }
    if (!json_is_string(v)) {
        ecom_field_error(errs, field, "must be a string");
        return -1;
    }
    /* jansson has already rejected invalid UTF-8 and NUL bytes */
    n = ecom_utf8_len(json_string_value(v));
    if (n < (long)minlen || n > (long)maxlen) {
        char msg[96];
        snprintf(msg, sizeof(msg), "must be %zu to %zu characters long",
                 minlen, maxlen);
        ecom_field_error(errs, field, msg);
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

int ecom_get_int(json_t *body, const char *field, long long min, long long max,
                 long long *out, json_t *errs)
{
    json_t *v = body ? json_object_get(body, field) : NULL;

    if (!v) {
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min
        || json_integer_value(v) > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "must be an integer from %lld to %lld",
                 min, max);
        ecom_field_error(errs, field, msg);
        return -1;
    }
    *out = json_integer_value(v);
    return 1;
}

int ecom_get_bool(json_t *body, const char *field, int *out, json_t *errs)
{
    json_t *v = body ? json_object_get(body, field) : NULL;

    if (!v) {
        return 0;
    }
    if (!json_is_boolean(v)) {
        ecom_field_error(errs, field, "must be true or false");
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

int ecom_body_unknown(ecom_req *q, json_t *body, const char *prefix,
                      const char *const *known, json_t *errs)
{
    const char *name;
    json_t *v;
    int n = 0;

    json_object_foreach(body, name, v) {
        const char *const *k = known;
        while (*k && strcmp(*k, name) != 0) {
            k++;
        }
        if (!*k) {
            ecom_field_error(errs, apr_pstrcat(q->r->pool, prefix, name, NULL),
                             "is not a field this request takes");
            n++;
        }
    }
    return n;
}
