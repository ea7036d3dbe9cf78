/*
 * ecom_coupons.c: coupons (issue 10). Staff manage them under /coupons/
 * (POST, list, GET, PATCH, DELETE by code); a signed-in user applies one
 * to the cart with POST /cart/coupon/ {code} and removes it with
 * DELETE /cart/coupon/. The schema and the rules are sql/023_discounts.sql:
 *   - a code is lower-case [a-z0-9_-]{3,40}; what a client sends is
 *     lower-cased, so "SAVE10" and "save10" are one coupon;
 *   - percent_off 1..100 (rounded half up to the cent) or amount_off
 *     (capped at the subtotal, in the coupon's currency: the shop's
 *     EcomCurrency unless sent);
 *   - applying checks the coupon against the cart as it is (422 naming
 *     the reason: unknown, not started, expired, exhausted, another
 *     currency, min_subtotal not reached, already used by this user); the
 *     checkout checks again under the coupon row's lock and counts the
 *     redemption in the order's transaction (409 coupon-<reason>, nothing
 *     written, the cart keeps its coupon);
 *   - guest carts take no coupon (a coupon needs an account for
 *     once_per_user): the routes of /cart/coupon/ are for accounts only,
 *     and a guest cart merged at login arrives without one.
 * Coupons appear in no cached answer (carts and orders are never
 * cached), so their writes invalidate nothing.
 * Times are RFC 3339 strings, read here into Unix seconds (ecom_time_parse)
 * and handed to PostgreSQL as numbers, so a bad date is a 422, never a
 * SQL error (ecom_time_parse, shared with the pricing rules).
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_page.h"
#include "ecom_util.h"
#include "ecom_cart.h"
#include "ecom_coupons.h"

#include "apr_lib.h"
#include "apr_time.h"

#define COUPON_COLS \
    "id, code, percent_off, amount_off, currency, min_subtotal, " \
    ECOM_TS("starts_at") ", " ECOM_TS("ends_at") ", max_redemptions, " \
    "redemptions, once_per_user, " ECOM_TS("created_at") ", " \
    ECOM_TS("updated_at")
enum { C_ID, C_CODE, C_PERCENT, C_AMOUNT, C_CURRENCY, C_MIN, C_STARTS,
       C_ENDS, C_MAX, C_REDEMPTIONS, C_ONCE, C_CREATED, C_UPDATED,
       C_NCOLS };
/* the coupon's columns as numbers, for a PATCH to merge into */
#define COUPON_RAW \
    "percent_off, amount_off, currency, min_subtotal, " \
    ECOM_TS("starts_at") ", " ECOM_TS("ends_at") ", max_redemptions, " \
    "redemptions, once_per_user"
enum { R_PERCENT, R_AMOUNT, R_CURRENCY, R_MIN, R_STARTS, R_ENDS, R_MAX,
       R_REDEMPTIONS, R_ONCE };
/* ecom_cart_coupon */
enum { CC_CODE, CC_PERCENT, CC_AMOUNT, CC_CURRENCY, CC_REASON,
       CC_DISCOUNT };

/* The values of a coupon's row: INSERT and UPDATE take all of them */
#define COUPON_VALUES \
    "%s::int, %s::bigint, %s, %s::bigint, to_timestamp(%s::bigint), " \
    "to_timestamp(%s::bigint), %s::int, %s::boolean"

static const ecom_stmt coupon_sql[] = {
    { "ecom_coupon_insert",
      "INSERT INTO coupons (code, percent_off, amount_off, currency, "
      "min_subtotal, starts_at, ends_at, max_redemptions, once_per_user) "
      "VALUES (%s, " COUPON_VALUES ") ON CONFLICT (code) DO NOTHING "
      "RETURNING " COUPON_COLS, 0 },
    { "ecom_coupon_get",
      "SELECT " COUPON_COLS " FROM coupons WHERE code = %s", ECOM_STMT_READ },
    { "ecom_coupon_list",
      "SELECT " COUPON_COLS " FROM coupons "
      "WHERE id > COALESCE(%s::bigint, 0) ORDER BY id LIMIT %s::int",
      ECOM_STMT_READ | ECOM_STMT_LIST },
    /* PATCH: lock, merge in C, write the whole row */
    { "ecom_coupon_lock",
      "SELECT " COUPON_RAW " FROM coupons WHERE code = %s FOR NO KEY UPDATE",
      0 },
    { "ecom_coupon_update",
      "UPDATE coupons SET (percent_off, amount_off, currency, min_subtotal, "
      "starts_at, ends_at, max_redemptions, once_per_user, updated_at) = "
      "(" COUPON_VALUES ", now()) WHERE code = %s RETURNING " COUPON_COLS,
      0 },
    { "ecom_coupon_delete",
      "DELETE FROM coupons WHERE code = %s", 0 },
    /* the caller's cart (sql/023) */
    { "ecom_cart_coupon_apply",
      "SELECT ecom_cart_coupon_apply(%s::bigint, %s)", 0 },
    { "ecom_cart_coupon_remove",
      "DELETE FROM cart_coupons WHERE user_id = %s::bigint", 0 },
    /* GET /cart/: the coupon, why it does not apply now, its discount */
    { "ecom_cart_coupon",
      "SELECT c.code, c.percent_off, c.amount_off, c.currency, "
      "ecom_coupon_reason(c, cc.user_id, %s::numeric, %s), "
      "ecom_coupon_discount(c.percent_off, c.amount_off, %s::numeric) "
      "FROM cart_coupons cc JOIN coupons c ON c.id = cc.coupon_id "
      "WHERE cc.user_id = %s::bigint", ECOM_STMT_READ },
    { NULL, NULL, 0 }
};

static const ecom_col coupon_cols[] = {
    [C_ID] = { "id", EC_INT }, [C_CODE] = { "code", EC_STR },
    [C_PERCENT] = { "percent_off", EC_INT_NULL },
    [C_AMOUNT] = { "amount_off", EC_INT_NULL },
    [C_CURRENCY] = { "currency", EC_STR_NULL },
    [C_MIN] = { "min_subtotal", EC_INT },
    [C_STARTS] = { "starts_at", EC_TIME },
    [C_ENDS] = { "ends_at", EC_TIME },
    [C_MAX] = { "max_redemptions", EC_INT_NULL },
    [C_REDEMPTIONS] = { "redemptions", EC_INT },
    [C_ONCE] = { "once_per_user", EC_BOOL },
    [C_CREATED] = { "created_at", EC_TIME },
    [C_UPDATED] = { "updated_at", EC_TIME }, [C_NCOLS] = { NULL, 0 }
};

/* The reasons of sql/023's ecom_coupon_reason, and what clients read. */
static const struct {
    const char *reason;
    const char *detail;
} reasons[] = {
    { "unknown", "No coupon has this code." },
    { "not-started", "This coupon cannot be used yet." },
    { "expired", "This coupon has expired." },
    { "exhausted", "This coupon has been used as many times as allowed." },
    { "currency", "This coupon is for carts in another currency." },
    { "min-subtotal", "The cart's subtotal is below this coupon's minimum." },
    { "already-used", "You have already used this coupon." },
    { NULL, NULL }
};

static const char *reason_detail(const char *reason)
{
    for (int i = 0; reasons[i].reason; i++) {
        if (reason && strcmp(reasons[i].reason, reason) == 0) {
            return reasons[i].detail;
        }
    }
    return "This coupon cannot be used.";
}

int ecom_coupon_refused(ecom_req *q, const char *code, const char *reason)
{
    reason = reason ? reason : "inapplicable";
    return ecom_problem_with(
        q, HTTP_CONFLICT, apr_pstrcat(q->r->pool, "coupon-", reason, NULL),
        apr_pstrcat(q->r->pool, reason_detail(reason), " Nothing was "
                    "ordered; remove the coupon (DELETE /cart/coupon/) to "
                    "order without it.", NULL),
        ecom_jown(q, json_pack("{s:s?, s:s}", "coupon", code, "reason",
                               reason)));
}

/* An RFC 3339 time ("2026-11-27T10:00:00Z", "...T10:00:00.5+01:00") as
 * Unix seconds (a fraction is dropped). 0 or -1. */
/* The number written by the n digits at s (checked digits). */
static int digits(const char *s, int n)
{
    int v = 0;

    while (n-- > 0) {
        v = v * 10 + (*s++ - '0');
    }
    return v;
}

int ecom_time_parse(const char *s, long long *out)
{
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
                                 30, 31 };
    apr_time_exp_t t;
    apr_time_t at;
    int y, mo, d, h, mi, sec, off = 0;
    const char *p;

    /* YYYY-MM-DDTHH:MM:SS, then an optional fraction and the zone */
    if (strlen(s) < 20 || s[4] != '-' || s[7] != '-'
        || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':') {
        return -1;
    }
    for (int i = 0; i < 19; i++) {
        if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16
            && !apr_isdigit(s[i])) {
            return -1;
        }
    }
    y = digits(s, 4);
    mo = digits(s + 5, 2);
    d = digits(s + 8, 2);
    h = digits(s + 11, 2);
    mi = digits(s + 14, 2);
    sec = digits(s + 17, 2);
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1
        || d > mdays[mo - 1] || (mo == 2 && d == 29 && (y % 4 != 0
                                 || (y % 100 == 0 && y % 400 != 0)))
        || h > 23 || mi > 59 || sec > 59) {
        return -1;
    }
    p = s + 19;
    if (*p == '.') {
        p++;
        if (!apr_isdigit(*p)) {
            return -1;
        }
        /* at most 9 digits (nanoseconds), so that a time is at most 35
         * characters ("...T00:00:00.123456789+01:00", the maxLength of
         * the OpenAPI document) */
        for (int n = 0; apr_isdigit(*p); n++, p++) {
            if (n == 9) {
                return -1;
            }
        }
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        off = 0;
    }
    else if ((*p == '+' || *p == '-') && strlen(p) == 6
             && apr_isdigit(p[1]) && apr_isdigit(p[2]) && p[3] == ':'
             && apr_isdigit(p[4]) && apr_isdigit(p[5])) {
        int oh = digits(p + 1, 2);
        int om = digits(p + 4, 2);
        if (oh > 23 || om > 59) {
            return -1;
        }
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
    }
    else {
        return -1;
    }
    memset(&t, 0, sizeof(t));
    t.tm_year = y - 1900;
    t.tm_mon = mo - 1;
    t.tm_mday = d;
    t.tm_hour = h;
    t.tm_min = mi;
    t.tm_sec = sec;
    if (apr_time_exp_gmt_get(&at, &t) != APR_SUCCESS) {
        return -1;
    }
    *out = (long long)apr_time_sec(at) - off;
    return 0;
}

int ecom_get_ids(ecom_req *q, json_t *body, const char *field, size_t max,
                 const char **literal, long long *n, json_t *errs)
{
    json_t *ids = json_object_get(body, field), *v;
    const char *lit = "{";
    size_t i, j, len;

    if (!ids) {
        return 0;
    }
    len = json_array_size(ids);
    if (!json_is_array(ids) || len == 0 || len > max) {
        ecom_field_error(errs, field, apr_psprintf(q->r->pool, "must be an "
                         "array of 1 to %lu ids", (unsigned long)max));
        return -1;
    }
    json_array_foreach(ids, i, v) {
        json_int_t id = json_is_integer(v) ? json_integer_value(v) : 0;
        if (id <= 0) {
            ecom_field_error(errs, field, "must hold positive integer ids");
            return -1;
        }
        for (j = 0; j < i; j++) {
            if (json_integer_value(json_array_get(ids, j)) == id) {
                ecom_field_error(errs, field, "names an id twice");
                return -1;
            }
        }
        lit = apr_psprintf(q->r->pool, "%s%s%" APR_INT64_T_FMT, lit,
                           i ? "," : "", (apr_int64_t)id);
    }
    *literal = apr_pstrcat(q->r->pool, lit, "}", NULL);
    *n = (long long)len;
    return 1;
}

/* A coupon's settable values (all of a row but code and counts). */
typedef struct {
    long long percent, amount, min, starts, ends, max, redemptions;
    int has_percent, has_amount, has_starts, has_ends, has_max, once;
    const char *currency;
} coupon_in;

/* A time field: 1 set (into *v), 0 absent, 2 null (cleared), -1 error. */
int ecom_get_time(json_t *body, const char *field, long long *v,
                    json_t *errs)
{
    json_t *f = json_object_get(body, field);

    if (!f) {
        return 0;
    }
    if (json_is_null(f)) {
        return 2;
    }
    if (!json_is_string(f) || ecom_time_parse(json_string_value(f), v) != 0) {
        ecom_field_error(errs, field, "must be an RFC 3339 time such as "
                         "2026-12-01T00:00:00Z (from 1970)");
        return -1;
    }
    return 1;
}

/* An integer field that may be null (cleared): as get_time. */
int ecom_get_int_null(json_t *body, const char *field, long long min,
                        long long max, long long *v, json_t *errs)
{
    json_t *f = json_object_get(body, field);

    if (json_is_null(f)) {
        return 2;
    }
    return ecom_get_int(body, field, min, max, v, errs);
}

/* Reads the body's values over c (a new coupon's defaults, or the row a
 * PATCH changes), then checks the result as a whole. */
static void read_coupon(ecom_req *q, json_t *body, coupon_in *c,
                        json_t *errs)
{
    long long v = 0;
    const char *cur = NULL;
    int rp, ra, rc, rv;

    rp = ecom_get_int_null(body, "percent_off", 1, 100, &v, errs);
    if (rp == 1) {
        c->has_percent = 1;
        c->percent = v;
    }
    ra = ecom_get_int_null(body, "amount_off", 1, 1000000000000000LL, &v, errs);
    if (ra == 1) {
        c->has_amount = 1;
        c->amount = v;
    }
    rc = ecom_get_str(body, "currency", 3, 3, &cur, errs);
    if (rc == 1 && !ecom_currency_valid(cur)) {
        ecom_field_error(errs, "currency", "must be an ISO 4217 code in "
                         "capitals, such as EUR");
        rc = -1;
    }
    if (rp == 1 && ra == 1) {
        ecom_field_error(errs, "percent_off", "give percent_off or "
                         "amount_off, not both");
    }
    else if (rp == 1) {
        c->has_amount = 0;
        c->currency = NULL;
        if (rc == 1) {
            ecom_field_error(errs, "currency", "goes with amount_off only");
        }
    }
    else if (ra == 1) {
        c->has_percent = 0;
        c->currency = rc == 1 ? cur : c->currency ? c->currency
                                                  : q->dc->currency;
    }
    else if (rc == 1) {
        if (c->has_amount) {
            c->currency = cur;
        }
        else {
            ecom_field_error(errs, "currency", "goes with amount_off only");
        }
    }
    if (rp == 2 && ra != 1) {
        c->has_percent = 0;
    }
    if (ra == 2 && rp != 1) {
        c->has_amount = 0;
    }
    if ((rv = ecom_get_int_null(body, "min_subtotal", 0, 1000000000000000LL,
                           &v, errs)) == 1) {
        c->min = v;
    }
    else if (rv == 2) {
        c->min = 0;
    }
    if ((rv = ecom_get_time(body, "starts_at", &v, errs)) > 0) {
        c->has_starts = rv == 1;
        c->starts = v;
    }
    if ((rv = ecom_get_time(body, "ends_at", &v, errs)) > 0) {
        c->has_ends = rv == 1;
        c->ends = v;
    }
    if ((rv = ecom_get_int_null(body, "max_redemptions", 1, 2147483647LL, &v,
                           errs)) > 0) {
        c->has_max = rv == 1;
        c->max = v;
    }
    (void)ecom_get_bool(body, "once_per_user", &c->once, errs);
    if (json_array_size(errs)) {
        return;
    }
    if (!c->has_percent && !c->has_amount) {
        ecom_field_error(errs, "percent_off", "a coupon needs percent_off "
                         "(1..100) or amount_off (minor units)");
    }
    if (c->has_starts && c->has_ends && c->ends <= c->starts) {
        ecom_field_error(errs, "ends_at", "must be after starts_at");
    }
    if (c->has_max && c->max < c->redemptions) {
        ecom_field_error(errs, "max_redemptions", apr_psprintf(
            q->r->pool, "must be at least the %lld redemptions already "
            "made", c->redemptions));
    }
}

/* The statement arguments of COUPON_VALUES, from args[0]. */
static void coupon_args(ecom_req *q, const coupon_in *c, const char **args)
{
    args[0] = c->has_percent ? ECOM_LL(q, c->percent) : NULL;
    args[1] = c->has_amount ? ECOM_LL(q, c->amount) : NULL;
    args[2] = c->has_amount ? c->currency : NULL;
    args[3] = ECOM_LL(q, c->min);
    args[4] = c->has_starts ? ECOM_LL(q, c->starts) : NULL;
    args[5] = c->has_ends ? ECOM_LL(q, c->ends) : NULL;
    args[6] = c->has_max ? ECOM_LL(q, c->max) : NULL;
    args[7] = c->once ? "true" : "false";
}

static const char *const coupon_fields[] = {
    "code", "percent_off", "amount_off", "currency", "min_subtotal",
    "starts_at", "ends_at", "max_redemptions", "once_per_user", NULL
};

/* A code from a body, lower-cased; NULL after a field error. */
static const char *read_code(ecom_req *q, json_t *body, json_t *errs)
{
    const char *code = NULL;
    char *low;
    int rv = ecom_get_str(body, "code", 3, 40, &code, errs);

    if (rv == 0) {
        ecom_field_error(errs, "code", "is required");
    }
    if (rv != 1) {
        return NULL;
    }
    low = apr_pstrdup(q->r->pool, code);
    ap_str_tolower(low);
    if (!ecom_slug_valid(low, strlen(low))) {
        ecom_field_error(errs, "code", "must be 3 to 40 letters, digits, _ "
                         "or -");
        return NULL;
    }
    return low;
}

static int coupon_not_found(ecom_req *q)
{
    return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such coupon.");
}

static int ecom_coupon_create(ecom_req *q)
{
    json_t *errs = ecom_jarray(q);
    coupon_in c;
    const char *args[9], *code;
    apr_dbd_row_t *row;
    ecom_err e;

    memset(&c, 0, sizeof(c));
    ecom_body_unknown(q, q->body, "", coupon_fields, errs);
    code = read_code(q, q->body, errs);
    read_coupon(q, q->body, &c, errs);
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    args[0] = code;
    coupon_args(q, &c, args + 1);
    e = ecom_db_one(q, "ecom_coupon_insert", &row, 9, args);
    if (e == ECOM_E_NOT_FOUND) {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            "A coupon with this code exists already.");
    }
    if (e) {
        return ecom_fail(q, e);
    }
    apr_table_setn(q->r->headers_out, "Location",
                   ecom_url(q, "/coupons/%s/", code));
    return ecom_json(q, HTTP_CREATED, ecom_row_json(q, row, coupon_cols, 0));
}

int ecom_send_one(ecom_req *q, const char *label, const char *arg,
                  const ecom_col *cols, const char *missing)
{
    const char *args[1] = { arg };
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, label, &row, 1, args);

    if (e == ECOM_E_NOT_FOUND) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found", missing);
    }
    if (e) {
        return ecom_fail(q, e);
    }
    return ecom_json(q, HTTP_OK, ecom_row_json(q, row, cols, 0));
}

int ecom_send_id_page(ecom_req *q, const char *label, char tag,
                      const ecom_col *cols, int key)
{
    const char *args[2];
    long long after = 0, k2 = 0;
    apr_dbd_results_t *res;
    ecom_err e;
    int limit, rv;

    if ((rv = ecom_page_args(q, &limit))
        || (rv = ecom_page_cursor(q, tag, &after, &k2))) {
        return rv;
    }
    args[0] = after ? ECOM_LL(q, after) : NULL;
    args[1] = apr_itoa(q->r->pool, limit + 1);
    if ((e = ecom_db_select(q, label, &res, 2, args))) {
        return ecom_fail(q, e);
    }
    return ecom_page(q, res, limit, cols, tag, key, -1);
}

static int ecom_coupon_get(ecom_req *q)
{
    return ecom_send_one(q, "ecom_coupon_get", q->slug, coupon_cols,
                         "No such coupon.");
}

static int ecom_coupon_list(ecom_req *q)
{
    return ecom_send_id_page(q, "ecom_coupon_list", 'k', coupon_cols, C_ID);
}

typedef struct {
    json_t *body;
    json_t *coupon;
} patch_ctx;

static ecom_tx_end coupon_patch(ecom_req *q, void *data)
{
    patch_ctx *pc = data;
    json_t *errs = ecom_jarray(q);
    const char *args[9];
    apr_dbd_row_t *row;
    coupon_in c;
    ecom_err e;

    args[0] = q->slug;
    e = ecom_db_one(q, "ecom_coupon_lock", &row, 1, args);
    if (e == ECOM_E_NOT_FOUND) {
        coupon_not_found(q);
        return ECOM_TX_REFUSE;
    }
    if (e) {
        return ecom_tx_fail(e);
    }
    memset(&c, 0, sizeof(c));
    c.has_percent = ecom_db_get(q, row, R_PERCENT) != NULL;
    c.percent = c.has_percent ? ecom_db_ll(q, row, R_PERCENT) : 0;
    c.has_amount = ecom_db_get(q, row, R_AMOUNT) != NULL;
    c.amount = c.has_amount ? ecom_db_ll(q, row, R_AMOUNT) : 0;
    if (ecom_db_get(q, row, R_CURRENCY)) {
        c.currency = apr_pstrdup(q->r->pool, ecom_db_get(q, row, R_CURRENCY));
    }
    c.min = ecom_db_ll(q, row, R_MIN);
    c.has_starts = ecom_db_get(q, row, R_STARTS) != NULL;
    c.starts = c.has_starts ? ecom_db_ll(q, row, R_STARTS) : 0;
    c.has_ends = ecom_db_get(q, row, R_ENDS) != NULL;
    c.ends = c.has_ends ? ecom_db_ll(q, row, R_ENDS) : 0;
    c.has_max = ecom_db_get(q, row, R_MAX) != NULL;
    c.max = c.has_max ? ecom_db_ll(q, row, R_MAX) : 0;
    c.redemptions = ecom_db_ll(q, row, R_REDEMPTIONS);
    c.once = ecom_db_bool(q, row, R_ONCE);
    read_coupon(q, pc->body, &c, errs);
    if (json_array_size(errs)) {
        ecom_invalid(q, errs);
        return ECOM_TX_REFUSE;
    }
    coupon_args(q, &c, args);
    args[8] = q->slug;
    if ((e = ecom_db_one(q, "ecom_coupon_update", &row, 9, args))) {
        return ecom_tx_fail(e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    pc->coupon = ecom_row_json(q, row, coupon_cols, 0);
    return ECOM_TX_COMMIT;
}

static int ecom_coupon_update(ecom_req *q)
{
    json_t *errs = ecom_jarray(q);
    patch_ctx pc = { q->body, NULL };
    ecom_err e;

    ecom_body_unknown(q, q->body, "", coupon_fields + 1, errs);
    if (json_object_get(q->body, "code")) {
        ecom_field_error(errs, "code", "cannot be changed: create a new "
                         "coupon");
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    if ((e = ecom_db_tx(q, coupon_patch, &pc))) {
        return ecom_fail(q, e);
    }
    return ecom_json(q, HTTP_OK, pc.coupon);
}

static int ecom_coupon_delete(ecom_req *q)
{
    const char *args[1] = { q->slug };
    ecom_err e;
    int n = 0;

    if ((e = ecom_db_query(q, "ecom_coupon_delete", &n, 1, args))) {
        return ecom_fail(q, e);
    }
    if (n == 0) {
        return coupon_not_found(q);
    }
    return ecom_no_content(q, HTTP_NO_CONTENT);
}

/* POST /cart/coupon/ {code}: 200 with the cart, or 422 naming why the
 * coupon does not apply to the cart as it is. */
static int ecom_cart_coupon_apply(ecom_req *q)
{
    static const char *const known[] = { "code", NULL };
    json_t *errs = ecom_jarray(q);
    const char *args[2], *code, *reason;
    apr_dbd_row_t *row;
    ecom_err e;

    ecom_body_unknown(q, q->body, "", known, errs);
    code = read_code(q, q->body, errs);
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    args[0] = ECOM_LL(q, q->user_id);
    args[1] = code;
    if ((e = ecom_db_one(q, "ecom_cart_coupon_apply", &row, 2, args))) {
        return ecom_fail(q, e);
    }
    if ((reason = ecom_db_get(q, row, 0))) {
        reason = apr_pstrdup(q->r->pool, reason);
        json_array_append_new(errs, json_pack("{s:s, s:s}", "field", "code",
                                              "message",
                                              reason_detail(reason)));
        return ecom_problem_with(
            q, HTTP_UNPROCESSABLE_ENTITY,
            apr_pstrcat(q->r->pool, "coupon-", reason, NULL),
            reason_detail(reason),
            ecom_jown(q, json_pack("{s:O, s:s, s:s}", "errors", errs,
                                   "coupon", code, "reason", reason)));
    }
    return ecom_cart_send(q);
}

static int ecom_cart_coupon_remove(ecom_req *q)
{
    const char *args[1] = { ECOM_LL(q, q->user_id) };
    ecom_err e;
    int n = 0;

    if ((e = ecom_db_query(q, "ecom_cart_coupon_remove", &n, 1, args))) {
        return ecom_fail(q, e);
    }
    if (n == 0) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                            "Your cart has no coupon.");
    }
    return ecom_no_content(q, HTTP_NO_CONTENT);
}

int ecom_cart_coupon(ecom_req *q, long long subtotal, const char *currency,
                     json_t **coupon, long long *discount)
{
    const char *sub = ECOM_LL(q, subtotal);
    const char *args[4] = { sub, currency, sub, ECOM_LL(q, q->user_id) };
    const char *reason;
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, "ecom_cart_coupon", &row, 4, args);

    *discount = 0;
    *coupon = ecom_jown(q, json_null());
    if (e == ECOM_E_NOT_FOUND) {
        return 0;
    }
    if (e) {
        return ecom_fail(q, e);
    }
    reason = ecom_db_get(q, row, CC_REASON);
    if (!reason) {
        *discount = ecom_db_ll(q, row, CC_DISCOUNT);
    }
    *coupon = ecom_jown(q, json_pack(
        "{s:s, s:o, s:o, s:s?, s:b, s:s?, s:s?}",
        "code", ecom_db_get(q, row, CC_CODE),
        "percent_off", ecom_db_get(q, row, CC_PERCENT)
            ? json_integer(ecom_db_ll(q, row, CC_PERCENT)) : json_null(),
        "amount_off", ecom_db_get(q, row, CC_AMOUNT)
            ? json_integer(ecom_db_ll(q, row, CC_AMOUNT)) : json_null(),
        "currency", ecom_db_get(q, row, CC_CURRENCY),
        "applicable", reason == NULL,
        "reason", reason,
        "detail", reason ? reason_detail(reason) : NULL));
    return 0;
}

static const ecom_route coupon_routes[] = {
    { M_POST, "coupons", ecom_coupon_create, ECOM_AUTH_STAFF,
      ECOM_BODY | ECOM_IDEMPOTENT, 0, "coupons.create" },
    { M_GET, "coupons", ecom_coupon_list, ECOM_AUTH_STAFF, 0, 0,
      "coupons.list" },
    { M_GET, "coupons/{slug}", ecom_coupon_get, ECOM_AUTH_STAFF, 0, 0,
      "coupons.get" },
    { M_PATCH, "coupons/{slug}", ecom_coupon_update, ECOM_AUTH_STAFF,
      ECOM_BODY, 0, "coupons.update" },
    { M_DELETE, "coupons/{slug}", ecom_coupon_delete, ECOM_AUTH_STAFF, 0, 0,
      "coupons.delete" },
    { M_POST, "cart/coupon", ecom_cart_coupon_apply, ECOM_AUTH_USER,
      ECOM_BODY, 0, "cart.coupon.apply" },
    { M_DELETE, "cart/coupon", ecom_cart_coupon_remove, ECOM_AUTH_USER, 0,
      0, "cart.coupon.remove" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_coupons_resource = {
    "coupons", coupon_sql, coupon_routes, NULL
};
