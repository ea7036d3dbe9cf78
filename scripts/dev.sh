#!/usr/bin/env bash
# scripts/dev.sh (what `make run` runs): the dev server.
#
# Installs what is missing, builds, starts the dev PostgreSQL cluster
# (build/pg on 127.0.0.1:55432), applies migrations, loads the demo data when
# the catalog is empty, then runs httpd in the foreground on
# http://127.0.0.1:8080 and https://127.0.0.1:8443 until Ctrl-C, and stops
# PostgreSQL on the way out.
#
# Environment: the same as scripts/pg.sh and scripts/httpd.sh (PGPORT,
# HTTP_PORT, HTTPS_PORT, ECOM_LOGLEVEL, ECOM_PRELOAD, ...).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ecom_pg_env
export ECOM_PGDATA="${ECOM_PGDATA:-$ROOT/build/pg}"
export RUNDIR="${RUNDIR:-$ROOT/build/run}"
export HTTP_PORT="${HTTP_PORT:-8080}" HTTPS_PORT="${HTTPS_PORT:-8443}"

tails=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${tails[@]}"; do kill "$p" 2>/dev/null || true; done
    bash "$ROOT/scripts/httpd.sh" stop >/dev/null 2>&1 || true
    bash "$ROOT/scripts/pg.sh" stop || true
    exit "$rc"
}

ecom_build

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ecom_db_up

products="$(psql -X -At -v ON_ERROR_STOP=1 -c 'SELECT count(*) FROM products')"
if [ "$products" = 0 ]; then
    if [ -f scripts/import-demo.sh ]; then
        msg "the catalog is empty: loading the demo data (scripts/import-demo.sh)"
        bash scripts/import-demo.sh || warn "the demo import failed: the catalog stays empty"
    else
        msg "the catalog is empty and scripts/import-demo.sh does not exist yet: no demo data"
    fi
else
    msg "catalog: $products products"
fi

cat >&2 <<EOF
==>
==> mod_ecom dev server
==>   API:      http://127.0.0.1:$HTTP_PORT/   and   https://127.0.0.1:$HTTPS_PORT/ (self-signed)
==>   OpenAPI:  http://127.0.0.1:$HTTP_PORT/openapi.json
==>   database: psql -h 127.0.0.1 -p $PGPORT -U $PGUSER $PGDATABASE   (or: scripts/pg.sh psql)
==>   logs:     $RUNDIR/error.log, $RUNDIR/access.log
==>   try:      curl -s http://127.0.0.1:$HTTP_PORT/health/
==>             curl -s 'http://127.0.0.1:$HTTP_PORT/products/?limit=5'
==>             curl -sk https://127.0.0.1:$HTTPS_PORT/products/1/
==>   staff:    ECOM_PASSWORD='a long secret' scripts/ecom-admin create-staff --email you@example.com
==> Ctrl-C stops httpd and PostgreSQL.
==>
EOF

# Show the error log on the terminal while the server runs.
mkdir -p "$RUNDIR"
touch "$RUNDIR/error.log"
tail -n 0 -F "$RUNDIR/error.log" 2>/dev/null &
tails+=($!)

bash scripts/httpd.sh fg
