/*
 * ecom_idempotency.c: the Idempotency-Key contract for creating POSTs.
 *
 * Before the handler the key is claimed with one upsert that only succeeds
 * for a new key or one older than 24 hours; the claim commits at once, so a
 * concurrent request with the same key sees it and gets 409 while the first
 * is in flight. A key already answered is replayed (same status, body and
 * Location, plus Idempotent-Replayed: true) if the request is the same
 * (SHA-256 of method, path and body), else 422. After the handler the
 * answer is stored; a 5xx answer releases the key so the client can retry.
 */
#include "ecom.h"
#include "ecom_crypto.h"
#include "ecom_util.h"

const ecom_stmt ecom_idem_sql[] = {
    { "ecom_idem_claim",
      "INSERT INTO idempotency_keys (user_id, key, request_hash) "
      "VALUES (%s::bigint, %s, %s) ON CONFLICT (user_id, key) DO UPDATE "
      "SET request_hash = EXCLUDED.request_hash, status_code = NULL, "
      "response_body = NULL, location = NULL, created_at = now() "
      "WHERE idempotency_keys.created_at < now() - interval '24 hours' "
      "RETURNING 1" },
    { "ecom_idem_get",
      "SELECT request_hash, status_code, response_body, location "
      "FROM idempotency_keys WHERE user_id = %s::bigint AND key = %s" },
    { "ecom_idem_store",
      "UPDATE idempotency_keys SET status_code = %s::int, response_body = %s, "
      "location = %s WHERE user_id = %s::bigint AND key = %s" },
    { "ecom_idem_release",
      "DELETE FROM idempotency_keys WHERE user_id = %s::bigint AND key = %s "
      "AND status_code IS NULL" },
    { NULL, NULL }
};

int ecom_idem_begin(ecom_req *q, const char **keyp)
{
    const char *key = apr_table_get(q->r->headers_in, "Idempotency-Key");
    const char *args[3], *stored, *code;
    char hash[ECOM_SHA256_HEX];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    char *material;
    int rv;

    *keyp = NULL;
    if (!key) {
        return 0;
    }
    if (!ecom_idem_key_valid(key)) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "Idempotency-Key must be 1 to 255 visible ASCII "
                            "characters.");
    }
    /* the request's identity: method, path and the exact body bytes */
    material = apr_pstrcat(q->r->pool, q->r->method, " ", q->r->uri, "\n",
                           q->raw_len ? q->raw_body : "", NULL);
    ecom_sha256_hex(material, strlen(material), hash);
    args[0] = ECOM_LL(q, q->user_id);
    args[1] = key;
    args[2] = hash;
    if ((rv = ecom_db_select(q, "ecom_idem_claim", &res, 3, args))) {
        return rv;
    }
    if (ecom_db_row(q, res)) {
        *keyp = key;
        return 0;
    }
    if ((rv = ecom_db_select(q, "ecom_idem_get", &res, 2, args))) {
        return rv;
    }
    if (!(row = ecom_db_row(q, res))) {
        /* released between our two statements: treat as in flight */
        return ecom_problem(q, HTTP_CONFLICT, "idempotency-conflict",
                            "A request with this Idempotency-Key is in "
                            "progress; retry shortly.");
    }
    stored = ecom_db_get(q, row, 0);
    if (!stored || strcmp(stored, hash) != 0) {
        json_t *errs = json_array();
        ecom_field_error(errs, "Idempotency-Key", "was already used for a "
                         "different request");
        return ecom_problem_with(q, HTTP_UNPROCESSABLE_ENTITY,
                                 "idempotency-conflict",
                                 "This Idempotency-Key was used for a "
                                 "different request.",
                                 json_pack("{s:o}", "errors", errs));
    }
    if (!(code = ecom_db_get(q, row, 1))) {
        return ecom_problem(q, HTTP_CONFLICT, "idempotency-conflict",
                            "A request with this Idempotency-Key is in "
                            "progress; retry shortly.");
    }
    q->status = (int)apr_atoi64(code);
    q->out = ecom_db_get(q, row, 2);
    q->out_len = q->out ? strlen(q->out) : 0;
    q->ctype = q->status >= 400 ? "application/problem+json"
                                : "application/json; charset=utf-8";
    if (ecom_db_get(q, row, 3)) {
        apr_table_setn(q->r->headers_out, "Location", ecom_db_get(q, row, 3));
    }
    apr_table_setn(q->r->headers_out, "Idempotent-Replayed", "true");
    return q->status;
}

void ecom_idem_end(ecom_req *q, const char *key)
{
    const char *args[5];
    int status = q->status;

    if (status >= 500 || status == 0) {
        args[0] = ECOM_LL(q, q->user_id);
        args[1] = key;
        ecom_db_query(q, "ecom_idem_release", NULL, 2, args);
        q->status = status;
        return;
    }
    args[0] = apr_itoa(q->r->pool, status);
    args[1] = q->out ? q->out : "";
    args[2] = apr_table_get(q->r->headers_out, "Location");
    args[3] = ECOM_LL(q, q->user_id);
    args[4] = key;
    ecom_db_query(q, "ecom_idem_store", NULL, 5, args);
}
