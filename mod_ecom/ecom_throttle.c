/*
 * ecom_throttle.c: throttling that holds across every child process (and,
 * with a shared socache, every host), and the bound on password hashings.
 *
 * What is limited (timings in README.md, "Throttling"):
 *  - every API request, per client address (EcomRateLimit) and per bearer
 *    token (EcomTokenRateLimit), per EcomRateLimitWindow; off by default;
 *  - the password endpoints (POST auth/login, auth/register, and every
 *    route whose pattern starts with auth/password: change, reset, reset
 *    confirmation), per client address: EcomAuthRateLimit per minute;
 *  - failed logins, per account (the e-mail as sent, lower-cased, whether
 *    or not an account has it, so a lock reveals nothing) and per (account,
 *    address) pair. The first 3 failures of a pair and the first 5 of an
 *    account are free; each further one locks the pair (or the account)
 *    for 1 s, doubling, at most EcomLoginLockout (0: no locks). While
 *    locked, a login of
 *    that account from an address that failed on it within the last 15
 *    minutes is answered 429 with Retry-After before any password is
 *    hashed. An address that never failed on the account is not held by
 *    the account's lock, so a stranger cannot lock the owner out: at worst
 *    the owner's own address, once it failed, waits EcomLoginLockout.
 *    A successful login forgets the account's and the pair's failures.
 *    POST auth/password (change), PATCH and DELETE auth/me (which check
 *    the password) count a 401 or 403 as a failure, keyed by the user, and
 *    are locked the same way (a stolen token cannot guess the password);
 *    only a password change forgets them. The reset request is also
 *    limited per account (5 per 15 minutes, off with EcomAuthRateLimit 0),
 *    so strangers cannot flood an owner's mailbox;
 *  - password hashings in flight in one process (EcomArgon2MaxInFlight):
 *    the handlers of those routes hold a slot, taken with apr_atomic; past
 *    the bound the answer is 503 with Retry-After: 1 at once, no queue.
 *
 * State: the request budgets are GCRA (ecom_rate.c): one number per key,
 * the theoretical arrival time. The lock state is "failures until". Keys
 * are "ecom:thr:<kind>:<SHA-256 of the address, token or e-mail>", never
 * the value itself. Each decision is a read-modify-write done under a
 * global mutex, so it is exact across the child processes of one host.
 * The store:
 *  - with EcomCache on an MP-safe, shared provider (redis, memcache), that
 *    same store, so every host counts together. Two hosts can read the same
 *    value at the same moment (the socache API has no atomic increment) and
 *    one update is lost: across hosts a budget is approximate, at worst H
 *    times its limit with H hosts if every request raced (each host decides
 *    one at a time), in practice a few requests more than the limit;
 *  - otherwise (shmcb, no EcomCache, EcomCache none) an anonymous shmcb
 *    segment of its own (shmcb's default size, 512,000 bytes, thousands of
 *    keys), so catalog pages cannot evict lock-outs. Without
 *    mod_socache_shmcb there is no store: budgets and locks are off, with a
 *    warning at start-up (ECOM4701); the hashing bound still holds.
 * Everything is safe to lose: a lost key is a fresh budget. When the store
 * or its mutex fails, the request passes (logged): throttling never takes
 * the API down.
 *
 * Client address: r->useragent_ip, so behind a proxy mod_remoteip decides
 * which X-Forwarded-For hop to trust; IPv6 addresses count per /64.
 *
 * Memory: each hashing takes 19 MiB. glibc raises its mmap threshold after
 * the first such block is freed, after which they come from the heap and
 * stay resident; child_init fixes the threshold at 1 MiB (mallopt), so every
 * block goes back to the system when freed (README.md has the figures).
 *
 * Counters (refusals by kind, failed logins) live in an anonymous shared
 * segment, summed over the children; GET of the ecom-status handler shows
 * them with the settings (ecom_throttle_report). Log tags: ECOM47xx.
 */
#include "ecom_throttle.h"
#include "ecom_session.h"
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_cache.h"
#include "ecom_crypto.h"
#include "ecom_rate.h"
#include "ecom_metrics.h"

#include "ap_socache.h"
#include "ap_provider.h"
#include "http_main.h"
#include "http_core.h"
#include "util_mutex.h"
#include "apr_atomic.h"
#include "apr_global_mutex.h"
#include "apr_shm.h"

#include <malloc.h>
#include <netinet/in.h>

#define THROTTLE_MUTEX  "ecom-throttle"
#define SEC             APR_INT64_C(1000000)
#define AUTH_WINDOW     (60 * SEC)      /* EcomAuthRateLimit's */
#define PAIR_FREE       3               /* failures of a pair before a lock */
#define ACCOUNT_FREE    5               /* failures of an account before one */
#define FAIL_MEMORY     (900 * SEC)     /* failures are forgotten after */
#define RESET_LIMIT     5               /* reset requests per account ... */
#define RESET_WINDOW    (900 * SEC)     /* ... per 15 minutes */
#define VALUE_MAX       64
#define MMAP_THRESHOLD  (1024 * 1024)

/* Refusals since httpd (re)started, summed over the children: an
 * anonymous shared-memory segment made at post_config, inherited. */
typedef struct {
    volatile apr_uint64_t rate_limited, login_locked, busy, failed_logins;
} throttle_stats;

struct ecom_throttle {
    const ap_socache_provider_t *provider;  /* NULL: no store */
    ap_socache_instance_t *inst;
    apr_global_mutex_t *mutex;
    int shared;                 /* EcomCache's MP-safe store */
    volatile apr_uint32_t argon2_busy;  /* this process's hashings (each
                                         * child has its own copy) */
    throttle_stats *stats;      /* NULL when shared memory was refused */
};

#define COUNT(t, field) \
    do { if ((t)->stats) apr_atomic_inc64(&(t)->stats->field); } while (0)

/* What a request is to the throttle. */
enum { K_API, K_LOGIN, K_REGISTER, K_PASSWORD, K_RESET, K_RESET_CONFIRM,
       K_ME };

/* The per-request state (q->thr). */
struct ecom_throttle_req {
    int kind;
    int slot;                   /* holds a hashing slot */
    int entered;                /* ecom_throttle_enter let it through */
    const char *account;        /* "e:<email>" or "u:<id>", or NULL */
};

static int route_kind(const ecom_req *q)
{
    const ecom_route *rt = q->route;
    const char *p = rt ? rt->pattern : NULL;

    if (!p || strncmp(p, "auth/", 5) != 0) {
        return K_API;
    }
    p += 5;
    if (rt->method == M_POST && !strcmp(p, "login")) {
        return K_LOGIN;
    }
    if (rt->method == M_POST && !strcmp(p, "register")) {
        return K_REGISTER;
    }
    if (!strncmp(p, "password-reset", 14)) {
        return p[14] ? K_RESET_CONFIRM : K_RESET;
    }
    if (!strncmp(p, "password", 8)) {
        return K_PASSWORD;
    }
    if (!strcmp(p, "me") && rt->method != M_GET) {
        /* a profile change or a closing may check the password */
        return K_ME;
    }
    return K_API;
}

static int is_auth(int kind)
{
    return kind == K_LOGIN || kind == K_REGISTER || kind == K_PASSWORD
           || kind == K_RESET || kind == K_RESET_CONFIRM;
}

static struct ecom_throttle_req *state(ecom_req *q)
{
    if (!q->thr) {
        q->thr = apr_pcalloc(q->r->pool, sizeof(*q->thr));
        q->thr->kind = route_kind(q);
    }
    return q->thr;
}

/* ---- configuration ---- */

int ecom_throttle_pre_config(apr_pool_t *pconf, apr_pool_t *plog)
{
    apr_status_t rv = ap_mutex_register(pconf, THROTTLE_MUTEX, NULL,
                                        APR_LOCK_DEFAULT, 0);

    if (rv != APR_SUCCESS) {
        ap_log_perror(APLOG_MARK, APLOG_CRIT, rv, plog, "ECOM4700: could not "
                      "register the %s mutex", THROTTLE_MUTEX);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

static apr_status_t store_destroy(void *data)
{
    struct ecom_throttle *t = data;

    if (t->inst && !t->shared) {
        t->provider->destroy(t->inst, ap_server_conf);
        t->inst = NULL;
    }
    return APR_SUCCESS;
}

/* The throttle's own anonymous shmcb segment; 0 when shmcb is not there. */
static int own_store(struct ecom_throttle *t, apr_pool_t *pconf,
                     apr_pool_t *ptemp, server_rec *s)
{
    static struct ap_socache_hints hints = { 80, 24, 900 };
    apr_status_t rv;

    t->provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb",
                                     AP_SOCACHE_PROVIDER_VERSION);
    if (!t->provider || t->provider->create(&t->inst, NULL, ptemp, pconf)) {
        t->provider = NULL;
        return 0;
    }
    rv = t->provider->init(t->inst, "mod_ecom_throttle", &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "ECOM4702: could not "
                     "initialise the throttle's shmcb segment");
        t->provider = NULL;
        return -1;
    }
    apr_pool_cleanup_register(pconf, t, store_destroy, apr_pool_cleanup_null);
    return 1;
}

int ecom_throttle_post_config(apr_pool_t *pconf, apr_pool_t *ptemp,
                              server_rec *s)
{
    struct ecom_throttle *t = apr_pcalloc(pconf, sizeof(*t));
    const ap_socache_provider_t *cp = NULL;
    ap_socache_instance_t *ci = NULL;
    apr_status_t rv;
    apr_shm_t *shm;
    server_rec *sp;

    if (ecom_cache_socache(s, &cp, &ci) && !(cp->flags
                                             & AP_SOCACHE_FLAG_NOTMPSAFE)) {
        t->provider = cp;
        t->inst = ci;
        t->shared = 1;
    }
    else if (own_store(t, pconf, ptemp, s) < 0) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (t->provider) {
        /* the read-modify-writes of this host's processes, one at a time
         * (and the only access to the own segment, which is not MP-safe) */
        rv = ap_global_mutex_create(&t->mutex, NULL, THROTTLE_MUTEX, NULL, s,
                                    pconf, 0);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "ECOM4703: could not "
                         "create the throttle's mutex");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    else if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ECOM4701: no store for "
                     "the throttle (load mod_socache_shmcb, or set EcomCache "
                     "to a shared provider): EcomRateLimit, "
                     "EcomTokenRateLimit, EcomAuthRateLimit and the login "
                     "locks are off; EcomArgon2MaxInFlight still applies");
    }
    if (apr_shm_create(&shm, sizeof(throttle_stats), NULL, pconf)
        == APR_SUCCESS) {
        t->stats = apr_shm_baseaddr_get(shm);
        memset(t->stats, 0, sizeof(*t->stats));
    }
    for (sp = s; sp; sp = sp->next) {
        ecom_srv_conf *sc = ap_get_module_config(sp->module_config,
                                                 &ecom_module);
        sc->throttle = t;
    }
    return OK;
}

void ecom_throttle_child_init(apr_pool_t *p, server_rec *s)
{
    ecom_srv_conf *sc = ap_get_module_config(s->module_config, &ecom_module);
    struct ecom_throttle *t = sc->throttle;
    apr_status_t rv;

    /* a fixed threshold also turns glibc's dynamic one off: every block of
     * 1 MiB or more is its own mapping, unmapped when freed */
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    if (t && t->mutex) {
        rv = apr_global_mutex_child_init(&t->mutex,
                                         apr_global_mutex_lockfile(t->mutex),
                                         p);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "ECOM4704: could not "
                         "attach the throttle's mutex in this child");
        }
    }
}

/* ---- the store ---- */

static const char *key_of(ecom_req *q, const char *kind, const char *id)
{
    char hex[ECOM_SHA256_HEX];

    ecom_sha256_hex(id, strlen(id), hex);
    return apr_pstrcat(q->r->pool, "ecom:thr:", kind, ":", hex, NULL);
}

static int lock(ecom_req *q, struct ecom_throttle *t)
{
    apr_status_t rv = apr_global_mutex_lock(t->mutex);

    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, q->r, "ECOM4710: throttle "
                      "mutex unavailable: the request is not throttled");
        return 0;
    }
    return 1;
}

/* The value under key (NUL-terminated) or NULL; under the mutex. */
static const char *get(ecom_req *q, struct ecom_throttle *t, const char *key)
{
    unsigned char *buf = apr_palloc(q->r->pool, VALUE_MAX + 1);
    unsigned int n = VALUE_MAX;

    if (t->provider->retrieve(t->inst, q->r->server,
                              (const unsigned char *)key,
                              (unsigned int)strlen(key), buf, &n,
                              q->r->pool) != APR_SUCCESS || n > VALUE_MAX) {
        return NULL;
    }
    buf[n] = '\0';
    return (const char *)buf;
}

static void put(ecom_req *q, struct ecom_throttle *t, const char *key,
                const char *val, apr_time_t expiry)
{
    apr_status_t rv = t->provider->store(t->inst, q->r->server,
                                         (const unsigned char *)key,
                                         (unsigned int)strlen(key), expiry,
                                         (unsigned char *)val,
                                         (unsigned int)strlen(val),
                                         q->r->pool);

    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, q->r, "ECOM4711: throttle "
                      "store failed");
    }
}

/* One GCRA step on key: 1 allowed, 0 refused (out filled either way);
 * 1 also when the store cannot be used. */
static int take(ecom_req *q, const char *key, apr_int64_t limit,
                apr_int64_t window, ecom_gcra *out)
{
    struct ecom_throttle *t = q->sc->throttle;
    apr_time_t now = apr_time_now();
    const char *v;
    apr_int64_t tat = 0;

    if (!lock(q, t)) {
        memset(out, 0, sizeof(*out));
        out->allowed = 1;
        out->remaining = limit;
        return 1;
    }
    if ((v = get(q, t, key)) != NULL) {
        tat = apr_atoi64(v);
    }
    ecom_gcra_take(now, tat, limit, window, out);
    if (out->allowed) {
        put(q, t, key, apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT, out->tat),
            out->tat + SEC);
    }
    apr_global_mutex_unlock(t->mutex);
    return out->allowed;
}

/* ---- answers ---- */

static void add_header(ecom_req *q, const char *name, const char *val)
{
    apr_table_merge(q->r->err_headers_out, name, val);
}

static int too_many(ecom_req *q, apr_int64_t retry_us, const char *slug,
                    const char *detail)
{
    apr_int64_t s = ecom_ceil_sec(retry_us);

    apr_table_setn(q->r->err_headers_out, "Retry-After",
                   apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT,
                                s > 0 ? s : 1));
    return ecom_problem(q, HTTP_TOO_MANY_REQUESTS, slug, detail);
}

/* One budget: its RateLimit-Policy and RateLimit items, and 429 when it
 * is spent. */
static int budget(ecom_req *q, const char *name, const char *id,
                  apr_int64_t limit, apr_int64_t window, const char *detail)
{
    ecom_gcra g;
    int ok = take(q, key_of(q, name, id), limit, window, &g);
    apr_pool_t *p = q->r->pool;

    add_header(q, "RateLimit-Policy",
               apr_psprintf(p, "\"%s\";q=%" APR_INT64_T_FMT ";w=%"
                            APR_INT64_T_FMT, name, limit, window / SEC));
    add_header(q, "RateLimit",
               apr_psprintf(p, "\"%s\";r=%" APR_INT64_T_FMT ";t=%"
                            APR_INT64_T_FMT, name, g.remaining,
                            ecom_ceil_sec(ok ? g.reset : g.retry)));
    if (ok) {
        return 0;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, "ECOM4720: %s budget "
                  "spent (%" APR_INT64_T_FMT " per %" APR_INT64_T_FMT " s)",
                  name, limit, window / SEC);
    COUNT(q->sc->throttle, rate_limited);
    return too_many(q, g.retry, "rate-limited", detail);
}

/* The client's address as counted: IPv6 per /64. */
static const char *client_key(ecom_req *q)
{
    const apr_sockaddr_t *sa = q->r->useragent_addr;

    if (sa && sa->family == APR_INET6) {
        const unsigned char *a = sa->sa.sin6.sin6_addr.s6_addr;
        if (!IN6_IS_ADDR_V4MAPPED(&sa->sa.sin6.sin6_addr)) {
            return apr_psprintf(q->r->pool, "%02x%02x:%02x%02x:%02x%02x:"
                                "%02x%02x::/64", a[0], a[1], a[2], a[3], a[4],
                                a[5], a[6], a[7]);
        }
    }
    return q->r->useragent_ip ? q->r->useragent_ip : "";
}

int ecom_throttle_request(ecom_req *q)
{
    const ecom_srv_conf *sc = q->sc;
    struct ecom_throttle_req *st = state(q);
    const char *auth;
    int rv;

    if (!sc->throttle || !sc->throttle->provider
        || (q->route && q->route->auth == ECOM_AUTH_OPERATOR)) {
        return 0;
    }
    if (sc->rate_limit > 0
        && (rv = budget(q, "addr", client_key(q), sc->rate_limit,
                        sc->rate_window * SEC, "Too many requests from this "
                        "address; retry after the time in Retry-After."))) {
        return rv;
    }
    /* a browser's cookie session counts by the token it holds, as the
     * same token sent as a bearer would (the key is its hash either way) */
    auth = apr_table_get(q->r->headers_in, "Authorization");
    if (sc->token_rate_limit > 0 && !auth) {
        const char *tok = ecom_session_peek_token(q);

        auth = tok ? apr_pstrcat(q->r->pool, "Bearer ", tok, NULL) : NULL;
    }
    if (sc->token_rate_limit > 0 && auth
        && (rv = budget(q, "token", auth, sc->token_rate_limit,
                        sc->rate_window * SEC, "Too many requests with this "
                        "token; retry after the time in Retry-After."))) {
        return rv;
    }
    if (sc->auth_rate_limit > 0 && is_auth(st->kind)
        && (rv = budget(q, "auth", client_key(q), sc->auth_rate_limit,
                        AUTH_WINDOW, "Too many login, registration or "
                        "password requests from this address; retry after "
                        "the time in Retry-After."))) {
        return rv;
    }
    return 0;
}

/* ---- failed logins ---- */

typedef struct {
    int fails;
    apr_time_t until;
} lock_state;

static lock_state read_lock(ecom_req *q, struct ecom_throttle *t,
                            const char *key)
{
    lock_state l = { 0, 0 };
    const char *v = get(q, t, key);
    char *end;

    if (v) {
        l.fails = (int)strtol(v, &end, 10);
        l.until = apr_atoi64(end);
    }
    return l;
}

static void write_lock(ecom_req *q, struct ecom_throttle *t, const char *key,
                       lock_state l, apr_time_t now)
{
    apr_time_t expiry = now + FAIL_MEMORY;

    put(q, t, key, apr_psprintf(q->r->pool, "%d %" APR_TIME_T_FMT, l.fails,
                                l.until), l.until > expiry ? l.until : expiry);
}

static const char *pair_of(ecom_req *q, const char *account)
{
    return key_of(q, "pair", apr_pstrcat(q->r->pool, account, "|",
                                         client_key(q), NULL));
}

/* The account a password endpoint's request is about, or NULL. */
static const char *account_of(ecom_req *q, int kind)
{
    json_t *e = q->body ? json_object_get(q->body, "email") : NULL;
    const char *s = json_is_string(e) ? json_string_value(e) : NULL;

    if ((kind == K_PASSWORD || kind == K_ME) && q->user_id) {
        return apr_psprintf(q->r->pool, "u:%" APR_INT64_T_FMT,
                            (apr_int64_t)q->user_id);
    }
    if ((kind == K_LOGIN || kind == K_RESET) && s && *s) {
        char *lower = apr_pstrdup(q->r->pool, s);
        ap_str_tolower(lower);
        return apr_pstrcat(q->r->pool, "e:", lower, NULL);
    }
    return NULL;
}

/* 429 while the account is locked for this address (see the top of the
 * file), else 0. */
static int check_lock(ecom_req *q, const char *account)
{
    struct ecom_throttle *t = q->sc->throttle;
    apr_time_t now, until;
    lock_state pair, acct;

    if (!lock(q, t)) {
        return 0;
    }
    /* the clock read under the mutex: a failure recorded while this
     * request waited for it locks from its own later now, and measured
     * from an earlier one the wait would exceed EcomLoginLockout */
    now = apr_time_now();
    pair = read_lock(q, t, pair_of(q, account));
    acct = read_lock(q, t, key_of(q, "acct", account));
    apr_global_mutex_unlock(t->mutex);
    if (pair.fails == 0) {
        /* this address never failed on the account */
        return 0;
    }
    until = pair.until > acct.until ? pair.until : acct.until;
    if (now >= until) {
        return 0;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, "ECOM4721: login locked "
                  "for this address after %d failures (%d on the account)",
                  pair.fails, acct.fails);
    COUNT(t, login_locked);
    return too_many(q, until - now, "login-locked", "Too many failed attempts "
                    "for this account from this address; retry after the "
                    "time in Retry-After.");
}

static void record(ecom_req *q, const char *account, int failed)
{
    struct ecom_throttle *t = q->sc->throttle;
    apr_time_t now;
    apr_int64_t max = (apr_int64_t)q->sc->login_lockout * SEC;
    const char *pk = pair_of(q, account), *ak = key_of(q, "acct", account);
    lock_state pair, acct;

    if (!lock(q, t)) {
        return;
    }
    now = apr_time_now();    /* under the mutex, as check_lock's */
    if (!failed) {
        t->provider->remove(t->inst, q->r->server, (const unsigned char *)pk,
                            (unsigned int)strlen(pk), q->r->pool);
        t->provider->remove(t->inst, q->r->server, (const unsigned char *)ak,
                            (unsigned int)strlen(ak), q->r->pool);
        apr_global_mutex_unlock(t->mutex);
        return;
    }
    pair = read_lock(q, t, pk);
    acct = read_lock(q, t, ak);
    pair.fails++;
    acct.fails++;
    pair.until = now + ecom_backoff(pair.fails, PAIR_FREE, max);
    acct.until = now + ecom_backoff(acct.fails, ACCOUNT_FREE, max);
    write_lock(q, t, pk, pair, now);
    write_lock(q, t, ak, acct, now);
    apr_global_mutex_unlock(t->mutex);
}

/* ---- the hashing slots ---- */

static int take_slot(ecom_req *q, struct ecom_throttle_req *st)
{
    struct ecom_throttle *t = q->sc->throttle;

    if (apr_atomic_inc32(&t->argon2_busy) >= (apr_uint32_t)q->sc->argon2_max) {
        apr_atomic_dec32(&t->argon2_busy);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, "ECOM4722: %d password "
                      "hashings already running in this process "
                      "(EcomArgon2MaxInFlight): 503", q->sc->argon2_max);
        COUNT(t, busy);
        apr_table_setn(q->r->err_headers_out, "Retry-After", "1");
        return ecom_problem(q, HTTP_SERVICE_UNAVAILABLE, "server-busy",
                            "The server is busy checking other passwords; "
                            "retry after the time in Retry-After.");
    }
    st->slot = 1;
    ecom_metrics_argon2(q, 1);
    return 0;
}

int ecom_throttle_enter(ecom_req *q)
{
    struct ecom_throttle_req *st = state(q);
    struct ecom_throttle *t = q->sc->throttle;
    int rv;

    if (st->kind == K_API || !t) {
        return 0;
    }
    if (t->provider && (st->account = account_of(q, st->kind)) != NULL) {
        if (st->kind == K_RESET) {
            ecom_gcra g;
            if (q->sc->auth_rate_limit == 0) {
                /* EcomAuthRateLimit 0 turns the auth budgets off */
                return 0;
            }
            if (!take(q, key_of(q, "reset", st->account), RESET_LIMIT,
                      RESET_WINDOW, &g)) {
                COUNT(t, rate_limited);
                return too_many(q, g.retry, "rate-limited", "Too many "
                                "password reset requests for this account; "
                                "retry after the time in Retry-After.");
            }
        }
        else if (q->sc->login_lockout > 0
                 && (rv = check_lock(q, st->account))) {
            return rv;
        }
    }
    if (st->kind != K_RESET && (rv = take_slot(q, st))) {
        return rv;
    }
    st->entered = 1;
    return 0;
}

void ecom_throttle_leave(ecom_req *q)
{
    struct ecom_throttle_req *st = q->thr;

    if (!st) {
        return;
    }
    if (st->slot) {
        apr_atomic_dec32(&q->sc->throttle->argon2_busy);
        ecom_metrics_argon2(q, -1);
        st->slot = 0;
    }
    if (!st->entered || !st->account || q->sc->login_lockout == 0
        || (st->kind != K_LOGIN && st->kind != K_PASSWORD
            && st->kind != K_ME)) {
        /* a reset request's 202 proves nothing: it must not clear locks */
        return;
    }
    if (q->status == HTTP_UNAUTHORIZED || q->status == HTTP_FORBIDDEN) {
        COUNT(q->sc->throttle, failed_logins);
        record(q, st->account, 1);
    }
    else if (q->status >= 200 && q->status < 300 && st->kind != K_ME) {
        /* not a profile change, which succeeds without a password when
         * it changes only the name */
        record(q, st->account, 0);
    }
}

/* ---- the operator's view ---- */

void ecom_throttle_counters(const server_rec *s,
                            struct ecom_throttle_counters *out)
{
    const ecom_srv_conf *sc = ap_get_module_config(s->module_config,
                                                   &ecom_module);
    const struct ecom_throttle *t = sc->throttle;

    memset(out, 0, sizeof(*out));
    if (t && t->stats) {
        out->rate_limited = apr_atomic_read64(&t->stats->rate_limited);
        out->login_locked = apr_atomic_read64(&t->stats->login_locked);
        out->busy = apr_atomic_read64(&t->stats->busy);
        out->failed_logins = apr_atomic_read64(&t->stats->failed_logins);
    }
}

json_t *ecom_throttle_report(ecom_req *q)
{
    const ecom_srv_conf *sc = q->sc;
    struct ecom_throttle *t = sc->throttle;
    const char *store = !t || !t->provider ? "none"
                        : t->shared ? t->provider->name : "shmcb (own)";
    throttle_stats zero = { 0, 0, 0, 0 };
    throttle_stats *n = t && t->stats ? t->stats : &zero;

    return ecom_jown(q, json_pack(
        "{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I}",
        "store", store,
        "rate_limit", sc->rate_limit,
        "token_rate_limit", sc->token_rate_limit,
        "rate_window", sc->rate_window,
        "auth_rate_limit", sc->auth_rate_limit,
        "login_lockout", sc->login_lockout,
        "argon2_max_in_flight", sc->argon2_max,
        "argon2_in_flight", t ? (int)apr_atomic_read32(&t->argon2_busy) : 0,
        "rate_limited", (json_int_t)apr_atomic_read64(&n->rate_limited),
        "login_locked", (json_int_t)apr_atomic_read64(&n->login_locked),
        "busy", (json_int_t)apr_atomic_read64(&n->busy),
        "failed_logins", (json_int_t)apr_atomic_read64(&n->failed_logins)));
}
