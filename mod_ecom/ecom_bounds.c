/*
 * ecom_bounds.c: the rule of a product's price bounds (see ecom_bounds.h).
 */
#include "ecom_bounds.h"

#include <stddef.h>

ecom_bounds_verdict ecom_bounds_check(const long long *floor,
                                      const long long *ceiling,
                                      const long long *price, int only_price,
                                      const char **field)
{
    if (!floor != !ceiling) {
        *field = floor ? "price_ceiling" : "price_floor";
        return ECOM_BOUNDS_ONE_MISSING;
    }
    if (!floor) {
        return ECOM_BOUNDS_OK;
    }
    if (*floor > *ceiling) {
        *field = "price_floor";
        return ECOM_BOUNDS_CROSSED;
    }
    if (price && (*price < *floor || *price > *ceiling)) {
        *field = only_price ? "price"
                 : *price < *floor ? "price_floor" : "price_ceiling";
        return ECOM_BOUNDS_OUTSIDE;
    }
    return ECOM_BOUNDS_OK;
}
