/*
 * ecom_idempotency.h: the Idempotency-Key contract (ecom_idempotency.c).
 */
#ifndef ECOM_IDEMPOTENCY_H
#define ECOM_IDEMPOTENCY_H

#include "ecom_resource.h"

/* Runs fn for a request that carries an Idempotency-Key: replays a stored
 * answer, or runs fn and stores its answer in the same transaction as its
 * effect. Returns the HTTP status of the answer it set. */
int ecom_idem_run(ecom_req *q, const char *key, ecom_handler_fn fn);

#endif /* ECOM_IDEMPOTENCY_H */
