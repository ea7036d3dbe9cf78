/*
 * ecom_products.c: the catalog: list (keyset pagination, filters, sorts,
 * facets), detail with ETag, and staff create / update.
 *
 * Listing: the statements a generic plan serves well at any value, the
 * hot paths, and one that PostgreSQL plans per request:
 *   - no filter, or in_stock alone: one statement per sort order, an
 *     ordered index walk stopping after limit + 1 rows (in_stock=false
 *     by id or newest: a walk of the sold-out ids, sql/031);
 *   - category alone, by id or newest: a walk of products_category per
 *     category of the subtree, merged;
 *   - a price range alone (min_price, max_price), in any order but
 *     rating: in price order the price index from the range's start; by
 *     id or newest sql/033's ecom_products_price_ids, which picks the id
 *     walk or one walk per price band from the products counted per band;
 *   - a category and a price range, by id or newest: the category's walks
 *     filtering on the price when the range is common, else as below;
 *   - q alone (or with in_stock) by relevance: ecom_products_q (sql/034,
 *     sql/038) runs static statements: the name tier reads the rarest
 *     word's products in id order from the names' postings, the other
 *     tier walks the id order or reads GIN as the words' document
 *     frequencies say; the rows are read by id;
 *   - a price bound with other filters or sort=rating, other q, category
 *     with in_stock or in another order: ecom_products_ids (sql/031) plans
 *     the page's ids for the filters that are on and their values, and the
 *     rows are read by id.
 * The keyset condition follows the sort: (price, id) for price sorts,
 * (rating_key, id) for rating, (tier, id) for relevance (sql/032; the
 * similarity instead of the tier in the typo-tolerant fallback), id for
 * the rest; limit + 1 rows are fetched to know whether a next page exists.
 * A relevance cursor is tagged 't', not with the sort tag 's' of the ts_rank
 * order before sql/032, whose cursors are so refused (400) rather than
 * read as tiers.
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_cache.h"
#include "ecom_page.h"
#include "ecom_crypto.h"
#include "ecom_util.h"
#include "ecom_dynprice.h"
#include "ecom_pricing.h"
#include "ecom_products.h"

/* PRODUCT_COLS' columns, in order (product_cols names them for JSON);
 * rating_key, the sort=rating key, is read but not shown */
enum { P_ID, P_SKU, P_NAME, P_DESCRIPTION, P_PRICE, P_CURRENCY, P_STOCK,
       P_ACTIVE, P_CATEGORY, P_CREATED_AT, P_UPDATED_AT, P_RATING,
       P_LIST_PRICE, P_PRICE_ENDS, P_NCOLS,
       P_RATING_KEY = P_NCOLS,
       /* ecom_products_page's last column: the relevance key of
        * sort=relevance (the tier, or the similarity of the fallback) */
       P_RELEVANCE };

#define LIST_SELECT \
    "SELECT " PRODUCT_COLS " FROM products p " \
    "LEFT JOIN categories c ON c.id = p.category_id WHERE p.active "

/* Keyset conditions: a NULL cursor turns into "from the start" through
 * COALESCE, keeping the condition sargable on the matching index. */
#define KEY_ID \
    "AND p.id > COALESCE(%s::bigint, 0) ORDER BY p.id LIMIT %s::int"
#define KEY_NEWEST \
    "AND p.id < COALESCE(%s::bigint, 9223372036854775807) " \
    "ORDER BY p.id DESC LIMIT %s::int"
#define KEY_PRICE \
    "AND (p.price, p.id) > (COALESCE(%s::bigint, -1), COALESCE(%s::bigint, 0)) " \
    "ORDER BY p.price, p.id LIMIT %s::int"
#define KEY_PRICE_DESC \
    "AND (-p.price, p.id) > (-COALESCE(%s::bigint, 9223372036854775807), " \
    "COALESCE(%s::bigint, 0)) ORDER BY -p.price, p.id LIMIT %s::int"
/* highest rating first (unrated last: rating_key -1), ties by id */
#define KEY_RATING \
    "AND (-p.rating_key, p.id) > (-COALESCE(%s::int, 2147483647), " \
    "COALESCE(%s::bigint, 0)) ORDER BY -p.rating_key, p.id LIMIT %s::int"

/* in_stock=true or false */
#define STOCK_IS "AND (p.stock > 0) = %s::boolean "
#define SOLD_OUT_SELECT \
    "SELECT " PRODUCT_COLS " FROM product_sold_out o " \
    "CROSS JOIN LATERAL (SELECT * FROM products p WHERE p.id = o.id " \
    "AND p.active AND p.stock = 0 OFFSET 0) p " \
    "LEFT JOIN categories c ON c.id = p.category_id "
/* The page of a category's subtree: per category id, a walk of
 * products_category (category_id, id) stopping after a page (inner: its
 * keyset condition and order), the walks merged in the list's order, the
 * page's rows read by id. The walks read ids only, so they are index-only
 * scans, which PostgreSQL prefers to a walk of the primary key filtering
 * on the category; that walk would be cheaper for a category of average
 * size in a catalog stored in category order, and would read the whole
 * catalog for a rare one (a generic plan does not know which it serves).
 * Parameters: the slug, the cursor, the limit twice. */
#define CAT_SELECT(inner, order) \
    "SELECT " PRODUCT_COLS " FROM (SELECT x.id " \
    "FROM unnest(ecom_category_subtree(%s)) k(id) " \
    "CROSS JOIN LATERAL (SELECT q.id FROM products q WHERE q.active " \
    "AND q.category_id = k.id " inner " LIMIT %s::int) x " \
    order " LIMIT %s::int) t " \
    "CROSS JOIN LATERAL (SELECT * FROM products p WHERE p.id = t.id " \
    "OFFSET 0) p LEFT JOIN categories c ON c.id = p.category_id " order

/* The far end of a price range in price order (parameter: max, or min for
 * -price); its near end is where the walk starts, the row comparison of
 * KEY_PRICE / KEY_PRICE_DESC (ecom_products_list sets it): btree starts
 * from one row comparison, and a scalar bound beside it would be checked
 * on every entry from the index's start instead. */
#define PRICE_TO "AND p.price <= COALESCE(%s::bigint, 9223372036854775807) "
#define PRICE_TO_DESC "AND -p.price <= -COALESCE(%s::bigint, 0) "
/* A page whose ids (in order) come from a set-returning function (call),
 * its rows then read by id, with the columns cols (PRODUCT_COLS, and the
 * relevance key x.rk where the function returns one). Every such function
 * is declared ROWS 21, so the join is planned as a nested loop over
 * products_pkey whatever the parameters (t/41 checks each plan); a plain
 * join, not a LATERAL subquery with OFFSET 0 per id: 0.1 ms less a page
 * (q=black at a million products, one client: 0.51-0.57 ms against
 * 0.61-0.70). */
#define IDS_SELECT(cols, call) \
    "SELECT " cols " FROM " call " WITH ORDINALITY AS x " \
    "JOIN products p ON p.id = x.id " \
    "LEFT JOIN categories c ON c.id = p.category_id " \
    "ORDER BY x.ordinality"
/* The page of a price range by id (newest: "true"), its ids from sql/033's
 * ecom_products_price_ids. Parameters: min, max, the cursor, the limit. */
#define PRICE_IDS_SELECT(newest) IDS_SELECT(PRODUCT_COLS, \
    "ecom_products_price_ids(%s::bigint, %s::bigint, " newest ", " \
    "%s::bigint, %s::int)")
/* The same with a category's subtree (sql/033's
 * ecom_products_cat_price_ids). Parameters: the slug, min, max, the
 * cursor, the limit. */
#define CAT_PRICE_IDS_SELECT(newest) IDS_SELECT(PRODUCT_COLS, \
    "ecom_products_cat_price_ids(%s, %s::bigint, %s::bigint, " newest ", " \
    "%s::bigint, %s::int)")

static const ecom_stmt product_sql[] = {
    { "ecom_products_i", LIST_SELECT KEY_ID,
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_products_n", LIST_SELECT KEY_NEWEST,
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_products_p", LIST_SELECT KEY_PRICE,
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_products_d", LIST_SELECT KEY_PRICE_DESC,
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_products_r", LIST_SELECT KEY_RATING,
      ECOM_STMT_READ | ECOM_STMT_LIST },
    /* in_stock alone: the sort's index walked as without filters (no
     * index names stock: a checkout's stock update stays HOT, sql/014);
     * sold-out or in-stock products are common enough that the walk
     * stops soon, so the generic plan is right at either value */
    { "ecom_products_si", LIST_SELECT STOCK_IS KEY_ID,
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_products_sn", LIST_SELECT STOCK_IS KEY_NEWEST,
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_products_sp", LIST_SELECT STOCK_IS KEY_PRICE,
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_products_sd", LIST_SELECT STOCK_IS KEY_PRICE_DESC,
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_products_sr", LIST_SELECT STOCK_IS KEY_RATING,
      ECOM_STMT_READ | ECOM_STMT_LIST },
    /* in_stock=false by id or newest: the ids of sql/031's
     * product_sold_out in order, each product probed by id (OFFSET 0: not
     * turned into a walk of products) */
    { "ecom_products_oi", SOLD_OUT_SELECT
      "WHERE o.id > COALESCE(%s::bigint, 0) ORDER BY o.id LIMIT %s::int",
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_products_on", SOLD_OUT_SELECT
      "WHERE o.id < COALESCE(%s::bigint, 9223372036854775807) "
      "ORDER BY o.id DESC LIMIT %s::int",
      ECOM_STMT_READ | ECOM_STMT_LIST },
    /* category alone, by id or newest: one walk of
     * products_category (category_id, id) per category of the subtree,
     * each stopping after a page, then the pages merged. Its cost does not
     * depend on how many products the category holds, so a generic plan
     * serves a rare and a common one alike (sql/031) */
    { "ecom_products_ci", CAT_SELECT(
        "AND q.id > COALESCE(%s::bigint, 0) ORDER BY q.id", "ORDER BY id"),
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_products_cn", CAT_SELECT(
        "AND q.id < COALESCE(%s::bigint, 9223372036854775807) "
        "ORDER BY q.id DESC", "ORDER BY id DESC"),
      ECOM_STMT_READ | ECOM_STMT_LIST },
    /* a price range alone, by id or newest: sql/033's
     * ecom_products_price_ids chooses, from the products counted per
     * price band, between the id walk filtering on the price and one
     * walk per price band (generic plans: nothing is planned per
     * request); the rows are then read by id */
    { "ecom_products_bi", PRICE_IDS_SELECT("false"),
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_products_bn", PRICE_IDS_SELECT("true"),
      ECOM_STMT_READ | ECOM_STMT_LIST },
    /* a category's subtree and a price range, by id or newest: per
     * category of the subtree a walk filtering on the price when the
     * counts say the range is common enough, else planned per request
     * (sql/033's ecom_products_cat_price_ids) */
    { "ecom_products_ki", CAT_PRICE_IDS_SELECT("false"),
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_products_kn", CAT_PRICE_IDS_SELECT("true"),
      ECOM_STMT_READ | ECOM_STMT_LIST },
    /* a price range alone in price order: the price index walked from the
     * range's start (or the cursor) stops after a page, whatever the
     * range holds, so a generic plan is right at any value */
    { "ecom_products_bp", LIST_SELECT PRICE_TO KEY_PRICE,
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_products_bd", LIST_SELECT PRICE_TO_DESC KEY_PRICE_DESC,
      ECOM_STMT_READ | ECOM_STMT_LIST },
    /* q alone (in_stock allowed) by relevance: ecom_products_q (sql/034,
     * sql/038) runs static statements (generic plans kept for the
     * session), no planning per request; the rows read by primary key as
     * below */
    { "ecom_products_q", IDS_SELECT(PRODUCT_COLS ", x.rk",
      "ecom_products_q(%s::boolean, %s, %s::bigint, %s::bigint, %s::int)"),
      ECOM_STMT_READ | ECOM_STMT_LIST },
    /* a price bound, q, category with in_stock or in another order:
     * PostgreSQL plans
     * the page's ids for the filters that are on and their values
     * (sql/031's ecom_products_ids, from an index alone where it can),
     * then each row is read by primary key (IDS_SELECT) */
    { "ecom_products_page", IDS_SELECT(PRODUCT_COLS ", x.rk",
      "ecom_products_ids(%s, %s::bigint, %s::bigint, %s::boolean, %s, %s, "
      "%s::bigint, %s::bigint, %s::int)"),
      ECOM_STMT_READ | ECOM_STMT_LIST },
    /* the watchdog's count of the search terms (sql/034) */
    { "ecom_search_stats_run", "SELECT ecom_search_lexemes_refresh()", 0 },
    /* ?facets= without a price bound or q: the counts of sql/015's
     * product_facet_counts (a few hundred rows) summed per category, per
     * price bucket and per in-stock state in one pass; the JSON is built
     * here (building it in SQL cost three times the sums) */
    { "ecom_products_facet_sums",
      "SELECT g.category_id, c.slug, c.name, g.bucket, g.in_stock, g.n "
      "FROM (SELECT f.category_id, f.bucket, f.in_stock, sum(f.n) AS n "
      "FROM product_facet_counts f WHERE f.n > 0 "
      /* the subtree read once (an InitPlan), not per row */
      "AND (%s::text IS NULL "
      "OR f.category_id = ANY ((SELECT ecom_category_subtree(%s))::bigint[])) "
      "AND f.in_stock = COALESCE(%s::boolean, f.in_stock) "
      "GROUP BY GROUPING SETS ((f.category_id), (f.bucket), (f.in_stock))) g "
      "LEFT JOIN categories c ON c.id = g.category_id "
      "ORDER BY g.n DESC, c.slug",
      ECOM_STMT_READ },
    /* ?facets= with a price bound or q: counted over the matching
     * products (sql/015) */
    { "ecom_products_facets",
      "SELECT ecom_products_facets(%s, %s::bigint, %s::bigint, %s::boolean, %s)",
      ECOM_STMT_READ },
    { "ecom_product_get",
      "SELECT " PRODUCT_COLS " FROM products p "
      "LEFT JOIN categories c ON c.id = p.category_id "
      "WHERE p.id = %s::bigint AND (p.active OR %s::boolean)", ECOM_STMT_READ },
    { "ecom_category_id",
      "SELECT id FROM categories WHERE slug = %s", ECOM_STMT_READ },
    { "ecom_product_insert",
      "INSERT INTO products (name, description, price, currency, stock, "
      "active, sku, category_id, price_floor, price_ceiling) "
      "VALUES (%s, %s, %s::bigint, %s, %s::int, %s::boolean, %s, %s::bigint, "
      "%s::bigint, %s::bigint) ON CONFLICT (sku) DO NOTHING RETURNING id", 0 },
    /* PATCH: a NULL argument keeps the column; sku and category have an
     * explicit "set" flag because null is a value they can take. Stock is
     * either set, only if it still is what the client read (expected), or
     * adjusted relative to whatever it is when the row is locked, never
     * below 0 nor past an int. The bounds (issue 10) have "set" flags
     * too; the staff user's id goes to sql/024's price history trigger
     * (ecom.price_actor, this statement's transaction only). */
    { "ecom_product_update",
      "UPDATE products SET name = COALESCE(%s, name), "
      "description = COALESCE(%s, description), "
      "price = COALESCE(%s::bigint, price), "
      "currency = COALESCE(%s, currency), "
      "stock = COALESCE(%s::int, (stock::bigint + %s::bigint)::int), "
      "active = COALESCE(%s::boolean, active), "
      "sku = CASE WHEN %s::boolean THEN %s ELSE sku END, "
      "category_id = CASE WHEN %s::boolean THEN %s::bigint ELSE category_id END, "
      "price_floor = CASE WHEN %s::boolean THEN %s::bigint ELSE price_floor END, "
      "price_ceiling = CASE WHEN %s::boolean THEN %s::bigint "
      "ELSE price_ceiling END, "
      "updated_at = now() "
      "FROM (SELECT set_config('ecom.price_actor', %s, true)) AS actor "
      "WHERE id = %s::bigint "
      "AND (%s::int IS NULL OR stock = %s::int) "
      "AND stock::bigint + %s::bigint BETWEEN 0 AND 2147483647 "
      "RETURNING id", 0 },
    { "ecom_product_stock",
      "SELECT stock FROM products WHERE id = %s::bigint", ECOM_STMT_READ },
    { "ecom_sku_taken",
      "SELECT 1 FROM products WHERE sku = %s AND id <> %s::bigint", ECOM_STMT_READ },
    { NULL, NULL, 0 }
};

static const ecom_col product_cols[] = {
    [P_ID] = { "id", EC_INT }, [P_SKU] = { "sku", EC_STR_NULL },
    [P_NAME] = { "name", EC_STR }, [P_DESCRIPTION] = { "description", EC_STR },
    [P_PRICE] = { "price", EC_INT }, [P_CURRENCY] = { "currency", EC_STR },
    [P_STOCK] = { "stock", EC_INT }, [P_ACTIVE] = { "active", EC_BOOL },
    [P_CATEGORY] = { "category", EC_STR_NULL },
    [P_CREATED_AT] = { "created_at", EC_TIME },
    [P_UPDATED_AT] = { "updated_at", EC_TIME },
    [P_RATING] = { "rating", EC_RATING },
    [P_LIST_PRICE] = { "list_price", EC_INT },
    [P_PRICE_ENDS] = { "price_ends_at", EC_TIME }, [P_NCOLS] = { NULL, 0 }
};
/* single-column statements: ecom_category_id, ecom_product_insert,
 * ecom_product_update, ecom_product_stock, ecom_sku_taken */
enum { ONE_COL };

/* Every query parameter the list reads, and so all that its cache key is
 * made of: a parameter the list starts to read must be added here. */
static const char *const list_params[] = {
    "sort", "cursor", "limit", "min_price", "max_price", "in_stock", "q",
    "category", "facets", NULL
};

static int bad_arg(ecom_req *q, const char *name, const char *why)
{
    return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                        apr_psprintf(q->r->pool, "Query parameter %s %s.",
                                     name, why));
}

/* An optional non-negative integer query argument, as a string or NULL. */
static int money_arg(ecom_req *q, const char *name, const char **out)
{
    const char *v = apr_table_get(q->args, name);
    long long n;

    *out = NULL;
    if (v) {
        if (ecom_parse_ll(v, 0, 1000000000000000LL, &n) != 0) {
            return bad_arg(q, name, "must be a non-negative integer");
        }
        *out = ECOM_LL(q, n);
    }
    return 0;
}

/* The facets ?facets= asks for, a comma-separated subset of
 * category, price, in_stock, as bits (FACET_*) in *want. Returns 0 or the
 * status of the 400 set. */
enum { FACET_CATEGORY = 1, FACET_PRICE = 2, FACET_IN_STOCK = 4 };
static const char *const facet_names[] = { "category", "price", "in_stock" };

static int facets_arg(ecom_req *q, unsigned *want)
{
    const char *v = apr_table_get(q->args, "facets");
    char *list, *tok, *last;

    *want = 0;
    if (!v) {
        return 0;
    }
    list = apr_pstrdup(q->r->pool, v);
    for (tok = apr_strtok(list, ",", &last); tok;
         tok = apr_strtok(NULL, ",", &last)) {
        unsigned i;

        for (i = 0; i < sizeof(facet_names) / sizeof(facet_names[0]); i++) {
            if (!strcmp(tok, facet_names[i])) {
                break;
            }
        }
        if (i == sizeof(facet_names) / sizeof(facet_names[0])) {
            return bad_arg(q, "facets", "must list some of category, price, "
                           "in_stock, separated by commas");
        }
        *want |= 1u << i;
    }
    if (!*want) {
        return bad_arg(q, "facets", "must list some of category, price, "
                       "in_stock, separated by commas");
    }
    return 0;
}

/* ecom_products_facet_sums' columns: a category's row has category_id,
 * slug and name, a price bucket's row bucket, a stock state's in_stock */
enum { FS_CATEGORY, FS_SLUG, FS_NAME, FS_BUCKET, FS_IN_STOCK, FS_N };

/* sql/015's price buckets, in minor units (the last has no max) */
static const long long bucket_min[] = { 0, 500, 1000, 2500, 5000, 10000,
                                        25000, 50000 };
#define NBUCKETS (sizeof(bucket_min) / sizeof(bucket_min[0]))

/* The facets of a list filtered by category and in_stock only (f[0] and
 * f[3]), built from the sums of product_facet_counts, in the shape sql/015's
 * ecom_products_facets gives. NULL after an error (*e set). */
static json_t *facet_sums(ecom_req *q, const char *const f[5], ecom_err *e)
{
    const char *args[3] = { f[0], f[0], f[3] };
    long long counts[NBUCKETS] = { 0 }, stock[2] = { 0, 0 };
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    json_t *all, *cats, *prices;

    if ((*e = ecom_db_select(q, "ecom_products_facet_sums", &res, 3, args))) {
        return NULL;
    }
    all = ecom_jobject(q);
    cats = json_array();
    /* rows come by count, highest first, then slug: the category order */
    while (ecom_db_next(q, res, &row)) {
        long long n = ecom_db_ll(q, row, FS_N);

        if (ecom_db_get(q, row, FS_SLUG)) {
            json_array_append_new(cats, json_pack(
                "{s:s, s:s, s:I}", "slug", ecom_db_get(q, row, FS_SLUG),
                "name", ecom_db_get(q, row, FS_NAME), "count", (json_int_t)n));
        }
        else if (ecom_db_get(q, row, FS_BUCKET)) {
            long long b = ecom_db_ll(q, row, FS_BUCKET);

            if (b >= 0 && b < (long long)NBUCKETS) {
                counts[b] = n;
            }
        }
        else if (ecom_db_get(q, row, FS_IN_STOCK)) {
            stock[ecom_db_bool(q, row, FS_IN_STOCK) ? 1 : 0] = n;
        }
    }
    prices = json_array();
    for (apr_size_t i = 0; i < NBUCKETS; i++) {
        json_array_append_new(prices, json_pack(
            "{s:I, s:o, s:I}", "min", (json_int_t)bucket_min[i], "max",
            i + 1 < NBUCKETS ? json_integer(bucket_min[i + 1]) : json_null(),
            "count", (json_int_t)counts[i]));
    }
    json_object_set_new(all, "category", cats);
    json_object_set_new(all, "price", prices);
    json_object_set_new(all, "in_stock", json_pack(
        "{s:I, s:I}", "true", (json_int_t)stock[1], "false", (json_int_t)stock[0]));
    return all;
}

/* The facets asked for, of the list with these filters (category,
 * min_price, max_price, in_stock, q), or NULL after an error answer (*e
 * set). */
static json_t *facets_of(ecom_req *q, unsigned want, const char *f[5],
                         ecom_err *e)
{
    json_t *all, *out;

    if (!f[1] && !f[2] && !f[4]) {
        all = facet_sums(q, f, e);
        if (!all) {
            return NULL;
        }
    }
    else {
        apr_dbd_results_t *res;
        apr_dbd_row_t *row;
        const char *text;

        if ((*e = ecom_db_select(q, "ecom_products_facets", &res, 5, f))) {
            return NULL;
        }
        row = ecom_db_row(q, res);
        text = row ? ecom_db_get(q, row, ONE_COL) : NULL;
        all = text ? ecom_jown(q, json_loads(text, 0, NULL)) : NULL;
    }
    out = ecom_jobject(q);
    for (unsigned i = 0; all && i < sizeof(facet_names) / sizeof(facet_names[0]); i++) {
        if (want & (1u << i)) {
            json_object_set(out, facet_names[i],
                            json_object_get(all, facet_names[i]));
        }
    }
    return out;
}

static int ecom_products_list(ecom_req *q)
{
    const char *sort = apr_table_get(q->args, "sort");
    const char *cursor = apr_table_get(q->args, "cursor");
    const char *instock = apr_table_get(q->args, "in_stock");
    const char *text = apr_table_get(q->args, "q");
    const char *cat = apr_table_get(q->args, "category");
    const char *minp, *maxp, *args[4], *key1 = NULL, *key2 = NULL;
    char tag, ctag;
    long long k1 = 0, k2 = 0;
    int limit, rv, nargs = 0, two_keys;
    unsigned want_facets;
    json_t *facets = NULL;
    const char *ckey = ecom_cache_key(q, ECOM_CACHE_CATALOG, "products",
                                      list_params);
    apr_dbd_results_t *res;
    ecom_err e;

    if (ecom_cache_serve(q, ckey)) {
        return HTTP_OK;
    }
    if ((rv = ecom_page_args(q, &limit))) {
        return rv;
    }
    if (text && !*text) {
        text = NULL;
    }
    if (!sort) {
        /* with q, the best matches first */
        tag = text ? 's' : 'i';
    }
    else if (!strcmp(sort, "id")) {
        tag = 'i';
    }
    else if (!strcmp(sort, "relevance")) {
        if (!text) {
            return bad_arg(q, "sort", "relevance needs a search text (q)");
        }
        tag = 's';
    }
    else if (!strcmp(sort, "newest")) {
        tag = 'n';
    }
    else if (!strcmp(sort, "price")) {
        tag = 'p';
    }
    else if (!strcmp(sort, "-price")) {
        tag = 'P';
    }
    else if (!strcmp(sort, "rating")) {
        tag = 'r';
    }
    else {
        return bad_arg(q, "sort", "must be one of id, price, -price, "
                       "newest, rating, relevance");
    }
    two_keys = (tag == 'p' || tag == 'P' || tag == 'r' || tag == 's');
    /* the cursor's tag: relevance in tiers is 't' (see the top) */
    ctag = tag == 's' ? 't' : tag;
    if (cursor) {
        if (ecom_cursor_decode(cursor, ctag, &k1, &k2) != 0
            || (tag == 'r' && (k1 < -1 || k1 > 500))
            || (tag == 's' && (k1 < 0 || k1 > 1000000))) {
            return bad_arg(q, "cursor", "is not a cursor of this list");
        }
        key1 = ECOM_LL(q, k1);
        key2 = ECOM_LL(q, k2);
    }
    if ((rv = money_arg(q, "min_price", &minp))
        || (rv = money_arg(q, "max_price", &maxp))) {
        return rv;
    }
    if (instock && strcmp(instock, "true") != 0
        && strcmp(instock, "false") != 0) {
        return bad_arg(q, "in_stock", "must be true or false");
    }
    if (text && (ecom_utf8_len(text) < 0 || strlen(text) > 200)) {
        return bad_arg(q, "q", "must be UTF-8 text of at most 200 bytes");
    }
    if (cat && (ecom_utf8_len(cat) < 0 || strlen(cat) > 100)) {
        return bad_arg(q, "category", "is not a category slug");
    }
    if ((rv = facets_arg(q, &want_facets))) {
        return rv;
    }
    if (want_facets) {
        const char *f[5] = { cat, minp, maxp, instock, text };

        if (!(facets = facets_of(q, want_facets, f, &e))) {
            return ecom_fail(q, e);
        }
    }
    if (cat && !minp && !maxp && !text && !instock
        && (tag == 'i' || tag == 'n')) {
        const char *cargs[4] = { cat, key1, apr_itoa(q->r->pool, limit + 1),
                                 apr_itoa(q->r->pool, limit + 1) };

        e = ecom_db_select(q, tag == 'i' ? "ecom_products_ci"
                           : "ecom_products_cn", &res, 4, cargs);
    }
    else if (cat && (minp || maxp) && !text && !instock
             && (tag == 'i' || tag == 'n')) {
        /* a category and a price range (sql/033) */
        const char *kargs[5] = { cat, minp, maxp, key2,
                                 apr_itoa(q->r->pool, limit + 1) };

        e = ecom_db_select(q, tag == 'i' ? "ecom_products_ki"
                           : "ecom_products_kn", &res, 5, kargs);
    }
    else if ((minp || maxp) && !cat && !text && !instock && tag != 'r') {
        /* a price range alone (sql/033) */
        const char *pargs[4] = { minp, maxp, key2,
                                 apr_itoa(q->r->pool, limit + 1) };

        if (two_keys) {
            /* in price order the walk starts at the cursor, or at the
             * range's near end when the cursor is before it (or absent):
             * (lo - 1, max id) for price, (hi + 1, max id) for -price */
            const char *near = tag == 'p' ? minp : maxp;
            long long end = near ? apr_atoi64(near) : 0;

            pargs[0] = tag == 'p' ? maxp : minp;
            pargs[1] = key1;
            if (near && (!cursor || (tag == 'p' ? k1 < end : k1 > end))) {
                pargs[1] = ECOM_LL(q, tag == 'p' ? end - 1 : end + 1);
                pargs[2] = ECOM_LL(q, LLONG_MAX);
            }
            e = ecom_db_select(q, tag == 'p' ? "ecom_products_bp"
                               : "ecom_products_bd", &res, 4, pargs);
        }
        else {
            e = ecom_db_select(q, tag == 'i' ? "ecom_products_bi"
                               : "ecom_products_bn", &res, 4, pargs);
        }
    }
    else if (text && tag == 's' && !cat && !minp && !maxp) {
        /* q alone by relevance: sql/034, no planning per request */
        const char *qargs[5] = { instock, text, key1, key2,
                                 apr_itoa(q->r->pool, limit + 1) };

        e = ecom_db_select(q, "ecom_products_q", &res, 5, qargs);
    }
    else if (cat || minp || maxp || text) {
        const char *fargs[9] = {
            cat, minp, maxp, instock, text,
            /* the function's sort tags: 'P' is spelled 'd' */
            tag == 'P' ? "d" : apr_pstrndup(q->r->pool, &tag, 1),
            key1, key2, apr_itoa(q->r->pool, limit + 1)
        };
        e = ecom_db_select(q, "ecom_products_page", &res, 9, fargs);
    }
    else {
        /* no filter, or in_stock alone */
        int sold_out = instock && !strcmp(instock, "false")
                       && (tag == 'i' || tag == 'n');

        if (instock && !sold_out) {
            args[nargs++] = instock;
        }
        args[nargs++] = two_keys ? key1 : key2;
        if (two_keys) {
            args[nargs++] = key2;
        }
        args[nargs++] = apr_itoa(q->r->pool, limit + 1);
        /* labels are case-folded by PostgreSQL: 'P' is spelled 'd' there */
        e = ecom_db_select(q, apr_psprintf(q->r->pool, "ecom_products_%s%c",
                                           sold_out ? "o" : instock ? "s" : "",
                                           tag == 'P' ? 'd' : tag),
                           &res, nargs, args);
    }
    if (e) {
        return ecom_fail(q, e);
    }
    /* price orderings page on (price, id), rating on (rating_key, id),
     * relevance on (tier or similarity, id), the others on id */
    ecom_page_with(q, res, limit, product_cols, ctag,
                   tag == 'r' ? P_RATING_KEY : tag == 's' ? P_RELEVANCE
                   : two_keys ? P_LIST_PRICE : P_ID, P_ID, "facets", facets);
    ecom_cache_store(q, ckey);
    return HTTP_OK;
}

/* The search terms' document frequencies counted again (sql/034), in the
 * refresh's transaction, without the connection's statement timeout (about
 * 3 s at a million products, more under load: the DBDParams timeout of the
 * bench cancelled it). A failure is logged and the next period tries
 * again; stale counts only choose a slower reading of a q page, never
 * another page. */
apr_status_t ecom_search_stats_run(server_rec *s, apr_pool_t *p)
{
    const char *out[1] = { NULL };

    if (ecom_db_job_row_untimed(s, p, "ecom_search_stats_run", 0, NULL, 1,
                                out) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ECOM3403: counting "
                     "the search terms failed");
        return APR_EGENERAL;
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "ECOM3401: search terms "
                 "counted: %s lexemes", out[0] ? out[0] : "0");
    return APR_SUCCESS;
}

/* Strong ETag from the representation's bytes. */
static const char *etag_of(ecom_req *q, const char *body, apr_size_t len)
{
    char hex[ECOM_SHA256_HEX];

    ecom_sha256_hex(body, len, hex);
    hex[32] = '\0';
    return apr_pstrcat(q->r->pool, "\"", hex, "\"", NULL);
}

/* If-Match, If-None-Match (RFC 9110 section 13) against the ETag the
 * answer carries, by httpd's own rules (ap_meets_conditions: lists, "*",
 * strong comparison for If-Match, weak for If-None-Match on GET and HEAD).
 * The representation has no Last-Modified, so the date conditions are not
 * evaluated: ap_meets_conditions would compare them with r->mtime, which
 * is 0 here and so taken as "now", and an If-Modified-Since would then
 * misfire (a 304 for a date in the current second, or no 304 when the
 * ETag matched). They are hidden from it, and only from it. */
static int preconditions(ecom_req *q)
{
    request_rec *r = q->r;
    apr_table_t *in = r->headers_in;
    int rv;

    if (!apr_table_get(in, "If-Match") && !apr_table_get(in, "If-None-Match")) {
        /* the common case: nothing for the ETag to decide */
        return q->status;
    }
    if (apr_table_get(in, "If-Modified-Since")
        || apr_table_get(in, "If-Unmodified-Since")) {
        r->headers_in = apr_table_copy(r->pool, in);
        apr_table_unset(r->headers_in, "If-Modified-Since");
        apr_table_unset(r->headers_in, "If-Unmodified-Since");
    }
    rv = ap_meets_conditions(r);
    r->headers_in = in;
    if (rv == HTTP_NOT_MODIFIED) {
        return ecom_no_content(q, HTTP_NOT_MODIFIED);
    }
    if (rv == HTTP_PRECONDITION_FAILED) {
        /* the ETag describes the product, not this problem document */
        apr_table_unset(r->headers_out, "ETag");
        return ecom_problem(q, HTTP_PRECONDITION_FAILED, "precondition-failed",
                            "The product's current ETag matches none of "
                            "If-Match.");
    }
    return q->status;
}

static int load_product(ecom_req *q, long long id, int status)
{
    const char *args[2], *etag;
    json_t *obj;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    int rv;
    ecom_err e;

    args[0] = ECOM_LL(q, id);
    args[1] = q->is_staff ? "true" : "false";
    if ((e = ecom_db_select(q, "ecom_product_get", &res, 2, args))) {
        return ecom_fail(q, e);
    }
    if (!(row = ecom_db_row(q, res))) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such product.");
    }
    obj = ecom_row_json(q, row, product_cols, 0);
    /* staff also see the bounds of demand-based pricing (issue 10) */
    if (q->is_staff && (rv = ecom_dynprice_bounds_json(q, id, obj))) {
        return rv;
    }
    rv = ecom_json(q, status, obj);
    etag = etag_of(q, q->out, q->out_len);
    apr_table_setn(q->r->headers_out, "ETag", etag);
    return rv;
}

static int ecom_product_get(ecom_req *q)
{
    int rv = load_product(q, q->id[0], HTTP_OK);

    /* preconditions only on reads: after a write (which answers with
     * load_product too) they would judge the new state */
    return rv == HTTP_OK ? preconditions(q) : rv;
}

typedef struct {
    const char *name, *description, *price, *currency, *stock, *active;
    const char *sku, *category_id;
    const char *expected_stock, *stock_adjustment;   /* PATCH only */
    int sku_set, category_set;
    ecom_price_bounds bounds;   /* issue 10: price_floor, price_ceiling */
} product_fields;

/* Validates the writable fields of a product body into f (strings for the
 * statement). Returns 0 or the status of the 422 it set. */
static int read_fields(ecom_req *q, product_fields *f, int creating)
{
    json_t *errs = ecom_jarray(q);
    json_t *b = q->body, *v;
    long long n;
    int flag, rv;
    ecom_err e;

    if (ecom_get_str(b, "name", 1, 300, &f->name, errs) == 0 && creating) {
        ecom_field_error(errs, "name", "is required");
    }
    ecom_get_str(b, "description", 0, 10000, &f->description, errs);
    if ((rv = ecom_get_int(b, "price", 0, 1000000000000LL, &n, errs)) == 1) {
        f->price = ECOM_LL(q, n);
    }
    else if (rv == 0 && creating) {
        ecom_field_error(errs, "price", "is required");
    }
    if (ecom_get_str(b, "currency", 3, 3, &f->currency, errs) == 1
        && !ecom_currency_valid(f->currency)) {
        ecom_field_error(errs, "currency", "must be an ISO 4217 code such as EUR");
    }
    if (ecom_get_int(b, "stock", 0, 2147483647LL, &n, errs) == 1) {
        f->stock = ECOM_LL(q, n);
    }
    if (!creating) {
        /* an absolute stock is conditional on the value the client read,
         * so a checkout that ran in between is never overwritten; or the
         * client sends a relative adjustment */
        if (ecom_get_int(b, "expected_stock", 0, 2147483647LL, &n, errs) == 1) {
            f->expected_stock = ECOM_LL(q, n);
        }
        if (ecom_get_int(b, "stock_adjustment", -2147483647LL, 2147483647LL,
                         &n, errs) == 1) {
            f->stock_adjustment = ECOM_LL(q, n);
        }
        if (f->stock && f->stock_adjustment) {
            ecom_field_error(errs, "stock_adjustment",
                             "cannot be sent together with stock");
        }
        else if (f->stock && !f->expected_stock
                 && !json_object_get(b, "expected_stock")) {
            ecom_field_error(errs, "stock", "needs expected_stock (the stock "
                             "you read), or send stock_adjustment instead");
        }
        else if (f->expected_stock && !f->stock) {
            ecom_field_error(errs, "expected_stock", "is only used with stock");
        }
    }
    if (ecom_get_bool(b, "active", &flag, errs) == 1) {
        f->active = flag ? "true" : "false";
    }
    if ((v = json_object_get(b, "sku"))) {
        f->sku_set = 1;
        if (!json_is_null(v)) {
            ecom_get_str(b, "sku", 1, 64, &f->sku, errs);
        }
    }
    if ((v = json_object_get(b, "category"))) {
        f->category_set = 1;
        if (!json_is_null(v)) {
            const char *slug = NULL;
            if (ecom_get_str(b, "category", 1, 100, &slug, errs) == 1) {
                const char *args[1] = { slug };
                apr_dbd_results_t *res;
                apr_dbd_row_t *row;
                if ((e = ecom_db_select(q, "ecom_category_id", &res, 1, args))) {
                    return ecom_fail(q, e);
                }
                if ((row = ecom_db_row(q, res))) {
                    f->category_id = apr_pstrdup(q->r->pool,
                                                 ecom_db_get(q, row, ONE_COL));
                }
                else {
                    ecom_field_error(errs, "category", "is not a known category");
                }
            }
        }
    }
    if ((rv = ecom_dynprice_check(q, creating ? 0 : q->id[0], f->price,
                                  &f->bounds, errs))) {
        return rv;
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    return 0;
}

static int ecom_product_create(ecom_req *q)
{
    product_fields f = { 0 };
    const char *args[10];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    long long id;
    int rv;
    ecom_err e;

    if ((rv = read_fields(q, &f, 1))) {
        return rv;
    }
    args[0] = f.name;
    args[1] = f.description ? f.description : "";
    args[2] = f.price;
    args[3] = f.currency ? f.currency : q->dc->currency;
    args[4] = f.stock ? f.stock : "0";
    args[5] = f.active ? f.active : "true";
    args[6] = f.sku;
    args[7] = f.category_id;
    args[8] = f.bounds.floor;
    args[9] = f.bounds.ceiling;
    if ((e = ecom_db_select(q, "ecom_product_insert", &res, 10, args))) {
        return ecom_fail(q, e);
    }
    if (!(row = ecom_db_row(q, res))) {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            "Another product already has this sku.");
    }
    id = ecom_db_ll(q, row, ONE_COL);
    apr_table_setn(q->r->headers_out, "Location",
                   ecom_url(q, "/products/%" APR_INT64_T_FMT "/", (apr_int64_t)id));
    return load_product(q, id, HTTP_CREATED);
}

/* Why the conditional UPDATE changed nothing: 404, or 409 with the stock
 * as it is now. */
static int update_refused(ecom_req *q, const product_fields *f)
{
    const char *args[1] = { ECOM_LL(q, q->id[0]) };
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    long long stock;
    ecom_err e;

    if ((e = ecom_db_select(q, "ecom_product_stock", &res, 1, args))) {
        return ecom_fail(q, e);
    }
    if (!(row = ecom_db_row(q, res))) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such product.");
    }
    stock = ecom_db_ll(q, row, ONE_COL);
    if (f->expected_stock) {
        return ecom_problem_with(q, HTTP_CONFLICT, "stock-changed",
                                 "The stock is no longer the expected_stock "
                                 "you sent (a sale or another change came "
                                 "first); nothing was changed.",
                                 ecom_jown(q, json_pack("{s:I}", "stock",
                                                    (json_int_t)stock)));
    }
    return ecom_problem_with(q, HTTP_CONFLICT, "out-of-stock",
                             "The adjustment would take the stock below 0 "
                             "(or past 2147483647); nothing was changed.",
                             ecom_jown(q, json_pack("{s:I}", "stock",
                                                    (json_int_t)stock)));
}

static int ecom_product_update(ecom_req *q)
{
    product_fields f = { 0 };
    const char *args[20];
    apr_dbd_results_t *res;
    int rv;
    ecom_err e;

    if ((rv = read_fields(q, &f, 0))) {
        return rv;
    }
    if (f.sku) {
        const char *a[2] = { f.sku, ECOM_LL(q, q->id[0]) };
        if ((e = ecom_db_select(q, "ecom_sku_taken", &res, 2, a))) {
            return ecom_fail(q, e);
        }
        if (ecom_db_row(q, res)) {
            return ecom_problem(q, HTTP_CONFLICT, "conflict",
                                "Another product already has this sku.");
        }
    }
    args[0] = f.name;
    args[1] = f.description;
    args[2] = f.price;
    args[3] = f.currency;
    args[4] = f.stock;
    args[5] = f.stock_adjustment ? f.stock_adjustment : "0";
    args[6] = f.active;
    args[7] = f.sku_set ? "true" : "false";
    args[8] = f.sku;
    args[9] = f.category_set ? "true" : "false";
    args[10] = f.category_id;
    args[11] = f.bounds.floor_set ? "true" : "false";
    args[12] = f.bounds.floor;
    args[13] = f.bounds.ceiling_set ? "true" : "false";
    args[14] = f.bounds.ceiling;
    args[15] = ECOM_LL(q, q->user_id);
    args[16] = ECOM_LL(q, q->id[0]);
    args[17] = args[18] = f.expected_stock;
    args[19] = args[5];
    if ((e = ecom_db_select(q, "ecom_product_update", &res, 20, args))) {
        return ecom_fail(q, e);
    }
    if (!ecom_db_row(q, res)) {
        return update_refused(q, &f);
    }
    return load_product(q, q->id[0], HTTP_OK);
}

static const ecom_route product_routes[] = {
    { M_GET, "products", ecom_products_list, ECOM_AUTH_NONE, 0, 0,
      "products.list" },
    { M_POST, "products", ecom_product_create, ECOM_AUTH_STAFF,
      ECOM_BODY | ECOM_IDEMPOTENT, ECOM_CACHE_CATALOG | ECOM_CACHE_CATEGORIES,
      "products.create" },
    { M_GET, "products/{id}", ecom_product_get, ECOM_AUTH_NONE, 0, 0,
      "products.get" },
    { M_PATCH, "products/{id}", ecom_product_update, ECOM_AUTH_STAFF,
      ECOM_BODY, ECOM_CACHE_CATALOG | ECOM_CACHE_CATEGORIES,
      "products.update" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_products_resource = {
    "products", product_sql, product_routes, NULL
};

/* the product summary, for other resources (ecom_products.h) */
const ecom_col *const ecom_product_summary = product_cols;
