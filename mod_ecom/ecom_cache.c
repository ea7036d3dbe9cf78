/*
 * ecom_cache.c: an optional response cache on Apache's socache providers
 * (EcomCache shmcb:..., redis:..., memcache:...), used for catalog list
 * pages, the hottest anonymous read.
 *
 * One cache serves every virtual host (EcomCache is a main-server
 * directive, and redis or memcache may be shared by many httpd hosts), so
 * a key names whose page it holds:
 *  - the virtual host: its ServerName and port and the addresses of its
 *    <VirtualHost> line as written (host_identity()), the same on every node
 *    of a farm that shares one configuration;
 *  - the database, as PostgreSQL itself identifies it: the cluster's system
 *    identifier (made by initdb, so a dump restored in another cluster
 *    differs) and the database's oid and name (a dump restored beside it in
 *    the same cluster differs). Each child process asks once per virtual
 *    host (db_tag()) and keeps the answer; until it knows, nothing is cached
 *    or served from the cache;
 *  - the mount point and page sizes of the <Location>;
 *  - the query parameters the handler reads, in a fixed order, each value
 *    length-prefixed so that none can pass for two; any other parameter is
 *    left out, so "?x=1" or another order finds the same page.
 * That text is hashed with SHA-256, which bounds the key for every provider
 * (memcache refuses keys over about 120 bytes).
 *
 * Invalidation without enumerating keys: every key embeds the current
 * catalog "generation" of its database, itself a cache entry. A write that
 * changes what a list shows (product create/update, checkout's stock
 * decrement) stores a new generation for its database, so older pages of
 * that database, on every virtual host that serves it, are never looked up
 * again and age out, while other databases' pages stay valid. The
 * generation follows the database, not the virtual host: the HTTP and
 * HTTPS hosts of one shop must see each other's writes at once.
 * A missing generation (cache restarted or evicted) is re-seeded from the
 * clock, never reset to an old value. Every entry also expires after
 * EcomCacheTTL seconds, which bounds staleness if a write on another host
 * could not reach a host-local cache. Everything here is safe to lose.
 *
 * The Ecom-Cache: hit|miss response header is a diagnostic: it is sent only
 * when mod_ecom logs at debug level for the request.
 */
#include "ecom_cache.h"
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_crypto.h"

#include "ap_socache.h"
#include "ap_provider.h"
#include "util_mutex.h"
#include "apr_atomic.h"
#include "apr_global_mutex.h"

#define CACHE_MUTEX "ecom-cache"
#define MAX_VALUE   262144u   /* 256 KiB: a 100-item page is ~40 KiB */
#define DB_TAG_LEN  32        /* hex digits of the database identity's hash */

struct ecom_cache {
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *inst;
    apr_global_mutex_t *mutex;   /* for providers that are not MP-safe */
};

enum { DB_UNKNOWN, DB_WRITING, DB_KNOWN };

/* A virtual host's part of the keys, one per server_rec. host is set at
 * post_config; db is learnt by each child process on first use: db_state
 * goes once from DB_UNKNOWN to DB_KNOWN, db being written by the one
 * thread that moved it to DB_WRITING, so readers need no lock. */
struct ecom_cache_site {
    const char *host;
    volatile apr_uint32_t db_state;
    char db[DB_TAG_LEN + 1];
};

static const ecom_stmt cache_sql[] = {
    /* what the database is, for the cache keys (see the top of the file);
     * not the server's address, so that the same database reached another
     * way (a pooler, another address) keeps one generation */
    { "ecom_cache_db",
      "SELECT s.system_identifier, d.oid, d.datname "
      "FROM pg_control_system() s, pg_database d "
      "WHERE d.datname = current_database()", ECOM_STMT_READ },
    { NULL, NULL, 0 }
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

/* The virtual host in the keys: ServerName:port, then for a <VirtualHost>
 * each of its addresses as written in the configuration. Stable across
 * restarts, and the same on every node that runs the same configuration,
 * so that a shared cache is shared by the same virtual host everywhere. */
static const char *host_identity(apr_pool_t *p, const server_rec *s)
{
    const char *id = apr_psprintf(p, "%s:%u", s->server_hostname
                                  ? s->server_hostname : "",
                                  (unsigned)s->port);
    const server_addr_rec *a;

    for (a = s->is_virtual ? s->addrs : NULL; a; a = a->next) {
        id = apr_psprintf(p, "%s %s:%u", id, a->virthost ? a->virthost : "",
                          (unsigned)a->host_port);
    }
    return id;
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
     * same cache, under keys of its own */
    for (sp = s; sp; sp = sp->next) {
        ecom_srv_conf *v = ap_get_module_config(sp->module_config,
                                                &ecom_module);
        v->cache = c;
        v->cache_site = NULL;
        if (c) {
            v->cache_site = apr_pcalloc(pconf, sizeof(*v->cache_site));
            v->cache_site->host = host_identity(pconf, sp);
        }
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

/* The tag of this virtual host's database in the keys, from the child's
 * memory or else asked of PostgreSQL (once per child and virtual host).
 * Returns ECOM_OK or the lookup's failure (already logged by the data
 * layer); *tag is NULL when there is no answer to cache under. */
static ecom_err db_tag(ecom_req *q, const char **tag)
{
    ecom_cache_site *site = q->sc->cache_site;
    const char *sys, *oid, *name;
    char hex[ECOM_SHA256_HEX];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    char *id;
    ecom_err e;

    *tag = NULL;
    if (apr_atomic_read32(&site->db_state) == DB_KNOWN) {
        *tag = site->db;
        return ECOM_OK;
    }
    if ((e = ecom_db_select(q, "ecom_cache_db", &res, 0, NULL))) {
        return e;
    }
    if (!(row = ecom_db_row(q, res)) || !(sys = ecom_db_get(q, row, 0))
        || !(oid = ecom_db_get(q, row, 1)) || !(name = ecom_db_get(q, row, 2))) {
        return ECOM_OK;
    }
    id = apr_pstrcat(q->r->pool, sys, "/", oid, "/", name, NULL);
    ecom_sha256_hex(id, strlen(id), hex);
    hex[DB_TAG_LEN] = '\0';
    *tag = apr_pstrdup(q->r->pool, hex);
    /* the first thread to get here keeps it for the child; any other one
     * uses its own copy, the same */
    if (apr_atomic_cas32(&site->db_state, DB_WRITING, DB_UNKNOWN)
        == DB_UNKNOWN) {
        memcpy(site->db, hex, DB_TAG_LEN + 1);
        apr_atomic_cas32(&site->db_state, DB_KNOWN, DB_WRITING);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, q->r, APLOGNO(10923)
                      "EcomCache: database %s (system %s, oid %s) is %s in "
                      "the keys of %s", name, sys, oid, site->db, site->host);
    }
    return ECOM_OK;
}

/* The key of the current catalog generation of a database. */
static const char *gen_key(ecom_req *q, const char *db)
{
    return apr_pstrcat(q->r->pool, "ecom:gen:", db, NULL);
}

/* The current catalog generation (seeded from the clock when missing). */
static const char *generation(ecom_req *q, const char *db)
{
    const char *key = gen_key(q, db);
    char *g;
    apr_size_t n;

    if (get(q, key, &g, &n)) {
        return g;
    }
    g = apr_psprintf(q->r->pool, "%" APR_TIME_T_FMT, apr_time_now());
    put(q, key, g, strlen(g), 86400);
    return g;
}

/* Appends one field to a key's text as "<length>:<bytes>", or "-" when it
 * is absent, so that no value, whatever bytes it holds, reads as two. */
static const char *field(apr_pool_t *p, const char *text, const char *v)
{
    if (!v) {
        return apr_pstrcat(p, text, "-", NULL);
    }
    return apr_psprintf(p, "%s%" APR_SIZE_T_FMT ":%s", text, strlen(v), v);
}

int ecom_cache_key(ecom_req *q, const char *kind, const char *const *params,
                   const char **key)
{
    apr_pool_t *p = q->r->pool;
    const char *db, *text = "";
    char hex[ECOM_SHA256_HEX];
    int i;

    *key = NULL;
    if (!q->sc->cache) {
        return 0;
    }
    if (db_tag(q, &db) || !db) {
        /* best effort: the handler's own query reports the database */
        return 0;
    }
    /* the mount point and page sizes are part of the key: two <Location>s
     * with different settings never share pages */
    text = field(p, text, kind);
    text = field(p, text, q->sc->cache_site->host);
    text = field(p, text, db);
    text = field(p, text, generation(q, db));
    text = field(p, text, q->dc->base ? q->dc->base : "");
    text = field(p, text, apr_itoa(p, q->dc->page_size));
    text = field(p, text, apr_itoa(p, q->dc->page_max));
    for (i = 0; params[i]; i++) {
        text = field(p, text, apr_table_get(q->args, params[i]));
    }
    ecom_sha256_hex(text, strlen(text), hex);
    *key = apr_pstrcat(p, "ecom:page:", hex, NULL);
    return 0;
}

/* Ecom-Cache is for operators and tests, not part of the API: only when
 * mod_ecom logs at debug level for this request. */
static void note(ecom_req *q, const char *what)
{
    if (APLOGrdebug(q->r)) {
        apr_table_setn(q->r->headers_out, "Ecom-Cache", what);
    }
}

int ecom_cache_serve(ecom_req *q, const char *key)
{
    char *val;
    apr_size_t len;

    if (!key || !get(q, key, &val, &len)) {
        if (key) {
            note(q, "miss");
        }
        return 0;
    }
    note(q, "hit");
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

/* db_tag() after a write that succeeded: the data layer writes no answer,
 * so a failed lookup cannot change the write's. */
static const char *db_tag_after_write(ecom_req *q)
{
    const char *tag = NULL;

    db_tag(q, &tag);
    if (!tag) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r, APLOGNO(10924)
                      "EcomCache: database unknown, cached pages could not "
                      "be invalidated (they expire within EcomCacheTTL)");
    }
    return tag;
}

void ecom_cache_invalidate(ecom_req *q)
{
    const char *db, *g;

    if (q->in_tx) {
        /* inside the request's transaction (an Idempotency-Key request):
         * invalidating now would let another request cache the old state
         * again before the commit; ecom_idem_run does it after COMMIT */
        q->cache_dirty = 1;
        return;
    }
    if (!q->sc->cache || !(db = db_tag_after_write(q))) {
        return;
    }
    g = apr_psprintf(q->r->pool, "%" APR_TIME_T_FMT, apr_time_now());
    put(q, gen_key(q, db), g, strlen(g), 86400);
}

const ecom_resource ecom_cache_resource = { "cache", cache_sql, NULL, NULL };
