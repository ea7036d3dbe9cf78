/*
 * ecom_account.c: the rest of the account API (issue 9, parts 1 and 6):
 * logout, the caller's profile (GET, PATCH, DELETE /auth/me/), password
 * change, the caller's sessions (live bearer tokens), password reset, and
 * the user reads of the staff and support roles (GET /users/...).
 * Registration, login and token checks stay in ecom_auth.c.
 *
 * Revocation is immediate everywhere: no process caches a token, every
 * request looks its token up in PostgreSQL (ecom_token_user, or the
 * checkout and cart functions of sql/010_inline_auth.sql), so a token
 * revoked by one child is refused by every child and host at once.
 *
 * Secrets: the password is re-verified (argon2id) before anything that
 * would let a thief keep the account: changing the e-mail or the password,
 * closing it. A wrong password is 403 wrong-password (the token is fine,
 * so not 401); none at all is 422. Every write that follows a verification
 * is conditioned on the password hash still being the one verified, so a
 * concurrent password change makes it a 409, never a write on a stale
 * check. Reset tokens are 256 random bits, stored as their SHA-256 only;
 * the clear token goes once into password_reset_outbox for the operator's
 * mailer (the module sends no mail), and is deleted with its reset row.
 *
 * Roles (sql/016_accounts.sql): customer, support, staff. q->is_staff is
 * staff alone (every write route keeps using it); q->reads_all is staff
 * or support, for reads of other users' orders and of users. Roles are
 * granted by scripts/ecom-admin only: no body field here or in
 * registration ever sets one (PATCH /auth/me/ refuses unknown fields).
 *
 * last_used_at of a token moves at most once per 5 minutes
 * (ECOM_TOKEN_SEEN_EVERY): ecom_token_user says when it is older, and
 * only then does ecom_account_token_seen write. The inline-auth writes
 * (POST /cart/, POST /orders/ without an Idempotency-Key) do not move it:
 * their one statement stays one statement. The recommendation reads that
 * resolve the token in their statement (ecom_recs.c) do, through
 * ecom_auth_caller(): the write then, once per 5 minutes per token.
 */
#include "ecom_resource.h"
#include "ecom_account.h"
#include "ecom_session.h"
#include "ecom_auth.h"
#include "ecom_http.h"
#include "ecom_crypto.h"
#include "ecom_page.h"
#include "ecom_util.h"

#define UA_MAX 256

#define ME_COLS \
    "u.id, u.email, u.name, u.is_staff, u.role, " ECOM_TS("u.created_at")
enum { ME_ID, ME_EMAIL, ME_NAME, ME_IS_STAFF, ME_ROLE, ME_CREATED_AT,
       ME_NCOLS };
/* the staff and support view adds when the account was closed */
#define USER_COLS ME_COLS ", " ECOM_TS("u.closed_at")
enum { US_CLOSED_AT = ME_NCOLS, US_NCOLS };
/* ecom_account_secret */
enum { S_EMAIL, S_PASSWORD_HASH };
/* ecom_sessions */
enum { SE_ID, SE_CREATED_AT, SE_EXPIRES_AT, SE_LAST_USED_AT, SE_USER_AGENT,
       SE_CURRENT, SE_NCOLS };

/* outstanding reset tokens of a user spent, their clear copies dropped */
#define SPEND_RESETS \
    "WITH s AS (UPDATE password_resets SET used_at = now() " \
    "WHERE user_id = %s::bigint AND used_at IS NULL) " \
    "DELETE FROM password_reset_outbox o USING password_resets r " \
    "WHERE r.id = o.reset_id AND r.user_id = %s::bigint"

static const ecom_stmt account_sql[] = {
    { "ecom_account_me",
      "SELECT " ME_COLS " FROM users u WHERE u.id = %s::bigint",
      ECOM_STMT_READ },
    { "ecom_account_secret",
      "SELECT email, password_hash FROM users WHERE id = %s::bigint",
      ECOM_STMT_READ },
    /* PATCH /auth/me/: NULL keeps a column; a new e-mail only while the
     * hash is the one verified (the 4th and 5th arguments, NULL when the
     * e-mail does not change), and it spends the reset tokens mailed to
     * the old address (the last argument: the new e-mail or NULL) */
    { "ecom_account_update",
      "WITH up AS (UPDATE users u SET name = COALESCE(%s, u.name), "
      "email = COALESCE(%s, u.email), updated_at = now() "
      "WHERE u.id = %s::bigint AND (%s::text IS NULL OR u.password_hash = %s) "
      "RETURNING " ME_COLS "), "
      "spent AS (UPDATE password_resets SET used_at = now() "
      "WHERE %s::text IS NOT NULL AND user_id IN (SELECT id FROM up) "
      "AND used_at IS NULL RETURNING id), "
      "mail AS (DELETE FROM password_reset_outbox "
      "WHERE reset_id IN (SELECT id FROM spent)) "
      "SELECT * FROM up", 0 },
    { "ecom_account_set_password",
      "UPDATE users SET password_hash = %s, updated_at = now() "
      "WHERE id = %s::bigint AND password_hash = %s AND closed_at IS NULL "
      "RETURNING id", 0 },
    /* every live token of the user but one (0: all); run after the user
     * row's lock, so its snapshot sees a token a racing login committed */
    { "ecom_account_revoke_others",
      "UPDATE auth_tokens SET revoked_at = now() WHERE user_id = %s::bigint "
      "AND id <> %s::bigint AND revoked_at IS NULL", 0 },
    { "ecom_account_spend_resets", SPEND_RESETS, 0 },
    /* logout and DELETE /auth/sessions/{id}/: one live token of the user */
    { "ecom_session_revoke",
      "UPDATE auth_tokens SET revoked_at = now() WHERE id = %s::bigint "
      "AND user_id = %s::bigint AND revoked_at IS NULL "
      "AND expires_at > now()", 0 },
    { "ecom_sessions",
      "SELECT id, " ECOM_TS("created_at") ", " ECOM_TS("expires_at") ", "
      ECOM_TS("last_used_at") ", user_agent, id = %s::bigint "
      "FROM auth_tokens WHERE user_id = %s::bigint AND revoked_at IS NULL "
      "AND expires_at > now() "
      "AND id < COALESCE(%s::bigint, 9223372036854775807) "
      "ORDER BY id DESC LIMIT %s::int", ECOM_STMT_READ },
    { "ecom_token_seen",
      "UPDATE auth_tokens SET last_used_at = now() WHERE id = %s::bigint "
      "AND last_used_at < now() - " ECOM_TOKEN_SEEN_EVERY, 0 },
    /* DELETE /auth/me/, in one transaction: the account's lock (the one
     * its cart adds and checkouts take, sql/010_inline_auth.sql), then the
     * personal data goes: the e-mail becomes a placeholder no client can
     * register or log in with (no dot in its domain: ecom_email_valid
     * refuses it), the name is emptied, the hash can match no password */
    { "ecom_account_lock",
      "SELECT ecom_account_lock(%s::bigint, NULL)", 0 },
    { "ecom_account_close",
      "UPDATE users SET email = 'closed-' || id || '@invalid', name = '', "
      "password_hash = '!', role = 'customer', closed_at = now(), "
      "updated_at = now() WHERE id = %s::bigint AND password_hash = %s "
      "AND closed_at IS NULL RETURNING id", 0 },
    { "ecom_account_cart_empty",
      "DELETE FROM cart_items WHERE user_id = %s::bigint", 0 },
    { "ecom_account_resets_delete",
      "DELETE FROM password_resets WHERE user_id = %s::bigint", 0 },
    /* the address book (ecom_addresses.c): personal data, not the books'
     * (an order keeps its own snapshot of the address it shipped to) */
    { "ecom_account_addresses_delete",
      "DELETE FROM addresses WHERE user_id = %s::bigint", 0 },
    /* POST /auth/password-reset/: for an open account, a reset token (at
     * most one new one per account per minute) and its mail, one
     * statement; nothing for anyone else, with the same answer */
    { "ecom_reset_request",
      "WITH u AS (SELECT id, email FROM users WHERE lower(email) = lower(%s) "
      "AND closed_at IS NULL AND NOT EXISTS (SELECT 1 FROM password_resets p "
      "WHERE p.user_id = users.id "
      "AND p.created_at > now() - interval '60 seconds')), "
      "r AS (INSERT INTO password_resets (user_id, token_hash, expires_at) "
      "SELECT id, %s, now() + make_interval(secs => %s::int) FROM u "
      "RETURNING id, user_id, expires_at) "
      "INSERT INTO password_reset_outbox (reset_id, email, token, expires_at) "
      "SELECT r.id, u.email, %s, r.expires_at FROM r JOIN u ON u.id = r.user_id",
      0 },
    { "ecom_reset_check",
      "SELECT r.user_id FROM password_resets r JOIN users u ON u.id = r.user_id "
      "WHERE r.token_hash = %s AND r.used_at IS NULL AND r.expires_at > now() "
      "AND u.closed_at IS NULL", ECOM_STMT_READ },
    { "ecom_reset_use",
      "UPDATE password_resets SET used_at = now() WHERE token_hash = %s "
      "AND used_at IS NULL AND expires_at > now() RETURNING user_id", 0 },
    { "ecom_reset_password",
      "UPDATE users SET password_hash = %s, updated_at = now() "
      "WHERE id = %s::bigint AND closed_at IS NULL RETURNING id", 0 },
    /* staff and support */
    { "ecom_users",
      "SELECT " USER_COLS " FROM users u "
      "WHERE u.id > COALESCE(%s::bigint, 0) ORDER BY u.id LIMIT %s::int",
      ECOM_STMT_READ },
    { "ecom_users_email",
      "SELECT " USER_COLS " FROM users u WHERE lower(u.email) = lower(%s) "
      "AND u.id > COALESCE(%s::bigint, 0) ORDER BY u.id LIMIT %s::int",
      ECOM_STMT_READ },
    { "ecom_user_get",
      "SELECT " USER_COLS " FROM users u WHERE u.id = %s::bigint",
      ECOM_STMT_READ },
    { NULL, NULL, 0 }
};

static const ecom_col me_cols[] = {
    [ME_ID] = { "id", EC_INT }, [ME_EMAIL] = { "email", EC_STR },
    [ME_NAME] = { "name", EC_STR }, [ME_IS_STAFF] = { "is_staff", EC_BOOL },
    [ME_ROLE] = { "role", EC_STR },
    [ME_CREATED_AT] = { "created_at", EC_TIME }, [ME_NCOLS] = { NULL, 0 }
};

static const ecom_col user_cols[] = {
    [ME_ID] = { "id", EC_INT }, [ME_EMAIL] = { "email", EC_STR },
    [ME_NAME] = { "name", EC_STR }, [ME_IS_STAFF] = { "is_staff", EC_BOOL },
    [ME_ROLE] = { "role", EC_STR },
    [ME_CREATED_AT] = { "created_at", EC_TIME },
    [US_CLOSED_AT] = { "closed_at", EC_TIME }, [US_NCOLS] = { NULL, 0 }
};

static const ecom_col session_cols[] = {
    [SE_ID] = { "id", EC_INT }, [SE_CREATED_AT] = { "created_at", EC_TIME },
    [SE_EXPIRES_AT] = { "expires_at", EC_TIME },
    [SE_LAST_USED_AT] = { "last_used_at", EC_TIME },
    [SE_USER_AGENT] = { "user_agent", EC_STR_NULL },
    [SE_CURRENT] = { "current", EC_BOOL }, [SE_NCOLS] = { NULL, 0 }
};

/* ---- shared with ecom_auth.c ---- */

const char *ecom_account_user_agent(ecom_req *q)
{
    const char *ua = apr_table_get(q->r->headers_in, "User-Agent");
    size_t n;
    char *out;

    if (!ua) {
        return NULL;
    }
    n = strlen(ua);
    n = n > UA_MAX ? UA_MAX : n;
    out = apr_pstrmemdup(q->r->pool, ua, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c > 0x7e) {
            out[i] = '?';
        }
    }
    return out;
}

void ecom_account_token_seen(ecom_req *q)
{
    const char *args[1] = { ECOM_LL(q, q->token_id) };
    ecom_err e = ecom_db_query(q, "ecom_token_seen", NULL, 1, args);

    if (e) {
        /* logged by the data layer; the request goes on */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, q->r, "ECOM1601: "
                      "last_used_at of token %" APR_INT64_T_FMT " not moved",
                      (apr_int64_t)q->token_id);
    }
}

/* ---- helpers ---- */

static int wrong_password(ecom_req *q)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, "ECOM1602: wrong "
                  "current password from user %" APR_INT64_T_FMT,
                  (apr_int64_t)q->user_id);
    return ecom_problem(q, HTTP_FORBIDDEN, "wrong-password",
                        "The current password is wrong.");
}

static int password_changed(ecom_req *q)
{
    return ecom_problem(q, HTTP_CONFLICT, "conflict",
                        "The account's password changed during the "
                        "request; try again.");
}

/* Reads the caller's e-mail and password hash into *email and *hash
 * (pool copies): 0, or the status of the answer set. */
static int load_secret(ecom_req *q, const char **email, const char **hash)
{
    const char *args[1] = { ECOM_LL(q, q->user_id) };
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, "ecom_account_secret", &row, 1, args);

    *email = NULL;
    *hash = NULL;
    if (e) {
        /* NOT_FOUND: the token resolved a moment ago; the row is gone */
        return ecom_fail(q, e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    *email = apr_pstrdup(q->r->pool, ecom_db_get(q, row, S_EMAIL));
    *hash = apr_pstrdup(q->r->pool, ecom_db_get(q, row, S_PASSWORD_HASH));
    /* the argon2 run that follows holds no connection */
    ecom_db_release(q);
    return 0;
}

/* Checks password against hash: 0 (it matches) or the 403 set. */
static int check_password(ecom_req *q, const char *password, const char *hash)
{
    if (!ecom_password_verify(hash, password, strlen(password))) {
        return wrong_password(q);
    }
    return 0;
}

/* load_secret, then check_password. */
static int verify_password(ecom_req *q, const char *password,
                           const char **email, const char **hash)
{
    int rv = load_secret(q, email, hash);

    return rv ? rv : check_password(q, password, *hash);
}

/* A new password field (the registration rule) hashed into out: 0, or
 * the status of the answer set (422 with errs, 500). */
static int new_password(ecom_req *q, const char *field, json_t *errs,
                        char out[ECOM_PWHASH_MAX])
{
    const char *pw = NULL;

    if (ecom_get_str(q->body, field, ECOM_PASSWORD_MIN, ECOM_PASSWORD_MAX,
                     &pw, errs) == 0) {
        ecom_field_error(errs, field, "is required");
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    if (ecom_password_hash(pw, strlen(pw), out) != 0) {
        return ecom_problem(q, HTTP_INTERNAL_SERVER_ERROR, "internal",
                            "Could not hash the password.");
    }
    return 0;
}

/* A required string field: 1, or 0 after adding its error to errs. */
static int required_str(ecom_req *q, const char *field, size_t max,
                        const char **out, json_t *errs)
{
    int rv = ecom_get_str(q->body, field, 1, max, out, errs);

    if (rv == 0) {
        ecom_field_error(errs, field, "is required");
    }
    return rv == 1;
}

/* Runs a one-row write (its statement RETURNING one row): ECOM_OK, or
 * NOT_FOUND when it wrote nothing. */
static ecom_err write_one(ecom_req *q, const char *label, int nargs,
                          const char **args)
{
    apr_dbd_row_t *row;

    return ecom_db_one(q, label, &row, nargs, args);
}

/* ---- logout, profile ---- */

/* POST /auth/logout/: the calling token, at once on every child (no
 * cache holds a token). 204 also when a concurrent request revoked it. */
static int ecom_logout(ecom_req *q)
{
    const char *args[2] = { ECOM_LL(q, q->token_id), ECOM_LL(q, q->user_id) };
    ecom_err e = ecom_db_query(q, "ecom_session_revoke", NULL, 2, args);

    if (e) {
        return ecom_fail(q, e);
    }
    /* a browser's cookie session ends with its token (ecom_session.c) */
    ecom_session_end(q);
    return ecom_no_content(q, HTTP_NO_CONTENT);
}

static int send_me(ecom_req *q)
{
    const char *args[1] = { ECOM_LL(q, q->user_id) };
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, "ecom_account_me", &row, 1, args);

    if (e) {
        return ecom_fail(q, e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    return ecom_json(q, HTTP_OK, ecom_row_json(q, row, me_cols, 0));
}

/* GET /auth/me/ */
static int ecom_me_get(ecom_req *q)
{
    return send_me(q);
}

/* PATCH /auth/me/ {name?, email?, current_password?}: the e-mail only
 * with the right current password; anything else in the body is a 422
 * (is_staff, role, id...: never applied). */
static int ecom_me_update(ecom_req *q)
{
    static const char *const known[] = {
        "name", "email", "current_password", NULL
    };
    json_t *errs = ecom_jarray(q);
    const char *name = NULL, *email = NULL, *current = NULL;
    const char *old_email = NULL, *hash = NULL, *args[6];
    apr_dbd_row_t *row;
    ecom_err e;
    int rv;

    ecom_body_unknown(q, q->body, "", known, errs);
    ecom_get_str(q->body, "name", 0, 200, &name, errs);
    if (ecom_get_str(q->body, "email", 3, 254, &email, errs) == 1
        && !ecom_email_valid(email)) {
        ecom_field_error(errs, "email", "is not a valid e-mail address");
    }
    ecom_get_str(q->body, "current_password", 1, ECOM_PASSWORD_MAX, &current,
                 errs);
    if (json_object_size(q->body) == 0) {
        ecom_field_error(errs, "", "send name or email");
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    if (email) {
        if ((rv = load_secret(q, &old_email, &hash))) {
            return rv;
        }
        if (old_email && !strcmp(old_email, email)) {
            /* unchanged: a client sending the whole object back */
            email = NULL;
            hash = NULL;
        }
        else if (!current) {
            ecom_field_error(errs, "current_password",
                             "is required to change the e-mail");
            return ecom_invalid(q, errs);
        }
        else if ((rv = check_password(q, current, hash))) {
            return rv;
        }
    }
    args[0] = name;
    args[1] = email;
    args[2] = ECOM_LL(q, q->user_id);
    args[3] = hash;
    args[4] = hash;
    args[5] = email;
    e = ecom_db_one(q, "ecom_account_update", &row, 6, args);
    if (e == ECOM_E_CONFLICT) {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            "An account with this e-mail already exists.");
    }
    if (e == ECOM_E_NOT_FOUND) {
        return password_changed(q);
    }
    if (e) {
        return ecom_fail(q, e);
    }
    return ecom_json(q, HTTP_OK, ecom_row_json(q, row, me_cols, 0));
}

/* ---- password change ---- */

typedef struct {
    const char *user, *keep;       /* the user; the token kept ("0": none) */
    const char *hash, *old_hash;   /* new hash; the one verified, or NULL */
    const char *reset_hash;        /* a reset token's SHA-256, or NULL */
} pw_change;

/* The password replaced and every token but c->keep revoked, the
 * outstanding reset tokens spent. With c->old_hash (POST /auth/password/)
 * only while the hash is still that one: 409 otherwise. With
 * c->reset_hash (the reset's confirm) the reset token is spent first: 422
 * when it was spent or expired meanwhile; c->user is filled in. */
static ecom_tx_end change_password(ecom_req *q, void *ctx)
{
    pw_change *c = ctx;
    const char *args[3];
    apr_dbd_row_t *row;
    ecom_err e;

    if (c->reset_hash) {
        args[0] = c->reset_hash;
        e = ecom_db_one(q, "ecom_reset_use", &row, 1, args);
        if (e == ECOM_E_NOT_FOUND) {
            ecom_problem(q, HTTP_UNPROCESSABLE_ENTITY, "invalid-token",
                         "The reset token is unknown, used or expired.");
            return ECOM_TX_REFUSE;
        }
        if (e) {
            return ecom_tx_fail(e);
        }
        c->user = apr_pstrdup(q->r->pool, ecom_db_get(q, row, 0));
        args[0] = c->hash;
        args[1] = c->user;
        e = write_one(q, "ecom_reset_password", 2, args);
    }
    else {
        args[0] = c->hash;
        args[1] = c->user;
        args[2] = c->old_hash;
        e = write_one(q, "ecom_account_set_password", 3, args);
    }
    if (e == ECOM_E_NOT_FOUND) {
        if (c->reset_hash) {
            /* the account was closed meanwhile */
            ecom_problem(q, HTTP_UNPROCESSABLE_ENTITY, "invalid-token",
                         "The reset token is unknown, used or expired.");
        }
        else {
            password_changed(q);
        }
        return ECOM_TX_REFUSE;
    }
    args[0] = c->user;
    args[1] = c->keep;
    if (e || (e = ecom_db_query(q, "ecom_account_revoke_others", NULL, 2,
                                args))) {
        return ecom_tx_fail(e);
    }
    args[1] = c->user;
    if ((e = ecom_db_query(q, "ecom_account_spend_resets", NULL, 2, args))) {
        return ecom_tx_fail(e);
    }
    return ECOM_TX_COMMIT;
}

/* POST /auth/password/ {current, new}: 204; the calling token stays,
 * every other one is revoked. */
static int ecom_password_change(ecom_req *q)
{
    static const char *const known[] = { "current", "new", NULL };
    json_t *errs = ecom_jarray(q);
    const char *current = NULL, *email, *old_hash;
    char hash[ECOM_PWHASH_MAX];
    pw_change c = { 0 };
    ecom_err e;
    int rv;

    ecom_body_unknown(q, q->body, "", known, errs);
    required_str(q, "current", ECOM_PASSWORD_MAX, &current, errs);
    if (json_array_size(errs)) {
        /* the new one is checked too, so one answer names both */
        const char *unused = NULL;
        if (ecom_get_str(q->body, "new", ECOM_PASSWORD_MIN, ECOM_PASSWORD_MAX,
                         &unused, errs) == 0) {
            ecom_field_error(errs, "new", "is required");
        }
        return ecom_invalid(q, errs);
    }
    if ((rv = verify_password(q, current, &email, &old_hash))) {
        /* a 403 before the new password is looked at: a guesser learns
         * nothing from the rule */
        return rv;
    }
    if ((rv = new_password(q, "new", errs, hash))) {
        return rv;
    }
    c.user = ECOM_LL(q, q->user_id);
    c.keep = ECOM_LL(q, q->token_id);
    c.hash = hash;
    c.old_hash = old_hash;
    if ((e = ecom_db_tx(q, change_password, &c))) {
        return ecom_fail(q, e);
    }
    return ecom_no_content(q, HTTP_NO_CONTENT);
}

/* ---- sessions ---- */

/* GET /auth/sessions/: the caller's live tokens, newest first. */
static int ecom_sessions_list(ecom_req *q)
{
    const char *cursor = apr_table_get(q->args, "cursor");
    const char *args[4];
    long long k1 = 0, k2 = 0;
    apr_dbd_results_t *res;
    int limit, rv;
    ecom_err e;

    if ((rv = ecom_page_args(q, &limit))) {
        return rv;
    }
    if ((rv = ecom_page_cursor(q, 's', &k1, &k2))) {
        return rv;
    }
    args[0] = ECOM_LL(q, q->token_id);
    args[1] = ECOM_LL(q, q->user_id);
    args[2] = cursor ? ECOM_LL(q, k1) : NULL;
    args[3] = apr_itoa(q->r->pool, limit + 1);
    if ((e = ecom_db_select(q, "ecom_sessions", &res, 4, args))) {
        return ecom_fail(q, e);
    }
    return ecom_page(q, res, limit, session_cols, 's', SE_ID, -1);
}

/* DELETE /auth/sessions/{id}/: one of the caller's live tokens (the
 * calling one too: that is a logout). Another user's: 404. */
static int ecom_session_delete(ecom_req *q)
{
    const char *args[2] = { ECOM_LL(q, q->id[0]), ECOM_LL(q, q->user_id) };
    ecom_err e;
    int n = 0;

    if ((e = ecom_db_query(q, "ecom_session_revoke", &n, 2, args))) {
        return ecom_fail(q, e);
    }
    if (n == 0) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                            "No such session.");
    }
    if (q->id[0] == q->token_id) {
        /* the calling token: a logout, of the browser's session too */
        ecom_session_end(q);
    }
    return ecom_no_content(q, HTTP_NO_CONTENT);
}

/* ---- closing the account ---- */

typedef struct {
    const char *user, *hash;
} closing;

static ecom_tx_end close_account(ecom_req *q, void *ctx)
{
    closing *c = ctx;
    const char *args[2] = { c->user, c->hash };
    ecom_err e;

    /* no cart add or checkout of the account runs meanwhile */
    if ((e = write_one(q, "ecom_account_lock", 1, args))) {
        return ecom_tx_fail(e);
    }
    e = write_one(q, "ecom_account_close", 2, args);
    if (e == ECOM_E_NOT_FOUND) {
        password_changed(q);
        return ECOM_TX_REFUSE;
    }
    args[1] = "0";
    if (e
        || (e = ecom_db_query(q, "ecom_account_revoke_others", NULL, 2, args))
        || (e = ecom_db_query(q, "ecom_account_cart_empty", NULL, 1, args))
        || (e = ecom_db_query(q, "ecom_account_resets_delete", NULL, 1,
                              args))
        || (e = ecom_db_query(q, "ecom_account_addresses_delete", NULL, 1,
                              args))) {
        return ecom_tx_fail(e);
    }
    return ECOM_TX_COMMIT;
}

/* DELETE /auth/me/ {password}: 204. Orders stay (the merchant's books),
 * reviews stay without a name (anonymised), everything else personal is
 * erased; the e-mail can register again at once. */
static int ecom_me_delete(ecom_req *q)
{
    static const char *const known[] = { "password", NULL };
    json_t *errs = ecom_jarray(q);
    const char *password = NULL, *email;
    closing c = { NULL, NULL };
    ecom_err e;
    int rv;

    ecom_body_unknown(q, q->body, "", known, errs);
    required_str(q, "password", ECOM_PASSWORD_MAX, &password, errs);
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    if ((rv = verify_password(q, password, &email, &c.hash))) {
        return rv;
    }
    c.user = ECOM_LL(q, q->user_id);
    if ((e = ecom_db_tx(q, close_account, &c))) {
        return ecom_fail(q, e);
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, "ECOM1603: account %"
                  APR_INT64_T_FMT " closed", (apr_int64_t)q->user_id);
    /* every token is revoked: a browser's session ends too */
    ecom_session_end(q);
    return ecom_no_content(q, HTTP_NO_CONTENT);
}

/* ---- password reset ---- */

/* POST /auth/password-reset/ {email}: 202, the same answer whether an
 * account has that e-mail or not. The same work too: a token is made and
 * hashed and one statement runs either way (it writes two rows when the
 * account exists); no argon2 on either path. */
static int ecom_reset_request(ecom_req *q)
{
    static const char *const known[] = { "email", NULL };
    json_t *errs = ecom_jarray(q);
    const char *email = NULL, *args[4];
    char tok[ECOM_TOKEN_LEN + 1], hash[ECOM_SHA256_HEX];
    ecom_err e;
    int rv;

    ecom_body_unknown(q, q->body, "", known, errs);
    if (ecom_get_str(q->body, "email", 3, 254, &email, errs) == 0) {
        ecom_field_error(errs, "email", "is required");
    }
    else if (email && !ecom_email_valid(email)) {
        ecom_field_error(errs, "email", "is not a valid e-mail address");
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    if ((rv = ecom_auth_token_new(q, tok, hash))) {
        return rv;
    }
    args[0] = email;
    args[1] = hash;
    args[2] = apr_itoa(q->r->pool, q->sc->reset_lifetime);
    args[3] = apr_pstrdup(q->r->pool, tok);
    if ((e = ecom_db_query(q, "ecom_reset_request", NULL, 4, args))) {
        return ecom_fail(q, e);
    }
    apr_table_setn(q->r->headers_out, "Cache-Control", "no-store");
    return ecom_json(q, HTTP_ACCEPTED,
                     ecom_jown(q, json_pack("{s:s}", "detail",
                                            "If an account uses this e-mail "
                                            "address, a password reset "
                                            "message is on its way.")));
}

/* POST /auth/password-reset/confirm/ {token, new_password}: 204, the
 * password set, the token spent, every token of the account revoked.
 * Unknown, used or expired token: 422 invalid-token, before any argon2
 * run (a stranger's guesses cost no hashing). */
static int ecom_reset_confirm(ecom_req *q)
{
    static const char *const known[] = { "token", "new_password", NULL };
    json_t *errs = ecom_jarray(q);
    const char *token = NULL, *args[1];
    char thash[ECOM_SHA256_HEX], hash[ECOM_PWHASH_MAX];
    pw_change c = { 0 };
    apr_dbd_row_t *row;
    ecom_err e;
    int rv;

    ecom_body_unknown(q, q->body, "", known, errs);
    required_str(q, "token", 256, &token, errs);
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    if (!ecom_token_shape_ok(token)) {
        e = ECOM_E_NOT_FOUND;
    }
    else {
        ecom_sha256_hex(token, ECOM_TOKEN_LEN, thash);
        args[0] = thash;
        e = ecom_db_one(q, "ecom_reset_check", &row, 1, args);
    }
    if (e == ECOM_E_NOT_FOUND) {
        return ecom_problem(q, HTTP_UNPROCESSABLE_ENTITY, "invalid-token",
                            "The reset token is unknown, used or expired.");
    }
    if (e) {
        return ecom_fail(q, e);
    }
    ecom_db_release(q);
    if ((rv = new_password(q, "new_password", errs, hash))) {
        return rv;
    }
    c.keep = "0";
    c.hash = hash;
    c.reset_hash = thash;
    if ((e = ecom_db_tx(q, change_password, &c))) {
        return ecom_fail(q, e);
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, "ECOM1605: password of "
                  "user %s reset", c.user);
    return ecom_no_content(q, HTTP_NO_CONTENT);
}

/* ---- users, for staff and support ---- */

static int readers_only(ecom_req *q)
{
    return ecom_problem(q, HTTP_FORBIDDEN, "forbidden",
                        "This needs a staff or support account.");
}

/* GET /users/ (?email= exact, case-insensitive): id ascending. */
static int ecom_users_list(ecom_req *q)
{
    const char *cursor = apr_table_get(q->args, "cursor");
    const char *email = apr_table_get(q->args, "email");
    const char *args[3];
    long long k1 = 0, k2 = 0;
    apr_dbd_results_t *res;
    int limit, rv, n = 0;
    ecom_err e;

    if (!q->reads_all) {
        return readers_only(q);
    }
    if ((rv = ecom_page_args(q, &limit))) {
        return rv;
    }
    if (email && (!*email || strlen(email) > 254)) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "Query parameter email must be 1 to 254 bytes.");
    }
    if ((rv = ecom_page_cursor(q, 'u', &k1, &k2))) {
        return rv;
    }
    if (email) {
        args[n++] = email;
    }
    args[n++] = cursor ? ECOM_LL(q, k1) : NULL;
    args[n++] = apr_itoa(q->r->pool, limit + 1);
    if ((e = ecom_db_select(q, email ? "ecom_users_email" : "ecom_users",
                            &res, n, args))) {
        return ecom_fail(q, e);
    }
    return ecom_page(q, res, limit, user_cols, 'u', ME_ID, -1);
}

/* GET /users/{id}/ */
static int ecom_user_get(ecom_req *q)
{
    const char *args[1] = { ECOM_LL(q, q->id[0]) };
    apr_dbd_row_t *row;
    ecom_err e;

    if (!q->reads_all) {
        return readers_only(q);
    }
    e = ecom_db_one(q, "ecom_user_get", &row, 1, args);
    if (e == ECOM_E_NOT_FOUND) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such user.");
    }
    if (e) {
        return ecom_fail(q, e);
    }
    return ecom_json(q, HTTP_OK, ecom_row_json(q, row, user_cols, 0));
}

static const ecom_route account_routes[] = {
    { M_POST, "auth/logout", ecom_logout, ECOM_AUTH_USER, 0, 0,
      "auth.logout" },
    { M_GET, "auth/me", ecom_me_get, ECOM_AUTH_USER, 0, 0, "auth.me" },
    { M_PATCH, "auth/me", ecom_me_update, ECOM_AUTH_USER, ECOM_BODY, 0,
      "auth.me.update" },
    { M_DELETE, "auth/me", ecom_me_delete, ECOM_AUTH_USER, ECOM_BODY, 0,
      "auth.me.delete" },
    { M_POST, "auth/password", ecom_password_change, ECOM_AUTH_USER,
      ECOM_BODY, 0, "auth.password" },
    { M_GET, "auth/sessions", ecom_sessions_list, ECOM_AUTH_USER, 0, 0,
      "auth.sessions" },
    { M_DELETE, "auth/sessions/{id}", ecom_session_delete, ECOM_AUTH_USER, 0,
      0, "auth.sessions.delete" },
    { M_POST, "auth/password-reset", ecom_reset_request, ECOM_AUTH_NONE,
      ECOM_BODY, 0, "auth.password_reset" },
    { M_POST, "auth/password-reset/confirm", ecom_reset_confirm,
      ECOM_AUTH_NONE, ECOM_BODY, 0, "auth.password_reset.confirm" },
    /* staff and support (checked by the handlers: q->reads_all) */
    { M_GET, "users", ecom_users_list, ECOM_AUTH_USER, 0, 0, "users.list" },
    { M_GET, "users/{id}", ecom_user_get, ECOM_AUTH_USER, 0, 0,
      "users.get" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_account_resource = {
    "account", account_sql, account_routes, NULL
};
