/*
 * ecom_orders.c: checkout and order reads.
 *
 * Checkout (POST /orders/) is one statement, the function ecom_checkout_as
 * (sql/008_perf_checkout.sql, sql/010_inline_auth.sql: it resolves the
 * caller's token too, ECOM_AUTH_INLINE), which is its own transaction without an
 * Idempotency-Key (ecom_db_tx_single: no BEGIN/COMMIT round trips) and runs
 * inside the key's transaction with one; its answer is built from what it
 * returned (send_new_order). Inside it:
 *   1. take the account's advisory lock (one account's checkouts and cart
 *      adds run one at a time, so the count of its pending orders is exact: 409
 *      too-many-pending-orders at EcomMaxPendingOrders), then the cart
 *      lines and their products, in ascending product id order, so two
 *      checkouts sharing products cannot deadlock. Products
 *      are locked FOR NO KEY UPDATE, which does not conflict with the FOR
 *      KEY SHARE that other users' cart and order-line inserts take on them;
 *   2. check every line against stock and activity (409, nothing changed),
 *      and the client's expected_total against the current total (409),
 *      computed in numeric (a total beyond 64 bits is a 409 too);
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
 * A refusal (steps 1 and 2) writes nothing and comes back as rows the
 * module turns into its answers (checkout_refused); a checkout's cost is
 * mostly its round trips, not its rows.
 * Another user's order is never visible: reads are scoped by user_id
 * unless the caller is staff or support (q->reads_all, reads only), so a
 * foreign id is a 404.
 *
 * After checkout (issue 7): the shipping address snapshot (validated here,
 * set at checkout or by PATCH while pending), cancel (one transaction:
 * lock the order row, a full refund record when it was paid, the
 * transition, the restock), and the helpers the other lifecycle
 * resources share (ecom_orders.h): the order lock, the restock (products
 * locked in id order, restocked_at claimed so lines come back once) and
 * the order detail with its payments, refunds, shipments and events.
 */
#include "ecom_resource.h"
#include "ecom_auth.h"
#include "ecom_http.h"
#include "ecom_cache.h"
#include "ecom_page.h"
#include "ecom_money.h"
#include "ecom_orders.h"
#include "ecom_coupons.h"
#include "ecom_util.h"
#include "ecom_country.h"
#include "ecom_metrics.h"

#define ORDER_COLS \
    "o.id, o.status, o.currency, o.subtotal, o.discount, o.total, " \
    "(SELECT COALESCE(sum(quantity), 0) FROM order_lines WHERE order_id = o.id), " \
    ECOM_TS("o.created_at") ", " ECOM_TS("o.updated_at") ", " \
    "o.shipping_address::text, o.paid_amount, o.refunded_amount, " \
    "o.coupon_code"

enum { O_ID, O_STATUS, O_CURRENCY, O_SUBTOTAL, O_DISCOUNT, O_TOTAL,
       O_ITEM_COUNT, O_CREATED_AT, O_UPDATED_AT, O_ADDRESS, O_PAID,
       O_REFUNDED, O_COUPON, O_NCOLS };

/* ecom_checkout's columns: the outcome ("ok", or what refused the
 * order), the order's id, line_cols (ok rows; a short product's id, name
 * and requested quantity on "stock" rows), a number (a short product's
 * available stock, the pending count, the total refused), the currency,
 * the total, the products sold out, the order's times */
enum { K_OUTCOME, K_ORDER_ID, K_LINE, K_PRODUCT_ID, K_NAME = 5,
       K_QUANTITY = 7, K_N = 10, K_CURRENCY, K_TOTAL, K_SOLD_OUT,
       K_CREATED_AT, K_UPDATED_AT, K_USER_ID, K_ADDRESS,
       /* issue 10, coupons (sql/023): the order's subtotal, discount and
        * coupon code, a coupon refusal's reason (the line's discount is
        * the last of line_cols, before K_N) */
       K_SUBTOTAL, K_DISCOUNT, K_COUPON, K_REASON };
/* ecom_restock */
enum { ONE_COL };

static const ecom_stmt order_sql[] = {
    /* The whole checkout, steps 1 to 5, in one statement: the function
     * resolves the caller (by id, or by the token's hash: ECOM_AUTH_INLINE),
     * locks, checks and writes, and returns the lines as written or the
     * rows of what refused it, having written nothing, each with the
     * caller's user_id (sql/008_perf_checkout.sql, sql/010_inline_auth.sql).
     * Outside a transaction the call is its own; with an Idempotency-Key
     * it runs in the key's transaction. */
    { "ecom_checkout",
      "SELECT outcome, order_id, id, product_id, sku, name, unit_price, "
      "quantity, line_total, line_discount, n, currency, total, sold_out, "
      ECOM_TS("created_at") ", " ECOM_TS("updated_at") ", user_id, "
      "address::text, subtotal, discount, coupon_code, reason "
      "FROM ecom_checkout_full(%s::bigint, %s, %s::int, %s::bigint, "
      "%s::jsonb, true)", 0 },
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
      "SELECT id, product_id, sku, name, unit_price, quantity, line_total, "
      "discount FROM order_lines WHERE order_id = %s::bigint ORDER BY id",
      ECOM_STMT_READ },
    { "ecom_order_events",
      "SELECT from_status, to_status, actor, actor_id, " ECOM_TS("created_at")
      " FROM order_events WHERE order_id = %s::bigint ORDER BY id",
      ECOM_STMT_READ },
    /* the order detail's arrays, one statement each */
    { "ecom_order_payments",
      "SELECT id, order_id, provider, status, amount, currency, "
      ECOM_TS("created_at") ", failure_reason FROM payments "
      "WHERE order_id = %s::bigint ORDER BY id", ECOM_STMT_READ },
    { "ecom_order_refunds",
      "SELECT " ECOM_REFUND_COLS " FROM refunds r "
      "WHERE r.order_id = %s::bigint ORDER BY r.id", ECOM_STMT_READ },
    { "ecom_order_shipments",
      "SELECT " ECOM_SHIPMENT_COLS " FROM shipments s "
      "JOIN orders o ON o.id = s.order_id "
      "WHERE s.order_id = %s::bigint ORDER BY s.id", ECOM_STMT_READ },
    /* ecom_order_lock(): scoped like ecom_order_get. FOR NO KEY UPDATE:
     * it serialises every writer of the order (each takes it, or updates
     * the row) without waiting for the FOR KEY SHARE that inserts
     * referencing the order (payments, events...) take */
    { "ecom_order_lock",
      "SELECT status, paid_amount, refunded_amount, currency, "
      "shipping_address IS NOT NULL FROM orders "
      "WHERE id = %s::bigint AND (user_id = %s::bigint OR %s::boolean) "
      "FOR NO KEY UPDATE", 0 },
    /* PATCH /orders/{id}/: only while pending */
    { "ecom_order_set_address",
      "UPDATE orders SET shipping_address = %s::jsonb, updated_at = now() "
      "WHERE id = %s::bigint AND (user_id = %s::bigint OR %s::boolean) "
      "AND status = 'pending' RETURNING id", 0 },
    /* cancel of a paid order: a full refund of what is left, restocking */
    { "ecom_cancel_refund",
      "WITH r AS (INSERT INTO refunds (order_id, payment_id, amount, "
      "currency, reason, restock, actor_id) "
      "SELECT o.id, (SELECT max(p.id) FROM payments p WHERE p.order_id = o.id "
      "AND p.status = 'succeeded'), o.paid_amount - o.refunded_amount, "
      "o.currency, 'order cancelled', true, %s::bigint FROM orders o "
      "WHERE o.id = %s::bigint AND o.paid_amount > o.refunded_amount "
      "RETURNING order_id) "
      "UPDATE orders SET refunded_amount = paid_amount, updated_at = now() "
      "WHERE id = %s::bigint", 0 },
    /* ecom_order_restock(): lock the products in id order, then claim
     * restocked_at and add the lines back in one UPDATE (nothing when
     * already claimed); returns each product's stock before */
    { "ecom_restock_lock",
      "SELECT p.id FROM products p WHERE p.id IN (SELECT product_id "
      "FROM order_lines WHERE order_id = %s::bigint) ORDER BY p.id "
      "FOR NO KEY UPDATE", 0 },
    { "ecom_restock",
      "WITH claim AS (UPDATE orders SET restocked_at = now() "
      "               WHERE id = %s::bigint AND restocked_at IS NULL "
      "               RETURNING id) "
      "UPDATE products p SET stock = p.stock + l.qty, updated_at = now() "
      "FROM (SELECT ol.product_id, sum(ol.quantity) AS qty "
      "      FROM order_lines ol JOIN claim ON claim.id = ol.order_id "
      "      WHERE ol.product_id IS NOT NULL GROUP BY ol.product_id) l "
      "WHERE p.id = l.product_id RETURNING p.stock - l.qty", 0 },
    /* GET /orders/: one statement per caller kind and status filter, so
     * each generic plan reads only what it lists: a user's orders through
     * orders_user (user_id, id DESC), staff's through the primary key or
     * orders_status (status, id DESC). One statement with "(user_id = $1
     * OR $2)" walked the whole table for a user with no orders (issue 8).
     * A NULL cursor is "from the newest" through COALESCE, which keeps the
     * id condition on the index. */
    { "ecom_orders_mine",
      "SELECT " ORDER_COLS " FROM orders o WHERE o.user_id = %s::bigint "
      "AND o.id < COALESCE(%s::bigint, 9223372036854775807) "
      "ORDER BY o.id DESC LIMIT %s::int",
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_orders_mine_status",
      "SELECT " ORDER_COLS " FROM orders o WHERE o.user_id = %s::bigint "
      "AND o.status = %s "
      "AND o.id < COALESCE(%s::bigint, 9223372036854775807) "
      "ORDER BY o.id DESC LIMIT %s::int",
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_orders_all",
      "SELECT " ORDER_COLS " FROM orders o "
      "WHERE o.id < COALESCE(%s::bigint, 9223372036854775807) "
      "ORDER BY o.id DESC LIMIT %s::int", ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_orders_all_status",
      "SELECT " ORDER_COLS " FROM orders o WHERE o.status = %s "
      "AND o.id < COALESCE(%s::bigint, 9223372036854775807) "
      "ORDER BY o.id DESC LIMIT %s::int",
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { NULL, NULL, 0 }
};

static const ecom_col order_cols[] = {
    [O_ID] = { "id", EC_INT }, [O_STATUS] = { "status", EC_STR },
    [O_CURRENCY] = { "currency", EC_STR },
    [O_SUBTOTAL] = { "subtotal", EC_INT }, [O_DISCOUNT] = { "discount", EC_INT },
    [O_TOTAL] = { "total", EC_INT }, [O_ITEM_COUNT] = { "item_count", EC_INT },
    [O_CREATED_AT] = { "created_at", EC_TIME },
    [O_UPDATED_AT] = { "updated_at", EC_TIME },
    [O_ADDRESS] = { "shipping_address", EC_JSON },
    [O_PAID] = { "paid_amount", EC_INT },
    [O_REFUNDED] = { "refunded_amount", EC_INT },
    [O_COUPON] = { "coupon", EC_STR_NULL }, [O_NCOLS] = { NULL, 0 }
};
static const ecom_col line_cols[] = {
    { "id", EC_INT }, { "product_id", EC_INT_NULL }, { "sku", EC_STR_NULL },
    { "name", EC_STR }, { "unit_price", EC_INT }, { "quantity", EC_INT },
    { "line_total", EC_INT }, { "discount", EC_INT }, { NULL, 0 }
};
static const ecom_col event_cols[] = {
    { "from", EC_STR_NULL }, { "to", EC_STR }, { "actor", EC_STR },
    { "actor_id", EC_INT_NULL }, { "at", EC_TIME }, { NULL, 0 }
};
static const ecom_col payment_cols[] = {
    { "id", EC_INT }, { "order_id", EC_INT }, { "provider", EC_STR },
    { "status", EC_STR }, { "amount", EC_INT }, { "currency", EC_STR },
    { "created_at", EC_TIME }, { "failure_reason", EC_STR_NULL }, { NULL, 0 }
};
const ecom_col ecom_refund_cols[] = {
    { "id", EC_INT }, { "order_id", EC_INT }, { "amount", EC_INT },
    { "currency", EC_STR }, { "status", EC_STR }, { "reason", EC_STR_NULL },
    { "restock", EC_BOOL }, { "created_at", EC_TIME }, { NULL, 0 }
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
    /* a read: staff and support see every order (a write that answers
     * with the order has authorised the caller already) */
    const char *args[3] = { ECOM_LL(q, id), ECOM_LL(q, q->user_id),
                            q->reads_all ? "true" : "false" };
    apr_dbd_row_t *row;
    json_t *o, *lines, *events, *payments, *refunds, *shipments, *p;
    size_t i;
    ecom_err e = ecom_db_one(q, "ecom_order_get", &row, 3, args);

    if (e == ECOM_E_NOT_FOUND) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such order.");
    }
    if (e) {
        return ecom_fail(q, e);
    }
    o = ecom_row_json(q, row, order_cols, 0);
    if ((e = rows_array(q, "ecom_order_lines", id, line_cols, &lines))
        || (e = rows_array(q, "ecom_order_payments", id, payment_cols,
                           &payments))
        || (e = rows_array(q, "ecom_order_refunds", id, ecom_refund_cols,
                           &refunds))
        || (e = rows_array(q, "ecom_order_shipments", id, ecom_shipment_cols,
                           &shipments))
        || (e = rows_array(q, "ecom_order_events", id, event_cols, &events))) {
        return ecom_fail(q, e);
    }
    json_array_foreach(payments, i, p) {
        /* a failure reason only on failed payments */
        if (json_is_null(json_object_get(p, "failure_reason"))) {
            json_object_del(p, "failure_reason");
        }
    }
    json_object_set(o, "lines", lines);
    json_object_set(o, "payments", payments);
    json_object_set(o, "refunds", refunds);
    json_object_set(o, "shipments", shipments);
    json_object_set(o, "events", events);
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
    const char *args[4];
    long long k1 = 0, k2 = 0;
    apr_dbd_results_t *res;
    ecom_order_state state;
    ecom_err e;
    int limit, rv, n = 0;

    if ((rv = ecom_page_args(q, &limit))) {
        return rv;
    }
    if (status && ecom_order_state_parse(status, &state) != 0) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            apr_pstrcat(q->r->pool, "status must be one of ",
                                        ecom_order_states_list(), ".", NULL));
    }
    if ((rv = ecom_page_cursor(q, 'o', &k1, &k2))) {
        return rv;
    }
    /* the arguments in the order of the statement's placeholders (staff
     * and support list every user's orders) */
    if (!q->reads_all) {
        args[n++] = ECOM_LL(q, q->user_id);
    }
    if (status) {
        args[n++] = status;
    }
    args[n++] = cursor ? ECOM_LL(q, k1) : NULL;
    args[n++] = apr_itoa(q->r->pool, limit + 1);
    if ((e = ecom_db_select(q, q->reads_all
                                   ? (status ? "ecom_orders_all_status"
                                             : "ecom_orders_all")
                                   : (status ? "ecom_orders_mine_status"
                                             : "ecom_orders_mine"),
                            &res, n, args))) {
        return ecom_fail(q, e);
    }
    return ecom_page(q, res, limit, order_cols, 'o', O_ID, -1);
}

/* The shipping address: its fields, whether each is required, its length
 * in characters. Optional fields may be absent or null (omitted from the
 * snapshot), or a string of 1.. characters. */
static const struct {
    const char *name;
    int required;
    size_t max;
} address_fields[] = {
    { "name", 1, 200 }, { "line1", 1, 200 }, { "line2", 0, 200 },
    { "city", 1, 100 }, { "region", 0, 100 }, { "postal_code", 1, 20 },
    { "country", 1, 2 }, { "phone", 0, 32 }, { NULL, 0, 0 }
};

/* read_address() for the address book too (ecom_orders.h). */
const char *ecom_address_read(ecom_req *q, json_t *v, const char *field,
                              const char *const *also, json_t *errs)
{
    static const char *const fields[] = { "name", "line1", "line2", "city",
                                          "region", "postal_code", "country",
                                          "phone", NULL };
    const char *const *known = fields;
    const char *prefix = field ? apr_pstrcat(q->r->pool, field, ".", NULL)
                               : "";
    apr_pool_t *p = q->r->pool;
    json_t *out = ecom_jobject(q);
    size_t nerr = json_array_size(errs);
    apr_size_t len;
    const char *text;

    if (!json_is_object(v)) {
        ecom_field_error(errs, field ? field : "body", "must be an object");
        return NULL;
    }
    if (also) {
        /* the address's fields and the caller's own */
        apr_array_header_t *k = apr_array_make(p, 16, sizeof(const char *));
        for (const char *const *f = fields; *f; f++) {
            APR_ARRAY_PUSH(k, const char *) = *f;
        }
        for (const char *const *f = also; *f; f++) {
            APR_ARRAY_PUSH(k, const char *) = *f;
        }
        APR_ARRAY_PUSH(k, const char *) = NULL;
        known = (const char *const *)k->elts;
    }
    ecom_body_unknown(q, v, prefix, known, errs);
    for (int i = 0; address_fields[i].name; i++) {
        const char *name = address_fields[i].name, *val = NULL;
        const char *field_name = apr_pstrcat(p, prefix, name, NULL);
        json_t *f = json_object_get(v, name);
        json_t *one;
        int rv;

        if (!f || json_is_null(f)) {
            if (address_fields[i].required) {
                ecom_field_error(errs, field_name, "is required");
            }
            continue;
        }
        one = ecom_jown(q, json_pack("{s:O}", field_name, f));
        rv = ecom_get_str(one, field_name, 1, address_fields[i].max, &val, errs);
        if (rv != 1) {
            continue;
        }
        if (strcmp(name, "country") == 0) {
            char cc[3];
            if (ecom_country_normalise(val, cc) != 0) {
                ecom_field_error(errs, field_name, "must be an ISO 3166-1 "
                                 "alpha-2 country code, such as FR or US");
                continue;
            }
            val = apr_pstrdup(p, cc);
        }
        else if (strcmp(name, "phone") == 0
                 && (strspn(val, "0123456789 +-().") != strlen(val)
                     || !strpbrk(val, "0123456789"))) {
            ecom_field_error(errs, field_name, "must be digits, spaces and "
                             "+ - ( ) . only");
            continue;
        }
        else if (strspn(val, " \t") == strlen(val)) {
            ecom_field_error(errs, field_name, "must not be blank");
            continue;
        }
        json_object_set_new(out, name, json_string(val));
    }
    if (json_array_size(errs) != nerr) {
        return NULL;
    }
    text = ecom_json_dump(q, out, &len);
    return apr_pstrmemdup(p, text, len);
}

/* Validates a shipping_address value; returns its normalised snapshot as
 * JSON text (country upper-case, absent or null optional fields left
 * out), or NULL after adding field errors ("shipping_address.<field>")
 * to errs. */
static const char *read_address(ecom_req *q, json_t *v, json_t *errs)
{
    return ecom_address_read(q, v, "shipping_address", NULL, errs);
}

typedef struct {
    int has_expected;
    long long expected;
    long long order_id;
    int sold_out;          /* products whose stock the order took to 0 */
    const char *address;   /* the shipping address snapshot (JSON) or NULL */
    /* what the answer is built from (send_new_order) */
    const char *currency;
    long long total, item_count;
    long long subtotal, discount;  /* issue 10: the coupon's discount */
    const char *coupon;            /* its code, or NULL */
    json_t *lines;         /* line_cols objects, as written */
    const char *created_at, *updated_at;   /* RFC 3339 */
} checkout_ctx;

/* Answers the refusal ecom_checkout returned: its rows, from row on, all
 * have the outcome named (one row, or one per short product). Nothing was
 * written. */
static ecom_tx_end checkout_refused(ecom_req *q, apr_dbd_results_t *res,
                                    apr_dbd_row_t *row, const char *outcome)
{
    if (strcmp(outcome, "empty") == 0) {
        json_t *errs = ecom_jarray(q);
        ecom_field_error(errs, "cart", "is empty");
        ecom_invalid(q, errs);
    }
    else if (strcmp(outcome, "currencies") == 0) {
        ecom_problem(q, HTTP_CONFLICT, "conflict",
                     "The cart mixes currencies.");
    }
    else if (strcmp(outcome, "pending") == 0) {
        ecom_problem_with(q, HTTP_CONFLICT, "too-many-pending-orders",
                          apr_psprintf(q->r->pool, "You have %d unpaid "
                                       "orders, the most an account may "
                                       "hold: pay or cancel one first.",
                                       q->sc->max_pending),
                          ecom_jown(q, json_pack("{s:I, s:i}", "pending",
                                                 (json_int_t)ecom_db_ll(q, row, K_N),
                                                 "max", q->sc->max_pending)));
    }
    else if (strcmp(outcome, "stock") == 0) {
        json_t *short_of = ecom_jarray(q);
        do {
            json_array_append_new(short_of, json_pack(
                "{s:I, s:s, s:I, s:I}", "product_id",
                (json_int_t)ecom_db_ll(q, row, K_PRODUCT_ID), "name",
                ecom_db_get(q, row, K_NAME), "requested",
                (json_int_t)ecom_db_ll(q, row, K_QUANTITY), "available",
                (json_int_t)ecom_db_ll(q, row, K_N)));
        } while (ecom_db_next(q, res, &row));
        ecom_problem_with(q, HTTP_CONFLICT, "out-of-stock",
                          "Some products do not have enough stock; nothing "
                          "was ordered.",
                          ecom_jown(q, json_pack("{s:O}", "products",
                                                 short_of)));
    }
    else if (strcmp(outcome, "overflow") == 0) {
        ecom_problem(q, HTTP_CONFLICT, "conflict",
                     "The order total would exceed what an amount can hold; "
                     "split the order.");
    }
    else if (strcmp(outcome, "total") == 0) {
        ecom_problem_with(q, HTTP_CONFLICT, "price-changed",
                          "Prices changed since the cart was shown; review "
                          "the new total.",
                          ecom_jown(q, json_pack("{s:I, s:s}", "total",
                                                 (json_int_t)ecom_db_ll(q, row, K_N),
                                                 "currency",
                                                 ecom_db_get(q, row, K_CURRENCY))));
    }
    else if (strcmp(outcome, "coupon") == 0) {
        ecom_coupon_refused(q, ecom_db_get(q, row, K_COUPON),
                            ecom_db_get(q, row, K_REASON));
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "ECOM0402: checkout "
                      "returned an unknown outcome");
        return ecom_tx_fail(ECOM_E_INTERNAL);
    }
    return ECOM_TX_REFUSE;
}

/* One statement (ecom_checkout, see the top of the file and
 * sql/008_perf_checkout.sql): the order as written, or the refusal. */
static ecom_tx_end checkout(ecom_req *q, void *data)
{
    checkout_ctx *c = data;
    const char *args[5], *outcome;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    ecom_err e;

    args[0] = q->token_hash ? NULL : ECOM_LL(q, q->user_id);
    args[1] = q->token_hash;
    args[2] = apr_itoa(q->r->pool, q->sc->max_pending);
    args[3] = c->has_expected ? ECOM_LL(q, c->expected) : NULL;
    args[4] = c->address;
    if ((e = ecom_db_select(q, "ecom_checkout", &res, 5, args))) {
        return ecom_tx_fail(e);
    }
    if (!ecom_db_next(q, res, &row)
        || !(outcome = ecom_db_get(q, row, K_OUTCOME))) {
        return ecom_tx_fail(ECOM_E_INTERNAL);
    }
    /* 'unauthorized' has no user_id: the 401, nothing written */
    if (ecom_auth_resolved(q, ecom_db_get(q, row, K_USER_ID))) {
        return ECOM_TX_REFUSE;
    }
    if (strcmp(outcome, "ok") != 0) {
        return checkout_refused(q, res, row, outcome);
    }
    /* the driver frees the result after its last row: copy as we go */
    c->order_id = ecom_db_ll(q, row, K_ORDER_ID);
    c->currency = apr_pstrdup(q->r->pool, ecom_db_get(q, row, K_CURRENCY));
    c->total = ecom_db_ll(q, row, K_TOTAL);
    c->subtotal = ecom_db_ll(q, row, K_SUBTOTAL);
    c->discount = ecom_db_ll(q, row, K_DISCOUNT);
    if (ecom_db_get(q, row, K_COUPON)) {
        c->coupon = apr_pstrdup(q->r->pool, ecom_db_get(q, row, K_COUPON));
    }
    c->sold_out = (int)ecom_db_ll(q, row, K_SOLD_OUT);
    c->created_at = ecom_db_time(q, row, K_CREATED_AT);
    c->updated_at = ecom_db_time(q, row, K_UPDATED_AT);
    /* no address named: the default one it copied, if any (sql/017) */
    if (!c->address && ecom_db_get(q, row, K_ADDRESS)) {
        c->address = apr_pstrdup(q->r->pool, ecom_db_get(q, row, K_ADDRESS));
    }
    c->lines = ecom_jarray(q);
    do {
        c->item_count += ecom_db_ll(q, row, K_QUANTITY);
        json_array_append(c->lines, ecom_row_json(q, row, line_cols, K_LINE));
    } while (ecom_db_next(q, res, &row));
    return ECOM_TX_COMMIT;
}

/* The answer to a checkout, built from what its transaction wrote: the
 * object send_order() shows for the order (order_cols, lines, events,
 * payments, refunds, shipments), without reading it again. A field added to
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
    json_object_set_new(o, order_cols[O_SUBTOTAL].name,
                        json_integer(c->subtotal));
    json_object_set_new(o, order_cols[O_DISCOUNT].name,
                        json_integer(c->discount));
    json_object_set_new(o, order_cols[O_TOTAL].name, json_integer(c->total));
    json_object_set_new(o, order_cols[O_ITEM_COUNT].name,
                        json_integer(c->item_count));
    json_object_set_new(o, order_cols[O_CREATED_AT].name,
                        json_string(c->created_at));
    json_object_set_new(o, order_cols[O_UPDATED_AT].name,
                        json_string(c->updated_at));
    /* the snapshot as read_address() wrote it (jsonb keeps its content) */
    json_object_set_new(o, order_cols[O_ADDRESS].name, c->address
                        ? json_loads(c->address, 0, NULL) : json_null());
    json_object_set_new(o, order_cols[O_PAID].name, json_integer(0));
    json_object_set_new(o, order_cols[O_REFUNDED].name, json_integer(0));
    json_object_set_new(o, order_cols[O_COUPON].name,
                        c->coupon ? json_string(c->coupon) : json_null());
    json_object_set(o, "lines", c->lines);
    /* the first event, as event_cols shows it */
    json_object_set_new(event, "from", json_null());
    json_object_set_new(event, "to",
                        json_string(ecom_order_state_name(ECOM_ORDER_PENDING)));
    json_object_set_new(event, "actor",
                        json_string(ecom_actor_name(ECOM_ACTOR_USER)));
    json_object_set_new(event, "actor_id", json_integer(q->user_id));
    json_object_set_new(event, "at", json_string(c->created_at));
    json_array_append(events, event);
    json_object_set(o, "events", events);
    json_object_set_new(o, "payments", json_array());
    json_object_set_new(o, "refunds", json_array());
    json_object_set_new(o, "shipments", json_array());
    return ecom_json(q, HTTP_CREATED, o);
}

static int ecom_order_create(ecom_req *q)
{
    checkout_ctx c = { 0, 0, 0, 0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL,
                       NULL };
    ecom_err e;
    int rv;

    if (q->body) {
        json_t *errs = ecom_jarray(q);
        json_t *addr = json_object_get(q->body, "shipping_address");
        rv = ecom_get_int(q->body, "expected_total", 0, 1000000000000000LL,
                          &c.expected, errs);
        c.has_expected = rv == 1;
        if (addr && !json_is_null(addr)) {
            c.address = read_address(q, addr, errs);
        }
        if (json_array_size(errs)) {
            return ecom_invalid(q, errs);
        }
    }
    if ((e = ecom_db_tx_single(q, checkout, &c))) {
        return ecom_fail(q, e);
    }
    ecom_metrics_event(q, ECOM_EV_ORDER_CREATED);
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

ecom_tx_end ecom_order_lock(ecom_req *q, long long order_id,
                            ecom_order_row *o)
{
    const char *args[3] = { ECOM_LL(q, order_id), ECOM_LL(q, q->user_id),
                            q->is_staff ? "true" : "false" };
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, "ecom_order_lock", &row, 3, args);

    if (e == ECOM_E_NOT_FOUND) {
        ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such order.");
        return ECOM_TX_REFUSE;
    }
    if (e) {
        return ecom_tx_fail(e);
    }
    if (ecom_order_state_parse(ecom_db_get(q, row, 0), &o->status) != 0) {
        return ecom_tx_fail(ECOM_E_INTERNAL);
    }
    o->paid_amount = ecom_db_ll(q, row, 1);
    o->refunded_amount = ecom_db_ll(q, row, 2);
    o->currency = apr_pstrdup(q->r->pool, ecom_db_get(q, row, 3));
    o->has_address = ecom_db_bool(q, row, 4);
    return ECOM_TX_COMMIT;
}

ecom_tx_end ecom_order_refuse(ecom_req *q, ecom_order_state s,
                              const char *detail)
{
    ecom_problem_with(q, HTTP_CONFLICT, "invalid-state", detail,
                      ecom_jown(q, json_pack("{s:s}", "order_status",
                                             ecom_order_state_name(s))));
    return ECOM_TX_REFUSE;
}

ecom_err ecom_order_restock(ecom_req *q, long long order_id)
{
    const char *args[1] = { ECOM_LL(q, order_id) };
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    int back = 0;
    ecom_err e;

    if (!q->in_tx) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "ECOM0801: restock of "
                      "order %" APR_INT64_T_FMT " refused: no transaction "
                      "is open", (apr_int64_t)order_id);
        return ECOM_E_INTERNAL;
    }
    if ((e = ecom_db_select(q, "ecom_restock_lock", &res, 1, args))) {
        return e;
    }
    while (ecom_db_next(q, res, &row)) {
        /* read to the end: the rows are locked in id order */
    }
    if ((e = ecom_db_select(q, "ecom_restock", &res, 1, args))) {
        return e;
    }
    row = NULL;
    while (ecom_db_next(q, res, &row)) {
        back += ecom_db_ll(q, row, ONE_COL) == 0;
    }
    if (back) {
        /* in_stock changed: noted in q->cache_dirty until the commit */
        ecom_cache_invalidate(q, ECOM_CACHE_CATALOG);
    }
    return ECOM_OK;
}

ecom_err ecom_order_tx(ecom_req *q, ecom_tx_fn fn, void *ctx)
{
    ecom_err e = ecom_db_tx(q, fn, ctx);

    if (!q->in_tx) {
        /* our own transaction ended: committed (OK) or rolled back */
        unsigned dirty = e == ECOM_OK ? q->cache_dirty : 0;
        q->cache_dirty = 0;
        ecom_cache_invalidate(q, dirty);
    }
    return e;
}

int ecom_order_write(ecom_req *q, json_t *errs, ecom_tx_fn fn, void *ctx)
{
    ecom_err e;

    if (errs && json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    return (e = ecom_order_tx(q, fn, ctx)) ? ecom_fail(q, e) : 0;
}

/* POST /orders/{id}/cancel/: lock, refund what was paid, move, restock. */
static ecom_tx_end cancel(ecom_req *q, void *data)
{
    long long id = q->id[0];
    ecom_order_row o;
    ecom_tx_end end = ecom_order_lock(q, id, &o);
    const char *refused;
    ecom_err e;

    if (end.err) {
        return end;
    }
    refused = apr_psprintf(q->r->pool, "Only a pending or paid order can be "
                           "cancelled; this one is %s.",
                           ecom_order_state_name(o.status));
    if (!ecom_order_transition_allowed(o.status, ECOM_ORDER_CANCELLED)) {
        return ecom_order_refuse(q, o.status, refused);
    }
    if (o.status == ECOM_ORDER_PAID) {
        const char *args[3] = { ECOM_LL(q, q->user_id), ECOM_LL(q, id),
                                ECOM_LL(q, id) };
        if ((e = ecom_db_query(q, "ecom_cancel_refund", NULL, 3, args))) {
            return ecom_tx_fail(e);
        }
    }
    e = ecom_order_transition(q, id, o.status, ECOM_ORDER_CANCELLED,
                              q->is_staff ? ECOM_ACTOR_STAFF
                                          : ECOM_ACTOR_USER);
    if (e == ECOM_E_NOT_FOUND) {
        /* cannot happen while the row is locked */
        return ecom_order_refuse(q, o.status, refused);
    }
    if (e || (e = ecom_order_restock(q, id))) {
        return ecom_tx_fail(e);
    }
    return ECOM_TX_COMMIT;
}

static int ecom_order_cancel(ecom_req *q)
{
    int rv = ecom_order_write(q, NULL, cancel, NULL);

    return rv ? rv : send_order(q, q->id[0], HTTP_OK);
}

/* PATCH /orders/{id}/: the shipping address, while the order is pending. */
static int ecom_order_update(ecom_req *q)
{
    static const char *const known[] = { "shipping_address", NULL };
    json_t *errs = ecom_jarray(q);
    json_t *addr = json_object_get(q->body, "shipping_address");
    const char *snap = NULL, *args[4];
    apr_dbd_results_t *res;
    ecom_order_state st;
    apr_dbd_row_t *row;
    ecom_err e;

    ecom_body_unknown(q, q->body, "", known, errs);
    if (!addr) {
        ecom_field_error(errs, "shipping_address", "is required");
    }
    else {
        snap = read_address(q, addr, errs);
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    args[0] = snap;
    args[1] = ECOM_LL(q, q->id[0]);
    args[2] = ECOM_LL(q, q->user_id);
    args[3] = q->is_staff ? "true" : "false";
    if ((e = ecom_db_select(q, "ecom_order_set_address", &res, 4, args))) {
        return ecom_fail(q, e);
    }
    if (ecom_db_row(q, res)) {
        return send_order(q, q->id[0], HTTP_OK);
    }
    /* not changed: not the caller's order (404), or no longer pending */
    e = ecom_db_one(q, "ecom_order_get", &row, 3, args + 1);
    if (e == ECOM_E_NOT_FOUND) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such order.");
    }
    if (e) {
        return ecom_fail(q, e);
    }
    st = ecom_order_state_parse(ecom_db_get(q, row, O_STATUS), &st) == 0
         ? st : ECOM_ORDER_PENDING;
    return ecom_problem_with(q, HTTP_CONFLICT, "invalid-state",
                             apr_psprintf(q->r->pool, "The shipping address "
                                          "can only change while the order "
                                          "is pending; it is %s.",
                                          ecom_order_state_name(st)),
                             ecom_jown(q, json_pack("{s:s}", "order_status",
                                                    ecom_order_state_name(st))));
}

static const ecom_route order_routes[] = {
    { M_GET, "orders", ecom_orders_list, ECOM_AUTH_USER, 0, 0, "orders.list" },
    { M_POST, "orders", ecom_order_create, ECOM_AUTH_USER,
      ECOM_BODY_OPT | ECOM_IDEMPOTENT | ECOM_AUTH_INLINE, 0, "orders.create" },
    { M_GET, "orders/{id}", ecom_order_get, ECOM_AUTH_USER, 0, 0,
      "orders.get" },
    { M_PATCH, "orders/{id}", ecom_order_update, ECOM_AUTH_USER, ECOM_BODY, 0,
      "orders.update" },
    /* the catalog section is invalidated by ecom_order_tx when a product
     * came back in stock */
    { M_POST, "orders/{id}/cancel", ecom_order_cancel, ECOM_AUTH_USER, 0, 0,
      "orders.cancel" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_orders_resource = {
    "orders", order_sql, order_routes, NULL
};
