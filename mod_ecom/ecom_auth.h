/*
 * ecom_auth.h: bearer-token authentication (ecom_auth.c), for the router.
 */
#ifndef ECOM_AUTH_H
#define ECOM_AUTH_H

#include "ecom_req.h"

/* Resolves the bearer token, if any, into q->user_id and q->is_staff.
 * need: 0 anyone, 1 a user, 2 staff. Returns 0 or the status of the
 * problem it set (401, 403, 503). */
int ecom_authenticate(ecom_req *q, int need);

/* For a route flagged ECOM_AUTH_INLINE (a user route whose one statement
 * resolves the token itself, a round trip fewer): checks the Authorization
 * header as ecom_authenticate does, without the database, and keeps the
 * token's SHA-256 (hex) in q->token_hash. Returns 0 or the 401 set. */
int ecom_authenticate_inline(ecom_req *q);
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
