#!/usr/bin/env bash
# scripts/test.sh [--quick] [PROVE_TARGET...]   (what `make test` and .ci/run run)
#
# Installs what is missing, builds (make, make asan, make unit), then runs the
# Perl suite (default target: t/) twice against a fresh PostgreSQL cluster and
# httpd each time:
#   pass 1  build/mod_ecom.so
#   pass 2  build/asan/mod_ecom.so, apache2 with the gcc ASan and UBSan
#           runtimes preloaded; fails on any sanitizer report or child crash
# --quick runs pass 1 only (and skips the asan build). Exit status non-zero
# when anything failed.
#
# The two passes run at the same time, each on its own cluster, httpd and
# ports (pass 2 on the pass-1 ports + 5), since most of a pass is waiting
# (restarts, expiry windows, throttle budgets) rather than computing: the
# suite then takes about as long as its slower pass. Pass 1 prints as it
# goes; pass 2 writes build/test-pass2.log, printed when it ends. Each
# pass's prove output is kept in build/test-passN.prove.log, and the summary
# at the end names the failed tests and quotes their failed assertions.
# Within a pass run on the whole suite, the tests named in SIDE_TESTS below
# (t/60, the Debian package in its own chroot) run beside the others; their
# output is build/test-passN.side.prove.log, printed and added to the
# pass's prove log when the pass ends.
# ECOM_TEST_SERIAL=1 runs the passes, and the side tests, one after the
# other instead.
#
# The tests get: ECOM_URL ECOM_TLS_URL ECOM_URL2 ECOM_DB2 ECOM_ROOT ECOM_PGDATA
# ECOM_RUNDIR ECOM_SANITIZED PGHOST PGPORT PGUSER PGDATABASE (and
# ECOM_PG_FAST=1), so `bash $ECOM_ROOT/scripts/pg.sh stop|start` acts on the
# test cluster. ECOM_URL2 is a second shop: another virtual host on its own
# database ECOM_DB2 (ecom2) in the same cluster. mod_ecom logs at debug level
# (LogLevel info ecom:debug), which also turns on the Ecom-Cache header.
# ECOM_PROVE_TIMEOUT (default 1500 s) bounds each prove run (a hang guard:
# side by side on 2 cores a pass takes about 610 s plain and 605 s under the
# sanitizers, most of it waiting). To run beside
# another test run on the same machine, move the ports: ECOM_TEST_PGPORT
# (25433), ECOM_TEST_HTTP_PORT (18080), ECOM_TEST_HTTPS_PORT (18443),
# ECOM_TEST_HTTP2_PORT (18081, the second shop); pass 2 uses each + 5.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

quick=0
targets=()
for a in "$@"; do
    case "$a" in
        --quick) quick=1 ;;
        -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
        *) targets+=("$a") ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(t/)

export ECOM_ROOT="$ROOT"
export ECOM_PGDATA="$ROOT/build/test-pg"
# Below Linux's ephemeral range (32768-60999): the suite opens thousands of
# client connections, and one left in TIME-WAIT on the cluster's port would
# stop PostgreSQL from listening again when a test restarts it.
export PGHOST=127.0.0.1 PGPORT="${ECOM_TEST_PGPORT:-25433}" PGUSER=ecom PGDATABASE=ecom
export ECOM_PG_FAST=1
export HTTP_PORT="${ECOM_TEST_HTTP_PORT:-18080}" HTTPS_PORT="${ECOM_TEST_HTTPS_PORT:-18443}"
export HTTP2_PORT="${ECOM_TEST_HTTP2_PORT:-18081}" ECOM_DB2=ecom2
# watchdog:debug: mod_watchdog logs which child runs the jobs ("Singleton
# Watchdog (mod_ecom) running", and mod_ecom-long's), for t/37-expiry.t's
# diagnostics
export ECOM_LOGLEVEL="info ecom:debug watchdog:debug" ECOM_ACCESSLOG=1
export ECOM_URL="http://127.0.0.1:$HTTP_PORT" ECOM_TLS_URL="https://127.0.0.1:$HTTPS_PORT"
export ECOM_URL2="http://127.0.0.1:$HTTP2_PORT"
unset ECOM_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS
PROVE_TIMEOUT="${ECOM_PROVE_TIMEOUT:-1500}"
RUN_PLAIN="$ROOT/build/test-run"
RUN_ASAN="$ROOT/build/test-run-asan"
PG_PLAIN="$ECOM_PGDATA"
PG_ASAN="$ROOT/build/test-pg-asan"
# pass 2's ports: PGPORT HTTP_PORT HTTPS_PORT HTTP2_PORT, each + 5
ASAN_PORTS="$((PGPORT + 5)) $((HTTP_PORT + 5)) $((HTTPS_PORT + 5)) $((HTTP2_PORT + 5))"
PASS2_LOG="$ROOT/build/test-pass2.log"
# Run beside the rest of their pass (see run_pass): t/60 builds the Debian
# package and tests it in its own chroot with its own apache2 (a minute and
# a half, mostly debootstrap and lintian).
SIDE_TESTS="t/60-deb.t"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    msg "cleaning up: stopping the test servers"
    [ -n "${pass2_pid:-}" ] && kill "$pass2_pid" 2>/dev/null && wait "$pass2_pid" 2>/dev/null
    RUNDIR="$RUN_PLAIN" bash "$ROOT/scripts/httpd.sh" stop >/dev/null 2>&1 || true
    RUNDIR="$RUN_ASAN" bash "$ROOT/scripts/httpd.sh" stop >/dev/null 2>&1 || true
    ECOM_PGDATA="$PG_PLAIN" bash "$ROOT/scripts/pg.sh" stop >/dev/null 2>&1 || true
    ECOM_PGDATA="$PG_ASAN" PGPORT="${ASAN_PORTS%% *}" bash "$ROOT/scripts/pg.sh" stop >/dev/null 2>&1 || true
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

T0=$SECONDS
ecom_deps

# Stale servers of an interrupted earlier run would hold the ports.
RUNDIR="$RUN_PLAIN" bash scripts/httpd.sh stop
RUNDIR="$RUN_ASAN" bash scripts/httpd.sh stop
bash scripts/pg.sh stop
ECOM_PGDATA="$PG_ASAN" PGPORT="${ASAN_PORTS%% *}" bash scripts/pg.sh stop
ports="$PGPORT $HTTP_PORT $HTTPS_PORT $HTTP2_PORT"
[ $quick = 0 ] && ports="$ports $ASAN_PORTS"
for port in $ports; do
    ecom_port_in_use "$port" && die "127.0.0.1:$port is in use (another test run?): set ECOM_TEST_PGPORT, ECOM_TEST_HTTP_PORT, ECOM_TEST_HTTPS_PORT or ECOM_TEST_HTTP2_PORT (pass 2 uses each + 5)"
done

if [ $quick = 0 ]; then
    # the two builds side by side: each is one serial apxs run
    msg "building: make all asan"
    make --no-print-directory -j 2 all asan
else
    msg "building: make"
    make --no-print-directory
fi
unit_result="skipped (t/unit/unit_tests.c does not exist yet)"
if [ -f t/unit/unit_tests.c ]; then
    msg "unit tests: make unit"
    if make --no-print-directory unit; then
        unit_result="PASSED"
    else
        unit_result="FAILED"
    fi
else
    msg "unit tests: $unit_result"
fi
lint_result="skipped (--quick)"
fuzz_result="skipped (--quick)"
if [ $quick = 0 ]; then
    # each of the four targets (core, path, signature, money) runs this long;
    # libFuzzer adds about a second each, so the step takes ~20 s in all
    fuzz_seconds="${ECOM_FUZZ_SECONDS:-4}"
    msg "fuzzing the input parsers: make fuzz FUZZ_SECONDS=$fuzz_seconds (per target)"
    if make --no-print-directory -j 2 fuzz FUZZ_SECONDS="$fuzz_seconds" >"$ROOT/build/fuzz.log" 2>&1; then
        fuzz_result="PASSED"
    else
        tail -n 40 "$ROOT/build/fuzz.log" >&2
        fuzz_result="FAILED (see build/fuzz.log)"
    fi
    # make fuzz prints one line per target: "fuzz_path: Done 1280756 runs in 6 second(s)"
    fuzz_lines="$(grep '^fuzz_[a-z]*: ' "$ROOT/build/fuzz.log" || true)"
    if [ -n "$fuzz_lines" ]; then
        while IFS= read -r line; do msg "  $line"; done <<<"$fuzz_lines"
        fuzz_result+=" ($(sed 's/^fuzz_//; s/Done //; s/ in [0-9]* second(s)//' <<<"$fuzz_lines" \
                          | paste -sd, - | sed 's/,/, /g'))"
    fi
    msg "static analysis: make lint (cppcheck, clang-tidy)"
    if make --no-print-directory lint; then
        lint_result="PASSED"
    else
        lint_result="FAILED"
    fi
fi

if [ "${targets[*]}" = t/ ] && [ -z "$(find t -name '*.t' -print -quit 2>/dev/null)" ]; then
    die "no Perl tests (*.t) found under t/"
fi

# failed_tests PROVELOG: the failed test files, on one line ("t/a.t t/b.t")
failed_tests() {
    awk '/^Test Summary Report/ { p = 1 } p && /^[^ ]+\.t \(/ { print $1 }' "$1" \
        | sort -u | paste -sd' ' -
}

# failure_digest PROVELOG: prove's report and each failed assertion with its
# diagnostics, bounded, for the end of the output
failure_digest() {
    [ -f "$1" ] || return 0
    # each "# Failed test" line and the "#" lines after it
    awk '/^[[:space:]]*#[[:space:]]+Failed test/ { n = 12 }
         n > 0 && /^[[:space:]]*#/ { print; n--; next } { n = 0 }' "$1" | head -n 80
    awk '/^Test Summary Report/ { p = 1 } p' "$1" | grep -v '^Files=' | head -n 30 || true
}

# run_pass NUMBER LABEL MODULE SANITIZED RUNDIR: prints nothing on stdout,
# returns non-zero on failure and leaves a one-line verdict in pass_verdict.
pass_verdict=""
# PGDATA PORTS ("PG HTTP HTTPS HTTP2") give the pass its own cluster and
# servers, so that the two passes can run at the same time.
run_pass() {
    local n=$1 label=$2 module=$3 san=$4 rundir=$5 pgdata=$6 t=$SECONDS rc=0
    local -x RUNDIR="$rundir" MODULE="$module" ECOM_RUNDIR="$rundir" ECOM_SANITIZED="$san"
    local -x ECOM_PRELOAD="" ASAN_OPTIONS="" UBSAN_OPTIONS=""
    local -x ECOM_PGDATA="$pgdata" PGPORT HTTP_PORT HTTPS_PORT HTTP2_PORT
    read -r PGPORT HTTP_PORT HTTPS_PORT HTTP2_PORT <<<"$7"
    local -x ECOM_URL="http://127.0.0.1:$HTTP_PORT" ECOM_TLS_URL="https://127.0.0.1:$HTTPS_PORT"
    local -x ECOM_URL2="http://127.0.0.1:$HTTP2_PORT"
    local sandir=""
    msg "pass $n ($label): fresh PostgreSQL cluster on 127.0.0.1:$PGPORT"
    pass_verdict="FAILED (setup)"
    bash scripts/pg.sh destroy || return 1
    bash scripts/pg.sh init || return 1
    bash scripts/pg.sh start || return 1
    bash scripts/migrate.sh || return 1
    # the second shop's database (t/12-vhosts.t)
    bash scripts/pg.sh createdb "$ECOM_DB2" || return 1
    PGDATABASE="$ECOM_DB2" bash scripts/migrate.sh || return 1
    bash scripts/httpd.sh stop || return 1
    mkdir -p "$rundir"
    rm -f "$rundir/error.log" "$rundir/access.log" "$rundir/startup.log"
    rm -f "$ROOT/build/test-pass$n.prove.log"
    if [ "$san" = 1 ]; then
        sandir="$(bash scripts/httpd.sh sandir)" || return 1
        rm -f "$sandir"/asan.* "$sandir"/ubsan.*
        ECOM_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$sandir/asan"
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$sandir/ubsan"
        msg "sanitizer logs go to $sandir"
    fi
    bash scripts/httpd.sh start || return 1

    # The side lane: with the whole suite, the tests in SIDE_TESTS (they
    # use neither the pass's httpd nor its catalog, and mostly wait on I/O)
    # run beside the rest of the pass instead of after it.
    local main_targets=("${targets[@]}") side=() side_pid="" side_rc=0 tf
    local sidelog="$ROOT/build/test-pass$n.side.prove.log"
    rm -f "$sidelog"
    if [ "${targets[*]}" = t/ ] && [ "${ECOM_TEST_SERIAL:-0}" != 1 ]; then
        main_targets=()
        for tf in t/*.t; do
            if [[ " $SIDE_TESTS " == *" $tf "* ]]; then side+=("$tf"); else main_targets+=("$tf"); fi
        done
    fi
    if [ ${#side[@]} -gt 0 ]; then
        msg "pass $n ($label): prove ${side[*]} (beside the rest; output: $sidelog)"
        timeout -k 10 "$PROVE_TIMEOUT" prove --timer "${side[@]}" >"$sidelog" 2>&1 </dev/null &
        side_pid=$!
    fi
    if [ ${#side[@]} -gt 0 ]; then
        msg "pass $n ($label): prove -r ${targets[*]} (but ${side[*]})"
    else
        msg "pass $n ($label): prove -r ${targets[*]}"
    fi
    # --foreground: Ctrl-C still reaches prove and the tests.
    # tee: the summary quotes the failures (CI keeps only the output's tail)
    local provelog="$ROOT/build/test-pass$n.prove.log"
    timeout --foreground -k 10 "$PROVE_TIMEOUT" prove -r --timer "${main_targets[@]}" 2>&1 \
        | tee "$provelog" || rc=${PIPESTATUS[0]}
    if [ -n "$side_pid" ]; then
        msg "pass $n ($label): waiting for ${side[*]}"
        wait "$side_pid" || side_rc=$?
        cat "$sidelog"
        # one log for the summary's digest of failures
        cat "$sidelog" >>"$provelog"
        [ "$rc" = 0 ] && rc=$side_rc
    fi
    bash scripts/httpd.sh stop || true
    bash scripts/pg.sh stop || true

    local problems=0
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        msg "pass $n: prove timed out after ${PROVE_TIMEOUT}s"
    fi
    if [ "$san" = 1 ]; then
        local f
        for f in "$sandir"/asan.* "$sandir"/ubsan.*; do
            [ -e "$f" ] || continue
            problems=1
            printf '==> sanitizer report %s:\n' "$f" >&2
            cat "$f" >&2
        done
    fi
    # A crashed child, or (AH01882) mod_ssl running on an older OpenSSL than
    # it was built against: ecom_deps keeps the runtime libraries current.
    local pattern='child pid [0-9]+ exit signal|AH01882'
    [ "$san" = 1 ] && pattern="AddressSanitizer|runtime error|$pattern"
    # SIGKILL is what t/15 sends children on purpose; any other signal is
    # a crash
    if [ -f "$rundir/error.log" ] && grep -E "$pattern" "$rundir/error.log" \
            | grep -qv 'exit signal Killed (9)'; then
        problems=1
        printf '==> crash, sanitizer or library mismatch lines in %s:\n' "$rundir/error.log" >&2
        grep -E -B2 -A20 "$pattern" "$rundir/error.log" | head -n 200 >&2
    fi
    local secs=$((SECONDS - t))
    if [ "$rc" = 0 ] && [ $problems = 0 ]; then
        pass_verdict="PASSED in ${secs}s"
        return 0
    fi
    local why="prove exit $rc"
    [ "$rc" != 0 ] && why="$why: $(failed_tests "$provelog")"
    [ $problems = 1 ] && why="$why, crash, sanitizer report or library mismatch in the logs"
    pass_verdict="FAILED in ${secs}s ($why)"
    return 1
}

failed=0
summary=()
[ "$unit_result" = FAILED ] && failed=1
summary+=("unit tests: $unit_result")
[ "$lint_result" = FAILED ] && failed=1
summary+=("static analysis: $lint_result")
case "$fuzz_result" in FAILED*) failed=1 ;; esac
summary+=("fuzzing: $fuzz_result")

pass2() {
    run_pass 2 "ASan+UBSan build" "$ROOT/build/asan/mod_ecom.so" 1 "$RUN_ASAN" \
        "$PG_ASAN" "$ASAN_PORTS"
}
pass2_pid=""
if [ $quick = 0 ] && [ "${ECOM_TEST_SERIAL:-0}" != 1 ]; then
    msg "pass 2 (ASan+UBSan build) runs beside pass 1 on ports $ASAN_PORTS; its output: $PASS2_LOG"
    # its verdict travels as the log's last line
    ( trap - EXIT INT TERM
      if pass2; then rc=0; else rc=1; fi
      printf 'PASS2_VERDICT %s %s\n' "$rc" "$pass_verdict"
      exit $rc ) >"$PASS2_LOG" 2>&1 &
    pass2_pid=$!
fi
if run_pass 1 "plain build" "$ROOT/build/mod_ecom.so" 0 "$RUN_PLAIN" "$PG_PLAIN" \
        "$PGPORT $HTTP_PORT $HTTPS_PORT $HTTP2_PORT"; then :; else failed=1; fi
summary+=("pass 1 (build/mod_ecom.so): $pass_verdict")
if [ -n "$pass2_pid" ]; then
    msg "pass 1 is over; waiting for pass 2"
    wait "$pass2_pid" || true
    pass2_pid=""
    msg "pass 2's output ($PASS2_LOG):"
    grep -v '^PASS2_VERDICT ' "$PASS2_LOG" || true
    verdict="$(sed -n 's/^PASS2_VERDICT //p' "$PASS2_LOG" | tail -n 1)"
    [ "${verdict%% *}" = 0 ] || failed=1
    summary+=("pass 2 (build/asan/mod_ecom.so, sanitizers): ${verdict#* }")
    [ -n "$verdict" ] || summary[-1]+="FAILED (no verdict: the pass died)"
elif [ $quick = 0 ]; then
    if pass2; then :; else failed=1; fi
    summary+=("pass 2 (build/asan/mod_ecom.so, sanitizers): $pass_verdict")
else
    summary+=("pass 2 (sanitizers): skipped (--quick)")
fi

echo
msg "summary ($((SECONDS - T0))s)"
for line in "${summary[@]}"; do msg "  $line"; done
if [ $failed != 0 ]; then
    for n in 1 2; do
        if grep -q '^Test Summary Report' "$ROOT/build/test-pass$n.prove.log" 2>/dev/null; then
            msg "pass $n's failures (build/test-pass$n.prove.log):"
            failure_digest "$ROOT/build/test-pass$n.prove.log"
        fi
    done
    msg "TESTS FAILED (logs: $RUN_PLAIN/error.log, $RUN_ASAN/error.log, $PASS2_LOG, $(bash scripts/pg.sh datadir).log, $(ECOM_PGDATA="$PG_ASAN" bash scripts/pg.sh datadir).log)"
    exit 1
fi
msg "all tests passed"
