/*
 * ecom_account.h: what the account resource (ecom_account.c: logout,
 * profile, password change and reset, sessions, closing an account, the
 * staff and support user reads) shares with ecom_auth.c.
 */
#ifndef ECOM_ACCOUNT_H
#define ECOM_ACCOUNT_H

#include "ecom_req.h"

/* The password rule of registration, password change and reset: 10 to
 * 1024 characters. */
#define ECOM_PASSWORD_MIN 10
#define ECOM_PASSWORD_MAX 1024

/* A token's last_used_at moves at most this often (SQL interval): reading
 * it costs a write once per token per 5 minutes, not on every request. */
#define ECOM_TOKEN_SEEN_EVERY "interval '300 seconds'"

/* The request's User-Agent as auth_tokens.user_agent keeps it: printable
 * ASCII (any other byte becomes '?'), at most 256 bytes; NULL when none
 * was sent. Pool memory. */
const char *ecom_account_user_agent(ecom_req *q);

/* ecom_authenticate found q->token_id's last_used_at older than
 * ECOM_TOKEN_SEEN_EVERY: moves it to now, best effort (a failure is
 * logged and changes no answer). */
void ecom_account_token_seen(ecom_req *q);

#endif /* ECOM_ACCOUNT_H */
