# Podman (via conmon) driving the runtime under test. Private storage, runroot, tmpdir and
# containers.conf; every container sits under our own cgroup parent.

podman_setup() {
    PD=$WORK/podman
    mkdir -p "$PD"/{root,runroot,tmp}
    # No CAP_SYS_RESOURCE on some hosts: podman's default rlimits would fail in any runtime.
    cat >"$PD/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    CGP=husk-e2e-$TAG-podman
    # The runtime is installed as .../runc so that podman passes --log-format=json --log.
    # A wrapper with our private flags, so that checks (and a human with --keep) can call it.
    cat >"$PD/podman" <<EOF
#!/bin/sh
export CONTAINERS_CONF=$PD/containers.conf
exec podman --root $PD/root --runroot $PD/runroot --tmpdir $PD/tmp \\
    --cgroup-manager=cgroupfs --events-backend=file --runtime $RT_DIR/runc "\$@"
EOF
    chmod +x "$PD/podman"
    P=("$PD/podman")
    RUN=(run --network none --cgroup-parent "/$CGP")
    on_exit podman_cleanup
    x "${P[@]}" import --change 'CMD ["sh"]' "$IMG_DIR/rootfs.tar" "$IMAGE_REF"
    [ "$RC" -eq 0 ] || { fail "podman import" "$OUT"; return 1; }
}

podman_cleanup() {
    local id
    for id in $("${P[@]}" ps -aq --no-trunc 2>/dev/null); do
        timeout 30 "${P[@]}" rm -f -t 0 "$id" ||
            timeout 10 "$RUNTIME" delete --force "$id"
    done
    timeout 60 "${P[@]}" rmi -af
    umount_under "$PD"
    rm_cgroups "$CGP"
}


# state_of NAME: the container's status (running, paused, exited...).
state_of() { "${P[@]}" inspect --format '{{.State.Status}}' "$1" 2>/dev/null; }
is_state() { [ "$(state_of "$1")" = "$2" ]; }


podman_basic() {
    expect "podman run --rm echo" 0 '^hi$' "${P[@]}" "${RUN[@]}" --rm "$IMAGE_REF" echo hi
    expect "podman exit code 3" 3 '' "${P[@]}" "${RUN[@]}" --rm "$IMAGE_REF" sh -c 'exit 3'
    expect "podman exit code 127 (missing binary)" 127 'no such file or directory|not found' \
        "${P[@]}" "${RUN[@]}" --rm "$IMAGE_REF" /no/such/binary
    expect "podman exit code 126 (not executable)" 126 'permission denied' \
        "${P[@]}" "${RUN[@]}" --rm "$IMAGE_REF" /etc/passwd
    expect "podman run -i (stdin)" 0 '^hello$' \
        sh -c 'echo hello | "$@"' _ "${P[@]}" "${RUN[@]}" --rm -i "$IMAGE_REF" cat
    expect "podman run --user 1000:1000" 0 '^1000 1000$' \
        "${P[@]}" "${RUN[@]}" --rm --user 1000:1000 "$IMAGE_REF" sh -c 'echo $(id -u) $(id -g)'
    expect "podman run env/workdir/hostname" 0 '^bar /tmp h1$' \
        "${P[@]}" "${RUN[@]}" --rm -e FOO=bar -w /tmp --hostname h1 "$IMAGE_REF" \
        sh -c 'echo $FOO $(pwd) $(hostname)'
    expect "podman run --read-only" 0 '^ro$' \
        "${P[@]}" "${RUN[@]}" --rm --read-only "$IMAGE_REF" sh -c 'touch /x 2>/dev/null || echo ro'
    expect "podman run --cap-drop ALL" 0 '^CapEff:[[:space:]]+0+$' \
        "${P[@]}" "${RUN[@]}" --rm --cap-drop ALL "$IMAGE_REF" grep CapEff /proc/self/status
    expect "podman run --privileged" 0 '^dev-ok$' "${P[@]}" "${RUN[@]}" --rm --privileged "$IMAGE_REF" \
        sh -c 'test -c /dev/kmsg && grep -q "CapEff:.*[1-9a-f]" /proc/self/status && echo dev-ok'

    mkdir -p "$WORK/vol"
    expect_file "podman run -v (bind mount)" "$WORK/vol/f" written 0 '^written$' "${P[@]}" "${RUN[@]}" \
        --rm -v "$WORK/vol:/data" "$IMAGE_REF" sh -c 'echo written >/data/f && cat /data/f'
    expect "podman run --tmpfs" 0 '^tmpfs$' "${P[@]}" "${RUN[@]}" --rm --tmpfs /scratch:size=1m \
        "$IMAGE_REF" awk '$2 == "/scratch" { print $3 }' /proc/mounts
    # Any --ulimit replaces default_ulimits: repeat nproc, which podman cannot raise here.
    expect "podman run --ulimit" 0 '^1234$' "${P[@]}" "${RUN[@]}" --rm --ulimit nofile=1234:1234 \
        --ulimit nproc=32768:32768 "$IMAGE_REF" sh -c 'ulimit -n'
    expect "podman run --sysctl" 0 '^1$' "${P[@]}" "${RUN[@]}" --rm --sysctl net.ipv4.ip_forward=1 \
        "$IMAGE_REF" cat /proc/sys/net/ipv4/ip_forward
    printf 'fd3-data\n' >"$WORK/fd3"
    expect "podman run --preserve-fds 1" 0 '^fd3-data$' sh -c 'exec 3<"$1"; shift; "$@"' _ "$WORK/fd3" \
        "${P[@]}" "${RUN[@]}" --rm --preserve-fds 1 "$IMAGE_REF" sh -c 'cat <&3'
    expect "podman run --uidmap (user namespace)" 0 '^0 100000 65536 0$' "${P[@]}" "${RUN[@]}" --rm \
        --uidmap 0:100000:65536 --gidmap 0:100000:65536 "$IMAGE_REF" \
        sh -c 'echo $(cat /proc/self/uid_map) $(stat -c %u /bin/busybox)'
}

# With the host's pid namespace podman stops with `kill --all ID 15`.
podman_pid_host() {
    local c=podman-pidhost-$TAG WHY=
    if step "${P[@]}" "${RUN[@]}" -d --pid host --name "$c" "$IMAGE_REF" sleep 300 &&
        wait_for 10 is_state "$c" running && step "${P[@]}" stop -t 5 "$c" &&
        out_is 143 "${P[@]}" inspect --format '{{.State.ExitCode}}' "$c"; then
        pass "podman --pid host stop (kill --all)"
    else
        fail "podman --pid host stop (kill --all)" "${WHY:-state is $(state_of "$c")}"
    fi
    x "${P[@]}" rm -f -t 0 "$c"
}

podman_killed() {
    local name=podman-killed-$TAG WHY=
    if step "${P[@]}" "${RUN[@]}" -d --name "$name" "$IMAGE_REF" sleep 300 &&
        step "${P[@]}" kill "$name" && out_is 137 "${P[@]}" wait "$name"; then
        pass "podman exit code 137 (killed)"
    else
        fail "podman exit code 137 (killed)" "$WHY"
    fi
    x "${P[@]}" rm -f -t 0 "$name"
}

podman_detached() {
    local c=podman-d-$TAG WHY=
    # Exits 0 on SIGTERM so that `stop` need not escalate.
    if step "${P[@]}" "${RUN[@]}" -d --name "$c" "$IMAGE_REF" \
        sh -c 'echo started; trap "exit 0" TERM; while :; do sleep 0.2; done' &&
        wait_for 10 is_state "$c" running; then
        pass "podman run -d"
    else
        fail "podman run -d" "${WHY:-state is $(state_of "$c")}"
        x "${P[@]}" rm -f -t 0 "$c"
        return
    fi
    expect "podman logs" 0 '^started$' "${P[@]}" logs "$c"
    expect "podman exec" 0 '^hi$' "${P[@]}" exec "$c" echo hi
    expect "podman exec exit code 5" 5 '' "${P[@]}" exec "$c" sh -c 'exit 5'
    expect "podman exec missing binary 127" 127 '' "${P[@]}" exec "$c" /no/such/binary
    expect "podman exec -u 1000:1000 -e -w" 0 '^1000 v /tmp$' \
        "${P[@]}" exec -u 1000:1000 -e V=v -w /tmp "$c" sh -c 'echo $(id -u) $V $(pwd)'
    expect "podman exec -i (stdin)" 0 '^piped$' sh -c 'echo piped | "$@"' _ "${P[@]}" exec -i "$c" cat
    expect "podman top" 0 'sleep|sh -c' "${P[@]}" top "$c"
    x script -qec "$(tty_cmd "${P[@]}" exec -it "$c" sh -c 'tty; echo tty-ok; sleep 0.5')" \
        "$WORK/exec-tty.out"
    if [ "$RC" -eq 0 ] && grep -q 'tty-ok' "$WORK/exec-tty.out" && grep -q '/dev/pts/' "$WORK/exec-tty.out"; then
        pass "podman exec -it"
    else
        fail "podman exec -it" "exit $RC; output: $(cat "$WORK/exec-tty.out" 2>/dev/null)"
    fi

    WHY=
    if step "${P[@]}" pause "$c" && out_is paused state_of "$c" &&
        step "${P[@]}" unpause "$c" && out_is running state_of "$c" && out_is after "${P[@]}" exec "$c" echo after; then
        pass "podman pause/unpause"
    else
        fail "podman pause/unpause" "$WHY"
        x "${P[@]}" unpause "$c"
    fi

    WHY=
    if step "${P[@]}" update --memory 128m "$c" &&
        out_is 134217728 "${P[@]}" exec "$c" cat /sys/fs/cgroup/memory/memory.limit_in_bytes; then
        pass "podman update --memory"
    else
        fail "podman update --memory" "$WHY"
    fi

    WHY=
    if step "${P[@]}" restart -t 5 "$c" && wait_for 10 is_state "$c" running &&
        out_is again "${P[@]}" exec "$c" echo again; then
        pass "podman restart"
    else
        fail "podman restart" "${WHY:-state is $(state_of "$c")}"
    fi

    WHY=
    local t0=$SECONDS
    if step "${P[@]}" stop -t 10 "$c" && out_is 0 "${P[@]}" inspect --format '{{.State.ExitCode}}' "$c"; then
        if [ $((SECONDS - t0)) -le 5 ]; then
            pass "podman stop (SIGTERM)"
        else
            fail "podman stop (SIGTERM)" "took $((SECONDS - t0)) s: SIGTERM did not reach the trap"
        fi
    else
        fail "podman stop (SIGTERM)" "$WHY"
    fi
    WHY=
    if step "${P[@]}" rm "$c" && ! "${P[@]}" container exists "$c"; then
        pass "podman rm"
    else
        fail "podman rm" "${WHY:-container still exists}"
        x "${P[@]}" rm -f -t 0 "$c"
    fi
}

podman_tty() {
    local out=$WORK/run-tty.out
    # conmon may drop the last pty output of a process that exits at once: sleep before exiting.
    x script -qec "$(tty_cmd "${P[@]}" "${RUN[@]}" --rm -it "$IMAGE_REF" \
        sh -c 'tty; stty size; echo tty-ok; sleep 0.5')" "$out"
    if [ "$RC" -eq 0 ] && grep -q '/dev/pts/0' "$out" && grep -q 'tty-ok' "$out"; then
        pass "podman run -it"
    else
        fail "podman run -it" "exit $RC; output: $(cat "$out" 2>/dev/null)"
    fi
}

podman_limits() {
    x "${P[@]}" "${RUN[@]}" --rm --memory 64m --pids-limit 50 --cpus 0.5 "$IMAGE_REF" sh -c \
        'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us'
    local v
    v=$(printf '%s\n' "$OUT" | tr -d '\r' | tr '\n' ' ')
    if [ "$RC" -ne 0 ]; then
        fail "podman --memory 64m" "exit $RC: $OUT"
        fail "podman --pids-limit 50" "exit $RC: $OUT"
        fail "podman --cpus 0.5" "exit $RC: $OUT"
        return
    fi
    set -- $v
    [ "${1:-}" = 67108864 ] && pass "podman --memory 64m" ||
        fail "podman --memory 64m" "memory.limit_in_bytes is '${1:-}'"
    [ "${2:-}" = 50 ] && pass "podman --pids-limit 50" ||
        fail "podman --pids-limit 50" "pids.max is '${2:-}'"
    [ "${3:-}" = 50000 ] && [ "${4:-}" = 100000 ] && pass "podman --cpus 0.5" ||
        fail "podman --cpus 0.5" "cfs quota/period are '${3:-}'/'${4:-}'"
}

podman_oom() {
    local c=podman-oom-$TAG d=$WORK/oom-cwd
    # conmon 2.1.6 notices a v1 OOM kill via memory.oom_control of the container's cgroup and
    # creates a file named "oom" in its working directory (the caller's cwd, not the bundle,
    # so podman 4.3 does not see it here and OOMKilled stays false): run from a fresh dir.
    mkdir -p "$d"
    # busybox tail keeps a line that never ends in memory: it grows until the OOM killer comes.
    (cd "$d" && x "${P[@]}" "${RUN[@]}" --name "$c" --memory 32m --memory-swap 32m "$IMAGE_REF" \
        tail /dev/zero && printf '%s\n' "$RC" >"$d/rc")
    local rc st
    rc=$(cat "$d/rc" 2>/dev/null)
    st=$("${P[@]}" inspect --format '{{.State.OOMKilled}} {{.State.ExitCode}}' "$c" 2>&1)
    if [ "$rc" = 137 ] && { [ "$st" = "true 137" ] || [ -e "$d/oom" ]; }; then
        pass "podman OOM kill reported"
    else
        fail "podman OOM kill reported" "run exited $rc, inspect OOMKilled/ExitCode: $st, conmon oom file: $([ -e "$d/oom" ] && echo yes || echo no)"
    fi
    x "${P[@]}" rm -f -t 0 "$c"
}

podman_netns() {
    local a=podman-neta-$TAG b WHY=
    if step "${P[@]}" "${RUN[@]}" -d --name "$a" "$IMAGE_REF" sleep 300 &&
        step "${P[@]}" exec "$a" readlink /proc/self/ns/net; then
        local ns_a host_ns
        ns_a=$(printf '%s' "$OUT" | tr -d '\r')
        host_ns=$(readlink /proc/self/ns/net)
        # The joining container: podman's flag replaces our --network none.
        if step "${P[@]}" run --rm --cgroup-parent "/$CGP" --network "container:$a" "$IMAGE_REF" \
            readlink /proc/self/ns/net; then
            b=$(printf '%s' "$OUT" | tr -d '\r')
            if [ "$b" = "$ns_a" ] && [ "$b" != "$host_ns" ]; then
                pass "podman --network container:X"
            else
                fail "podman --network container:X" "joined netns $b, X has $ns_a, host $host_ns"
            fi
        else
            fail "podman --network container:X" "$WHY"
        fi
    else
        fail "podman --network container:X" "$WHY"
    fi
    x "${P[@]}" rm -f -t 0 "$a"
}

# After podman removed everything, the runtime must list none of the containers podman created
# during the suite (their ids come from podman's event log), and no container cgroup may remain
# under our parent.
podman_leftovers() {
    x "${P[@]}" rm -af -t 0
    local ids id left=
    ids=$("${P[@]}" events --stream=false --filter event=create --format '{{.ID}}' 2>/dev/null | sort -u)
    if [ -z "$ids" ]; then
        fail "podman rm leaves no runtime state" "podman events lists no created container"
    else
        x "$RUNTIME" list -q
        for id in $ids; do
            printf '%s\n' "$OUT" | grep -qx "$id" && left="$left $id"
        done
        [ "$RC" -eq 0 ] && [ -z "$left" ] && pass "podman rm leaves no runtime state" ||
            fail "podman rm leaves no runtime state" "\`$RUNTIME list -q\` exited $RC and shows:$left"
    fi
    left=$(find /sys/fs/cgroup/*/"$CGP" -mindepth 1 -type d -name 'libpod-*' 2>/dev/null | head -3)
    [ -z "$left" ] && pass "podman rm leaves no container cgroup" ||
        fail "podman rm leaves no container cgroup" "left: $left"
}

podman_suite() {
    podman_setup || return
    podman_basic
    podman_killed
    podman_pid_host
    podman_detached
    podman_tty
    podman_limits
    podman_oom
    podman_netns
    podman_leftovers
}
