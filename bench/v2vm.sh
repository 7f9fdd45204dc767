#!/bin/bash
# bench/v2vm.sh HUSK HUSK_BENCH BUNDLE_DIR JSON: `make bench` on a cgroup v2 host, in the
# throwaway v2 VM of tests/vm (qemu; TCG here, so absolute times are ~30x the host's and only
# the ratios mean something). The guest's / is the host's over 9p, where every page fault on a
# binary is a file read: husk, the driver, runc, crun and the bundle are first copied to the
# guest's tmpfs, so no runtime pays for 9p. crun needs no private namespace there (no hybrid).
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 HUSK HUSK_BENCH BUNDLE_DIR JSON" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
husk=$(readlink -f "$1") driver=$(readlink -f "$2") bundle=$(readlink -f "$3") json=$(readlink -f "$4")
CACHE=${V2VM_CACHE:-/var/cache/v2vm}
[ -f "$CACHE/stamp" ] || "$REPO/tests/vm/setup.sh"

# shellcheck disable=SC2016 # expanded by the guest's bash
GUEST='set -euo pipefail
mkdir -p /tmp/bin
cp "$1" /tmp/bin/husk; cp "$2" /tmp/bin/husk-bench
for rt in runc crun; do p=$(command -v $rt) && cp "$p" /tmp/bin/ || true; done
cp -a "$3" /tmp/bundle
export PATH=/tmp/bin:$PATH
echo "note: cgroup v2 VM ($(stat -f -c %T /sys/fs/cgroup)); binaries and bundle on the guest tmpfs"
/tmp/bin/husk-bench /tmp/bin/husk /tmp/bundle /tmp/bench.json
cp /tmp/bench.json "$4"'
V2VM_PASS_ENV="${V2VM_PASS_ENV:-PATH HOME LANG TERM BENCH_*}" \
    "$REPO/tests/vm/run-in-v2vm.sh" "$REPO" bash -c "$GUEST" _ "$husk" "$driver" "$bundle" "$json"
