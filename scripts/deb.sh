#!/usr/bin/env bash
# scripts/deb.sh (what `make deb` runs): builds the Debian package
# libapache2-mod-ecom from debian/ and leaves build/deb/libapache2-mod-ecom_<version>_<arch>.deb
# (with its .buildinfo and .changes).
#
# dpkg-buildpackage builds in a copy of the tree (build/deb/stage/, removed
# afterwards) and writes into the copy's parent, so the working tree stays
# as it was (nothing in debian/ or build/ of the checkout is touched besides
# build/deb/). Installs its build tools first (ecom_deps: debhelper,
# dpkg-dev, apache2-dev for dh_apache2, lintian). Then runs lintian on the
# package: an error fails the build, warnings are printed (ECOM_DEB_LINTIAN=0
# skips it).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ecom_deps

version="$(dpkg-parsechangelog -SVersion)"
arch="$(dpkg --print-architecture)"
out="$ROOT/build/deb"
stage="$out/stage"
src="$stage/mod-ecom-$version"
deb="libapache2-mod-ecom_${version}_${arch}.deb"

cleanup() { rm -rf "$stage"; }
trap cleanup EXIT
rm -rf "$stage"
mkdir -p "$src"
rm -f "$out"/libapache2-mod-ecom_*.deb "$out"/mod-ecom_*.buildinfo "$out"/mod-ecom_*.changes

msg "copying the tree to $src"
tar -C "$ROOT" --exclude=./build --exclude-vcs --exclude='*.o' --exclude='*.lo' \
    --exclude='*.slo' --exclude='*.la' --exclude=.libs -cf - . | tar -C "$src" -xf -

msg "dpkg-buildpackage -b (log: build/deb/build.log)"
if ! (cd "$src" && dpkg-buildpackage -b -us -uc) >"$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log" >&2
    die "dpkg-buildpackage failed (see build/deb/build.log)"
fi
mv "$stage/$deb" "$stage"/mod-ecom_*.buildinfo "$stage"/mod-ecom_*.changes "$out/"

if [ "${ECOM_DEB_LINTIAN:-1}" != 0 ] && command -v lintian >/dev/null; then
    msg "lintian $deb"
    # --fail-on error: warnings are printed, not fatal
    lintian --fail-on error --info "$out/$deb" >&2 || die "lintian found errors in $deb"
fi
msg "built build/deb/$deb"
