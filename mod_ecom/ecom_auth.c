/*
 * ecom_auth.c: registration, login and bearer-token authentication.
 *
 * Tokens are 256 random bits; only their SHA-256 is stored, so a database
 * leak yields no usable token. Looking a token up by its hash leaks nothing
 * through timing about the token itself. Passwords and tokens are never
 * logged. Staff status is never granted here: only scripts/ecom-admin sets
 * it, so a "role" or "is_staff" in a request body has no effect.
 *
 * A token is issued only while the password it was earned with is still the
 * account's: the insert re-reads the hash under a share lock on the user row.
 * So a login racing with a password change (ecom-admin create-staff
 * --promote-existing, which locks the row, sets the new hash and revokes
 * every token in one transaction) either finished first, and its token is
 * revoked, or finds the hash changed and gets no token.
 */
#include "ecom_auth.h"
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_crypto.h"
#include "ecom_cart.h"
#include "ecom_session.h"
#include "ecom_util.h"
#include "ecom_account.h"

#include <limits.h>

/* The user columns every user SELECT starts with (user_cols' order). */
#define USER_COLS "u.id, u.email, u.name, u.is_staff, " ECOM_TS("u.created_at")
enum { U_ID, U_EMAIL, U_NAME, U_IS_STAFF, U_CREATED_AT,
       U_PASSWORD_HASH /* ecom_user_by_email only */ };
/* ecom_token_user: the stored hash, then the caller (ECOM_CALLER_SQL) */
enum { T_TOKEN_HASH, T_CALLER };
/* ecom_token_insert */
enum { TI_EXPIRES_AT };

static const ecom_stmt auth_sql[] = {
    { "ecom_user_insert",
      "INSERT INTO users (email, name, password_hash) VALUES (%s, %s, %s) "
      "ON CONFLICT ((lower(email))) DO NOTHING "
      "RETURNING id, email, name, is_staff, " ECOM_TS("created_at"), 0 },
    { "ecom_user_by_email",
      "SELECT " USER_COLS ", u.password_hash FROM users u "
      "WHERE lower(u.email) = lower(%s)", ECOM_STMT_READ },
    { "ecom_token_insert",
      "INSERT INTO auth_tokens (user_id, token_hash, expires_at, user_agent) "
      "SELECT u.id, %s, now() + make_interval(secs => %s::int), %s "
      "FROM users u "
      "WHERE u.id = %s::bigint AND u.password_hash = %s FOR SHARE OF u "
      "RETURNING " ECOM_TS("expires_at"), 0 },
    { "ecom_token_user",
      "SELECT t.token_hash, " ECOM_CALLER_COLS " FROM " ECOM_CALLER_FROM,
      ECOM_STMT_READ },
    { NULL, NULL, 0 }
};

static const ecom_col user_cols[] = {
    [U_ID] = { "id", EC_INT }, [U_EMAIL] = { "email", EC_STR },
    [U_NAME] = { "name", EC_STR }, [U_IS_STAFF] = { "is_staff", EC_BOOL },
    [U_CREATED_AT] = { "created_at", EC_TIME }, [U_PASSWORD_HASH] = { NULL, 0 }
};

static int unauthorized(ecom_req *q, const char *detail, int token_sent)
{
    apr_table_setn(q->r->err_headers_out, "WWW-Authenticate",
                   token_sent ? "Bearer realm=\"mod_ecom\", error=\"invalid_token\""
                              : "Bearer realm=\"mod_ecom\"");
    return ecom_problem(q, HTTP_UNAUTHORIZED, "unauthorized", detail);
}

/* The bearer token's SHA-256 (hex) into hash: 0, DECLINED when no
 * Authorization header was sent and need is 0, or the 401 set. */
static int bearer_hash(ecom_req *q, int need, char hash[ECOM_SHA256_HEX])
{
    const char *h = apr_table_get(q->r->headers_in, "Authorization");
    const char *tok;
    int rv;

    if (!h) {
        /* a browser's session, with its CSRF checks (ecom_session.c) */
        if ((rv = ecom_session_token(q, need, &tok))) {
            return rv;
        }
        if (!tok) {
            return need ? unauthorized(q, "Authentication required: send "
                                       "Authorization: Bearer <token>.", 0)
                        : DECLINED;
        }
    }
    else if (strncasecmp(h, "Bearer ", 7) != 0) {
        return unauthorized(q, "Use the Bearer authentication scheme.", 1);
    }
    else {
        tok = h + 7;
        while (*tok == ' ') {
            tok++;
        }
    }
    if (!ecom_token_shape_ok(tok)) {
        return ecom_auth_rejected(q);
    }
    ecom_sha256_hex(tok, ECOM_TOKEN_LEN, hash);
    return 0;
}

int ecom_auth_rejected(ecom_req *q)
{
    if (q->via_session) {
        /* a revoked or expired token: the browser's session ends too */
        ecom_session_end(q);
    }
    return unauthorized(q, "The token is invalid or has expired.", 1);
}

int ecom_authenticate(ecom_req *q, int need)
{
    char hash[ECOM_SHA256_HEX];
    const char *args[1];
    apr_dbd_row_t *row;
    const char *stored;
    ecom_err e;
    int rv = bearer_hash(q, need, hash);

    if (rv) {
        return rv == DECLINED ? 0 : rv;
    }
    args[0] = hash;
    e = ecom_db_one(q, "ecom_token_user", &row, 1, args);
    if (e && e != ECOM_E_NOT_FOUND) {
        return ecom_fail(q, e);
    }
    stored = row ? ecom_db_get(q, row, T_TOKEN_HASH) : NULL;
    if (!stored || strlen(stored) != 64 || !ecom_ct_equal(stored, hash, 64)) {
        return ecom_auth_rejected(q);
    }
    if ((rv = ecom_auth_caller(q, row, T_CALLER))) {
        return rv;
    }
    if (need == 2 && !q->is_staff) {
        return ecom_problem(q, HTTP_FORBIDDEN, "forbidden",
                            "This action needs a staff account.");
    }
    return 0;
}

int ecom_authenticate_inline(ecom_req *q)
{
    char *hash = apr_palloc(q->r->pool, ECOM_SHA256_HEX);
    int rv = bearer_hash(q, 1, hash);

    if (rv) {
        return rv;
    }
    q->token_hash = hash;
    return 0;
}

int ecom_auth_resolved(ecom_req *q, const char *user_id)
{
    long long id;

    if (!user_id || ecom_parse_ll(user_id, 1, LLONG_MAX, &id) != 0) {
        return ecom_auth_rejected(q);
    }
    q->user_id = id;
    q->token_hash = NULL;
    return 0;
}

int ecom_auth_caller(ecom_req *q, apr_dbd_row_t *row, int col)
{
    int rv = ecom_auth_resolved(q, row ? ecom_db_get(q, row, col) : NULL);

    if (rv) {
        return rv;
    }
    q->is_staff = ecom_db_bool(q, row, col + 1);
    q->token_id = ecom_db_ll(q, row, col + 2);
    q->reads_all = ecom_db_bool(q, row, col + 3);
    if (ecom_db_bool(q, row, col + 4)) {
        ecom_account_token_seen(q);
    }
    return 0;
}

int ecom_auth_token_new(ecom_req *q, char *tok, char *hash)
{
    if (ecom_token_new(tok) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r,
                      "ECOM0310: random generator failed");
        return ecom_problem(q, HTTP_INTERNAL_SERVER_ERROR, "internal",
                            "Could not create a token.");
    }
    ecom_sha256_hex(tok, ECOM_TOKEN_LEN, hash);
    return 0;
}

/* Issues a token for user_id into *token and *expires (pool strings), as
 * long as the account's password hash is still pw_hash (the one the caller
 * checked); 401 when it changed meanwhile. */
static int issue_token(ecom_req *q, long long user_id, const char *pw_hash,
                       const char **token, const char **expires)
{
    char tok[ECOM_TOKEN_LEN + 1], hash[ECOM_SHA256_HEX];
    const char *args[5];
    apr_dbd_row_t *row;
    ecom_err e;

    int rv = ecom_auth_token_new(q, tok, hash);

    if (rv) {
        return rv;
    }
    args[0] = hash;
    args[1] = apr_itoa(q->r->pool, q->sc->token_lifetime);
    args[2] = ecom_account_user_agent(q);
    args[3] = ECOM_LL(q, user_id);
    args[4] = pw_hash;
    if ((e = ecom_db_one(q, "ecom_token_insert", &row, 5, args))
        == ECOM_E_NOT_FOUND) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r,
                      "ECOM0312: no token issued: the password changed "
                      "during the request");
        return unauthorized(q, "The account's password has just changed; "
                            "log in again.", 0);
    }
    if (e) {
        return ecom_fail(q, e);
    }
    *expires = ecom_db_time(q, row, TI_EXPIRES_AT);
    *token = apr_pstrdup(q->r->pool, tok);
    return 0;
}

static int auth_result(ecom_req *q, int status, json_t *user,
                       const char *token, const char *expires)
{
    json_t *o = ecom_jown(q, json_pack("{s:O, s:s, s:s}", "user", user,
                                       "token", token, "expires_at", expires));
    long long user_id = json_integer_value(json_object_get(user, "id"));
    /* a Cart-Token sent along merges its guest cart (ecom_guest_cart.c) */
    int rv = ecom_guest_cart_merge(q, user_id, o);

    if (rv) {
        return rv;
    }
    if (o) {
        /* with EcomSessions On: the browser's session and CSRF token */
        ecom_session_start(q, token, o);
    }
    return ecom_json(q, status, o);
}

static int ecom_register(ecom_req *q)
{
    json_t *errs = ecom_jarray(q);
    const char *email = NULL, *password = NULL, *name = "", *args[3];
    const char *token = NULL, *expires = NULL;
    char hash[ECOM_PWHASH_MAX];
    apr_dbd_row_t *row;
    json_t *user;
    ecom_err e;
    int rv;

    if (ecom_get_str(q->body, "email", 3, 254, &email, errs) == 0) {
        ecom_field_error(errs, "email", "is required");
    }
    else if (email && !ecom_email_valid(email)) {
        ecom_field_error(errs, "email", "is not a valid e-mail address");
    }
    if (ecom_get_str(q->body, "password", ECOM_PASSWORD_MIN,
                     ECOM_PASSWORD_MAX, &password, errs) == 0) {
        ecom_field_error(errs, "password", "is required");
    }
    ecom_get_str(q->body, "name", 0, 200, &name, errs);
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    if (ecom_password_hash(password, strlen(password), hash) != 0) {
        return ecom_problem(q, HTTP_INTERNAL_SERVER_ERROR, "internal",
                            "Could not hash the password.");
    }
    args[0] = email;
    args[1] = name;
    args[2] = hash;
    if ((e = ecom_db_one(q, "ecom_user_insert", &row, 3, args))
        == ECOM_E_NOT_FOUND) {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            "An account with this e-mail already exists.");
    }
    if (e) {
        return ecom_fail(q, e);
    }
    user = ecom_row_json(q, row, user_cols, 0);
    if ((rv = issue_token(q, ecom_db_ll(q, row, U_ID), hash, &token,
                          &expires))) {
        return rv;
    }
    apr_table_setn(q->r->headers_out, "Cache-Control", "no-store");
    return auth_result(q, HTTP_CREATED, user, token, expires);
}

static int ecom_login(ecom_req *q)
{
    json_t *errs = ecom_jarray(q);
    const char *email = NULL, *password = NULL, *token = NULL, *expires = NULL;
    const char *pw_hash, *args[1];
    apr_dbd_row_t *row;
    json_t *user;
    ecom_err e;
    int rv;

    if (ecom_get_str(q->body, "email", 1, 254, &email, errs) == 0) {
        ecom_field_error(errs, "email", "is required");
    }
    if (ecom_get_str(q->body, "password", 1, 1024, &password, errs) == 0) {
        ecom_field_error(errs, "password", "is required");
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    args[0] = email;
    e = ecom_db_one(q, "ecom_user_by_email", &row, 1, args);
    if (e && e != ECOM_E_NOT_FOUND) {
        return ecom_fail(q, e);
    }
    /* unknown e-mail and wrong password: same work, same answer */
    if (!row) {
        ecom_password_burn(password, strlen(password));
    }
    if (!row || !ecom_password_verify(ecom_db_get(q, row, U_PASSWORD_HASH),
                                      password, strlen(password))) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r,
                      "ECOM0311: failed login");
        return unauthorized(q, "Wrong e-mail or password.", 0);
    }
    pw_hash = apr_pstrdup(q->r->pool, ecom_db_get(q, row, U_PASSWORD_HASH));
    user = ecom_row_json(q, row, user_cols, 0);
    if ((rv = issue_token(q, ecom_db_ll(q, row, U_ID), pw_hash, &token,
                          &expires))) {
        return rv;
    }
    apr_table_setn(q->r->headers_out, "Cache-Control", "no-store");
    return auth_result(q, HTTP_OK, user, token, expires);
}

static const ecom_route auth_routes[] = {
    { M_POST, "auth/register", ecom_register, ECOM_AUTH_NONE, ECOM_BODY, 0,
      "auth.register" },
    { M_POST, "auth/login", ecom_login, ECOM_AUTH_NONE, ECOM_BODY, 0,
      "auth.login" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_auth_resource = {
    "auth", auth_sql, auth_routes, NULL
};
