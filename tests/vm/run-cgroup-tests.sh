#!/bin/bash
# run-cgroup-tests.sh - build husk-cgroups' tests on the host, run them on both layouts:
#   1. on this host (cgroup v1/hybrid or whatever it has), unless HUSK_VM_ONLY=1;
#   2. in a throwaway cgroup v2 VM (see README.md), which is what CI needs this script for.
# Exits non-zero if any test binary fails in either place. Extra arguments are passed to
# every test binary (e.g. a test name filter).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

# The guest mounts its own tmpfs on /tmp, so test binaries under /tmp would be invisible.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/husk-target-vm}
case $CARGO_TARGET_DIR in
    /tmp | /tmp/*) echo "run-cgroup-tests: CARGO_TARGET_DIR must not be under /tmp" >&2; exit 2 ;;
esac

# setup.sh installs qemu & co. and builds the VM cache. It is idempotent but re-extracts the
# kernel (~10 s), so skip it while the cache is newer than the scripts that shape it.
CACHE=${V2VM_CACHE:-/var/cache/v2vm}
if [ ! -f "$CACHE/stamp" ] || [ "$HERE/setup.sh" -nt "$CACHE/stamp" ] ||
   [ "$HERE/guest-init.sh" -nt "$CACHE/stamp" ] ||
   { ! command -v qemu-system-x86_64 >/dev/null && [ ! -x "$CACHE/qemu/qemu-system-x86_64" ]; }; then
    # Exit 3: qemu cannot be installed without removing a package (setup.sh said which). The
    # host part still runs; the VM part is skipped with that reason, never silently.
    setup_rc=0
    "$HERE/setup.sh" || setup_rc=$?
    case $setup_rc in
    0) ;;
    3) VM_SKIP="qemu-system-x86 cannot be installed without removing a package (see above)" ;;
    *) exit "$setup_rc" ;;
    esac
fi

cd "$REPO"
# One executable per test target; cargo reports them as JSON ("executable":"/path"): the
# cgroup manager's own tests, and husk's container-level cgroup tests (which need the binary).
cargo build -p husk >/dev/null
export HUSK="$CARGO_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/debug/husk"
mapfile -t BINS < <({ cargo test -p husk-cgroups --no-run --message-format=json 2>/dev/null
                      cargo test -p husk-tests --test cgroups --no-run --message-format=json 2>/dev/null; } |
    grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//')
# Rootless husk in a delegated cgroup v2 subtree (issue 12): only that test of its binary
# (BIN@FILTER).
mapfile -t -O ${#BINS[@]} BINS < <(cargo test -p husk-tests --test rootless --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$/@delegated_cgroup/')
[ ${#BINS[@]} -gt 0 ] || { echo "run-cgroup-tests: no test binaries built" >&2; exit 1; }

# shellcheck disable=SC2016 # expanded by the guest's bash
RUNNER='rc=0 args=() bins=() seen=0
for a in "$@"; do if [ "$a" = -- ]; then seen=1; elif [ $seen = 1 ]; then args+=("$a"); else bins+=("$a"); fi; done
echo "layout: $(stat -f -c %T /sys/fs/cgroup)"
for b in "${bins[@]}"; do
    filter=(); case $b in *@*) filter=("${b#*@}"); b=${b%@*} ;; esac
    echo "== $(basename "$b") ${filter[*]}"
    "$b" --test-threads=1 "${filter[@]}" "${args[@]}" || rc=1
done
exit $rc'

rc=0
if [ "${HUSK_VM_ONLY:-0}" != 1 ]; then
    echo "### host"
    bash -c "$RUNNER" _ "${BINS[@]}" -- "$@" || rc=1
fi
echo "### cgroup v2 VM"
if [ -n "${VM_SKIP:-}" ]; then
    echo "SKIP cgroup v2 VM: $VM_SKIP"
    exit $rc
fi
V2VM_PASS_ENV="${V2VM_PASS_ENV:-PATH HOME USER LANG LC_* TERM CI RUST* CARGO* NO_COLOR HUSK}" \
    "$HERE/run-in-v2vm.sh" "$REPO" bash -c "$RUNNER" _ "${BINS[@]}" -- "$@" || rc=1
exit $rc
