/*
 * ecom_registry.c: the list of resources. Adding a resource is one line
 * here (X(name) for a descriptor ecom_<name>_resource in its own file).
 * Order matters only for statements' registration and the Allow header.
 * Also the names of the descriptors' auth kinds and methods, shared by the
 * router (logs, Allow) and the operator view.
 */
#include "ecom_resource.h"

#define ECOM_REGISTRY(X) \
    X(auth)          \
    X(account)       \
    X(products)      \
    X(categories)    \
    X(cart)          \
    X(guest_cart)    \
    X(orders)        \
    X(payments)      \
    X(refunds)       \
    X(shipments)     \
    X(events)        \
    X(reviews)       \
    X(dynprice)      \
    X(addresses)     \
    X(coupons)       \
    X(pricing)       \
    X(recs)          \
    X(misc)          \
    X(status)        \
    X(metrics)       \
    X(idempotency)   \
    X(cache)         \
    X(cluster)       \
    X(db)

#define DECLARE(n) extern const ecom_resource ecom_##n##_resource;
#define ENTRY(n) &ecom_##n##_resource,

ECOM_REGISTRY(DECLARE)

const ecom_resource *const ecom_resources[] = {
    ECOM_REGISTRY(ENTRY)
    NULL
};

const char *ecom_auth_kind_name(ecom_auth_kind k)
{
    static const char *const names[] = {
        "none", "user", "staff", "webhook", "operator"
    };

    return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

const char *ecom_method_text(int method)
{
    switch (method) {
    case M_GET:
        return "GET";
    case M_POST:
        return "POST";
    case M_PATCH:
        return "PATCH";
    case M_PUT:
        return "PUT";
    case M_DELETE:
        return "DELETE";
    default:
        return "?";
    }
}
