/*
 * test_err.c: unit tests of ecom_err.c, the table that turns a data-layer
 * failure kind into the client's answer (ecom_fail() renders it).
 */
#include "ecom_err.h"
#include "unit.h"

#include <string.h>

void test_err(void)
{
    static const struct {
        ecom_err e;
        int status;
        const char *slug;
        int retry;
    } want[] = {
        { ECOM_E_UNAVAILABLE, 503, "database-unavailable", 1 },
        { ECOM_E_BUSY, 503, "database-busy", 1 },
        { ECOM_E_CONFLICT, 409, "conflict", 0 },
        { ECOM_E_CONSTRAINT, 409, "conflict", 0 },
        { ECOM_E_NOT_FOUND, 404, "not-found", 0 },
        { ECOM_E_INTERNAL, 500, "internal", 0 },
    };
    char name[96];

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const ecom_err_info *info = ecom_err_describe(want[i].e);
        snprintf(name, sizeof(name), "err %s: %d %s", ecom_err_name(want[i].e),
                 want[i].status, want[i].slug);
        OK(info->status == want[i].status && info->slug
           && strcmp(info->slug, want[i].slug) == 0
           && info->retry_after == want[i].retry && info->detail
           && info->detail[0], name);
    }
    /* no answer for success and for "the answer is already set" */
    OK(ecom_err_describe(ECOM_OK)->status == 0, "ECOM_OK has no answer");
    OK(ecom_err_describe(ECOM_E_REFUSED)->status == 0,
       "ECOM_E_REFUSED keeps the answer set");
    /* every kind has a name and out-of-range values are harmless */
    for (int e = 0; e < ECOM_E_NKINDS; e++) {
        snprintf(name, sizeof(name), "kind %d has a name", e);
        OK(ecom_err_name((ecom_err)e) && strcmp(ecom_err_name((ecom_err)e),
                                                "unknown") != 0, name);
    }
    OK(ecom_err_describe((ecom_err)ECOM_E_NKINDS)->status == 0
       && ecom_err_describe((ecom_err)-1)->status == 0,
       "out-of-range kinds describe nothing");
    OK(strcmp(ecom_err_name((ecom_err)999), "unknown") == 0,
       "out-of-range kind is unknown");
    /* 5xx kinds are exactly the ones a client may retry */
    for (int e = 1; e < ECOM_E_NKINDS; e++) {
        const ecom_err_info *info = ecom_err_describe((ecom_err)e);
        snprintf(name, sizeof(name), "kind %s: Retry-After only on 503",
                 ecom_err_name((ecom_err)e));
        OK((info->retry_after > 0) == (info->status == 503), name);
    }
}
