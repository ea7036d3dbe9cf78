/*
 * ecom_cache.c: an optional response cache on Apache's socache providers
 * (EcomCache shmcb:..., redis:..., memcache:...), used for catalog list
 * pages, the hottest anonymous read, and recommendation answers (in the
 * catalog section; ecom_recs.c adds what else they depend on to the key).
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
 *    or served from the cache, and the handler answers from its own query
 *    (which reports the database's problem if it has one): the cache never
 *    answers an error itself;
 *  - the section of the cache the answer belongs to and that section's
 *    current generation (below);
 *  - the mount point and page sizes of the <Location>;
 *  - the query parameters the handler reads, in a fixed order, each value
 *    length-prefixed so that none can pass for two; any other parameter is
 *    left out, so "?x=1" or another order finds the same page.
 * That text is hashed with SHA-256, which bounds the key for every provider
 * (memcache refuses keys over about 120 bytes).
 *
 * Invalidation without enumerating keys, by section: an answer belongs to
 * one section (ECOM_CACHE_CATALOG, _CATEGORIES, _REVIEWS), and its key
 * embeds the current generation of that section in its database, itself a
 * cache entry ("ecom:gen:<db>:<section>"). A write stores a new generation
 * for each section it changes, so the older answers of those sections of
 * that database, on every virtual host that serves it, are never looked up
 * again and age out, while other sections and other databases stay valid.
 * The generation follows the database, not the virtual host: the HTTP and
 * HTTPS hosts of one shop must see each other's writes at once. A missing
 * generation (cache restarted or evicted) is re-seeded from the clock,
 * never reset to an old value. Every entry also expires after EcomCacheTTL
 * seconds, which bounds staleness if a write on another host could not
 * reach a host-local cache. Everything here is safe to lose.
 *
 * What invalidates what: a product create or update, the catalog and the
 * categories. A checkout, the catalog only when the order took some
 * product's stock to 0, i.e. changed its in_stock (the product leaves
 * in_stock=true lists and joins in_stock=false ones). Any other checkout
 * leaves cached list pages in place, so the stock count a cached list page
 * shows may lag by at most EcomCacheTTL seconds: a deliberate choice, since
 * a busy shop's every order would otherwise empty the catalog (with 8
 * connections placing orders, a quarter of catalog page requests were
 * misses). The product detail, the cart and checkout always read live
 * stock, and checkout refuses to oversell whatever a list showed.
 *
 * Counters for operators (hits, misses, stores, invalidations by section,
 * and errors: lookups and stores the provider failed, e.g. Redis down)
 * live in an anonymous shared-memory segment made at post_config and
 * inherited by every child process, updated with apr_atomic's 64-bit
 * operations: they are the whole server's since it last (re)started.
 * mod_status shows them with the provider's own status (entries, ...)
 * through its status_hook, in HTML and in the ?auto form;
 * ecom_cache_counters() reads them for other reports.
 *
 * The Ecom-Cache: hit|miss response header is a diagnostic: it is sent only
 * when mod_ecom logs at debug level for the request. Log tags: ECOM06xx.
 */
#include "ecom_cache.h"
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_crypto.h"

#include "ap_socache.h"
#include "ap_provider.h"
#include "http_main.h"
#include "mod_status.h"
#include "util_mutex.h"
#include "apr_atomic.h"
#include "apr_global_mutex.h"
#include "apr_shm.h"

#define CACHE_MUTEX "ecom-cache"
#define MAX_VALUE   262144u   /* 256 KiB: a 100-item page is ~40 KiB */
#define DB_TAG_LEN  32        /* hex digits of the database identity's hash */
#define GEN_TTL     86400     /* seconds a generation entry is kept */

/* The counters, in shared memory (see the top of the file). */
typedef struct {
    volatile apr_uint64_t hits, misses, stores;
    volatile apr_uint64_t invalidations[ECOM_CACHE_NSECTIONS];
    /* issue 11: lookups and stores the provider failed (not a miss: a
     * Redis or memcached that cannot be reached) */
    volatile apr_uint64_t errors;
} cache_stats;

struct ecom_cache {
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *inst;
    apr_global_mutex_t *mutex;   /* for providers that are not MP-safe */
    cache_stats *stats;          /* NULL when shared memory was refused */
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

/* Section bit 1u << i: its name in generation keys and reports, and in
 * mod_status's ?auto form. */
static const struct {
    const char *name, *label;
} section_tab[ECOM_CACHE_NSECTIONS] = {
    { "catalog", "Catalog" },
    { "categories", "Categories" },
    { "reviews", "Reviews" },
};

/* ecom_cache_db */
enum { DB_SYSTEM_ID, DB_OID, DB_NAME };

static const ecom_stmt cache_sql[] = {
    /* what the database is, for the cache keys (see the top of the file);
     * not the server's address, so that the same database reached another
     * way (a pooler, another address) keeps one generation */
    { "ecom_cache_db",
      "SELECT " ECOM_CACHE_DB_COLS " FROM " ECOM_CACHE_DB_FROM,
      ECOM_STMT_READ },
    { NULL, NULL, 0 }
};

const char *ecom_cache_section_name(int i)
{
    return i >= 0 && i < ECOM_CACHE_NSECTIONS ? section_tab[i].name : NULL;
}

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

static int cache_status_hook(request_rec *r, int flags);

int ecom_cache_pre_config(apr_pool_t *pconf, apr_pool_t *plog)
{
    apr_status_t rv = ap_mutex_register(pconf, CACHE_MUTEX, NULL,
                                        APR_LOCK_DEFAULT, 0);

    if (rv != APR_SUCCESS) {
        ap_log_perror(APLOG_MARK, APLOG_CRIT, rv, plog,
                      "ECOM0600: EcomCache: could not register the %s mutex",
                      CACHE_MUTEX);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* mod_status calls it when it is loaded; nothing happens otherwise */
    APR_OPTIONAL_HOOK(ap, status_hook, cache_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
    return OK;
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

/* The counters' segment: anonymous, so every child forked from the parent
 * shares it and nothing is left on disk; it goes with pconf. The cache
 * works without it (counters read 0). */
static void make_stats(ecom_cache *c, apr_pool_t *pconf, server_rec *s)
{
    apr_shm_t *shm;
    apr_status_t rv = apr_shm_create(&shm, sizeof(cache_stats), NULL, pconf);

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "ECOM0603: EcomCache: no shared memory for the cache's "
                     "counters; the cache works, its counters read 0");
        c->stats = NULL;
        return;
    }
    c->stats = apr_shm_baseaddr_get(shm);
    memset(c->stats, 0, sizeof(*c->stats));
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
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "ECOM0601: EcomCache: could not create the cache "
                         "mutex");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    rv = c->provider->init(c->inst, "mod_ecom", &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "ECOM0602: EcomCache: could not initialise the cache");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, s, cache_destroy, apr_pool_cleanup_null);
    make_stats(c, pconf, s);
    return OK;
}

void ecom_cache_child_init(apr_pool_t *p, server_rec *s)
{
    ecom_srv_conf *sc = ap_get_module_config(s->module_config, &ecom_module);
    apr_status_t rv;

    /* the counters' segment needs nothing here: it is inherited */
    if (sc->cache && sc->cache->mutex) {
        rv = apr_global_mutex_child_init(&sc->cache->mutex,
                                         apr_global_mutex_lockfile(
                                             sc->cache->mutex), p);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "ECOM0604: EcomCache: could not attach the cache "
                         "mutex in this child");
        }
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

/* Adds one to a counter, when there are counters. */
#define COUNT(c, field) \
    do { if ((c)->stats) apr_atomic_inc64(&(c)->stats->field); } while (0)

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
    if (rv != APR_SUCCESS && rv != APR_NOTFOUND) {
        COUNT(c, errors);
    }
    if (rv != APR_SUCCESS || n > MAX_VALUE) {
        return 0;
    }
    buf[n] = '\0';
    *val = (char *)buf;
    *len = n;
    return 1;
}

/* Returns 1 when the value was stored (any caller: a request's put(),
 * or a background job's ecom_cache_invalidate_db()). */
static int store(ecom_cache *c, server_rec *s, apr_pool_t *p, const char *key,
                 const char *val, apr_size_t len, int ttl)
{
    apr_status_t rv;

    if (len > MAX_VALUE || !locked(c)) {
        return 0;
    }
    rv = c->provider->store(c->inst, s, (const unsigned char *)key,
                            (unsigned int)strlen(key),
                            apr_time_now() + apr_time_from_sec(ttl),
                            (unsigned char *)val, (unsigned int)len, p);
    unlock(c);
    if (rv != APR_SUCCESS) {
        COUNT(c, errors);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, rv, s,
                     "ECOM0610: EcomCache: store failed");
        return 0;
    }
    return 1;
}

static int put(ecom_req *q, const char *key, const char *val, apr_size_t len,
               int ttl)
{
    return store(q->sc->cache, q->r->server, q->r->pool, key, val, len, ttl);
}

/* The tag of a database in the keys, from its identity (ecom_cache_db's
 * columns): DB_TAG_LEN hex digits of its hash. */
static void tag_of(apr_pool_t *p, const char *sys, const char *oid,
                   const char *name, char hex[ECOM_SHA256_HEX])
{
    const char *id = apr_pstrcat(p, sys, "/", oid, "/", name, NULL);

    ecom_sha256_hex(id, strlen(id), hex);
    hex[DB_TAG_LEN] = '\0';
}

/* The tag of this virtual host's database in the keys, from the child's
 * memory or else asked of PostgreSQL (once per child and virtual host).
 * Best effort: the data layer writes no answer, so a failed lookup leaves
 * no trace on the request's (the handler's own work decides what is
 * answered); it is logged there once. NULL when the database is not
 * known. */
static const char *db_tag(ecom_req *q)
{
    ecom_cache_site *site = q->sc->cache_site;
    const char *sys, *oid, *name;
    char hex[ECOM_SHA256_HEX];
    apr_dbd_row_t *row;

    if (apr_atomic_read32(&site->db_state) == DB_KNOWN) {
        return site->db;
    }
    if (ecom_db_one(q, "ecom_cache_db", &row, 0, NULL) != ECOM_OK
        || !(sys = ecom_db_get(q, row, DB_SYSTEM_ID))
        || !(oid = ecom_db_get(q, row, DB_OID))
        || !(name = ecom_db_get(q, row, DB_NAME))) {
        return NULL;
    }
    tag_of(q->r->pool, sys, oid, name, hex);
    /* the first thread to get here keeps it for the child; any other one
     * uses its own copy, the same */
    if (apr_atomic_cas32(&site->db_state, DB_WRITING, DB_UNKNOWN)
        == DB_UNKNOWN) {
        memcpy(site->db, hex, DB_TAG_LEN + 1);
        apr_atomic_cas32(&site->db_state, DB_KNOWN, DB_WRITING);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, q->r,
                      "ECOM0611: EcomCache: database %s (system %s, oid %s) "
                      "is %s in the keys of %s", name, sys, oid, site->db,
                      site->host);
    }
    return apr_pstrdup(q->r->pool, hex);
}

/* The index of a single known section bit, or -1. */
static int section_index(unsigned section)
{
    for (int i = 0; i < ECOM_CACHE_NSECTIONS; i++) {
        if (section == 1u << i) {
            return i;
        }
    }
    return -1;
}

/* The key of the current generation of a section of a database. */
static const char *gen_key_p(apr_pool_t *p, const char *db, int section)
{
    return apr_pstrcat(p, "ecom:gen:", db, ":", section_tab[section].name,
                       NULL);
}

static const char *gen_key(ecom_req *q, const char *db, int section)
{
    return gen_key_p(q->r->pool, db, section);
}

/* The current generation of a section (seeded from the clock when
 * missing). */
static const char *generation(ecom_req *q, const char *db, int section)
{
    const char *key = gen_key(q, db, section);
    char *g;
    apr_size_t n;

    if (get(q, key, &g, &n)) {
        return g;
    }
    g = apr_psprintf(q->r->pool, "%" APR_TIME_T_FMT, apr_time_now());
    put(q, key, g, strlen(g), GEN_TTL);
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

const char *ecom_cache_key_of(ecom_req *q, unsigned section, const char *kind,
                              int n, const char *const *vals)
{
    apr_pool_t *p = q->r->pool;
    const char *db, *text = "";
    char hex[ECOM_SHA256_HEX];
    int i, s = section_index(section);

    if (!q->sc->cache) {
        return NULL;
    }
    if (s < 0) {
        /* a caller's mistake: the answer would belong to no generation */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r,
                      "ECOM0612: EcomCache: %s answers are not cached: "
                      "section %#x is not one cache section", kind, section);
        return NULL;
    }
    if (!(db = db_tag(q))) {
        return NULL;
    }
    /* the mount point and page sizes are part of the key: two <Location>s
     * with different settings never share pages */
    text = field(p, text, kind);
    text = field(p, text, q->sc->cache_site->host);
    text = field(p, text, db);
    text = field(p, text, section_tab[s].name);
    text = field(p, text, generation(q, db, s));
    text = field(p, text, q->dc->base ? q->dc->base : "");
    text = field(p, text, apr_itoa(p, q->dc->page_size));
    text = field(p, text, apr_itoa(p, q->dc->page_max));
    for (i = 0; i < n; i++) {
        text = field(p, text, vals[i]);
    }
    ecom_sha256_hex(text, strlen(text), hex);
    return apr_pstrcat(p, "ecom:page:", hex, NULL);
}

const char *ecom_cache_key(ecom_req *q, unsigned section, const char *kind,
                           const char *const *params)
{
    const char **vals;
    int i, n = 0;

    if (!q->sc->cache) {
        return NULL;
    }
    while (params[n]) {
        n++;
    }
    vals = apr_palloc(q->r->pool, sizeof(*vals) * (n ? n : 1));
    for (i = 0; i < n; i++) {
        vals[i] = apr_table_get(q->args, params[i]);
    }
    return ecom_cache_key_of(q, section, kind, n, vals);
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

    if (!key) {
        return 0;
    }
    if (!get(q, key, &val, &len)) {
        COUNT(q->sc->cache, misses);
        note(q, "miss");
        return 0;
    }
    COUNT(q->sc->cache, hits);
    note(q, "hit");
    q->status = HTTP_OK;
    q->out = val;
    q->out_len = len;
    q->ctype = "application/json; charset=utf-8";
    return HTTP_OK;
}

void ecom_cache_store(ecom_req *q, const char *key)
{
    if (key && q->status == HTTP_OK && q->out
        && put(q, key, q->out, q->out_len, q->sc->cache_ttl)) {
        COUNT(q->sc->cache, stores);
    }
}

/* Stores a new generation of each of the sections of database db. */
static void bump(ecom_cache *c, server_rec *s, apr_pool_t *p, const char *db,
                 unsigned sections)
{
    const char *g;
    apr_uint64_t n;

    for (int i = 0; i < ECOM_CACHE_NSECTIONS; i++) {
        if (!(sections & (1u << i))) {
            continue;
        }
        /* the clock, and this server's count of bumps of the section, so
         * two bumps in the same microsecond still differ */
        n = c->stats ? apr_atomic_inc64(&c->stats->invalidations[i]) : 0;
        g = apr_psprintf(p, "%" APR_TIME_T_FMT ".%" APR_UINT64_T_FMT,
                         apr_time_now(), n);
        store(c, s, p, gen_key_p(p, db, i), g, strlen(g), GEN_TTL);
    }
}

void ecom_cache_invalidate(ecom_req *q, unsigned sections)
{
    ecom_cache *c = q->sc->cache;
    const char *db;

    sections &= ECOM_CACHE_ALL;
    if (!c || !sections) {
        return;
    }
    if (q->in_tx) {
        /* inside the request's transaction (an Idempotency-Key request):
         * invalidating now would let another request cache the old state
         * again before the commit; ecom_idem_run does it after COMMIT */
        q->cache_dirty |= sections;
        return;
    }
    if (!(db = db_tag(q))) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r,
                      "ECOM0613: EcomCache: database unknown, cached pages "
                      "could not be invalidated (they expire within "
                      "EcomCacheTTL)");
        return;
    }
    bump(c, q->r->server, q->r->pool, db, sections);
}

void ecom_cache_invalidate_db(server_rec *s, apr_pool_t *p, const char *sys,
                              const char *oid, const char *name,
                              unsigned sections)
{
    const ecom_srv_conf *sc = ap_get_module_config(s->module_config,
                                                   &ecom_module);
    char hex[ECOM_SHA256_HEX];

    sections &= ECOM_CACHE_ALL;
    if (!sc->cache || !sc->cache->inst || !sections || !sys || !oid
        || !name) {
        return;
    }
    tag_of(p, sys, oid, name, hex);
    bump(sc->cache, s, p, hex, sections);
}

int ecom_cache_socache(const server_rec *s,
                       const ap_socache_provider_t **provider,
                       ap_socache_instance_t **inst)
{
    const ecom_srv_conf *sc = ap_get_module_config(s->module_config,
                                                   &ecom_module);

    if (!sc->cache || !sc->cache->inst) {
        return 0;
    }
    *provider = sc->cache->provider;
    *inst = sc->cache->inst;
    return 1;
}

/* ---- counters and mod_status ---- */

static ecom_cache *server_cache(const server_rec *s)
{
    const ecom_srv_conf *sc = s ? ap_get_module_config(s->module_config,
                                                       &ecom_module) : NULL;

    return sc ? sc->cache : NULL;
}

static void read_counters(const ecom_cache *c, struct ecom_cache_counters *out)
{
    memset(out, 0, sizeof(*out));
    if (!c) {
        return;
    }
    out->enabled = 1;
    if (!c->stats) {
        return;
    }
    out->hits = apr_atomic_read64(&c->stats->hits);
    out->misses = apr_atomic_read64(&c->stats->misses);
    out->stores = apr_atomic_read64(&c->stats->stores);
    for (int i = 0; i < ECOM_CACHE_NSECTIONS; i++) {
        out->invalidations[i] = apr_atomic_read64(&c->stats->invalidations[i]);
    }
    out->errors = apr_atomic_read64(&c->stats->errors);
}

void ecom_cache_counters(struct ecom_cache_counters *out)
{
    /* every virtual host shares the main server's cache */
    read_counters(server_cache(ap_server_conf), out);
}

/* mod_status's report: the counters, then the provider's own status
 * (entries, memory, ...), as mod_cache_socache does; lines of "Name: value"
 * in the ?auto form (AP_STATUS_SHORT). */
static int cache_status_hook(request_rec *r, int flags)
{
    ecom_cache *c = server_cache(r->server);
    struct ecom_cache_counters n;
    int i, is_short = (flags & AP_STATUS_SHORT) != 0;

    if (!c || !c->inst) {
        return DECLINED;
    }
    read_counters(c, &n);
    if (is_short) {
        /* a heading line first, as mod_ssl's and mod_cache_socache's
         * sections have: the provider's own lines that follow use the
         * same names as theirs */
        ap_rprintf(r, "EcomCacheStatus\n"
                   "EcomCacheProvider: %s\n"
                   "EcomCacheCounters: %s\n"
                   "EcomCacheHits: %" APR_UINT64_T_FMT "\n"
                   "EcomCacheMisses: %" APR_UINT64_T_FMT "\n"
                   "EcomCacheStores: %" APR_UINT64_T_FMT "\n",
                   c->provider->name, c->stats ? "on" : "off",
                   n.hits, n.misses, n.stores);
        for (i = 0; i < ECOM_CACHE_NSECTIONS; i++) {
            ap_rprintf(r, "EcomCacheInvalidations%s: %" APR_UINT64_T_FMT "\n",
                       section_tab[i].label, n.invalidations[i]);
        }
        ap_rprintf(r, "EcomCacheErrors: %" APR_UINT64_T_FMT "\n", n.errors);
    }
    else {
        ap_rprintf(r, "<hr />\n<h2>mod_ecom cache (EcomCache %s)</h2>\n",
                   ap_escape_html(r->pool, c->provider->name));
        if (!c->stats) {
            ap_rputs("<p>No counters: shared memory was refused at "
                     "start-up (see the error log, ECOM0603).</p>\n", r);
        }
        ap_rprintf(r, "<dl>\n<dt>hits (answers served from the cache)</dt>"
                   "<dd>%" APR_UINT64_T_FMT "</dd>\n"
                   "<dt>misses</dt><dd>%" APR_UINT64_T_FMT "</dd>\n"
                   "<dt>stores</dt><dd>%" APR_UINT64_T_FMT "</dd>\n",
                   n.hits, n.misses, n.stores);
        for (i = 0; i < ECOM_CACHE_NSECTIONS; i++) {
            ap_rprintf(r, "<dt>invalidations of %s</dt><dd>%"
                       APR_UINT64_T_FMT "</dd>\n", section_tab[i].name,
                       n.invalidations[i]);
        }
        ap_rprintf(r, "<dt>errors (the provider failed a lookup or a "
                   "store)</dt><dd>%" APR_UINT64_T_FMT "</dd>\n", n.errors);
        ap_rputs("</dl>\n<h3>Provider status</h3>\n", r);
    }
    if (!locked(c)) {
        ap_rputs(is_short ? "EcomCacheProviderStatus: unavailable\n"
                          : "<p>Provider status unavailable.</p>\n", r);
        return OK;
    }
    c->provider->status(c->inst, r, flags);
    unlock(c);
    return OK;
}

const ecom_resource ecom_cache_resource = { "cache", cache_sql, NULL, NULL };
