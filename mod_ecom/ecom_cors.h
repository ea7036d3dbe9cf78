/*
 * ecom_cors.h: CORS (EcomCORSOrigins) and the security headers of every
 * answer (ecom_cors.c), for the configuration and the router.
 */
#ifndef ECOM_CORS_H
#define ECOM_CORS_H

#include "ecom_req.h"

/* EcomCORSOrigins origin...: one exact origin per argument. */
const char *ecom_cors_set_origins(cmd_parms *cmd, void *cfg, const char *arg);
/* An OPTIONS request on a path whose methods are allow: when it is a
 * preflight from a listed origin, adds the Access-Control-* headers. */
void ecom_cors_preflight(ecom_req *q, const char *allow);
/* Every answer, errors included: the security headers, and for a listed
 * origin Access-Control-Allow-Origin and -Expose-Headers. */
void ecom_response_headers(ecom_req *q);

/* The request's Origin when EcomCORSOrigins lists it, else NULL (also
 * what the CSRF origin check of cookie sessions trusts, ecom_session.c). */
const char *ecom_cors_listed_origin(ecom_req *q);

#endif /* ECOM_CORS_H */
