/*
 * ecom_err.c: what each failure kind of the data layer means for a client
 * (see ecom_err.h). One table; ecom_fail() in ecom_http.c renders it.
 */
#include "ecom_err.h"

#include <stddef.h>

static const ecom_err_info table[ECOM_E_NKINDS] = {
    [ECOM_OK] = { 0, NULL, NULL, 0 },
    [ECOM_E_UNAVAILABLE] = { 503, "database-unavailable",
        "The database is unavailable; try again shortly.", 1 },
    [ECOM_E_BUSY] = { 503, "database-busy",
        "The database did not answer in time (a timeout or a lock held "
        "elsewhere); try again shortly.", 1 },
    [ECOM_E_CONFLICT] = { 409, "conflict",
        "A resource with these values already exists.", 0 },
    [ECOM_E_CONSTRAINT] = { 409, "conflict",
        "The change would break a data constraint.", 0 },
    [ECOM_E_NOT_FOUND] = { 404, "not-found", "No such resource.", 0 },
    [ECOM_E_INTERNAL] = { 500, "internal",
        "The request could not be completed.", 0 },
    [ECOM_E_REFUSED] = { 0, NULL, NULL, 0 },
};

static const char *const names[ECOM_E_NKINDS] = {
    "ok", "unavailable", "busy", "conflict", "constraint", "not-found",
    "internal", "refused"
};

const ecom_err_info *ecom_err_describe(ecom_err e)
{
    static const ecom_err_info none = { 0, NULL, NULL, 0 };

    return ((unsigned)e < ECOM_E_NKINDS) ? &table[e] : &none;
}

const char *ecom_err_name(ecom_err e)
{
    return ((unsigned)e < ECOM_E_NKINDS) ? names[e] : "unknown";
}
