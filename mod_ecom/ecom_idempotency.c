/*
 * ecom_idempotency.c: the Idempotency-Key contract for creating POSTs.
 *
 * A request that carries a key runs in one transaction that holds
 * everything about it, so no crash or lost connection can separate them:
 *   1. BEGIN, then pg_try_advisory_xact_lock on a hash of (user, key): a
 *      second request with the same key while the first runs gets 409 at
 *      once. The lock belongs to the transaction, so it goes away when
 *      the first request commits, rolls back, or its session dies (a
 *      child killed mid-request: PostgreSQL rolls back as soon as it sees
 *      the socket close, at the latest after the shipped
 *      idle_in_transaction_session_timeout). No key can stay stuck.
 *   2. A stored answer for the key younger than 24 hours is replayed
 *      (same status, body and Location, plus Idempotent-Replayed: true)
 *      when the request has the same fingerprint, else 422. Without one,
 *      the caller may hold at most EcomIdempotencyKeysPerDay live keys
 *      (429 beyond).
 *   3. SAVEPOINT, the handler runs (its own ecom_db_tx joins this
 *      transaction), and its answer is stored by the same transaction:
 *      a 2xx with its effect, a 4xx after rolling the effect back to the
 *      savepoint (or with its effect, when the handler's transaction
 *      body ended ECOM_TX_COMMIT_REFUSAL, ecom_db.h), a 5xx not at all
 *      (everything rolls back: the key can be retried). COMMIT makes effect and stored answer visible together;
 *      if COMMIT's outcome is unknown the client retries with its key and
 *      gets either the stored answer or a fresh run, never a second effect.
 * The fingerprint is SHA-256 of the method, the route pattern, the ids in
 * the path and the body as canonical JSON (sorted keys, no whitespace; no
 * body counts as {}), so "/cart" and "/cart/", or the same JSON spaced
 * differently, are the same request.
 */
#include "ecom_idempotency.h"
#include "ecom_http.h"
#include "ecom_cache.h"
#include "ecom_crypto.h"
#include "ecom_util.h"

/* ecom_idem_get */
enum { K_REQUEST_HASH, K_STATUS_CODE, K_RESPONSE_BODY, K_LOCATION, K_LIVE_KEYS };
/* ecom_idem_lock */
enum { LOCK_TAKEN };

static const ecom_stmt idem_sql[] = {
    { "ecom_idem_lock", "SELECT pg_try_advisory_xact_lock(%s::bigint)", 0 },
    /* one row always: the count of the caller's live keys (bounded by the
     * cap), and the stored answer for this key if there is one */
    { "ecom_idem_get",
      "SELECT k.request_hash, k.status_code, k.response_body, k.location, "
      "c.n FROM (SELECT count(*) AS n FROM (SELECT 1 FROM idempotency_keys "
      "  WHERE user_id = %s::bigint "
      "  AND created_at > now() - interval '24 hours' LIMIT %s::int) s) c "
      "LEFT JOIN idempotency_keys k ON k.user_id = %s::bigint AND k.key = %s "
      "AND k.status_code IS NOT NULL "
      "AND k.created_at > now() - interval '24 hours'", 0 },
    /* an expired record, or an unanswered one an older version left, is
     * replaced; a live answer never is (then no row comes back) */
    { "ecom_idem_store",
      "INSERT INTO idempotency_keys AS k (user_id, key, request_hash, "
      "status_code, response_body, location) "
      "VALUES (%s::bigint, %s, %s, %s::int, %s, %s) "
      "ON CONFLICT (user_id, key) DO UPDATE SET "
      "request_hash = EXCLUDED.request_hash, "
      "status_code = EXCLUDED.status_code, "
      "response_body = EXCLUDED.response_body, location = EXCLUDED.location, "
      "created_at = now() "
      "WHERE k.status_code IS NULL "
      "OR k.created_at <= now() - interval '24 hours' RETURNING 1", 0 },
    { NULL, NULL, 0 }
};

static int in_flight(ecom_req *q)
{
    apr_table_setn(q->r->err_headers_out, "Retry-After", "1");
    return ecom_problem(q, HTTP_CONFLICT, "idempotency-conflict",
                        "A request with this Idempotency-Key is in progress; "
                        "retry shortly.");
}

/* SHA-256 (hex) of the request's identity: see the top of the file. */
static void fingerprint(ecom_req *q, char hash[ECOM_SHA256_HEX])
{
    const char *body = "{}", *material;

    if (q->body) {
        char *c = json_dumps(q->body, JSON_COMPACT | JSON_SORT_KEYS
                                      | JSON_ENCODE_ANY);
        if (c) {
            body = apr_pstrdup(q->r->pool, c);
            free(c);
        }
    }
    material = apr_psprintf(q->r->pool, "%s\n%s\n%" APR_INT64_T_FMT ","
                            "%" APR_INT64_T_FMT "\n%s", q->r->method,
                            q->route ? q->route->pattern : "",
                            (apr_int64_t)q->id[0],
                            (apr_int64_t)q->id[1], body);
    ecom_sha256_hex(material, strlen(material), hash);
}

/* The advisory lock key: 64 bits of SHA-256 over the user and the key. */
static const char *lock_key(ecom_req *q, const char *key)
{
    char hex[ECOM_SHA256_HEX];
    const char *m = apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT "\n%s",
                                 (apr_int64_t)q->user_id, key);
    unsigned long long u = 0;

    ecom_sha256_hex(m, strlen(m), hex);
    for (int i = 0; i < 16; i++) {
        int c = (unsigned char)hex[i];
        u = (u << 4) | (unsigned long long)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    /* two's complement reinterpretation, as PostgreSQL's bigint */
    return apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT, (apr_int64_t)u);
}

/* Answers with the stored response. */
static int replay(ecom_req *q, apr_dbd_row_t *row)
{
    const char *code = ecom_db_get(q, row, K_STATUS_CODE);
    const char *body = ecom_db_get(q, row, K_RESPONSE_BODY);
    const char *loc = ecom_db_get(q, row, K_LOCATION);

    q->status = (int)apr_atoi64(code);
    q->out = body ? apr_pstrdup(q->r->pool, body) : NULL;
    q->out_len = q->out ? strlen(q->out) : 0;
    q->ctype = q->status >= 400 ? "application/problem+json"
                                : "application/json; charset=utf-8";
    if (loc) {
        apr_table_setn(q->r->headers_out, "Location",
                       apr_pstrdup(q->r->pool, loc));
    }
    apr_table_setn(q->r->headers_out, "Idempotent-Replayed", "true");
    return q->status;
}

/* Steps 1 and 2. Returns 0 to run the handler, else the status set. */
static int look_up(ecom_req *q, const char *key, const char *hash)
{
    const char *args[4];
    apr_dbd_row_t *row;
    const char *stored;
    int cap = q->dc->idem_per_day;
    ecom_err e;

    args[0] = lock_key(q, key);
    if ((e = ecom_db_one(q, "ecom_idem_lock", &row, 1, args))) {
        return ecom_fail(q, e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    if (!ecom_db_bool(q, row, LOCK_TAKEN)) {
        return in_flight(q);
    }
    args[0] = args[2] = ECOM_LL(q, q->user_id);
    args[1] = apr_itoa(q->r->pool, cap);
    args[3] = key;
    if ((e = ecom_db_one(q, "ecom_idem_get", &row, 4, args))) {
        /* it always returns one row */
        return ecom_fail(q, e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    if (!(stored = ecom_db_get(q, row, K_REQUEST_HASH))) {
        if (ecom_db_ll(q, row, K_LIVE_KEYS) >= cap) {
            apr_table_setn(q->r->err_headers_out, "Retry-After", "3600");
            return ecom_problem(q, HTTP_TOO_MANY_REQUESTS, "rate-limited",
                                apr_psprintf(q->r->pool, "At most %d "
                                             "Idempotency-Keys per 24 hours; "
                                             "reuse a key only to retry the "
                                             "same request.", cap));
        }
        return 0;
    }
    if (strcmp(stored, hash) != 0) {
        json_t *errs = ecom_jarray(q);
        ecom_field_error(errs, "Idempotency-Key", "was already used for a "
                         "different request");
        return ecom_problem_with(q, HTTP_UNPROCESSABLE_ENTITY,
                                 "idempotency-conflict",
                                 "This Idempotency-Key was used for a "
                                 "different request.",
                                 ecom_jown(q, json_pack("{s:O}", "errors",
                                                        errs)));
    }
    return replay(q, row);
}

/* Step 3's store; returns 0 or the status of the problem it set. */
static int store(ecom_req *q, const char *key, const char *hash)
{
    const char *args[6];
    apr_dbd_row_t *row;
    ecom_err e;

    args[0] = ECOM_LL(q, q->user_id);
    args[1] = key;
    args[2] = hash;
    args[3] = apr_itoa(q->r->pool, q->status);
    args[4] = q->out ? q->out : "";
    args[5] = apr_table_get(q->r->headers_out, "Location");
    e = ecom_db_one(q, "ecom_idem_store", &row, 6, args);
    if (e == ECOM_E_NOT_FOUND) {
        /* a live answer appeared under our lock: only a 64-bit lock-key
         * collision with another request of this user could do that */
        return in_flight(q);
    }
    return e ? ecom_fail(q, e) : 0;
}

int ecom_idem_run(ecom_req *q, const char *key, ecom_handler_fn fn)
{
    char hash[ECOM_SHA256_HEX];
    int rv, status;
    ecom_err e;

    if (!ecom_idem_key_valid(key)) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "Idempotency-Key must be 1 to 255 visible ASCII "
                            "characters.");
    }
    fingerprint(q, hash);
    if ((e = ecom_db_begin(q))) {
        return ecom_fail(q, e);
    }
    if ((rv = look_up(q, key, hash))) {
        ecom_db_rollback(q);
        return rv;
    }
    if ((e = ecom_db_savepoint(q))) {
        ecom_db_rollback(q);
        return ecom_fail(q, e);
    }
    status = fn(q);
    if (q->status == 0 || q->status >= 500) {
        /* nothing is kept: the client may retry with the same key */
        ecom_db_rollback(q);
        q->cache_dirty = 0;
        return q->status;
    }
    if (q->status >= 400 && !q->keep_refusal) {
        /* the refusal is the answer; whatever the handler wrote is not
         * (unless its body ended ECOM_TX_COMMIT_REFUSAL: a declined
         * payment's record is kept with the stored refusal) */
        if ((e = ecom_db_rollback_to_savepoint(q))) {
            ecom_db_rollback(q);
            return ecom_fail(q, e);
        }
        q->cache_dirty = 0;
    }
    if ((rv = store(q, key, hash))) {
        ecom_db_rollback(q);
        q->cache_dirty = 0;
        return rv;
    }
    if ((e = ecom_db_commit(q))) {
        q->cache_dirty = 0;
        return ecom_fail(q, e);
    }
    if (q->cache_dirty) {
        /* deferred until the effect is visible to other requests */
        unsigned sections = q->cache_dirty;
        q->cache_dirty = 0;
        ecom_cache_invalidate(q, sections);
    }
    return status;
}

/* No routes: the router runs ecom_idem_run for routes with ECOM_IDEMPOTENT. */
const ecom_resource ecom_idempotency_resource = {
    "idempotency", idem_sql, NULL, NULL
};
