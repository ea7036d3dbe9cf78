#!/usr/bin/env bash
# scripts/migrate.sh: applies sql/NNN_*.sql migrations, in order, that are not
# yet recorded in schema_migrations. Each migration and its record commit in
# one transaction (so a migration file must not contain BEGIN/COMMIT, nor
# statements that cannot run in a transaction block, e.g. CREATE INDEX
# CONCURRENTLY). Safe to run again: it then prints "up to date".
#
# Connects with libpq's environment: PGHOST (127.0.0.1), PGPORT (55432),
# PGUSER (ecom), PGDATABASE (ecom).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ecom_pg_env

PSQL=(psql -X -q -v ON_ERROR_STOP=1)

"${PSQL[@]}" >/dev/null <<'SQL' \
    || die "cannot reach PostgreSQL at $PGHOST:$PGPORT (user $PGUSER, database $PGDATABASE); start it with scripts/pg.sh start"
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
SQL

declare -A applied=()
while IFS= read -r v; do
    [ -n "$v" ] && applied[$v]=1
done < <("${PSQL[@]}" -At -c 'SELECT version FROM schema_migrations')

shopt -s nullglob
files=()
while IFS= read -r f; do files+=("$f"); done < <(
    for f in "$ROOT"/sql/[0-9][0-9][0-9]_*.sql; do printf '%s\n' "$f"; done | LC_ALL=C sort
)
[ ${#files[@]} -gt 0 ] || die "no migrations found in $ROOT/sql"

count=0
for f in "${files[@]}"; do
    version="$(basename "$f" .sql)"
    [ -n "${applied[$version]:-}" ] && continue
    msg "applying $version"
    # The file, then its record, in a single transaction; psql variables
    # quote the version (no SQL is built from strings here).
    if ! { cat "$f"; printf '\n;\nINSERT INTO schema_migrations (version) VALUES (:'"'"'version'"'"');\n'; } \
        | "${PSQL[@]}" --single-transaction -v version="$version" -f - >/dev/null; then
        die "migration $version failed (nothing of it was applied)"
    fi
    count=$((count + 1))
done

if [ $count -eq 0 ]; then
    msg "database $PGDATABASE on $PGHOST:$PGPORT is up to date (${#files[@]} migrations)"
else
    msg "applied $count migration(s) to $PGDATABASE on $PGHOST:$PGPORT"
fi
