/*
 * ecom_misc.c: GET /health/ (liveness with a database round trip) and
 * GET /openapi.json (the OpenAPI 3.1 document, embedded at build time from
 * openapi/openapi.json by scripts/embed.pl).
 */
#include "ecom.h"

extern const char ecom_openapi_json[];
extern const size_t ecom_openapi_json_len;

const ecom_stmt ecom_misc_sql[] = {
    { "ecom_ping", "SELECT 1", ECOM_STMT_READ },
    { NULL, NULL, 0 }
};

int ecom_health(ecom_req *q)
{
    int rv = ecom_db_ping(q);

    apr_table_setn(q->r->headers_out, "Cache-Control", "no-store");
    if (rv == HTTP_SERVICE_UNAVAILABLE) {
        return ecom_problem_with(q, rv, "database-unavailable",
                                 "The database is unavailable.",
                                 json_pack("{s:s}", "database", "unavailable"));
    }
    if (rv) {
        return rv;
    }
    return ecom_json(q, HTTP_OK, json_pack("{s:s, s:s}", "status", "ok",
                                           "database", "ok"));
}

int ecom_openapi(ecom_req *q)
{
    q->status = HTTP_OK;
    q->out = ecom_openapi_json;
    q->out_len = ecom_openapi_json_len;
    q->ctype = "application/json; charset=utf-8";
    return HTTP_OK;
}
