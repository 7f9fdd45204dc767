#!/bin/bash
# run-criu-tests.sh - husk checkpoint/restore (CRIU) tests in the tests/vm qemu VM.
#
# Debian's criu 3.17 fails `criu check` on the build hosts' newer kernels, but works on
# Debian 12's 6.1 kernel that the VM boots (host / overlaid read-only, so the host's criu,
# busybox and test binaries run there unchanged). One boot runs every test of
# tests/tests/checkpoint.rs with HUSK_CRIU_REQUIRED=1: a CRIU that cannot work in the VM
# fails the lane instead of skipping. Extra arguments go to the test binary (a name filter).
#
# Knobs: CARGO_TARGET_DIR (default /var/tmp/husk-target-vm-criu; not under /tmp, which the
# guest replaces), V2VM_CACHE, V2VM_TIMEOUT (default here 600), V2VM_KEEP=1 (see README.md).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
start=$(date +%s)

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/husk-target-vm-criu}
case $CARGO_TARGET_DIR in
    /tmp | /tmp/*) echo "run-criu-tests: CARGO_TARGET_DIR must not be under /tmp" >&2; exit 2 ;;
esac

HUSK_EXTRA_DEPS="criu ${HUSK_EXTRA_DEPS:-}" "$REPO/scripts/deps.sh"
CACHE=${V2VM_CACHE:-/var/cache/v2vm}
if [ ! -f "$CACHE/stamp" ] || [ "$HERE/setup.sh" -nt "$CACHE/stamp" ] ||
   [ "$HERE/guest-init.sh" -nt "$CACHE/stamp" ] ||
   { ! command -v qemu-system-x86_64 >/dev/null && [ ! -x "$CACHE/qemu/qemu-system-x86_64" ]; }; then
    "$HERE/setup.sh"
fi

cd "$REPO"
cargo build -p husk >/dev/null
export HUSK="$CARGO_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/debug/husk"
BIN=$(cargo test -p husk-tests --test checkpoint --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//' | tail -n1)
[ -n "$BIN" ] || { echo "run-criu-tests: test binary not built" >&2; exit 1; }

# shellcheck disable=SC2016 # expanded by the guest's bash
RUNNER='echo "guest: kernel $(uname -r), $(criu --version | head -n1), cgroup $(stat -f -c %T /sys/fs/cgroup)"
criu check || { echo "criu check fails in the VM" >&2; exit 1; }
exec "$@" --test-threads=1'
rc=0
V2VM_TIMEOUT=${V2VM_TIMEOUT:-600} \
V2VM_PASS_ENV="${V2VM_PASS_ENV:-PATH HOME USER LANG LC_* TERM CI RUST* CARGO* NO_COLOR HUSK} HUSK_CRIU_REQUIRED" \
HUSK_CRIU_REQUIRED=1 \
    "$HERE/run-in-v2vm.sh" "$REPO" bash -c "$RUNNER" _ "$BIN" "$@" || rc=$?
echo "criu-vm: $( [ $rc = 0 ] && echo passed || echo "FAILED (exit $rc)" ) in $(( $(date +%s) - start )) s"
exit $rc
