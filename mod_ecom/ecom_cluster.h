/*
 * ecom_cluster.h: what several httpd nodes sharing one database need from
 * the module beyond statelessness (ecom_cluster.c): the background jobs'
 * claim of their period, so that a job runs once per interval across all
 * the hosts, not once per host.
 */
#ifndef ECOM_CLUSTER_H
#define ECOM_CLUSTER_H

#include "ecom_config.h"

/* 1 when this process should run the background job named job now: it got
 * the job's lease in s's database (sql/027: no process of any host claimed
 * it in the last 9/10 of interval seconds) and the run is recorded in
 * job_runs; 0 when another process has this period; -1 when the claim
 * could not be made (no database: the job would fail the same way; logged
 * by ecom_db.c). From a mod_watchdog callback, no request. */
int ecom_job_claim(server_rec *s, apr_pool_t *p, const char *job,
                   int interval);

#endif /* ECOM_CLUSTER_H */
