#!/usr/bin/env bash
# scripts/soak.sh (what `make soak` runs): a long run at moderate load with
# PostgreSQL restarted now and then, to show that nothing grows and the
# latency does not drift (issue 11, part 5). Not part of the test suite.
#
# Starts its own PostgreSQL cluster (build/soak-pg, destroyed and made again
# on every run) and httpd (build/soak-run, the test configuration with
# LogLevel warn and no access log), then scripts/soak.pl:
#   - 8 shoppers (the "shop" mix of t/lib/EcomLoad.pm: list, detail, cart
#     add, checkout, payment; one connection per request) on 20 products
#     that cannot sell out;
#   - saturation measured for 5 s (as fast as answers come), then the load
#     at ECOM_SOAK_LOAD (default 0.5: 50 %) of it for ECOM_SOAK_MINUTES
#     (default 30) minutes;
#   - PostgreSQL restarted (scripts/pg.sh restart: fast shutdown, start)
#     30 s into every ECOM_SOAK_BLIP_MINUTES-th minute (default 5: at 5:30,
#     10:30, ... so the first five minutes are the undisturbed baseline);
#   - one line per minute: answers, rate, p50 and p99, answers by status,
#     the open file descriptors of all httpd processes, the median and
#     largest child RSS (VmRSS) and the median private part of it (RssAnon:
#     heap, pools, stacks, without library pages touched for the first
#     time), sampled at the end of the minute.
# Passes (exit 0) when
#   - no answer is a 5xx other than 503 and no connection failed;
#   - p99 of the last window <= 2 x p99 of the first window, where a window
#     is 5 minutes, or a third of the run when that is shorter (every
#     answer of the window counts, the blips' included);
#   - file descriptors: the largest count sampled in the last window <= the
#     largest in the first window x 1.1 + 10 (the slack: client sockets in
#     flight at the moment of sampling);
#   - RSS: the median child RSS at the end <= the largest median of the
#     first window x 1.1 + 2 MB.
# Environment: ECOM_SOAK_MINUTES (30), ECOM_SOAK_BLIP_MINUTES (5),
# ECOM_SOAK_LOAD (0.5), ECOM_SOAK_WORKERS (8), ECOM_SOAK_PGPORT (25436),
# ECOM_SOAK_HTTP_PORT (28090), ECOM_SOAK_HTTPS_PORT (28453).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

export ECOM_PGDATA="$ROOT/build/soak-pg"
# below the ephemeral port range, like the test cluster (scripts/test.sh)
export PGHOST=127.0.0.1 PGPORT="${ECOM_SOAK_PGPORT:-25436}" PGUSER=ecom PGDATABASE=ecom ECOM_PG_FAST=1
export RUNDIR="$ROOT/build/soak-run" HTTP_PORT="${ECOM_SOAK_HTTP_PORT:-28090}"
export HTTPS_PORT="${ECOM_SOAK_HTTPS_PORT:-28453}"
export ECOM_LOGLEVEL=warn ECOM_ACCESSLOG=0 MODULE="$ROOT/build/mod_ecom.so"
unset ECOM_PRELOAD ECOM_DB2 ECOM_PG_SOCKET_DIR
for port in "$PGPORT" "$HTTP_PORT" "$HTTPS_PORT"; do
    ecom_port_in_use "$port" && die "127.0.0.1:$port is in use: set ECOM_SOAK_PGPORT, ECOM_SOAK_HTTP_PORT or ECOM_SOAK_HTTPS_PORT"
done

ecom_build
trap ecom_bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bash scripts/pg.sh destroy
ecom_db_up
mkdir -p "$RUNDIR"
rm -f "$RUNDIR/error.log" "$RUNDIR/ecom-extra.conf"
bash scripts/httpd.sh start
ECOM_URL="http://127.0.0.1:$HTTP_PORT" ECOM_RUNDIR="$RUNDIR" perl scripts/soak.pl
