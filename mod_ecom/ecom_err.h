/*
 * ecom_err.h: the kinds of failure the data layer reports (httpd-free).
 *
 * ecom_db.c classifies every PostgreSQL failure by SQLSTATE into one of
 * these and logs it once; it never writes an HTTP answer. The handler layer
 * turns a kind into problem+json with one function (ecom_fail(),
 * ecom_http.h), through the table here: status, problem type slug and the
 * client-facing sentence, so the mapping is unit-tested without httpd.
 */
#ifndef ECOM_ERR_H
#define ECOM_ERR_H

typedef enum {
    ECOM_OK = 0,
    ECOM_E_UNAVAILABLE,   /* the database cannot be reached: 503 */
    ECOM_E_BUSY,          /* a bounded wait ran out (timeout, lock,
                           * deadlock, serialization, no slot): 503 */
    ECOM_E_CONFLICT,      /* a unique violation: 409 */
    ECOM_E_CONSTRAINT,    /* another integrity violation: 409 */
    ECOM_E_NOT_FOUND,     /* no row where one was required: 404 */
    ECOM_E_INTERNAL,      /* anything else, and broken invariants: 500 */
    ECOM_E_REFUSED,       /* the handler layer has already set the answer
                           * (a refusal such as 409 out-of-stock): roll
                           * back, answer with what was set */
    ECOM_E_NKINDS
} ecom_err;

typedef struct {
    int status;           /* HTTP status */
    const char *slug;     /* problem type: urn:mod-ecom:problem:<slug> */
    const char *detail;   /* what the client is told */
    int retry_after;      /* seconds for Retry-After, 0: none */
} ecom_err_info;

/* The answer for kind e; ECOM_OK and ECOM_E_REFUSED have none (status 0),
 * nor has a value out of range. Never NULL. */
const ecom_err_info *ecom_err_describe(ecom_err e);
/* A short lower-case name for logs ("busy", "not-found"...). */
const char *ecom_err_name(ecom_err e);

#endif /* ECOM_ERR_H */
