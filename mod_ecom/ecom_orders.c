/*
 * ecom_orders.c: checkout and order reads.
 *
 * Checkout (POST /orders/) runs in one transaction of three statements
 * (BEGIN; ecom_checkout_lock, ecom_order_insert, ecom_order_write; COMMIT),
 * and its answer is built from what they returned (send_new_order):
 *   1. lock the caller's user row (one account's checkouts run one at a
 *      time, so the count of its pending orders is exact: 409
 *      too-many-pending-orders at EcomMaxPendingOrders), then the cart
 *      lines and their products, in ascending product id order, so two
 *      checkouts sharing products cannot deadlock. Products
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
 *      it returns the new stocks: a product whose stock reached 0 changed
 *      its in_stock, the only change of a checkout that invalidates cached
 *      catalog pages (ecom_cache.c; the stock count they show may lag by
 *      up to EcomCacheTTL seconds otherwise);
 *   5. delete exactly the cart lines that were ordered: a line added while
 *      checkout ran stays in the cart.
 * Steps 3 (lines, event) to 5 are one statement (ecom_order_write): a
 * checkout's cost is mostly its round trips, not its rows.
 * Another user's order is never visible: reads are scoped by user_id
 * unless the caller is staff, so a foreign id is a 404.
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_cache.h"
#include "ecom_page.h"
#include "ecom_money.h"
#include "ecom_orders.h"
#include "ecom_util.h"

#define ORDER_COLS \
    "o.id, o.status, o.currency, o.subtotal, o.discount, o.total, " \
    "(SELECT COALESCE(sum(quantity), 0) FROM order_lines WHERE order_id = o.id), " \
    ECOM_TS("o.created_at") ", " ECOM_TS("o.updated_at")

enum { O_ID, O_STATUS, O_CURRENCY, O_SUBTOTAL, O_DISCOUNT, O_TOTAL,
       O_ITEM_COUNT, O_CREATED_AT, O_UPDATED_AT, O_NCOLS };

/* The locked set travels as three parallel arrays: cart line ids,
 * product ids and quantities ({1,2,3} text, bound as parameters). */
#define LOCKED_SET "unnest(%s::bigint[], %s::int[]) AS l(pid, qty)"

/* ecom_checkout_lock */
enum { C_PRODUCT_ID, C_NAME, C_STOCK, C_ACTIVE, C_PRICE, C_CURRENCY,
       C_QUANTITY, C_LINE_ID, C_PENDING };
/* ecom_order_insert */
enum { ONE_COL };
/* ecom_order_write: one row per line (line_cols), then the counts and the
 * order's times on every row */
enum { W_LINE_COLS = 7, W_TAKEN = W_LINE_COLS, W_SOLD_OUT, W_CLEARED,
       W_CREATED_AT, W_UPDATED_AT };

static const ecom_stmt order_sql[] = {
    /* Step 1 and the cap's count in one round trip: the function locks
     * the user's row (one account's checkouts run one at a time), then
     * the cart lines and their products in ascending product id order,
     * found by key, and returns them with the account's count of pending
     * orders on every row, read after the user's lock so two checkouts
     * cannot both pass EcomMaxPendingOrders (sql/008_perf_checkout.sql) */
    { "ecom_checkout_lock",
      "SELECT * FROM ecom_checkout_lock(%s::bigint, %s::int)", 0 },
    { "ecom_order_insert",
      "INSERT INTO orders (user_id, currency, subtotal, discount, total) "
      "VALUES (%s::bigint, %s, %s::bigint, 0, %s::bigint) RETURNING id", 0 },
    /* Steps 3 to 5 in one round trip: the order's lines (price snapshots
     * of the locked rows), the conditional stock decrement (with the new
     * stocks, to count the products it sold out), the first order event,
     * and the ordered cart lines' deletion. The sub-statements share one
     * snapshot, taken after the lock, and touch different rows; the
     * counts let the caller check every line was written and taken. It
     * returns the lines as written and the order's times, from which the
     * answer is built (send_new_order) without reading the order again. */
    { "ecom_order_write",
      "WITH lines AS (INSERT INTO order_lines (order_id, product_id, sku, "
      "name, unit_price, quantity, line_total) SELECT %s::bigint, p.id, "
      "p.sku, p.name, p.price, l.qty, p.price * l.qty FROM " LOCKED_SET " "
      "JOIN products p ON p.id = l.pid ORDER BY p.id RETURNING id, "
      "product_id, sku, name, unit_price, quantity, line_total), "
      "taken AS (UPDATE products p SET stock = p.stock - l.qty, "
      "updated_at = now() FROM " LOCKED_SET " WHERE p.id = l.pid "
      "AND p.stock >= l.qty RETURNING p.stock), "
      "ev AS (INSERT INTO order_events (order_id, actor_id, from_status, "
      "to_status) VALUES (%s::bigint, %s::bigint, NULL, 'pending')), "
      "cleared AS (DELETE FROM cart_items WHERE user_id = %s::bigint "
      "AND id = ANY (%s::bigint[]) RETURNING 1) "
      "SELECT l.*, (SELECT count(*) FROM taken), "
      "(SELECT count(*) FROM taken WHERE stock = 0), "
      "(SELECT count(*) FROM cleared), "
      "(SELECT " ECOM_TS("created_at") " FROM orders WHERE id = %s::bigint), "
      "(SELECT " ECOM_TS("updated_at") " FROM orders WHERE id = %s::bigint) "
      "FROM lines l ORDER BY l.id", 0 },
    /* ecom_order_transition(): the move and its event, or nothing */
    { "ecom_order_transition",
      "WITH moved AS (UPDATE orders SET status = %s, updated_at = now() "
      "               WHERE id = %s::bigint AND status = %s RETURNING id) "
      "INSERT INTO order_events (order_id, actor_id, from_status, to_status, "
      "actor) SELECT id, %s::bigint, %s, %s, %s FROM moved "
      "RETURNING order_id", 0 },
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
    [O_ID] = { "id", EC_INT }, [O_STATUS] = { "status", EC_STR },
    [O_CURRENCY] = { "currency", EC_STR },
    [O_SUBTOTAL] = { "subtotal", EC_INT }, [O_DISCOUNT] = { "discount", EC_INT },
    [O_TOTAL] = { "total", EC_INT }, [O_ITEM_COUNT] = { "item_count", EC_INT },
    [O_CREATED_AT] = { "created_at", EC_TIME },
    [O_UPDATED_AT] = { "updated_at", EC_TIME }, [O_NCOLS] = { NULL, 0 }
};
/* line_cols' quantity, by index */
enum { O_LINE_QTY = 5 };
static const ecom_col line_cols[] = {
    { "id", EC_INT }, { "product_id", EC_INT_NULL }, { "sku", EC_STR_NULL },
    { "name", EC_STR }, { "unit_price", EC_INT }, { "quantity", EC_INT },
    { "line_total", EC_INT }, { NULL, 0 }
};
static const ecom_col event_cols[] = {
    { "from", EC_STR_NULL }, { "to", EC_STR }, { "actor_id", EC_INT_NULL },
    { "at", EC_TIME }, { NULL, 0 }
};


/* Appends every row of label(id) to a new pool-owned array of objects. */
static ecom_err rows_array(ecom_req *q, const char *label, long long id,
                           const ecom_col *cols, json_t **out)
{
    const char *args[1] = { ECOM_LL(q, id) };
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    ecom_err e;

    if ((e = ecom_db_select(q, label, &res, 1, args))) {
        return e;
    }
    *out = ecom_jarray(q);
    while (ecom_db_next(q, res, &row)) {
        json_array_append(*out, ecom_row_json(q, row, cols, 0));
    }
    return ECOM_OK;
}

static int send_order(ecom_req *q, long long id, int status)
{
    const char *args[3] = { ECOM_LL(q, id), ECOM_LL(q, q->user_id),
                            q->is_staff ? "true" : "false" };
    apr_dbd_row_t *row;
    json_t *o, *lines, *events;
    ecom_err e = ecom_db_one(q, "ecom_order_get", &row, 3, args);

    if (e == ECOM_E_NOT_FOUND) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such order.");
    }
    if (e) {
        return ecom_fail(q, e);
    }
    o = ecom_row_json(q, row, order_cols, 0);
    if ((e = rows_array(q, "ecom_order_lines", id, line_cols, &lines))
        || (e = rows_array(q, "ecom_order_events", id, event_cols, &events))) {
        return ecom_fail(q, e);
    }
    json_object_set(o, "lines", lines);
    json_object_set(o, "events", events);
    json_object_set_new(o, "payments", json_array());
    json_object_set_new(o, "shipments", json_array());
    return ecom_json(q, status, o);
}

static int ecom_order_get(ecom_req *q)
{
    return send_order(q, q->id[0], HTTP_OK);
}

static int ecom_orders_list(ecom_req *q)
{
    const char *status = apr_table_get(q->args, "status");
    const char *cursor = apr_table_get(q->args, "cursor");
    const char *args[7];
    long long k1 = 0, k2 = 0;
    apr_dbd_results_t *res;
    ecom_order_state state;
    ecom_err e;
    int limit, rv;

    if ((rv = ecom_page_args(q, &limit))) {
        return rv;
    }
    if (status && ecom_order_state_parse(status, &state) != 0) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            apr_pstrcat(q->r->pool, "status must be one of ",
                                        ecom_order_states_list(), ".", NULL));
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
    if ((e = ecom_db_select(q, "ecom_orders_list", &res, 7, args))) {
        return ecom_fail(q, e);
    }
    return ecom_page(q, res, limit, order_cols, 'o', O_ID, -1);
}

typedef struct {
    int has_expected;
    long long expected;
    long long order_id;
    int sold_out;          /* products whose stock the order took to 0 */
    /* what the answer is built from (send_new_order) */
    const char *currency;
    long long total, item_count;
    json_t *lines;         /* line_cols objects, as written */
    const char *created_at, *updated_at;   /* RFC 3339 */
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

static ecom_tx_end checkout(ecom_req *q, void *data)
{
    checkout_ctx *c = data;
    const char *uid = ECOM_LL(q, q->user_id), *currency = NULL, *args[4];
    const char *wargs[11];
    const char *locked_pids, *locked_qtys;
    apr_array_header_t *line_ids = apr_array_make(q->r->pool, 16,
                                                  sizeof(const char *));
    apr_array_header_t *pids = apr_array_make(q->r->pool, 16,
                                              sizeof(const char *));
    apr_array_header_t *qtys = apr_array_make(q->r->pool, 16,
                                              sizeof(const char *));
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    long long total = 0, pending = 0, taken = 0, cleared = 0;
    int lines = 0, n, overflow = 0;
    json_t *short_of = ecom_jarray(q);
    ecom_err e;

    args[0] = uid;
    args[1] = apr_itoa(q->r->pool, q->sc->max_pending);
    if ((e = ecom_db_select(q, "ecom_checkout_lock", &res, 2, args))) {
        return ecom_tx_fail(e);
    }
    row = NULL;
    while (ecom_db_next(q, res, &row)) {
        long long qty = ecom_db_ll(q, row, C_QUANTITY);
        long long stock = ecom_db_ll(q, row, C_STOCK);
        const char *cur = ecom_db_get(q, row, C_CURRENCY);
        int active = ecom_db_bool(q, row, C_ACTIVE);

        pending = ecom_db_ll(q, row, C_PENDING);
        if (!active || stock < qty) {
            json_array_append_new(short_of, json_pack(
                "{s:I, s:s, s:I, s:I}", "product_id",
                (json_int_t)ecom_db_ll(q, row, C_PRODUCT_ID), "name",
                ecom_db_get(q, row, C_NAME), "requested", (json_int_t)qty,
                "available", (json_int_t)(active ? stock : 0)));
        }
        if (currency && strcmp(currency, cur) != 0) {
            ecom_problem(q, HTTP_CONFLICT, "conflict",
                         "The cart mixes currencies.");
            return ECOM_TX_REFUSE;
        }
        currency = apr_pstrdup(q->r->pool, cur);
        if (ecom_money_add_line(&total, ecom_db_ll(q, row, C_PRICE), qty) != 0) {
            overflow = 1;
        }
        array_add(q, line_ids, ecom_db_ll(q, row, C_LINE_ID));
        array_add(q, pids, ecom_db_ll(q, row, C_PRODUCT_ID));
        array_add(q, qtys, qty);
        lines++;
    }
    if (lines == 0) {
        json_t *errs = ecom_jarray(q);
        ecom_field_error(errs, "cart", "is empty");
        ecom_invalid(q, errs);
        return ECOM_TX_REFUSE;
    }
    if (q->sc->max_pending > 0 && pending >= q->sc->max_pending) {
        ecom_problem_with(q, HTTP_CONFLICT, "too-many-pending-orders",
                          apr_psprintf(q->r->pool, "You have %d unpaid "
                                       "orders, the most an account may "
                                       "hold: pay or cancel one first.",
                                       q->sc->max_pending),
                          ecom_jown(q, json_pack("{s:I, s:i}", "pending",
                                                 (json_int_t)pending, "max",
                                                 q->sc->max_pending)));
        return ECOM_TX_REFUSE;
    }
    if (json_array_size(short_of)) {
        ecom_problem_with(q, HTTP_CONFLICT, "out-of-stock",
                          "Some products do not have enough stock; nothing "
                          "was ordered.",
                          ecom_jown(q, json_pack("{s:O}", "products",
                                                 short_of)));
        return ECOM_TX_REFUSE;
    }
    if (overflow) {
        ecom_problem(q, HTTP_CONFLICT, "conflict",
                     "The order total would exceed what an amount can hold; "
                     "split the order.");
        return ECOM_TX_REFUSE;
    }
    if (c->has_expected && c->expected != total) {
        ecom_problem_with(q, HTTP_CONFLICT, "price-changed",
                          "Prices changed since the cart was shown; review "
                          "the new total.",
                          ecom_jown(q, json_pack("{s:I, s:s}", "total",
                                                 (json_int_t)total,
                                                 "currency", currency)));
        return ECOM_TX_REFUSE;
    }
    locked_pids = array_text(q, pids);
    locked_qtys = array_text(q, qtys);
    args[0] = uid;
    args[1] = currency;
    args[2] = args[3] = ECOM_LL(q, total);
    if ((e = ecom_db_one(q, "ecom_order_insert", &row, 4, args))) {
        return ecom_tx_fail(e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    c->order_id = ecom_db_ll(q, row, ONE_COL);
    /* lines (order, pids, qtys), taken (pids, qtys), event (order, user),
     * cleared (user, line ids) */
    wargs[0] = wargs[5] = ECOM_LL(q, c->order_id);
    wargs[1] = wargs[3] = locked_pids;
    wargs[2] = wargs[4] = locked_qtys;
    wargs[6] = wargs[7] = uid;
    wargs[8] = array_text(q, line_ids);
    wargs[9] = wargs[10] = wargs[0];
    if ((e = ecom_db_select(q, "ecom_order_write", &res, 11, wargs))) {
        return ecom_tx_fail(e);
    }
    c->lines = ecom_jarray(q);
    c->currency = currency;
    c->total = total;
    n = 0;
    row = NULL;
    while (ecom_db_next(q, res, &row)) {
        if (n++ == 0) {
            taken = ecom_db_ll(q, row, W_TAKEN);
            cleared = ecom_db_ll(q, row, W_CLEARED);
            c->sold_out = (int)ecom_db_ll(q, row, W_SOLD_OUT);
            c->created_at = ecom_db_time(q, row, W_CREATED_AT);
            c->updated_at = ecom_db_time(q, row, W_UPDATED_AT);
        }
        c->item_count += ecom_db_ll(q, row, O_LINE_QTY);
        json_array_append(c->lines, ecom_row_json(q, row, line_cols, 0));
    }
    if (n != lines || taken != lines || cleared != lines) {
        /* cannot happen while the rows are locked; refuse rather than
         * oversell if it ever does */
        ecom_problem(q, HTTP_CONFLICT, "out-of-stock",
                     "The cart or the stock changed during checkout; "
                     "nothing was ordered.");
        return ECOM_TX_REFUSE;
    }
    return ECOM_TX_COMMIT;
}

/* The answer to a checkout, built from what its transaction wrote: the
 * object send_order() shows for the order (order_cols, lines, events,
 * payments, shipments), without reading it again. A field added to
 * send_order() must be added here too: t/38-checkout-answer.t compares
 * the two. */
static int send_new_order(ecom_req *q, const checkout_ctx *c)
{
    json_t *o = ecom_jobject(q);
    json_t *event = ecom_jobject(q);
    json_t *events = ecom_jarray(q);

    json_object_set_new(o, order_cols[O_ID].name, json_integer(c->order_id));
    json_object_set_new(o, order_cols[O_STATUS].name,
                        json_string(ecom_order_state_name(ECOM_ORDER_PENDING)));
    json_object_set_new(o, order_cols[O_CURRENCY].name,
                        json_string(c->currency));
    json_object_set_new(o, order_cols[O_SUBTOTAL].name, json_integer(c->total));
    json_object_set_new(o, order_cols[O_DISCOUNT].name, json_integer(0));
    json_object_set_new(o, order_cols[O_TOTAL].name, json_integer(c->total));
    json_object_set_new(o, order_cols[O_ITEM_COUNT].name,
                        json_integer(c->item_count));
    json_object_set_new(o, order_cols[O_CREATED_AT].name,
                        json_string(c->created_at));
    json_object_set_new(o, order_cols[O_UPDATED_AT].name,
                        json_string(c->updated_at));
    json_object_set(o, "lines", c->lines);
    /* the first event, as event_cols shows it */
    json_object_set_new(event, "from", json_null());
    json_object_set_new(event, "to",
                        json_string(ecom_order_state_name(ECOM_ORDER_PENDING)));
    json_object_set_new(event, "actor_id", json_integer(q->user_id));
    json_object_set_new(event, "at", json_string(c->created_at));
    json_array_append(events, event);
    json_object_set(o, "events", events);
    json_object_set_new(o, "payments", json_array());
    json_object_set_new(o, "shipments", json_array());
    return ecom_json(q, HTTP_CREATED, o);
}

static int ecom_order_create(ecom_req *q)
{
    checkout_ctx c = { 0, 0, 0, 0, NULL, 0, 0, NULL, NULL, NULL };
    ecom_err e;
    int rv;

    if (q->body) {
        json_t *errs = ecom_jarray(q);
        rv = ecom_get_int(q->body, "expected_total", 0, 1000000000000000LL,
                          &c.expected, errs);
        if (rv < 0) {
            return ecom_invalid(q, errs);
        }
        c.has_expected = rv == 1;
    }
    if ((e = ecom_db_tx(q, checkout, &c))) {
        return ecom_fail(q, e);
    }
    if (c.sold_out) {
        /* in_stock changed: list pages filter on it (a mere stock count
         * in a cached page may lag, see the top of the file) */
        ecom_cache_invalidate(q, ECOM_CACHE_CATALOG);
    }
    apr_table_setn(q->r->headers_out, "Location",
                   ecom_url(q, "/orders/%" APR_INT64_T_FMT "/", (apr_int64_t)c.order_id));
    return send_new_order(q, &c);
}

const char *ecom_actor_name(ecom_actor a)
{
    static const char *const names[] = { "user", "staff", "system",
                                         "provider" };

    return (unsigned)a < sizeof(names) / sizeof(names[0]) ? names[a] : NULL;
}

ecom_err ecom_order_transition(ecom_req *q, long long order_id,
                               ecom_order_state from, ecom_order_state to,
                               ecom_actor actor)
{
    const char *args[7];
    apr_dbd_row_t *row;

    if (!ecom_order_transition_allowed(from, to) || !q->in_tx
        || !ecom_actor_name(actor)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "ECOM0401: order %"
                      APR_INT64_T_FMT " %s -> %s refused: %s",
                      (apr_int64_t)order_id, ecom_order_state_name(from),
                      ecom_order_state_name(to), !q->in_tx
                      ? "no transaction is open" : !ecom_actor_name(actor)
                      ? "unknown actor" : "not a transition of the order states");
        return ECOM_E_INTERNAL;
    }
    args[0] = ecom_order_state_name(to);
    args[1] = ECOM_LL(q, order_id);
    args[2] = ecom_order_state_name(from);
    args[3] = (actor == ECOM_ACTOR_USER || actor == ECOM_ACTOR_STAFF)
              && q->user_id ? ECOM_LL(q, q->user_id) : NULL;
    args[4] = args[2];
    args[5] = args[0];
    args[6] = ecom_actor_name(actor);
    return ecom_db_one(q, "ecom_order_transition", &row, 7, args);
}

static const ecom_route order_routes[] = {
    { M_GET, "orders", ecom_orders_list, ECOM_AUTH_USER, 0, 0, "orders.list" },
    { M_POST, "orders", ecom_order_create, ECOM_AUTH_USER,
      ECOM_BODY_OPT | ECOM_IDEMPOTENT, 0, "orders.create" },
    { M_GET, "orders/{id}", ecom_order_get, ECOM_AUTH_USER, 0, 0,
      "orders.get" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_orders_resource = {
    "orders", order_sql, order_routes, NULL
};
