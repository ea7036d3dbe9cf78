# shellcheck shell=bash
# scripts/lib.sh: shared helpers for mod_ecom's infrastructure scripts.
# Sourced, never run:   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Provides ROOT (the repo root), msg/warn/die, as_root, ecom_deps, ecom_pg_env
# and ecom_user_dir (a directory a service user can reach, with a /var/tmp
# fallback when the repo lives somewhere that user cannot traverse, e.g. a
# mode-700 mktemp -d folder).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export ROOT

msg()  { printf '==> %s\n' "$*" >&2; }
warn() { printf '==> WARNING: %s\n' "$*" >&2; }
die()  { printf '==> ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# Runs a command as root (directly when we are root, else through sudo).
as_root() {
    if is_root; then "$@"; else sudo "$@"; fi
}

# Debian packages needed to build, run, test and benchmark mod_ecom
# (chromium and chromium-driver: the headless-browser test of the cookie
# sessions, t/52-browser-chromium.t; debhelper, dpkg-dev, lintian and
# debootstrap: make deb and its test, t/60-deb.t; redis-server and
# redis-tools: the shared cache of `make cluster` and t/63-cluster.t, run
# as a child process of scripts/cluster.sh, never as the system service).
ECOM_PACKAGES=(
    apache2 apache2-dev libaprutil1-dbd-pgsql libjansson-dev libssl-dev
    libargon2-dev libpq-dev postgresql apache2-utils wrk libapache2-mod-perl2
    libwww-perl libjson-perl libio-socket-ssl-perl liblwp-protocol-https-perl
    xz-utils curl openssl make gcc perl libc6-dev cppcheck clang-tidy
    clang libclang-rt-14-dev
    chromium chromium-driver
    memcached
    # make deb (build-essential: dpkg-buildpackage checks for it) and
    # t/60-deb.t (the package installed in a debootstrap chroot)
    build-essential debhelper dpkg-dev lintian debootstrap
    redis-server redis-tools
)
# Installed without their recommends: prometheus for its promtool only
# (t/61-metrics.t checks the ecom-metrics output with `promtool check
# metrics`; Debian has promtool in no smaller package), not the exporters
# and services it recommends.
ECOM_PACKAGES_BARE=(prometheus)

# Shared libraries that httpd, its modules and mod_ecom load at run time.
# Installing apache2 does not upgrade an older one that is already present,
# and a library older than the one a module was built against misbehaves
# (mod_ssl warns "AH01882: this version of mod_ssl was compiled against a
# newer library" when libssl3 lags behind). ecom_deps brings these up to the
# candidate version of the package lists.
ECOM_RUNTIME_LIBS=(
    libssl3 libapr1 libaprutil1 libaprutil1-dbd-pgsql libpq5 libjansson4
    libargon2-1
)

ecom_apt() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get "$@"
}

# Are there package lists at all? (Images often ship without them; then
# apt-cache cannot know of any newer version.)
ecom_apt_lists_present() {
    compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

# Prints "package installed candidate" for each runtime library that is
# installed in an older version than its candidate. One apt-cache call.
ecom_stale_libs() {
    LC_ALL=C apt-cache policy "${ECOM_RUNTIME_LIBS[@]}" 2>/dev/null | awk '
        /^[^ ]/          { pkg = $1; sub(/:$/, "", pkg); inst = ""; next }
        /^  Installed: / { inst = $2; next }
        /^  Candidate: / { if (inst != "" && inst != "(none)" && $2 != "(none)" && inst != $2)
                               print pkg, inst, $2 }' |
    while read -r pkg inst cand; do
        if dpkg --compare-versions "$inst" lt "$cand"; then
            printf '%s %s %s\n' "$pkg" "$inst" "$cand"
        fi
    done
}

# Installs the packages above that are missing, then upgrades every runtime
# library older than its candidate. A run with nothing to do is one
# dpkg-query and one apt-cache call (well under a second).
ecom_deps() {
    local missing=() stale=() pkg status line updated=0
    declare -A have=()
    # nodejs and npm for the OpenAPI linters (scripts/oaslint.sh): Debian's,
    # unless an npm is already there (NodeSource's nodejs bundles its own
    # and conflicts with Debian's npm package)
    command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
    while IFS=' ' read -r pkg status; do
        [ "$status" = installed ] && have[${pkg%%:*}]=1
    done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' \
                 "${ECOM_PACKAGES[@]}" "${ECOM_PACKAGES_BARE[@]}" \
                 "${ECOM_RUNTIME_LIBS[@]}" 2>/dev/null || true)
    for pkg in "${ECOM_PACKAGES[@]}" "${ECOM_RUNTIME_LIBS[@]}"; do
        [ -n "${have[$pkg]:-}" ] || missing+=("$pkg")
    done
    local bare=()
    for pkg in "${ECOM_PACKAGES_BARE[@]}"; do
        [ -n "${have[$pkg]:-}" ] || bare+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        msg "installing missing packages: ${missing[*]}"
        ecom_apt update -qq
        updated=1
        # With recommends: gcc needs libc6-dev, perl's sockets want netbase.
        ecom_apt install -y -qq "${missing[@]}"
        msg "packages installed"
    fi
    if [ ${#bare[@]} -gt 0 ]; then
        msg "installing missing packages without recommends: ${bare[*]}"
        [ "$updated" = 1 ] || ecom_apt update -qq
        updated=1
        ecom_apt install -y -qq --no-install-recommends "${bare[@]}"
    fi
    if [ "$updated" = 0 ] && ! ecom_apt_lists_present; then
        msg "no apt package lists: apt-get update, to compare the runtime libraries with their candidates"
        if ecom_apt update -qq; then
            updated=1
        else
            warn "apt-get update failed: cannot tell whether the runtime libraries are current"
        fi
    fi
    mapfile -t stale < <(ecom_stale_libs)
    if [ ${#stale[@]} -gt 0 ] && [ $updated = 0 ]; then
        # The candidate may be gone from the mirror by now: refresh first.
        msg "runtime libraries older than their candidate: refreshing the package lists"
        ecom_apt update -qq
        mapfile -t stale < <(ecom_stale_libs)
    fi
    if [ ${#stale[@]} -eq 0 ]; then
        if [ ${#missing[@]} -eq 0 ]; then
            msg "system packages: all present, runtime libraries up to date"
        fi
        return 0
    fi
    local names=() inst cand
    for line in "${stale[@]}"; do
        read -r pkg inst cand <<<"$line"
        msg "upgrading $pkg $inst -> $cand"
        names+=("$pkg")
    done
    # --only-upgrade: nothing new is installed and the packages keep their
    # automatic/manual marks.
    ecom_apt install -y -qq --only-upgrade "${names[@]}"
    mapfile -t stale < <(ecom_stale_libs)
    if [ ${#stale[@]} -gt 0 ]; then
        warn "still older than their candidate: ${stale[*]}"
    else
        msg "runtime libraries upgraded: ${names[*]}"
    fi
}

# PostgreSQL client environment shared by every script (libpq reads these).
ecom_pg_env() {
    export PGHOST="${PGHOST:-127.0.0.1}"
    export PGPORT="${PGPORT:-55432}"
    export PGUSER="${PGUSER:-ecom}"
    export PGDATABASE="${PGDATABASE:-ecom}"
}

# A short, stable id of this checkout, for fallback paths under /var/tmp.
ecom_root_hash() {
    printf '%s' "$ROOT" | sha256sum | cut -c1-10
}

# Can USER reach (search) PATH? Needs search permission on every ancestor.
ecom_user_can_traverse() {
    local user=$1 path=$2
    is_root || return 0
    (cd / && runuser -u "$user" -- test -x "$path") 2>/dev/null
}

# ecom_user_dir USER WANT PURPOSE
# Prints a directory that USER can use: WANT itself when USER can traverse its
# parent, else /var/tmp/mod_ecom-PURPOSE/<hash of ROOT>-<basename WANT>.
# Creates only WANT's parent (as the caller); ecom_user_dir_make creates the rest.
ecom_user_dir() {
    local user=$1 want=$2 purpose=$3 parent
    parent="$(dirname "$want")"
    mkdir -p "$parent"
    if ecom_user_can_traverse "$user" "$parent"; then
        printf '%s\n' "$want"
    else
        printf '/var/tmp/mod_ecom-%s/%s-%s\n' "$purpose" "$(ecom_root_hash)" "$(basename "$want")"
    fi
}

# ecom_user_dir_make USER DIR MODE: creates DIR (and parents) owned by USER.
ecom_user_dir_make() {
    local user=$1 dir=$2 mode=$3
    mkdir -p "$dir"
    if is_root; then
        chown "$user:" "$dir"
    fi
    chmod "$mode" "$dir"
}

# Waits until "$@" succeeds, at most SECONDS (first argument) seconds.
ecom_wait_for() {
    local secs=$1; shift
    local deadline=$((SECONDS + secs))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

# Is something listening on 127.0.0.1:PORT?
ecom_port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Installs what is missing and builds the module (dev server, benchmark).
ecom_build() {
    ecom_deps
    msg "building: make"
    make --no-print-directory -C "$ROOT"
}

# Initialises and starts the PostgreSQL cluster of ECOM_PGDATA/PGPORT and
# applies the migrations. Callers set their EXIT trap first.
ecom_db_up() {
    bash "$ROOT/scripts/pg.sh" init
    bash "$ROOT/scripts/pg.sh" start
    bash "$ROOT/scripts/migrate.sh"
}

# ecom_bench_up: what both benchmarks start with: build, an EXIT trap that
# stops their httpd (RUNDIR) and PostgreSQL cluster (ECOM_PGDATA) however
# the run ends, then the cluster up and migrated.
ecom_bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    msg "stopping the benchmark servers"
    bash "$ROOT/scripts/httpd.sh" stop >/dev/null 2>&1 || true
    bash "$ROOT/scripts/pg.sh" stop >/dev/null 2>&1 || true
    exit "$rc"
}
ecom_bench_up() {
    ecom_build
    trap ecom_bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    ecom_db_up
}

# ecom_register_users URL PREFIX N: registers N new users through the API
# at URL (e-mails PREFIX-...@example.com) and prints their tokens as a Lua
# list body ("t1","t2",...), for the wrk benchmarks.
ecom_register_users() {
    local url=$1 prefix=$2 u tok list=""
    for u in $(seq 1 "$3"); do
        tok="$(curl -s -X POST -H 'Content-Type: application/json' \
            -d "{\"email\": \"$prefix-$u-$$-$RANDOM@example.com\", \"password\": \"bench password $u\"}" \
            "$url/auth/register/" | perl -MJSON::PP -e 'print JSON::PP->new->decode(join "", <STDIN>)->{token} // ""')"
        [ -n "$tok" ] || die "could not register a bench user"
        list="$list\"$tok\","
    done
    printf '%s' "$list"
}

# show_tail FILE N: the last N lines of a log on stderr, if it has any.
show_tail() {
    if [ -s "$1" ]; then
        printf '==> last lines of %s:\n' "$1" >&2
        tail -n "$2" "$1" >&2
    fi
}

# ecom_logged_statements LOG OUT [VALUE=VAR...] -- CMD...: runs CMD
# (requests to the module) with log_min_duration_statement = 0 (set through
# psql's connection of the environment) and writes the pgbench script of
# the statements the module executed meanwhile, read from PostgreSQL's log
# LOG, into OUT, in their order, as apr_dbd_pgsql prepared them (each parameter
# cast to its PREPARE type). The background jobs' statements (purges,
# expiry, the watchdog claims, prices, sale edges, recommendations, search
# statistics) are left out. A parameter equal to one of the VALUEs becomes
# the pgbench variable VAR (set by the caller's script); a NULL one a NULL
# literal; any other one a variable p1, p2... whose -D options are printed,
# one word per line. Fails (3) when no statement was seen.
ecom_logged_statements() {
    local log="$1" out="$2" from maps=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do maps+=("$1"); shift; done
    shift
    psql -X -q -c "ALTER SYSTEM SET log_min_duration_statement = 0" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.3
    from=$(( $(stat -c %s "$log") + 1 ))
    "$@" >/dev/null
    sleep 0.3
    psql -X -q -c "ALTER SYSTEM RESET log_min_duration_statement" -c "SELECT pg_reload_conf()" >/dev/null
    tail -c +"$from" "$log" | perl -e '
        my ($out, @maps) = @ARGV; my (@stmts, @defs); my $n = 0; my $cur;
        my %var = map { /^(.*)=(\w+)$/ ? ($1 => $2) : () } @maps;
        while (<STDIN>) {
            if (/\bexecute (ecom_\w+): (.*)$/) {
                my ($name, $text) = ($1, $2);
                $cur = { sql => $text };
                push @stmts, $cur unless $name =~ /^ecom_(?:purge_|expire_|job_|dynprice_run$|sale_edges_run$|recs_refresh$|search_stats_run$)/;
                next;
            }
            if ($cur && /DETAIL:\s+parameters: (.*)$/) {
                my $p = $1; my %v;
                while ($p =~ /\$(\d+) = (NULL|\x27((?:[^\x27]|\x27\x27)*)\x27)/g) {
                    $v{$1} = $2 eq "NULL" ? undef : do { (my $s = $3) =~ s/\x27\x27/\x27/g; $s };
                }
                # apr_dbd_pgsql prepares with PREPARE name (types) AS ...
                my @types;
                if ($cur->{sql} =~ s/^PREPARE \w+ \(([^)]*)\) AS //) {
                    @types = split /,/, $1;
                }
                $cur->{sql} =~ s{\$(\d+)}{
                    my $t = $types[$1 - 1] // "text";
                    !defined $v{$1} ? "NULL::$t"
                    : exists $var{$v{$1}} ? "(:$var{$v{$1}}::$t)"
                    : do { $n++; push @defs, "p$n=$v{$1}"; "(:p${n}::$t)" }
                }ge;
                undef $cur;
            }
        }
        open my $fh, ">", $out or die; print $fh "$_->{sql};\n" for @stmts; close $fh;
        print join("\n", map { "-D\n$_" } @defs);
        exit(@stmts ? 0 : 3);' "$out" "${maps[@]}"
}
