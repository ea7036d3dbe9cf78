/*
 * ecom_categories.c: GET /categories/, the flat list of categories with the
 * number of active products filed directly under each, in id order,
 * keyset-paginated like every list. Anyone may read it; it is served from
 * the response cache's categories section, which product writes invalidate
 * (their routes name ECOM_CACHE_CATEGORIES).
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_cache.h"
#include "ecom_page.h"
#include "ecom_util.h"

enum { CAT_ID, CAT_SLUG, CAT_NAME, CAT_PARENT, CAT_PRODUCT_COUNT, CAT_NCOLS };

static const ecom_stmt category_sql[] = {
    { "ecom_categories_list",
      "SELECT c.id, c.slug, c.name, p.slug, "
      "(SELECT count(*) FROM products pr WHERE pr.category_id = c.id "
      " AND pr.active) "
      "FROM categories c LEFT JOIN categories p ON p.id = c.parent_id "
      "WHERE c.id > COALESCE(%s::bigint, 0) ORDER BY c.id LIMIT %s::int",
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { NULL, NULL, 0 }
};

static const ecom_col category_cols[] = {
    [CAT_ID] = { "id", EC_INT }, [CAT_SLUG] = { "slug", EC_STR },
    [CAT_NAME] = { "name", EC_STR }, [CAT_PARENT] = { "parent", EC_STR_NULL },
    [CAT_PRODUCT_COUNT] = { "product_count", EC_INT },
    [CAT_NCOLS] = { NULL, 0 }
};

/* The query parameters the list reads: its cache key is made of these. */
static const char *const list_params[] = { "cursor", "limit", NULL };

static int categories_list(ecom_req *q)
{
    const char *cursor = apr_table_get(q->args, "cursor"), *args[2], *ckey;
    long long k1 = 0, k2 = 0;
    apr_dbd_results_t *res;
    ecom_err e;
    int limit, rv;

    ckey = ecom_cache_key(q, ECOM_CACHE_CATEGORIES, "categories", list_params);
    if (ecom_cache_serve(q, ckey)) {
        return HTTP_OK;
    }
    if ((rv = ecom_page_args(q, &limit))) {
        return rv;
    }
    if (cursor && ecom_cursor_decode(cursor, 'c', &k1, &k2) != 0) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "Query parameter cursor is not a cursor of this "
                            "list.");
    }
    args[0] = cursor ? ECOM_LL(q, k1) : NULL;
    args[1] = apr_itoa(q->r->pool, limit + 1);
    if ((e = ecom_db_select(q, "ecom_categories_list", &res, 2, args))) {
        return ecom_fail(q, e);
    }
    ecom_page(q, res, limit, category_cols, 'c', CAT_ID, -1);
    ecom_cache_store(q, ckey);
    return HTTP_OK;
}

static const ecom_route category_routes[] = {
    { M_GET, "categories", categories_list, ECOM_AUTH_NONE, 0, 0,
      "categories.list" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_categories_resource = {
    "categories", category_sql, category_routes, NULL
};
