/*
 * ecom_registry.c: the list of resources. Adding a resource is one line
 * here (X(name) for a descriptor ecom_<name>_resource in its own file).
 * Order matters only for statements' registration and the Allow header.
 */
#include "ecom_resource.h"

#define ECOM_REGISTRY(X) \
    X(auth)          \
    X(products)      \
    X(categories)    \
    X(cart)          \
    X(orders)        \
    X(misc)          \
    X(status)        \
    X(idempotency)   \
    X(cache)         \
    X(db)

#define DECLARE(n) extern const ecom_resource ecom_##n##_resource;
#define ENTRY(n) &ecom_##n##_resource,

ECOM_REGISTRY(DECLARE)

const ecom_resource *const ecom_resources[] = {
    ECOM_REGISTRY(ENTRY)
    NULL
};
