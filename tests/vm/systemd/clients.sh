#!/bin/bash
# tests/vm/systemd/clients.sh RUNTIME - Podman (--cgroup-manager=systemd) and containerd (the
# runc v2 shim with SystemdCgroup, i.e. `ctr run --runc-systemd-cgroup`) driving RUNTIME under a
# real systemd: each container is a systemd scope, its limits are unit properties, and nothing
# of it is left afterwards. Run in the systemd VM by run.sh (after tests/tests/systemd.rs), with
# the e2e helpers of integration/lib (pass/fail/expect, the offline busybox images).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIB=$(cd "$HERE/../../../integration/lib" && pwd)
RUNTIME=$(readlink -f "${1:?usage: clients.sh RUNTIME}")
WORK=$(mktemp -d /tmp/husk-sd-e2e.XXXXXX)
chmod 0755 "$WORK"
: >"$WORK/results"
. "$LIB/common.sh"
. "$LIB/images.sh"
trap 'run_cleanups; umount_under "$WORK"; [ "$FAILED" -eq 0 ] || tail -n 60 "$WORK/commands.log" >&2; rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

# show UNIT PROP: the unit's property value.
show() { systemctl show -p "$2" --value "$1"; }
gone() { [ "$(show "$1" LoadState)" != loaded ] || [ "$(show "$1" ActiveState)" = inactive ]; }
# The memory limit's unit property: MemoryMax on cgroup v2, the legacy MemoryLimit on a
# v1/hybrid host (what runc's legacy driver and husk's set there).
MEM=MemoryMax
[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] || MEM=MemoryLimit

IMG=$WORK/img
build_images "$IMG" || { echo "building the images failed" >&2; exit 1; }
RT_DIR=$WORK/bin
mkdir -p "$RT_DIR"
ln -s "$RUNTIME" "$RT_DIR/runc" # podman picks --log-format=json by the basename

podman_systemd() {
    SUITE=podman-systemd
    local PD=$WORK/podman id unit WHY=
    mkdir -p "$PD"/{root,runroot,tmp}
    printf '[containers]\ndefault_ulimits = ["nofile=20000:20000"]\n[engine]\ncgroup_manager = "systemd"\nevents_logger = "file"\n' >"$PD/containers.conf"
    export CONTAINERS_CONF=$PD/containers.conf
    local P=(podman --root "$PD/root" --runroot "$PD/runroot" --tmpdir "$PD/tmp"
        --cgroup-manager=systemd --events-backend=file --runtime "$RT_DIR/runc")
    on_exit "${P[*]} rm -af -t 0; ${P[*]} rmi -af; umount_under $PD"
    x "${P[@]}" import --change 'CMD ["sh"]' "$IMG/rootfs.tar" "$IMAGE_REF"
    [ "$RC" -eq 0 ] || { fail "podman import" "$OUT"; return 1; }
    expect "podman run --rm echo" 0 '^hi$' "${P[@]}" run --network none --rm "$IMAGE_REF" echo hi
    expect "podman exit code 3" 3 '' "${P[@]}" run --network none --rm "$IMAGE_REF" sh -c 'exit 3'
    expect "podman container in a libpod scope of machine.slice" 0 \
        '^0::/machine\.slice/libpod-[0-9a-f]{64}\.scope' \
        "${P[@]}" run --network none --rm --cgroupns host "$IMAGE_REF" cat /proc/self/cgroup
    x "${P[@]}" run -d --network none --memory 64m --pids-limit 40 "$IMAGE_REF" sleep 1000
    id=$(printf '%s' "$OUT" | tail -n1)
    unit=libpod-$id.scope
    if [ "$RC" -ne 0 ]; then
        fail "podman run -d --memory --pids-limit" "$OUT"
        return 1
    fi
    if [ "$(show "$unit" ActiveState)" = active ] && [ "$(show "$unit" "$MEM")" = 67108864 ] &&
        [ "$(show "$unit" TasksMax)" = 40 ]; then
        pass "podman limits are the scope's properties"
    else
        fail "podman limits are the scope's properties" \
            "$unit: $(systemctl show -p ActiveState -p "$MEM" -p TasksMax "$unit" | tr '\n' ' ')"
    fi
    expect "podman exec" 0 '^ok$' "${P[@]}" exec "$id" echo ok
    WHY=
    if step "${P[@]}" pause "$id" && out_is paused "${P[@]}" inspect -f '{{.State.Status}}' "$id" &&
        step "${P[@]}" unpause "$id" && out_is running "${P[@]}" inspect -f '{{.State.Status}}' "$id"; then
        pass "podman pause/unpause"
    else fail "podman pause/unpause" "$WHY"; fi
    expect "podman top" 0 'sleep' "${P[@]}" top "$id"
    WHY=
    if step "${P[@]}" update --memory 128m --cpus 0.5 "$id" &&
        [ "$(show "$unit" "$MEM")" = 134217728 ] && [ "$(show "$unit" CPUQuotaPerSecUSec)" = 500ms ]; then
        pass "podman update sets the scope's properties"
    else
        fail "podman update sets the scope's properties" \
            "${WHY:-$(systemctl show -p "$MEM" -p CPUQuotaPerSecUSec "$unit" | tr '\n' ' ')}"
    fi
    WHY=
    if step "${P[@]}" rm -f -t 0 "$id" && gone "$unit"; then
        pass "podman rm leaves no scope"
    else fail "podman rm leaves no scope" "${WHY:-$unit: $(show "$unit" ActiveState)}"; fi
}

containerd_systemd() {
    SUITE=containerd-systemd
    local CD=$WORK/ctd NS=husk-sd-e2e ADDR id unit WHY=
    ADDR=$CD/containerd.sock
    mkdir -p "$CD"/{root,state,runc-root}
    cat >"$CD/config.toml" <<CONF
version = 2
root = "$CD/root"
state = "$CD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ADDR"
[ttrpc]
  address = "$ADDR.ttrpc"
CONF
    PATH="$RT_DIR:$PATH" containerd --config "$CD/config.toml" >"$CD/containerd.log" 2>&1 &
    local pid=$!
    local C=(ctr -a "$ADDR" -n "$NS")
    on_exit "kill $pid; wait $pid; umount_under $CD"
    wait_for 30 "${C[@]}" version || { fail "containerd starts" "$(tail -5 "$CD/containerd.log")"; return 1; }
    x "${C[@]}" images import "$IMG/busybox-oci.tar"
    [ "$RC" -eq 0 ] || { fail "ctr images import" "$OUT"; return 1; }
    local RF=(--runc-binary "$RUNTIME" --runc-root "$CD/runc-root" --runc-systemd-cgroup)
    id=ctd1
    unit=husk-ctr-$id.scope
    expect "ctr run --rm (systemd cgroup)" 0 '^0::/system\.slice/husk-ctr-ctd1\.scope$' \
        "${C[@]}" run --rm "${RF[@]}" --cgroup "system.slice:husk-ctr:$id" "$IMAGE_REF" "$id" \
        cat /proc/self/cgroup
    if gone "$unit"; then pass "ctr run --rm leaves no scope"; else fail "ctr run --rm leaves no scope" "$(show "$unit" ActiveState)"; fi
    id=ctd2
    unit=husk-ctr-$id.scope
    x "${C[@]}" run -d "${RF[@]}" --memory-limit 67108864 --cgroup "system.slice:husk-ctr:$id" \
        "$IMAGE_REF" "$id" sleep 1000
    if [ "$RC" -ne 0 ]; then fail "ctr run -d (systemd cgroup)" "$OUT"; return 1; fi
    on_exit "${C[*]} task kill -a -s KILL $id; ${C[*]} task delete -f $id; ${C[*]} container delete $id"
    if [ "$(show "$unit" ActiveState)" = active ] && [ "$(show "$unit" "$MEM")" = 67108864 ]; then
        pass "ctr limits are the scope's properties"
    else
        fail "ctr limits are the scope's properties" "$(systemctl show -p ActiveState -p "$MEM" "$unit" | tr '\n' ' ')"
    fi
    expect "ctr task exec" 0 '^ok$' "${C[@]}" task exec --exec-id e1 "$id" echo ok
    WHY=
    if step "${C[@]}" task pause "$id" && step "${C[@]}" task resume "$id"; then
        pass "ctr task pause/resume"
    else fail "ctr task pause/resume" "$WHY"; fi
    expect "ctr task metrics" 0 'memory' "${C[@]}" task metrics "$id"
    WHY=
    if step "${C[@]}" task kill -s KILL "$id" && wait_for 20 sh -c "! ${C[*]} task ls | grep -q '^$id .*RUNNING'" &&
        step "${C[@]}" task delete "$id" && step "${C[@]}" container delete "$id" && gone "$unit"; then
        pass "ctr task delete leaves no scope"
    else fail "ctr task delete leaves no scope" "${WHY:-$unit: $(show "$unit" ActiveState)}"; fi
}

t0=$SECONDS
podman_systemd
run_cleanups
t1=$SECONDS
containerd_systemd
run_cleanups
echo "== clients: podman $((t1 - t0)) s, containerd $((SECONDS - t1)) s; $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
