/*
 * ecom_payments.c: paying an order (POST /orders/{id}/payments/) and the
 * payment provider's signed webhook (POST /payments/webhook/).
 *
 * Paying runs in one transaction:
 *   1. lock the caller's order row (FOR UPDATE, scoped by user_id: another
 *      user's order is a 404); not pending: 409 invalid-state; a payment
 *      still processing (or succeeded): 409 payment-in-progress;
 *   2. charge the order's total, never an amount from the client, through
 *      the configured provider (ecom_payment.h);
 *   3. record the payment; on success set orders.paid_amount and move the
 *      order pending -> paid with its event (actor user), in the same
 *      statement (ecom_pay_write, written as ecom_order_transition writes
 *      a move). Steps 1 and 3 are one round trip each
 *      (sql/009_perf_payment.sql).
 * A declined charge is a 402 whose payment row is COMMITTED
 * (ECOM_TX_COMMIT_REFUSAL, ecom_db.h): the attempt stays on the order,
 * which stays pending and can be paid again. An invalid token (422) and an
 * unreachable provider (503) record nothing. The order row lock serialises
 * concurrent payments of one order; the schema's payments_one_live index
 * (one processing-or-succeeded payment per order) is the last guard, and
 * its unique violation is a 409 too, never a 500.
 *
 * A webhook delivery (already authenticated by its Ecom-Signature in the
 * router) runs in one transaction too. Lock order, as everywhere an order
 * and its payments are both locked: the order row first, then the payment
 * row. Then the event id is recorded in webhook_events (ON CONFLICT DO
 * NOTHING): a delivery whose id is already there changes nothing (200,
 * outcome "duplicate"). Outcomes:
 *   - payment.succeeded of a processing payment: the payment succeeds,
 *     paid_amount is set and the order moves pending -> paid (actor
 *     provider). When the order is no longer pending (cancelled meanwhile,
 *     e.g. by the payment timeout), the money was still taken: the payment
 *     is recorded succeeded, paid_amount set, and a full refund row written
 *     with refunded_amount = paid_amount, so the books balance; the order
 *     keeps its state (outcome "refunded");
 *   - payment.failed of a processing payment: the payment fails, the order
 *     stays pending and can be paid again;
 *   - a payment already final, or a type this module does not know:
 *     recorded "ignored", nothing else changes;
 *   - an unknown payment: 404, nothing recorded (the provider retries).
 * Log tags ECOM07xx.
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_orders.h"
#include "ecom_payment.h"
#include "ecom_metrics.h"

#include "ap_provider.h"

/* The Payment object, as the API shows it (see payment_json). */
#define PAYMENT_COLS \
    "id, order_id, provider, status, amount, currency, " \
    ECOM_TS("created_at") ", failure_reason"
enum { P_ID, P_ORDER_ID, P_PROVIDER, P_STATUS, P_AMOUNT, P_CURRENCY,
       P_CREATED_AT, P_FAILURE_REASON };

/* ecom_pay_lock */
enum { PO_STATUS, PO_TOTAL, PO_CURRENCY, PO_LIVE };
/* ecom_pay_write: PAYMENT_COLS, then whether the order moved to paid */
enum { PW_PAID = P_FAILURE_REASON + 1 };
/* ecom_wh_payment_lock */
enum { WP_ORDER_ID, WP_STATUS, WP_AMOUNT, WP_CURRENCY };

#define LATE_REFUND_REASON \
    "payment succeeded after the order was no longer pending"

static const ecom_stmt payment_sql[] = {
    /* step 1 in one round trip: the order row (FOR UPDATE, the caller's
     * only), then, after the lock, whether a payment is live
     * (sql/009_perf_payment.sql) */
    { "ecom_pay_lock",
      "SELECT status, total, currency, live "
      "FROM ecom_pay_lock(%s::bigint, %s::bigint)", 0 },
    /* step 3 in one round trip: the payment, and when it succeeded
     * paid_amount and the move pending -> paid with its order event (actor
     * user), written as ecom_order_transition() writes them: conditional
     * on the status, so the move cannot happen twice; the row is locked
     * and pending, so it cannot miss either (the caller checks). The
     * order is found by its key, never through a join with the new
     * payment, and its status is a parameter: a literal 'pending' lets
     * the generic plan walk the partial index of pending orders
     * (orders_pending_created) when its statistics say it is small */
    { "ecom_pay_write",
      "WITH p AS (INSERT INTO payments (order_id, provider, provider_ref, "
      "status, amount, currency, failure_reason) VALUES (%s::bigint, %s, %s, "
      "%s, %s::bigint, %s, %s) RETURNING id, order_id, provider, status, "
      "amount, currency, created_at, failure_reason), "
      "paid AS (UPDATE orders o SET paid_amount = o.paid_amount + %s::bigint, "
      "status = 'paid', updated_at = now() WHERE o.id = %s::bigint "
      "AND o.status = %s AND %s = 'succeeded' RETURNING o.id), "
      "ev AS (INSERT INTO order_events (order_id, actor_id, from_status, "
      "to_status, actor) SELECT id, %s::bigint, 'pending', 'paid', 'user' "
      "FROM paid RETURNING 1) "
      "SELECT id, order_id, provider, status, amount, currency, "
      ECOM_TS("created_at") ", failure_reason, "
      "(SELECT count(*) FROM paid) + (SELECT count(*) FROM ev) FROM p", 0 },
    { "ecom_pay_order_paid",
      "UPDATE orders SET paid_amount = paid_amount + %s::bigint "
      "WHERE id = %s::bigint", 0 },
    /* webhook: the order of the payment, then the payment (lock order) */
    { "ecom_wh_order_lock",
      "SELECT o.status FROM orders o WHERE o.id = "
      "(SELECT order_id FROM payments WHERE id = %s::bigint) FOR UPDATE", 0 },
    { "ecom_wh_payment_lock",
      "SELECT order_id, status, amount, currency FROM payments "
      "WHERE id = %s::bigint FOR UPDATE", 0 },
    { "ecom_wh_record",
      "INSERT INTO webhook_events (id, type, payment_id, outcome) "
      "VALUES (%s, %s, %s::bigint, %s) ON CONFLICT (id) DO NOTHING "
      "RETURNING 1", 0 },
    { "ecom_wh_payment_set",
      "UPDATE payments SET status = %s, failure_reason = %s, "
      "updated_at = now() WHERE id = %s::bigint AND status = 'processing'",
      0 },
    /* the money of a payment that succeeded too late comes back in full:
     * paid and refunded grow together, and the refund row says why */
    { "ecom_wh_late_refund",
      "WITH o AS (UPDATE orders SET paid_amount = paid_amount + %s::bigint, "
      "           refunded_amount = refunded_amount + %s::bigint, "
      "           updated_at = now() WHERE id = %s::bigint RETURNING id) "
      "INSERT INTO refunds (order_id, payment_id, amount, currency, status, "
      "reason) SELECT o.id, %s::bigint, %s::bigint, %s, 'succeeded', '"
      LATE_REFUND_REASON "' FROM o WHERE %s::bigint > 0", 0 },
    { NULL, NULL, 0 }
};

static const ecom_col payment_cols[] = {
    [P_ID] = { "id", EC_INT }, [P_ORDER_ID] = { "order_id", EC_INT },
    [P_PROVIDER] = { "provider", EC_STR }, [P_STATUS] = { "status", EC_STR },
    [P_AMOUNT] = { "amount", EC_INT }, [P_CURRENCY] = { "currency", EC_STR },
    [P_CREATED_AT] = { "created_at", EC_TIME },
    [P_FAILURE_REASON] = { "failure_reason", EC_STR_NULL },
    { NULL, 0 }
};

/* ---- the provider registry (ecom_payment.h) ---- */

const ecom_payment_provider *ecom_payment_provider_find(const char *name)
{
    return name ? ap_lookup_provider(ECOM_PAYMENT_GROUP, name,
                                     ECOM_PAYMENT_VERSION) : NULL;
}

const char *ecom_payment_provider_names(apr_pool_t *p)
{
    /* an array of ap_list_provider_names_t structs, not of pointers */
    apr_array_header_t *all = ap_list_provider_names(p, ECOM_PAYMENT_GROUP,
                                                     ECOM_PAYMENT_VERSION);
    apr_array_header_t *names = apr_array_make(p, 4, sizeof(const char *));

    for (int i = 0; all && i < all->nelts; i++) {
        APR_ARRAY_PUSH(names, const char *) =
            APR_ARRAY_IDX(all, i, ap_list_provider_names_t).provider_name;
    }
    return names->nelts ? apr_array_pstrcat(p, names, ',') : "none";
}

/* ---- paying ---- */

/* A payment row (PAYMENT_COLS) as the API shows it: failure_reason only
 * on a failed payment. */
static json_t *payment_json(ecom_req *q, apr_dbd_row_t *row)
{
    json_t *j = ecom_row_json(q, row, payment_cols, 0);

    if (json_is_null(json_object_get(j, "failure_reason"))) {
        json_object_del(j, "failure_reason");
    }
    return j;
}

typedef struct {
    const ecom_payment_provider *provider;
    const char *token;
    json_t *payment;        /* the recorded payment */
    int status;             /* 201 or 202 once committed */
} pay_ctx;

static int order_not_payable(ecom_req *q, const char *status)
{
    return ecom_problem(q, HTTP_CONFLICT, "invalid-state",
                        apr_psprintf(q->r->pool, "The order is %s; only a "
                                     "pending order can be paid.", status));
}

static int payment_in_progress(ecom_req *q)
{
    return ecom_problem(q, HTTP_CONFLICT, "payment-in-progress",
                        "The order already has a payment that is processing "
                        "or succeeded; wait for its outcome.");
}

/* Steps 1 and 2; 0 with *out and the order's total and currency filled,
 * or the status of the refusal set, or -1 with *e set. */
static int lock_and_charge(ecom_req *q, pay_ctx *c, ecom_pay_outcome *out,
                           long long *total, const char **currency,
                           ecom_err *e)
{
    const char *args[2] = { ECOM_LL(q, q->id[0]), ECOM_LL(q, q->user_id) };
    apr_dbd_row_t *row;
    const char *status;

    *e = ecom_db_one(q, "ecom_pay_lock", &row, 2, args);
    if (*e == ECOM_E_NOT_FOUND) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such order.");
    }
    if (*e) {
        return -1;
    }
    status = ecom_db_get(q, row, PO_STATUS);
    *total = ecom_db_ll(q, row, PO_TOTAL);
    *currency = ecom_db_get(q, row, PO_CURRENCY);
    if (strcmp(status, "pending") != 0) {
        return order_not_payable(q, status);
    }
    if (ecom_db_bool(q, row, PO_LIVE)) {
        return payment_in_progress(q);
    }
    c->provider->charge(q->r->pool, q->id[0], *total, *currency, c->token,
                        out);
    switch (out->status) {
    case ECOM_PAY_INVALID_TOKEN: {
        json_t *errs = ecom_jarray(q);
        ecom_field_error(errs, "token", apr_psprintf(q->r->pool, "is not a "
                         "token the %s provider accepts", c->provider->name));
        return ecom_invalid(q, errs);
    }
    case ECOM_PAY_UNAVAILABLE:
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r, "ECOM0702: payment "
                      "provider %s unavailable for order %" APR_INT64_T_FMT,
                      c->provider->name, (apr_int64_t)q->id[0]);
        apr_table_setn(q->r->err_headers_out, "Retry-After", "5");
        return ecom_problem(q, HTTP_SERVICE_UNAVAILABLE,
                            "payment-provider-unavailable",
                            "The payment provider could not be reached; "
                            "nothing was charged. Try again shortly.");
    case ECOM_PAY_SUCCEEDED:
    case ECOM_PAY_PROCESSING:
    case ECOM_PAY_DECLINED:
        return 0;
    default:
        break;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "ECOM0703: payment "
                  "provider %s returned an unknown outcome %d",
                  c->provider->name, (int)out->status);
    *e = ECOM_E_INTERNAL;
    return -1;
}

static ecom_tx_end pay(ecom_req *q, void *data)
{
    pay_ctx *c = data;
    ecom_pay_outcome out = { ECOM_PAY_UNAVAILABLE, NULL, NULL };
    const char *currency = NULL, *args[12];
    long long total = 0;
    apr_dbd_row_t *row;
    ecom_err e = ECOM_OK;
    int rv;

    if ((rv = lock_and_charge(q, c, &out, &total, &currency, &e))) {
        return rv > 0 ? ECOM_TX_REFUSE : ecom_tx_fail(e);
    }
    args[0] = ECOM_LL(q, q->id[0]);
    args[1] = c->provider->name;
    args[2] = out.reference;
    args[3] = out.status == ECOM_PAY_SUCCEEDED ? "succeeded"
              : out.status == ECOM_PAY_PROCESSING ? "processing" : "failed";
    args[4] = ECOM_LL(q, total);
    args[5] = currency;
    args[6] = out.status == ECOM_PAY_DECLINED
              ? (out.reason ? out.reason : "declined") : NULL;
    args[7] = args[4];
    args[8] = args[0];
    args[9] = ecom_order_state_name(ECOM_ORDER_PENDING);
    args[10] = args[3];
    args[11] = ECOM_LL(q, q->user_id);
    e = ecom_db_one(q, "ecom_pay_write", &row, 12, args);
    if (e == ECOM_E_CONFLICT) {
        /* payments_one_live: a live payment slipped past the lock */
        payment_in_progress(q);
        return ECOM_TX_REFUSE;
    }
    if (e) {
        return ecom_tx_fail(e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    c->payment = payment_json(q, row);
    if (out.status == ECOM_PAY_SUCCEEDED && ecom_db_ll(q, row, PW_PAID) != 2) {
        /* the order row is locked and pending: the move cannot miss */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "ECOM0706: order %"
                      APR_INT64_T_FMT " was not moved to paid",
                      (apr_int64_t)q->id[0]);
        return ecom_tx_fail(ECOM_E_INTERNAL);
    }
    if (out.status == ECOM_PAY_DECLINED) {
        ecom_problem_with(q, HTTP_PAYMENT_REQUIRED, "payment-declined",
                          apr_pstrcat(q->r->pool, "The payment was declined ("
                                      , args[6], "); the order is still "
                                      "pending and can be paid again.", NULL),
                          ecom_jown(q, json_pack("{s:O}", "payment",
                                                 c->payment)));
        /* the failed attempt is recorded and shown on the order */
        ecom_metrics_event(q, ECOM_EV_PAYMENT_FAILED);
        return ECOM_TX_COMMIT_REFUSAL;
    }
    if (out.status == ECOM_PAY_PROCESSING) {
        c->status = HTTP_ACCEPTED;
        ecom_metrics_event(q, ECOM_EV_PAYMENT_PROCESSING);
        return ECOM_TX_COMMIT;
    }
    c->status = HTTP_CREATED;
    ecom_metrics_event(q, ECOM_EV_PAYMENT_SUCCEEDED);
    return ECOM_TX_COMMIT;
}

/* Fields a client may never set on a payment (mass assignment). */
static const char *const not_settable[] = {
    "amount", "status", "provider", "currency", "order_id", "id", NULL
};

static int ecom_payment_create(ecom_req *q)
{
    pay_ctx c = { NULL, NULL, NULL, 0 };
    json_t *errs = ecom_jarray(q);
    ecom_err e;
    int rv;

    for (const char *const *f = not_settable; *f; f++) {
        if (json_object_get(q->body, *f)) {
            ecom_field_error(errs, *f, "may not be set: a payment is always "
                             "of the order's total, through the configured "
                             "provider");
        }
    }
    rv = ecom_get_str(q->body, "token", 1, 255, &c.token, errs);
    if (rv == 0) {
        ecom_field_error(errs, "token", "is required");
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    if (!(c.provider = ecom_payment_provider_find(q->sc->payment_provider))) {
        /* refused at start-up (ECOM0701): cannot happen */
        return ecom_fail(q, ECOM_E_INTERNAL);
    }
    if ((e = ecom_db_tx(q, pay, &c))) {
        return ecom_fail(q, e);
    }
    apr_table_setn(q->r->headers_out, "Location",
                   ecom_url(q, "/orders/%" APR_INT64_T_FMT "/",
                            (apr_int64_t)q->id[0]));
    return ecom_json(q, c.status, c.payment);
}

/* ---- the webhook ---- */

typedef enum { EV_UNKNOWN, EV_SUCCEEDED, EV_FAILED } event_kind;

typedef struct {
    const char *id;
    const char *type;
    event_kind kind;
    long long payment_id;      /* 0: none given (unknown types only) */
    const char *outcome;       /* the answer's */
} hook_ctx;

/* Records the delivery; 1 when it is new, 0 when its id was already
 * there (then nothing else may change), -1 with *e set. */
static int record(ecom_req *q, const hook_ctx *h, const char *outcome,
                  ecom_err *e)
{
    const char *args[4] = { h->id, h->type,
                            h->payment_id ? ECOM_LL(q, h->payment_id) : NULL,
                            outcome };
    apr_dbd_row_t *row;

    *e = ecom_db_one(q, "ecom_wh_record", &row, 4, args);
    if (*e == ECOM_E_NOT_FOUND) {
        *e = ECOM_OK;
        return 0;
    }
    return *e ? -1 : 1;
}

/* payment.succeeded or payment.failed of a processing payment, whose
 * order (in order_status) and payment rows are locked. */
static ecom_err apply(ecom_req *q, hook_ctx *h, const char *order_status,
                      apr_dbd_row_t *pay)
{
    long long order_id = ecom_db_ll(q, pay, WP_ORDER_ID);
    const char *amount = ecom_db_get(q, pay, WP_AMOUNT);
    const char *args[7];
    ecom_err e;

    args[0] = h->kind == EV_SUCCEEDED ? "succeeded" : "failed";
    args[1] = h->kind == EV_FAILED ? "reported failed by the provider" : NULL;
    args[2] = ECOM_LL(q, h->payment_id);
    if ((e = ecom_db_query(q, "ecom_wh_payment_set", NULL, 3, args))) {
        return e;
    }
    /* counted once the transaction commits (ecom_metrics.h) */
    ecom_metrics_event(q, h->kind == EV_FAILED ? ECOM_EV_PAYMENT_FAILED
                                               : ECOM_EV_PAYMENT_SUCCEEDED);
    if (h->kind == EV_FAILED) {
        return ECOM_OK;
    }
    if (strcmp(order_status, "pending") == 0) {
        args[0] = amount;
        args[1] = ECOM_LL(q, order_id);
        if ((e = ecom_db_query(q, "ecom_pay_order_paid", NULL, 2, args))) {
            return e;
        }
        e = ecom_order_transition(q, order_id, ECOM_ORDER_PENDING,
                                  ECOM_ORDER_PAID, ECOM_ACTOR_PROVIDER);
        return e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e;
    }
    /* too late: the money goes back in full (see the top of the file) */
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, q->r, "ECOM0704: payment %"
                  APR_INT64_T_FMT " succeeded for order %" APR_INT64_T_FMT
                  " which is %s: recorded and refunded in full",
                  (apr_int64_t)h->payment_id, (apr_int64_t)order_id,
                  order_status);
    args[0] = args[1] = args[4] = args[6] = amount;
    args[2] = ECOM_LL(q, order_id);
    args[3] = ECOM_LL(q, h->payment_id);
    args[5] = ecom_db_get(q, pay, WP_CURRENCY);
    h->outcome = "refunded";
    ecom_metrics_event(q, ECOM_EV_REFUND);
    return ecom_db_query(q, "ecom_wh_late_refund", NULL, 7, args);
}

static ecom_tx_end receive(ecom_req *q, void *data)
{
    hook_ctx *h = data;
    const char *args[1];
    const char *order_status, *pay_status;
    apr_dbd_row_t *row;
    ecom_err e;
    int fresh;

    if (h->kind == EV_UNKNOWN) {
        fresh = record(q, h, "ignored", &e);
        h->outcome = fresh ? "ignored" : "duplicate";
        return fresh < 0 ? ecom_tx_fail(e) : ECOM_TX_COMMIT;
    }
    args[0] = ECOM_LL(q, h->payment_id);
    e = ecom_db_one(q, "ecom_wh_order_lock", &row, 1, args);
    if (e == ECOM_E_NOT_FOUND) {
        ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such payment.");
        return ECOM_TX_REFUSE;
    }
    if (e) {
        return ecom_tx_fail(e);
    }
    order_status = apr_pstrdup(q->r->pool, ecom_db_get(q, row, 0));
    if ((e = ecom_db_one(q, "ecom_wh_payment_lock", &row, 1, args))) {
        /* payments are never deleted (ON DELETE RESTRICT) */
        return ecom_tx_fail(e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    pay_status = ecom_db_get(q, row, WP_STATUS);
    h->outcome = strcmp(pay_status, "processing") == 0 ? "applied"
                                                        : "ignored";
    fresh = record(q, h, h->outcome, &e);
    if (fresh <= 0) {
        h->outcome = "duplicate";
        return fresh < 0 ? ecom_tx_fail(e) : ECOM_TX_COMMIT;
    }
    if (strcmp(h->outcome, "applied") == 0
        && (e = apply(q, h, order_status, row))) {
        return ecom_tx_fail(e);
    }
    return ECOM_TX_COMMIT;
}

/* The body's shape: {id, type, data: {payment_id}} (data may be anything
 * for a type this module does not know). 0 or the status of the 422. */
static int parse_event(ecom_req *q, hook_ctx *h)
{
    json_t *errs = ecom_jarray(q);
    json_t *data = json_object_get(q->body, "data");

    if (ecom_get_str(q->body, "id", 1, 255, &h->id, errs) == 0) {
        ecom_field_error(errs, "id", "is required");
    }
    if (ecom_get_str(q->body, "type", 1, 100, &h->type, errs) == 0) {
        ecom_field_error(errs, "type", "is required");
    }
    if (h->type) {
        h->kind = strcmp(h->type, "payment.succeeded") == 0 ? EV_SUCCEEDED
                  : strcmp(h->type, "payment.failed") == 0 ? EV_FAILED
                  : EV_UNKNOWN;
    }
    if (h->kind != EV_UNKNOWN) {
        if (!json_is_object(data)) {
            ecom_field_error(errs, "data", "must be an object with a "
                             "payment_id");
        }
        else if (ecom_get_int(data, "payment_id", 1, INT64_MAX,
                              &h->payment_id, errs) == 0) {
            ecom_field_error(errs, "payment_id", "is required");
        }
    }
    else if (json_is_object(data)) {
        /* an unknown type's data is not ours to judge: its payment_id is
         * kept with the record when it is one */
        json_t *v = json_object_get(data, "payment_id");
        if (json_is_integer(v) && json_integer_value(v) > 0) {
            h->payment_id = json_integer_value(v);
        }
    }
    return json_array_size(errs) ? ecom_invalid(q, errs) : 0;
}

static int ecom_payment_webhook(ecom_req *q)
{
    hook_ctx h = { NULL, NULL, EV_UNKNOWN, 0, NULL };
    ecom_err e;
    int rv;

    if ((rv = parse_event(q, &h))) {
        return rv;
    }
    if ((e = ecom_db_tx(q, receive, &h))) {
        return ecom_fail(q, e);
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, "ECOM0705: webhook event "
                  "%s (%s): %s", h.id, h.type, h.outcome);
    return ecom_json(q, HTTP_OK, ecom_jown(q, json_pack("{s:b, s:s}",
                                                        "received", 1,
                                                        "outcome",
                                                        h.outcome)));
}

static const ecom_route payment_routes[] = {
    { M_POST, "orders/{id}/payments", ecom_payment_create, ECOM_AUTH_USER,
      ECOM_BODY | ECOM_IDEMPOTENT, 0, "payments.create" },
    { M_POST, "payments/webhook", ecom_payment_webhook, ECOM_AUTH_WEBHOOK,
      ECOM_BODY, 0, "payments.webhook" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_payments_resource = {
    "payments", payment_sql, payment_routes, NULL
};
