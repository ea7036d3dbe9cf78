/*
 * ecom_cart.c: the caller's cart. Lines always show current prices; the
 * price is only frozen when an order is placed (ecom_orders.c).
 *
 * Adding is one statement, the function ecom_cart_add_as
 * (sql/006_checkout_functions.sql, sql/010_inline_auth.sql), one round trip:
 * it resolves the caller's token when the router left that to it
 * (ECOM_AUTH_INLINE), takes the account's advisory lock first, so two adds
 * of one user run one after the other (the guards below read the cart, and
 * two concurrent adds would each see it without the other's line), then
 * one upsert, in a snapshot
 * taken after the lock, raises the quantity of an existing line, guarded
 * so the resulting quantity never exceeds stock or ECOM_CART_MAX_QTY, the
 * cart never exceeds ECOM_CART_MAX_LINES lines, and every line has one
 * currency; it returns the line. When it changes nothing, a second look
 * tells "unknown product" (404) from "not enough stock", "line full",
 * "cart full" and "other currency" (409). Every statement is scoped by
 * user_id, so another user's line is simply not found (404).
 *
 * Guest carts (issue 9, ecom_guest_cart.c): every route here is flagged
 * ECOM_GUEST, and for a guest's request (q->guest) each handler runs the
 * "ecom_guest_cart_*" twin of its statement, the same SQL over
 * guest_cart_items scoped by the guest cart's id (CART_STMT, owner()); a
 * guest's add is ecom_guest_cart_add (sql/017), which also creates the
 * cart and its Cart-Token when the request sent none.
 */
#include "ecom_resource.h"
#include "ecom_auth.h"
#include "ecom_http.h"
#include "ecom_session.h"
#include "ecom_cache.h"
#include "ecom_cart.h"
#include "ecom_money.h"
#include "ecom_util.h"
#include "ecom_coupons.h"
#include "ecom_pricing.h"

/* The statement of a handler for the caller's kind of cart, and the id
 * that owns the cart: a user's, or a guest cart's (q->guest). */
#define CART_STMT(q, s) ((q)->guest ? "ecom_guest_cart_" s : "ecom_cart_" s)

static const char *owner(ecom_req *q)
{
    return ECOM_LL(q, q->guest ? q->guest_cart_id : q->user_id);
}

/* unit_price is the effective price (a sale's: ecom_pricing.h) */
#define LINE_COLS \
    "ci.id, ci.product_id, p.name, ci.quantity, " ECOM_SALE_PRICE("p") ", " \
    ECOM_SALE_PRICE("p") " * ci.quantity, p.currency"
enum { L_ID, L_PRODUCT_ID, L_NAME, L_QUANTITY, L_UNIT_PRICE, L_LINE_TOTAL,
       L_CURRENCY, L_NCOLS };
/* ecom_cart_add: LINE_COLS, then the caller (ecom_guest_cart_add: the
 * guest cart) */
enum { L_USER_ID = L_NCOLS };
/* ecom_cart_why */
enum { W_STOCK, W_IN_CART, W_OTHER_CURRENCY, W_LINES };
/* ecom_cart_set_qty */
enum { ONE_COL };

/* The add functions (sql/010, sql/017) answer the line at the list price:
 * the effective price of the product added instead (issue 10), in the
 * same statement; the last column is the caller (user or guest cart). */
#define ADD_COLS(caller) \
    "a.id, a.product_id, a.name, a.quantity, " \
    "ecom_sale_price(a.unit_price, sale.percent_off), " \
    "ecom_sale_price(a.unit_price, sale.percent_off) * a.quantity, " \
    "a.currency, " caller
/* The product's category by a join, not a subquery among ecom_sale's
 * arguments: PostgreSQL inlines a set-returning SQL function only when its
 * arguments hold no subquery, and otherwise parses and plans its body on
 * every call (0.5 ms of each add under the mix, issue 7). */
#define ADD_SALE \
    "LEFT JOIN products sp ON sp.id = a.product_id " \
    "LEFT JOIN LATERAL ecom_sale(a.product_id, sp.category_id) sale ON true"

static const ecom_stmt cart_sql[] = {
    { "ecom_cart_lines",
      "SELECT " LINE_COLS " FROM cart_items ci "
      "JOIN products p ON p.id = ci.product_id " ECOM_SALE_JOIN("p")
      "WHERE ci.user_id = %s::bigint ORDER BY ci.id", ECOM_STMT_READ },
    { "ecom_cart_line",
      "SELECT " LINE_COLS " FROM cart_items ci "
      "JOIN products p ON p.id = ci.product_id " ECOM_SALE_JOIN("p")
      "WHERE ci.id = %s::bigint AND ci.user_id = %s::bigint", ECOM_STMT_READ },
    /* the caller (by id, or by the token's hash: ECOM_AUTH_INLINE), lock,
     * guarded upsert and the line (LINE_COLS, then user_id) in one round
     * trip: sql/006_checkout_functions.sql, sql/010_inline_auth.sql */
    { "ecom_cart_add",
      "SELECT " ADD_COLS("a.user_id") " FROM ecom_cart_add_as(%s::bigint, %s, %s::bigint, "
      "%s::int, " ECOM_CART_MAX_LINES_SQL ", " ECOM_CART_MAX_QTY_SQL ") a "
      ADD_SALE, 0 },
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
    /* the guest carts' twins of the statements above (sql/017) */
    { "ecom_guest_cart_lines",
      "SELECT " LINE_COLS " FROM guest_cart_items ci "
      "JOIN products p ON p.id = ci.product_id " ECOM_SALE_JOIN("p")
      "WHERE ci.cart_id = %s::bigint ORDER BY ci.id", ECOM_STMT_READ },
    { "ecom_guest_cart_line",
      "SELECT " LINE_COLS " FROM guest_cart_items ci "
      "JOIN products p ON p.id = ci.product_id " ECOM_SALE_JOIN("p")
      "WHERE ci.id = %s::bigint AND ci.cart_id = %s::bigint", ECOM_STMT_READ },
    { "ecom_guest_cart_add",
      "SELECT " ADD_COLS("a.cart_id") " FROM ecom_guest_cart_add(%s, %s::boolean, "
      "%s::int, %s::bigint, %s::int, " ECOM_CART_MAX_LINES_SQL ", "
      ECOM_CART_MAX_QTY_SQL ") a " ADD_SALE, 0 },
    { "ecom_guest_cart_why",
      "SELECT p.stock, COALESCE(ci.quantity, 0), "
      "EXISTS (SELECT 1 FROM guest_cart_items c2 JOIN products p2 "
      "        ON p2.id = c2.product_id WHERE c2.cart_id = %s::bigint "
      "        AND p2.currency <> p.currency), "
      "(SELECT count(*) FROM guest_cart_items c3 "
      " WHERE c3.cart_id = %s::bigint) "
      "FROM products p LEFT JOIN guest_cart_items ci "
      "ON ci.product_id = p.id AND ci.cart_id = %s::bigint "
      "WHERE p.id = %s::bigint AND p.active", ECOM_STMT_READ },
    { "ecom_guest_cart_set_qty",
      "UPDATE guest_cart_items ci SET quantity = %s::int FROM products p "
      "WHERE ci.id = %s::bigint AND ci.cart_id = %s::bigint "
      "AND p.id = ci.product_id AND p.stock >= %s::int RETURNING ci.id", 0 },
    { "ecom_guest_cart_delete",
      "DELETE FROM guest_cart_items WHERE id = %s::bigint "
      "AND cart_id = %s::bigint", 0 },
    { NULL, NULL, 0 }
};

static const ecom_col line_cols[] = {
    [L_ID] = { "id", EC_INT }, [L_PRODUCT_ID] = { "product_id", EC_INT },
    [L_NAME] = { "name", EC_STR }, [L_QUANTITY] = { "quantity", EC_INT },
    [L_UNIT_PRICE] = { "unit_price", EC_INT },
    [L_LINE_TOTAL] = { "line_total", EC_INT },
    [L_CURRENCY] = { "currency", EC_STR }, [L_NCOLS] = { NULL, 0 }
};

int ecom_cart_send(ecom_req *q)
{
    const char *args[1] = { owner(q) };
    const char *currency = q->dc->currency;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    long long subtotal = 0, discount = 0;
    json_t *items, *coupon = NULL;
    ecom_err e;
    int rv;

    if ((e = ecom_db_select(q, CART_STMT(q, "lines"), &res, 1, args))) {
        return ecom_fail(q, e);
    }
    items = ecom_jarray(q);
    row = NULL;
    while (ecom_db_next(q, res, &row)) {
        json_array_append(items, ecom_row_json(q, row, line_cols, 0));
        if (ecom_money_add_line(&subtotal, ecom_db_ll(q, row, L_UNIT_PRICE),
                                ecom_db_ll(q, row, L_QUANTITY)) != 0) {
            /* unreachable with the schema's caps; never wrap */
            return ecom_problem(q, HTTP_CONFLICT, "conflict",
                                "The cart total exceeds what an amount can "
                                "hold; remove some lines.");
        }
        currency = apr_pstrdup(q->r->pool, ecom_db_get(q, row, L_CURRENCY));
    }
    /* issue 10: an account's cart may hold a coupon (ecom_coupons.c) */
    if (!q->guest && (rv = ecom_cart_coupon(q, subtotal, currency, &coupon,
                                            &discount))) {
        return rv;
    }
    return ecom_json(q, HTTP_OK,
                     ecom_jown(q, json_pack("{s:O, s:I, s:I, s:I, s:s, s:O?}",
                                            "items", items,
                                            "subtotal", (json_int_t)subtotal,
                                            "discount", (json_int_t)discount,
                                            "total",
                                            (json_int_t)(subtotal - discount),
                                            "currency", currency,
                                            "coupon", coupon)));
}

static int send_line(ecom_req *q, long long line_id, int status)
{
    const char *args[2] = { ECOM_LL(q, line_id), owner(q) };
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, CART_STMT(q, "line"), &row, 2, args);

    if (e == ECOM_E_NOT_FOUND) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                            "No such line in your cart.");
    }
    if (e) {
        return ecom_fail(q, e);
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

/* Why ecom_cart_add refused the add: 404, or 409 with the reason. Read
 * after the refusal, so a change in between may show: the refusal itself
 * was decided under the user's lock. */
static int add_refused(ecom_req *q, long long product_id, long long qty)
{
    const char *why[4];
    apr_dbd_row_t *row;
    long long stock, in_cart;
    ecom_err e;

    why[0] = why[1] = why[2] = owner(q);
    why[3] = ECOM_LL(q, product_id);
    e = ecom_db_one(q, CART_STMT(q, "why"), &row, 4, why);
    if (e == ECOM_E_NOT_FOUND) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such product.");
    }
    if (e) {
        return ecom_fail(q, e);
    }
    if (ecom_db_bool(q, row, W_OTHER_CURRENCY)) {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            "Your cart holds products in another currency.");
    }
    stock = ecom_db_ll(q, row, W_STOCK);
    in_cart = ecom_db_ll(q, row, W_IN_CART);
    if (in_cart == 0 && ecom_db_ll(q, row, W_LINES) >= ECOM_CART_MAX_LINES) {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            "Your cart is full (500 different products).");
    }
    if (in_cart + qty > ECOM_CART_MAX_QTY && in_cart + qty <= stock) {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            apr_psprintf(q->r->pool, "A cart line holds at "
                                         "most %d units (%" APR_INT64_T_FMT
                                         " already in your cart).",
                                         ECOM_CART_MAX_QTY,
                                         (apr_int64_t)in_cart));
    }
    return over_stock(q, stock, in_cart);
}

/* A guest's add: ecom_guest_cart_add (sql/017) finds and locks the cart
 * of the Cart-Token, or creates one for the token made by
 * ecom_guest_authenticate (kept only when the line is added, and then
 * answered in the Cart-Token header). */
static int guest_add(ecom_req *q, long long product_id, long long qty)
{
    const char *args[5];
    apr_dbd_row_t *row;
    ecom_err e;

    args[0] = q->guest_hash;
    args[1] = q->guest_new_token ? "true" : "false";
    args[2] = apr_itoa(q->r->pool, q->sc->guest_cart_lifetime);
    args[3] = ECOM_LL(q, product_id);
    args[4] = ECOM_LL(q, qty);
    if ((e = ecom_db_one(q, "ecom_guest_cart_add", &row, 5, args))) {
        return ecom_fail(q, e);
    }
    if (!ecom_db_get(q, row, L_USER_ID)) {
        return ecom_guest_rejected(q);
    }
    q->guest_cart_id = ecom_db_ll(q, row, L_USER_ID);
    if (!ecom_db_get(q, row, L_ID)) {
        return add_refused(q, product_id, qty);
    }
    if (q->guest_new_token) {
        apr_table_setn(q->r->headers_out, "Cart-Token", q->guest_new_token);
        /* with EcomSessions On, a browser's session keeps it too */
        ecom_session_keep_cart(q, q->guest_new_token);
    }
    return ecom_json(q, HTTP_CREATED, ecom_row_json(q, row, line_cols, 0));
}

static int ecom_cart_add(ecom_req *q)
{
    json_t *errs = ecom_jarray(q);
    long long product_id = 0, qty = 1;
    const char *args[4];
    apr_dbd_row_t *row;
    ecom_err e;
    int rv;

    if (ecom_get_int(q->body, "product_id", 1, 999999999999999999LL,
                     &product_id, errs) == 0) {
        ecom_field_error(errs, "product_id", "is required");
    }
    ecom_get_int(q->body, "quantity", 1, ECOM_CART_MAX_QTY, &qty, errs);
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    if (q->guest) {
        return guest_add(q, product_id, qty);
    }
    args[0] = q->token_hash ? NULL : ECOM_LL(q, q->user_id);
    args[1] = q->token_hash;
    args[2] = ECOM_LL(q, product_id);
    args[3] = ECOM_LL(q, qty);
    /* always one row: the line, or who refused (no line), or no one */
    if ((e = ecom_db_one(q, "ecom_cart_add", &row, 4, args))) {
        return ecom_fail(q, e);
    }
    if ((rv = ecom_auth_resolved(q, ecom_db_get(q, row, L_USER_ID)))) {
        return rv;
    }
    if (!ecom_db_get(q, row, L_ID)) {
        return add_refused(q, product_id, qty);
    }
    return ecom_json(q, HTTP_CREATED, ecom_row_json(q, row, line_cols, 0));
}

static int ecom_cart_update(ecom_req *q)
{
    json_t *errs = ecom_jarray(q);
    const char *args[4];
    apr_dbd_row_t *row;
    long long qty = 0;
    ecom_err e;

    if (ecom_get_int(q->body, "quantity", 1, ECOM_CART_MAX_QTY, &qty,
                     errs) == 0) {
        ecom_field_error(errs, "quantity", "is required");
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    args[0] = ECOM_LL(q, qty);
    args[1] = ECOM_LL(q, q->id[0]);
    args[2] = owner(q);
    args[3] = args[0];
    e = ecom_db_one(q, CART_STMT(q, "set_qty"), &row, 4, args);
    if (e == ECOM_E_NOT_FOUND) {
        /* either not the caller's line (404) or not enough stock (409) */
        e = ecom_db_one(q, CART_STMT(q, "line"), &row, 2, args + 1);
        if (e == ECOM_E_NOT_FOUND) {
            return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                                "No such line in your cart.");
        }
        if (e == ECOM_OK) {
            return ecom_problem(q, HTTP_CONFLICT, "out-of-stock",
                                "Not enough stock for that quantity.");
        }
    }
    if (e) {
        return ecom_fail(q, e);
    }
    return send_line(q, q->id[0], HTTP_OK);
}

static int ecom_cart_delete(ecom_req *q)
{
    const char *args[2] = { ECOM_LL(q, q->id[0]), owner(q) };
    ecom_err e;
    int n = 0;

    if ((e = ecom_db_query(q, CART_STMT(q, "delete"), &n, 2, args))) {
        return ecom_fail(q, e);
    }
    if (n == 0) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                            "No such line in your cart.");
    }
    return ecom_no_content(q, HTTP_NO_CONTENT);
}

static const ecom_route cart_routes[] = {
    { M_GET, "cart", ecom_cart_send, ECOM_AUTH_USER, ECOM_GUEST, 0,
      "cart.get" },
    { M_POST, "cart", ecom_cart_add, ECOM_AUTH_USER,
      ECOM_BODY | ECOM_IDEMPOTENT | ECOM_AUTH_INLINE | ECOM_GUEST, 0,
      "cart.add" },
    { M_PATCH, "cart/{id}", ecom_cart_update, ECOM_AUTH_USER,
      ECOM_BODY | ECOM_GUEST, 0, "cart.update" },
    { M_DELETE, "cart/{id}", ecom_cart_delete, ECOM_AUTH_USER, ECOM_GUEST, 0,
      "cart.delete" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_cart_resource = {
    "cart", cart_sql, cart_routes, NULL
};
