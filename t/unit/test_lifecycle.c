/*
 * test_lifecycle.c: unit tests of ecom_country.c (ISO 3166-1 alpha-2) and
 * ecom_shipment_state.c (the forward-only shipment states).
 */
#include "ecom_country.h"
#include "ecom_shipment_state.h"
#include "unit.h"

#include <string.h>

void test_country(void)
{
    char out[3] = "";
    int n = 0;

    OK(ecom_country_valid("FR") && ecom_country_valid("DE")
       && ecom_country_valid("US") && ecom_country_valid("GB"),
       "FR DE US GB valid");
    OK(ecom_country_valid("AD") && ecom_country_valid("ZW"),
       "first and last codes of the table valid");
    OK(ecom_country_valid("AX") && ecom_country_valid("SS")
       && ecom_country_valid("BQ") && ecom_country_valid("CW"),
       "recent codes (AX, SS, BQ, CW) valid");
    OK(ecom_country_valid("fr") && ecom_country_valid("Fr"),
       "lower and mixed case accepted");
    OK(ecom_country_normalise("gb", out) == 0 && strcmp(out, "GB") == 0,
       "normalised to upper case");
    OK(!ecom_country_valid("UK") && !ecom_country_valid("EU")
       && !ecom_country_valid("XK") && !ecom_country_valid("AN")
       && !ecom_country_valid("YU") && !ecom_country_valid("ZZ")
       && !ecom_country_valid("AA"),
       "reserved, withdrawn and user-assigned codes invalid");
    OK(!ecom_country_valid("") && !ecom_country_valid("F")
       && !ecom_country_valid("FRA") && !ecom_country_valid(NULL)
       && !ecom_country_valid("F1") && !ecom_country_valid("F ")
       && !ecom_country_valid("\xc3\x89S"), "bad shapes invalid");
    strcpy(out, "xx");
    OK(ecom_country_normalise("QQ", out) != 0 && strcmp(out, "xx") == 0,
       "an invalid code leaves out untouched");
    for (int a = 'A'; a <= 'Z'; a++) {
        for (int b = 'A'; b <= 'Z'; b++) {
            char c[3] = { (char)a, (char)b, '\0' };
            n += ecom_country_valid(c);
        }
    }
    OK(n == ECOM_COUNTRY_COUNT, "exactly 249 codes of AA..ZZ are valid");
}

void test_shipment_state(void)
{
    ecom_shipment_state s = ECOM_SHIP_PENDING;
    int forward = 0;

    OK(ecom_shipment_state_parse("in_transit", &s) == 0
       && s == ECOM_SHIP_IN_TRANSIT, "parse in_transit");
    OK(ecom_shipment_state_parse("Shipped", &s) != 0
       && ecom_shipment_state_parse("", &s) != 0
       && ecom_shipment_state_parse(NULL, &s) != 0
       && ecom_shipment_state_parse("returned", &s) != 0,
       "case, empty, NULL and unknown names refused");
    for (int i = 0; i < ECOM_SHIP_NSTATES; i++) {
        ecom_shipment_state back;
        OK(ecom_shipment_state_parse(ecom_shipment_state_name(
               (ecom_shipment_state)i), &back) == 0 && (int)back == i,
           "name round trip");
    }
    OK(ecom_shipment_transition_allowed(ECOM_SHIP_PENDING, ECOM_SHIP_SHIPPED)
       && ecom_shipment_transition_allowed(ECOM_SHIP_SHIPPED,
                                           ECOM_SHIP_IN_TRANSIT)
       && ecom_shipment_transition_allowed(ECOM_SHIP_IN_TRANSIT,
                                           ECOM_SHIP_DELIVERED),
       "each next step allowed");
    OK(ecom_shipment_transition_allowed(ECOM_SHIP_PENDING,
                                        ECOM_SHIP_DELIVERED),
       "skipping forward allowed");
    OK(!ecom_shipment_transition_allowed(ECOM_SHIP_SHIPPED,
                                         ECOM_SHIP_SHIPPED),
       "same state refused");
    OK(!ecom_shipment_transition_allowed(ECOM_SHIP_DELIVERED,
                                         ECOM_SHIP_IN_TRANSIT)
       && !ecom_shipment_transition_allowed(ECOM_SHIP_SHIPPED,
                                            ECOM_SHIP_PENDING),
       "going back refused");
    OK(!ecom_shipment_transition_allowed((ecom_shipment_state)-1,
                                         ECOM_SHIP_SHIPPED)
       && !ecom_shipment_transition_allowed(ECOM_SHIP_PENDING,
                                            ECOM_SHIP_NSTATES)
       && ecom_shipment_state_name(ECOM_SHIP_NSTATES) == NULL,
       "out-of-range values refused");
    for (int a = 0; a < ECOM_SHIP_NSTATES; a++) {
        for (int b = 0; b < ECOM_SHIP_NSTATES; b++) {
            forward += ecom_shipment_transition_allowed(
                (ecom_shipment_state)a, (ecom_shipment_state)b);
        }
    }
    OK(forward == 6, "6 forward moves in the whole table");
}
