# Docker (docker -> dockerd -> its own containerd -> containerd-shim-runc-v2 -> runtime) with the
# runtime under test added as `--add-runtime husk=RUNTIME` and chosen with `docker run --runtime
# husk`. A private dockerd: own data root, exec root, socket, pidfile, cgroup parent and bridge
# (no iptables, no ip forwarding, no masquerading: nothing global changes, so the Podman and
# containerd suites of other runs are not disturbed). No registry: the busybox image is built
# here and `docker load`ed.

DOCKER_BIN=/usr/bin/docker # Debian's client (another one may come first in PATH)

docker_setup() {
    DK=$WORK/dk
    # The exec root is deliberately deep, like Docker's default /run/docker: the start socket
    # of a 64-character id under it is longer than a socket address (sun_path) holds.
    mkdir -p "$DK"/{data,exec}
    DK_SOCK=$DK/docker.sock
    DK_CG=husk-e2e-$TAG-docker
    DK_BR=hkd-$TAG
    D=("$DOCKER_BIN" -H "unix://$DK_SOCK")
    DR=(--runtime husk)
    DOCKER_RUN_EXISTED=0
    [ -d /run/containerd ] && DOCKER_RUN_EXISTED=1
    # A bridge of our own, on a /24 no route uses yet.
    local net="" i
    for i in $(seq 1 20); do
        net=10.$((200 + RANDOM % 50)).$((RANDOM % 250))
        ip route | grep -q "^$net\." || break
    done
    ip link add "$DK_BR" type bridge || { fail "docker bridge" "ip link add $DK_BR failed"; return 1; }
    on_exit docker_cleanup
    ip addr add "$net.1/24" dev "$DK_BR" && ip link set "$DK_BR" up
    # Its own (empty) config file instead of /etc/docker/daemon.json. Two paths are hard-wired
    # in dockerd 20.10: /run/docker/plugins and the trust key /etc/docker/key.json; cleanup
    # removes them when they were not there before.
    DOCKER_RUNDIR_EXISTED=0
    [ -d /run/docker ] && DOCKER_RUNDIR_EXISTED=1
    DOCKER_KEY_EXISTED=0
    [ -e /etc/docker/key.json ] && DOCKER_KEY_EXISTED=1
    echo '{}' >"$DK/daemon.json"
    timeout -k 5 600 dockerd --config-file "$DK/daemon.json" \
        --data-root "$DK/data" --exec-root "$DK/exec" -H "unix://$DK_SOCK" \
        --pidfile "$DK/docker.pid" --add-runtime "husk=$RUNTIME" \
        --bridge "$DK_BR" --iptables=false --ip-forward=false --ip-masq=false --ipv6=false \
        --userland-proxy=false --cgroup-parent "/$DK_CG" --exec-opt native.cgroupdriver=cgroupfs \
        --storage-driver overlay2 --log-level warn >"$DK/dockerd.log" 2>&1 &
    DK_PID=$!
    if ! wait_for 30 "${D[@]}" version; then
        fail "dockerd starts" "$(tail -5 "$DK/dockerd.log")"
        return 1
    fi
    build_docker_archive "$IMG_DIR/rootfs.tar" "$IMG_DIR/busybox-docker.tar"
    x "${D[@]}" load -i "$IMG_DIR/busybox-docker.tar"
    [ "$RC" -eq 0 ] || { fail "docker load" "$OUT"; return 1; }
}

# dname NAME: a container name of this run (recorded for cleanup).
dname() {
    printf '%s\n' "$1" >>"$DK/names"
    printf '%s' "$1"
}

docker_cleanup() {
    local pid sock id
    if [ -S "$DK_SOCK" ]; then
        for id in $(timeout 20 "${D[@]}" ps -aq --no-trunc 2>/dev/null); do
            printf '%s\n' "$id" >>"$DK/ids"
            timeout 30 "${D[@]}" rm -f "$id" >/dev/null 2>&1
        done
    fi
    if [ -n "${DK_PID:-}" ]; then
        kill "$DK_PID" 2>/dev/null
        for _ in $(seq 1 150); do kill -0 "$DK_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$DK_PID" 2>/dev/null
        wait "$DK_PID" 2>/dev/null
    fi
    # Its containerd and shims that outlived it (their command line names our exec root).
    for pid in $(grep -l -F -- "$DK/exec" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
        [ "$pid" != "$$" ] && kill -9 "$pid" 2>/dev/null
    done
    # Containers the runtime still knows under the shim's root, then shim sockets.
    local root
    for root in "$DK"/exec/runtime-*/moby; do
        [ -d "$root" ] || continue
        for id in $("$RUNTIME" --root "$root" list -q 2>/dev/null); do
            timeout 10 "$RUNTIME" --root "$root" delete --force "$id"
        done
    done
    for id in $(sort -u "$DK/ids" 2>/dev/null); do
        sock=/run/containerd/s/$(printf '%s' "$DK/exec/containerd/containerd.sock.ttrpc/moby/$id" | sha256sum | cut -d' ' -f1)
        rm -f "$sock"
        sock=/run/containerd/s/$(printf '%s' "$DK/exec/containerd/containerd.sock/moby/$id" | sha256sum | cut -d' ' -f1)
        rm -f "$sock"
    done
    umount_under "$DK"
    rm_cgroups "$DK_CG"
    ip link del "$DK_BR" 2>/dev/null
    [ "${DOCKER_KEY_EXISTED:-1}" = 0 ] && rm -f /etc/docker/key.json
    if [ "${DOCKER_RUNDIR_EXISTED:-1}" = 0 ]; then
        rmdir /run/docker/plugins /run/docker 2>/dev/null
    fi
    if [ "$DOCKER_RUN_EXISTED" = 0 ]; then
        rmdir /run/containerd/s /run/containerd/fifo /run/containerd/runc /run/containerd 2>/dev/null
    fi
    return 0
}

dstate() { "${D[@]}" inspect --format '{{.State.Status}}' "$1" 2>/dev/null; }
is_dstate() { [ "$(dstate "$1")" = "$2" ]; }
dhealth() { [ "$("${D[@]}" inspect --format '{{.State.Health.Status}}' "$1" 2>/dev/null)" = "$2" ]; }

docker_basic() {
    expect "docker run --rm echo" 0 '^hi$' "${D[@]}" run --rm "${DR[@]}" "$IMAGE_REF" echo hi
    expect "docker exit code 3" 3 '' "${D[@]}" run --rm "${DR[@]}" "$IMAGE_REF" sh -c 'exit 3'
    expect "docker exit code 127 (missing binary)" 127 '' \
        "${D[@]}" run --rm "${DR[@]}" "$IMAGE_REF" /no/such/binary
    expect "docker exit code 126 (not executable)" 126 '' \
        "${D[@]}" run --rm "${DR[@]}" "$IMAGE_REF" /etc/passwd
    expect "docker run -i (stdin)" 0 '^hello$' sh -c 'echo hello | "$@"' _ \
        "${D[@]}" run --rm -i "${DR[@]}" "$IMAGE_REF" cat
    expect "docker run -it" 0 '/dev/pts/[0-9]' script -qec \
        "$(tty_cmd "${D[@]}" run --rm -it "${DR[@]}" "$IMAGE_REF" sh -c 'tty; sleep 0.5')" /dev/null
    expect "docker --read-only --tmpfs" 0 '^ro-ok tmpfs-ok$' "${D[@]}" run --rm "${DR[@]}" \
        --read-only --tmpfs /scratch "$IMAGE_REF" \
        sh -c 'touch /x 2>/dev/null && echo rw || printf ro-ok; touch /scratch/y && echo " tmpfs-ok"'
    expect "docker --user 1000:1000" 0 '^1000 1000$' "${D[@]}" run --rm "${DR[@]}" \
        --user 1000:1000 "$IMAGE_REF" sh -c 'echo $(id -u) $(id -g)'
    # CAP_NET_RAW is bit 13.
    expect "docker --cap-drop ALL --cap-add NET_RAW" 0 '^CapEff:[[:space:]]+0000000000002000$' \
        "${D[@]}" run --rm "${DR[@]}" --cap-drop ALL --cap-add NET_RAW "$IMAGE_REF" grep CapEff /proc/self/status
    expect "docker --security-opt no-new-privileges" 0 '^NoNewPrivs:[[:space:]]+1$' \
        "${D[@]}" run --rm "${DR[@]}" --security-opt no-new-privileges "$IMAGE_REF" grep NoNewPrivs /proc/self/status
    expect "docker --init (docker-init is pid 1)" 0 '^docker-init$' \
        "${D[@]}" run --rm "${DR[@]}" --init "$IMAGE_REF" cat /proc/1/comm
}

docker_limits() {
    expect "docker --memory 64m seen inside" 0 '^67108864$' "${D[@]}" run --rm "${DR[@]}" \
        --memory 64m "$IMAGE_REF" cat /sys/fs/cgroup/memory/memory.limit_in_bytes
    expect "docker --cpus 0.5 seen inside" 0 '^50000 100000$' "${D[@]}" run --rm "${DR[@]}" \
        --cpus 0.5 "$IMAGE_REF" sh -c 'echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)'
    expect "docker --pids-limit 50 seen inside" 0 '^50$' "${D[@]}" run --rm "${DR[@]}" \
        --pids-limit 50 "$IMAGE_REF" cat /sys/fs/cgroup/pids/pids.max
}

docker_detached() {
    local c WHY
    c=$(dname "hd-$TAG-det")
    x "${D[@]}" run -d --name "$c" "${DR[@]}" "$IMAGE_REF" \
        sh -c 'trap "exit 0" TERM; echo started; while :; do sleep 0.1; done'
    if [ "$RC" -ne 0 ]; then
        fail "docker run -d" "$OUT"
        return
    fi
    if wait_for 10 is_dstate "$c" running; then pass "docker run -d"; else fail "docker run -d" "state $(dstate "$c")"; fi
    expect "docker exec" 0 '^inside$' "${D[@]}" exec "$c" echo inside
    expect "docker exec exit code 5" 5 '' "${D[@]}" exec "$c" sh -c 'exit 5'
    expect "docker exec -u -e -w" 0 '^1000 v /tmp$' "${D[@]}" exec -u 1000 -e X=v -w /tmp "$c" \
        sh -c 'echo $(id -u) $X $(pwd)'
    expect "docker exec -it" 0 '/dev/pts/[0-9]' script -qec "$(tty_cmd "${D[@]}" exec -it "$c" sh -c 'tty; sleep 0.5')" /dev/null
    expect "docker top" 0 'sleep|while' "${D[@]}" top "$c"
    expect "docker stats --no-stream" 0 '[0-9.]+[KMG]?i?B / ' "${D[@]}" stats --no-stream \
        --format '{{.MemUsage}}' "$c"
    WHY=
    if step "${D[@]}" pause "$c" && wait_for 10 is_dstate "$c" paused &&
        step "${D[@]}" unpause "$c" && wait_for 10 is_dstate "$c" running &&
        out_is after "${D[@]}" exec "$c" echo after; then
        pass "docker pause/unpause"
    else
        fail "docker pause/unpause" "${WHY:-state $(dstate "$c")}"
    fi
    WHY=
    if step "${D[@]}" update --memory 128m --memory-swap 256m "$c" &&
        out_is 134217728 "${D[@]}" exec "$c" cat /sys/fs/cgroup/memory/memory.limit_in_bytes; then
        pass "docker update --memory"
    else
        fail "docker update --memory" "$WHY"
    fi
    WHY=
    if step "${D[@]}" stop -t 10 "$c" &&
        out_is 0 "${D[@]}" inspect --format '{{.State.ExitCode}}' "$c"; then
        pass "docker stop (SIGTERM trap, exit 0)"
    else
        fail "docker stop (SIGTERM trap, exit 0)" "$WHY"
    fi
    expect "docker logs" 0 '^started$' "${D[@]}" logs "$c"
    expect "docker rm" 0 '' "${D[@]}" rm "$c"
    if "${D[@]}" inspect "$c" >/dev/null 2>&1; then fail "docker rm: container gone" "still there"; else pass "docker rm: container gone"; fi
}

docker_health() {
    local c WHY=
    c=$(dname "hd-$TAG-health")
    if step "${D[@]}" run -d --name "$c" "${DR[@]}" --health-cmd 'test -f /tmp/ok' \
        --health-interval 1s --health-retries 1 "$IMAGE_REF" sh -c 'touch /tmp/ok; sleep 60' &&
        wait_for 20 dhealth "$c" healthy &&
        step "${D[@]}" exec "$c" rm /tmp/ok && wait_for 20 dhealth "$c" unhealthy; then
        pass "docker health check (healthy, then unhealthy)"
    else
        fail "docker health check (healthy, then unhealthy)" \
            "${WHY:-health $("${D[@]}" inspect --format '{{json .State.Health}}' "$c" 2>&1)}"
    fi
    x "${D[@]}" rm -f "$c"
}

docker_network() {
    expect "docker --network none" 0 '^lo$' "${D[@]}" run --rm "${DR[@]}" --network none \
        "$IMAGE_REF" ls /sys/class/net
    expect "docker --network host" 0 "$DK_BR" "${D[@]}" run --rm "${DR[@]}" --network host \
        "$IMAGE_REF" ls /sys/class/net
    local c ip WHY=
    c=$(dname "hd-$TAG-web")
    if step "${D[@]}" run -d --name "$c" "${DR[@]}" "$IMAGE_REF" \
        sh -c 'mkdir /www && echo pong >/www/index.html && exec httpd -f -p 8080 -h /www' &&
        wait_for 10 is_dstate "$c" running; then
        ip=$("${D[@]}" inspect --format '{{.NetworkSettings.IPAddress}}' "$c")
        # httpd may need a moment to listen: retry inside the client container.
        expect "docker --network bridge (reach a second container)" 0 '^pong$' \
            "${D[@]}" run --rm "${DR[@]}" "$IMAGE_REF" \
            sh -c "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://$ip:8080/ && exit 0; sleep 0.3; done; exit 1"
    else
        fail "docker --network bridge (reach a second container)" "$WHY"
    fi
    x "${D[@]}" rm -f "$c"
}

restart_done() {
    [ "$("${D[@]}" inspect --format '{{.State.Status}} {{.RestartCount}}' "$1" 2>/dev/null)" = "exited 2" ]
}

docker_restart() {
    local c WHY=
    c=$(dname "hd-$TAG-restart")
    if step "${D[@]}" run -d --name "$c" "${DR[@]}" --restart on-failure:2 "$IMAGE_REF" sh -c 'exit 1' &&
        wait_for 30 restart_done "$c"; then
        pass "docker --restart on-failure:2 (ran 3 times)"
    else
        fail "docker --restart on-failure:2 (ran 3 times)" \
            "${WHY:-$("${D[@]}" inspect --format '{{.State.Status}} restarts={{.RestartCount}}' "$c" 2>&1)}"
    fi
    x "${D[@]}" rm -f "$c"
}

docker_leftovers() {
    local left cg root
    x "${D[@]}" ps -aq
    [ -z "$OUT" ] || x "${D[@]}" rm -f $OUT
    left=""
    for root in "$DK"/exec/runtime-*/moby; do
        [ -d "$root" ] || continue
        left+=$("$RUNTIME" --root "$root" list -q 2>/dev/null)
    done
    cg=$(find /sys/fs/cgroup/*/"$DK_CG" /sys/fs/cgroup/"$DK_CG" -mindepth 1 -type d 2>/dev/null | head -5)
    if [ -n "$left" ]; then
        fail "docker leaves no runtime state / cgroup" "runtime still lists: $left"
    elif [ -n "$cg" ]; then
        fail "docker leaves no runtime state / cgroup" "cgroups left: $cg"
    else
        pass "docker leaves no runtime state / cgroup"
    fi
}

docker_suite() {
    docker_setup || return
    docker_basic
    docker_limits
    docker_detached
    docker_health
    docker_network
    docker_restart
    docker_leftovers
}
