#!/usr/bin/env bash
# scripts/pg.sh {init|start|stop|restart|status|psql|createdb|destroy|datadir}
#
# A private PostgreSQL cluster for mod_ecom's dev server, tests and benchmark:
# listens on 127.0.0.1:$PGPORT only (no unix socket), trust authentication for
# 127.0.0.1 (a loopback-only dev/test cluster), role and database "ecom".
#
#   init      initdb (if needed) and create the role and the database; leaves
#             the server stopped unless it was already running
#   start     start and wait until it accepts connections (idempotent)
#   stop      fast shutdown (idempotent)
#   restart   stop + start
#   status    exit 0 when running, 3 when not
#   psql      psql on the cluster (extra arguments are passed on)
#   createdb NAME
#             create the database NAME owned by $PGUSER if it does not exist
#             (the server must be running), e.g. a second shop's database
#   destroy   stop and delete the data directory and its log
#   datadir   print the data directory actually used
#
# Environment: ECOM_PGDATA (default $ROOT/build/pg), PGPORT (55432), PGUSER
# (ecom), PGDATABASE (ecom), ECOM_PG_FAST=1 (fsync off: tests only),
# ECOM_PG_SOCKET_DIR (a directory for a unix socket besides 127.0.0.1, as
# httpd.sh then connects the module through it; default: none; make bench
# sets one),
# ECOM_PG_VERSION (default: newest in /usr/lib/postgresql).
#
# PostgreSQL refuses to run as root, so when run as root the server runs as
# the "postgres" OS user. When that user cannot traverse the repo (a clone in
# a mode-700 folder), the data directory moves to
# /var/tmp/mod_ecom-pg/<hash of the repo path>-<basename of ECOM_PGDATA>.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ecom_pg_env

case "$PGPORT" in ''|*[!0-9]*) die "PGPORT must be a number (got '$PGPORT')" ;; esac

PG_VERSION="${ECOM_PG_VERSION:-}"
if [ -z "$PG_VERSION" ] && [ -d /usr/lib/postgresql ]; then
    PG_VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
fi
PGBIN="/usr/lib/postgresql/${PG_VERSION}/bin"
[ -n "$PG_VERSION" ] && [ -x "$PGBIN/pg_ctl" ] \
    || die "PostgreSQL server binaries not found under /usr/lib/postgresql (install: postgresql)"

want="${ECOM_PGDATA:-$ROOT/build/pg}"
case "$want" in /*) ;; *) want="$PWD/$want" ;; esac
PGD="$(ecom_user_dir postgres "$want" pg)"
PGLOG="$PGD.log"
MARKER="$PGD/ecom_initialised"

# Runs a PostgreSQL server binary as the postgres OS user when we are root.
pg_run() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

note_fallback() {
    if [ "$PGD" != "$want" ]; then
        msg "the postgres user cannot reach $(dirname "$want"); data directory is $PGD"
    fi
}

is_initdb_done() { [ -f "$PGD/PG_VERSION" ]; }
is_running() { is_initdb_done && pg_run "$PGBIN/pg_ctl" status -D "$PGD" >/dev/null 2>&1; }
is_ready() { pg_isready -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -t 2 >/dev/null 2>&1; }

make_log() {
    touch "$PGLOG"
    if is_root; then chown postgres: "$PGLOG"; fi
}

show_log() { show_tail "$PGLOG" 25; }

# Settings in force from the next start (rewritten on every start so that
# PGPORT and ECOM_PG_FAST from the caller's environment apply).
write_conf() {
    local f="$PGD/ecom.conf"
    {
        echo "# Written by scripts/pg.sh on every start: do not edit."
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $PGPORT"
        echo "unix_socket_directories = '${ECOM_PG_SOCKET_DIR:-}'"
        echo "max_connections = 200"
        echo "shared_buffers = 128MB"
        echo "timezone = 'UTC'"
        echo "log_timezone = 'UTC'"
        echo "logging_collector = off"
        echo "log_line_prefix = '%m [%p] %q%u@%d '"
        echo "log_min_messages = warning"
        echo "log_min_error_statement = error"
        if [ "${ECOM_PG_FAST:-0}" = 1 ]; then
            echo "# ECOM_PG_FAST=1: durability off, for throw-away test clusters only."
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        fi
    } >"$f"
    if is_root; then chown postgres: "$f"; fi
    chmod 600 "$f"
    if [ -n "${ECOM_PG_SOCKET_DIR:-}" ]; then
        # the server creates the socket; httpd's children (User www-data
        # when started as root) must traverse the directory
        mkdir -p "$ECOM_PG_SOCKET_DIR"
        if is_root; then chown postgres: "$ECOM_PG_SOCKET_DIR"; fi
        chmod 755 "$ECOM_PG_SOCKET_DIR"
        # clusters initialised before the socket existed get the local line
        if ! grep -q '^local' "$PGD/pg_hba.conf"; then
            printf '%s\n' "local   all       all                 trust" >>"$PGD/pg_hba.conf"
        fi
    fi
}

do_start() {
    is_initdb_done || die "no cluster in $PGD: run 'scripts/pg.sh init' first"
    if is_running; then
        if ecom_wait_for 30 is_ready; then
            msg "PostgreSQL already running on 127.0.0.1:$PGPORT ($PGD)"
            return 0
        fi
        die "PostgreSQL is running in $PGD but not accepting connections on 127.0.0.1:$PGPORT"
    fi
    note_fallback
    write_conf
    make_log
    msg "starting PostgreSQL $PG_VERSION on 127.0.0.1:$PGPORT (log: $PGLOG)"
    if ! pg_run "$PGBIN/pg_ctl" start -D "$PGD" -l "$PGLOG" -w -t 30 -s; then
        show_log
        die "PostgreSQL did not start"
    fi
    if ! ecom_wait_for 30 is_ready; then
        show_log
        die "PostgreSQL does not accept connections on 127.0.0.1:$PGPORT"
    fi
    msg "PostgreSQL ready on 127.0.0.1:$PGPORT"
}

do_stop() {
    if ! is_initdb_done; then
        msg "no PostgreSQL cluster in $PGD: nothing to stop"
        return 0
    fi
    if ! is_running; then
        msg "PostgreSQL ($PGD) is not running"
        return 0
    fi
    msg "stopping PostgreSQL ($PGD)"
    if ! pg_run "$PGBIN/pg_ctl" stop -D "$PGD" -m fast -w -t 60 -s; then
        show_log
        die "PostgreSQL did not stop"
    fi
    msg "PostgreSQL stopped"
}

do_init() {
    if [ -f "$MARKER" ]; then
        msg "PostgreSQL cluster already initialised in $PGD"
        return 0
    fi
    note_fallback
    if ! is_initdb_done; then
        if [ -d "$PGD" ] && [ -n "$(ls -A "$PGD")" ]; then
            die "$PGD exists, is not empty and is not a PostgreSQL data directory"
        fi
        case "$PGD" in /var/tmp/mod_ecom-pg/*) mkdir -p /var/tmp/mod_ecom-pg; chmod 755 /var/tmp/mod_ecom-pg ;; esac
        ecom_user_dir_make postgres "$PGD" 700
        make_log
        local opts=(-D "$PGD" -U postgres -A trust -E UTF8)
        if locale -a 2>/dev/null | grep -ix 'c\.utf-\?8' >/dev/null; then
            opts+=(--locale=C.UTF-8)
        else
            opts+=(--no-locale)
        fi
        [ "${ECOM_PG_FAST:-0}" = 1 ] && opts+=(--no-sync)
        msg "initdb: PostgreSQL $PG_VERSION cluster in $PGD"
        local out
        if ! out="$(pg_run "$PGBIN/initdb" "${opts[@]}" 2>&1)"; then
            printf '%s\n' "$out" >&2
            die "initdb failed"
        fi
        # Loopback TCP (and a unix socket), no passwords: a throw-away
        # dev/test cluster.
        cat >"$PGD/pg_hba.conf" <<'EOF'
# Written by scripts/pg.sh: loopback TCP, and the unix socket when
# ECOM_PG_SOCKET_DIR gives it one; trust (dev/test cluster).
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.1/32  trust
local   all       all                 trust
EOF
        echo "include_if_exists = 'ecom.conf'" >>"$PGD/postgresql.conf"
        if is_root; then chown postgres: "$PGD/pg_hba.conf" "$PGD/postgresql.conf"; fi
    fi
    local was_running=0
    is_running && was_running=1
    do_start
    msg "creating role '$PGUSER' and database '$PGDATABASE'"
    create_db "$PGDATABASE"
    touch "$MARKER"
    if is_root; then chown postgres: "$MARKER"; fi
    [ "$was_running" = 1 ] || do_stop
    msg "PostgreSQL cluster ready in $PGD (role/database: $PGUSER/$PGDATABASE)"
}

# create_db NAME: the role $PGUSER (if missing) and the database NAME it owns.
create_db() {
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
        -v role="$PGUSER" -v db="$1" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN SUPERUSER', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
}

do_createdb() {
    [ -n "${1:-}" ] || die "usage: $0 createdb NAME"
    is_running || die "PostgreSQL ($PGD) is not running: start it first"
    create_db "$1" || die "could not create database $1"
    msg "database '$1' (owner $PGUSER) ready on 127.0.0.1:$PGPORT"
}

do_status() {
    if ! is_initdb_done; then
        echo "no cluster in $PGD"
        return 3
    fi
    if is_running; then
        local pid
        pid="$(head -n1 "$PGD/postmaster.pid" 2>/dev/null || echo '?')"
        if is_ready; then
            echo "running (pid $pid) on 127.0.0.1:$PGPORT, data $PGD"
        else
            echo "running (pid $pid) but not accepting connections on 127.0.0.1:$PGPORT, data $PGD"
        fi
        return 0
    fi
    echo "stopped (data $PGD)"
    return 3
}

do_destroy() {
    do_stop
    if [ -e "$PGD" ] || [ -e "$PGLOG" ]; then
        msg "deleting $PGD"
        rm -rf "$PGD" "$PGLOG"
    fi
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    init)    do_init ;;
    start)   do_start ;;
    stop)    do_stop ;;
    restart) do_stop; do_start ;;
    status)  do_status ;;
    psql)    exec psql -X -h 127.0.0.1 -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" "$@" ;;
    createdb) do_createdb "$@" ;;
    destroy) do_destroy ;;
    datadir) printf '%s\n' "$PGD" ;;
    *) echo "usage: $0 {init|start|stop|restart|status|psql|createdb|destroy|datadir}" >&2; exit 2 ;;
esac
