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
#include "ecom.h"
#include "ecom_crypto.h"
#include "ecom_util.h"

#define USER_COLS "u.id, u.email, u.name, u.is_staff, " ECOM_TS("u.created_at")

const ecom_stmt ecom_auth_sql[] = {
    { "ecom_user_insert",
      "INSERT INTO users (email, name, password_hash) VALUES (%s, %s, %s) "
      "ON CONFLICT ((lower(email))) DO NOTHING "
      "RETURNING id, email, name, is_staff, " ECOM_TS("created_at"), 0 },
    { "ecom_user_by_email",
      "SELECT " USER_COLS ", u.password_hash FROM users u "
      "WHERE lower(u.email) = lower(%s)", ECOM_STMT_READ },
    { "ecom_token_insert",
      "INSERT INTO auth_tokens (user_id, token_hash, expires_at) "
      "SELECT u.id, %s, now() + make_interval(secs => %s::int) FROM users u "
      "WHERE u.id = %s::bigint AND u.password_hash = %s FOR SHARE OF u "
      "RETURNING " ECOM_TS("expires_at"), 0 },
    { "ecom_token_user",
      "SELECT u.id, u.is_staff, t.token_hash FROM auth_tokens t "
      "JOIN users u ON u.id = t.user_id "
      "WHERE t.token_hash = %s AND t.revoked_at IS NULL "
      "AND t.expires_at > now()", ECOM_STMT_READ },
    { NULL, NULL, 0 }
};

static const ecom_col user_cols[] = {
    { "id", EC_INT }, { "email", EC_STR }, { "name", EC_STR },
    { "is_staff", EC_BOOL }, { "created_at", EC_TIME }, { NULL, 0 }
};

static int unauthorized(ecom_req *q, const char *detail, int token_sent)
{
    apr_table_setn(q->r->err_headers_out, "WWW-Authenticate",
                   token_sent ? "Bearer realm=\"mod_ecom\", error=\"invalid_token\""
                              : "Bearer realm=\"mod_ecom\"");
    return ecom_problem(q, HTTP_UNAUTHORIZED, "unauthorized", detail);
}

int ecom_authenticate(ecom_req *q, int need)
{
    const char *h = apr_table_get(q->r->headers_in, "Authorization");
    const char *tok;
    char hash[ECOM_SHA256_HEX];
    const char *args[1];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    const char *stored;
    int rv;

    if (!h) {
        return need ? unauthorized(q, "Authentication required: send "
                                   "Authorization: Bearer <token>.", 0)
                    : 0;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        return unauthorized(q, "Use the Bearer authentication scheme.", 1);
    }
    tok = h + 7;
    while (*tok == ' ') {
        tok++;
    }
    if (!ecom_token_shape_ok(tok)) {
        return unauthorized(q, "The token is invalid or has expired.", 1);
    }
    ecom_sha256_hex(tok, ECOM_TOKEN_LEN, hash);
    args[0] = hash;
    if ((rv = ecom_db_select(q, "ecom_token_user", &res, 1, args))) {
        return rv;
    }
    row = ecom_db_row(q, res);
    stored = row ? ecom_db_get(q, row, 2) : NULL;
    if (!stored || strlen(stored) != 64 || !ecom_ct_equal(stored, hash, 64)) {
        return unauthorized(q, "The token is invalid or has expired.", 1);
    }
    q->user_id = ecom_db_ll(q, row, 0);
    q->is_staff = ecom_db_get(q, row, 1)[0] == 't';
    if (need == 2 && !q->is_staff) {
        return ecom_problem(q, HTTP_FORBIDDEN, "forbidden",
                            "This action needs a staff account.");
    }
    return 0;
}

/* Issues a token for user_id into *token and *expires (pool strings), as
 * long as the account's password hash is still pw_hash (the one the caller
 * checked); 401 when it changed meanwhile. */
static int issue_token(ecom_req *q, long long user_id, const char *pw_hash,
                       const char **token, const char **expires)
{
    char tok[ECOM_TOKEN_LEN + 1], hash[ECOM_SHA256_HEX];
    const char *args[4];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    int rv;

    if (ecom_token_new(tok) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, APLOGNO(10910)
                      "random generator failed");
        return ecom_problem(q, HTTP_INTERNAL_SERVER_ERROR, "internal",
                            "Could not create a token.");
    }
    ecom_sha256_hex(tok, ECOM_TOKEN_LEN, hash);
    args[0] = hash;
    args[1] = apr_itoa(q->r->pool, q->sc->token_lifetime);
    args[2] = ECOM_LL(q, user_id);
    args[3] = pw_hash;
    if ((rv = ecom_db_select(q, "ecom_token_insert", &res, 4, args))) {
        return rv;
    }
    if (!(row = ecom_db_row(q, res))) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r,
                      "ECOM0912: no token issued: the password changed "
                      "during the request");
        return unauthorized(q, "The account's password has just changed; "
                            "log in again.", 0);
    }
    *expires = ecom_db_time(q, row, 0);
    *token = apr_pstrdup(q->r->pool, tok);
    return 0;
}

static int auth_result(ecom_req *q, int status, json_t *user,
                       const char *token, const char *expires)
{
    return ecom_json(q, status, json_pack("{s:o, s:s, s:s}", "user", user,
                                          "token", token,
                                          "expires_at", expires));
}

int ecom_register(ecom_req *q)
{
    json_t *errs = ecom_json_pool(q, json_array());
    const char *email = NULL, *password = NULL, *name = "", *args[3];
    const char *token = NULL, *expires = NULL;
    char hash[ECOM_PWHASH_MAX];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    json_t *user;
    long long uid;
    int rv;

    if (ecom_get_str(q->body, "email", 3, 254, &email, errs) == 0) {
        ecom_field_error(errs, "email", "is required");
    }
    else if (email && !ecom_email_valid(email)) {
        ecom_field_error(errs, "email", "is not a valid e-mail address");
    }
    if (ecom_get_str(q->body, "password", 10, 1024, &password, errs) == 0) {
        ecom_field_error(errs, "password", "is required");
    }
    ecom_get_str(q->body, "name", 0, 200, &name, errs);
    if (json_array_size(errs)) {
        return ecom_invalid(q, json_incref(errs));
    }
    if (ecom_password_hash(password, strlen(password), hash) != 0) {
        return ecom_problem(q, HTTP_INTERNAL_SERVER_ERROR, "internal",
                            "Could not hash the password.");
    }
    args[0] = email;
    args[1] = name;
    args[2] = hash;
    if ((rv = ecom_db_select(q, "ecom_user_insert", &res, 3, args))) {
        return rv;
    }
    if (!(row = ecom_db_row(q, res))) {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            "An account with this e-mail already exists.");
    }
    user = ecom_row_json(q, row, user_cols, 0);
    uid = ecom_db_ll(q, row, 0);
    if ((rv = issue_token(q, uid, hash, &token, &expires))) {
        json_decref(user);
        return rv;
    }
    apr_table_setn(q->r->headers_out, "Cache-Control", "no-store");
    return auth_result(q, HTTP_CREATED, user, token, expires);
}

int ecom_login(ecom_req *q)
{
    json_t *errs = ecom_json_pool(q, json_array());
    const char *email = NULL, *password = NULL, *token = NULL, *expires = NULL;
    const char *pw_hash, *args[1];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    json_t *user;
    int rv;

    if (ecom_get_str(q->body, "email", 1, 254, &email, errs) == 0) {
        ecom_field_error(errs, "email", "is required");
    }
    if (ecom_get_str(q->body, "password", 1, 1024, &password, errs) == 0) {
        ecom_field_error(errs, "password", "is required");
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, json_incref(errs));
    }
    args[0] = email;
    if ((rv = ecom_db_select(q, "ecom_user_by_email", &res, 1, args))) {
        return rv;
    }
    row = ecom_db_row(q, res);
    /* unknown e-mail and wrong password: same work, same answer */
    if (!row) {
        ecom_password_burn(password, strlen(password));
    }
    if (!row || !ecom_password_verify(ecom_db_get(q, row, 5), password,
                                      strlen(password))) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, APLOGNO(10911)
                      "failed login");
        return unauthorized(q, "Wrong e-mail or password.", 0);
    }
    pw_hash = apr_pstrdup(q->r->pool, ecom_db_get(q, row, 5));
    user = ecom_row_json(q, row, user_cols, 0);
    if ((rv = issue_token(q, ecom_db_ll(q, row, 0), pw_hash, &token,
                          &expires))) {
        json_decref(user);
        return rv;
    }
    apr_table_setn(q->r->headers_out, "Cache-Control", "no-store");
    return ecom_json(q, HTTP_OK, json_pack("{s:s, s:s, s:o}", "token", token,
                                           "expires_at", expires,
                                           "user", user));
}
