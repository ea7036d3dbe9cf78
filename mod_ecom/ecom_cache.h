/*
 * ecom_cache.h: the response cache on Apache's socache providers
 * (ecom_cache.c): configuration hooks and the key / serve / store /
 * invalidate calls of the handlers.
 */
#ifndef ECOM_CACHE_H
#define ECOM_CACHE_H

#include "ecom_config.h"

struct ecom_req;

/* Sections of the cache, invalidated separately: a write bumps only the
 * generations of the sections it changes (a route's "invalidates" bits,
 * ecom_resource.h), so an order placed does not empty the catalog. */
#define ECOM_CACHE_CATALOG    (1u << 0)   /* product lists */
#define ECOM_CACHE_CATEGORIES (1u << 1)   /* category lists and counts */
#define ECOM_CACHE_REVIEWS    (1u << 2)   /* reviews and rating summaries */

const char *ecom_cache_configure(cmd_parms *cmd, ecom_srv_conf *sc,
                                 const char *arg);
void ecom_cache_pre_config(apr_pool_t *pconf);
int ecom_cache_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
void ecom_cache_child_init(apr_pool_t *p, server_rec *s);
/* Sets *key to the key of this request's answer of the given kind, made of
 * the query parameters named in params (NULL-terminated) and nothing else
 * of the query string; NULL when there is no cache. Returns 0, or the
 * status of the problem it set when the database could not be asked what
 * it is (503 when it is unreachable). */
int ecom_cache_key(struct ecom_req *q, const char *kind, const char *const *params,
                   const char **key);
/* Answers from the cache (returns 200) or returns 0 on a miss. */
int ecom_cache_serve(struct ecom_req *q, const char *key);
/* Stores the 200 answer the handler built under key. */
void ecom_cache_store(struct ecom_req *q, const char *key);
/* Called after every write that changes what cached pages show. */
void ecom_cache_invalidate(struct ecom_req *q);

#endif /* ECOM_CACHE_H */
