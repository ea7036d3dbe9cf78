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

lua="$ECOM_CLUSTER_DIR/bench.lua"
cat >"$lua" <<'LUA'
-- Counts answers that are not 2xx and prints a result line.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("non2xx") or 0) end
  local e = summary.errors
  io.write(string.format("ECOM_RESULT rps=%.1f p99_ms=%.1f non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(99) / 1000, bad,
    e.connect + e.read + e.write + e.timeout))
end
LUA

# mix_lua TOKENS PIDS: one user per connection (wrk -tN -cN), two cart adds
# then a checkout, in order.
mix_lua() {
    local f="$ECOM_CLUSTER_DIR/bench-mix.lua"
    {
        printf 'local tokens = {%s}\nlocal pids = {%s}\n' "$1" "$2"
        cat <<'LUA'
local threads = {}
local assigned = 0
function setup(thread)
  assigned = assigned + 1
  thread:set("me", assigned)
  table.insert(threads, thread)
end
function init(args)
  auth = "Bearer " .. tokens[me]
  non2xx, orders, n, adds, step = 0, 0, 0, 0, "add"
end
request = function()
  if step == "add" then
    n = n + 1
    local pid = pids[((me * 31 + n * 7) % #pids) + 1]
    return wrk.format("POST", "/cart/", { ["Authorization"] = auth, ["Content-Type"] = "application/json" },
      string.format('{"product_id": %d, "quantity": 1}', pid))
  end
  return wrk.format("POST", "/orders/", { ["Authorization"] = auth })
end
response = function(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  if step == "add" then
    adds = adds + 1
    if adds >= 2 then step, adds = "checkout", 0 end
  else
    if status == 201 then orders = orders + 1 end
    step = "add"
  end
end
function done(summary, latency, requests)
  local bad, o = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    o = o + (t:get("orders") or 0)
  end
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("ECOM_RESULT rps=%.1f p99_ms=%.1f non2xx=%d socket_errors=%d orders_s=%.1f\n",
    summary.requests / secs, latency:percentile(99) / 1000, bad,
    e.connect + e.read + e.write + e.timeout, o / secs))
end
LUA
    } >"$f"
    printf '%s\n' "$f"
}

register_users() {
    local u tok list=""
    for u in $(seq 1 "$1"); do
        tok="$(curl -s -X POST -H 'Content-Type: application/json' \
            -d "{\"email\": \"bench-cluster-$u-$$-$RANDOM@example.com\", \"password\": \"bench password $u\"}" \
            "$GW/auth/register/" | perl -MJSON::PP -e 'print JSON::PP->new->decode(join "", <STDIN>)->{token} // ""')"
        [ -n "$tok" ] || die "could not register a bench user"
        list="$list\"$tok\","
    done
    printf '%s' "$list"
}

declare -A result=()
# run NAME NODES THREADS SCRIPT PATH: one measured wrk run through the gateway.
run() {
    local name=$1 nodes=$2 threads=$3 script=$4 path=$5 out line
    msg "wrk -t$threads -c$CONNS -d$DURATION ($name, $nodes node(s)) $GW$path"
    out="$(wrk -t"$threads" -c"$CONNS" -d"$DURATION" --latency -s "$script" "$GW$path")"
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
    run mix "$nodes" "$CONNS" "$(mix_lua "$(register_users "$CONNS")" "$pids")" "/orders/"
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
