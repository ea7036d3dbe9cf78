/*
 * ecom_cluster.c: background jobs once across a cluster (issue 11).
 *
 * Every node of a cluster (scripts/cluster.sh: several httpd behind a
 * mod_proxy_balancer gateway, one PostgreSQL) registers the same
 * mod_watchdog jobs (mod_ecom.c), and mod_watchdog's singleton mode only
 * keeps them to one child per node. Before a run, a job without a guard of
 * its own claims its period in the database (ecom_job_claim, sql/027): one
 * conditional upsert of the job's lease row, so of the nodes that ask
 * within the same period exactly one gets it, and the run is recorded in
 * job_runs with who ran it ("<host> httpd <parent pid>": the node). The
 * recommendations refresh and the demand-based pricing need no claim:
 * their SQL functions already skip a run when the last one is younger than
 * the interval, under an advisory lock.
 *
 * The claim holds no lock while the job runs: a job that outlives its
 * interval may overlap the next period's run, which each job already
 * tolerates (the purge takes its advisory lock, the payment timeout skips
 * locked rows, the sale edges take their transaction lock). Log tags:
 * ECOM27xx.
 */
#include "ecom_cluster.h"
#include "ecom_resource.h"
#include "ecom_db.h"

#include <unistd.h>

static const ecom_stmt cluster_sql[] = {
    /* sql/027: true when this caller has the job's period */
    { "ecom_job_claim", "SELECT ecom_job_claim(%s, %s::bigint, %s)", 0 },
    { NULL, NULL, 0 }
};

/* Who runs it: this host and the node's httpd (the parent process of the
 * watchdog's child), as job_runs records it. */
static const char *node_name(apr_pool_t *p)
{
    char host[APRMAXHOSTLEN + 1];

    if (apr_gethostname(host, sizeof(host), p) != APR_SUCCESS) {
        apr_cpystrn(host, "localhost", sizeof(host));
    }
    return apr_psprintf(p, "%s httpd %" APR_PID_T_FMT, host, getppid());
}

int ecom_job_claim(server_rec *s, apr_pool_t *p, const char *job,
                   int interval)
{
    const char *args[3], *out[1] = { NULL };

    args[0] = job;
    args[1] = apr_psprintf(p, "%" APR_INT64_T_FMT,
                           (apr_int64_t)interval * 1000);
    args[2] = node_name(p);
    if (ecom_db_job_row(s, p, "ecom_job_claim", 3, args, 1, out)
        != APR_SUCCESS || !out[0]) {
        return -1;
    }
    if (out[0][0] != 't') {
        ap_log_error(APLOG_MARK, APLOG_TRACE1, 0, s, "ECOM2701: %s: another "
                     "process ran it less than %d s ago", job, interval);
        return 0;
    }
    return 1;
}

const ecom_resource ecom_cluster_resource = { "cluster", cluster_sql, NULL,
                                              NULL };
