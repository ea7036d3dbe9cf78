#!/usr/bin/env bash
# scripts/cluster.sh {start|stop|status|node-start N|node-stop N|redis-start|redis-stop}
#   (what `make cluster` and `make cluster-stop` run)
#
# Several mod_ecom nodes behind a gateway, on this host, from one command:
#   PostgreSQL  the dev cluster (build/pg on 127.0.0.1:55432, scripts/pg.sh),
#               migrated, with the demo data loaded when the catalog is empty
#               (as scripts/dev.sh does); ECOM_CLUSTER_PG=0: use the running
#               PostgreSQL of the libpq environment as it is (the tests)
#   Redis       redis-server on 127.0.0.1:$BASE+3, a child process of this
#               script with its own directory ($DIR/redis), no persistence,
#               not the system service: the cache every node shares
#   nodes       ECOM_CLUSTER_NODES (2) httpd with mod_ecom (scripts/httpd.sh,
#               one RUNDIR each: $DIR/node1, $DIR/node2) on 127.0.0.1:$BASE+1,
#               $BASE+2, without TLS, with EcomCache redis:127.0.0.1:$BASE+3
#   gateway     httpd with mod_proxy_balancer and mod_proxy_hcheck
#               (conf/gateway.conf.in, $DIR/gateway) on 127.0.0.1:$BASE,
#               health checks GET /health/ every second
# then prints the gateway's URL. stop stops all of them (PostgreSQL too
# unless ECOM_CLUSTER_PG=0); status prints each one's state and exits 3
# when any is down. node-start N / node-stop N start or stop one node (the
# gateway routes around a stopped node); redis-start / redis-stop, Redis.
#
# Environment (defaults):
#   ECOM_CLUSTER_PORT=8100  the gateway; nodes on +1, +2; Redis on +3
#   ECOM_CLUSTER_DIR=$ROOT/build/cluster
#   ECOM_CLUSTER_NODES=2    1 or 2 (`make bench-cluster` measures both)
#   ECOM_CLUSTER_PG=1       0: do not start, migrate or fill PostgreSQL
#   ECOM_CLUSTER_BUILD=1    0: do not install packages nor build (the
#                           module must exist: MODULE)
#   ECOM_CLUSTER_NODE_EXTRA httpd directives added to every node (its
#                           RUNDIR/ecom-extra.conf), \n between lines
#   ECOM_LOGLEVEL (warn), MODULE, ECOM_PRELOAD, PGPORT... as scripts/httpd.sh
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ecom_pg_env
export ECOM_PGDATA="${ECOM_PGDATA:-$ROOT/build/pg}"

APACHE2="${APACHE2:-/usr/sbin/apache2}"
BASE="${ECOM_CLUSTER_PORT:-8100}"
DIR="${ECOM_CLUSTER_DIR:-$ROOT/build/cluster}"
case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
NODES="${ECOM_CLUSTER_NODES:-2}"
OWN_PG="${ECOM_CLUSTER_PG:-1}"
export ECOM_LOGLEVEL="${ECOM_LOGLEVEL:-warn}"
case "$BASE" in ''|*[!0-9]*) die "ECOM_CLUSTER_PORT must be a number (got '$BASE')" ;; esac
case "$NODES" in 1|2) ;; *) die "ECOM_CLUSTER_NODES must be 1 or 2 (got '$NODES')" ;; esac
REDIS_PORT=$((BASE + 3))
GW="$DIR/gateway"
HC_INTERVAL=1
HC_PASSES=2

node_port() { echo $((BASE + $1)); }

# scripts/httpd.sh for node N: its own RUNDIR and port, no TLS, no second
# shop, the shared Redis cache.
node_httpd() {
    local n=$1; shift
    RUNDIR="$DIR/node$n" HTTP_PORT="$(node_port "$n")" HTTPS_PORT=0 ECOM_TLS=0 \
        ECOM_DB2='' ECOM_CACHE="redis:127.0.0.1:$REDIS_PORT" \
        bash "$ROOT/scripts/httpd.sh" "$@"
}

# ---- Redis -------------------------------------------------------------
REDIS_USER=redis
id "$REDIS_USER" >/dev/null 2>&1 || REDIS_USER="$(id -un)"
redis_dir() { ecom_user_dir "$REDIS_USER" "$DIR/redis" redis; }
redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
# live_pid FILE: prints the pid in FILE when that process runs.
live_pid() {
    local pid
    [ -f "$1" ] || return 1
    pid="$(cat "$1" 2>/dev/null || true)"
    case "$pid" in ''|*[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}
redis_pid() { live_pid "$(redis_dir)/redis.pid"; }
# stop_named NAME PID_FILE SECONDS: stops the process of PID_FILE if it
# runs: SIGTERM, then SIGKILL when it has not exited within SECONDS.
stop_named() {
    local pid
    if ! pid="$(live_pid "$2")"; then
        msg "$1 is not running"
        rm -f "$2"
        return 0
    fi
    msg "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! ecom_wait_for "$3" eval '! kill -0 '"$pid"' 2>/dev/null'; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$2"
}

redis_start() {
    command -v redis-server >/dev/null || die "redis-server not found (apt-get install redis-server)"
    if redis_pid >/dev/null && redis_ping; then
        msg "Redis already running on 127.0.0.1:$REDIS_PORT"
        return 0
    fi
    ecom_port_in_use "$REDIS_PORT" && die "127.0.0.1:$REDIS_PORT is in use: set ECOM_CLUSTER_PORT"
    local d
    d="$(redis_dir)"
    case "$d" in /var/tmp/mod_ecom-redis/*) mkdir -p /var/tmp/mod_ecom-redis; chmod 755 /var/tmp/mod_ecom-redis ;; esac
    ecom_user_dir_make "$REDIS_USER" "$d" 750
    msg "starting Redis on 127.0.0.1:$REDIS_PORT (dir $d)"
    # a cache: no snapshots, no append-only file, least recently used out
    # first when full
    local cmd=(redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$d"
               --daemonize yes --pidfile "$d/redis.pid" --logfile "$d/redis.log"
               --save '' --appendonly no --maxmemory 256mb
               --maxmemory-policy allkeys-lru --protected-mode yes)
    if is_root && [ "$REDIS_USER" != root ]; then
        (cd / && runuser -u "$REDIS_USER" -- "${cmd[@]}")
    else
        "${cmd[@]}"
    fi
    ecom_wait_for 10 redis_ping || { show_tail "$d/redis.log" 20; die "Redis does not answer on 127.0.0.1:$REDIS_PORT"; }
    msg "Redis ready (pid $(redis_pid || echo '?'))"
}

redis_stop() { stop_named "Redis (127.0.0.1:$REDIS_PORT)" "$(redis_dir)/redis.pid" 10; }

# ---- the gateway -------------------------------------------------------
gw_pid() { live_pid "$GW/httpd.pid"; }

gw_conf() {
    local members="" n
    mkdir -p "$GW/htdocs"
    chmod 755 "$GW/htdocs"
    for n in $(seq 1 "$NODES"); do
        members+="    BalancerMember \"http://127.0.0.1:$(node_port "$n")\" route=node$n retry=5 timeout=30 hcmethod=GET hcuri=/health/ hcinterval=$HC_INTERVAL hcfails=1 hcpasses=$HC_PASSES"$'\n'
    done
    TPL_RUNDIR="$GW" TPL_GATEWAY_PORT="$BASE" TPL_LOGLEVEL="${ECOM_LOGLEVEL%% *}" \
    TPL_MEMBERS="${members%$'\n'}" TPL_HC_INTERVAL="$HC_INTERVAL" TPL_HC_PASSES="$HC_PASSES" \
    perl -pe 'next if /^\s*#/; s/\@([A-Z_0-9]+)\@/exists $ENV{"TPL_$1"} ? $ENV{"TPL_$1"} : die "unknown placeholder \@$1\@ in line $.\n"/ge' \
        "$ROOT/conf/gateway.conf.in" >"$GW/httpd.conf.tmp"
    mv -f "$GW/httpd.conf.tmp" "$GW/httpd.conf"
}

gw_health() {
    [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$BASE/health/" 2>/dev/null || true)" = 200 ]
}

gw_start() {
    gw_pid >/dev/null && gw_stop
    mkdir -p "$GW"
    gw_conf
    msg "starting the gateway on http://127.0.0.1:$BASE ($NODES node(s), config $GW/httpd.conf)"
    if ! "$APACHE2" -f "$GW/httpd.conf" -k start >"$GW/startup.log" 2>&1; then
        cat "$GW/startup.log" >&2
        show_tail "$GW/error.log" 20
        die "the gateway failed to start"
    fi
    ecom_wait_for 30 gw_health || { show_tail "$GW/error.log" 20; die "the gateway does not answer /health/ with 200 on 127.0.0.1:$BASE"; }
    msg "gateway running (pid $(gw_pid || echo '?'))"
}

gw_stop() { stop_named "the gateway" "$GW/httpd.pid" 20; }

# ---- nodes -------------------------------------------------------------
node_start() {
    local n=$1 extra="$DIR/node$1/ecom-extra.conf"
    mkdir -p "$DIR/node$n"
    if [ -n "${ECOM_CLUSTER_NODE_EXTRA:-}" ]; then
        printf '%b\n' "$ECOM_CLUSTER_NODE_EXTRA" >"$extra"
    else
        rm -f "$extra"
    fi
    msg "starting node $n on http://127.0.0.1:$(node_port "$n") (EcomCache redis:127.0.0.1:$REDIS_PORT)"
    node_httpd "$n" start
}

node_stop() { msg "stopping node $1"; node_httpd "$1" stop; }

# ---- PostgreSQL ----------------------------------------------------------
pg_up() {
    if [ "$OWN_PG" = 0 ]; then
        msg "PostgreSQL: using 127.0.0.1:$PGPORT database $PGDATABASE as it is (ECOM_CLUSTER_PG=0)"
        return 0
    fi
    ecom_db_up
    local products
    products="$(psql -X -At -v ON_ERROR_STOP=1 -c 'SELECT count(*) FROM products')"
    if [ "$products" = 0 ]; then
        msg "the catalog is empty: loading the demo data (scripts/import-demo.sh)"
        bash scripts/import-demo.sh || warn "the demo import failed: the catalog stays empty"
    else
        msg "catalog: $products products"
    fi
}

do_start() {
    if [ "${ECOM_CLUSTER_BUILD:-1}" != 0 ]; then
        ecom_build
    fi
    mkdir -p "$DIR"
    msg "cluster: gateway :$BASE, $NODES node(s) from :$((BASE + 1)), Redis :$REDIS_PORT, PostgreSQL :$PGPORT"
    pg_up
    redis_start
    local n
    for n in $(seq 1 "$NODES"); do node_start "$n"; done
    gw_start
    cat >&2 <<EOF
==>
==> mod_ecom cluster running: $NODES node(s) behind the gateway
==>   gateway:   http://127.0.0.1:$BASE/   (try: curl -s http://127.0.0.1:$BASE/health/)
==>   balancer:  http://127.0.0.1:$BASE/balancer-manager   (members, health checks)
==>   nodes:     $(for n in $(seq 1 "$NODES"); do printf 'http://127.0.0.1:%s/ (%s) ' "$(node_port "$n")" "$DIR/node$n"; done)
==>   Redis:     redis-cli -p $REDIS_PORT
==>   stop:      make cluster-stop   (or scripts/cluster.sh stop)
==>
EOF
    echo "http://127.0.0.1:$BASE/"
}

do_stop() {
    gw_stop
    local n
    # both possible nodes: a cluster started with 2 and stopped with 1
    for n in 1 2; do node_stop "$n"; done
    redis_stop
    if [ "$OWN_PG" != 0 ]; then
        bash "$ROOT/scripts/pg.sh" stop
    fi
}

do_status() {
    local rc=0 n
    if pid="$(gw_pid)"; then echo "gateway: running (pid $pid) on http://127.0.0.1:$BASE"; else echo "gateway: stopped"; rc=3; fi
    for n in $(seq 1 "$NODES"); do
        printf 'node %s: ' "$n"
        node_httpd "$n" status || rc=3
    done
    if pid="$(redis_pid)"; then echo "redis: running (pid $pid) on 127.0.0.1:$REDIS_PORT"; else echo "redis: stopped"; rc=3; fi
    if [ "$OWN_PG" != 0 ]; then
        printf 'postgresql: '
        bash "$ROOT/scripts/pg.sh" status || rc=3
    fi
    return $rc
}

node_arg() {
    case "${1:-}" in 1|2) ;; *) die "usage: $0 node-start|node-stop 1|2" ;; esac
}

cmd="${1:-}"
case "$cmd" in
    start)       do_start ;;
    stop)        do_stop ;;
    status)      do_status ;;
    node-start)  node_arg "${2:-}"; node_start "$2" ;;
    node-stop)   node_arg "${2:-}"; node_stop "$2" ;;
    redis-start) redis_start ;;
    redis-stop)  redis_stop ;;
    *) echo "usage: $0 {start|stop|status|node-start N|node-stop N|redis-start|redis-stop}" >&2; exit 2 ;;
esac
