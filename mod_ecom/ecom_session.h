/*
 * ecom_session.h: cookie sessions for browser clients (ecom_session.c),
 * through mod_session's API, with the CSRF defence that cookies need.
 *
 * With "EcomSessions On" in a section, login and register also store the
 * bearer token they issue in the request's mod_session session (kept by
 * mod_session_cookie + mod_session_crypto in an encrypted cookie), and a
 * request without an Authorization header is authenticated by the token
 * in its session. So revocation, expiry and the token list work for
 * browsers exactly as for API clients. Off (the default), nothing here
 * runs.
 */
#ifndef ECOM_SESSION_H
#define ECOM_SESSION_H

#include "ecom_req.h"

/* The cookie the CSRF token is mirrored in (readable by the page's
 * script: not HttpOnly) and the header it must come back in. */
#define ECOM_CSRF_COOKIE "ecom_csrf"
#define ECOM_CSRF_HEADER "X-CSRF-Token"

/* EcomSessions On|Off: the directive's setter (ecom_config.c's table);
 * On needs mod_session loaded before it. */
const char *ecom_session_set_flag(cmd_parms *cmd, void *dcfg, int on);

/* For a request without an Authorization header (ecom_auth.c): *token is
 * the bearer token of the request's session, or NULL (sessions off, no
 * session, no token in it). A state-changing request (any method but
 * GET, HEAD, OPTIONS) must come from this origin (Origin, Sec-Fetch-Site)
 * and, to use the session's token, carry X-CSRF-Token equal to the
 * session's CSRF token and to the ecom_csrf cookie. need as for
 * ecom_authenticate: where a user is needed a failed check is a 403, where
 * one is only optional (login, register) the session is not used.
 * Returns 0 or the status of the problem set (403). Sets q->via_session
 * when *token is the session's. */
int ecom_session_token(ecom_req *q, int need, const char **token);

/* 1 when sessions are on and the request's session holds a token (not
 * yet checked against the token table): such a request is a user's, never
 * a guest cart's (ecom_guest_cart.c). */
int ecom_session_holds_token(ecom_req *q);

/* The token the request's session holds (sessions on), unchecked and
 * without the CSRF checks or any cookie written: what the per-token
 * request budget (EcomTokenRateLimit, ecom_throttle.c) counts a browser's
 * requests by. NULL without one. */
const char *ecom_session_peek_token(ecom_req *q);

/* Guest carts (ecom_guest_cart.c) of a browser without an account: the
 * guest cart's token kept in the session instead of a Cart-Token header.
 * ecom_session_cart: the session's cart token, or NULL (sessions off, a
 * Cart-Token or Authorization header sent, none in the session).
 * ecom_session_cart_checked: the same for a guest's request about to use
 * it, with the checks of ecom_session_token on writes (the origin always,
 * the CSRF token when the session's cart token is used): 0 or the 403 set. ecom_session_keep_cart: a new guest cart's token goes
 * into the session (with a CSRF token, and the ecom_csrf cookie, when the
 * session has none). ecom_session_drop_cart: the session's cart token is
 * dropped (its cart expired, or was merged at login). */
const char *ecom_session_cart(ecom_req *q);
int ecom_session_cart_checked(ecom_req *q, const char **token);
void ecom_session_keep_cart(ecom_req *q, const char *token);
void ecom_session_drop_cart(ecom_req *q);

/* After login or register issued token: starts a session holding it and a
 * new CSRF token (and no guest cart token: the login merged that cart),
 * sets the ecom_csrf cookie and adds "csrf_token" to the answer object. Does nothing when sessions are off; logs and leaves the
 * answer as it is when mod_session has no session for the request. */
void ecom_session_start(ecom_req *q, const char *token, json_t *answer);

/* Ends the request's session (its token and CSRF token are dropped, the
 * ecom_csrf cookie expired): for logout (after the token is revoked), and
 * when the session's token is refused. Nothing when sessions are off. */
void ecom_session_end(ecom_req *q);

#endif /* ECOM_SESSION_H */
