/*
 * ecom_events.c: the staff event feed, GET /events/.
 *
 * The events table is filled by triggers (sql/005_order_lifecycle.sql) in
 * the same transaction as each order transition, payment, refund and
 * shipment change; this file only reads it, oldest first by id, with
 * keyset pagination (ecom_page.h; the cursor holds the last id shown, so
 * pages are stable under inserts). Filters: ?type= an exact type
 * ("payment.failed") or a kind before the dot ("payment": every
 * payment.* event), ?order_id=. An integration follows the store by
 * keeping the last next_cursor it saw.
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_page.h"
#include "ecom_util.h"

#include <string.h>

enum { E_ID, E_TYPE, E_ORDER_ID, E_ACTOR, E_DATA, E_CREATED_AT };

static const ecom_col event_cols[] = {
    [E_ID] = { "id", EC_INT }, [E_TYPE] = { "type", EC_STR },
    [E_ORDER_ID] = { "order_id", EC_INT }, [E_ACTOR] = { "actor", EC_STR_NULL },
    [E_DATA] = { "data", EC_JSON }, [E_CREATED_AT] = { "created_at", EC_TIME },
    { NULL, 0 }
};

/* One statement per filter combination (issue 8), so each generic plan
 * reads through the index of its filter: events_order (order_id, id),
 * events_type (type text_pattern_ops, id), or the primary key; a NULL
 * cursor is "from the start" through COALESCE, which keeps the id
 * condition on the index. A kind is matched as the range [kind + ".",
 * kind + "/"): '/' follows '.', and ~>=~ / ~<~ are the operators
 * events_type's text_pattern_ops index serves. Labels: ecom_events, then
 * "o" for order_id, "t" for an exact type or "k" for a kind. */
#define EVENT_SELECT \
    "SELECT id, type, order_id, actor, data::text, " ECOM_TS("created_at") \
    " FROM events WHERE "
#define EVENT_ORDER "order_id = %s::bigint AND "
#define EVENT_TYPE "type = %s AND "
#define EVENT_KIND "type ~>=~ %s AND type ~<~ %s AND "
#define EVENT_KEY "id > COALESCE(%s::bigint, 0) ORDER BY id LIMIT %s::int"
#define EVENT_LIST (ECOM_STMT_READ | ECOM_STMT_LIST)

static const ecom_stmt event_sql[] = {
    { "ecom_events", EVENT_SELECT EVENT_KEY, EVENT_LIST },
    { "ecom_events_t", EVENT_SELECT EVENT_TYPE EVENT_KEY, EVENT_LIST },
    { "ecom_events_k", EVENT_SELECT EVENT_KIND EVENT_KEY, EVENT_LIST },
    { "ecom_events_o", EVENT_SELECT EVENT_ORDER EVENT_KEY, EVENT_LIST },
    { "ecom_events_ot", EVENT_SELECT EVENT_ORDER EVENT_TYPE EVENT_KEY,
      EVENT_LIST },
    { "ecom_events_ok", EVENT_SELECT EVENT_ORDER EVENT_KIND EVENT_KEY,
      EVENT_LIST },
    { NULL, NULL, 0 }
};

/* A type filter: a kind ("payment") or kind.status ("payment.failed"),
 * lower-case letters and '_', at most 100 characters. Sets *exact. */
static int type_ok(const char *t, int *exact)
{
    size_t n = strlen(t), word = strspn(t, "abcdefghijklmnopqrstuvwxyz_");

    if (n == 0 || n > 100 || word == 0) {
        return 0;
    }
    if (word == n) {
        *exact = 0;
        return 1;
    }
    *exact = 1;
    return t[word] == '.' && t[word + 1]
           && strspn(t + word + 1, "abcdefghijklmnopqrstuvwxyz_")
              == n - word - 1;
}

static int ecom_events_list(ecom_req *q)
{
    const char *type = apr_table_get(q->args, "type");
    const char *order = apr_table_get(q->args, "order_id");
    const char *cursor = apr_table_get(q->args, "cursor");
    const char *args[5], *label;
    long long k1 = 0, k2 = 0, oid = 0;
    apr_dbd_results_t *res;
    int limit, rv, exact = 0, n = 0;
    ecom_err e;

    if ((rv = ecom_page_args(q, &limit))) {
        return rv;
    }
    if (type && !type_ok(type, &exact)) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "type must be an event type such as "
                            "payment.failed, or its kind such as payment.");
    }
    if (order && ecom_parse_id(order, strlen(order), &oid) != 0) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "order_id must be a positive integer.");
    }
    if ((rv = ecom_page_cursor(q, 'e', &k1, &k2))) {
        return rv;
    }
    /* the arguments in the order of the statement's placeholders */
    if (order) {
        args[n++] = ECOM_LL(q, oid);
    }
    if (type && exact) {
        args[n++] = type;
    }
    else if (type) {
        args[n++] = apr_pstrcat(q->r->pool, type, ".", NULL);
        args[n++] = apr_pstrcat(q->r->pool, type, "/", NULL);
    }
    args[n++] = cursor ? ECOM_LL(q, k1) : NULL;
    args[n++] = apr_itoa(q->r->pool, limit + 1);
    label = apr_pstrcat(q->r->pool, "ecom_events", order || type ? "_" : "",
                        order ? "o" : "", !type ? "" : exact ? "t" : "k",
                        NULL);
    if ((e = ecom_db_select(q, label, &res, n, args))) {
        return ecom_fail(q, e);
    }
    return ecom_page(q, res, limit, event_cols, 'e', E_ID, -1);
}

static const ecom_route event_routes[] = {
    { M_GET, "events", ecom_events_list, ECOM_AUTH_STAFF, 0, 0,
      "events.list" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_events_resource = {
    "events", event_sql, event_routes, NULL
};
