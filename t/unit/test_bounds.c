/*
 * test_bounds.c: the rule of a product's price bounds (ecom_bounds.c).
 */
#include "ecom_bounds.h"
#include "unit.h"

#include <string.h>

void test_bounds(void)
{
    long long fl = 800, ce = 1200, in = 1000, lo = 799, hi = 1201;
    const char *f = NULL;

    OK(ecom_bounds_check(NULL, NULL, &in, 0, &f) == ECOM_BOUNDS_OK,
       "bounds: none is fine");
    OK(ecom_bounds_check(&fl, &ce, &in, 0, &f) == ECOM_BOUNDS_OK,
       "bounds: a price inside");
    OK(ecom_bounds_check(&fl, &ce, &fl, 0, &f) == ECOM_BOUNDS_OK
       && ecom_bounds_check(&fl, &ce, &ce, 1, &f) == ECOM_BOUNDS_OK,
       "bounds: a price on either bound");
    OK(ecom_bounds_check(&fl, &ce, NULL, 0, &f) == ECOM_BOUNDS_OK,
       "bounds: no price known, nothing to compare");
    OK(ecom_bounds_check(&fl, NULL, &in, 0, &f) == ECOM_BOUNDS_ONE_MISSING
       && !strcmp(f, "price_ceiling"), "bounds: floor alone names the ceiling");
    OK(ecom_bounds_check(NULL, &ce, &in, 0, &f) == ECOM_BOUNDS_ONE_MISSING
       && !strcmp(f, "price_floor"), "bounds: ceiling alone names the floor");
    OK(ecom_bounds_check(&ce, &fl, &in, 0, &f) == ECOM_BOUNDS_CROSSED
       && !strcmp(f, "price_floor"), "bounds: crossed names the floor");
    OK(ecom_bounds_check(&fl, &ce, &lo, 1, &f) == ECOM_BOUNDS_OUTSIDE
       && !strcmp(f, "price"), "bounds: a new price below the floor names price");
    OK(ecom_bounds_check(&fl, &ce, &hi, 0, &f) == ECOM_BOUNDS_OUTSIDE
       && !strcmp(f, "price_ceiling"),
       "bounds: a ceiling moved below the price names the ceiling");
    OK(ecom_bounds_check(&fl, &ce, &lo, 0, &f) == ECOM_BOUNDS_OUTSIDE
       && !strcmp(f, "price_floor"),
       "bounds: a floor moved above the price names the floor");
}
