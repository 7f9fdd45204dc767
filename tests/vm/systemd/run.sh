#!/bin/bash
# tests/vm/systemd/run.sh - the systemd cgroup driver's tests under a real systemd: boots the
# qemu VM of tests/vm once with systemd as PID 1 (host / overlaid, cgroup v2) and runs
# tests/tests/systemd.rs there with --systemd-cgroup containers. `make systemd-vm`.
# --v1 (first argument; `make systemd-vm-v1`): the same boot with the kernel's v1 controllers
# mountable and systemd.unified_cgroup_hierarchy=0, so systemd mounts the hybrid layout (v1
# hierarchies, cgroup2 at /sys/fs/cgroup/unified); systemd.rs and the clients run there too.
#
# Private state (never shared with the other tests/vm lanes):
#   HUSK_SDVM_CACHE   kernel + initramfs with this lane's /init  (default /var/cache/husk-vm-systemd)
#   CARGO_TARGET_DIR  test binaries (default /var/tmp/husk-target-vm-systemd; not under /tmp)
# Extra arguments go to the test binary (e.g. a test name filter); --setup only prepares the
# cache; --bench HUSK BUNDLE [BASE_HUSK] runs bench/drivers.sh instead (`make bench-systemd`).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM=$(cd "$HERE/.." && pwd)
REPO=$(cd "$VM/../.." && pwd)
T0=$(date +%s)
say() { printf 'systemd-vm: %s\n' "$*" >&2; }
HYBRID=0
if [ "${1:-}" = --v1 ]; then
    HYBRID=1; shift
    say() { printf 'systemd-vm (hybrid): %s\n' "$*" >&2; }
fi

[ "$(id -u)" = 0 ] || { say "skipped: needs root (qemu with 9p passthrough)"; exit 0; }
# The guest boots the host's / (overlaid): systemd, and the clients' packages (Podman,
# containerd, runc as e2e installs them: with recommended packages), must be on the host.
# apt-install.sh installs only what is missing and never removes a package.
if [ "${1:-}" != --bench ] && [ "${1:-}" != --setup ]; then
    HUSK_APT_RECOMMENDS=1 "$REPO/scripts/apt-install.sh" systemd podman conmon containerd runc jq ||
        { say "cannot install the lane's packages (see above)"; exit 1; }
fi
if [ ! -x /lib/systemd/systemd ]; then
    say "skipped: systemd is not installed on this host (the guest boots the host's /lib/systemd/systemd)"
    exit 0
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/husk-target-vm-systemd}
case $CARGO_TARGET_DIR in
    /tmp | /tmp/*) say "CARGO_TARGET_DIR must not be under /tmp (the guest mounts its own)"; exit 2 ;;
esac
CACHE=${HUSK_SDVM_CACHE:-/var/cache/husk-vm-systemd}

# The kernel and initramfs: tests/vm/setup.sh into the private cache (reusing the kernel
# package of the shared v2vm cache when it is there), then this lane's /init on top.
# qemu as run-in-v2vm.sh finds it: V2VM_QEMU, the system's, else the private one setup.sh
# unpacked into a cache (this lane's, or the shared v2vm one: used, never changed).
SHARED=${V2VM_CACHE:-/var/cache/v2vm}
if [ -z "${V2VM_QEMU:-}" ] && ! command -v qemu-system-x86_64 >/dev/null &&
   [ ! -x "$CACHE/qemu/qemu-system-x86_64" ] && [ -x "$SHARED/qemu/qemu-system-x86_64" ]; then
    export V2VM_QEMU=$SHARED/qemu/qemu-system-x86_64
fi
if [ ! -f "$CACHE/systemd-stamp" ] || [ "$VM/setup.sh" -nt "$CACHE/systemd-stamp" ] ||
   [ "$VM/guest-init.sh" -nt "$CACHE/systemd-stamp" ] || [ "$HERE/init.sh" -nt "$CACHE/systemd-stamp" ] ||
   { [ -z "${V2VM_QEMU:-}" ] && ! command -v qemu-system-x86_64 >/dev/null &&
     [ ! -x "$CACHE/qemu/qemu-system-x86_64" ]; }; then
    [ -L "$CACHE/qemu/qemu-system-x86_64" ] && rm -f "$CACHE/qemu/qemu-system-x86_64"  # dangling
    mkdir -p "$CACHE"
    rm -f "$CACHE/systemd-stamp"
    for deb in "$SHARED"/linux-image-*.deb; do
        [ -f "$deb" ] && [ ! -f "$CACHE/$(basename "$deb")" ] && cp "$deb" "$CACHE/"
    done
    # With a usable qemu elsewhere, setup.sh must not fetch another one.
    skip_qemu=
    [ -n "${V2VM_QEMU:-}" ] && [ ! -x "$CACHE/qemu/qemu-system-x86_64" ] && skip_qemu=1
    if [ -n "$skip_qemu" ]; then
        mkdir -p "$CACHE/qemu" && ln -sf "$V2VM_QEMU" "$CACHE/qemu/qemu-system-x86_64"
    fi
    V2VM_CACHE=$CACHE "$VM/setup.sh"
    layer=$(mktemp -d /var/tmp/husk-sdvm-layer.XXXXXX)
    trap 'rm -rf "$layer"' EXIT
    # The v2vm init stays as /init.v2vm (its stage 1 is reused); later cpio archives in an
    # initramfs override earlier ones, so the combined image's /init is this lane's.
    gzip -dc "$CACHE/initramfs.gz" | (cd "$layer" && cpio -id --quiet init)
    mkdir -p "$layer/root"
    mv "$layer/init" "$layer/root/init.v2vm"
    cp "$HERE/init.sh" "$layer/root/init"
    chmod 755 "$layer/root/init" "$layer/root/init.v2vm"
    (cd "$layer/root" && printf '%s\n' init init.v2vm | cpio -o -H newc --quiet -R 0:0) |
        gzip -9 >> "$CACHE/initramfs.gz"
    date -u +%FT%TZ > "$CACHE/systemd-stamp"
    rm -rf "$layer"; trap - EXIT
fi

[ "${1:-}" = --setup ] && { say "cache ready: $CACHE"; exit 0; }

# --bench HUSK BUNDLE [BASE_HUSK]: bench/drivers.sh in one boot, husk with and without
# --systemd-cgroup (and an older husk, to compare the cgroupfs path), binaries and bundle
# copied to the guest's tmpfs first (page faults over 9p would dominate otherwise).
if [ "${1:-}" = --bench ]; then
    [ $# -ge 3 ] || { say "usage: $0 --bench HUSK BUNDLE [BASE_HUSK]"; exit 2; }
    husk=$(readlink -f "$2") bundle=$(readlink -f "$3") base=${4:+$(readlink -f "$4")}
    # shellcheck disable=SC2016 # expanded by the guest's bash
    GUEST='set -euo pipefail
mkdir -p /tmp/bin && cp "$1" /tmp/bin/husk && cp -a "$2" /tmp/bundle
v=(husk=/tmp/bin/husk "husk-systemd=/tmp/bin/husk --systemd-cgroup")
[ -z "$3" ] || { cp "$3" /tmp/bin/husk-base; v+=(husk-base=/tmp/bin/husk-base); }
echo "guest: systemd $(systemctl --version | head -n1 | cut -d" " -f2), cgroup $(stat -f -c %T /sys/fs/cgroup); qemu, so only ratios matter"
for b in /tmp/bin/*; do echo "binary size: $(basename "$b") $(stat -c %s "$b") bytes"; done
bench/drivers.sh /tmp/bundle "${v[@]}"'
    V2VM_CACHE=$CACHE V2VM_TIMEOUT=${V2VM_TIMEOUT:-900} \
    V2VM_PASS_ENV="${V2VM_PASS_ENV:-PATH HOME LANG TERM BENCH_*}" \
        "$VM/run-in-v2vm.sh" "$REPO" bash -c "$GUEST" _ "$husk" "$bundle" "$base"
    exit
fi

cd "$REPO"
cargo build -q -p husk
export HUSK="$CARGO_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/debug/husk"
[ -n "${HUSK_SDVM_WRAPPER:-}" ] && HUSK=$HUSK_SDVM_WRAPPER   # e.g. a strace wrapper, for debugging
BIN=$(cargo test -q -p husk-tests --test systemd --no-run --message-format=json 2>/dev/null |
      grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//' | tail -n1)
[ -n "$BIN" ] || { say "test binary not built"; exit 1; }
T1=$(date +%s)

# shellcheck disable=SC2016 # expanded by the guest's bash
RUNNER='set -u
echo "guest: systemd $(systemctl --version | head -n1 | cut -d" " -f2), PID 1 = $(cat /proc/1/comm), cgroup $(stat -f -c %T /sys/fs/cgroup)"
[ -d /run/systemd/system ] || { echo "systemd did not come up as PID 1" >&2; exit 1; }
if [ "$HYBRID" = 1 ] && { [ "$(stat -f -c %T /sys/fs/cgroup/unified)" != cgroup2fs ] ||
                          [ "$(stat -f -c %T /sys/fs/cgroup/memory)" != cgroupfs ]; }; then
    echo "systemd did not mount the hybrid cgroup layout" >&2; exit 1
fi
timeout -k 5 300 "$@" --test-threads=1; rc=$?
if [ "$CLIENTS" = 1 ]; then
    timeout -k 5 600 tests/vm/systemd/clients.sh "$HUSK"; c=$?
    [ "$rc" -ne 0 ] || rc=$c
fi
exit $rc'
# Podman and containerd (tests/vm/systemd/clients.sh) too, unless a test filter was given or
# HUSK_SDVM_CLIENTS=0.
export CLIENTS=${HUSK_SDVM_CLIENTS:-1} HYBRID
[ $# -gt 0 ] && CLIENTS=${HUSK_SDVM_CLIENTS:-0}
if [ "$HYBRID" = 1 ]; then
    export V2VM_CGROUP_NO_V1='' V2VM_APPEND="${V2VM_APPEND:-} systemd.unified_cgroup_hierarchy=0"
fi
rc=0
V2VM_CACHE=$CACHE V2VM_TIMEOUT=${V2VM_TIMEOUT:-420} \
V2VM_PASS_ENV="${V2VM_PASS_ENV:-PATH HOME USER LANG LC_* TERM CI RUST* CARGO* NO_COLOR HUSK CLIENTS HYBRID}" \
    "$VM/run-in-v2vm.sh" "$REPO" bash -c "$RUNNER" _ "$BIN" "$@" || rc=$?
T2=$(date +%s)
say "build $((T1 - T0)) s, VM (boot + tests) $((T2 - T1)) s, total $((T2 - T0)) s; exit $rc"
exit $rc
