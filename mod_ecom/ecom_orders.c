/*
 * ecom_orders.c: checkout and order reads.
 *
 * Checkout (POST /orders/) runs in one transaction:
 *   1. lock the caller's cart lines and their products, in ascending product
 *      id order, so two checkouts sharing products cannot deadlock. Products
 *      are locked FOR NO KEY UPDATE, which does not conflict with the FOR
 *      KEY SHARE that other users' cart and order-line inserts take on them;
 *   2. check every line against stock and activity (409, nothing changed),
 *      and the client's expected_total against the current total (409),
 *      computed with checked arithmetic;
 *   3. from here on every statement works on the locked set only, passed
 *      as arrays of cart line ids, product ids and quantities, never on a
 *      fresh read of the cart (READ COMMITTED gives each statement a new
 *      snapshot, so a line added meanwhile would otherwise slip in or out):
 *      write the order, its lines with price snapshots of the locked rows,
 *      and the first order event;
 *   4. decrement stock with one conditional UPDATE (stock >= quantity) and
 *      check it touched every line, so even a path that skipped the lock
 *      could never oversell (the CHECK (stock >= 0) is the last guard);
 *   5. delete exactly the cart lines that were ordered: a line added while
 *      checkout ran stays in the cart.
 * Another user's order is never visible: reads are scoped by user_id
 * unless the caller is staff, so a foreign id is a 404.
 */
#include "ecom.h"
#include "ecom_money.h"
#include "ecom_util.h"

#define ORDER_COLS \
    "o.id, o.status, o.currency, o.subtotal, o.discount, o.total, " \
    "(SELECT COALESCE(sum(quantity), 0) FROM order_lines WHERE order_id = o.id), " \
    ECOM_TS("o.created_at") ", " ECOM_TS("o.updated_at")

/* The locked set travels as three parallel arrays: cart line ids,
 * product ids and quantities ({1,2,3} text, bound as parameters). */
#define LOCKED_SET "unnest(%s::bigint[], %s::int[]) AS l(pid, qty)"

const ecom_stmt ecom_order_sql[] = {
    { "ecom_checkout_lock",
      "SELECT p.id, p.name, p.stock, p.active, p.price, p.currency, "
      "ci.quantity, ci.id FROM cart_items ci "
      "JOIN products p ON p.id = ci.product_id "
      "WHERE ci.user_id = %s::bigint ORDER BY p.id "
      "FOR NO KEY UPDATE OF p, ci", 0 },
    { "ecom_order_insert",
      "INSERT INTO orders (user_id, currency, subtotal, discount, total) "
      "VALUES (%s::bigint, %s, %s::bigint, 0, %s::bigint) RETURNING id", 0 },
    { "ecom_order_lines_insert",
      "INSERT INTO order_lines (order_id, product_id, sku, name, unit_price, "
      "quantity, line_total) SELECT %s::bigint, p.id, p.sku, p.name, p.price, "
      "l.qty, p.price * l.qty FROM " LOCKED_SET " "
      "JOIN products p ON p.id = l.pid ORDER BY p.id", 0 },
    { "ecom_stock_take",
      "UPDATE products p SET stock = p.stock - l.qty, updated_at = now() "
      "FROM " LOCKED_SET " WHERE p.id = l.pid AND p.stock >= l.qty", 0 },
    { "ecom_order_event",
      "INSERT INTO order_events (order_id, actor_id, from_status, to_status) "
      "VALUES (%s::bigint, %s::bigint, %s, %s)", 0 },
    { "ecom_cart_clear",
      "DELETE FROM cart_items WHERE user_id = %s::bigint "
      "AND id = ANY (%s::bigint[])", 0 },
    { "ecom_order_get",
      "SELECT " ORDER_COLS " FROM orders o WHERE o.id = %s::bigint "
      "AND (o.user_id = %s::bigint OR %s::boolean)", ECOM_STMT_READ },
    { "ecom_order_lines",
      "SELECT id, product_id, sku, name, unit_price, quantity, line_total "
      "FROM order_lines WHERE order_id = %s::bigint ORDER BY id",
      ECOM_STMT_READ },
    { "ecom_order_events",
      "SELECT from_status, to_status, actor_id, " ECOM_TS("created_at")
      " FROM order_events WHERE order_id = %s::bigint ORDER BY id",
      ECOM_STMT_READ },
    /* staff (the boolean) see every user's orders */
    { "ecom_orders_list",
      "SELECT " ORDER_COLS " FROM orders o "
      "WHERE (o.user_id = %s::bigint OR %s::boolean) "
      "AND (%s::text IS NULL OR o.status = %s) "
      "AND (%s::bigint IS NULL OR o.id < %s::bigint) "
      "ORDER BY o.id DESC LIMIT %s::int", ECOM_STMT_READ },
    { NULL, NULL, 0 }
};

static const ecom_col order_cols[] = {
    { "id", EC_INT }, { "status", EC_STR }, { "currency", EC_STR },
    { "subtotal", EC_INT }, { "discount", EC_INT }, { "total", EC_INT },
    { "item_count", EC_INT }, { "created_at", EC_TIME },
    { "updated_at", EC_TIME }, { NULL, 0 }
};
static const ecom_col line_cols[] = {
    { "id", EC_INT }, { "product_id", EC_INT_NULL }, { "sku", EC_STR_NULL },
    { "name", EC_STR }, { "unit_price", EC_INT }, { "quantity", EC_INT },
    { "line_total", EC_INT }, { NULL, 0 }
};
static const ecom_col event_cols[] = {
    { "from", EC_STR_NULL }, { "to", EC_STR }, { "actor_id", EC_INT_NULL },
    { "at", EC_TIME }, { NULL, 0 }
};

static const char *const statuses[] = {
    "pending", "paid", "shipped", "delivered", "cancelled", "refunded", NULL
};

/* Appends every row of label(id) to a new array of objects. */
static int rows_array(ecom_req *q, const char *label, long long id,
                      const ecom_col *cols, json_t **out)
{
    const char *args[1] = { ECOM_LL(q, id) };
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    int rv;

    if ((rv = ecom_db_select(q, label, &res, 1, args))) {
        return rv;
    }
    *out = ecom_json_pool(q, json_array());
    row = NULL;
    while (ecom_db_next(q, res, &row)) {
        json_array_append_new(*out, ecom_row_json(q, row, cols, 0));
    }
    return 0;
}

static int send_order(ecom_req *q, long long id, int status)
{
    const char *args[3] = { ECOM_LL(q, id), ECOM_LL(q, q->user_id),
                            q->is_staff ? "true" : "false" };
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    json_t *o, *lines, *events;
    int rv;

    if ((rv = ecom_db_select(q, "ecom_order_get", &res, 3, args))) {
        return rv;
    }
    if (!(row = ecom_db_row(q, res))) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such order.");
    }
    o = ecom_json_pool(q, ecom_row_json(q, row, order_cols, 0));
    if ((rv = rows_array(q, "ecom_order_lines", id, line_cols, &lines))
        || (rv = rows_array(q, "ecom_order_events", id, event_cols, &events))) {
        return rv;
    }
    json_object_set(o, "lines", lines);
    json_object_set(o, "events", events);
    json_object_set_new(o, "payments", json_array());
    json_object_set_new(o, "shipments", json_array());
    return ecom_json(q, status, json_incref(o));
}

int ecom_order_get(ecom_req *q)
{
    return send_order(q, q->id[0], HTTP_OK);
}

int ecom_orders_list(ecom_req *q)
{
    const char *status = apr_table_get(q->args, "status");
    const char *cursor = apr_table_get(q->args, "cursor");
    const char *args[7];
    long long k1 = 0, k2 = 0;
    apr_dbd_results_t *res;
    int limit, rv, i;

    if ((rv = ecom_page_args(q, &limit))) {
        return rv;
    }
    if (status) {
        for (i = 0; statuses[i] && strcmp(statuses[i], status) != 0; i++) {
        }
        if (!statuses[i]) {
            return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                                "status must be one of pending, paid, "
                                "shipped, delivered, cancelled, refunded.");
        }
    }
    if (cursor && ecom_cursor_decode(cursor, 'o', &k1, &k2) != 0) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "Query parameter cursor is not a cursor of this "
                            "list.");
    }
    args[0] = ECOM_LL(q, q->user_id);
    args[1] = q->is_staff ? "true" : "false";
    args[2] = args[3] = status;
    args[4] = args[5] = cursor ? ECOM_LL(q, k1) : NULL;
    args[6] = apr_itoa(q->r->pool, limit + 1);
    if ((rv = ecom_db_select(q, "ecom_orders_list", &res, 7, args))) {
        return rv;
    }
    return ecom_db_page(q, res, limit, order_cols, 'o', 0, -1);
}

typedef struct {
    int has_expected;
    long long expected;
    long long order_id;
} checkout_ctx;

/* Appends v to a list of integers (as strings) bound for array_text(). */
static void array_add(ecom_req *q, apr_array_header_t *a, long long v)
{
    APR_ARRAY_PUSH(a, const char *) = ECOM_LL(q, v);
}

/* The PostgreSQL array literal of a, e.g. {1,2,3}, for a bigint[] or int[]
 * parameter. */
static const char *array_text(ecom_req *q, const apr_array_header_t *a)
{
    return apr_pstrcat(q->r->pool, "{", apr_array_pstrcat(q->r->pool, a, ','),
                       "}", NULL);
}

static int checkout(ecom_req *q, void *data)
{
    checkout_ctx *c = data;
    const char *uid = ECOM_LL(q, q->user_id), *currency = NULL, *args[4];
    const char *locked_lines, *locked_pids, *locked_qtys;
    apr_array_header_t *line_ids = apr_array_make(q->r->pool, 16,
                                                  sizeof(const char *));
    apr_array_header_t *pids = apr_array_make(q->r->pool, 16,
                                              sizeof(const char *));
    apr_array_header_t *qtys = apr_array_make(q->r->pool, 16,
                                              sizeof(const char *));
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    long long total = 0;
    int rv, lines = 0, n = 0, overflow = 0;
    json_t *short_of = ecom_json_pool(q, json_array());

    args[0] = uid;
    if ((rv = ecom_db_select(q, "ecom_checkout_lock", &res, 1, args))) {
        return rv;
    }
    row = NULL;
    while (ecom_db_next(q, res, &row)) {
        long long qty = ecom_db_ll(q, row, 6), stock = ecom_db_ll(q, row, 2);
        const char *cur = ecom_db_get(q, row, 5);
        int active = ecom_db_get(q, row, 3)[0] == 't';

        if (!active || stock < qty) {
            json_array_append_new(short_of, json_pack(
                "{s:I, s:s, s:I, s:I}", "product_id",
                (json_int_t)ecom_db_ll(q, row, 0), "name",
                ecom_db_get(q, row, 1), "requested", (json_int_t)qty,
                "available", (json_int_t)(active ? stock : 0)));
        }
        if (currency && strcmp(currency, cur) != 0) {
            return ecom_problem(q, HTTP_CONFLICT, "conflict",
                                "The cart mixes currencies.");
        }
        currency = apr_pstrdup(q->r->pool, cur);
        if (ecom_money_add_line(&total, ecom_db_ll(q, row, 4), qty) != 0) {
            overflow = 1;
        }
        array_add(q, line_ids, ecom_db_ll(q, row, 7));
        array_add(q, pids, ecom_db_ll(q, row, 0));
        array_add(q, qtys, qty);
        lines++;
    }
    if (lines == 0) {
        json_t *errs = json_array();
        ecom_field_error(errs, "cart", "is empty");
        return ecom_invalid(q, errs);
    }
    if (json_array_size(short_of)) {
        return ecom_problem_with(q, HTTP_CONFLICT, "out-of-stock",
                                 "Some products do not have enough stock; "
                                 "nothing was ordered.",
                                 json_pack("{s:O}", "products", short_of));
    }
    if (overflow) {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            "The order total would exceed what an amount "
                            "can hold; split the order.");
    }
    if (c->has_expected && c->expected != total) {
        return ecom_problem_with(q, HTTP_CONFLICT, "price-changed",
                                 "Prices changed since the cart was shown; "
                                 "review the new total.",
                                 json_pack("{s:I, s:s}", "total",
                                           (json_int_t)total,
                                           "currency", currency));
    }
    locked_lines = array_text(q, line_ids);
    locked_pids = array_text(q, pids);
    locked_qtys = array_text(q, qtys);
    args[0] = uid;
    args[1] = currency;
    args[2] = args[3] = ECOM_LL(q, total);
    if ((rv = ecom_db_select(q, "ecom_order_insert", &res, 4, args))) {
        return rv;
    }
    row = ecom_db_row(q, res);
    c->order_id = row ? ecom_db_ll(q, row, 0) : 0;
    args[0] = ECOM_LL(q, c->order_id);
    args[1] = locked_pids;
    args[2] = locked_qtys;
    if ((rv = ecom_db_query(q, "ecom_order_lines_insert", &n, 3, args))) {
        return rv;
    }
    if (n != lines) {
        /* cannot happen while the rows are locked */
        return ecom_problem(q, HTTP_CONFLICT, "out-of-stock",
                            "The cart changed during checkout; nothing was "
                            "ordered.");
    }
    args[0] = locked_pids;
    args[1] = locked_qtys;
    if ((rv = ecom_db_query(q, "ecom_stock_take", &n, 2, args))) {
        return rv;
    }
    if (n != lines) {
        /* cannot happen while the rows are locked; refuse rather than
         * oversell if it ever does */
        return ecom_problem(q, HTTP_CONFLICT, "out-of-stock",
                            "Stock changed during checkout; nothing was "
                            "ordered.");
    }
    args[0] = ECOM_LL(q, c->order_id);
    args[1] = uid;
    args[2] = NULL;
    args[3] = "pending";
    if ((rv = ecom_db_query(q, "ecom_order_event", NULL, 4, args))) {
        return rv;
    }
    args[0] = uid;
    args[1] = locked_lines;
    return ecom_db_query(q, "ecom_cart_clear", NULL, 2, args);
}

int ecom_order_create(ecom_req *q)
{
    checkout_ctx c = { 0, 0, 0 };
    int rv;

    if (q->body) {
        json_t *errs = ecom_json_pool(q, json_array());
        rv = ecom_get_int(q->body, "expected_total", 0, 1000000000000000LL,
                          &c.expected, errs);
        if (rv < 0) {
            return ecom_invalid(q, json_incref(errs));
        }
        c.has_expected = rv == 1;
    }
    if ((rv = ecom_db_tx(q, checkout, &c))) {
        return rv;
    }
    ecom_cache_invalidate(q);   /* list pages show stock */
    apr_table_setn(q->r->headers_out, "Location",
                   ecom_url(q, "/orders/%" APR_INT64_T_FMT "/", (apr_int64_t)c.order_id));
    return send_order(q, c.order_id, HTTP_CREATED);
}
