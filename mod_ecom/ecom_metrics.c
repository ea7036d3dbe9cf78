/*
 * ecom_metrics.c: what the module did, for operators: Prometheus text
 * (exposition format 0.0.4) under its own handler name, a short section in
 * mod_status, and the request's id, route and user for the logs.
 *
 *     <Location "/metrics">
 *         SetHandler ecom-metrics
 *         Require ip 127.0.0.1
 *     </Location>
 *
 * httpd's Require decides who may scrape (ECOM_AUTH_OPERATOR), as for
 * mod_status; the API's handler ("ecom") never serves it.
 *
 * Counters live in one anonymous shared-memory segment made in the parent
 * at post_config and inherited by every child, updated with apr_atomic's
 * 64-bit operations, so they are exact across all children and threads.
 * The segment belongs to the httpd process (its process pool), not to one
 * configuration: a graceful (or plain) restart keeps it, and the counters,
 * as long as the routes are the same (a fingerprint of the route table and
 * the status codes is kept in it); a new build with other routes, or a
 * stop and start, begins at zero (ecom_metrics_start_time_seconds says
 * when). So children of the old generation that finish their requests
 * during a graceful restart count them in the same place as the new ones.
 *
 * Cardinality is bounded by the code, never by what clients send: a
 * request is counted under its route's pattern ("/products/{id}/"; "other"
 * when no route matched, e.g. a 404 for an unknown path or a 405), one of
 * eight method names (anything else: "OTHER") and the status codes httpd
 * knows (ap_index_of_response; any other: "other"). Operator handlers are
 * counted under their handler name ("ecom-metrics", "ecom-status"). A
 * series appears once it has counted something.
 *
 * Latency is from the moment httpd read the request line
 * (r->request_time) to the moment the module wrote its answer into
 * httpd's output (%D in the access log also counts sending the rest).
 *
 * The cache's counters and the throttle's are their own (ecom_cache.c,
 * ecom_throttle.c: their segments belong to one configuration, so they
 * restart at zero on every restart); this file only reads them.
 *
 * Logs: every answer of the module carries Ecom-Request-Id, mod_unique_id's
 * UNIQUE_ID (the same id as %L in the ErrorLogFormat and LogFormat, since
 * mod_unique_id also makes the log id); without mod_unique_id, the
 * request's log id (%L), which httpd's core makes (shorter, unique within
 * the server's run only). The request notes ecom-route (as in the
 * metrics) and ecom-user (the user id, "-" for none) are set for
 * mod_log_config's %{ecom-route}n and %{ecom-user}n. Log tags: ECOM26xx.
 */
#include "ecom_metrics.h"
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_cache.h"
#include "ecom_throttle.h"

#include "http_main.h"
#include "http_core.h"
#include "mod_status.h"
#include "apr_atomic.h"
#include "apr_hash.h"
#include "apr_shm.h"
#include "apr_buckets.h"

#define SHM_KEY      "ecom_metrics_shm"
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define ECOM_VERSION "0.1.0"    /* the OpenAPI document's info.version */

/* Request latency buckets, microseconds (1 ms .. 10 s) */
static const apr_int64_t req_bounds[] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000
};
#define NREQB (sizeof(req_bounds) / sizeof(req_bounds[0]))

/* Waits for a pooled connection, microseconds (10 us .. 5 s) */
static const apr_int64_t db_bounds[] = {
    10, 100, 1000, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000
};
#define NDBB (sizeof(db_bounds) / sizeof(db_bounds[0]))

enum { M_SLOT_GET, M_SLOT_HEAD, M_SLOT_POST, M_SLOT_PUT, M_SLOT_PATCH,
       M_SLOT_DELETE, M_SLOT_OPTIONS, M_SLOT_OTHER, NMETHODS };
static const char *const method_names[NMETHODS] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"
};

enum { PAY_SUCCEEDED, PAY_PROCESSING, PAY_FAILED, NPAY };
static const char *const pay_names[NPAY] = {
    "succeeded", "processing", "failed"
};

static const char *const job_names[ECOM_NJOBS] = {
    "purge", "payment_timeout", "dynamic_pricing", "recs_refresh",
    "sale_edges", "search_stats"
};
static const char *const job_outcome_names[ECOM_NJOB_OUTCOMES] = {
    "ok", "failed", "skipped"
};

/* The head of the shared segment; the per-series arrays follow it. */
typedef struct {
    unsigned int fingerprint;  /* of the layout (see the top) */
    apr_size_t size;
    apr_time_t since;          /* when the counters started */
    volatile apr_uint64_t db_errors[ECOM_E_NKINDS];
    volatile apr_uint64_t db_acquire_failures;
    volatile apr_uint64_t db_wait[NDBB + 1];   /* per bucket, last: +Inf */
    volatile apr_uint64_t db_wait_us;
    volatile apr_uint64_t orders_created;
    volatile apr_uint64_t payments[NPAY];
    volatile apr_uint64_t refunds;
    volatile apr_uint32_t argon2_in_flight;
    /* the background jobs' turns, and when each last ran without error
     * (Unix seconds; 0: not since the counters started) */
    volatile apr_uint64_t job_runs[ECOM_NJOBS][ECOM_NJOB_OUTCOMES];
    volatile apr_uint64_t job_last_ok[ECOM_NJOBS];
} metrics_head;

/* One per httpd configuration (pconf), pointing into the segment. */
struct ecom_metrics {
    metrics_head *head;
    volatile apr_uint64_t *requests;  /* [series][status slot] */
    volatile apr_uint64_t *latency;   /* [series][NREQB + 1], per bucket */
    volatile apr_uint64_t *latency_us;/* [series] */
    int nroutes;                /* route slots; the last one is "other" */
    apr_array_header_t *routes; /* const ecom_route *, nroutes - 1 */
    const char **labels;        /* [nroutes]: the route label, escaped */
    int nstatus;                /* status slots; the last one is "other" */
    int *codes;                 /* [nstatus]: the code of each slot */
};

/* A label value as the text format wants it: \, " and newline escaped. */
static const char *escape_label(apr_pool_t *p, const char *v)
{
    char *out = apr_palloc(p, 2 * strlen(v) + 1), *o = out;

    for (; *v; v++) {
        if (*v == '\\' || *v == '"') {
            *o++ = '\\';
            *o++ = *v;
        }
        else if (*v == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        }
        else {
            *o++ = *v;
        }
    }
    *o = '\0';
    return out;
}

/* The route's label: its pattern as a path ("/products/{id}/"), or the
 * handler name of an operator route. */
static const char *route_label(apr_pool_t *p, const ecom_resource *res,
                               const ecom_route *rt)
{
    if (rt->auth == ECOM_AUTH_OPERATOR) {
        return res->handler ? res->handler : rt->name;
    }
    return apr_pstrcat(p, "/", rt->pattern, *rt->pattern ? "/" : "", NULL);
}

static void build_routes(struct ecom_metrics *m, apr_pool_t *p)
{
    int n = 0, i = 0;

    for (const ecom_resource *const *res = ecom_resources; *res; res++) {
        for (const ecom_route *rt = (*res)->routes; rt && rt->pattern; rt++) {
            n++;
        }
    }
    m->nroutes = n + 1;
    m->routes = apr_array_make(p, n, sizeof(const ecom_route *));
    m->labels = apr_pcalloc(p, sizeof(*m->labels) * (apr_size_t)m->nroutes);
    for (const ecom_resource *const *res = ecom_resources; *res; res++) {
        for (const ecom_route *rt = (*res)->routes; rt && rt->pattern; rt++) {
            APR_ARRAY_PUSH(m->routes, const ecom_route *) = rt;
            m->labels[i++] = escape_label(p, route_label(p, *res, rt));
        }
    }
    m->labels[n] = "other";
}

/* httpd's index of code in its status lines, or -1 for a code it does not
 * know (ap_get_status_line answers those with the 500 line). */
static int known_index(int code)
{
    char digits[4];

    apr_snprintf(digits, sizeof(digits), "%d", code);
    return strncmp(ap_get_status_line(code), digits, 3) == 0
           ? ap_index_of_response(code) : -1;
}

/* Status slots: httpd's own index of the codes it knows. */
static void build_statuses(struct ecom_metrics *m, apr_pool_t *p)
{
    int max = 0;

    for (int code = 100; code < 600; code++) {
        int i = known_index(code);
        if (i > max) {
            max = i;
        }
    }
    m->nstatus = max + 2;
    m->codes = apr_pcalloc(p, sizeof(int) * (apr_size_t)m->nstatus);
    for (int code = 100; code < 600; code++) {
        int i = known_index(code);
        if (i >= 0 && i <= max) {
            m->codes[i] = code;
        }
    }
}

static int status_slot(const struct ecom_metrics *m, int code)
{
    int i = ap_index_of_response(code);

    return i >= 0 && i < m->nstatus - 1 && m->codes[i] == code
           ? i : m->nstatus - 1;
}

static int method_slot(const request_rec *r)
{
    switch (r->method_number) {
    case M_GET:
        return r->header_only ? M_SLOT_HEAD : M_SLOT_GET;
    case M_POST:
        return M_SLOT_POST;
    case M_PUT:
        return M_SLOT_PUT;
    case M_PATCH:
        return M_SLOT_PATCH;
    case M_DELETE:
        return M_SLOT_DELETE;
    case M_OPTIONS:
        return M_SLOT_OPTIONS;
    default:
        return M_SLOT_OTHER;
    }
}

static int route_slot(const struct ecom_metrics *m, const ecom_route *rt)
{
    for (int i = 0; rt && i < m->routes->nelts; i++) {
        if (APR_ARRAY_IDX(m->routes, i, const ecom_route *) == rt) {
            return i;
        }
    }
    return m->nroutes - 1;
}

/* What identifies the layout: every route label with its method, and the
 * status codes, in order. */
static unsigned int fingerprint(const struct ecom_metrics *m, apr_pool_t *p)
{
    const char *text = "ecom-metrics-2";
    apr_ssize_t len;

    for (int i = 0; i < m->nroutes - 1; i++) {
        const ecom_route *rt = APR_ARRAY_IDX(m->routes, i, const ecom_route *);
        text = apr_pstrcat(p, text, " ", ecom_method_text(rt->method),
                           m->labels[i], NULL);
    }
    for (int i = 0; i < m->nstatus; i++) {
        text = apr_psprintf(p, "%s %d", text, m->codes[i]);
    }
    len = (apr_ssize_t)strlen(text);
    return apr_hashfunc_default(text, &len);
}

static int nseries(const struct ecom_metrics *m)
{
    return m->nroutes * NMETHODS;
}

/* The segment, kept in the process pool across restarts while its layout
 * holds (see the top). */
static metrics_head *segment(struct ecom_metrics *m, server_rec *s,
                             apr_pool_t *ptemp, apr_size_t size)
{
    apr_pool_t *gp = s->process->pool;
    unsigned int fp = fingerprint(m, ptemp);
    apr_shm_t *shm = NULL;
    metrics_head *h;
    apr_status_t rv;

    apr_pool_userdata_get((void **)&shm, SHM_KEY, gp);
    if (shm) {
        h = apr_shm_baseaddr_get(shm);
        if (apr_shm_size_get(shm) >= size && h->size == size
            && h->fingerprint == fp) {
            return h;
        }
        /* children of older generations keep their own mapping */
        apr_shm_destroy(shm);
        apr_pool_userdata_set(NULL, SHM_KEY, apr_pool_cleanup_null, gp);
    }
    if ((rv = apr_shm_create(&shm, size, NULL, gp)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "ECOM2600: no shared "
                     "memory (%" APR_SIZE_T_FMT " bytes) for the metrics: "
                     "ecom-metrics answers 503", size);
        return NULL;
    }
    h = apr_shm_baseaddr_get(shm);
    memset(h, 0, size);
    h->fingerprint = fp;
    h->size = size;
    h->since = apr_time_now();
    apr_pool_userdata_set(shm, SHM_KEY, apr_pool_cleanup_null, gp);
    return h;
}

int ecom_metrics_post_config(apr_pool_t *pconf, server_rec *s)
{
    struct ecom_metrics *m = apr_pcalloc(pconf, sizeof(*m));
    apr_size_t nreq, nlat, size;
    apr_pool_t *ptemp;
    char *base;

    build_routes(m, pconf);
    build_statuses(m, pconf);
    nreq = (apr_size_t)nseries(m) * (apr_size_t)m->nstatus;
    nlat = (apr_size_t)nseries(m) * (NREQB + 1);
    size = APR_ALIGN_DEFAULT(sizeof(metrics_head))
           + sizeof(apr_uint64_t) * (nreq + nlat + (apr_size_t)nseries(m));
    apr_pool_create(&ptemp, pconf);
    m->head = segment(m, s, ptemp, size);
    apr_pool_destroy(ptemp);
    if (m->head) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "ECOM2601: metrics: %d "
                     "routes, %d status codes, a segment of %" APR_SIZE_T_FMT
                     " bytes", m->nroutes, m->nstatus, size);
        base = (char *)m->head + APR_ALIGN_DEFAULT(sizeof(metrics_head));
        m->requests = (volatile apr_uint64_t *)(void *)base;
        m->latency = m->requests + nreq;
        m->latency_us = m->latency + nlat;
    }
    else {
        m = NULL;
    }
    for (server_rec *sp = s; sp; sp = sp->next) {
        ecom_srv_conf *sc = ap_get_module_config(sp->module_config,
                                                 &ecom_module);
        sc->metrics = m;
    }
    return OK;
}

/* ---- the request ---- */

/* mod_unique_id's UNIQUE_ID; else the request's log id (%L), made now
 * through httpd's generate_log_id hook when nothing asked for it yet (the
 * core's own generator without mod_unique_id), so the header and the
 * error log's %L agree either way. */
static const char *request_id(request_rec *r)
{
    const char *id = apr_table_get(r->subprocess_env, "UNIQUE_ID");

    if (id) {
        return id;
    }
    if (!r->log_id) {
        ap_run_generate_log_id(r->connection, r, &id);
        r->log_id = id;
    }
    return r->log_id;
}

void ecom_metrics_start(ecom_req *q)
{
    const char *id = request_id(q->r);

    if (id) {
        /* err_headers_out: on every answer, errors included */
        apr_table_setn(q->r->err_headers_out, "Ecom-Request-Id", id);
    }
}

static int bucket(const apr_int64_t *bounds, int n, apr_int64_t v)
{
    int i = 0;

    while (i < n && v > bounds[i]) {
        i++;
    }
    return i;
}

static void count_events(struct ecom_metrics *m, unsigned ev)
{
    metrics_head *h = m->head;

    if (ev & ECOM_EV_ORDER_CREATED) {
        apr_atomic_inc64(&h->orders_created);
    }
    if (ev & ECOM_EV_PAYMENT_SUCCEEDED) {
        apr_atomic_inc64(&h->payments[PAY_SUCCEEDED]);
    }
    if (ev & ECOM_EV_PAYMENT_PROCESSING) {
        apr_atomic_inc64(&h->payments[PAY_PROCESSING]);
    }
    if (ev & ECOM_EV_PAYMENT_FAILED) {
        apr_atomic_inc64(&h->payments[PAY_FAILED]);
    }
    if (ev & ECOM_EV_REFUND) {
        apr_atomic_inc64(&h->refunds);
    }
}

void ecom_metrics_end(ecom_req *q)
{
    request_rec *r = q->r;
    struct ecom_metrics *m = q->sc->metrics;
    int rs = m ? route_slot(m, q->route) : 0, series, b;
    apr_int64_t us = (apr_int64_t)(apr_time_now() - r->request_time);

    apr_table_setn(r->notes, "ecom-user",
                   q->user_id ? ECOM_LL(q, q->user_id) : "-");
    if (!m) {
        return;
    }
    apr_table_setn(r->notes, "ecom-route", m->labels[rs]);
    series = rs * NMETHODS + method_slot(r);
    apr_atomic_inc64(&m->requests[(apr_size_t)series * (apr_size_t)m->nstatus
                                  + (apr_size_t)status_slot(m, r->status)]);
    b = bucket(req_bounds, (int)NREQB, us);
    apr_atomic_inc64(&m->latency[(apr_size_t)series * (NREQB + 1)
                                 + (apr_size_t)b]);
    apr_atomic_add64(&m->latency_us[series], (apr_uint64_t)(us > 0 ? us : 0));
    if (q->metrics_events && r->status < 500) {
        count_events(m, q->metrics_events);
    }
}

void ecom_metrics_db_wait(ecom_req *q, apr_interval_time_t waited, int ok)
{
    struct ecom_metrics *m = q->sc->metrics;

    if (!m) {
        return;
    }
    if (!ok) {
        apr_atomic_inc64(&m->head->db_acquire_failures);
    }
    waited = waited > 0 ? waited : 0;
    apr_atomic_inc64(&m->head->db_wait[bucket(db_bounds, (int)NDBB, waited)]);
    apr_atomic_add64(&m->head->db_wait_us, (apr_uint64_t)waited);
}

void ecom_metrics_db_error(ecom_req *q, ecom_err kind)
{
    struct ecom_metrics *m = q->sc->metrics;

    if (m && kind > ECOM_OK && kind < ECOM_E_NKINDS) {
        apr_atomic_inc64(&m->head->db_errors[kind]);
    }
}

void ecom_metrics_event(ecom_req *q, unsigned events)
{
    q->metrics_events |= events;
}

void ecom_metrics_argon2(ecom_req *q, int delta)
{
    struct ecom_metrics *m = q->sc->metrics;

    if (!m) {
        return;
    }
    if (delta > 0) {
        apr_atomic_inc32(&m->head->argon2_in_flight);
    }
    else {
        apr_atomic_dec32(&m->head->argon2_in_flight);
    }
}

void ecom_metrics_job(const server_rec *s, ecom_job job,
                      ecom_job_outcome outcome)
{
    const ecom_srv_conf *sc = ap_get_module_config(s->module_config,
                                                   &ecom_module);
    const struct ecom_metrics *m = sc ? sc->metrics : NULL;

    if (!m || (unsigned)job >= ECOM_NJOBS
        || (unsigned)outcome >= ECOM_NJOB_OUTCOMES) {
        return;
    }
    apr_atomic_inc64(&m->head->job_runs[job][outcome]);
    if (outcome == ECOM_JOB_OK) {
        apr_atomic_set64(&m->head->job_last_ok[job],
                         (apr_uint64_t)apr_time_sec(apr_time_now()));
    }
}

/* ---- the exposition ---- */

typedef struct {
    apr_bucket_brigade *bb;
} out_t;

static void out(out_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void out(out_t *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    apr_brigade_vprintf(o->bb, NULL, NULL, fmt, ap);
    va_end(ap);
}

static void family(out_t *o, const char *name, const char *type,
                   const char *help)
{
    out(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A value in seconds from microseconds, exactly (no float rounding). */
static const char *seconds(apr_pool_t *p, apr_uint64_t us)
{
    return apr_psprintf(p, "%" APR_UINT64_T_FMT ".%06" APR_UINT64_T_FMT,
                        us / 1000000, us % 1000000);
}

/* One histogram's buckets (per bucket, as counted) made cumulative, with
 * _sum and _count; labels is "" or 'a="b",'. _count is the +Inf bucket,
 * so the two always agree. */
static void histogram(out_t *o, apr_pool_t *p, const char *name,
                      const char *labels, const apr_int64_t *bounds, int n,
                      const apr_uint64_t *per, apr_uint64_t sum_us)
{
    apr_uint64_t cum = 0;
    size_t len = strlen(labels);
    /* the labels without their trailing comma, for _sum and _count */
    const char *bare = len ? apr_pstrmemdup(p, labels, len - 1) : "";

    for (int i = 0; i <= n; i++) {
        cum += per[i];
        if (i < n) {
            out(o, "%s_bucket{%sle=\"%s\"} %" APR_UINT64_T_FMT "\n", name,
                labels, seconds(p, (apr_uint64_t)bounds[i]), cum);
        }
        else {
            out(o, "%s_bucket{%sle=\"+Inf\"} %" APR_UINT64_T_FMT "\n", name,
                labels, cum);
        }
    }
    out(o, "%s_sum%s%s%s %s\n", name, len ? "{" : "", bare, len ? "}" : "",
        seconds(p, sum_us));
    out(o, "%s_count%s%s%s %" APR_UINT64_T_FMT "\n", name, len ? "{" : "",
        bare, len ? "}" : "", cum);
}

static void requests_out(out_t *o, const struct ecom_metrics *m)
{
    family(o, "ecom_http_requests_total", "counter", "Requests answered by "
           "mod_ecom, by route pattern, method and status.");
    for (int s = 0; s < nseries(m); s++) {
        for (int st = 0; st < m->nstatus; st++) {
            apr_uint64_t v = apr_atomic_read64(
                &m->requests[(apr_size_t)s * (apr_size_t)m->nstatus
                             + (apr_size_t)st]);
            if (!v) {
                continue;
            }
            if (m->codes[st]) {
                out(o, "ecom_http_requests_total{route=\"%s\",method=\"%s\","
                    "status=\"%d\"} %" APR_UINT64_T_FMT "\n",
                    m->labels[s / NMETHODS], method_names[s % NMETHODS],
                    m->codes[st], v);
            }
            else {
                out(o, "ecom_http_requests_total{route=\"%s\",method=\"%s\","
                    "status=\"other\"} %" APR_UINT64_T_FMT "\n",
                    m->labels[s / NMETHODS], method_names[s % NMETHODS], v);
            }
        }
    }
}

static void latency_out(out_t *o, apr_pool_t *p, const struct ecom_metrics *m)
{
    apr_uint64_t per[NREQB + 1], total;

    family(o, "ecom_http_request_duration_seconds", "histogram", "Time from "
           "the request line to the answer written, by route pattern and "
           "method.");
    for (int s = 0; s < nseries(m); s++) {
        total = 0;
        for (apr_size_t b = 0; b <= NREQB; b++) {
            per[b] = apr_atomic_read64(&m->latency[(apr_size_t)s
                                                   * (NREQB + 1) + b]);
            total += per[b];
        }
        if (!total) {
            continue;
        }
        histogram(o, p, "ecom_http_request_duration_seconds",
                  apr_psprintf(p, "route=\"%s\",method=\"%s\",",
                               m->labels[s / NMETHODS],
                               method_names[s % NMETHODS]),
                  req_bounds, (int)NREQB, per,
                  apr_atomic_read64(&m->latency_us[s]));
    }
}

static void counter(out_t *o, const char *name, const char *help,
                    apr_uint64_t v)
{
    family(o, name, "counter", help);
    out(o, "%s %" APR_UINT64_T_FMT "\n", name, v);
}

static void db_out(out_t *o, apr_pool_t *p, metrics_head *h)
{
    apr_uint64_t per[NDBB + 1];

    family(o, "ecom_db_errors_total", "counter", "Failed database "
           "statements, by kind (ecom_err: unavailable, busy, conflict, "
           "constraint, internal...).");
    for (int k = ECOM_OK + 1; k < ECOM_E_NKINDS; k++) {
        if (k == ECOM_E_NOT_FOUND || k == ECOM_E_REFUSED) {
            /* not failures of the database */
            continue;
        }
        out(o, "ecom_db_errors_total{kind=\"%s\"} %" APR_UINT64_T_FMT "\n",
            ecom_err_name((ecom_err)k), apr_atomic_read64(&h->db_errors[k]));
    }
    counter(o, "ecom_db_acquire_failures_total", "Requests that could not "
            "get a database connection from mod_dbd's pool, or a turn of "
            "EcomDBConcurrency's queue in time.",
            apr_atomic_read64(&h->db_acquire_failures));
    family(o, "ecom_db_pool_wait_seconds", "histogram", "Time spent taking "
           "a connection: a turn of EcomDBConcurrency's queue, then "
           "mod_dbd's pool (ap_dbd_open), failures included.");
    for (apr_size_t b = 0; b <= NDBB; b++) {
        per[b] = apr_atomic_read64(&h->db_wait[b]);
    }
    histogram(o, p, "ecom_db_pool_wait_seconds", "", db_bounds, (int)NDBB,
              per, apr_atomic_read64(&h->db_wait_us));
}

static void business_out(out_t *o, metrics_head *h)
{
    counter(o, "ecom_orders_created_total", "Orders created by checkout "
            "(committed).", apr_atomic_read64(&h->orders_created));
    family(o, "ecom_payments_total", "counter", "Payments recorded, by the "
           "status they reached (processing: waiting for the provider's "
           "webhook, which then counts succeeded or failed).");
    for (int i = 0; i < NPAY; i++) {
        out(o, "ecom_payments_total{status=\"%s\"} %" APR_UINT64_T_FMT "\n",
            pay_names[i], apr_atomic_read64(&h->payments[i]));
    }
    counter(o, "ecom_refunds_total", "Refunds recorded (staff refunds and "
            "late payments refunded in full).", apr_atomic_read64(&h->refunds));
}

static void jobs_out(out_t *o, metrics_head *h)
{
    family(o, "ecom_job_runs_total", "counter", "Turns of the module's "
           "background jobs (mod_watchdog), by job and outcome: ok (ran, or "
           "found nothing due), failed (no database connection or a failed "
           "statement: see the error log), skipped (another process or host "
           "had this period).");
    for (int j = 0; j < ECOM_NJOBS; j++) {
        for (int k = 0; k < ECOM_NJOB_OUTCOMES; k++) {
            out(o, "ecom_job_runs_total{job=\"%s\",outcome=\"%s\"} %"
                APR_UINT64_T_FMT "\n", job_names[j], job_outcome_names[k],
                apr_atomic_read64(&h->job_runs[j][k]));
        }
    }
    family(o, "ecom_job_last_success_time_seconds", "gauge", "When each "
           "background job last ran without error in this httpd (Unix time; "
           "0: not since the counters started).");
    for (int j = 0; j < ECOM_NJOBS; j++) {
        out(o, "ecom_job_last_success_time_seconds{job=\"%s\"} %"
            APR_UINT64_T_FMT "\n", job_names[j],
            apr_atomic_read64(&h->job_last_ok[j]));
    }
}

static void others_out(out_t *o, ecom_req *q, metrics_head *h)
{
    struct ecom_cache_counters c;
    struct ecom_throttle_counters t;

    ecom_cache_counters(&c);
    counter(o, "ecom_cache_hits_total", "Answers served from the response "
            "cache (since the last restart).", c.hits);
    counter(o, "ecom_cache_misses_total", "Response cache lookups that "
            "found nothing (since the last restart).", c.misses);
    ecom_throttle_counters(q->r->server, &t);
    counter(o, "ecom_rate_limited_total", "Requests refused 429 by a rate "
            "budget (since the last restart).", t.rate_limited);
    counter(o, "ecom_login_locked_total", "Logins refused 429 while locked "
            "after failures (since the last restart).", t.login_locked);
    counter(o, "ecom_failed_logins_total", "Failed logins and password "
            "checks counted by the lock (since the last restart).",
            t.failed_logins);
    counter(o, "ecom_argon2_busy_total", "Password requests refused 503 "
            "over EcomArgon2MaxInFlight (since the last restart).", t.busy);
    family(o, "ecom_argon2_in_flight", "gauge", "Password hashings running "
           "now, over all children.");
    out(o, "ecom_argon2_in_flight %u\n",
        apr_atomic_read32(&h->argon2_in_flight));
    family(o, "ecom_build_info", "gauge", "mod_ecom's version; always 1.");
    out(o, "ecom_build_info{version=\"%s\"} 1\n", ECOM_VERSION);
    family(o, "ecom_config_generation", "gauge", "httpd's configuration "
           "generation (graceful restarts since start).");
    out(o, "ecom_config_generation %d\n", ap_state_query(AP_SQ_CONFIG_GEN));
    family(o, "ecom_metrics_start_time_seconds", "gauge", "When these "
           "counters started (Unix time): a stop and start, or a new build "
           "with other routes.");
    out(o, "ecom_metrics_start_time_seconds %" APR_TIME_T_FMT "\n",
        apr_time_sec(h->since));
}

static int metrics_get(ecom_req *q)
{
    request_rec *r = q->r;
    struct ecom_metrics *m = q->sc->metrics;
    out_t o;
    char *text;
    apr_size_t len;

    if (!m) {
        apr_table_setn(r->err_headers_out, "Retry-After", "60");
        return ecom_problem(q, HTTP_SERVICE_UNAVAILABLE, "metrics-unavailable",
                            "No shared memory for the metrics (see the "
                            "error log, ECOM2600).");
    }
    o.bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    requests_out(&o, m);
    latency_out(&o, r->pool, m);
    db_out(&o, r->pool, m->head);
    business_out(&o, m->head);
    jobs_out(&o, m->head);
    others_out(&o, q, m->head);
    if (apr_brigade_pflatten(o.bb, &text, &len, r->pool) != APR_SUCCESS) {
        apr_brigade_destroy(o.bb);
        return ecom_fail(q, ECOM_E_INTERNAL);
    }
    apr_brigade_destroy(o.bb);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    q->status = HTTP_OK;
    q->out = text;
    q->out_len = len;
    q->ctype = CONTENT_TYPE;
    return HTTP_OK;
}

/* ---- mod_status ---- */

/* One line of the mod_status section: its ?auto name, its HTML label and
 * its value. */
typedef struct {
    const char *name, *label, *value;
} status_row;

static int metrics_status_hook(request_rec *r, int flags)
{
    const ecom_srv_conf *sc = ap_get_module_config(r->server->module_config,
                                                   &ecom_module);
    const struct ecom_metrics *m = sc ? sc->metrics : NULL;
    apr_uint64_t cls[6] = { 0, 0, 0, 0, 0, 0 }, errs = 0, waits = 0;
    apr_uint64_t job_failures = 0;
    apr_pool_t *p = r->pool;
    metrics_head *h;

    if (!m) {
        return DECLINED;
    }
    h = m->head;
    for (int s = 0; s < nseries(m); s++) {
        for (int st = 0; st < m->nstatus; st++) {
            int c = m->codes[st] / 100;
            cls[c >= 1 && c <= 5 ? c : 0] += apr_atomic_read64(
                &m->requests[(apr_size_t)s * (apr_size_t)m->nstatus
                             + (apr_size_t)st]);
        }
    }
    for (int k = 0; k < ECOM_E_NKINDS; k++) {
        errs += apr_atomic_read64(&h->db_errors[k]);
    }
    for (apr_size_t b = 0; b <= NDBB; b++) {
        waits += apr_atomic_read64(&h->db_wait[b]);
    }
    for (int j = 0; j < ECOM_NJOBS; j++) {
        job_failures += apr_atomic_read64(&h->job_runs[j][ECOM_JOB_FAILED]);
    }
#define U64(v) apr_psprintf(p, "%" APR_UINT64_T_FMT, (apr_uint64_t)(v))
    {
        const status_row rows[] = {
            { "EcomRequests", "requests",
              U64(cls[0] + cls[1] + cls[2] + cls[3] + cls[4] + cls[5]) },
            { "EcomRequests2xx", "2xx answers", U64(cls[2]) },
            { "EcomRequests3xx", "3xx answers", U64(cls[3]) },
            { "EcomRequests4xx", "4xx answers", U64(cls[4]) },
            { "EcomRequests5xx", "5xx answers", U64(cls[5]) },
            { "EcomDbErrors", "database errors", U64(errs) },
            { "EcomDbAcquireFailures", "no database connection",
              U64(apr_atomic_read64(&h->db_acquire_failures)) },
            { "EcomDbPoolWaits", "connections taken from the pool",
              U64(waits) },
            { "EcomDbPoolWaitSeconds", "seconds waited for them",
              seconds(p, apr_atomic_read64(&h->db_wait_us)) },
            { "EcomOrdersCreated", "orders created",
              U64(apr_atomic_read64(&h->orders_created)) },
            { "EcomPaymentsSucceeded", "payments succeeded",
              U64(apr_atomic_read64(&h->payments[PAY_SUCCEEDED])) },
            { "EcomRefunds", "refunds", U64(apr_atomic_read64(&h->refunds)) },
            { "EcomArgon2InFlight", "password hashings running",
              U64(apr_atomic_read32(&h->argon2_in_flight)) },
            { "EcomJobFailures", "background job turns that failed",
              U64(job_failures) },
        };
        int is_short = (flags & AP_STATUS_SHORT) != 0;

        ap_rputs(is_short ? "EcomMetrics\n"
                          : "<hr />\n<h2>mod_ecom requests (ecom-metrics has "
                            "them by route)</h2>\n<dl>\n", r);
        for (apr_size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
            if (is_short) {
                ap_rprintf(r, "%s: %s\n", rows[i].name, rows[i].value);
            }
            else {
                ap_rprintf(r, "<dt>%s</dt><dd>%s</dd>\n", rows[i].label,
                           rows[i].value);
            }
        }
        if (!is_short) {
            ap_rputs("</dl>\n", r);
        }
    }
#undef U64
    return OK;
}

void ecom_metrics_pre_config(apr_pool_t *pconf)
{
    /* mod_status calls it when it is loaded; nothing happens otherwise */
    APR_OPTIONAL_HOOK(ap, status_hook, metrics_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

static const ecom_route metrics_routes[] = {
    { M_GET, "", metrics_get, ECOM_AUTH_OPERATOR, 0, 0, "metrics" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_metrics_resource = {
    "metrics", NULL, metrics_routes, "ecom-metrics"
};
