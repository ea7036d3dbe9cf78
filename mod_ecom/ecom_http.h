/*
 * ecom_http.h: the handler layer's answers (ecom_http.c): JSON and
 * RFC 9457 problem+json, the one renderer of data-layer failures
 * (ecom_fail), the request body, and the typed readers of body fields.
 *
 * JSON values are owned by the request pool from birth: every json_t a
 * handler holds comes from ecom_jown() (ecom_req.h) (or a function documented to return
 * a pool-owned value), so no error path ever decrefs. Putting one into
 * another takes a reference (json_object_set, json_array_append, "O" in
 * json_pack), never steals the pool's ("o", *_set_new) .
 */
#ifndef ECOM_HTTP_H
#define ECOM_HTTP_H

#include "ecom_req.h"
#include "ecom_err.h"

/* Serialises j (pool-owned, not consumed) as the answer. Returns status. */
int ecom_json(ecom_req *q, int status, json_t *j);
/* RFC 9457 answer; slug names the problem type. Returns status. */
int ecom_problem(ecom_req *q, int status, const char *slug, const char *detail);
/* The same, with extra members (a pool-owned JSON object, or NULL). */
int ecom_problem_with(ecom_req *q, int status, const char *slug,
                      const char *detail, json_t *extra);
/* The answer for a data-layer failure e (see ecom_err.h), with Retry-After
 * where it applies. ECOM_E_REFUSED keeps the answer already set. This is
 * the only place a failure kind becomes HTTP. Returns the status. */
int ecom_fail(ecom_req *q, ecom_err e);
/* 422 with per-field errors; errs is a pool-owned JSON array. */
int ecom_invalid(ecom_req *q, json_t *errs);
void ecom_field_error(json_t *errs, const char *field, const char *msg);
int ecom_no_content(ecom_req *q, int status);
/* Serialises j into r->pool memory (compact, stable key order). */
char *ecom_json_dump(ecom_req *q, const json_t *j, apr_size_t *len);
/* The absolute path of a resource under the API's mount point. */
const char *ecom_url(ecom_req *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Reads the request body into q->raw_body (NUL-terminated, r->pool): 413
 * when it is longer than limit bytes, 400 when it cannot be read. Returns
 * 0 or the status of the problem set. */
int ecom_read_body(ecom_req *q, apr_off_t limit);

/* ---- body field helpers ---- */
/* Each returns 1 when the field is present and valid, 0 when absent, and
 * -1 after adding a field error to errs. */
int ecom_get_str(json_t *body, const char *field, size_t minlen, size_t maxlen,
                 const char **out, json_t *errs);
int ecom_get_int(json_t *body, const char *field, long long min, long long max,
                 long long *out, json_t *errs);
int ecom_get_bool(json_t *body, const char *field, int *out, json_t *errs);
/* Adds a field error for every member of the object body whose name is
 * not in known (NULL-terminated), named prefix + member ("" or
 * "shipping_address."), so a client cannot set what the endpoint does not
 * take (status, amount, user_id...). Returns how many there were. */
int ecom_body_unknown(ecom_req *q, json_t *body, const char *prefix,
                      const char *const *known, json_t *errs);

#endif /* ECOM_HTTP_H */
