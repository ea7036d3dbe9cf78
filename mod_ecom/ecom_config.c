/*
 * ecom_config.c: the Ecom* directives, their defaults and merging.
 *
 * Values are validated here, so a bad httpd.conf fails at start-up with a
 * clear message rather than at request time. Merge rule everywhere: the
 * child's value if set, else the parent's. See README.md for the table.
 */
#include "ecom_req.h"
#include "ecom_cache.h"
#include "ecom_util.h"

#define UNSET (-1)

void *ecom_create_dir_conf(apr_pool_t *p, char *dir)
{
    ecom_dir_conf *c = apr_pcalloc(p, sizeof(*c));

    c->max_body = UNSET;
    c->max_anon_body = UNSET;
    c->page_size = UNSET;
    c->page_max = UNSET;
    c->idem_per_day = UNSET;
    /* the <Location> path is the API's mount point unless EcomBasePath says
     * otherwise; a trailing slash is dropped so paths join cleanly */
    if (dir && dir[0] == '/') {
        apr_size_t n = strlen(dir);
        while (n > 0 && dir[n - 1] == '/') {
            n--;
        }
        c->base = apr_pstrmemdup(p, dir, n);
    }
    return c;
}

void *ecom_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const ecom_dir_conf *base = basev, *add = addv;
    ecom_dir_conf *c = apr_pcalloc(p, sizeof(*c));

    c->max_body = add->max_body != UNSET ? add->max_body : base->max_body;
    c->max_anon_body = add->max_anon_body != UNSET ? add->max_anon_body
                                                   : base->max_anon_body;
    c->currency = add->currency ? add->currency : base->currency;
    c->page_size = add->page_size != UNSET ? add->page_size : base->page_size;
    c->page_max = add->page_max != UNSET ? add->page_max : base->page_max;
    c->idem_per_day = add->idem_per_day != UNSET ? add->idem_per_day
                                                 : base->idem_per_day;
    c->base_set = add->base_set || base->base_set;
    if (add->base_set) {
        c->base = add->base;
    }
    else if (base->base_set) {
        c->base = base->base;
    }
    else {
        c->base = add->base ? add->base : base->base;
    }
    return c;
}

void *ecom_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    ecom_srv_conf *c = apr_pcalloc(p, sizeof(*c));

    c->token_lifetime = UNSET;
    c->cache_ttl = UNSET;
    c->purge_interval = UNSET;
    return c;
}

void *ecom_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    const ecom_srv_conf *base = basev, *add = addv;
    ecom_srv_conf *c = apr_pcalloc(p, sizeof(*c));

    c->token_lifetime = add->token_lifetime != UNSET ? add->token_lifetime
                                                     : base->token_lifetime;
    c->cache = add->cache_set ? add->cache : base->cache;
    c->cache_set = add->cache_set || base->cache_set;
    c->cache_ttl = add->cache_ttl != UNSET ? add->cache_ttl : base->cache_ttl;
    c->purge_interval = add->purge_interval != UNSET ? add->purge_interval
                                                     : base->purge_interval;
    return c;
}

static const char *set_int(cmd_parms *cmd, const char *arg, long long min,
                           long long max, long long *out)
{
    if (ecom_parse_ll(arg, min, max, out) != 0) {
        return apr_psprintf(cmd->pool, "%s must be an integer from %" APR_INT64_T_FMT " to %" APR_INT64_T_FMT,
                            cmd->directive->directive, (apr_int64_t)min, (apr_int64_t)max);
    }
    return NULL;
}

/* EcomMaxAnonBodySize may not exceed EcomMaxBodySize. When both are set in
 * the same section that is checked here, whatever their order; across
 * sections the router uses the smaller of the two. */
static const char *check_anon_body(cmd_parms *cmd, const ecom_dir_conf *c)
{
    if (c->max_body != UNSET && c->max_anon_body != UNSET
        && c->max_anon_body > c->max_body) {
        return apr_psprintf(cmd->pool, "EcomMaxAnonBodySize (%" APR_OFF_T_FMT
                            ") may not exceed EcomMaxBodySize (%"
                            APR_OFF_T_FMT ")", c->max_anon_body, c->max_body);
    }
    return NULL;
}

static const char *set_max_body(cmd_parms *cmd, void *cfg, const char *arg)
{
    long long v;
    const char *err = set_int(cmd, arg, 1024, 1073741824LL, &v);

    if (!err) {
        ((ecom_dir_conf *)cfg)->max_body = (apr_off_t)v;
        err = check_anon_body(cmd, cfg);
    }
    return err;
}

static const char *set_max_anon_body(cmd_parms *cmd, void *cfg,
                                     const char *arg)
{
    long long v;
    const char *err = set_int(cmd, arg, 512, 1073741824LL, &v);

    if (!err) {
        ((ecom_dir_conf *)cfg)->max_anon_body = (apr_off_t)v;
        err = check_anon_body(cmd, cfg);
    }
    return err;
}

/* An int field of ecom_dir_conf with its range, for set_dir_int (the
 * directive's cmd->info). */
typedef struct {
    apr_size_t offset;
    long long min, max;
} dir_int;

static const dir_int page_size_slot = {
    APR_OFFSETOF(ecom_dir_conf, page_size), 1, 1000 };
static const dir_int page_max_slot = {
    APR_OFFSETOF(ecom_dir_conf, page_max), 1, 1000 };
static const dir_int idem_per_day_slot = {
    APR_OFFSETOF(ecom_dir_conf, idem_per_day), 1, 1000000 };

static const char *set_dir_int(cmd_parms *cmd, void *cfg, const char *arg)
{
    const dir_int *slot = cmd->info;
    long long v;
    const char *err = set_int(cmd, arg, slot->min, slot->max, &v);

    if (!err) {
        *(int *)((char *)cfg + slot->offset) = (int)v;
    }
    return err;
}

static const char *set_currency(cmd_parms *cmd, void *cfg, const char *arg)
{
    if (!ecom_currency_valid(arg)) {
        return "EcomCurrency must be an ISO 4217 code of three upper-case "
               "letters, e.g. EUR";
    }
    ((ecom_dir_conf *)cfg)->currency = arg;
    return NULL;
}

static const char *set_base(cmd_parms *cmd, void *cfg, const char *arg)
{
    ecom_dir_conf *c = cfg;
    apr_size_t n = strlen(arg);

    if (arg[0] != '/') {
        return "EcomBasePath must be an absolute URL path, e.g. /api";
    }
    while (n > 0 && arg[n - 1] == '/') {
        n--;
    }
    c->base = apr_pstrmemdup(cmd->pool, arg, n);
    c->base_set = 1;
    return NULL;
}

static const char *set_token_lifetime(cmd_parms *cmd, void *cfg,
                                      const char *arg)
{
    ecom_srv_conf *c = ap_get_module_config(cmd->server->module_config,
                                            &ecom_module);
    long long v;
    const char *err = set_int(cmd, arg, 60, 31536000LL, &v);

    if (!err) {
        c->token_lifetime = (int)v;
    }
    return err;
}

static const char *set_cache(cmd_parms *cmd, void *cfg, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err) {
        return err;
    }
    return ecom_cache_configure(cmd, ap_get_module_config(
                                    cmd->server->module_config, &ecom_module),
                                arg);
}

static const char *set_cache_ttl(cmd_parms *cmd, void *cfg, const char *arg)
{
    ecom_srv_conf *c = ap_get_module_config(cmd->server->module_config,
                                            &ecom_module);
    long long v;
    const char *err = set_int(cmd, arg, 1, 86400, &v);

    if (!err) {
        c->cache_ttl = (int)v;
    }
    return err;
}

static const char *set_purge_interval(cmd_parms *cmd, void *cfg,
                                      const char *arg)
{
    ecom_srv_conf *c = ap_get_module_config(cmd->server->module_config,
                                            &ecom_module);
    long long v;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (!err) {
        err = set_int(cmd, arg, 0, 604800, &v);
    }
    if (!err) {
        c->purge_interval = (int)v;
    }
    return err;
}

/* Limits are the operator's: server, virtual host, <Directory> and
 * <Location>, never .htaccess (ACCESS_CONF | RSRC_CONF, no override). */
const command_rec ecom_cmds[] = {
    AP_INIT_TAKE1("EcomMaxBodySize", set_max_body, NULL,
                  ACCESS_CONF | RSRC_CONF,
                  "Largest accepted request body in bytes (default 65536)"),
    AP_INIT_TAKE1("EcomMaxAnonBodySize", set_max_anon_body, NULL,
                  ACCESS_CONF | RSRC_CONF,
                  "Largest accepted request body in bytes on routes that "
                  "need no user, such as login (default 8192)"),
    AP_INIT_TAKE1("EcomCurrency", set_currency, NULL, OR_ALL,
                  "Default ISO 4217 currency of new products and empty carts "
                  "(default EUR)"),
    AP_INIT_TAKE1("EcomPageSize", set_dir_int, (void *)&page_size_slot,
                  ACCESS_CONF | RSRC_CONF,
                  "Items per list page when the client sends no limit "
                  "(default 20)"),
    AP_INIT_TAKE1("EcomPageSizeMax", set_dir_int, (void *)&page_max_slot,
                  ACCESS_CONF | RSRC_CONF,
                  "Largest limit a client may ask for; larger ones are capped "
                  "(default 100)"),
    AP_INIT_TAKE1("EcomBasePath", set_base, NULL, ACCESS_CONF | RSRC_CONF,
                  "URL path the API is mounted at (default: the enclosing "
                  "<Location>)"),
    AP_INIT_TAKE1("EcomTokenLifetime", set_token_lifetime, NULL, RSRC_CONF,
                  "Lifetime of bearer tokens in seconds (default 86400)"),
    AP_INIT_TAKE1("EcomCache", set_cache, NULL, RSRC_CONF,
                  "Response cache for catalog pages: none, or a socache "
                  "provider with its arguments, e.g. "
                  "shmcb:/run/ecom_cache(1048576) (default: anonymous shmcb "
                  "when mod_socache_shmcb is loaded)"),
    AP_INIT_TAKE1("EcomCacheTTL", set_cache_ttl, NULL, RSRC_CONF,
                  "Longest time in seconds a cached page is served "
                  "(default 5)"),
    AP_INIT_TAKE1("EcomIdempotencyKeysPerDay", set_dir_int,
                  (void *)&idem_per_day_slot,
                  ACCESS_CONF | RSRC_CONF,
                  "New Idempotency-Keys a user may send per 24 hours; more "
                  "get 429 (default 1000)"),
    AP_INIT_TAKE1("EcomPurgeInterval", set_purge_interval, NULL, RSRC_CONF,
                  "Seconds between purges of expired tokens and idempotency "
                  "records, from mod_watchdog; 0 turns it off (default 3600)"),
    { NULL }
};
