/*
 * ecom_auth.h: bearer-token authentication (ecom_auth.c), for the router.
 */
#ifndef ECOM_AUTH_H
#define ECOM_AUTH_H

#include "ecom_req.h"
#include "ecom_account.h"

/* Resolves the bearer token, if any, into q->user_id and q->is_staff.
 * need: 0 anyone, 1 a user, 2 staff. Returns 0 or the status of the
 * problem it set (401, 403, 503). */
int ecom_authenticate(ecom_req *q, int need);

/* For a route flagged ECOM_AUTH_INLINE (a user route whose one statement
 * resolves the token itself, a round trip fewer): checks the Authorization
 * header as ecom_authenticate does, without the database, and keeps the
 * token's SHA-256 (hex) in q->token_hash. Returns 0 or the 401 set. */
int ecom_authenticate_inline(ecom_req *q);
/* The caller a bearer token's SHA-256 names, by ecom_token_user's rule
 * (not revoked, not expired), for a statement that resolves the token
 * itself: a subquery of one row or none, whose one parameter is the hash,
 * with the ECOM_CALLER_NCOLS columns ecom_auth_caller() reads (user id,
 * is_staff, the token's id, reads_all, last_used_at older than
 * ECOM_TOKEN_SEEN_EVERY). A LEFT JOIN to it keeps the statement's row when
 * the token names no one (all NULL). */
#define ECOM_CALLER_COLS \
    "u.id AS caller_id, u.is_staff AS caller_is_staff, " \
    "t.id AS caller_token_id, u.role <> 'customer' AS caller_reads_all, " \
    "t.last_used_at < now() - " ECOM_TOKEN_SEEN_EVERY " AS caller_stale"
#define ECOM_CALLER_FROM \
    "auth_tokens t JOIN users u ON u.id = t.user_id " \
    "WHERE t.token_hash = %s AND t.revoked_at IS NULL " \
    "AND t.expires_at > now()"
#define ECOM_CALLER_SQL "SELECT " ECOM_CALLER_COLS " FROM " ECOM_CALLER_FROM
#define ECOM_CALLER_NCOLS 5
/* Reads those columns, from column col of row (row NULL: no one), into
 * q->user_id, is_staff, token_id and reads_all, as ecom_authenticate sets
 * them, moving the token's last_used_at when it is stale
 * (ecom_account_token_seen). Returns 0, or answers the 401 of a token that
 * names no one and returns it. */
int ecom_auth_caller(ecom_req *q, apr_dbd_row_t *row, int col);
/* After that statement: user_id is what it resolved the token to (the
 * decimal text of its user_id column; NULL when it resolved to no one).
 * Sets q->user_id and returns 0, or answers the 401 ecom_authenticate
 * would have and returns it. */
int ecom_auth_resolved(ecom_req *q, const char *user_id);
/* The 401 of a token that is malformed, unknown, revoked or expired. */
int ecom_auth_rejected(ecom_req *q);
/* A new random token (ECOM_TOKEN_LEN chars + NUL) into tok and its
 * SHA-256 (hex) into hash: 0, or the 500 set when the random generator
 * failed (bearer tokens; reset tokens, ecom_account.c). */
int ecom_auth_token_new(ecom_req *q, char *tok, char *hash);

#endif /* ECOM_AUTH_H */
