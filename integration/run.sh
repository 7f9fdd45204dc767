#!/usr/bin/env bash
# End-to-end client suites: Podman (via conmon), containerd (ctr + containerd-shim-runc-v2) and
# Docker (dockerd + its containerd) driving an OCI runtime given by path. See integration/README.md.
#
#   integration/run.sh [--runtime PATH] [--keep] [--results FILE] [podman|containerd|docker|all|cri]
#
# Without --runtime, husk is built (cargo build --release -p husk) and tested. --keep keeps the
# work dir (commands.log has every command with its output); --results writes one line per
# check: suite, check, PASS|FAIL, reason (tab-separated).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
RUNTIME=
KEEP=0
RESULTS=
SUITES=()

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --runtime) RUNTIME=${2:?--runtime needs a path}; shift 2 ;;
    --runtime=*) RUNTIME=${1#--runtime=}; shift ;;
    --keep) KEEP=1; shift ;;
    --results) RESULTS=${2:?--results needs a file}; shift 2 ;;
    podman | containerd | docker | cri) SUITES+=("$1"); shift ;;
    all) SUITES+=(podman containerd docker); shift ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
    esac
done
[ ${#SUITES[@]} -gt 0 ] || SUITES=(podman containerd docker)
[ -z "$RESULTS" ] || RESULTS=$(readlink -f "$RESULTS")
[ "$(id -u)" -eq 0 ] || { echo "run.sh must run as root" >&2; exit 2; }

if [ -z "$RUNTIME" ]; then
    (cd "$REPO" && cargo build --release -p husk) || exit 1
    RUNTIME=${CARGO_TARGET_DIR:-$REPO/target}/$(rustc -vV | sed -n 's/^host: //p')/release/husk
fi
RUNTIME=$(readlink -f "$RUNTIME")
[ -x "$RUNTIME" ] || { echo "runtime $RUNTIME is not executable" >&2; exit 2; }

WORK=$(mktemp -d /tmp/husk-e2e.XXXXXX)
chmod 0755 "$WORK" # user-namespaced containers must reach the bundles below it
TAG=$(basename "$WORK" | cut -d. -f2 | tr '[:upper:]' '[:lower:]')
: >"$WORK/results"
. "$HERE/lib/common.sh"
. "$HERE/lib/images.sh"
. "$HERE/lib/podman.sh"
. "$HERE/lib/containerd.sh"
. "$HERE/lib/cri.sh"
. "$HERE/lib/docker.sh"

finish() {
    cd / || true
    run_cleanups
    [ -z "$RESULTS" ] || cp "$WORK/results" "$RESULTS"
    if [ "$KEEP" = 1 ]; then
        echo "work dir kept: $WORK" >&2
    else
        umount_under "$WORK"
        rm -rf "$WORK"
    fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# conmon drops files (e.g. "oom") in its caller's working directory: work inside $WORK.
cd "$WORK" || exit 1
export SHELL=/bin/bash # `script -c` runs its command with $SHELL; tty_cmd quotes for bash
echo "runtime: $RUNTIME ($("$RUNTIME" --version 2>/dev/null | head -1))"
echo "work dir: $WORK"

pkgs=(runc busybox-static util-linux jq)
dpkgs=()
for s in "${SUITES[@]}"; do
    case $s in
    podman) pkgs+=(podman conmon) ;;
    containerd) pkgs+=(containerd) ;;
    cri) pkgs+=(containerd containernetworking-plugins protobuf-compiler iproute2) ;;
    docker) dpkgs=(docker.io tini iproute2 util-linux) ;;
    esac
done
# As before the docker suite came: with recommended packages (Podman's catatonit, uidmap, ...).
HUSK_APT_RECOMMENDS=1 apt_install "${pkgs[@]}" || exit 1
# docker.io without its recommends (apparmor, needrestart, git: nothing the suite uses). When it
# cannot be installed without removing a package (docker-ce, say: exit 3, named above), the
# docker suite is skipped with that reason; any other failure stops the run.
if [ ${#dpkgs[@]} -gt 0 ]; then
    rc=0
    apt_install "${dpkgs[@]}" || rc=$?
    case $rc in
    0) ;;
    3)
        echo "SKIP docker: docker.io cannot be installed without removing a package (see above)"
        kept=()
        for s in "${SUITES[@]}"; do [ "$s" = docker ] || kept+=("$s"); done
        SUITES=("${kept[@]}")
        ;;
    *) exit 1 ;;
    esac
fi

IMG_DIR=$WORK/img
build_images "$IMG_DIR" || { echo "building the images failed" >&2; exit 1; }
# The runtime under the name `runc`: podman picks --log-format=json by the basename.
RT_DIR=$WORK/bin
mkdir -p "$RT_DIR"
ln -s "$RUNTIME" "$RT_DIR/runc"

TIMES=()
for s in "${SUITES[@]}"; do
    SUITE=$s
    echo "== $s"
    t0=$SECONDS
    "${s}_suite"
    run_cleanups
    TIMES+=("$s $((SECONDS - t0)) s")
done
echo "== times: $(IFS=,; echo "${TIMES[*]}")"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
