#!/usr/bin/env bash
# scripts/bench-cluster.sh (what `make bench-cluster` runs): the gateway's
# throughput with one node behind it, then with two.
#
# Starts its own cluster (scripts/cluster.sh: PostgreSQL build/bench-cluster-pg
# on 127.0.0.1:25436 with the demo data, Redis, the nodes and the gateway on
# 127.0.0.1:28100..28103, LogLevel warn, no access log on the nodes), and for
# ECOM_CLUSTER_NODES=1 then 2 runs wrk (-t2 -c32 -d10s by default) through
# the gateway against
#   detail  GET /products/<id>/        (PostgreSQL on every request)
#   list    GET /products/?limit=20    (the Redis-cached page)
#   mix     per connection one user: two POST /cart/ and one POST /orders/
#           per iteration (orders/s), on 400 products restocked before
#           each run (EcomMaxPendingOrders 0 on the nodes)
# and prints a table of requests/s (and orders/s) with one and two nodes.
# Fails when any answer was not 2xx. Stops everything at the end.
# On one machine the nodes, the gateway, Redis, PostgreSQL and wrk share the
# same cores: a second node adds worker processes, not CPU.
#
# Environment: ECOM_BENCH_DURATION (10s), ECOM_BENCH_THREADS (2),
# ECOM_BENCH_CONNECTIONS (32), ECOM_CLUSTER_PORT (28100), PGPORT (25436).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
export PGPORT="${PGPORT:-25436}"
ecom_pg_env
export ECOM_PGDATA="${ECOM_PGDATA:-$ROOT/build/bench-cluster-pg}"
export ECOM_CLUSTER_PORT="${ECOM_CLUSTER_PORT:-28100}"
export ECOM_CLUSTER_DIR="${ECOM_CLUSTER_DIR:-$ROOT/build/bench-cluster}"
export ECOM_LOGLEVEL=warn ECOM_ACCESSLOG=0
export ECOM_CLUSTER_NODE_EXTRA="EcomMaxPendingOrders 0"
DURATION="${ECOM_BENCH_DURATION:-10s}"
THREADS="${ECOM_BENCH_THREADS:-2}"
CONNS="${ECOM_BENCH_CONNECTIONS:-32}"
GW="http://127.0.0.1:$ECOM_CLUSTER_PORT"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    msg "stopping the benchmark cluster"
    bash scripts/cluster.sh stop >/dev/null 2>&1 || true
    exit "$rc"
}
ecom_build
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export ECOM_CLUSTER_BUILD=0
mkdir -p "$ECOM_CLUSTER_DIR"

# counts answers that are not 2xx, prints one ECOM_RESULT line
lua="$ROOT/scripts/wrk-result.lua"

# mix_lua TOKENS PIDS: the order scenario script of scripts/bench.sh (one
# user per connection, wrk -tN -cN: two cart adds then a checkout, in order).
mix_lua() {
    local f="$ECOM_CLUSTER_DIR/bench-mix.lua"
    {
        printf 'local tokens = {%s}\nlocal pids = {%s}\nlocal can_pay = false\n' "$1" "$2"
        cat "$ROOT/scripts/wrk-orders.lua"
    } >"$f"
    printf '%s\n' "$f"
}


declare -A result=()
# run NAME NODES THREADS SCRIPT PATH [SCRIPT-ARGS...]: one measured wrk run
# through the gateway.
run() {
    local name=$1 nodes=$2 threads=$3 script=$4 path=$5 out line
    shift 5
    msg "wrk -t$threads -c$CONNS -d$DURATION ($name, $nodes node(s)) $GW$path"
    out="$(wrk -t"$threads" -c"$CONNS" -d"$DURATION" --latency -s "$script" "$GW$path" -- "$@")"
    printf '%s\n' "$out" | grep -v '^ECOM_RESULT' | sed 's/^/    /'
    line="$(printf '%s\n' "$out" | grep '^ECOM_RESULT' | tail -n1)"
    [ -n "$line" ] || die "no result line from wrk for $name"
    case "$line" in *" non2xx=0 "*) ;; *) die "$name with $nodes node(s): answers that were not 2xx: $line" ;; esac
    result[$name/$nodes]="${line#ECOM_RESULT }"
}

for nodes in 1 2; do
    bash scripts/cluster.sh stop >/dev/null 2>&1 || true
    ECOM_CLUSTER_NODES=$nodes bash scripts/cluster.sh start >/dev/null
    id="$(psql -X -At -v ON_ERROR_STOP=1 -c 'SELECT id FROM products WHERE active ORDER BY id LIMIT 1')"
    pids="$(psql -X -At -v ON_ERROR_STOP=1 -c "SELECT string_agg(id::text, ',') FROM (SELECT id FROM products WHERE active ORDER BY id LIMIT 400) p")"
    # warm up both paths (connections, the cached list page)
    wrk -t"$THREADS" -c"$CONNS" -d3s -s "$lua" "$GW/products/$id/" >/dev/null
    wrk -t"$THREADS" -c"$CONNS" -d3s -s "$lua" "$GW/products/?limit=20" >/dev/null
    run detail "$nodes" "$THREADS" "$lua" "/products/$id/"
    run list "$nodes" "$THREADS" "$lua" "/products/?limit=20"
    psql -X -q -v ON_ERROR_STOP=1 -c "UPDATE products SET stock = 1000000 WHERE id IN ($pids)"
    psql -X -q -v ON_ERROR_STOP=1 -c "DELETE FROM cart_items WHERE user_id IN (SELECT id FROM users WHERE email LIKE 'bench-cluster-%')"
    psql -X -q -v ON_ERROR_STOP=1 -c "VACUUM (ANALYZE) cart_items, products, orders, order_lines, order_events, auth_tokens, users"
    run mix "$nodes" "$CONNS" "$(mix_lua "$(ecom_register_users "$GW" bench-cluster "$CONNS")" "$pids")" "/orders/" mix
done

field() { local kv; for kv in $1; do [ "${kv%%=*}" = "$2" ] && { printf '%s' "${kv#*=}"; return; }; done; printf -- '-'; }
printf '\n==> gateway throughput (wrk -t%s -c%s -d%s through %s; %s cores, load before: %s)\n' \
    "$THREADS" "$CONNS" "$DURATION" "$GW" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %14s %14s %8s   %s\n' what "1 node req/s" "2 nodes req/s" ratio "p99 ms (1 / 2)"
for name in detail list mix; do
    a="$(field "${result[$name/1]}" rps)"
    b="$(field "${result[$name/2]}" rps)"
    printf '%-8s %14s %14s %8s   %s / %s\n' "$name" "$a" "$b" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }')" \
        "$(field "${result[$name/1]}" p99_ms)" "$(field "${result[$name/2]}" p99_ms)"
done
printf 'mix orders/s: %s with 1 node, %s with 2\n' \
    "$(field "${result[mix/1]}" orders_s)" "$(field "${result[mix/2]}" orders_s)"
