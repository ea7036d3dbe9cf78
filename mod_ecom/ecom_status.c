/*
 * ecom_status.c: the operator's view of the module, as JSON, under its own
 * handler name:
 *
 *     <Location "/ecom-status">
 *         SetHandler ecom-status
 *         Require ip 127.0.0.1
 *     </Location>
 *
 * httpd's Require decides who may ask (ECOM_AUTH_OPERATOR), as for
 * mod_status; the API's handler ("ecom") never serves it. It shows every
 * registered resource with its routes and auth kinds, the virtual host's
 * resolved server-level settings, the response cache's counters
 * (shared by every child; mod_status shows them too) and the throttle's
 * (ecom_throttle.c). It reads no
 * database and holds no secret (only whether one is configured).
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_cache.h"
#include "ecom_throttle.h"

static json_t *routes_json(ecom_req *q, const ecom_resource *res)
{
    json_t *a = ecom_jarray(q);

    for (const ecom_route *rt = res->routes; rt && rt->pattern; rt++) {
        json_array_append_new(a, json_pack(
            "{s:s, s:s, s:s, s:s, s:b, s:b}",
            "name", rt->name,
            "method", ecom_method_text(rt->method),
            "path", rt->auth == ECOM_AUTH_OPERATOR
                    ? apr_pstrcat(q->r->pool, "(SetHandler ", res->handler,
                                  ")", NULL)
                    : apr_pstrcat(q->r->pool, "/", rt->pattern,
                                  *rt->pattern ? "/" : "", NULL),
            "auth", ecom_auth_kind_name(rt->auth),
            "idempotent", (rt->flags & ECOM_IDEMPOTENT) != 0,
            "invalidates_cache", rt->invalidates != 0));
    }
    return a;
}

static json_t *cache_json(ecom_req *q)
{
    struct ecom_cache_counters c;
    json_t *inv = ecom_jobject(q);
    const char *name;

    ecom_cache_counters(&c);
    for (int i = 0; (name = ecom_cache_section_name(i)); i++) {
        json_object_set_new(inv, name,
                            json_integer((json_int_t)c.invalidations[i]));
    }
    return ecom_jown(q, json_pack("{s:b, s:I, s:I, s:I, s:O}",
                                  "enabled", c.enabled,
                                  "hits", (json_int_t)c.hits,
                                  "misses", (json_int_t)c.misses,
                                  "stores", (json_int_t)c.stores,
                                  "invalidations", inv));
}

static int status_get(ecom_req *q)
{
    json_t *resources = ecom_jarray(q);
    const ecom_srv_conf *sc = q->sc;

    for (const ecom_resource *const *res = ecom_resources; *res; res++) {
        int nstmts = 0;
        json_t *prepared = ecom_jarray(q);
        for (const ecom_stmt *st = (*res)->stmts; st && st->label; st++) {
            nstmts++;
            /* what mod_dbd prepares, in apr_dbd's notation (%s) */
            json_array_append_new(prepared, json_pack(
                "{s:s, s:s, s:b, s:b}", "label", st->label, "sql", st->sql,
                "read", (st->flags & ECOM_STMT_READ) != 0,
                "list", (st->flags & ECOM_STMT_LIST) != 0));
        }
        json_array_append_new(resources, json_pack(
            "{s:s, s:i, s:O, s:O}", "name", (*res)->name, "statements", nstmts,
            "prepared", prepared, "routes", routes_json(q, *res)));
    }
    apr_table_setn(q->r->headers_out, "Cache-Control", "no-store");
    return ecom_json(q, HTTP_OK, ecom_jown(q, json_pack(
        "{s:s, s:O, s:O, s:O, s:{s:i, s:b, s:i, s:i, s:b, s:i, s:s, s:i, s:i, s:i}}",
        "server", q->r->server->server_hostname
                  ? q->r->server->server_hostname : "",
        "resources", resources,
        "cache", cache_json(q),
        "throttle", ecom_throttle_report(q),
        "config",
        "token_lifetime", sc->token_lifetime,
        "cache", sc->cache != NULL,
        "cache_ttl", sc->cache_ttl,
        "purge_interval", sc->purge_interval,
        "webhook_secret", sc->webhook_secret != NULL,
        "webhook_tolerance", sc->webhook_tolerance,
        "payment_provider", sc->payment_provider,
        "payment_timeout", sc->payment_timeout,
        "max_pending_orders", sc->max_pending,
        "recs_refresh_interval", sc->recs_refresh_interval)));
}

static const ecom_route status_routes[] = {
    { M_GET, "", status_get, ECOM_AUTH_OPERATOR, 0, 0, "status" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_status_resource = {
    "status", NULL, status_routes, "ecom-status"
};
