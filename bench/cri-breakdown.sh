#!/usr/bin/env bash
# cri-breakdown.sh [HUSK] [DIR]: where a Kubernetes pod start's time goes, husk against runc
# (bench/README.md, "Kubernetes pod start (CRI)"). Runs the CRI lane's latency benchmark only
# (CRI_CHECKS=0; CRI_BENCH_ROUNDS, default 5) with containerd logging at debug level and every
# program on the pod-start path wrapped by integration/cri's `cri-timer` (husk, runc, the shim
# binary, the bridge/host-local/loopback CNI plugins), then joins containerd's log with the
# wrappers' calls.log (bench/cri-breakdown.py). HUSK: default the release build. DIR: default
# /var/tmp/husk-cri-breakdown (kept: containerd.log, calls.log). Run as root.
set -eu
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
TUPLE=$(rustc -vV | sed -n 's/^host: //p')
HUSK=$(readlink -f "${1:-${CARGO_TARGET_DIR:-$REPO/target}/$TUPLE/release/husk}")
DIR=${2:-/var/tmp/husk-cri-breakdown}
TARGET=${HUSK_CRI_TARGET:-/var/tmp/husk-cri-target}
[ -x "$HUSK" ] || { echo "no husk at $HUSK (make release)" >&2; exit 2; }
RUNC=$(command -v runc) || { echo "runc is not installed" >&2; exit 2; }

(cd "$REPO/integration/cri" && CARGO_TARGET_DIR=$TARGET cargo build --locked --bins)
TIMER=$TARGET/$TUPLE/debug/cri-timer
rm -rf "$DIR"
mkdir -p "$DIR/bin" "$DIR/cni"
wrap() { # wrap DIR NAME REAL
    cp "$TIMER" "$1/$2"
    ln -s "$3" "$1/$2.real"
}
wrap "$DIR/bin" husk "$HUSK"
wrap "$DIR/bin" runc "$RUNC"
wrap "$DIR/bin" containerd-shim-runc-v2 "$(command -v containerd-shim-runc-v2)"
for p in bridge host-local loopback; do
    wrap "$DIR/cni" "$p" "/usr/lib/cni/$p"
done

echo "load before: $(uptime)"
CRI_TRACE_DIR=$DIR CRI_CHECKS=0 "$REPO/integration/run.sh" --runtime "$DIR/bin/husk" cri
echo "load after: $(uptime)"
echo
python3 "$HERE/cri-breakdown.py" "$DIR/containerd.log" "$DIR/calls.log"
