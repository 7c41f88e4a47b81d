#!/usr/bin/env bash
# Make the Citus extension available to the local PostgreSQL, the cheapest way first:
#   1. already installed (`pg_config --pkglibdir`/citus.so): nothing to do;
#   2. a package in the machine's apt sources (postgresql-<major>-citus-<CITUS_SERIES>);
#   3. built from CITUS_SOURCE (a release tarball), its checksum checked against
#      the SHA256SUMS file beside it (or CITUS_SHA256).
# The build is cached in .citus-build/<sha256>/ (the built tree and a stamp):
# a second run only repeats `make install` (seconds) when citus.so went missing.
#
# Build packages are pinned to the installed server's exact version: an
# unpinned postgresql-server-dev-<major> pulls a newer postgresql-<major> and
# libpq5 under the running servers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CITUS_SOURCE="${CITUS_SOURCE:-$ROOT/../shared/vendor/citus-13.2.2.tar.gz}"
CITUS_SERIES="${CITUS_SERIES:-13.2}"
BUILD_CACHE="${CITUS_BUILD_CACHE:-$ROOT/.citus-build}"

say() { printf '\033[1m[citus]\033[0m %s\n' "$*"; }
die() { printf '[citus] error: %s\n' "$*" >&2; exit 1; }

PG_CONFIG="${PG_CONFIG:-$(ls -d /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -n 1 || true)}"
[ -x "$PG_CONFIG" ] || PG_CONFIG="$(command -v pg_config || true)"
[ -x "$PG_CONFIG" ] || die "no pg_config found: run scripts/db.sh up first (it installs PostgreSQL)"
PG_MAJOR="$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')"
PKGLIBDIR="$("$PG_CONFIG" --pkglibdir)"

# sudo_if_needed and apt_retry: scripts/apt-common.sh.
# shellcheck source=scripts/apt-common.sh
source "$ROOT/scripts/apt-common.sh"

installed() { [ -f "$PKGLIBDIR/citus.so" ]; }

# The version of $2 installed on this machine, as a pin for $1 when apt has
# that exact version; $1 unpinned when it does not (or $2 is not installed).
pin_to_installed() {
  local pkg="$1" runtime="$2" version
  version="$(dpkg-query -W -f='${Version}' "$runtime" 2>/dev/null || true)"
  if [ -n "$version" ] && apt-cache madison "$pkg" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -qxF "$version"; then
    echo "$pkg=$version"
  else
    echo "$pkg"
  fi
}

from_apt() {
  local pkg="postgresql-$PG_MAJOR-citus-$CITUS_SERIES"
  command -v apt-cache >/dev/null 2>&1 || return 1
  apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]' || return 1
  say "installing $pkg from the apt sources"
  apt_retry apt-get install -y -qq "$pkg" >/dev/null
}

build_deps() {
  local server_version
  server_version="$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR" 2>/dev/null || true)"
  [ -n "$server_version" ] || die "postgresql-$PG_MAJOR is not a Debian package here: install its server headers and rerun"
  if dpkg-query -W -f='${Status}' "postgresql-server-dev-$PG_MAJOR" 2>/dev/null | grep -q 'ok installed' \
     && dpkg-query -W -f='${Status}' liblz4-dev libzstd-dev libkrb5-dev 2>/dev/null | grep -c 'ok installed' | grep -qx 3; then
    return 0
  fi
  say "installing the build packages (pinned to postgresql-$PG_MAJOR $server_version)"
  sudo_if_needed apt-get update -qq || true
  # libpq-dev must match libpq5 (it depends on the same version): unpinned it
  # would upgrade libpq5 too. The other -dev packages follow their runtime
  # library where apt still has that version.
  apt_retry apt-get install -y -qq --no-install-recommends \
    "postgresql-server-dev-$PG_MAJOR=$server_version" \
    "$(pin_to_installed libpq-dev libpq5)" \
    "$(pin_to_installed liblz4-dev liblz4-1)" \
    "$(pin_to_installed libzstd-dev libzstd1)" \
    libkrb5-dev make gcc >/dev/null
  [ "$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR")" = "$server_version" ] \
    || die "postgresql-$PG_MAJOR changed version during the install"
}

checksum_of_source() {
  [ -f "$CITUS_SOURCE" ] || die "CITUS_SOURCE=$CITUS_SOURCE does not exist (set CITUS_SOURCE to a Citus release tarball)"
  local expected actual sums
  actual="$(sha256sum "$CITUS_SOURCE" | cut -d' ' -f1)"
  expected="${CITUS_SHA256:-}"
  sums="$(dirname "$CITUS_SOURCE")/SHA256SUMS"
  if [ -z "$expected" ] && [ -f "$sums" ]; then
    expected="$(awk -v f="$(basename "$CITUS_SOURCE")" '$2 == f || $2 == "*"f {print $1}' "$sums")"
  fi
  [ -n "$expected" ] || die "no checksum for $CITUS_SOURCE: put it in $sums or CITUS_SHA256"
  [ "$actual" = "$expected" ] || die "checksum mismatch for $CITUS_SOURCE: $actual, expected $expected"
  echo "$actual"
}

from_source() {
  local sha tree stamp
  sha="$(checksum_of_source)"
  tree="$BUILD_CACHE/$sha"
  stamp="$tree/.built"
  if [ ! -f "$stamp" ]; then
    build_deps
    say "building Citus from $(basename "$CITUS_SOURCE") (sha256 ${sha:0:12}, ~1 min on 2 cores)"
    rm -rf "$tree"
    mkdir -p "$tree"
    tar -xzf "$CITUS_SOURCE" -C "$tree" --strip-components=1
    (
      cd "$tree"
      ./configure PG_CONFIG="$PG_CONFIG" --without-libcurl >"$tree/configure.log" 2>&1 \
        || { tail -n 30 "$tree/configure.log" >&2; exit 1; }
      make -j"${CITUS_BUILD_JOBS:-2}" with_llvm=no >"$tree/build.log" 2>&1 \
        || { tail -n 30 "$tree/build.log" >&2; exit 1; }
    ) || die "the Citus build failed (logs in $tree)"
    touch "$stamp"
  else
    say "reusing the cached build in ${tree#"$ROOT"/}"
  fi
  say "installing Citus into $PKGLIBDIR"
  (cd "$tree" && sudo_if_needed make install with_llvm=no >"$tree/install.log" 2>&1) \
    || { tail -n 30 "$tree/install.log" >&2; die "make install failed"; }
}

if installed; then
  exit 0
fi
from_apt || from_source
installed || die "Citus is still not in $PKGLIBDIR"
say "Citus installed: $PKGLIBDIR/citus.so"
