/*
 * ecom_session.c: cookie sessions for browser clients, through mod_session.
 *
 * What the session holds. Two entries, both set at login or register:
 * "ecom-token", the bearer token the answer carries too, and "ecom-csrf",
 * a CSRF token of the same shape (256 random bits). Before an account, a
 * guest's cart may be kept instead: "ecom-cart", the guest cart's token
 * (ecom_guest_cart.c), with its own "ecom-csrf"; login merges that cart
 * and replaces it with the account's token. mod_session keeps
 * them where the operator says: in the shipped configurations a cookie
 * encrypted and authenticated with SessionCryptoPassphrase
 * (mod_session_cookie + mod_session_crypto). This file only calls
 * mod_session's optional functions, as mod_auth_form does, so any store
 * works; mod_session_dbd is advised against (README, "Browser sessions":
 * it holds a pooled database connection for a request's whole life). Because the session holds a token and not a user, everything the
 * token table decides still holds for browsers: expiry
 * (EcomTokenLifetime), revocation (logout, password change, a revoked
 * entry of /auth/sessions/), and a copy of an old cookie replayed after
 * logout finds a revoked token (401). The cookie's flags (Secure,
 * HttpOnly, SameSite=Lax) are SessionCookieName's attributes: the shipped
 * configurations set all three.
 *
 * The CSRF defence. A browser sends the session cookie with requests other
 * sites make it send, which a bearer header never is; so on a request that
 * may change something (any method but GET, HEAD and OPTIONS) and has no
 * Authorization header:
 *   1. the origin: an Origin header must name this server's own origin
 *      (ap_construct_url: scheme, host and port as the client addressed
 *      them, or ServerName's with UseCanonicalName On), and a
 *      Sec-Fetch-Site header must say same-origin (or none: typed by the
 *      user). This holds with or without a session, so login and register
 *      cannot be forged either (login CSRF). Clients that send neither
 *      header (curl, API libraries) pass this step;
 *   2. the double-submit token, when the session holds a token: the
 *      X-CSRF-Token header must equal both the session's CSRF token and
 *      the ecom_csrf cookie (the page's script reads the cookie, or the
 *      csrf_token of the login answer). Compared in constant time
 *      (CRYPTO_memcmp). The session binding is what makes it hold: a
 *      cookie planted from a sibling host cannot match the encrypted
 *      session's value.
 * A refusal is a 403 problem naming the reason (csrf-origin,
 * csrf-token-missing, csrf-token-invalid). Where the route only may use a
 * user (login, register), a session whose CSRF check fails is not used
 * and the request goes on as anonymous: nothing is refused that a stranger
 * could do, and a browser whose ecom_csrf cookie was lost can still log in.
 *
 * The ecom_csrf cookie is written with the session's lifetime
 * (SessionMaxAge, when set, so both expire together; mod_session renews
 * its cookie on every answer then, and this file renews ecom_csrf on every
 * answer authenticated by the session), and again whenever a request's
 * cookie does not match its session.
 */
#include "ecom_session.h"
#include "ecom_cors.h"
#include "ecom_http.h"
#include "ecom_crypto.h"

#include "http_core.h"
#include "mod_session.h"
#include "util_cookies.h"

#define KEY_TOKEN "ecom-token"
#define KEY_CSRF  "ecom-csrf"
#define KEY_CART  "ecom-cart"   /* a guest cart's token (no account yet) */
/* The ecom_csrf cookie's attributes: sent only over TLS, to every path,
 * on same-site requests; readable by the page's script by design. */
#define CSRF_COOKIE_ATTRS "Path=/;Secure;SameSite=Lax"
/* r->notes: the ecom_csrf cookie was written for this request already */
#define NOTE_CSRF_SET "ecom-csrf-cookie"

/* mod_session's functions, looked up when a section turns sessions on (as
 * mod_auth_form does): what httpd hands out once. */
static APR_OPTIONAL_FN_TYPE(ap_session_load) *session_load;
static APR_OPTIONAL_FN_TYPE(ap_session_get) *session_get;
static APR_OPTIONAL_FN_TYPE(ap_session_set) *session_set;

const char *ecom_session_set_flag(cmd_parms *cmd, void *dcfg, int on)
{
    ecom_dir_conf *c = dcfg;

    if (on && (!session_load || !session_get || !session_set)) {
        session_load = APR_RETRIEVE_OPTIONAL_FN(ap_session_load);
        session_get = APR_RETRIEVE_OPTIONAL_FN(ap_session_get);
        session_set = APR_RETRIEVE_OPTIONAL_FN(ap_session_set);
        if (!session_load || !session_get || !session_set) {
            return "EcomSessions On needs mod_session: load session_module "
                   "(and session_cookie_module with session_crypto_module) "
                   "before this line";
        }
    }
    c->sessions = on;
    c->sessions_set = 1;
    return NULL;
}

static int sessions_on(const ecom_req *q)
{
    return q->dc->sessions && session_load;
}

/* The request's session, or NULL (logged at debug: mod_session has logged
 * why, if it was an error). */
static session_rec *load(ecom_req *q)
{
    session_rec *z = NULL;
    apr_status_t rv = session_load(q->r, &z);

    if (rv != APR_SUCCESS || !z) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, q->r, "ECOM1800: no "
                      "mod_session session for this request");
        return NULL;
    }
    return z;
}

static const char *get(ecom_req *q, session_rec *z, const char *key)
{
    const char *v = NULL;

    if (session_get(q->r, z, key, &v) != APR_SUCCESS || !v || !*v) {
        return NULL;
    }
    return v;
}

static int is_safe_method(const request_rec *r)
{
    /* HEAD is M_GET */
    return r->method_number == M_GET || r->method_number == M_OPTIONS;
}

/* Writes the ecom_csrf cookie (once per request), with the session's
 * max-age (0: a browser-session cookie, as the session's own). */
static void set_csrf_cookie(ecom_req *q, const session_rec *z,
                            const char *csrf)
{
    if (apr_table_get(q->r->notes, NOTE_CSRF_SET)) {
        return;
    }
    apr_table_setn(q->r->notes, NOTE_CSRF_SET, "1");
    ap_cookie_write(q->r, ECOM_CSRF_COOKIE, csrf, CSRF_COOKIE_ATTRS,
                    z->maxage > 0 ? z->maxage : 0, q->r->err_headers_out,
                    NULL);
}

/* Equal in constant time (for equal lengths; the length is no secret). */
static int token_equal(const char *a, const char *b)
{
    size_t n = strlen(a);

    return n == strlen(b) && ecom_ct_equal(a, b, n);
}

static int refuse(ecom_req *q, const char *slug, const char *detail,
                  int has_session)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, "ECOM1801: %s %s refused "
                  "(%s; Origin: %s, Sec-Fetch-Site: %s, session: %s)",
                  q->r->method, q->r->uri, slug,
                  apr_table_get(q->r->headers_in, "Origin"),
                  apr_table_get(q->r->headers_in, "Sec-Fetch-Site"),
                  has_session ? "yes" : "no");
    return ecom_problem(q, HTTP_FORBIDDEN, slug, detail);
}

/* Step 1: the request comes from this origin, or from one EcomCORSOrigins
 * lists. 0 or the 403 set. A listed origin passes both checks: a
 * same-site app on a sibling host gets the SameSite=Lax cookie and sends
 * Sec-Fetch-Site: same-site; step 2 (the double-submit token) still
 * applies to it. */
static int check_origin(ecom_req *q, int has_session)
{
    request_rec *r = q->r;
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *site = apr_table_get(r->headers_in, "Sec-Fetch-Site");
    const char *self = ap_construct_url(r->pool, "", r);

    if (ecom_cors_listed_origin(q)) {
        return 0;
    }
    if (origin && strcasecmp(origin, self) != 0) {
        return refuse(q, "csrf-origin", apr_psprintf(r->pool, "A request "
                      "that changes something must come from this site's "
                      "own origin (%s), not from %s.", self, origin),
                      has_session);
    }
    if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0) {
        return refuse(q, "csrf-origin", apr_psprintf(r->pool, "A request "
                      "that changes something must come from this site's "
                      "own pages (Sec-Fetch-Site: %s).", site), has_session);
    }
    return 0;
}

/* Step 2: X-CSRF-Token equals the session's CSRF token and the cookie.
 * 0, or the problem's slug and *detail. */
static const char *check_csrf_token(ecom_req *q, session_rec *z,
                                    const char **detail)
{
    const char *sent = apr_table_get(q->r->headers_in, ECOM_CSRF_HEADER);
    const char *mine = get(q, z, KEY_CSRF);
    const char *cookie = NULL;

    if (!sent || !*sent) {
        *detail = "This request is authenticated by the session cookie: "
                  "send the X-CSRF-Token header with the value of the "
                  "ecom_csrf cookie (the csrf_token of the login answer).";
        return "csrf-token-missing";
    }
    ap_cookie_read(q->r, ECOM_CSRF_COOKIE, &cookie, 0);
    if (!mine || !cookie || !token_equal(sent, mine)
        || !token_equal(sent, cookie)) {
        *detail = "The X-CSRF-Token header does not match this session's "
                  "CSRF token (the ecom_csrf cookie); log in again if the "
                  "cookie was lost.";
        return "csrf-token-invalid";
    }
    return NULL;
}

int ecom_session_token(ecom_req *q, int need, const char **token)
{
    session_rec *z;
    const char *tok, *csrf, *slug, *detail = NULL;
    const char *cookie = NULL;
    int rv;

    *token = NULL;
    if (!sessions_on(q)) {
        return 0;
    }
    z = load(q);
    tok = z ? get(q, z, KEY_TOKEN) : NULL;
    if (!is_safe_method(q->r)) {
        if ((rv = check_origin(q, tok != NULL))) {
            return rv;
        }
        if (tok && (slug = check_csrf_token(q, z, &detail)) != NULL) {
            if (need) {
                return refuse(q, slug, detail, 1);
            }
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, q->r, "ECOM1802: "
                          "session not used (%s): the request goes on as "
                          "anonymous", slug);
            return 0;
        }
    }
    if (!tok) {
        return 0;
    }
    /* the page's copy of the CSRF token expires with the session and comes
     * back if it was lost */
    csrf = get(q, z, KEY_CSRF);
    ap_cookie_read(q->r, ECOM_CSRF_COOKIE, &cookie, 0);
    if (csrf && (z->maxage > 0 || !cookie || strcmp(cookie, csrf) != 0)) {
        set_csrf_cookie(q, z, csrf);
    }
    /* mod_session_cookie said "no-cache, private"; an answer to a user
     * is not stored at all, as with a bearer token (ecom_router.c) */
    apr_table_setn(q->r->headers_out, "Cache-Control", "private, no-store");
    q->via_session = 1;
    *token = tok;
    return 0;
}

const char *ecom_session_cart(ecom_req *q)
{
    apr_table_t *h = q->r->headers_in;
    session_rec *z;

    if (!sessions_on(q) || apr_table_get(h, "Authorization")
        || apr_table_get(h, "Cart-Token") || !(z = load(q))) {
        return NULL;
    }
    return get(q, z, KEY_CART);
}

int ecom_session_cart_checked(ecom_req *q, const char **token)
{
    const char *slug, *detail = NULL;
    session_rec *z;
    int rv;

    *token = ecom_session_cart(q);
    if (!sessions_on(q) || is_safe_method(q->r)) {
        return 0;
    }
    /* every write without Authorization, as in ecom_session_token */
    if ((rv = check_origin(q, *token != NULL))) {
        return rv;
    }
    if (*token && (z = load(q))
        && (slug = check_csrf_token(q, z, &detail)) != NULL) {
        return refuse(q, slug, detail, 1);
    }
    return 0;
}

void ecom_session_keep_cart(ecom_req *q, const char *token)
{
    char fresh[ECOM_TOKEN_LEN + 1];
    const char *csrf;
    session_rec *z;

    if (!sessions_on(q) || !(z = load(q))) {
        return;
    }
    session_set(q->r, z, KEY_CART, token);
    if (!(csrf = get(q, z, KEY_CSRF))) {
        if (ecom_token_new(fresh) != 0) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "ECOM1804: random "
                          "generator failed: no CSRF token for the session");
            session_set(q->r, z, KEY_CART, NULL);
            return;
        }
        csrf = apr_pstrdup(q->r->pool, fresh);
        session_set(q->r, z, KEY_CSRF, csrf);
    }
    set_csrf_cookie(q, z, csrf);
}

void ecom_session_drop_cart(ecom_req *q)
{
    session_rec *z;

    if (sessions_on(q) && (z = load(q)) && get(q, z, KEY_CART)) {
        session_set(q->r, z, KEY_CART, NULL);
    }
}

const char *ecom_session_peek_token(ecom_req *q)
{
    session_rec *z;

    return sessions_on(q) && (z = load(q)) != NULL ? get(q, z, KEY_TOKEN)
                                                    : NULL;
}

int ecom_session_holds_token(ecom_req *q)
{
    return ecom_session_peek_token(q) != NULL;
}

void ecom_session_start(ecom_req *q, const char *token, json_t *answer)
{
    char csrf[ECOM_TOKEN_LEN + 1];
    session_rec *z;

    if (!sessions_on(q)) {
        return;
    }
    if (!(z = load(q))) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r, "ECOM1803: "
                      "EcomSessions is on for %s but mod_session gave no "
                      "session (Session On and a store such as "
                      "SessionCookieName are needed there): the answer has "
                      "the bearer token only", q->r->uri);
        return;
    }
    if (ecom_token_new(csrf) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "ECOM1804: random "
                      "generator failed: no session started");
        return;
    }
    session_set(q->r, z, KEY_TOKEN, token);
    session_set(q->r, z, KEY_CSRF, apr_pstrdup(q->r->pool, csrf));
    /* a guest cart it held was merged by the login (ecom_guest_cart.c) */
    session_set(q->r, z, KEY_CART, NULL);
    set_csrf_cookie(q, z, csrf);
    json_object_set_new(answer, "csrf_token", json_string(csrf));
}

void ecom_session_end(ecom_req *q)
{
    session_rec *z;

    if (!sessions_on(q) || !(z = load(q))) {
        return;
    }
    if (get(q, z, KEY_TOKEN) || get(q, z, KEY_CSRF) || get(q, z, KEY_CART)) {
        session_set(q->r, z, KEY_TOKEN, NULL);
        session_set(q->r, z, KEY_CSRF, NULL);
        session_set(q->r, z, KEY_CART, NULL);
    }
    apr_table_setn(q->r->notes, NOTE_CSRF_SET, "1");
    ap_cookie_remove(q->r, ECOM_CSRF_COOKIE, CSRF_COOKIE_ATTRS,
                     q->r->err_headers_out, NULL);
    q->via_session = 0;
}
