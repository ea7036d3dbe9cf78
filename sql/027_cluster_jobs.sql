-- 027: the background jobs run once per period across every host that
-- shares this database (issue 11, "Several nodes").
--
-- Each httpd node runs the module's mod_watchdog jobs in one of its
-- children (mod_ecom.c); with several nodes on one database, each node
-- would run each job once per interval. The recommendations refresh
-- (sql/021) and the demand-based pricing (sql/024) already skip a run when
-- the last one finished less than their interval ago. The others (the
-- purge of expired tokens and records, the payment timeout, the sales
-- window edges) now claim their period here first: ecom_job_claim(job,
-- interval, who) takes the job's lease when its last claim, by any
-- process of any host, is at least 9/10 of the interval old (the 1/10
-- absorbs the jitter of the watchdog's timing), and records the run in
-- job_runs; a caller that does not get it skips its turn. The claim is one
-- conditional upsert on the job's row, so two nodes that ask at the same
-- moment are serialised by that row's lock and only one gets it.
--
-- job_runs is the record operators (and t/63-cluster.t) read: which
-- process of which host ran which job when. A day of it is kept, at most
-- one row per job and period.

CREATE TABLE job_leases (
    job        text        PRIMARY KEY,
    run_by     text        NOT NULL,
    started_at timestamptz NOT NULL
);

CREATE TABLE job_runs (
    id         bigserial   PRIMARY KEY,
    job        text        NOT NULL,
    run_by     text        NOT NULL,
    started_at timestamptz NOT NULL
);
CREATE INDEX job_runs_job_started ON job_runs (job, started_at);

CREATE FUNCTION ecom_job_claim(p_job text, p_interval_ms bigint, p_by text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
BEGIN
    IF p_job IS NULL OR p_by IS NULL OR p_interval_ms IS NULL
       OR p_interval_ms < 0 THEN
        RAISE EXCEPTION 'ecom_job_claim: job, interval >= 0 and caller needed'
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO job_leases AS l (job, run_by, started_at)
    VALUES (p_job, p_by, v_now)
    ON CONFLICT (job) DO UPDATE
       SET run_by = EXCLUDED.run_by, started_at = EXCLUDED.started_at
     WHERE l.started_at
           <= EXCLUDED.started_at - make_interval(secs => p_interval_ms * 0.9 / 1000);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO job_runs (job, run_by, started_at) VALUES (p_job, p_by, v_now);
    DELETE FROM job_runs
     WHERE job = p_job AND started_at < v_now - interval '1 day';
    RETURN true;
END
$$;
