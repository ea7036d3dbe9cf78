#!/usr/bin/env bash
# import-demo.sh: (re)load the demo data set, made from real public data
# (UCI Online Retail; Olist categories and, with --olist, Olist products),
# into the database named by the libpq environment.
#
#   scripts/import-demo.sh [--olist] [--until YYYY-MM-DD] [--help]
#   make import [UNTIL=YYYY-MM-DD]
#
# --until YYYY-MM-DD  load only the Online Retail orders placed before that
#                     date (00:00 UTC); the catalogue and the customers are
#                     the full ones, so products first sold later exist with
#                     no history. For make eval-recs (docs/RECS_EVAL.md).
#
# Environment:
#   PGHOST PGPORT PGUSER PGDATABASE  libpq target (defaults 127.0.0.1, 55432,
#                                    ecom, ecom); PGPASSWORD etc. as usual
#   ECOM_DATA_DIR                    the data sets (default: <repo>/../shared/data)
#   ECOM_DEMO_OLIST=1                same as --olist: add the 32,951 Olist
#                                    products (synthetic BRL prices)
#
# The schema must already be migrated. The run replaces the demo data in one
# transaction (catalogue and orders are truncated and rebuilt, demo customers
# are upserted, other accounts are kept), so running it twice gives the same
# result. The SQL is in sql/demo/import.sql; what is real and what is
# synthetic is in docs/DEMO_DATA.md. Takes a few seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}
die() { echo "import-demo: $*" >&2; exit 1; }

olist=0
until=''
until_set=0
case "${ECOM_DEMO_OLIST:-0}" in
    1|yes|true|on) olist=1 ;;
    0|no|false|off|'') ;;
    *) die "ECOM_DEMO_OLIST must be 1 or 0, not '${ECOM_DEMO_OLIST}'" ;;
esac
while (( $# )); do
    case "$1" in
        --olist) olist=1 ;;
        --until) (( $# >= 2 )) || die "--until needs a date (YYYY-MM-DD)"
                 until=$2; until_set=1; shift ;;
        --until=*) until=${1#--until=}; until_set=1 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done
if (( until_set )); then
    [[ "$until" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] && [[ "$(date -u -d "$until" +%F 2>/dev/null)" == "$until" ]] ||
        die "--until must be a calendar date YYYY-MM-DD, not '$until'"
fi

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-55432}"
export PGUSER="${PGUSER:-ecom}" PGDATABASE="${PGDATABASE:-ecom}"

command -v psql >/dev/null || die "psql not found (apt-get install postgresql-client)"
command -v xz >/dev/null || die "xz not found (apt-get install xz-utils)"

data="${ECOM_DATA_DIR:-$ROOT/../shared/data}"
[[ -d "$data" ]] || die "data directory '$data' not found; set ECOM_DATA_DIR to the directory holding online-retail/ and olist/"
data=$(cd "$data" && pwd)
need=(online-retail/online_retail.csv.xz olist/product_category_name_translation.csv.xz)
(( olist )) && need+=(olist/olist_products_dataset.csv.xz)
for f in "${need[@]}"; do
    [[ -r "$data/$f" ]] || die "missing data file '$data/$f' (ECOM_DATA_DIR=$data)"
done
# psql's \copy ... FROM PROGRAM runs `xz -dc "$ECOM_DATA_DIR/..."` through
# /bin/sh, which reads the directory from this environment variable.
export ECOM_DATA_DIR="$data"

start=$(date +%s.%N)
echo "==> demo import into $PGUSER@$PGHOST:$PGPORT/$PGDATABASE from $data (olist products: $( ((olist)) && echo yes || echo no); orders: ${until:+before $until}${until:-all})"

if ! err=$(psql -X -q -v ON_ERROR_STOP=1 -c 'SELECT 1 FROM products, orders, users LIMIT 0' 2>&1 >/dev/null); then
    die "cannot use database $PGDATABASE at $PGHOST:$PGPORT as $PGUSER (is PostgreSQL up and the schema migrated?): ${err//$'\n'/ }"
fi

PGAPPNAME=ecom-import-demo psql -X -q -v ON_ERROR_STOP=1 -v olist="$olist" -v until="$until" \
    -f "$ROOT/sql/demo/import.sql" ||
    die "import failed; the database was left as it was (the replace is one transaction)"

echo "==> done in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s"
