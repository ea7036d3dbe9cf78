/*
 * ecom_config.h: the Ecom* directives' per-server and per-directory
 * configuration (ecom_config.c), as the rest of the module reads it.
 */
#ifndef ECOM_CONFIG_H
#define ECOM_CONFIG_H

#include "httpd.h"
#include "http_config.h"

typedef struct {
    apr_off_t max_body;      /* EcomMaxBodySize */
    apr_off_t max_anon_body; /* EcomMaxAnonBodySize: routes that need no user */
    const char *currency;    /* EcomCurrency */
    int page_size;           /* EcomPageSize */
    int page_max;            /* EcomPageSizeMax */
    const char *base;        /* EcomBasePath, or the <Location> path */
    int base_set;
    int idem_per_day;        /* EcomIdempotencyKeysPerDay */
} ecom_dir_conf;

typedef struct ecom_cache ecom_cache;
typedef struct ecom_cache_site ecom_cache_site;

typedef struct {
    int token_lifetime;      /* EcomTokenLifetime, seconds */
    ecom_cache *cache;       /* EcomCache, shared by every virtual host */
    int cache_set;
    int cache_ttl;           /* EcomCacheTTL, seconds */
    int purge_interval;      /* EcomPurgeInterval, seconds; 0: off */
    ecom_cache_site *cache_site; /* this virtual host's part of the cache
                                  * keys (ecom_cache.c), when cache is on */
} ecom_srv_conf;

/* Defaults of the directives that have no natural zero. */
#define ECOM_DEFAULT_IDEM_PER_DAY   1000
#define ECOM_DEFAULT_PURGE_INTERVAL 3600

extern const command_rec ecom_cmds[];
void *ecom_create_dir_conf(apr_pool_t *p, char *dir);
void *ecom_merge_dir_conf(apr_pool_t *p, void *base, void *add);
void *ecom_create_srv_conf(apr_pool_t *p, server_rec *s);
void *ecom_merge_srv_conf(apr_pool_t *p, void *base, void *add);

#endif /* ECOM_CONFIG_H */
