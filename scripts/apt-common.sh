# Installing a Debian package next to running PostgreSQL servers, safely.
# Sourced by scripts/citus-install.sh, pitr.sh, citus-pitr.sh and citus-ha.sh.
# Needs `say` and `die` from the caller.

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_retry() {
  # Another engineer's install may hold the dpkg lock for a while: wait for it.
  local i
  for i in $(seq 1 60); do
    if sudo_if_needed env DEBIAN_FRONTEND=noninteractive "$@"; then return 0; fi
    say "apt-get failed (dpkg lock held?), retrying in 5 s ($i/60)"
    sleep 5
  done
  return 1
}

# apt_install_pinned PKG...: installs PKG with the installed PostgreSQL server
# and libpq5 named at their current versions in the same transaction, so apt
# can never upgrade them under the running servers (it fails instead), and
# checks afterwards that neither moved.
apt_install_pinned() {
  local major server libpq pins=()
  major="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 | sed -E 's|.*/postgresql/([0-9]+)/bin|\1|')"
  server="$(dpkg-query -W -f='${Version}' "postgresql-$major" 2>/dev/null || true)"
  libpq="$(dpkg-query -W -f='${Version}' libpq5 2>/dev/null || true)"
  [ -n "$server" ] && pins+=("postgresql-$major=$server")
  [ -n "$libpq" ] && pins+=("libpq5=$libpq")
  say "installing $* from the apt sources (PostgreSQL kept at ${server:-none}, libpq5 at ${libpq:-none})"
  if ! apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    sudo_if_needed apt-get update -qq || true
  fi
  apt_retry apt-get install -y -qq --no-install-recommends "${pins[@]}" "$@" >/dev/null \
    || die "apt-get could not install $* (see above)"
  [ -z "$server" ] || [ "$(dpkg-query -W -f='${Version}' "postgresql-$major")" = "$server" ] \
    || die "postgresql-$major changed version during the install"
  [ -z "$libpq" ] || [ "$(dpkg-query -W -f='${Version}' libpq5)" = "$libpq" ] \
    || die "libpq5 changed version during the install"
}
