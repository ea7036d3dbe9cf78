/*
 * ecom_resource.h: what a resource is to the rest of the module.
 *
 * Each resource file (ecom_products.c, ecom_cart.c, ...) exports one
 * ecom_resource descriptor: its name, its prepared statements and its
 * routes (method, pattern, handler, auth kind, body, idempotency, cache
 * sections to invalidate after a 2xx). ecom_registry.c lists the
 * descriptors; the router (ecom_router.c) and the statement registration
 * (ecom_db.c) iterate over that list and know no resource by name. So a
 * new resource is one source file plus one line in ecom_registry.c (and
 * its migration under sql/).
 */
#ifndef ECOM_RESOURCE_H
#define ECOM_RESOURCE_H

#include "ecom_req.h"
#include "ecom_db.h"

/* Who may call a route. */
typedef enum {
    ECOM_AUTH_NONE,      /* anyone; a bearer token, if sent, is resolved */
    ECOM_AUTH_USER,      /* a valid bearer token */
    ECOM_AUTH_STAFF,     /* a valid bearer token of a staff account */
    ECOM_AUTH_WEBHOOK,   /* no token: an Ecom-Signature HMAC over the raw
                          * body with EcomWebhookSecret (ecom_signature.h) */
    ECOM_AUTH_OPERATOR   /* served under the resource's own handler name
                          * (SetHandler ecom-status), never under "ecom":
                          * httpd's Require in that <Location> decides */
} ecom_auth_kind;

/* Route flags. */
#define ECOM_BODY       (1u << 0)   /* a JSON object body is required */
#define ECOM_BODY_OPT   (1u << 1)   /* a JSON object body may be sent */
#define ECOM_IDEMPOTENT (1u << 2)   /* honours Idempotency-Key */
#define ECOM_AUTH_INLINE (1u << 3)  /* ECOM_AUTH_USER: without an
                                     * Idempotency-Key the route's statement
                                     * resolves the token (q->token_hash,
                                     * ecom_auth.h), one round trip fewer;
                                     * a handler that answers 2xx without
                                     * resolving it is refused (500) */
#define ECOM_GUEST (1u << 4)        /* ECOM_AUTH_USER cart routes: a client
                                     * sending no Authorization is served
                                     * by its Cart-Token, and a POST with
                                     * neither creates a guest cart
                                     * (ecom_guest_cart.c, ecom_cart.h) */

/* A handler sets the answer (ecom_json, ecom_problem, ecom_fail...) and
 * returns its status. */
typedef int (*ecom_handler_fn)(ecom_req *q);

typedef struct ecom_route {
    int method;             /* M_GET, M_POST, ... (GET answers HEAD too) */
    const char *pattern;    /* segments joined by '/', "{id}" captures a
                             * positive integer (q->id[]), "{slug}" one
                             * segment of [a-z0-9_-]{1,100} (q->slug);
                             * "" is the mount point */
    ecom_handler_fn fn;
    ecom_auth_kind auth;
    unsigned flags;         /* ECOM_BODY... */
    unsigned invalidates;   /* ECOM_CACHE_* sections a 2xx answer makes
                             * stale (after the commit) */
    const char *name;       /* "products.list": logs and metrics */
} ecom_route;

typedef struct {
    const char *name;
    const ecom_stmt *stmts;     /* NULL-label terminated, or NULL */
    const ecom_route *routes;   /* NULL-pattern terminated, or NULL */
    const char *handler;        /* for ECOM_AUTH_OPERATOR routes: the
                                 * handler name that serves them */
} ecom_resource;

/* Every resource, NULL-terminated (ecom_registry.c). */
extern const ecom_resource *const ecom_resources[];

/* Names for logs, Allow and the operator view (ecom_registry.c): "none",
 * "user"...; "GET", "POST"... ("?" for anything else). */
const char *ecom_auth_kind_name(ecom_auth_kind k);
const char *ecom_method_text(int method);

/* The API handler ("ecom") and the operator handlers ("ecom-..."):
 * DECLINED for any other handler name. */
int ecom_dispatch(request_rec *r);

#endif /* ECOM_RESOURCE_H */
