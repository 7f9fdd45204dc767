# containerd (ctr -> containerd -> containerd-shim-runc-v2 -> runtime) with the runtime under
# test as the shim's runc binary. A private containerd (own config, socket, root, state) and
# our own namespace, so that cgroups (/sys/fs/cgroup/*/<ns>) and runtime state are ours.

containerd_setup() {
    CD=$WORK/ctd
    NS=husk-e2e-$TAG-ctd
    ADDR=$CD/containerd.sock
    mkdir -p "$CD"/{root,state,opt,runc-root,fifo}
    cat >"$CD/config.toml" <<EOF
version = 2
root = "$CD/root"
state = "$CD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ADDR"
[ttrpc]
  address = "$ADDR.ttrpc"
[debug]
  address = "$CD/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CD/opt"
EOF
    # containerd 1.6 puts shim sockets under /run/containerd/s whatever its config says.
    CTD_RUN_EXISTED=0
    [ -d /run/containerd ] && CTD_RUN_EXISTED=1
    # ctr drops the container's runtime options (--runc-binary, --runc-root) when it sends task
    # options of its own (--uidmap does): the shim then runs `runc` from containerd's PATH with
    # root /run/containerd/runc/<ns>. Our `runc` symlink comes first so that it is still the
    # runtime under test.
    PATH="$RT_DIR:$PATH" containerd --config "$CD/config.toml" >"$CD/containerd.log" 2>&1 &
    CTD_PID=$!
    on_exit containerd_cleanup
    cat >"$CD/ctr" <<EOF
#!/bin/sh
exec ctr -a $ADDR -n $NS "\$@"
EOF
    chmod +x "$CD/ctr"
    C=("$CD/ctr")
    CTD_ROOTS=("$CD/runc-root/$NS" "/run/containerd/runc/$NS")
    RF=(--runc-binary "$RUNTIME" --runc-root "$CD/runc-root" --fifo-dir "$CD/fifo")
    # ctr's default spec has no /sys/fs/cgroup mount.
    CGMOUNT=(--mount 'type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro')
    if ! wait_for 20 "${C[@]}" version; then
        fail "containerd starts" "$(tail -5 "$CD/containerd.log")"
        return 1
    fi
    x "${C[@]}" images import "$IMG_DIR/busybox-oci.tar"
    [ "$RC" -eq 0 ] || { fail "ctr images import" "$OUT"; return 1; }
}

# cid NAME: prints the container id NAME and remembers it for cleanup (in a file, as it is
# mostly called in a command substitution).
cid() {
    printf '%s\n' "$1" >>"$CD/ids"
    printf '%s' "$1"
}

containerd_cleanup() {
    local id f sock pid ids
    ids=$( (cat "$CD/ids"; "${C[@]}" container ls -q) 2>/dev/null | sort -u)
    for id in $ids; do
        timeout 20 "${C[@]}" task kill -a -s KILL "$id"
        timeout 20 "${C[@]}" task delete -f "$id"
        timeout 20 "${C[@]}" container delete "$id"
    done
    # Shim sockets: recorded in each task's bundle, and derived from address/namespace/id.
    local socks=()
    for f in "$CD"/state/io.containerd.runtime.v2.task/"$NS"/*/address; do
        [ -f "$f" ] && socks+=("$(sed 's|^unix://||' "$f")")
    done
    for id in $ids; do
        socks+=("/run/containerd/s/$(printf '%s' "$ADDR/$NS/$id" | sha256sum | cut -d' ' -f1)")
    done
    kill "$CTD_PID" 2>/dev/null
    wait "$CTD_PID" 2>/dev/null
    # Shims of our containerd that outlived it (their command line names our socket).
    for pid in $(grep -l -F -- "$ADDR" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
        [ "$pid" != "$$" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q '^containerd-shim\|/containerd-shim' &&
            kill -9 "$pid"
    done
    local root
    for root in "${CTD_ROOTS[@]}"; do
        for id in $("$RUNTIME" --root "$root" list -q 2>/dev/null); do
            timeout 10 "$RUNTIME" --root "$root" delete --force "$id"
        done
    done
    rmdir "/run/containerd/runc/$NS" 2>/dev/null
    for sock in "${socks[@]}"; do
        case $sock in /run/containerd/s/*) rm -f "$sock" ;; esac
    done
    umount_under "$CD"
    rm_cgroups "$NS"
    if [ "$CTD_RUN_EXISTED" = 0 ]; then
        rmdir /run/containerd/s /run/containerd/fifo /run/containerd/runc /run/containerd 2>/dev/null
    fi
    return 0
}

# task_status ID: RUNNING, PAUSED, STOPPED, CREATED... (empty when there is no task).
task_status() { "${C[@]}" task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
task_pid() { "${C[@]}" task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'; }
is_status() { [ "$(task_status "$1")" = "$2" ]; }

# ctd_rm ID: removes the task and the container (quietly; used after each check).
ctd_rm() {
    x "${C[@]}" task kill -a -s KILL "$1"
    x "${C[@]}" task delete -f "$1"
    x "${C[@]}" container delete "$1"
}

containerd_basic() {
    expect "ctr run --rm echo" 0 '^hi$' "${C[@]}" run --rm "${RF[@]}" "$IMAGE_REF" "$(cid c-echo)" echo hi
    expect "ctr exit code 3" 3 '' "${C[@]}" run --rm "${RF[@]}" "$IMAGE_REF" "$(cid c-exit)" sh -c 'exit 3'
    local id
    id=$(cid c-missing)
    expect "ctr run missing binary fails" nz 'no such file or directory|not found' \
        "${C[@]}" run --rm "${RF[@]}" "$IMAGE_REF" "$id" /no/such/binary
    ctd_rm "$id"
    expect "ctr run stdin" 0 '^hello$' sh -c 'echo hello | "$@"' _ "${C[@]}" run --rm "${RF[@]}" \
        "$IMAGE_REF" "$(cid c-stdin)" head -n1
    expect "ctr run env/cwd/read-only" 0 '^bar /tmp ro$' "${C[@]}" run --rm "${RF[@]}" --env FOO=bar \
        --cwd /tmp --read-only "$IMAGE_REF" "$(cid c-env)" sh -c 'echo $FOO $(pwd) $(touch /x 2>/dev/null || echo ro)'
    expect "ctr run --memory-limit/--cpus" 0 '^67108864 50000 100000$' "${C[@]}" run --rm "${RF[@]}" \
        "${CGMOUNT[@]}" --memory-limit 67108864 --cpus 0.5 "$IMAGE_REF" "$(cid c-limits)" sh -c \
        'echo $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us)'
    mkdir -p "$WORK/ctr-vol"
    expect_file "ctr run --mount bind" "$WORK/ctr-vol/f" written 0 '^written$' "${C[@]}" run --rm \
        "${RF[@]}" --mount "type=bind,src=$WORK/ctr-vol,dst=/data,options=rbind:rw" "$IMAGE_REF" \
        "$(cid c-bind)" sh -c 'echo written >/data/f && cat /data/f'
    expect "ctr run --privileged" 0 '^dev-ok$' "${C[@]}" run --rm "${RF[@]}" --privileged "$IMAGE_REF" \
        "$(cid c-priv)" sh -c 'test -c /dev/kmsg && grep -q "CapEff:.*[1-9a-f]" /proc/self/status && echo dev-ok'
    # containerd's default set (0xa80425fb) without CHOWN, with SYS_ADMIN.
    expect "ctr run --cap-drop/--cap-add" 0 '^CapEff:[[:space:]]+00000000a82425fa$' "${C[@]}" run --rm \
        "${RF[@]}" --cap-drop CAP_CHOWN --cap-add CAP_SYS_ADMIN "$IMAGE_REF" "$(cid c-caps)" \
        grep CapEff /proc/self/status
    # Without a profile a user namespace can be made; the default profile denies unshare.
    local probe='unshare -U true 2>/dev/null && echo allowed || echo denied'
    expect "ctr run --seccomp (default profile)" 0 '^allowed denied$' sh -c '
        img=$1 a=$2 b=$3 probe=$4
        shift 4
        echo $("$@" "$img" "$a" sh -c "$probe") $("$@" --seccomp "$img" "$b" sh -c "$probe")' \
        _ "$IMAGE_REF" "$(cid c-noseccomp)" "$(cid c-seccomp)" "$probe" "${C[@]}" run --rm "${RF[@]}"
    expect "ctr run --uidmap (user namespace)" 0 '^0 100000 65536 0$' "${C[@]}" run --rm "${RF[@]}" \
        --uidmap 0:100000:65536 --gidmap 0:100000:65536 "$IMAGE_REF" "$(cid c-userns)" \
        sh -c 'echo $(cat /proc/self/uid_map) $(stat -c %u /bin/busybox)'
    expect "ctr OOM kill (exit 137)" 137 '' "${C[@]}" run --rm "${RF[@]}" --memory-limit 33554432 \
        "$IMAGE_REF" "$(cid c-oom)" tail /dev/zero

    local out=$WORK/ctr-tty.out
    id=$(cid c-tty)
    x script -qec "$(tty_cmd "${C[@]}" run --rm -t "${RF[@]}" "$IMAGE_REF" "$id" \
        sh -c 'tty; echo tty-ok; sleep 0.5')" "$out"
    if [ "$RC" -eq 0 ] && grep -q '/dev/pts/0' "$out" && grep -q 'tty-ok' "$out"; then
        pass "ctr run -t"
    else
        fail "ctr run -t" "exit $RC; output: $(cat "$out" 2>/dev/null)"
    fi
    ctd_rm "$id"
}

containerd_detached() {
    local c WHY=
    c=$(cid c-detached)
    if step "${C[@]}" run -d "${RF[@]}" "$IMAGE_REF" "$c" \
        sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done' && wait_for 10 is_status "$c" RUNNING; then
        pass "ctr run -d"
    else
        fail "ctr run -d" "${WHY:-task status is '$(task_status "$c")'}"
        ctd_rm "$c"
        return
    fi
    local pid
    pid=$(task_pid "$c")
    expect "ctr task exec" 0 '^hi$' "${C[@]}" task exec --fifo-dir "$CD/fifo" --exec-id e1 "$c" echo hi
    expect "ctr task exec exit code 4" 4 '' "${C[@]}" task exec --fifo-dir "$CD/fifo" --exec-id e2 "$c" \
        sh -c 'exit 4'
    expect "ctr task exec --user 1000:1000 --cwd" 0 '^1000 1000 /tmp$' "${C[@]}" task exec \
        --fifo-dir "$CD/fifo" --exec-id e3 --user 1000:1000 --cwd /tmp "$c" \
        sh -c 'echo $(id -u) $(id -g) $(pwd)'
    local out=$WORK/ctr-exec-tty.out
    x script -qec "$(tty_cmd "${C[@]}" task exec -t --fifo-dir "$CD/fifo" --exec-id e4 "$c" \
        sh -c 'tty; echo tty-ok; sleep 0.5')" "$out"
    if [ "$RC" -eq 0 ] && grep -q '/dev/pts/' "$out" && grep -q 'tty-ok' "$out"; then
        pass "ctr task exec -t"
    else
        fail "ctr task exec -t" "exit $RC; output: $(cat "$out" 2>/dev/null)"
    fi
    expect "ctr task ps" 0 "^$pid([[:space:]]|$)" "${C[@]}" task ps "$c"
    expect "ctr task metrics" 0 'memory' "${C[@]}" task metrics "$c"

    WHY=
    if step "${C[@]}" task pause "$c" && out_is PAUSED task_status "$c" &&
        step "${C[@]}" task resume "$c" && out_is RUNNING task_status "$c" &&
        out_is after "${C[@]}" task exec --fifo-dir "$CD/fifo" --exec-id e5 "$c" echo after; then
        pass "ctr task pause/resume"
    else
        fail "ctr task pause/resume" "$WHY"
        x "${C[@]}" task resume "$c"
    fi

    # Another task joins this one's network namespace (the ctr analogue of container:X).
    local b
    b=$(cid c-joiner)
    x "${C[@]}" run --rm "${RF[@]}" --with-ns "network:/proc/$pid/ns/net" "$IMAGE_REF" "$b" \
        readlink /proc/self/ns/net
    local want
    want=$(readlink "/proc/$pid/ns/net" 2>/dev/null)
    if [ "$RC" -eq 0 ] && [ "$(printf '%s' "$OUT" | tr -d '\r')" = "$want" ] && [ -n "$want" ]; then
        pass "ctr run --with-ns network"
    else
        fail "ctr run --with-ns network" "exit $RC, joined '$OUT', wanted '$want'"
    fi

    WHY=
    if step "${C[@]}" task kill "$c" && wait_for 10 is_status "$c" STOPPED; then
        pass "ctr task kill (SIGTERM)"
    else
        fail "ctr task kill (SIGTERM)" "${WHY:-task status is '$(task_status "$c")' 10 s after SIGTERM}"
    fi
    WHY=
    if step "${C[@]}" task delete "$c" && step "${C[@]}" container delete "$c" &&
        [ -z "$(task_status "$c")" ]; then
        pass "ctr task delete"
    else
        fail "ctr task delete" "${WHY:-task still listed}"
    fi
    ctd_rm "$c"
}

containerd_kill_all() {
    local c WHY=
    c=$(cid c-killall)
    if step "${C[@]}" run -d "${RF[@]}" "$IMAGE_REF" "$c" sh -c 'sleep 300 & sleep 300 & wait' &&
        wait_for 10 is_status "$c" RUNNING && step "${C[@]}" task kill -a -s KILL "$c" &&
        wait_for 10 is_status "$c" STOPPED; then
        pass "ctr task kill --all"
    else
        fail "ctr task kill --all" "${WHY:-task status is '$(task_status "$c")'}"
    fi
    ctd_rm "$c"
}

# A whole spec given with --config (ctr then takes no image: the spec names the rootfs
# directory itself): args, user, cwd, env, hostname, mounts, rlimits, resources, read-only root.
containerd_config() {
    local c spec=$WORK/ctr-config.json
    c=$(cid c-config)
    "${C[@]}" oci spec 2>/dev/null | jq --arg cg "/$NS/$c" --arg root "$IMG_DIR/rootfs" '
        .process.args = ["sh", "-c", "echo $(id -u) $(id -g) $(id -G) $(pwd) $FOO $(hostname) $(awk \"\\$2==\\\"/scratch\\\" {print \\$3}\" /proc/mounts) $(ulimit -n) $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max) $(touch /x 2>/dev/null || echo ro)"]
        | .process.user = {uid: 1000, gid: 1000, additionalGids: [1000, 65534]}
        | .process.cwd = "/tmp"
        | .process.env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FOO=from-config"]
        | .process.rlimits = [{type: "RLIMIT_NOFILE", hard: 4096, soft: 4096}]
        | .root = {path: $root, readonly: true}
        | .hostname = "cfg-host"
        | .linux.namespaces += [{type: "uts"}] | .linux.namespaces |= unique_by(.type)
        | .mounts += [{destination: "/scratch", type: "tmpfs", source: "tmpfs",
                       options: ["nosuid", "nodev", "size=1m"]},
                      {destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup",
                       options: ["ro", "nosuid", "noexec", "nodev"]}]
        | .linux.resources.memory = {limit: 41943040}
        | .linux.resources.pids = {limit: 40}
        | .linux.cgroupsPath = $cg' >"$spec"
    if [ ! -s "$spec" ]; then
        fail "ctr run --config" "could not build the spec with ctr oci spec | jq"
        return
    fi
    expect "ctr run --config (full spec)" 0 \
        '^1000 1000 1000 65534 /tmp from-config cfg-host tmpfs 4096 41943040 40 ro$' \
        "${C[@]}" run --rm "${RF[@]}" --config "$spec" "$c"
    ctd_rm "$c"
}

# After every task was deleted: no container left in the runtime's state (under our runc root,
# or the shim's default root for tasks run without our options), no container cgroup.
containerd_leftovers() {
    local root out left=''
    for root in "${CTD_ROOTS[@]}"; do
        [ -d "$root" ] || continue
        x "$RUNTIME" --root "$root" list -q
        out=$(printf '%s' "$OUT" | grep -v '^$' | tr '\n' ' ')
        [ "$RC" -eq 0 ] || out="(list exited $RC: $OUT)"
        [ -z "$out" ] || left="$left $root: $out"
    done
    [ -z "$left" ] && pass "ctr leaves no runtime state" || fail "ctr leaves no runtime state" "$left"
    left=$(find /sys/fs/cgroup/*/"$NS" -mindepth 1 -type d 2>/dev/null | head -3)
    [ -z "$left" ] && pass "ctr leaves no container cgroup" ||
        fail "ctr leaves no container cgroup" "left: $left"
}

containerd_suite() {
    containerd_setup || return
    containerd_basic
    containerd_detached
    containerd_kill_all
    containerd_config
    containerd_leftovers
}
