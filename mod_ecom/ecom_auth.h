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

#endif /* ECOM_AUTH_H */
