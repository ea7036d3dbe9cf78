/*
 * ecom_cache.c: an optional response cache on Apache's socache providers
 * (EcomCache shmcb:..., redis:..., memcache:...), used for catalog list
 * pages, the hottest anonymous read.
 *
 * Invalidation without enumerating keys: every key embeds the current
 * catalog "generation", itself a cache entry. A write that changes what a
 * list shows (product create/update, checkout's stock decrement) stores a
 * new generation, so older pages are never looked up again and age out.
 * A missing generation (cache restarted or evicted) is re-seeded from the
 * clock, never reset to an old value. Every entry also expires after
 * EcomCacheTTL seconds, which bounds staleness if a write on another host
 * could not reach a host-local cache. Everything here is safe to lose.
 */
#include "ecom.h"

#include "ap_socache.h"
#include "ap_provider.h"
#include "util_mutex.h"
#include "apr_global_mutex.h"

#define CACHE_MUTEX "ecom-cache"
#define MAX_VALUE   262144u   /* 256 KiB: a 100-item page is ~40 KiB */

struct ecom_cache {
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *inst;
    apr_global_mutex_t *mutex;   /* for providers that are not MP-safe */
};

const char *ecom_cache_configure(cmd_parms *cmd, ecom_srv_conf *sc,
                                 const char *arg)
{
    const char *sep = strchr(arg, ':'), *name, *err;
    ecom_cache *c;

    if (!strcasecmp(arg, "none")) {
        sc->cache = NULL;
        sc->cache_set = 1;
        return NULL;
    }
    name = sep ? apr_pstrmemdup(cmd->pool, arg, (apr_size_t)(sep - arg)) : arg;
    c = apr_pcalloc(cmd->pool, sizeof(*c));
    c->provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name,
                                     AP_SOCACHE_PROVIDER_VERSION);
    if (!c->provider) {
        return apr_psprintf(cmd->pool, "EcomCache: unknown socache provider "
                            "'%s' (is mod_socache_%s loaded?)", name, name);
    }
    err = c->provider->create(&c->inst, sep ? sep + 1 : NULL, cmd->temp_pool,
                              cmd->pool);
    if (err) {
        return apr_psprintf(cmd->pool, "EcomCache: %s", err);
    }
    sc->cache = c;
    sc->cache_set = 1;
    return NULL;
}

static apr_status_t cache_destroy(void *data)
{
    server_rec *s = data;
    ecom_srv_conf *sc = ap_get_module_config(s->module_config, &ecom_module);

    if (sc->cache && sc->cache->inst) {
        sc->cache->provider->destroy(sc->cache->inst, s);
        sc->cache->inst = NULL;
    }
    return APR_SUCCESS;
}

void ecom_cache_pre_config(apr_pool_t *pconf)
{
    ap_mutex_register(pconf, CACHE_MUTEX, NULL, APR_LOCK_DEFAULT, 0);
}

/* With no EcomCache directive the cache is on where shmcb is available:
 * an anonymous shared-memory segment of the provider's default size, as
 * DESIGN.md asks (shmcb on one host by default). */
static ecom_cache *default_cache(apr_pool_t *pconf, apr_pool_t *ptemp)
{
    ecom_cache *c = apr_pcalloc(pconf, sizeof(*c));

    c->provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb",
                                     AP_SOCACHE_PROVIDER_VERSION);
    if (!c->provider || c->provider->create(&c->inst, NULL, ptemp, pconf)) {
        return NULL;
    }
    return c;
}

int ecom_cache_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    /* a typical value is a 20-item page of about 8 KiB */
    static struct ap_socache_hints hints = { 64, 8192, 60 };
    ecom_srv_conf *sc = ap_get_module_config(s->module_config, &ecom_module);
    ecom_cache *c = sc->cache_set ? sc->cache : default_cache(pconf, ptemp);
    server_rec *sp;
    apr_status_t rv;

    /* EcomCache is a main-server directive: every virtual host uses the
     * same cache */
    for (sp = s; sp; sp = sp->next) {
        ecom_srv_conf *v = ap_get_module_config(sp->module_config,
                                                &ecom_module);
        v->cache = c;
    }
    if (!c) {
        return OK;
    }
    if (c->provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
        rv = ap_global_mutex_create(&c->mutex, NULL, CACHE_MUTEX, NULL, s,
                                    pconf, 0);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, APLOGNO(10920)
                         "EcomCache: could not create the cache mutex");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    rv = c->provider->init(c->inst, "mod_ecom", &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, APLOGNO(10921)
                     "EcomCache: could not initialise the cache");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, s, cache_destroy, apr_pool_cleanup_null);
    return OK;
}

void ecom_cache_child_init(apr_pool_t *p, server_rec *s)
{
    ecom_srv_conf *sc = ap_get_module_config(s->module_config, &ecom_module);

    if (sc->cache && sc->cache->mutex) {
        apr_global_mutex_child_init(&sc->cache->mutex,
                                    apr_global_mutex_lockfile(sc->cache->mutex),
                                    p);
    }
}

static int locked(ecom_cache *c)
{
    return !c->mutex || apr_global_mutex_lock(c->mutex) == APR_SUCCESS;
}

static void unlock(ecom_cache *c)
{
    if (c->mutex) {
        apr_global_mutex_unlock(c->mutex);
    }
}

static int get(ecom_req *q, const char *key, char **val, apr_size_t *len)
{
    ecom_cache *c = q->sc->cache;
    unsigned char *buf = apr_palloc(q->r->pool, MAX_VALUE + 1);
    unsigned int n = MAX_VALUE;
    apr_status_t rv;

    if (!locked(c)) {
        return 0;
    }
    rv = c->provider->retrieve(c->inst, q->r->server,
                               (const unsigned char *)key,
                               (unsigned int)strlen(key), buf, &n, q->r->pool);
    unlock(c);
    if (rv != APR_SUCCESS || n > MAX_VALUE) {
        return 0;
    }
    buf[n] = '\0';
    *val = (char *)buf;
    *len = n;
    return 1;
}

static void put(ecom_req *q, const char *key, const char *val, apr_size_t len,
                int ttl)
{
    ecom_cache *c = q->sc->cache;
    apr_status_t rv;

    if (len > MAX_VALUE || !locked(c)) {
        return;
    }
    rv = c->provider->store(c->inst, q->r->server, (const unsigned char *)key,
                            (unsigned int)strlen(key),
                            apr_time_now() + apr_time_from_sec(ttl),
                            (unsigned char *)val, (unsigned int)len,
                            q->r->pool);
    unlock(c);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, q->r, APLOGNO(10922)
                      "EcomCache: store failed");
    }
}

/* The current catalog generation (seeded from the clock when missing). */
static const char *generation(ecom_req *q)
{
    char *g;
    apr_size_t n;

    if (get(q, "ecom:gen", &g, &n)) {
        return g;
    }
    g = apr_psprintf(q->r->pool, "%" APR_TIME_T_FMT, apr_time_now());
    put(q, "ecom:gen", g, strlen(g), 86400);
    return g;
}

const char *ecom_cache_key(ecom_req *q, const char *kind)
{
    if (!q->sc->cache) {
        return NULL;
    }
    /* the mount point and page sizes are part of the key: two <Location>s
     * with different settings never share pages */
    return apr_psprintf(q->r->pool, "ecom:%s:%s:%s:%d:%d:%s", kind,
                        generation(q), q->dc->base ? q->dc->base : "",
                        q->dc->page_size, q->dc->page_max,
                        q->r->args ? q->r->args : "");
}

int ecom_cache_serve(ecom_req *q, const char *key)
{
    char *val;
    apr_size_t len;

    if (!key || !get(q, key, &val, &len)) {
        if (key) {
            apr_table_setn(q->r->headers_out, "Ecom-Cache", "miss");
        }
        return 0;
    }
    apr_table_setn(q->r->headers_out, "Ecom-Cache", "hit");
    q->status = HTTP_OK;
    q->out = val;
    q->out_len = len;
    q->ctype = "application/json; charset=utf-8";
    return HTTP_OK;
}

void ecom_cache_store(ecom_req *q, const char *key)
{
    if (key && q->status == HTTP_OK && q->out) {
        put(q, key, q->out, q->out_len, q->sc->cache_ttl);
    }
}

void ecom_cache_invalidate(ecom_req *q)
{
    if (q->in_tx) {
        /* inside the request's transaction (an Idempotency-Key request):
         * invalidating now would let another request cache the old state
         * again before the commit; ecom_idem_run does it after COMMIT */
        q->cache_dirty = 1;
        return;
    }
    if (q->sc->cache) {
        const char *g = apr_psprintf(q->r->pool, "%" APR_TIME_T_FMT,
                                     apr_time_now());
        put(q, "ecom:gen", g, strlen(g), 86400);
    }
}
