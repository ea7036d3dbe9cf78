/*
 * ecom_country.h: ISO 3166-1 alpha-2 country codes, without httpd
 * (ecom_country.c), for the shipping address of an order.
 */
#ifndef ECOM_COUNTRY_H
#define ECOM_COUNTRY_H

#include <stddef.h>

/* Number of officially assigned ISO 3166-1 alpha-2 codes in the table. */
#define ECOM_COUNTRY_COUNT 249

/* 1 when code is an officially assigned ISO 3166-1 alpha-2 code, in either
 * case ("fr" and "FR"), 0 otherwise (NULL, other lengths, reserved or
 * withdrawn codes such as "UK", "EU", "XK", "AN"). */
int ecom_country_valid(const char *code);

/* Writes the upper-case form of a valid code into out (3 bytes) and
 * returns 0; -1 (out untouched) when code is not valid. */
int ecom_country_normalise(const char *code, char out[3]);

#endif /* ECOM_COUNTRY_H */
