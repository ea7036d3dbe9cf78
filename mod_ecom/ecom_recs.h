/*
 * ecom_recs.h: the recommendations' background refresh (ecom_recs.c),
 * for mod_ecom.c's watchdog. The endpoints are the "recs" resource.
 */
#ifndef ECOM_RECS_H
#define ECOM_RECS_H

#include "httpd.h"

/* Calls ecom_recs_refresh('watchdog', ...) through a connection of s's
 * mod_dbd pool (mod_watchdog's thread, no request): at most one refresh
 * at a time on the database (any process or host), none when the last
 * one finished less than 9/10 of interval seconds ago (the watchdog's
 * own period, less the slack a run's duration takes from it). Logs what
 * it did; APR_SUCCESS or the failure. */
apr_status_t ecom_recs_refresh_bg(server_rec *s, apr_pool_t *p, int interval);

#endif /* ECOM_RECS_H */
