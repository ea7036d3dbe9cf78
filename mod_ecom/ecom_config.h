/*
 * ecom_config.h: the Ecom* directives' per-server and per-directory
 * configuration (ecom_config.c), as the rest of the module reads it.
 *
 * Both structs are complete as they come from httpd: every field holds the
 * operator's value or the default, resolved when the configuration is
 * created and merged, so a request reads them as they are and never fills
 * in anything of its own. The defaults, minimums and maximums are in one
 * table in ecom_config.c (and README.md's directive table, which a test
 * keeps equal to it).
 */
#ifndef ECOM_CONFIG_H
#define ECOM_CONFIG_H

#include "httpd.h"
#include "http_config.h"

typedef struct {
    int max_body;            /* EcomMaxBodySize, bytes */
    int max_anon_body;       /* EcomMaxAnonBodySize: routes that need no
                              * user; never above max_body */
    const char *currency;    /* EcomCurrency */
    int page_size;           /* EcomPageSize; never above page_max */
    int page_max;            /* EcomPageSizeMax */
    const char *base;        /* EcomBasePath, or the <Location> path */
    int base_set;
    int idem_per_day;        /* EcomIdempotencyKeysPerDay */
    /* ecom_config.c's own: which directives this section or one it
     * inherits from set, and the capped values as they were written */
    unsigned set;
    int max_anon_body_written;
    int page_size_written;
    /* issue 9, browser sessions (ecom_session.c) */
    int sessions;            /* EcomSessions: login answers with a
                              * mod_session session too, and a request
                              * without Authorization uses the session's */
    int sessions_set;
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
    /* EcomWebhookSecret, the key of the webhook signatures (Ecom-Signature);
     * NULL and 0 when unset. Never logged. */
    const unsigned char *webhook_secret;
    apr_size_t webhook_secret_len;
    int webhook_tolerance;   /* EcomWebhookTolerance, seconds */
    const char *payment_provider; /* EcomPaymentProvider: a name registered
                                   * in the "ecom_payment" provider group
                                   * (ecom_payment.h), checked at start-up */
    int payment_timeout;     /* EcomPaymentTimeout, seconds; 0: never */
    int max_pending;         /* EcomMaxPendingOrders; 0: no cap */
    unsigned set;            /* ecom_config.c's own, as in ecom_dir_conf */
    /* issue 9, guest carts (ecom_guest_cart.c): EcomGuestCartLifetime,
     * seconds after its last change; 0: no guest carts */
    int guest_cart_lifetime;
    /* issue 9, accounts (ecom_account.c) */
    int reset_lifetime;      /* EcomPasswordResetLifetime, seconds */
    /* throttling (ecom_throttle.c) and CORS (ecom_cors.c), issue 9 */
    int rate_limit;          /* EcomRateLimit: requests per address per
                              * EcomRateLimitWindow; 0: off */
    int token_rate_limit;    /* EcomTokenRateLimit: the same per token */
    int rate_window;         /* EcomRateLimitWindow, seconds */
    int auth_rate_limit;     /* EcomAuthRateLimit: auth requests per address
                              * per minute; 0: off */
    int login_lockout;       /* EcomLoginLockout: longest lock, seconds;
                              * 0: no login locks */
    int argon2_max;          /* EcomArgon2MaxInFlight, per process */
    int db_concurrency;      /* EcomDBConcurrency: a child's requests that
                              * hold a connection at once, the others wait
                              * in arrival order; 0: mod_dbd's own order */
    int db_queue_timeout;    /* EcomDBQueueTimeout, seconds in that queue */
    int hsts_max_age;        /* EcomHSTSMaxAge, seconds; 0: no header */
    apr_array_header_t *cors_origins; /* EcomCORSOrigins (const char *),
                                       * NULL: no CORS */
    struct ecom_throttle *throttle;   /* the throttle's store and counters,
                                       * set at post_config (NULL: off) */
    /* issue 10, demand-based prices (ecom_dynprice.c), main server only */
    int dynprice;            /* EcomDynamicPricing: the watchdog job runs */
    int dynprice_interval;   /* EcomDynamicPricingInterval, seconds */
    /* issue 10, recommendations (ecom_recs.c): EcomRecsRefreshInterval,
     * seconds between refreshes from mod_watchdog; 0: off */
    int recs_refresh_interval;
    /* issue 10, sales stored on the products rows (sql/025, ecom_pricing.c):
     * EcomSaleEdgeInterval, seconds; 0: no window edges job */
    int sale_edge_interval;
    /* issue 11, metrics (ecom_metrics.c): the shared counters, set at
     * post_config on every server (NULL: no shared memory) */
    struct ecom_metrics *metrics;
} ecom_srv_conf;

extern const command_rec ecom_cmds[];
void *ecom_create_dir_conf(apr_pool_t *p, char *dir);
void *ecom_merge_dir_conf(apr_pool_t *p, void *base, void *add);
void *ecom_create_srv_conf(apr_pool_t *p, server_rec *s);
void *ecom_merge_srv_conf(apr_pool_t *p, void *base, void *add);

/* After configuration (check_config, so `apachectl configtest` sees it;
 * and at post_config with warnings): refuses contradictions between
 * directives that no single directive can see, in any server, and with
 * warnings set warns of settings that have no effect. Logs each at CRIT
 * (refused) or WARNING, naming the directives and their values; returns
 * OK or HTTP_INTERNAL_SERVER_ERROR. */
int ecom_config_check(apr_pool_t *ptemp, server_rec *s, int warnings);

#endif /* ECOM_CONFIG_H */
