/*
 * ecom_addresses.c: the caller's address book (issue 9, part 5):
 * GET/POST /auth/me/addresses/, GET/PATCH/DELETE /auth/me/addresses/{id}/.
 *
 * An address has exactly the fields of an order's shipping_address and is
 * validated by the same code (ecom_address_read, ecom_orders.c); it is
 * stored as that normalised snapshot (addresses.address, sql/017) and
 * shown flat, beside its id, is_default and times. Every statement is
 * scoped by the caller, so another user's address is a 404.
 *
 * One address is the default: the first one is, whatever it says; setting
 * is_default on another unsets the previous one in the same statement
 * (ecom_address_save); the default cannot be unset directly (422: make
 * another one the default), and deleting it makes the newest remaining
 * address the default (ecom_address_delete). A partial unique index holds
 * one default per user whatever happens. A user holds at most
 * ECOM_MAX_ADDRESSES addresses (409 beyond). One user's writes run one at
 * a time under an advisory lock (class 7316017), taken by the functions,
 * and by PATCH before it reads the address it changes.
 *
 * Checkout (POST /orders/) without a shipping_address copies the caller's
 * default address onto the order, inside its one statement (the
 * six-argument ecom_checkout_as, sql/017: one index probe under the
 * account's lock, no round trip more).
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_orders.h"
#include "ecom_util.h"

#define ECOM_MAX_ADDRESSES 20
#define ECOM_MAX_ADDRESSES_SQL "20"

#define ADDRESS_COLS \
    "id, address::text, is_default, " ECOM_TS("created_at") ", " \
    ECOM_TS("updated_at")
enum { A_ID, A_ADDRESS, A_IS_DEFAULT };
/* ecom_address_save: the outcome, then ADDRESS_COLS */
enum { S_OUTCOME, S_ADDRESS };

static const ecom_stmt address_sql[] = {
    { "ecom_addresses_list",
      "SELECT " ADDRESS_COLS " FROM addresses WHERE user_id = %s::bigint "
      "ORDER BY id", ECOM_STMT_READ },
    { "ecom_address_get",
      "SELECT " ADDRESS_COLS " FROM addresses WHERE id = %s::bigint "
      "AND user_id = %s::bigint", ECOM_STMT_READ },
    /* PATCH: the user's lock, then the address it changes */
    { "ecom_address_lock", "SELECT 1 FROM ecom_address_lock(%s::bigint)", 0 },
    { "ecom_address_get_locked",
      "SELECT " ADDRESS_COLS " FROM addresses WHERE id = %s::bigint "
      "AND user_id = %s::bigint FOR UPDATE", 0 },
    { "ecom_address_save",
      "SELECT outcome, " ADDRESS_COLS " FROM ecom_address_save(%s::bigint, "
      "%s::bigint, %s::jsonb, %s::boolean, " ECOM_MAX_ADDRESSES_SQL ")", 0 },
    { "ecom_address_delete",
      "SELECT ecom_address_delete(%s::bigint, %s::bigint)", 0 },
    { NULL, NULL, 0 }
};

static const ecom_col address_cols[] = {
    { "id", EC_INT }, { "address", EC_JSON }, { "is_default", EC_BOOL },
    { "created_at", EC_TIME }, { "updated_at", EC_TIME }, { NULL, 0 }
};

/* What a body may hold besides the address's own fields. */
static const char *const address_also[] = { "is_default", NULL };

/* An address row (from column first on) as the API shows it: the
 * address's fields flat beside id, is_default and the times. */
static json_t *address_json(ecom_req *q, apr_dbd_row_t *row, int first)
{
    json_t *o = ecom_row_json(q, row, address_cols, first);
    json_t *a = json_object_get(o, "address");

    if (json_is_object(a)) {
        json_object_update(o, a);
    }
    json_object_del(o, "address");
    return o;
}

static int not_found(ecom_req *q)
{
    return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such address.");
}

static int ecom_addresses_list(ecom_req *q)
{
    const char *args[1] = { ECOM_LL(q, q->user_id) };
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    json_t *items;
    ecom_err e;

    if ((e = ecom_db_select(q, "ecom_addresses_list", &res, 1, args))) {
        return ecom_fail(q, e);
    }
    items = ecom_jarray(q);
    while (ecom_db_next(q, res, &row)) {
        json_array_append(items, address_json(q, row, 0));
    }
    /* at most ECOM_MAX_ADDRESSES: one page, always */
    return ecom_json(q, HTTP_OK, ecom_jown(q, json_pack("{s:O, s:n}",
                                                       "items", items,
                                                       "next_cursor")));
}

static int ecom_address_get(ecom_req *q)
{
    const char *args[2] = { ECOM_LL(q, q->id[0]), ECOM_LL(q, q->user_id) };
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, "ecom_address_get", &row, 2, args);

    if (e == ECOM_E_NOT_FOUND) {
        return not_found(q);
    }
    return e ? ecom_fail(q, e) : ecom_json(q, HTTP_OK, address_json(q, row, 0));
}

typedef struct {
    long long id;            /* 0: a new address */
    const char *address;     /* the snapshot (JSON), or NULL: unchanged */
    const char *is_default;  /* "true", "false" or NULL (unchanged) */
    json_t *out;             /* the address as saved */
} save_ctx;

/* One ecom_address_save call: the address into c->out, or the refusal. */
static ecom_tx_end save(ecom_req *q, save_ctx *c)
{
    const char *args[4], *outcome;
    apr_dbd_row_t *row;
    ecom_err e;

    args[0] = ECOM_LL(q, q->user_id);
    args[1] = c->id ? ECOM_LL(q, c->id) : NULL;
    args[2] = c->address;
    args[3] = c->is_default;
    if ((e = ecom_db_one(q, "ecom_address_save", &row, 4, args))) {
        return ecom_tx_fail(e);
    }
    outcome = ecom_db_get(q, row, S_OUTCOME);
    if (outcome && strcmp(outcome, "full") == 0) {
        ecom_problem_with(q, HTTP_CONFLICT, "too-many-addresses",
                          "The address book is full: delete an address "
                          "first.",
                          ecom_jown(q, json_pack("{s:i}", "max",
                                                 ECOM_MAX_ADDRESSES)));
        return ECOM_TX_REFUSE;
    }
    if (!outcome || strcmp(outcome, "ok") != 0) {
        not_found(q);
        return ECOM_TX_REFUSE;
    }
    c->out = address_json(q, row, S_ADDRESS);
    return ECOM_TX_COMMIT;
}

static ecom_tx_end create(ecom_req *q, void *data)
{
    return save(q, data);
}

static int ecom_address_create(ecom_req *q)
{
    json_t *errs = ecom_jarray(q);
    save_ctx c = { 0, NULL, NULL, NULL };
    int def = 0;
    ecom_err e;

    c.address = ecom_address_read(q, q->body, NULL, address_also, errs);
    if (ecom_get_bool(q->body, "is_default", &def, errs) == 1) {
        c.is_default = def ? "true" : "false";
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    if ((e = ecom_db_tx_single(q, create, &c))) {
        return ecom_fail(q, e);
    }
    apr_table_setn(q->r->headers_out, "Location",
                   ecom_url(q, "/auth/me/addresses/%" APR_INT64_T_FMT "/",
                            (apr_int64_t)json_integer_value(
                                json_object_get(c.out, "id"))));
    return ecom_json(q, HTTP_CREATED, c.out);
}

/* PATCH: under the user's lock, the stored address with the body's
 * fields over it (null removes an optional one), validated whole. */
static ecom_tx_end update(ecom_req *q, void *data)
{
    save_ctx *c = data;
    const char *args[2] = { ECOM_LL(q, q->user_id), NULL };
    json_t *errs = ecom_jarray(q), *merged, *v;
    apr_dbd_row_t *row;
    const char *name;
    int def = 0, was_default;
    ecom_err e;

    if ((e = ecom_db_one(q, "ecom_address_lock", &row, 1, args))) {
        return ecom_tx_fail(e);
    }
    args[0] = ECOM_LL(q, c->id);
    args[1] = ECOM_LL(q, q->user_id);
    e = ecom_db_one(q, "ecom_address_get_locked", &row, 2, args);
    if (e == ECOM_E_NOT_FOUND) {
        not_found(q);
        return ECOM_TX_REFUSE;
    }
    if (e) {
        return ecom_tx_fail(e);
    }
    /* the stored snapshot (a JSON object: the table's CHECK) */
    merged = ecom_jown(q, json_loads(ecom_db_get(q, row, A_ADDRESS), 0, NULL));
    was_default = ecom_db_bool(q, row, A_IS_DEFAULT);
    if (!json_is_object(merged)) {
        return ecom_tx_fail(ECOM_E_INTERNAL);
    }
    /* the body's members over it: null removes an optional field (and is
     * "is required" for another), an unknown member is refused by name */
    json_object_foreach(q->body, name, v) {
        if (strcmp(name, "is_default") != 0) {
            json_object_set(merged, name, v);
        }
    }
    if (ecom_get_bool(q->body, "is_default", &def, errs) == 1) {
        if (!def && was_default) {
            ecom_field_error(errs, "is_default", "cannot be unset: make "
                             "another address the default instead");
        }
        c->is_default = def ? "true" : NULL;
    }
    c->address = ecom_address_read(q, merged, NULL, address_also, errs);
    if (json_array_size(errs)) {
        ecom_invalid(q, errs);
        return ECOM_TX_REFUSE;
    }
    return save(q, c);
}

static int ecom_address_update(ecom_req *q)
{
    save_ctx c = { q->id[0], NULL, NULL, NULL };
    ecom_err e;

    if ((e = ecom_db_tx(q, update, &c))) {
        return ecom_fail(q, e);
    }
    return ecom_json(q, HTTP_OK, c.out);
}

static int ecom_address_delete(ecom_req *q)
{
    const char *args[2] = { ECOM_LL(q, q->user_id), ECOM_LL(q, q->id[0]) };
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, "ecom_address_delete", &row, 2, args);

    if (e) {
        return ecom_fail(q, e);
    }
    if (!ecom_db_bool(q, row, 0)) {
        return not_found(q);
    }
    return ecom_no_content(q, HTTP_NO_CONTENT);
}

static const ecom_route address_routes[] = {
    { M_GET, "auth/me/addresses", ecom_addresses_list, ECOM_AUTH_USER, 0, 0,
      "addresses.list" },
    { M_POST, "auth/me/addresses", ecom_address_create, ECOM_AUTH_USER,
      ECOM_BODY | ECOM_IDEMPOTENT, 0, "addresses.create" },
    { M_GET, "auth/me/addresses/{id}", ecom_address_get, ECOM_AUTH_USER, 0,
      0, "addresses.get" },
    { M_PATCH, "auth/me/addresses/{id}", ecom_address_update, ECOM_AUTH_USER,
      ECOM_BODY, 0, "addresses.update" },
    { M_DELETE, "auth/me/addresses/{id}", ecom_address_delete,
      ECOM_AUTH_USER, 0, 0, "addresses.delete" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_addresses_resource = {
    "addresses", address_sql, address_routes, NULL
};
