/*
 * ecom_guest_cart.c: guest carts (issue 9, part 5).
 *
 * A client without an account builds a cart: POST /cart/ without any
 * credentials creates a guest cart and answers its Cart-Token header, a
 * random token of the bearer tokens' kind (ecom_crypto.h) of which only
 * the SHA-256 is stored (guest_carts.token_hash, sql/017); the client
 * sends it back as a Cart-Token request header on GET /cart/, POST /cart/,
 * PATCH and DELETE /cart/{id}/. The cart routes are ecom_cart.c's, flagged
 * ECOM_GUEST: the router hands a request without Authorization to
 * ecom_guest_authenticate() (below), and ecom_cart.c runs the guest
 * versions of its statements, scoped by the guest cart's id instead of the
 * user's, with the same caps and currency rule. A request with neither
 * credentials nor a Cart-Token gets the 401 it always got, except the POST
 * that creates a cart; a Cart-Token that names no live cart gets a 401
 * (the token is the guest's credential: an unknown, expired or merged
 * cart is not a missing resource). Authorization wins over Cart-Token.
 *
 * A guest cart lives EcomGuestCartLifetime seconds after its last write
 * (every add, update and delete sets expires_at); reads do not extend it.
 * mod_watchdog's purge (ecom_db_purge) deletes expired carts in batches
 * (ecom_purge_guest_carts below). Checkout needs an account.
 *
 * A login or register carrying the Cart-Token merges the guest cart into
 * the account's cart (ecom_guest_cart_merge, sql/017's function of the
 * same name): one statement, so one transaction, under the account's
 * advisory lock (the one cart adds and checkouts take): quantities added,
 * capped by stock and the line's 10,000 units, new lines only while the
 * cart has fewer than 500, lines of another currency than the account's
 * cart left out; every guest line is reported, merged or not, and the
 * guest cart is deleted. A second login with the same token finds no cart
 * and merges nothing.
 */
#include "ecom_resource.h"
#include "ecom_auth.h"
#include "ecom_cart.h"
#include "ecom_crypto.h"
#include "ecom_http.h"
#include "ecom_session.h"
#include "ecom_util.h"

#include <limits.h>

/* ecom_guest_cart_merge's columns */
enum { M_PRODUCT_ID, M_NAME, M_REQUESTED, M_ADDED, M_QUANTITY, M_REASON };

static const ecom_stmt guest_sql[] = {
    /* a guest's GET (and POST, before its body): the live cart of the
     * token's hash */
    { "ecom_guest_cart_find",
      "SELECT id FROM guest_carts WHERE token_hash = %s "
      "AND expires_at > now()", ECOM_STMT_READ },
    /* a guest's PATCH and DELETE: the same, pushing the expiry forward */
    { "ecom_guest_cart_touch",
      "UPDATE guest_carts SET expires_at = now() + make_interval(secs => "
      "%s::int) WHERE token_hash = %s AND expires_at > now() RETURNING id",
      0 },
    { "ecom_guest_cart_merge",
      "SELECT product_id, name, requested, added, quantity, reason "
      "FROM ecom_guest_cart_merge(%s::bigint, %s, " ECOM_CART_MAX_LINES_SQL
      ", " ECOM_CART_MAX_QTY_SQL ")", 0 },
    /* mod_watchdog's purge (ecom_db_purge), in batches */
    { "ecom_purge_guest_carts",
      "DELETE FROM guest_carts WHERE id IN (SELECT id FROM guest_carts "
      "WHERE expires_at < now() LIMIT 10000)", 0 },
    { NULL, NULL, 0 }
};

int ecom_guest_wanted(ecom_req *q)
{
    apr_table_t *h = q->r->headers_in;

    /* a browser's cookie session is a user's credential (ecom_session.c) */
    if (q->sc->guest_cart_lifetime <= 0 || apr_table_get(h, "Authorization")
        || ecom_session_holds_token(q)) {
        return 0;
    }
    return apr_table_get(h, "Cart-Token") != NULL
           || ecom_session_cart(q) != NULL
           || q->r->method_number == M_POST;
}

int ecom_guest_rejected(ecom_req *q)
{
    apr_table_setn(q->r->err_headers_out, "WWW-Authenticate",
                   "Bearer realm=\"mod_ecom\"");
    return ecom_problem(q, HTTP_UNAUTHORIZED, "unauthorized",
                        "The Cart-Token is invalid, or its guest cart has "
                        "expired or was merged into an account.");
}

/* The SHA-256 (hex) of tok into pool memory. */
static const char *token_hash(ecom_req *q, const char *tok)
{
    char *hash = apr_palloc(q->r->pool, ECOM_SHA256_HEX);

    ecom_sha256_hex(tok, ECOM_TOKEN_LEN, hash);
    return hash;
}

/* The POST that creates a cart (ecom_guest_wanted): its new token. */
static int new_cart_token(ecom_req *q)
{
    char fresh[ECOM_TOKEN_LEN + 1];

    if (ecom_token_new(fresh) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r,
                      "ECOM1701: random generator failed");
        return ecom_problem(q, HTTP_INTERNAL_SERVER_ERROR, "internal",
                            "Could not create a cart token.");
    }
    q->guest_new_token = apr_pstrdup(q->r->pool, fresh);
    q->guest_hash = token_hash(q, fresh);
    return 0;
}

/* A cart token from the browser's session that names no live cart: it
 * leaves the session; a POST starts a new cart instead. */
static int stale_session_cart(ecom_req *q)
{
    ecom_session_drop_cart(q);
    return q->r->method_number == M_POST ? new_cart_token(q)
                                         : ecom_guest_rejected(q);
}

/* The guest's cart (q->guest_hash) looked up: found (its id), or the 401,
 * or the 503. PATCH and DELETE push its expiry forward. */
static int lookup(ecom_req *q)
{
    apr_dbd_row_t *row;
    const char *args[2];
    ecom_err e;

    if (q->r->method_number != M_PATCH && q->r->method_number != M_DELETE) {
        args[0] = q->guest_hash;
        e = ecom_db_one(q, "ecom_guest_cart_find", &row, 1, args);
    }
    else {
        args[0] = apr_itoa(q->r->pool, q->sc->guest_cart_lifetime);
        args[1] = q->guest_hash;
        e = ecom_db_one(q, "ecom_guest_cart_touch", &row, 2, args);
    }
    if (e && e != ECOM_E_NOT_FOUND) {
        return ecom_fail(q, e);
    }
    return ecom_guest_resolved(q, row ? ecom_db_get(q, row, 0) : NULL);
}

int ecom_guest_authenticate(ecom_req *q, int deferred)
{
    const char *tok = apr_table_get(q->r->headers_in, "Cart-Token");
    const char *kept = NULL;
    int rv;

    q->guest = 1;
    /* a guest's answers are as private as a user's */
    apr_table_setn(q->r->err_headers_out, "Cache-Control", "private, no-store");
    /* with EcomSessions On: the origin check, and the cart token a
     * browser's session keeps instead of the header (ecom_session.c) */
    if ((rv = ecom_session_cart_checked(q, &kept))) {
        return rv;
    }
    if (!tok && !(tok = kept)) {
        return new_cart_token(q);
    }
    if (!ecom_token_shape_ok(tok)) {
        return kept ? stale_session_cart(q) : ecom_guest_rejected(q);
    }
    q->guest_hash = token_hash(q, tok);
    if (deferred) {
        q->guest_pending = 1;
        return 0;
    }
    /* a POST's cart is found (and locked) again by ecom_guest_cart_add; it
     * is looked up here too, so a bad token is answered before the body,
     * as a bad bearer token is */
    return lookup(q);
}

int ecom_guest_resolved(ecom_req *q, const char *cart_id)
{
    long long id;

    q->guest_pending = 0;
    if (!cart_id || ecom_parse_ll(cart_id, 1, LLONG_MAX, &id) != 0) {
        /* the token came from the session when no header was sent */
        return !apr_table_get(q->r->headers_in, "Cart-Token")
               ? stale_session_cart(q) : ecom_guest_rejected(q);
    }
    q->guest_cart_id = id;
    return 0;
}

int ecom_guest_find(ecom_req *q)
{
    return q->guest_pending ? lookup(q) : 0;
}

/* One merge row as a report entry. */
static json_t *merge_entry(ecom_req *q, apr_dbd_row_t *row, int merged)
{
    const char *reason = ecom_db_get(q, row, M_REASON);
    json_t *o = ecom_jown(q, json_pack(
        "{s:I, s:s, s:I, s:I, s:I}",
        "product_id", (json_int_t)ecom_db_ll(q, row, M_PRODUCT_ID),
        "name", ecom_db_get(q, row, M_NAME),
        "requested", (json_int_t)ecom_db_ll(q, row, M_REQUESTED),
        "added", (json_int_t)ecom_db_ll(q, row, M_ADDED),
        "quantity", (json_int_t)ecom_db_ll(q, row, M_QUANTITY)));

    if (o && (reason || !merged)) {
        json_object_set_new(o, merged ? "limited_by" : "reason",
                            json_string(reason ? reason : "unknown"));
    }
    return o;
}

int ecom_guest_cart_merge(ecom_req *q, long long user_id, json_t *answer)
{
    /* or the one a browser's session keeps (ecom_session.c), which the
     * session that login starts then drops */
    const char *tok = apr_table_get(q->r->headers_in, "Cart-Token");
    json_t *merged, *not_merged, *report;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    const char *args[2];
    int found = 0;
    ecom_err e;

    if (!tok && !(tok = ecom_session_cart(q))) {
        return 0;
    }
    merged = ecom_jarray(q);
    not_merged = ecom_jarray(q);
    if (ecom_token_shape_ok(tok)) {
        args[0] = ECOM_LL(q, user_id);
        args[1] = token_hash(q, tok);
        if ((e = ecom_db_select(q, "ecom_guest_cart_merge", &res, 2, args))) {
            return ecom_fail(q, e);
        }
        /* a row of NULLs: no live guest cart; no row: a live empty one */
        found = 1;
        while (ecom_db_next(q, res, &row)) {
            if (!ecom_db_get(q, row, M_PRODUCT_ID)) {
                found = 0;
                continue;
            }
            if (ecom_db_ll(q, row, M_ADDED) > 0) {
                json_array_append(merged, merge_entry(q, row, 1));
            }
            else {
                json_array_append(not_merged, merge_entry(q, row, 0));
            }
        }
    }
    report = ecom_jown(q, json_pack("{s:b, s:O, s:O}", "found", found,
                                    "merged", merged,
                                    "not_merged", not_merged));
    json_object_set(answer, "cart_merge", report);
    return 0;
}

const ecom_resource ecom_guest_cart_resource = {
    "guest_cart", guest_sql, NULL, NULL
};
