#!/usr/bin/env bash
# scripts/bench-catalog.sh (what `make bench-catalog` runs): the catalog's
# read paths on a large generated catalog, each against the database's own
# limit for the same SQL (issue 8, "Scale").
#
# Starts its own PostgreSQL cluster (build/catalog-pg on 127.0.0.1:25435,
# kept between runs: the catalog is generated once per size) with the demo
# data plus ECOM_CATALOG_PRODUCTS generated products (default 1,000,000)
# and as many generated reviews (scripts/gen-catalog.sh; a different size
# regenerates them), and httpd on
# 127.0.0.1:28090 with EcomCache none (every request reaches PostgreSQL).
# For each scenario (a URL) it
#   1. asks the URL once with log_min_duration_statement = 0 and reads from
#      PostgreSQL's log the statements the module executed for it (name,
#      SQL, parameters): so the comparison always runs what this build
#      runs;
#   2. runs `wrk -t2 -c32 -d10s --latency` on the URL;
#   3. runs `pgbench -M prepared -c32 -j2 -T10` on a script of the same
#      statements with the same parameters (passed with -D, prepared like
#      the module's; a NULL parameter is written as NULL in the SQL), in
#      sessions like the module's (the same unix socket, and
#      plan_cache_mode = force_generic_plan as in the shipped DBDParams):
#      PostgreSQL's own rate for that work on the same machine;
# and prints requests/s, p99, pgbench's transactions/s and the ratio.
# The last scenario, static, is httpd alone: GET /static/products.json (a
# file shaped like a 20-product list page, about 6 KB, from the same
# server: no module, no database) under the same wrk load, the floor of
# requests/s and p99 that httpd and wrk reach on this machine before any
# work of the module or of PostgreSQL.
# A scenario the build does not serve (an answer other than 200, e.g. a
# parameter it does not know yet) is listed as skipped.
#
# Environment: ECOM_CATALOG_PRODUCTS (1000000), ECOM_BENCH_DURATION (10s),
# ECOM_BENCH_CONNECTIONS (32), ECOM_BENCH_MODULE (another build),
# ECOM_BENCH_EXTRA (directives for httpd.conf, \n between lines),
# ECOM_CATALOG_PGBENCH=0 (wrk only: no pgbench run beside each scenario),
# ECOM_CATALOG_SCENARIOS (space-separated names; default: all).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

export ECOM_PGDATA="$ROOT/build/catalog-pg"
export PGHOST=127.0.0.1 PGPORT=25435 PGUSER=ecom PGDATABASE=ecom ECOM_PG_FAST=1
export RUNDIR="$ROOT/build/catalog-run" HTTP_PORT=28090 HTTPS_PORT=28453
export ECOM_PG_SOCKET_DIR="/tmp/mod_ecom-catalog-pg"
export ECOM_LOGLEVEL=warn ECOM_ACCESSLOG=0 ECOM_CACHE=none
export MODULE="${ECOM_BENCH_MODULE:-$ROOT/build/mod_ecom.so}"
unset ECOM_PRELOAD
PRODUCTS="${ECOM_CATALOG_PRODUCTS:-1000000}"
DURATION="${ECOM_BENCH_DURATION:-10s}"
CONNS="${ECOM_BENCH_CONNECTIONS:-32}"
BASE="http://127.0.0.1:$HTTP_PORT"
case "$PRODUCTS" in ''|*[!0-9]*) die "ECOM_CATALOG_PRODUCTS must be a number" ;; esac
command -v pgbench >/dev/null || die "pgbench not found (apt-get install postgresql-contrib or postgresql)"

ecom_bench_up
mkdir -p "$RUNDIR"
# no recommendation refresh during the runs (at a million products one takes
# about a minute of CPU), plus this run's extra settings (ECOM_BENCH_EXTRA,
# \n between lines, as for make bench)
printf 'EcomRecsRefreshInterval 0\n%b\n' "${ECOM_BENCH_EXTRA:-}" >"$RUNDIR/ecom-extra.conf"
PGLOG="$(bash scripts/pg.sh datadir).log"
sql() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }

if [ "$(sql -c "SELECT count(*) FROM products WHERE sku NOT LIKE 'GEN-%'")" = 0 ]; then
    msg "loading the demo data"
    bash scripts/import-demo.sh
fi
have="$(sql -c "SELECT count(*) FROM products WHERE sku LIKE 'GEN-%'")"
revs="$(sql -c "SELECT count(*) FROM reviews r JOIN users u ON u.id = r.user_id WHERE u.email LIKE 'gen-reviewer-%'")"
if [ "$have" != "$PRODUCTS" ] || { [ "$PRODUCTS" -gt 0 ] && [ "$revs" = 0 ]; }; then
    msg "generating the catalog: $PRODUCTS products (this cluster has $have)"
    bash scripts/gen-catalog.sh --products "$PRODUCTS" --replace
fi
msg "catalog: $(sql -c 'SELECT count(*) FROM products WHERE active') active products, $(sql -c 'SELECT count(*) FROM categories') categories"

bash scripts/httpd.sh start

# Parameters drawn from the data: a category with many products (its
# subtree when categories nest), a common word, a product in the middle of
# the catalog, and the most reviewed product (for its reviews list).
cat_slug="$(sql -c 'SELECT c.slug FROM categories c JOIN products p ON p.category_id = c.id GROUP BY c.slug ORDER BY count(*) DESC OFFSET 3 LIMIT 1')"
word="$(sql -c "SELECT w FROM (SELECT lower(regexp_split_to_table(name, '[^A-Za-z]+')) w FROM products WHERE sku LIKE 'GEN-%' LIMIT 20000) s WHERE length(w) >= 4 GROUP BY w ORDER BY count(*) DESC OFFSET 10 LIMIT 1")"
pid="$(sql -c "SELECT id FROM products WHERE active AND sku LIKE 'GEN-%' ORDER BY id OFFSET $((PRODUCTS / 2)) LIMIT 1")"
[ -n "$pid" ] || pid="$(sql -c 'SELECT min(id) FROM products WHERE active')"
rpid="$(sql -c 'SELECT id FROM products WHERE active ORDER BY rating_count DESC, id LIMIT 1')"

# deep_cursor PATH N: the next_cursor after following N pages of PATH.
deep_cursor() {
    local path="$1" n="$2" cur="" i
    for i in $(seq 1 "$n"); do
        cur="$(curl -s "$BASE$path${cur:+&cursor=$cur}" \
            | perl -MJSON::PP -e 'print JSON::PP->new->decode(join "", <STDIN>)->{next_cursor} // ""')"
        [ -n "$cur" ] || break
    done
    printf '%s' "$cur"
}
deep="$(deep_cursor '/products/?sort=price&limit=100' 100)"

scen_names=(list min_price max_price in_stock category q cat+max_price
            q+in_stock sort_price sort_-price sort_newest sort_rating
            deep_page facets detail reviews static)
scen_paths=("/products/?limit=20"
            "/products/?limit=20&min_price=40000"
            "/products/?limit=20&max_price=100"
            "/products/?limit=20&in_stock=false"
            "/products/?limit=20&category=$cat_slug"
            "/products/?limit=20&q=$word"
            "/products/?limit=20&category=$cat_slug&max_price=1000"
            "/products/?limit=20&q=$word&in_stock=true"
            "/products/?limit=20&sort=price"
            "/products/?limit=20&sort=-price"
            "/products/?limit=20&sort=newest"
            "/products/?limit=20&sort=rating"
            "/products/?limit=20&sort=price&cursor=$deep"
            "/products/?limit=20&facets=category,price,in_stock"
            "/products/$pid/"
            "/products/$rpid/reviews/"
            "/static/products.json")
wanted=" ${ECOM_CATALOG_SCENARIOS:-${scen_names[*]}} "

# counts answers that are not 2xx, prints one ECOM_RESULT line with named
# fields (shared with bench.sh and bench-cluster.sh)
lua="$ROOT/scripts/wrk-result.lua"
# result_field LINE NAME: the value of NAME=... in an ECOM_RESULT line
result_field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

# statements_of PATH OUT: writes the pgbench script of the statements the
# module executes for PATH into OUT, and prints the -D options.
statements_of() {
    ecom_logged_statements "$PGLOG" "$2" -- curl -s -o /dev/null "$BASE$1"
}

declare -A rps=() p99=() bad=() tps=() note=()
ran=()
for i in "${!scen_names[@]}"; do
    n="${scen_names[$i]}" path="${scen_paths[$i]}"
    [[ "$wanted" == *" $n "* ]] || continue
    ran+=("$n")
    code="$(curl -s -o "$RUNDIR/answer.json" -w '%{http_code}' "$BASE$path" || true)"
    if [ "$code" != 200 ]; then
        note[$n]="skipped: $code from this build"
        msg "$n: $path answers $code: skipped"
        continue
    fi
    # a parameter the build does not know is ignored (200): facets must
    # answer with facets
    if [ "$n" = facets ] && ! grep -q '"facets"' "$RUNDIR/answer.json"; then
        note[$n]="skipped: no facets in the answer of this build"
        msg "$n: $path has no facets in its answer: skipped"
        continue
    fi
    script="$RUNDIR/pgbench-$i.sql"
    defs=()
    if [ "$n" != static ]; then
        mapfile -t defs < <(statements_of "$path" "$script" || true)
    fi
    msg "$n: wrk -t2 -c$CONNS -d$DURATION $BASE$path"
    line="$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$lua" "$BASE$path" | grep '^ECOM_RESULT' || true)"
    rps[$n]="$(result_field "$line" rps)" p99[$n]="$(result_field "$line" p99_ms)"
    bad[$n]="$(result_field "$line" non2xx)"
    if [ "$n" = static ]; then
        note[$n]="httpd alone (a static file, no module, no database): the floor"
    elif [ "${ECOM_CATALOG_PGBENCH:-1}" = 0 ]; then
        note[$n]="pgbench not run (ECOM_CATALOG_PGBENCH=0)"
    elif [ -s "$script" ]; then
        msg "$n: pgbench -M prepared -c$CONNS -j2 -T${DURATION%s} on $(wc -l <"$script") statement(s)"
        sed 's/^/    /' "$script" >&2
        # the module's sessions: its transport (the socket httpd.sh points
        # DBDParams at) and its plan cache mode (DBDParams' options)
        tps[$n]="$(PGOPTIONS='-c plan_cache_mode=force_generic_plan' \
                   pgbench -n -M prepared -c"$CONNS" -j2 -T"${DURATION%s}" "${defs[@]}" \
                    -f "$script" -h "${ECOM_PG_SOCKET_DIR:-$PGHOST}" -p "$PGPORT" -U "$PGUSER" "$PGDATABASE" 2>&1 \
                  | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -n1 || true)"
    else
        note[$n]="no statement seen in the log"
    fi
done

echo
msg "results: $(sql -c "SELECT count(*) FROM products") products (EcomCache none, wrk -t2 -c$CONNS -d$DURATION, pgbench -M prepared -c$CONNS -j2)"
printf '==> %-14s %12s %10s %8s %14s %8s  %s\n' scenario 'requests/s' 'p99 ms' non-2xx 'pgbench tps' ratio ''
failed=0
for n in "${ran[@]}"; do
    ratio=""
    if [ -n "${tps[$n]:-}" ] && [ -n "${rps[$n]:-}" ]; then
        ratio="$(awk -v a="${rps[$n]}" -v b="${tps[$n]}" 'BEGIN { if (b > 0) printf "%.2f", a / b }')"
    fi
    printf '==> %-14s %12s %10s %8s %14s %8s  %s\n' "$n" "${rps[$n]:--}" "${p99[$n]:--}" \
        "${bad[$n]:--}" "${tps[$n]:--}" "${ratio:--}" "${note[$n]:-}"
    [ "${bad[$n]:-0}" = 0 ] || failed=1
done
[ $failed = 0 ] || die "some answers were not 2xx"
