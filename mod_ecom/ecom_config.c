/*
 * ecom_config.c: the Ecom* directives: their defaults, ranges and merging,
 * and the relations between them.
 *
 * Every integer directive is one row of INT_DIRECTIVES below, the one place
 * its numbers are written: the field it sets, where it may be used, its
 * default, minimum and maximum, and its help text for `httpd -L`, whose
 * "(min..max, default n)" is made from the same numbers. Its command_rec,
 * parsing, default and merge all come from that row.
 *
 * create_*_conf fill in every default, so a configuration is complete from
 * the start, and a "set" mask records what the operator wrote; merge takes
 * the child's value if set, else the parent's. Requests read the merged
 * configuration as it is. Two values are capped by another: EcomPageSize
 * by EcomPageSizeMax (so its default is min(20, EcomPageSizeMax)) and
 * EcomMaxAnonBodySize by EcomMaxBodySize. Written above their cap in one
 * section (or at one server's top level), they are refused when httpd
 * reads its configuration; inherited from different sections (a
 * server-wide EcomPageSize, a <Location>'s EcomPageSizeMax) the cap
 * applies, and the value as written is kept for the sections below, where
 * a larger cap may come back.
 *
 * A bad value stops start-up with a message naming the directive.
 * Relations that need the whole configuration (EcomCacheTTL and EcomCache,
 * EcomWebhookTolerance and EcomWebhookSecret) are checked after it is
 * read, by ecom_config_check() (log tags ECOM05xx), and so is the name of
 * EcomPaymentProvider, once every module registered its providers
 * (ECOM0701). README.md's directive
 * table and conf/ecom.conf follow this file: t/21-directives.t fails when
 * they drift from what `httpd -L` says.
 */
#include "ecom_req.h"
#include "ecom_cache.h"
#include "ecom_payment.h"
#include "ecom_session.h"
#include "ecom_util.h"
#include "ecom_cors.h"
#include "ecom_dynprice.h"

#include "http_core.h"
#include "apr_file_io.h"

/* Where a directive may be used, and so which config it sets. A limit is
 * the operator's: never .htaccess. */
enum { SCOPE_DIR, SCOPE_SRV, SCOPE_MAIN };
#define WHERE_DIR  (ACCESS_CONF | RSRC_CONF) /* + <Directory>, <Location> */
#define WHERE_SRV  RSRC_CONF                 /* server, <VirtualHost> */
#define WHERE_MAIN RSRC_CONF                 /* main server (GLOBAL_ONLY) */
#define CONF_DIR   ecom_dir_conf
#define CONF_SRV   ecom_srv_conf
#define CONF_MAIN  ecom_srv_conf

/*
 * X(id, directive, scope, field, written, default, min, max, cap, help)
 *
 * written: where the value as written is kept, the field itself unless the
 * value is capped by another directive's (cap: that row's id, or NONE).
 */
#define INT_DIRECTIVES(X)                                                   \
    X(MAX_BODY, "EcomMaxBodySize", DIR, max_body, max_body,                 \
      65536, 1024, 1073741824, NONE,                                        \
      "Largest accepted request body in bytes")                             \
    X(MAX_ANON_BODY, "EcomMaxAnonBodySize", DIR,                            \
      max_anon_body, max_anon_body_written,                                 \
      8192, 512, 1073741824, MAX_BODY,                                      \
      "Largest accepted request body in bytes on routes that need no "      \
      "user, such as login; at most EcomMaxBodySize")                       \
    X(PAGE_SIZE, "EcomPageSize", DIR, page_size, page_size_written,         \
      20, 1, 1000, PAGE_MAX,                                                \
      "Items per list page when the client sends no limit; at most "        \
      "EcomPageSizeMax")                                                    \
    X(PAGE_MAX, "EcomPageSizeMax", DIR, page_max, page_max,                 \
      100, 1, 1000, NONE,                                                   \
      "Largest limit a client may ask for; larger ones are capped")        \
    X(IDEM_PER_DAY, "EcomIdempotencyKeysPerDay", DIR,                       \
      idem_per_day, idem_per_day, 1000, 1, 1000000, NONE,                   \
      "New Idempotency-Keys a user may send per 24 hours; more get 429")   \
    X(TOKEN_LIFETIME, "EcomTokenLifetime", SRV,                             \
      token_lifetime, token_lifetime, 86400, 60, 31536000, NONE,            \
      "Lifetime of bearer tokens in seconds")                               \
    X(CACHE_TTL, "EcomCacheTTL", SRV, cache_ttl, cache_ttl,                 \
      5, 1, 86400, NONE,                                                    \
      "Longest time in seconds a cached page is served; needs a cache")    \
    X(PURGE_INTERVAL, "EcomPurgeInterval", MAIN,                            \
      purge_interval, purge_interval, 3600, 0, 604800, NONE,                \
      "Seconds between purges of expired tokens and idempotency records, "  \
      "from mod_watchdog; 0 turns it off; main server only")               \
    X(WEBHOOK_TOLERANCE, "EcomWebhookTolerance", SRV,                       \
      webhook_tolerance, webhook_tolerance, 300, 1, 3600, NONE,             \
      "Largest age in seconds of a webhook signature's timestamp; needs "   \
      "EcomWebhookSecret")                                                  \
    X(PAYMENT_TIMEOUT, "EcomPaymentTimeout", SRV,                           \
      payment_timeout, payment_timeout, 1800, 0, 604800, NONE,              \
      "Seconds a pending order waits for its payment before the module "    \
      "cancels it and restocks its lines (mod_watchdog); 0: never")        \
    X(MAX_PENDING, "EcomMaxPendingOrders", SRV,                             \
      max_pending, max_pending, 3, 0, 1000, NONE,                           \
      "Unpaid pending orders an account may hold; its next checkout gets "  \
      "409; 0: no cap")                                                     \
    X(GUEST_CART_LIFETIME, "EcomGuestCartLifetime", SRV,                    \
      guest_cart_lifetime, guest_cart_lifetime, 604800, 0, 31536000, NONE,  \
      "Seconds a guest cart (Cart-Token) lives after its last change; 0: "  \
      "no guest carts")                                                     \
    X(RESET_LIFETIME, "EcomPasswordResetLifetime", SRV,                     \
      reset_lifetime, reset_lifetime, 1800, 300, 86400, NONE,               \
      "Lifetime in seconds of a password reset token")                      \
    X(RATE_LIMIT, "EcomRateLimit", SRV, rate_limit, rate_limit,             \
      0, 0, 1000000, NONE,                                                  \
      "API requests one client address may make per EcomRateLimitWindow; "  \
      "more get 429; 0: no limit")                                          \
    X(TOKEN_RATE_LIMIT, "EcomTokenRateLimit", SRV,                          \
      token_rate_limit, token_rate_limit, 0, 0, 1000000, NONE,              \
      "API requests one bearer token may make per EcomRateLimitWindow; "    \
      "more get 429; 0: no limit")                                          \
    X(RATE_WINDOW, "EcomRateLimitWindow", SRV, rate_window, rate_window,    \
      60, 1, 86400, NONE,                                                   \
      "Window in seconds of EcomRateLimit and EcomTokenRateLimit")          \
    X(AUTH_RATE_LIMIT, "EcomAuthRateLimit", SRV,                            \
      auth_rate_limit, auth_rate_limit, 30, 0, 100000, NONE,                \
      "Login, register and password requests one client address may make " \
      "per minute; more get 429; 0: no limit")                              \
    X(LOGIN_LOCKOUT, "EcomLoginLockout", SRV, login_lockout, login_lockout, \
      300, 0, 86400, NONE,                                                  \
      "Longest time in seconds an account refuses logins from addresses "   \
      "that failed on it, after repeated failed logins; 0: no locks")       \
    X(ARGON2_MAX, "EcomArgon2MaxInFlight", MAIN, argon2_max, argon2_max,    \
      4, 1, 1024, NONE,                                                     \
      "Password hashings (argon2id, 19 MiB each) one process runs at "      \
      "once; more get 503; main server only")                              \
    X(DB_CONCURRENCY, "EcomDBConcurrency", MAIN, db_concurrency,            \
      db_concurrency, 0, 0, 1024, NONE,                                     \
      "Requests of one process that hold a database connection at once; "   \
      "the others wait in arrival order (set it to DBDMax); 0: mod_dbd's "  \
      "pool decides who waits; main server only")                           \
    X(DB_QUEUE_TIMEOUT, "EcomDBQueueTimeout", MAIN, db_queue_timeout,       \
      db_queue_timeout, 10, 1, 300, NONE,                                   \
      "Longest wait in seconds for a turn of EcomDBConcurrency; after it "  \
      "the request gets 503 with Retry-After; main server only")            \
    X(HSTS_MAX_AGE, "EcomHSTSMaxAge", SRV, hsts_max_age, hsts_max_age,      \
      0, 0, 63072000, NONE,                                                 \
      "max-age of the Strict-Transport-Security header sent on answers "    \
      "over TLS; 0: no header")                                             \
    X(DYNPRICE_INTERVAL, "EcomDynamicPricingInterval", MAIN,                \
      dynprice_interval, dynprice_interval, 3600, 1, 604800, NONE,          \
      "Seconds between runs of the demand-based pricing job "               \
      "(mod_watchdog), when EcomDynamicPricing is On; main server only")   \
    X(RECS_REFRESH, "EcomRecsRefreshInterval", MAIN,                        \
      recs_refresh_interval, recs_refresh_interval, 3600, 0, 604800, NONE,  \
      "Seconds between refreshes of the precomputed recommendations, from " \
      "mod_watchdog; 0 turns it off; main server only")  \
    X(SALE_EDGE_INTERVAL, "EcomSaleEdgeInterval", MAIN,                     \
      sale_edge_interval, sale_edge_interval, 30, 0, 86400, NONE,           \
      "Seconds between runs of the job that stores the sales rules that "   \
      "started (mod_watchdog); 0 turns it off; main server only")

#define ROW_ID(id, ...) I_##id,
enum { I_NONE = -1, INT_DIRECTIVES(ROW_ID) N_INT_DIRECTIVES };
#undef ROW_ID

#define BIT(i)       (1u << (unsigned)(i))
#define SET_CURRENCY BIT(N_INT_DIRECTIVES)
#define SET_PAYMENT_PROVIDER BIT(N_INT_DIRECTIVES + 1)

typedef struct {
    const char *name;
    int scope;              /* SCOPE_* */
    apr_size_t field;       /* offset of the int in CONF_<scope> */
    apr_size_t written;     /* offset of the value as written (see above) */
    int def, min, max;
    int cap;                /* the row whose value caps this one, I_NONE */
} int_directive;

#define ROW(id, name, scope, field, written, def, min, max, cap, help)      \
    [I_##id] = { name, SCOPE_##scope, APR_OFFSETOF(CONF_##scope, field),   \
                 APR_OFFSETOF(CONF_##scope, written), def, min, max,        \
                 I_##cap },
static const int_directive int_directives[N_INT_DIRECTIVES] = {
    INT_DIRECTIVES(ROW)
};
#undef ROW

/* The string directives' defaults. */
#define CURRENCY_DEFAULT    "EUR"
#define WEBHOOK_SECRET_MIN  32      /* bytes: a 256-bit HMAC key */
#define WEBHOOK_SECRET_MAX  4096

/* ---- values of the integer directives ---- */

static int *int_at(void *conf, apr_size_t off)
{
    return (int *)((char *)conf + off);
}

static int int_of(const void *conf, apr_size_t off)
{
    return *(const int *)((const char *)conf + off);
}

/* Whether row d belongs to the per-directory config (else the server's). */
static int in_dir(const int_directive *d)
{
    return d->scope == SCOPE_DIR;
}

/* Each capped value of c (a dir config when dir, else a server config)
 * from its value as written and its cap. */
static void apply_caps(void *c, int dir)
{
    for (int i = 0; i < N_INT_DIRECTIVES; i++) {
        const int_directive *d = &int_directives[i];
        if (in_dir(d) == dir && d->cap != I_NONE) {
            int v = int_of(c, d->written);
            int cap = int_of(c, int_directives[d->cap].field);
            *int_at(c, d->field) = v < cap ? v : cap;
        }
    }
}

static void set_defaults(void *c, int dir)
{
    for (int i = 0; i < N_INT_DIRECTIVES; i++) {
        const int_directive *d = &int_directives[i];
        if (in_dir(d) == dir) {
            *int_at(c, d->field) = d->def;
            *int_at(c, d->written) = d->def;
        }
    }
    apply_caps(c, dir);
}

/* The child's value if it set one, else the parent's (its own or the
 * default), then the caps. */
static void merge_ints(void *c, const void *base, const void *add,
                       unsigned add_set, int dir)
{
    for (int i = 0; i < N_INT_DIRECTIVES; i++) {
        const int_directive *d = &int_directives[i];
        if (in_dir(d) == dir) {
            const void *from = (add_set & BIT(i)) ? add : base;
            *int_at(c, d->written) = int_of(from, d->written);
            *int_at(c, d->field) = int_of(from, d->written);
        }
    }
    apply_caps(c, dir);
}

/* A value written above its cap in the same section is refused, whichever
 * of the two came first. */
static const char *check_caps(cmd_parms *cmd, const void *c, unsigned set,
                              int dir)
{
    for (int i = 0; i < N_INT_DIRECTIVES; i++) {
        const int_directive *d = &int_directives[i];
        if (in_dir(d) == dir && d->cap != I_NONE && (set & BIT(i))
            && (set & BIT(d->cap))
            && int_of(c, d->written) > int_of(c, int_directives[d->cap].field)) {
            return apr_psprintf(cmd->pool, "%s (%d) may not exceed %s (%d)",
                                d->name, int_of(c, d->written),
                                int_directives[d->cap].name,
                                int_of(c, int_directives[d->cap].field));
        }
    }
    return NULL;
}

static ecom_srv_conf *srv_conf(const cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config, &ecom_module);
}

/* Every integer directive (cmd->info: its row). */
static const char *set_int_directive(cmd_parms *cmd, void *dcfg,
                                     const char *arg)
{
    const int_directive *d = cmd->info;
    int dir = in_dir(d);
    void *c = dir ? dcfg : (void *)srv_conf(cmd);
    unsigned *set = dir ? &((ecom_dir_conf *)c)->set
                        : &((ecom_srv_conf *)c)->set;
    const char *err;
    long long v;

    if (d->scope == SCOPE_MAIN
        && (err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) != NULL) {
        return err;
    }
    if (ecom_parse_ll(arg, d->min, d->max, &v) != 0) {
        return apr_psprintf(cmd->pool, "%s must be an integer from %d to %d",
                            d->name, d->min, d->max);
    }
    *int_at(c, d->written) = (int)v;
    *int_at(c, d->field) = (int)v;
    *set |= BIT(d - int_directives);
    apply_caps(c, dir);
    return check_caps(cmd, c, *set, dir);
}

/* ---- create and merge ---- */

void *ecom_create_dir_conf(apr_pool_t *p, char *dir)
{
    ecom_dir_conf *c = apr_pcalloc(p, sizeof(*c));

    set_defaults(c, 1);
    c->currency = CURRENCY_DEFAULT;
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

    c->set = base->set | add->set;
    merge_ints(c, base, add, add->set, 1);
    c->currency = (add->set & SET_CURRENCY) ? add->currency : base->currency;
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
    c->sessions = add->sessions_set ? add->sessions : base->sessions;
    c->sessions_set = add->sessions_set || base->sessions_set;
    return c;
}

void *ecom_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    ecom_srv_conf *c = apr_pcalloc(p, sizeof(*c));

    set_defaults(c, 0);
    c->payment_provider = ECOM_PAYMENT_DEFAULT;
    return c;
}

void *ecom_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    const ecom_srv_conf *base = basev, *add = addv;
    ecom_srv_conf *c = apr_pcalloc(p, sizeof(*c));

    c->set = base->set | add->set;
    merge_ints(c, base, add, add->set, 0);
    c->cache = add->cache_set ? add->cache : base->cache;
    c->cache_set = add->cache_set || base->cache_set;
    c->cors_origins = add->cors_origins ? add->cors_origins
                                        : base->cors_origins;
    c->payment_provider = (add->set & SET_PAYMENT_PROVIDER)
                          ? add->payment_provider : base->payment_provider;
    if (add->webhook_secret) {
        c->webhook_secret = add->webhook_secret;
        c->webhook_secret_len = add->webhook_secret_len;
    }
    else {
        c->webhook_secret = base->webhook_secret;
        c->webhook_secret_len = base->webhook_secret_len;
    }
    return c;
}

/* ---- the other directives ---- */

static const char *set_currency(cmd_parms *cmd, void *cfg, const char *arg)
{
    ecom_dir_conf *c = cfg;

    if (!ecom_currency_valid(arg)) {
        return "EcomCurrency must be an ISO 4217 code of three upper-case "
               "letters, e.g. EUR";
    }
    c->currency = arg;
    c->set |= SET_CURRENCY;
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

static const char *set_cache(cmd_parms *cmd, void *cfg, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err) {
        return err;
    }
    return ecom_cache_configure(cmd, srv_conf(cmd), arg);
}

/* Reads the secret of "EcomWebhookSecret file:<name>" (relative to
 * ServerRoot) into *buf, without one trailing newline. */
static const char *read_secret_file(cmd_parms *cmd, const char *name,
                                    char **buf, apr_size_t *len)
{
    const char *path = *name ? ap_server_root_relative(cmd->temp_pool, name)
                             : NULL;
    apr_file_t *f;
    apr_status_t rv;

    if (!path) {
        return apr_psprintf(cmd->pool, "EcomWebhookSecret: not a file name: "
                            "'file:%s'", name);
    }
    /* one byte more than allowed, to tell a file that is too long */
    *buf = apr_palloc(cmd->temp_pool, WEBHOOK_SECRET_MAX + 1);
    *len = 0;
    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY,
                       APR_FPROT_OS_DEFAULT, cmd->temp_pool);
    if (rv == APR_SUCCESS) {
        rv = apr_file_read_full(f, *buf, WEBHOOK_SECRET_MAX + 1, len);
        apr_file_close(f);
        if (rv == APR_EOF) {
            rv = APR_SUCCESS;
        }
    }
    if (rv != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "EcomWebhookSecret: cannot read %s: "
                            "%pm", path, &rv);
    }
    if (*len > WEBHOOK_SECRET_MAX) {
        return apr_psprintf(cmd->pool, "EcomWebhookSecret: %s holds more "
                            "than %d bytes", path, WEBHOOK_SECRET_MAX);
    }
    /* as echo and editors leave it */
    if (*len > 0 && (*buf)[*len - 1] == '\n') {
        (*len)--;
        if (*len > 0 && (*buf)[*len - 1] == '\r') {
            (*len)--;
        }
    }
    return NULL;
}

/* The secret itself is never part of a message. */
static const char *set_webhook_secret(cmd_parms *cmd, void *cfg,
                                      const char *arg)
{
    ecom_srv_conf *c = srv_conf(cmd);
    char *secret = NULL;
    apr_size_t len = strlen(arg);
    const char *err;

    if (strncmp(arg, "file:", 5) == 0) {
        if ((err = read_secret_file(cmd, arg + 5, &secret, &len)) != NULL) {
            return err;
        }
    }
    if (len < WEBHOOK_SECRET_MIN) {
        return apr_psprintf(cmd->pool, "EcomWebhookSecret must be at least "
                            "%d bytes (this one has %" APR_SIZE_T_FMT "), "
                            "e.g. the output of openssl rand -hex 32",
                            WEBHOOK_SECRET_MIN, len);
    }
    c->webhook_secret = apr_pmemdup(cmd->pool, secret ? secret : arg, len);
    c->webhook_secret_len = len;
    if (secret) {
        /* the temporary pool's memory is reused, not given back */
        memset(secret, 0, len);
    }
    return NULL;
}

/* The name is checked once every module has registered its providers
 * (ecom_config_check, ECOM0701). */
static const char *set_payment_provider(cmd_parms *cmd, void *cfg,
                                        const char *arg)
{
    ecom_srv_conf *c = srv_conf(cmd);

    c->payment_provider = arg;
    c->set |= SET_PAYMENT_PROVIDER;
    return NULL;
}

#define CMD(id, name, scope, field, written, def, min, max, cap, help)      \
    AP_INIT_TAKE1(name, set_int_directive, (void *)&int_directives[I_##id], \
                  WHERE_##scope, help " (" #min ".." #max ", default " #def ")"),

const command_rec ecom_cmds[] = {
    INT_DIRECTIVES(CMD)
    AP_INIT_TAKE1("EcomCurrency", set_currency, NULL, WHERE_DIR,
                  "Default ISO 4217 currency of new products and empty carts "
                  "(default " CURRENCY_DEFAULT ")"),
    AP_INIT_TAKE1("EcomBasePath", set_base, NULL, WHERE_DIR,
                  "URL path the API is mounted at (default: the enclosing "
                  "<Location>)"),
    AP_INIT_TAKE1("EcomCache", set_cache, NULL, WHERE_MAIN,
                  "Response cache for catalog pages: none, or a socache "
                  "provider with its arguments, e.g. "
                  "shmcb:/run/ecom_cache(1048576); main server only (default: "
                  "anonymous shmcb when mod_socache_shmcb is loaded, else "
                  "none)"),
    AP_INIT_TAKE1("EcomWebhookSecret", set_webhook_secret, NULL, WHERE_SRV,
                  "Key of the webhook signatures (Ecom-Signature), at least "
                  "32 bytes: the secret itself, or file:<path> to read it "
                  "from a file at start-up (default: none, webhooks refused)"),
    AP_INIT_TAKE1("EcomPaymentProvider", set_payment_provider, NULL, WHERE_SRV,
                  "Payment provider of POST /orders/{id}/payments/, by the "
                  "name it registered (default " ECOM_PAYMENT_DEFAULT ")"),
    AP_INIT_FLAG("EcomSessions", ecom_session_set_flag, NULL, WHERE_DIR,
                 "Cookie sessions for browsers through mod_session: login "
                 "also answers with a session, requests without a bearer "
                 "token use it, with CSRF checks (default Off)"),
    AP_INIT_FLAG("EcomDynamicPricing", ecom_dynprice_set_flag, NULL,
                 WHERE_MAIN, "Demand-based prices: a mod_watchdog job moves "
                 "the price of every product with price_floor and "
                 "price_ceiling every EcomDynamicPricingInterval seconds; "
                 "main server only (default Off)"),
    AP_INIT_ITERATE("EcomCORSOrigins", ecom_cors_set_origins, NULL, WHERE_SRV,
                    "Origins (scheme://host[:port]) whose browser pages may "
                    "call the API with CORS, credentials included (default: "
                    "none, no CORS headers)"),
    { NULL }
};
#undef CMD

/* ---- after configuration ---- */

/* Names s for a message: the main server, or where its <VirtualHost> is. */
static const char *server_name(apr_pool_t *p, const server_rec *s)
{
    if (!s->is_virtual) {
        return "the main server";
    }
    return apr_psprintf(p, "the <VirtualHost> at %s:%u",
                        s->defn_name ? s->defn_name : "?",
                        s->defn_line_number);
}

int ecom_config_check(apr_pool_t *ptemp, server_rec *s, int warnings)
{
    const ecom_srv_conf *top = ap_get_module_config(s->module_config,
                                                    &ecom_module);
    /* warnings only once, not in the configuration test pass of a start */
    int warn = warnings
               && ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG;
    int rv = OK;
    server_rec *sp;

    for (sp = s; sp; sp = sp->next) {
        const ecom_srv_conf *sc = ap_get_module_config(sp->module_config,
                                                       &ecom_module);
        /* a virtual host that inherits the main server's contradiction
         * is not reported again */
        int same_ttl = sp != s && (top->set & BIT(I_CACHE_TTL))
                       && sc->cache_ttl == top->cache_ttl;
        int same_tolerance = sp != s && !top->webhook_secret
                             && (top->set & BIT(I_WEBHOOK_TOLERANCE))
                             && sc->webhook_tolerance == top->webhook_tolerance;

        if ((sc->set & BIT(I_CACHE_TTL)) && !sc->cache && !same_ttl) {
            if (sc->cache_set) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                             "ECOM0501: EcomCacheTTL %d in %s has no effect "
                             "with EcomCache none: remove one of the two",
                             sc->cache_ttl, server_name(ptemp, sp));
                rv = HTTP_INTERNAL_SERVER_ERROR;
            }
            else if (warn) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                             "ECOM0502: EcomCacheTTL %d in %s has no effect: "
                             "there is no cache (no EcomCache, and "
                             "mod_socache_shmcb is not loaded)",
                             sc->cache_ttl, server_name(ptemp, sp));
            }
        }
        if (!ecom_payment_provider_find(sc->payment_provider)
            && (sp == s || sc->payment_provider != top->payment_provider)) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                         "ECOM0701: EcomPaymentProvider %s in %s: no payment "
                         "provider of that name is registered (registered: "
                         "%s); load the module that provides it first",
                         sc->payment_provider, server_name(ptemp, sp),
                         ecom_payment_provider_names(ptemp));
            rv = HTTP_INTERNAL_SERVER_ERROR;
        }
        if ((sc->set & BIT(I_WEBHOOK_TOLERANCE)) && !sc->webhook_secret
            && !same_tolerance) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                         "ECOM0503: EcomWebhookTolerance %d in %s has no "
                         "effect without EcomWebhookSecret: set the secret "
                         "there (a virtual host inherits the main server's), "
                         "or remove the tolerance",
                         sc->webhook_tolerance, server_name(ptemp, sp));
            rv = HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return rv;
}
