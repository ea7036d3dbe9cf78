#!/usr/bin/env bash
# scripts/oaslint.sh [--install-only]   (what `make oaslint` and t/66 run)
#
# Lints openapi/openapi.json with the tools API clients use:
#   - Redocly CLI, recommended ruleset (tools/oaslint/.redocly.yaml)
#   - Spectral with the OWASP API Security ruleset (tools/oaslint/.spectral.yaml)
# Both must report nothing: no error and no warning (each rule switched off in
# those files says why). The tools are pinned by tools/oaslint/package.json and
# package-lock.json and installed with `npm ci` into tools/oaslint/node_modules
# (ignored by git) whenever the lock file changed since the last install; npm
# and nodejs come from Debian when missing (ecom_deps, scripts/lib.sh).
# Nothing is sent anywhere: Redocly's telemetry and update check are off.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

T=tools/oaslint
DOC=openapi/openapi.json
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
export SCARF_ANALYTICS=false DO_NOT_TRACK=1 NO_UPDATE_NOTIFIER=1

oaslint_install() {
    local want stamp="$T/node_modules/.ecom-lock-sha256"
    command -v npm >/dev/null 2>&1 || die "npm is missing (scripts/test.sh installs nodejs and npm)"
    want="$(sha256sum "$T/package-lock.json" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ] \
       || [ ! -x "$T/node_modules/.bin/redocly" ] || [ ! -x "$T/node_modules/.bin/spectral" ]; then
        msg "installing the pinned OpenAPI linters (npm ci in $T)"
        # --ignore-scripts: no install script of any dependency runs
        # the registry is the network: a failed try is retried twice
        local try
        for try in 1 2 3; do
            (cd "$T" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) && break
            [ "$try" = 3 ] && die "npm ci failed three times"
            msg "npm ci failed (try $try); again in $((5 * try)) s"
            sleep $((5 * try))
        done
        printf '%s\n' "$want" > "$stamp"
    fi
}

oaslint_install
[ "${1:-}" = --install-only ] && exit 0

rc=0
msg "redocly lint (recommended) $DOC"
"$T/node_modules/.bin/redocly" lint --config "$T/.redocly.yaml" --max-problems 1000 "$DOC" || rc=1
msg "spectral lint (OWASP) $DOC"
# --fail-severity=hint: a warning fails too
"$T/node_modules/.bin/spectral" lint --ruleset "$T/.spectral.yaml" --fail-severity=hint "$DOC" || rc=1
exit $rc
