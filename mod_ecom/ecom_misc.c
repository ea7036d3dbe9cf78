/*
 * ecom_misc.c: GET /health/ (liveness with a database round trip) and
 * GET /openapi.json (the OpenAPI 3.1 document, embedded at build time from
 * openapi/openapi.json by scripts/embed.pl).
 */
#include "ecom_resource.h"
#include "ecom_http.h"

extern const char ecom_openapi_json[];
extern const size_t ecom_openapi_json_len;

static int ecom_health(ecom_req *q)
{
    ecom_err e = ecom_db_ping(q);

    apr_table_setn(q->r->headers_out, "Cache-Control", "no-store");
    if (e == ECOM_E_UNAVAILABLE || e == ECOM_E_BUSY) {
        apr_table_setn(q->r->err_headers_out, "Retry-After", "1");
        return ecom_problem_with(q, HTTP_SERVICE_UNAVAILABLE,
                                 "database-unavailable",
                                 "The database is unavailable.",
                                 ecom_jown(q, json_pack("{s:s}", "database",
                                                        "unavailable")));
    }
    if (e) {
        return ecom_fail(q, e);
    }
    return ecom_json(q, HTTP_OK, ecom_jown(q, json_pack("{s:s, s:s}",
                                                        "status", "ok",
                                                        "database", "ok")));
}

static int ecom_openapi(ecom_req *q)
{
    q->status = HTTP_OK;
    q->out = ecom_openapi_json;
    q->out_len = ecom_openapi_json_len;
    q->ctype = "application/json; charset=utf-8";
    return HTTP_OK;
}

static const ecom_route misc_routes[] = {
    { M_GET, "health", ecom_health, ECOM_AUTH_NONE, 0, 0, "health" },
    { M_GET, "openapi.json", ecom_openapi, ECOM_AUTH_NONE, 0, 0, "openapi" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_misc_resource = { "misc", NULL, misc_routes, NULL };
