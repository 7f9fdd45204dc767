#!/bin/bash
# bench/drivers.sh BUNDLE NAME=CMD... : the systemd cgroup driver's cost. Runs `CMD run --bundle
# BUNDLE ID` (a /bin/true container, run in the foreground: create, start, wait, delete) for
# every NAME=CMD in turn, interleaved, BENCH_ITERS rounds (default 40) after 3 warmup rounds,
# and prints per variant the median and p90 wall time (fork to wait, ms) and the peak RSS of the
# runtime process (/usr/bin/time). CMD is split on spaces, e.g.
#   husk=/path/husk  husk-systemd="/path/husk --systemd-cgroup"  husk-base=/old/husk
# `make bench-systemd` runs it in the systemd VM (tests/vm/systemd), where both drivers work.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
BUNDLE=$(readlink -f "$1")
shift
ITERS=${BENCH_ITERS:-40}
WARM=3
OUT=$(mktemp -d /tmp/husk-drivers.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
names=()
declare -A cmd
for v in "$@"; do
    names+=("${v%%=*}")
    cmd[${v%%=*}]=${v#*=}
done
# one NAME ROUND: one timed run; appends "ms rss_kib" to $OUT/NAME.
one() {
    local name=$1 id="drv-$1-$2-$$" keep=$3 t0 t1 rss
    # shellcheck disable=SC2086 # CMD is words on purpose
    set -- ${cmd[$name]}
    t0=$(date +%s%N)
    /usr/bin/time -f %M -o "$OUT/rss" "$@" --root "/run/husk-drivers/$name" run --bundle "$BUNDLE" "$id" \
        </dev/null >/dev/null 2>"$OUT/err" || { echo "$name: run failed: $(cat "$OUT/err")" >&2; exit 1; }
    t1=$(date +%s%N)
    rss=$(tail -n1 "$OUT/rss")
    [ "$keep" = keep ] && echo "$(((t1 - t0) / 1000)) $rss" >>"$OUT/$name"
    return 0
}
for ((r = 0; r < WARM + ITERS; r++)); do
    for n in "${names[@]}"; do
        sleep 0.05 # the same idle gap as bench/ (see bench/README.md, "Why the gap")
        if [ $r -ge $WARM ]; then one "$n" "$r" keep; else one "$n" "$r" warm; fi
    done
done
printf '%-16s %12s %12s %14s\n' variant "median ms" "p90 ms" "peak RSS KiB"
for n in "${names[@]}"; do
    sort -n "$OUT/$n" | awk -v n="$n" '{ t[NR] = $1; if ($2 > m) m = $2 }
        END { printf "%-16s %12.2f %12.2f %14d\n", n, t[int((NR + 1) / 2)] / 1000, t[int(NR * 0.9 + 0.999)] / 1000, m }'
done
rm -rf /run/husk-drivers
