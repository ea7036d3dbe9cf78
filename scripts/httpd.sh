#!/usr/bin/env bash
# scripts/httpd.sh {start|stop|restart|fg|conf|status|sandir}
#
# Runs Debian's apache2 with mod_ecom from a configuration generated out of
# conf/httpd.conf.in into $RUNDIR/httpd.conf (Debian's own /etc/apache2 setup
# and the system apache2 service are not used).
#
#   conf     generate $RUNDIR/httpd.conf, the TLS certificate (once), the
#            static file $DOCROOT/products.json and a copy of conf/www/ (the
#            example shop page) in $DOCROOT/www; print the config path
#   start    conf + start in the background; wait until the HTTP port answers
#            (a running instance of the same RUNDIR is stopped first)
#   stop     stop the instance of this RUNDIR and wait for it to exit
#   restart  stop + start
#   fg       conf + run in the foreground (-DFOREGROUND) until Ctrl-C
#   status   exit 0 when running, 3 when not
#   sandir   create and print a directory that httpd's www-data children can
#            write (for sanitizer logs)
#
# Environment (defaults):
#   RUNDIR=$ROOT/build/run  HTTP_PORT=8080  HTTPS_PORT=8443
#   MODULE=$ROOT/build/mod_ecom.so  PGPORT=55432  PGUSER=ecom  PGDATABASE=ecom
#   ECOM_LOGLEVEL=warn  ECOM_ACCESSLOG=1 (0: no access log)
#   ECOM_CACHE=shmcb:$RUNDIR/ecom_cache(4194304) (EcomCache; "none" turns it off)
#   ECOM_DB2 (unset) and HTTP2_PORT=8081: when ECOM_DB2 names a database, a
#   second shop, a virtual host on 127.0.0.1:$HTTP2_PORT with its own DBDParams
#   (database $ECOM_DB2 on the same cluster), serves the same API at the same
#   paths (httpd runs with -DECOM_SECOND_SHOP; the tests use it)
#   ECOM_TLS=1 (0: no HTTPS listener nor TLS virtual host: apache2 runs with
#   -DECOM_NO_TLS; the nodes of scripts/cluster.sh, behind their gateway)
#   ECOM_PRELOAD (e.g. the ASan and UBSan runtimes: run apache2 with
#   LD_PRELOAD=$ECOM_PRELOAD; ASAN_OPTIONS/UBSAN_OPTIONS pass through)
#
# The root parent reads the config and certificate and opens the logs, so
# RUNDIR only needs to be reachable by root. What the www-data children read
# or write at run time (the document root, sanitizer logs) moves to
# /var/tmp/mod_ecom-{www,san}/<hash>-<name> when www-data cannot reach RUNDIR.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ecom_pg_env

APACHE2="${APACHE2:-/usr/sbin/apache2}"
RUNDIR="${RUNDIR:-$ROOT/build/run}"
case "$RUNDIR" in /*) ;; *) RUNDIR="$PWD/$RUNDIR" ;; esac
HTTP_PORT="${HTTP_PORT:-8080}"
HTTPS_PORT="${HTTPS_PORT:-8443}"
HTTP2_PORT="${HTTP2_PORT:-8081}"
ECOM_DB2="${ECOM_DB2:-}"
MODULE="${MODULE:-$ROOT/build/mod_ecom.so}"
case "$MODULE" in /*) ;; *) MODULE="$PWD/$MODULE" ;; esac
ECOM_LOGLEVEL="${ECOM_LOGLEVEL:-warn}"
ECOM_ACCESSLOG="${ECOM_ACCESSLOG:-1}"
CONF="$RUNDIR/httpd.conf"
PIDFILE="$RUNDIR/httpd.pid"
ERRLOG="$RUNDIR/error.log"
WWW_USER=www-data
# -D arguments of apache2: the second shop only when its database is named
DEFINES=()
[ -n "$ECOM_DB2" ] && DEFINES=(-D ECOM_SECOND_SHOP)
[ "${ECOM_TLS:-1}" = 0 ] && DEFINES+=(-D ECOM_NO_TLS)

for p in "$HTTP_PORT" "$HTTPS_PORT" "$HTTP2_PORT" "$PGPORT"; do
    case "$p" in ''|*[!0-9]*) die "ports must be numbers (got '$p')" ;; esac
done

www_dir() {  # www_dir NAME PURPOSE -> a dir under RUNDIR or its /var/tmp fallback
    mkdir -p "$RUNDIR"
    ecom_user_dir "$WWW_USER" "$RUNDIR/$1" "$2"
}

DOCROOT="$(www_dir htdocs www)"

pid_of() {  # prints the pid of a running instance of this RUNDIR
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    case "$pid" in ''|*[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

show_errlog() { show_tail "$ERRLOG" 30; }

make_cert() {
    local dir="$RUNDIR/tls"
    [ -s "$dir/server.crt" ] && [ -s "$dir/server.key" ] && return 0
    msg "generating a self-signed TLS certificate for 127.0.0.1 in $dir"
    mkdir -p "$dir"
    chmod 700 "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 \
        -addext basicConstraints=critical,CA:FALSE \
        -addext keyUsage=digitalSignature,keyEncipherment \
        -addext extendedKeyUsage=serverAuth \
        -keyout "$dir/server.key" -out "$dir/server.crt" 2>"$dir/openssl.log" \
        || { cat "$dir/openssl.log" >&2; die "openssl failed"; }
    rm -f "$dir/openssl.log"
    chmod 600 "$dir/server.key"
    chmod 644 "$dir/server.crt"
}

# A static JSON file shaped like a 20-product list page (about 6 KB), the
# benchmark's baseline.
make_static() {
    case "$DOCROOT" in /var/tmp/mod_ecom-www/*) mkdir -p /var/tmp/mod_ecom-www; chmod 755 /var/tmp/mod_ecom-www ;; esac
    mkdir -p "$DOCROOT"
    chmod 755 "$DOCROOT"
    perl -MJSON::PP -e '
        my @items = map { {
            id => $_, sku => sprintf("DEMO-%05d", $_),
            name => "Demo product $_ - stainless steel kitchen utensil",
            description => "A sturdy, dishwasher-safe utensil for everyday cooking.",
            price => 995 + 100 * $_, currency => "GBP", stock => 10 + $_,
            active => JSON::PP::true, category => "kitchen",
            created_at => "2026-11-26T10:00:00Z", updated_at => "2026-11-26T10:00:00Z",
        } } 1 .. 20;
        print JSON::PP->new->canonical->encode({ items => \@items, next_cursor => "MjA" });
    ' >"$DOCROOT/products.json.tmp"
    chmod 644 "$DOCROOT/products.json.tmp"
    mv -f "$DOCROOT/products.json.tmp" "$DOCROOT/products.json"
    # the example shop page for browsers (conf/www/: /static/www/shop.html)
    rm -rf "$DOCROOT/www"
    cp -R "$ROOT/conf/www" "$DOCROOT/www"
    chmod -R a+rX "$DOCROOT/www"
}

make_conf() {
    mkdir -p "$RUNDIR"
    make_cert
    make_static
    local off=""
    [ "$ECOM_ACCESSLOG" = 0 ] && off="#"
    TPL_RUNDIR="$RUNDIR" TPL_HTTP_PORT="$HTTP_PORT" TPL_HTTPS_PORT="$HTTPS_PORT" \
    TPL_MODULE="$MODULE" TPL_DOCROOT="$DOCROOT" TPL_PG_PORT="$PGPORT" \
    TPL_PG_HOST="${ECOM_PG_SOCKET_DIR:-127.0.0.1}" \
    TPL_PG_DB="$PGDATABASE" TPL_PG_USER="$PGUSER" TPL_LOGLEVEL="$ECOM_LOGLEVEL" \
    TPL_SECOND_HTTP_PORT="$HTTP2_PORT" TPL_SECOND_PG_DB="$ECOM_DB2" \
    TPL_ACCESSLOG_OFF="$off" TPL_CACHE="${ECOM_CACHE:-shmcb:$RUNDIR/ecom_cache(4194304)}" \
    perl -pe 'next if /^\s*#/; s/\@([A-Z_]+)\@/exists $ENV{"TPL_$1"} ? $ENV{"TPL_$1"} : die "unknown placeholder \@$1\@ in line $.\n"/ge' \
        "$ROOT/conf/httpd.conf.in" >"$CONF.tmp"
    mv -f "$CONF.tmp" "$CONF"
}

# apache2 with the optional preload (the sanitizer options are inherited).
run_apache2() {
    if [ -n "${ECOM_PRELOAD:-}" ]; then
        env LD_PRELOAD="$ECOM_PRELOAD" "$APACHE2" "$@"
    else
        "$APACHE2" "$@"
    fi
}

check_module() {
    [ -f "$MODULE" ] || die "$MODULE not found: build it with 'make' (or 'make asan')"
}

do_stop() {
    local pid
    if ! pid="$(pid_of)"; then
        msg "httpd ($RUNDIR) is not running"
        rm -f "$PIDFILE"
        return 0
    fi
    msg "stopping httpd (pid $pid, $RUNDIR)"
    local kids
    kids="$(ps -o pid= --ppid "$pid" 2>/dev/null | tr -s ' \n' ' ' || true)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! ecom_wait_for 20 eval '! kill -0 '"$pid"' 2>/dev/null'; then
        warn "httpd (pid $pid) did not stop within 20 s: killing it"
        # shellcheck disable=SC2086
        kill -KILL "$pid" $kids 2>/dev/null || true
        ecom_wait_for 5 eval '! kill -0 '"$pid"' 2>/dev/null' || die "cannot stop httpd pid $pid"
    fi
    rm -f "$PIDFILE"
    msg "httpd stopped"
}

http_answers() {
    local code
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/" 2>/dev/null || true)"
    [ -n "$code" ] && [ "$code" != 000 ]
}

do_start() {
    check_module
    if pid_of >/dev/null; then do_stop; fi
    rm -f "$PIDFILE"
    make_conf
    msg "starting httpd on http://127.0.0.1:$HTTP_PORT and https://127.0.0.1:$HTTPS_PORT${ECOM_DB2:+ (second shop on http://127.0.0.1:$HTTP2_PORT, database $ECOM_DB2)}"
    msg "  module $MODULE, config $CONF, log $ERRLOG${ECOM_PRELOAD:+, LD_PRELOAD=$ECOM_PRELOAD}"
    if ! run_apache2 -f "$CONF" "${DEFINES[@]}" -k start >"$RUNDIR/startup.log" 2>&1; then
        cat "$RUNDIR/startup.log" >&2
        show_errlog
        die "apache2 failed to start"
    fi
    local t0=$SECONDS deadline=$((SECONDS + 30))
    until http_answers; do
        if [ $SECONDS -ge $deadline ]; then
            cat "$RUNDIR/startup.log" >&2
            show_errlog
            do_stop || true
            die "httpd does not answer on 127.0.0.1:$HTTP_PORT after 30 s"
        fi
        if [ $((SECONDS - t0)) -ge 3 ] && ! pid_of >/dev/null; then
            sleep 0.5
            if ! pid_of >/dev/null && ! http_answers; then
                cat "$RUNDIR/startup.log" >&2
                show_errlog
                die "httpd exited during start-up"
            fi
        fi
        sleep 0.2
    done
    if [ -s "$RUNDIR/startup.log" ]; then
        sed 's/^/    /' "$RUNDIR/startup.log" >&2
    fi
    msg "httpd running (pid $(pid_of || echo '?'))"
}

do_fg() {
    check_module
    if pid_of >/dev/null; then do_stop; fi
    make_conf
    msg "running httpd in the foreground (Ctrl-C stops it); error log: $ERRLOG"
    if [ -n "${ECOM_PRELOAD:-}" ]; then
        exec env LD_PRELOAD="$ECOM_PRELOAD" "$APACHE2" -f "$CONF" "${DEFINES[@]}" -DFOREGROUND
    fi
    exec "$APACHE2" -f "$CONF" "${DEFINES[@]}" -DFOREGROUND
}

do_status() {
    local pid
    if pid="$(pid_of)"; then
        echo "running (pid $pid) on 127.0.0.1:$HTTP_PORT/$HTTPS_PORT, rundir $RUNDIR"
        return 0
    fi
    echo "stopped (rundir $RUNDIR)"
    return 3
}

do_sandir() {
    local d
    d="$(www_dir san san)"
    case "$d" in /var/tmp/mod_ecom-san/*) mkdir -p /var/tmp/mod_ecom-san; chmod 755 /var/tmp/mod_ecom-san ;; esac
    ecom_user_dir_make "$WWW_USER" "$d" 755
    printf '%s\n' "$d"
}

cmd="${1:-}"
case "$cmd" in
    conf)    make_conf; printf '%s\n' "$CONF" ;;
    start)   do_start ;;
    stop)    do_stop ;;
    restart) do_stop; do_start ;;
    fg)      do_fg ;;
    status)  do_status ;;
    sandir)  do_sandir ;;
    *) echo "usage: $0 {start|stop|restart|fg|conf|status|sandir}" >&2; exit 2 ;;
esac
