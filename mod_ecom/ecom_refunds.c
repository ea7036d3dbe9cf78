/*
 * ecom_refunds.c: refunds by staff, POST /orders/{id}/refunds/
 * {amount, reason?, restock?} on a paid, shipped or delivered order.
 *
 * Refunds never sum above what was paid, whatever the concurrency: the
 * amount is added to orders.refunded_amount by one conditional UPDATE
 * (refunded_amount + amount <= paid_amount), under the order row's lock,
 * with the schema's CHECK (refunded_amount <= paid_amount) as the last
 * guard; a refund that does not fit is 422 refund-exceeds-payment with
 * what is still refundable. In the same transaction: the refund row, the
 * restock when asked (once per order: ecom_order_restock), and the move
 * to refunded (actor staff) when the refunds reach the amount paid. The
 * refund's currency is the order's: a client cannot send one.
 *
 * Refund by lines (issue 10): {lines: [order line id, ...]} instead of an
 * amount refunds those whole lines for exactly what was paid for them,
 * line_total - discount (the coupon's share of the line, split to the cent
 * at checkout, sql/023), so a discounted order's partial refunds never
 * return more than the line cost the customer. Each line is refunded by
 * lines once (refund_lines, UNIQUE per line: 409 line-already-refunded);
 * the order-wide cap above holds as well.
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_orders.h"
#include "ecom_coupons.h"
#include "ecom_metrics.h"

static const ecom_stmt refund_sql[] = {
    { "ecom_refund_add",
      "UPDATE orders SET refunded_amount = refunded_amount + %s::bigint, "
      "updated_at = now() WHERE id = %s::bigint "
      "AND refunded_amount + %s::bigint <= paid_amount "
      "RETURNING refunded_amount, paid_amount", 0 },
    { "ecom_refund_insert",
      "INSERT INTO refunds AS r (order_id, payment_id, amount, currency, "
      "reason, restock, actor_id) VALUES (%s::bigint, (SELECT max(p.id) "
      "FROM payments p WHERE p.order_id = %s::bigint "
      "AND p.status = 'succeeded'), %s::bigint, %s, %s, %s::boolean, "
      "%s::bigint) RETURNING " ECOM_REFUND_COLS, 0 },
    /* refund by lines: how many of the lines named are the order's, how
     * many were refunded by lines already, and what was paid for them */
    { "ecom_refund_lines_amount",
      "SELECT count(*), count(rl.order_line_id), "
      "COALESCE(sum(ol.line_total - ol.discount), 0) FROM order_lines ol "
      "LEFT JOIN refund_lines rl ON rl.order_line_id = ol.id "
      "WHERE ol.order_id = %s::bigint AND ol.id = ANY (%s::bigint[])", 0 },
    { "ecom_refund_lines_insert",
      "INSERT INTO refund_lines (refund_id, order_line_id, amount) "
      "SELECT %s::bigint, ol.id, ol.line_total - ol.discount "
      "FROM order_lines ol WHERE ol.order_id = %s::bigint "
      "AND ol.id = ANY (%s::bigint[])", 0 },
    { NULL, NULL, 0 }
};

typedef struct {
    long long amount;
    const char *reason;
    int restock;
    json_t *refund;
    const char *lines;     /* refund by lines: "{id,...}", distinct ids */
    long long nlines;
} refund_ctx;

/* Refund by lines: sets c->amount to what was paid for the lines, or
 * refuses (lines not of this order, refunded already, nothing paid). */
static ecom_tx_end lines_amount(ecom_req *q, refund_ctx *c, const char *oid)
{
    const char *args[2] = { oid, c->lines };
    apr_dbd_row_t *row;
    json_t *errs;
    ecom_err e = ecom_db_one(q, "ecom_refund_lines_amount", &row, 2, args);

    if (e) {
        return ecom_tx_fail(e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    if (ecom_db_ll(q, row, 0) != c->nlines) {
        errs = ecom_jarray(q);
        ecom_field_error(errs, "lines", "names a line that is not one of "
                         "this order's");
        ecom_invalid(q, errs);
        return ECOM_TX_REFUSE;
    }
    if (ecom_db_ll(q, row, 1) > 0) {
        ecom_problem(q, HTTP_CONFLICT, "line-already-refunded",
                     "A line named was refunded already.");
        return ECOM_TX_REFUSE;
    }
    c->amount = ecom_db_ll(q, row, 2);
    if (c->amount <= 0) {
        errs = ecom_jarray(q);
        ecom_field_error(errs, "lines", "nothing was paid for these lines");
        ecom_invalid(q, errs);
        return ECOM_TX_REFUSE;
    }
    return ECOM_TX_COMMIT;
}

static ecom_tx_end refund(ecom_req *q, void *data)
{
    refund_ctx *c = data;
    const char *oid = ECOM_LL(q, q->id[0]), *amount;
    const char *args[7];
    apr_dbd_row_t *row;
    ecom_order_row o;
    ecom_tx_end end = ecom_order_lock(q, q->id[0], &o);
    ecom_err e;

    if (end.err) {
        return end;
    }
    if (o.status != ECOM_ORDER_PAID && o.status != ECOM_ORDER_SHIPPED
        && o.status != ECOM_ORDER_DELIVERED) {
        return ecom_order_refuse(q, o.status, apr_psprintf(
            q->r->pool, "Only a paid, shipped or delivered order can be "
            "refunded; this one is %s.", ecom_order_state_name(o.status)));
    }
    if (c->lines && (end = lines_amount(q, c, oid)).err) {
        return end;
    }
    amount = ECOM_LL(q, c->amount);
    args[0] = amount;
    args[1] = oid;
    args[2] = amount;
    e = ecom_db_one(q, "ecom_refund_add", &row, 3, args);
    if (e == ECOM_E_NOT_FOUND || e == ECOM_E_CONSTRAINT) {
        long long left = o.paid_amount - o.refunded_amount;
        ecom_problem_with(q, HTTP_UNPROCESSABLE_ENTITY,
                          "refund-exceeds-payment",
                          apr_psprintf(q->r->pool, "Refunds may not exceed "
                                       "the amount paid; %s %s can still "
                                       "be refunded.", ECOM_LL(q, left),
                                       o.currency),
                          ecom_jown(q, json_pack(
                              "{s:I, s:I, s:I, s:s}", "refundable",
                              (json_int_t)left, "paid_amount",
                              (json_int_t)o.paid_amount, "refunded_amount",
                              (json_int_t)o.refunded_amount, "currency",
                              o.currency)));
        return ECOM_TX_REFUSE;
    }
    if (e) {
        return ecom_tx_fail(e);
    }
    o.refunded_amount = ecom_db_ll(q, row, 0);
    o.paid_amount = ecom_db_ll(q, row, 1);
    args[0] = oid;
    args[1] = oid;
    args[2] = amount;
    args[3] = o.currency;
    args[4] = c->reason;
    args[5] = c->restock ? "true" : "false";
    args[6] = ECOM_LL(q, q->user_id);
    if ((e = ecom_db_one(q, "ecom_refund_insert", &row, 7, args))) {
        return ecom_tx_fail(e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    c->refund = ecom_row_json(q, row, ecom_refund_cols, 0);
    if (c->lines) {
        int n = 0;
        args[0] = ECOM_LL(q, json_integer_value(json_object_get(c->refund,
                                                                "id")));
        args[1] = oid;
        args[2] = c->lines;
        if ((e = ecom_db_query(q, "ecom_refund_lines_insert", &n, 3, args))) {
            return ecom_tx_fail(e);
        }
        json_object_set(c->refund, "lines", json_object_get(q->body,
                                                            "lines"));
    }
    if (c->restock && (e = ecom_order_restock(q, q->id[0]))) {
        return ecom_tx_fail(e);
    }
    if (o.refunded_amount == o.paid_amount
        && (e = ecom_order_transition(q, q->id[0], o.status,
                                      ECOM_ORDER_REFUNDED,
                                      ECOM_ACTOR_STAFF))) {
        return ecom_tx_fail(e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    return ECOM_TX_COMMIT;
}

static int ecom_refund_create(ecom_req *q)
{
    static const char *const known[] = { "amount", "reason", "restock",
                                         "lines", NULL };
    json_t *errs = ecom_jarray(q);
    json_t *lines = json_object_get(q->body, "lines");
    refund_ctx c = { 0, NULL, 0, NULL, NULL, 0 };
    int rv;

    ecom_body_unknown(q, q->body, "", known, errs);
    if (lines) {
        if (ecom_get_ids(q, q->body, "lines", 500, &c.lines, &c.nlines,
                         errs) == 1 && json_object_get(q->body, "amount")) {
            ecom_field_error(errs, "amount", "give amount or lines, not "
                             "both");
        }
    }
    else if (ecom_get_int(q->body, "amount", 1, 1000000000000000LL,
                          &c.amount, errs) == 0) {
        ecom_field_error(errs, "amount", "is required (or lines)");
    }
    if (json_is_null(json_object_get(q->body, "reason"))) {
        json_object_del(q->body, "reason");
    }
    (void)ecom_get_str(q->body, "reason", 1, 500, &c.reason, errs);
    (void)ecom_get_bool(q->body, "restock", &c.restock, errs);
    if ((rv = ecom_order_write(q, errs, refund, &c))) {
        return rv;
    }
    ecom_metrics_event(q, ECOM_EV_REFUND);
    /* refunds have no URL of their own: they are listed on the order */
    apr_table_setn(q->r->headers_out, "Location",
                   ecom_url(q, "/orders/%" APR_INT64_T_FMT "/",
                            (apr_int64_t)q->id[0]));
    return ecom_json(q, HTTP_CREATED, c.refund);
}

static const ecom_route refund_routes[] = {
    { M_POST, "orders/{id}/refunds", ecom_refund_create, ECOM_AUTH_STAFF,
      ECOM_BODY | ECOM_IDEMPOTENT, 0, "refunds.create" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_refunds_resource = {
    "refunds", refund_sql, refund_routes, NULL
};
