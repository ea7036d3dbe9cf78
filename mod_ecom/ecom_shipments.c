/*
 * ecom_shipments.c: shipments of paid orders (staff), and their reads.
 *
 *   POST /orders/{id}/shipments/  staff: {carrier, tracking_number} on a
 *                                 paid order, or a shipped one (a further
 *                                 parcel); 409 address-required without a
 *                                 shipping address
 *   PATCH /shipments/{id}/        staff: {status}, forward only
 *                                 (ecom_shipment_state.h)
 *   GET /shipments/{id}/          the order's owner or staff; 404 otherwise
 *
 * The order follows its shipments, in the same transaction as the
 * shipment's change: the first shipment that leaves pending moves the
 * order paid -> shipped, and the change that leaves no shipment of the
 * order undelivered moves it shipped -> delivered (actor staff). Every
 * write locks the order row first (ecom_order_lock), then the shipment,
 * so two PATCHes of one order's shipments are serialised and cannot both
 * miss the last delivery. A shipment's address is its order's snapshot,
 * which can no longer change once the order is paid.
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_orders.h"
#include "ecom_shipment_state.h"

enum { S_ID, S_ORDER_ID, S_CARRIER, S_TRACKING, S_STATUS };

const ecom_col ecom_shipment_cols[] = {
    [S_ID] = { "id", EC_INT }, [S_ORDER_ID] = { "order_id", EC_INT },
    [S_CARRIER] = { "carrier", EC_STR },
    [S_TRACKING] = { "tracking_number", EC_STR },
    [S_STATUS] = { "status", EC_STR },
    { "shipping_address", EC_JSON }, { "created_at", EC_TIME },
    { "updated_at", EC_TIME }, { NULL, 0 }
};

static const ecom_stmt shipment_sql[] = {
    { "ecom_shipment_insert",
      "INSERT INTO shipments (order_id, carrier, tracking_number) "
      "VALUES (%s::bigint, %s, %s) RETURNING id", 0 },
    /* owner or staff (the boolean) */
    { "ecom_shipment_get",
      "SELECT " ECOM_SHIPMENT_COLS " FROM shipments s "
      "JOIN orders o ON o.id = s.order_id WHERE s.id = %s::bigint "
      "AND (o.user_id = %s::bigint OR %s::boolean)", ECOM_STMT_READ },
    { "ecom_shipment_order",
      "SELECT order_id FROM shipments WHERE id = %s::bigint", 0 },
    /* after the order row is locked */
    { "ecom_shipment_lock",
      "SELECT status FROM shipments WHERE id = %s::bigint FOR UPDATE", 0 },
    { "ecom_shipment_move",
      "UPDATE shipments SET status = %s, updated_at = now() "
      "WHERE id = %s::bigint AND status = %s RETURNING id", 0 },
    { "ecom_shipments_undelivered",
      "SELECT count(*) FROM shipments WHERE order_id = %s::bigint "
      "AND status <> 'delivered'", 0 },
    { NULL, NULL, 0 }
};

static int send_shipment(ecom_req *q, long long id, int status)
{
    /* a read: staff and support see every shipment */
    const char *args[3] = { ECOM_LL(q, id), ECOM_LL(q, q->user_id),
                            q->reads_all ? "true" : "false" };
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, "ecom_shipment_get", &row, 3, args);

    if (e == ECOM_E_NOT_FOUND) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                            "No such shipment.");
    }
    if (e) {
        return ecom_fail(q, e);
    }
    return ecom_json(q, status, ecom_row_json(q, row, ecom_shipment_cols, 0));
}

static int ecom_shipment_get(ecom_req *q)
{
    return send_shipment(q, q->id[0], HTTP_OK);
}

typedef struct {
    const char *carrier;
    const char *tracking;
    long long id;
} create_ctx;

static ecom_tx_end create(ecom_req *q, void *data)
{
    create_ctx *c = data;
    const char *args[3];
    apr_dbd_row_t *row;
    ecom_order_row o;
    ecom_tx_end end = ecom_order_lock(q, q->id[0], &o);
    ecom_err e;

    if (end.err) {
        return end;
    }
    if (o.status != ECOM_ORDER_PAID && o.status != ECOM_ORDER_SHIPPED) {
        return ecom_order_refuse(q, o.status, apr_psprintf(
            q->r->pool, "Only a paid or shipped order can get a shipment; "
            "this one is %s.", ecom_order_state_name(o.status)));
    }
    if (!o.has_address) {
        ecom_problem(q, HTTP_CONFLICT, "address-required",
                     "The order has no shipping address; set one first.");
        return ECOM_TX_REFUSE;
    }
    args[0] = ECOM_LL(q, q->id[0]);
    args[1] = c->carrier;
    args[2] = c->tracking;
    if ((e = ecom_db_one(q, "ecom_shipment_insert", &row, 3, args))) {
        return ecom_tx_fail(e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    c->id = ecom_db_ll(q, row, 0);
    return ECOM_TX_COMMIT;
}

static int ecom_shipment_create(ecom_req *q)
{
    static const char *const known[] = { "carrier", "tracking_number", NULL };
    json_t *errs = ecom_jarray(q);
    create_ctx c = { NULL, NULL, 0 };
    int rv;

    ecom_body_unknown(q, q->body, "", known, errs);
    if (ecom_get_str(q->body, "carrier", 1, 100, &c.carrier, errs) == 0) {
        ecom_field_error(errs, "carrier", "is required");
    }
    if (ecom_get_str(q->body, "tracking_number", 1, 100, &c.tracking,
                     errs) == 0) {
        ecom_field_error(errs, "tracking_number", "is required");
    }
    if ((rv = ecom_order_write(q, errs, create, &c))) {
        return rv;
    }
    apr_table_setn(q->r->headers_out, "Location",
                   ecom_url(q, "/shipments/%" APR_INT64_T_FMT "/",
                            (apr_int64_t)c.id));
    return send_shipment(q, c.id, HTTP_CREATED);
}

/* The order's side of a shipment's move: paid -> shipped when a shipment
 * leaves pending, shipped -> delivered when none is left undelivered. */
static ecom_err follow(ecom_req *q, long long order_id, ecom_order_state st,
                       ecom_shipment_state to)
{
    const char *args[1] = { ECOM_LL(q, order_id) };
    apr_dbd_row_t *row;
    ecom_err e;

    if (st == ECOM_ORDER_PAID && to >= ECOM_SHIP_SHIPPED) {
        if ((e = ecom_order_transition(q, order_id, ECOM_ORDER_PAID,
                                       ECOM_ORDER_SHIPPED,
                                       ECOM_ACTOR_STAFF))) {
            return e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e;
        }
        st = ECOM_ORDER_SHIPPED;
    }
    if (st != ECOM_ORDER_SHIPPED || to != ECOM_SHIP_DELIVERED) {
        return ECOM_OK;
    }
    if ((e = ecom_db_one(q, "ecom_shipments_undelivered", &row, 1, args))) {
        return e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e;
    }
    if (ecom_db_ll(q, row, 0) != 0) {
        return ECOM_OK;
    }
    e = ecom_order_transition(q, order_id, ECOM_ORDER_SHIPPED,
                              ECOM_ORDER_DELIVERED, ECOM_ACTOR_STAFF);
    return e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e;
}

typedef struct {
    ecom_shipment_state to;
} move_ctx;

static ecom_tx_end move(ecom_req *q, void *data)
{
    move_ctx *m = data;
    const char *args[3] = { ECOM_LL(q, q->id[0]), NULL, NULL };
    apr_dbd_row_t *row;
    ecom_shipment_state from;
    ecom_order_row o;
    ecom_tx_end end;
    long long order_id;
    ecom_err e;

    if ((e = ecom_db_one(q, "ecom_shipment_order", &row, 1, args))) {
        if (e == ECOM_E_NOT_FOUND) {
            ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such shipment.");
            return ECOM_TX_REFUSE;
        }
        return ecom_tx_fail(e);
    }
    order_id = ecom_db_ll(q, row, 0);
    /* the order first, then the shipment: see the top of the file */
    if ((end = ecom_order_lock(q, order_id, &o)).err) {
        return end;
    }
    if ((e = ecom_db_one(q, "ecom_shipment_lock", &row, 1, args))) {
        return ecom_tx_fail(e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    if (ecom_shipment_state_parse(ecom_db_get(q, row, 0), &from) != 0) {
        return ecom_tx_fail(ECOM_E_INTERNAL);
    }
    if (o.status == ECOM_ORDER_PENDING || o.status == ECOM_ORDER_CANCELLED) {
        return ecom_order_refuse(q, o.status, apr_psprintf(
            q->r->pool, "The shipment of a %s order cannot move.",
            ecom_order_state_name(o.status)));
    }
    if (!ecom_shipment_transition_allowed(from, m->to)) {
        ecom_problem_with(q, HTTP_CONFLICT, "invalid-state",
                          apr_psprintf(q->r->pool, "A shipment moves only "
                                       "forward (%s); this one is %s.",
                                       ecom_shipment_states_list(),
                                       ecom_shipment_state_name(from)),
                          ecom_jown(q, json_pack(
                              "{s:s}", "shipment_status",
                              ecom_shipment_state_name(from))));
        return ECOM_TX_REFUSE;
    }
    args[0] = ecom_shipment_state_name(m->to);
    args[1] = ECOM_LL(q, q->id[0]);
    args[2] = ecom_shipment_state_name(from);
    if ((e = ecom_db_one(q, "ecom_shipment_move", &row, 3, args))
        || (e = follow(q, order_id, o.status, m->to))) {
        return ecom_tx_fail(e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    return ECOM_TX_COMMIT;
}

static int ecom_shipment_update(ecom_req *q)
{
    static const char *const known[] = { "status", NULL };
    json_t *errs = ecom_jarray(q);
    const char *status = NULL;
    move_ctx m = { ECOM_SHIP_PENDING };
    int rv;

    ecom_body_unknown(q, q->body, "", known, errs);
    rv = ecom_get_str(q->body, "status", 1, 32, &status, errs);
    if (rv == 0) {
        ecom_field_error(errs, "status", "is required");
    }
    else if (rv == 1 && ecom_shipment_state_parse(status, &m.to) != 0) {
        ecom_field_error(errs, "status",
                         apr_pstrcat(q->r->pool, "must be one of ",
                                     ecom_shipment_states_list(), NULL));
    }
    if ((rv = ecom_order_write(q, errs, move, &m))) {
        return rv;
    }
    return send_shipment(q, q->id[0], HTTP_OK);
}

static const ecom_route shipment_routes[] = {
    { M_POST, "orders/{id}/shipments", ecom_shipment_create, ECOM_AUTH_STAFF,
      ECOM_BODY | ECOM_IDEMPOTENT, 0, "shipments.create" },
    { M_GET, "shipments/{id}", ecom_shipment_get, ECOM_AUTH_USER, 0, 0,
      "shipments.get" },
    { M_PATCH, "shipments/{id}", ecom_shipment_update, ECOM_AUTH_STAFF,
      ECOM_BODY, 0, "shipments.update" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_shipments_resource = {
    "shipments", shipment_sql, shipment_routes, NULL
};
