/*
 * ecom_cache.h: the response cache on Apache's socache providers
 * (ecom_cache.c): configuration hooks, the key / serve / store /
 * invalidate calls of the handlers, and the cache's counters for
 * operators (mod_status, and ecom_cache_counters() for other reports).
 */
#ifndef ECOM_CACHE_H
#define ECOM_CACHE_H

#include "ecom_config.h"

struct ecom_req;

/* Sections of the cache, invalidated separately: a write bumps only the
 * generations of the sections it changes (a route's "invalidates" bits,
 * ecom_resource.h), so an order placed does not empty the catalog. A
 * cached answer belongs to exactly one section. */
#define ECOM_CACHE_CATALOG    (1u << 0)   /* product lists */
#define ECOM_CACHE_CATEGORIES (1u << 1)   /* category lists and counts */
#define ECOM_CACHE_REVIEWS    (1u << 2)   /* reviews and rating summaries */
#define ECOM_CACHE_NSECTIONS  3
#define ECOM_CACHE_ALL        ((1u << ECOM_CACHE_NSECTIONS) - 1)

/* What the cache has done since httpd (re)started, summed over every child
 * process; all zero when there is no cache. */
struct ecom_cache_counters {
    int enabled;                  /* 1: a cache is configured */
    apr_uint64_t hits;            /* answers served from the cache */
    apr_uint64_t misses;          /* looked up and not found */
    apr_uint64_t stores;          /* answers stored */
    /* generations bumped, by section: invalidations[i] counts bit 1u << i */
    apr_uint64_t invalidations[ECOM_CACHE_NSECTIONS];
    /* issue 11: lookups and stores the provider failed (Redis or
     * memcached unreachable: the answers come from PostgreSQL) */
    apr_uint64_t errors;
};

const char *ecom_cache_configure(cmd_parms *cmd, ecom_srv_conf *sc,
                                 const char *arg);
/* Registers the cache mutex and the mod_status hook; OK, or 500 after
 * logging why httpd cannot start. */
int ecom_cache_pre_config(apr_pool_t *pconf, apr_pool_t *plog);
int ecom_cache_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
void ecom_cache_child_init(apr_pool_t *p, server_rec *s);
/* The key of this request's answer of the given kind in one section (one
 * ECOM_CACHE_* bit), made of the query parameters named in params
 * (NULL-terminated) and nothing else of the query string. NULL when there
 * is no cache or the database's identity is not known (the handler then
 * runs its own query, which reports any database problem): the cache never
 * answers an error itself. */
const char *ecom_cache_key(struct ecom_req *q, unsigned section,
                           const char *kind, const char *const *params);
/* The same from n values the handler gives (what else the answer depends
 * on: a generation it read, the caller, its own arguments), in a fixed
 * order, each one a field of the key (NULL: absent), instead of query
 * parameters. One piece of code builds every key: ecom_cache_key is this
 * with the named parameters' values. */
const char *ecom_cache_key_of(struct ecom_req *q, unsigned section,
                              const char *kind, int n,
                              const char *const *vals);
/* Answers from the cache (returns 200) or returns 0 on a miss or when key
 * is NULL. */
int ecom_cache_serve(struct ecom_req *q, const char *key);
/* Stores the 200 answer the handler built under key (NULL: nothing). */
void ecom_cache_store(struct ecom_req *q, const char *key);
/* Invalidates the named sections (ECOM_CACHE_* bits) of this request's
 * database, after a write that changed what they show. Inside the
 * request's own transaction it only notes them in q->cache_dirty: the
 * owner of the transaction calls it again once committed. */
void ecom_cache_invalidate(struct ecom_req *q, unsigned sections);
/* The counters, read from shared memory. */
void ecom_cache_counters(struct ecom_cache_counters *out);
/* The socache provider and instance of s's cache, for a store that shares
 * it (ecom_throttle.c); returns 0 when s has no cache. */
struct ap_socache_provider_t;
struct ap_socache_instance_t;
int ecom_cache_socache(const server_rec *s,
                       const struct ap_socache_provider_t **provider,
                       struct ap_socache_instance_t **inst);
/* issue 10, background jobs (ecom_dynprice.c): what identifies a database
 * in the keys, as SQL (columns and FROM of ecom_cache_db), and the same
 * invalidation as ecom_cache_invalidate() outside any request, for the
 * database of that identity (those three columns' values) through s's
 * cache. */
#define ECOM_CACHE_DB_COLS "s.system_identifier, d.oid, d.datname"
#define ECOM_CACHE_DB_FROM \
    "pg_control_system() s, pg_database d WHERE d.datname = current_database()"
void ecom_cache_invalidate_db(server_rec *s, apr_pool_t *p, const char *sys,
                              const char *oid, const char *name,
                              unsigned sections);
/* The name of section bit 1u << i ("catalog", ...), NULL past the last. */
const char *ecom_cache_section_name(int i);

#endif /* ECOM_CACHE_H */
