#!/bin/sh
# apt-install.sh PKG...: installs the missing ones of PKG (Debian, as root) and never removes a
# package. Every set-up script of husk (scripts/deps.sh, tests/vm/setup.sh, integration/) goes
# through here.
#   - already installed: nothing to do, no apt call at all;
#   - apt's plan is simulated first (`apt-get -s`): if it would remove anything (a conflict with a
#     package installed from elsewhere, e.g. a backported qemu-utils), nothing is installed and
#     the script exits 3 naming the packages to be installed and the ones apt would remove;
#   - the real install runs with `--no-remove` as well, so even a plan that changes between the
#     simulation and the install cannot remove anything;
#   - `apt-get update` runs once when a package is unknown (fresh machine); a busy dpkg lock is
#     waited for (DPkg::Lock::Timeout) and the install retried.
# Exit: 0 installed (or nothing to do), 3 conflict (would remove packages), 1 other failure.
# HUSK_APT_RECOMMENDS=1 installs recommended packages too (default: --no-install-recommends).
set -u
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

recommends=--no-install-recommends
[ "${HUSK_APT_RECOMMENDS:-0}" = 1 ] && recommends=
log=$(mktemp /tmp/husk-apt.XXXXXX)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
lock="-o DPkg::Lock::Timeout=300"

plan() { apt-get -s -q $lock $recommends install $missing >"$log" 2>&1; }
# shellcheck disable=SC2086 # word splitting of the package list is intended
if ! plan && grep -q 'Unable to locate package\|has no installation candidate' "$log"; then
    apt-get update -q $lock >/dev/null 2>&1
fi
plan || { echo "apt-install: cannot install$missing:" >&2; tail -5 "$log" >&2; exit 1; }
removes=$(sed -n 's/^Remv \([^ ]*\) \[\([^]]*\)\].*/\1 \2/p' "$log" | paste -sd, - | sed 's/,/, /g')
if [ -n "$removes" ]; then
    echo "apt-install: not installing$missing: apt would remove $removes (a conflict with a" \
        "package installed from elsewhere); husk's scripts never remove packages. Install a" \
        "matching version by hand, or skip what needs it." >&2
    exit 3
fi
echo "apt-install: installing$missing" >&2
i=0
while :; do
    # shellcheck disable=SC2086
    if apt-get install -y -q --no-remove $lock $recommends $missing >"$log" 2>&1; then
        exit 0
    fi
    i=$((i + 1))
    if [ $i -ge 5 ] || grep -q 'remove is disabled\|Unable to correct problems\|held broken' "$log"; then
        echo "apt-install: apt-get install$missing failed:" >&2
        tail -5 "$log" >&2
        exit 1
    fi
    echo "apt-install: apt-get install failed (lock busy?), retry $i/5 in 10 s" >&2
    sleep 10
done
