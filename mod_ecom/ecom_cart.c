/*
 * ecom_cart.c: the caller's cart. Lines always show current prices; the
 * price is only frozen when an order is placed (ecom_orders.c).
 *
 * Adding is one transaction: the caller's user row is locked FOR NO KEY
 * UPDATE first, so two adds of one user run one after the other (the
 * guards below read the cart, and two concurrent adds would each see it
 * without the other's line), then one upsert raises the quantity of an
 * existing line, guarded so the resulting quantity never exceeds stock or
 * ECOM_CART_MAX_QTY, the cart never exceeds ECOM_CART_MAX_LINES lines, and
 * every line has one currency. When it changes nothing, a second look
 * tells "unknown product" (404) from "not enough stock", "line full",
 * "cart full" and "other currency" (409). Every statement is scoped by
 * user_id, so another user's line is simply not found (404).
 */
#include "ecom.h"
#include "ecom_money.h"
#include "ecom_util.h"

/* A cart holds at most this many distinct products, and a line at most
 * ECOM_CART_MAX_QTY units (CHECKed in the schema too), which keeps every
 * cart and order total inside 64 bits (500 x 10^12 x 10^4 < 2^63); the
 * sums are computed with checked arithmetic all the same. */
#define ECOM_CART_MAX_LINES 500
#define ECOM_CART_MAX_LINES_SQL "500"
#define ECOM_CART_MAX_QTY 10000
#define ECOM_CART_MAX_QTY_SQL "10000"

#define LINE_COLS \
    "ci.id, ci.product_id, p.name, ci.quantity, p.price, " \
    "p.price * ci.quantity, p.currency"

const ecom_stmt ecom_cart_sql[] = {
    { "ecom_cart_lines",
      "SELECT " LINE_COLS " FROM cart_items ci "
      "JOIN products p ON p.id = ci.product_id "
      "WHERE ci.user_id = %s::bigint ORDER BY ci.id", ECOM_STMT_READ },
    { "ecom_cart_line",
      "SELECT " LINE_COLS " FROM cart_items ci "
      "JOIN products p ON p.id = ci.product_id "
      "WHERE ci.id = %s::bigint AND ci.user_id = %s::bigint", ECOM_STMT_READ },
    /* serialises one user's cart additions (see the top) */
    { "ecom_cart_lock_user",
      "SELECT 1 FROM users WHERE id = %s::bigint FOR NO KEY UPDATE", 0 },
    /* the currency guard: every other line of the cart has this currency */
    { "ecom_cart_add",
      "WITH p AS (SELECT id, stock, currency FROM products "
      "           WHERE id = %s::bigint AND active), "
      "u AS (SELECT %s::bigint AS uid, %s::int AS qty) "
      "INSERT INTO cart_items (user_id, product_id, quantity) "
      "SELECT u.uid, p.id, u.qty FROM p, u WHERE u.qty <= p.stock "
      "AND ((SELECT count(*) FROM cart_items c3 WHERE c3.user_id = u.uid) < "
      ECOM_CART_MAX_LINES_SQL " OR EXISTS (SELECT 1 FROM cart_items c4 "
      "     WHERE c4.user_id = u.uid AND c4.product_id = p.id)) "
      "AND NOT EXISTS (SELECT 1 FROM cart_items c2 JOIN products p2 "
      "                ON p2.id = c2.product_id WHERE c2.user_id = u.uid "
      "                AND p2.currency <> p.currency) "
      "ON CONFLICT (user_id, product_id) DO UPDATE "
      "SET quantity = cart_items.quantity + EXCLUDED.quantity "
      "WHERE cart_items.quantity::bigint + EXCLUDED.quantity "
      "      <= LEAST(" ECOM_CART_MAX_QTY_SQL ", (SELECT stock FROM products "
      "               WHERE id = EXCLUDED.product_id)) "
      "RETURNING id", 0 },
    { "ecom_cart_why",
      "SELECT p.stock, COALESCE(ci.quantity, 0), "
      "EXISTS (SELECT 1 FROM cart_items c2 JOIN products p2 "
      "        ON p2.id = c2.product_id WHERE c2.user_id = %s::bigint "
      "        AND p2.currency <> p.currency), "
      "(SELECT count(*) FROM cart_items c3 WHERE c3.user_id = %s::bigint) "
      "FROM products p LEFT JOIN cart_items ci "
      "ON ci.product_id = p.id AND ci.user_id = %s::bigint "
      "WHERE p.id = %s::bigint AND p.active", ECOM_STMT_READ },
    { "ecom_cart_set_qty",
      "UPDATE cart_items ci SET quantity = %s::int FROM products p "
      "WHERE ci.id = %s::bigint AND ci.user_id = %s::bigint "
      "AND p.id = ci.product_id AND p.stock >= %s::int RETURNING ci.id", 0 },
    { "ecom_cart_delete",
      "DELETE FROM cart_items WHERE id = %s::bigint AND user_id = %s::bigint",
      0 },
    { NULL, NULL, 0 }
};

static const ecom_col line_cols[] = {
    { "id", EC_INT }, { "product_id", EC_INT }, { "name", EC_STR },
    { "quantity", EC_INT }, { "unit_price", EC_INT }, { "line_total", EC_INT },
    { "currency", EC_STR }, { NULL, 0 }
};

int ecom_cart_get(ecom_req *q)
{
    const char *args[1] = { ECOM_LL(q, q->user_id) };
    const char *currency = q->dc->currency;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    long long subtotal = 0;
    json_t *items;
    int rv;

    if ((rv = ecom_db_select(q, "ecom_cart_lines", &res, 1, args))) {
        return rv;
    }
    items = ecom_json_pool(q, json_array());
    row = NULL;
    while (ecom_db_next(q, res, &row)) {
        json_array_append_new(items, ecom_row_json(q, row, line_cols, 0));
        if (ecom_money_add_line(&subtotal, ecom_db_ll(q, row, 4),
                                ecom_db_ll(q, row, 3)) != 0) {
            /* unreachable with the schema's caps; never wrap */
            return ecom_problem(q, HTTP_CONFLICT, "conflict",
                                "The cart total exceeds what an amount can "
                                "hold; remove some lines.");
        }
        currency = apr_pstrdup(q->r->pool, ecom_db_get(q, row, 6));
    }
    json_incref(items);
    return ecom_json(q, HTTP_OK,
                     json_pack("{s:o, s:I, s:i, s:I, s:s}", "items", items,
                               "subtotal", (json_int_t)subtotal,
                               "discount", 0,
                               "total", (json_int_t)subtotal,
                               "currency", currency));
}

static int send_line(ecom_req *q, long long line_id, int status)
{
    const char *args[2] = { ECOM_LL(q, line_id), ECOM_LL(q, q->user_id) };
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    int rv;

    if ((rv = ecom_db_select(q, "ecom_cart_line", &res, 2, args))) {
        return rv;
    }
    if (!(row = ecom_db_row(q, res))) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                            "No such line in your cart.");
    }
    return ecom_json(q, status, ecom_row_json(q, row, line_cols, 0));
}

static int over_stock(ecom_req *q, long long stock, long long in_cart)
{
    return ecom_problem(q, HTTP_CONFLICT, "out-of-stock",
                        apr_psprintf(q->r->pool, "Only %" APR_INT64_T_FMT " in stock "
                                     "(%" APR_INT64_T_FMT " already in your cart).",
                                     (apr_int64_t)stock, (apr_int64_t)in_cart));
}

typedef struct {
    long long product_id, qty, line_id;
} add_ctx;

/* The transaction of POST /cart/: lock, upsert, or explain the refusal. */
static int cart_add_tx(ecom_req *q, void *data)
{
    add_ctx *c = data;
    const char *args[3], *why[4];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    long long stock, in_cart;
    int rv;

    args[0] = ECOM_LL(q, q->user_id);
    if ((rv = ecom_db_select(q, "ecom_cart_lock_user", &res, 1, args))) {
        return rv;
    }
    ecom_db_row(q, res);
    args[0] = ECOM_LL(q, c->product_id);
    args[1] = ECOM_LL(q, q->user_id);
    args[2] = ECOM_LL(q, c->qty);
    if ((rv = ecom_db_select(q, "ecom_cart_add", &res, 3, args))) {
        return rv;
    }
    if ((row = ecom_db_row(q, res))) {
        c->line_id = ecom_db_ll(q, row, 0);
        return 0;
    }
    why[0] = why[1] = why[2] = ECOM_LL(q, q->user_id);
    why[3] = ECOM_LL(q, c->product_id);
    if ((rv = ecom_db_select(q, "ecom_cart_why", &res, 4, why))) {
        return rv;
    }
    if (!(row = ecom_db_row(q, res))) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such product.");
    }
    if (ecom_db_get(q, row, 2)[0] == 't') {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            "Your cart holds products in another currency.");
    }
    stock = ecom_db_ll(q, row, 0);
    in_cart = ecom_db_ll(q, row, 1);
    if (in_cart == 0 && ecom_db_ll(q, row, 3) >= ECOM_CART_MAX_LINES) {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            "Your cart is full (500 different products).");
    }
    if (in_cart + c->qty > ECOM_CART_MAX_QTY && in_cart + c->qty <= stock) {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            apr_psprintf(q->r->pool, "A cart line holds at "
                                         "most %d units (%" APR_INT64_T_FMT
                                         " already in your cart).",
                                         ECOM_CART_MAX_QTY,
                                         (apr_int64_t)in_cart));
    }
    return over_stock(q, stock, in_cart);
}

int ecom_cart_add(ecom_req *q)
{
    json_t *errs = ecom_json_pool(q, json_array());
    add_ctx c = { 0, 1, 0 };
    int rv;

    if (ecom_get_int(q->body, "product_id", 1, 999999999999999999LL,
                     &c.product_id, errs) == 0) {
        ecom_field_error(errs, "product_id", "is required");
    }
    ecom_get_int(q->body, "quantity", 1, ECOM_CART_MAX_QTY, &c.qty, errs);
    if (json_array_size(errs)) {
        return ecom_invalid(q, json_incref(errs));
    }
    if ((rv = ecom_db_tx(q, cart_add_tx, &c))) {
        return rv;
    }
    return send_line(q, c.line_id, HTTP_CREATED);
}

int ecom_cart_update(ecom_req *q)
{
    json_t *errs = ecom_json_pool(q, json_array());
    const char *args[4];
    apr_dbd_results_t *res;
    long long qty = 0;
    int rv;

    if (ecom_get_int(q->body, "quantity", 1, ECOM_CART_MAX_QTY, &qty,
                     errs) == 0) {
        ecom_field_error(errs, "quantity", "is required");
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, json_incref(errs));
    }
    args[0] = ECOM_LL(q, qty);
    args[1] = ECOM_LL(q, q->id[0]);
    args[2] = ECOM_LL(q, q->user_id);
    args[3] = args[0];
    if ((rv = ecom_db_select(q, "ecom_cart_set_qty", &res, 4, args))) {
        return rv;
    }
    if (!ecom_db_row(q, res)) {
        /* either not the caller's line (404) or not enough stock (409) */
        if ((rv = ecom_db_select(q, "ecom_cart_line", &res, 2, args + 1))) {
            return rv;
        }
        if (!ecom_db_row(q, res)) {
            return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                                "No such line in your cart.");
        }
        return ecom_problem(q, HTTP_CONFLICT, "out-of-stock",
                            "Not enough stock for that quantity.");
    }
    return send_line(q, q->id[0], HTTP_OK);
}

int ecom_cart_delete(ecom_req *q)
{
    const char *args[2] = { ECOM_LL(q, q->id[0]), ECOM_LL(q, q->user_id) };
    int rv, n = 0;

    if ((rv = ecom_db_query(q, "ecom_cart_delete", &n, 2, args))) {
        return rv;
    }
    if (n == 0) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                            "No such line in your cart.");
    }
    return ecom_no_content(q, HTTP_NO_CONTENT);
}
