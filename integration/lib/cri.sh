# CRI (kubelet -> containerd's CRI plugin -> containerd-shim-runc-v2 -> runtime): a private
# containerd with the CRI plugin, two RuntimeClass handlers (`husk` = the runtime under test,
# `runc` = Debian's runc, which proves the suite), CNI bridge networking, locally built pause
# and busybox images, and the kubelet-shaped client of integration/cri driving it.

CRI_IMAGE=localhost/busybox:latest
CRI_PAUSE=localhost/husk-cri-pause:latest
CRI_CALL_TIMEOUT=${CRI_CALL_TIMEOUT:-60}
# CRI_BENCH_ROUNDS: rounds of the pod-start / ExecSync benchmark (1 pod per round, and 10 pods
# at once per round); 0 skips it.
CRI_BENCH_ROUNDS=${CRI_BENCH_ROUNDS:-5}
# CRI_BENCH_RUNTIME: the husk binary the benchmark times (`make cri`: the release build, as runc
# is a release binary; the checks run the --runtime under test). Default: the --runtime.
CRI_BENCH_RUNTIME=${CRI_BENCH_RUNTIME:-}
# CRI_CHECKS=0 skips the checks (latency only).
CRI_CHECKS=${CRI_CHECKS:-1}
# CRI_TRACE_DIR (bench/cri-breakdown.sh): containerd logs at debug level, and the shim, the CNI
# plugins and runc are the timing wrappers in DIR/bin and DIR/cni when present; containerd's log
# is copied to DIR at the end.
CRI_TRACE_DIR=${CRI_TRACE_DIR:-}

# cri_build_client: builds integration/cri (its own workspace and Cargo.lock). The target dir
# is kept under /var/tmp between runs (a cold tonic/prost build takes minutes on 2 cores).
cri_build_client() {
    local target=${HUSK_CRI_TARGET:-/var/tmp/husk-cri-target} t0=$SECONDS CMD_TIMEOUT=1800
    # From its own dir: cargo reads .cargo/config.toml (the host tuple as target, static
    # linking) from the working directory up, not from the manifest's.
    x env -C "$HERE/cri" CARGO_TARGET_DIR="$target" cargo build --locked --bins
    if [ "$RC" -ne 0 ]; then
        fail "build the CRI client (integration/cri)" "$(printf '%s' "$OUT" | tail -5)"
        return 1
    fi
    CRI_BIN=$target/$(rustc -vV | sed -n 's/^host: //p')/debug
    echo "CRI client built in $((SECONDS - t0)) s"
}

# cri_images: the busybox image and a pause image (the static pause of integration/cri alone
# in its root filesystem) as OCI layouts for `ctr images import`.
cri_images() {
    local p=$IMG_DIR/pause-rootfs
    mkdir -p "$p"
    cp "$CRI_BIN/pause" "$p/pause"
    tar --numeric-owner --owner=0 --group=0 -C "$p" -cf "$IMG_DIR/pause.tar" . &&
        build_oci_layout "$IMG_DIR/pause.tar" "$IMG_DIR/pause-oci.tar" "$CRI_PAUSE" \
            '{"Entrypoint":["/pause"],"WorkingDir":"/"}'
}

# cri_subnet: a /24 under 10.231.0.0/16 that no route on this host uses yet.
cri_subnet() {
    local n
    for n in $(shuf -i 1-254 -n 40); do
        ip route show | grep -q "^10\.231\.$n\." || { echo "10.231.$n"; return 0; }
    done
    return 1
}

cri_setup() {
    CRI_RUN=/run/husk-cri-$TAG
    CRI_VAR=/var/tmp/husk-cri-$TAG
    CRI_SOCK=$CRI_RUN/containerd.sock
    CRI_BRIDGE=hcri-$TAG
    CRI_CG=husk-cri-$TAG
    CRI_RUNC=$(command -v runc)
    [ -n "$CRI_TRACE_DIR" ] && [ -x "$CRI_TRACE_DIR/bin/runc" ] && CRI_RUNC=$CRI_TRACE_DIR/bin/runc
    # The husk handler's BinaryName: a link to the runtime under test, switched to
    # CRI_BENCH_RUNTIME for the benchmark (the shim resolves it at every call).
    CRI_HUSK=$CRI_RUN/husk-runtime
    CRI_RUN_EXISTED=0
    [ -d /run/containerd ] && CRI_RUN_EXISTED=1
    mkdir -p "$CRI_RUN"/{state,husk,runc} "$CRI_VAR"/{root,opt,cni/net.d,cni/ipam,pods}
    ln -sfn "$RUNTIME" "$CRI_HUSK"
    on_exit cri_cleanup
    local net
    net=$(cri_subnet) || { fail "CRI: a free subnet" "every 10.231.x.0/24 tried is routed"; return 1; }
    CRI_NET=$net
    cat >"$CRI_VAR/cni/net.d/10-husk-cri.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "husk-cri-$TAG",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CRI_BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$net.0/24" }]],
        "dataDir": "$CRI_VAR/cni/ipam"
      }
    }
  ]
}
EOF
    cri_config >"$CRI_RUN/config.toml"
    if [ -n "$CRI_TRACE_DIR" ]; then
        PATH=$CRI_TRACE_DIR/bin:$PATH containerd --log-level debug --config "$CRI_RUN/config.toml" \
            >"$CRI_VAR/containerd.log" 2>&1 &
    else
        containerd --config "$CRI_RUN/config.toml" >"$CRI_VAR/containerd.log" 2>&1 &
    fi
    CRI_PID=$!
    CRICTR=(ctr -a "$CRI_SOCK" -n k8s.io)
    if ! wait_for 30 "${CRICTR[@]}" version; then
        fail "CRI: containerd starts" "$(tail -5 "$CRI_VAR/containerd.log")"
        return 1
    fi
    local img
    for img in busybox-oci pause-oci; do
        x "${CRICTR[@]}" images import "$IMG_DIR/$img.tar"
        [ "$RC" -eq 0 ] || { fail "CRI: ctr -n k8s.io images import $img" "$OUT"; return 1; }
    done
}

# cri_config: containerd's config (version 2, as on a Kubernetes node with the cgroupfs
# driver), with private paths.
cri_config() {
    local h cni_bin=/usr/lib/cni
    [ -n "$CRI_TRACE_DIR" ] && [ -d "$CRI_TRACE_DIR/cni" ] && cni_bin=$CRI_TRACE_DIR/cni
    cat <<EOF
version = 2
root = "$CRI_VAR/root"
state = "$CRI_RUN/state"
[grpc]
  address = "$CRI_SOCK"
[ttrpc]
  address = "$CRI_SOCK.ttrpc"
[debug]
  address = "$CRI_RUN/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CRI_VAR/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$CRI_PAUSE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  # The sandbox's oom_score_adj (-998) can't be set without CAP_SYS_RESOURCE, which this host's
  # root lacks: clamp to containerd's own (0), as on hosts that restrict it.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$cni_bin"
    conf_dir = "$CRI_VAR/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
EOF
    for h in husk runc; do
        local bin=$CRI_HUSK
        [ "$h" = runc ] && bin=$CRI_RUNC
        cat <<EOF
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$h]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$h.options]
        BinaryName = "$bin"
        Root = "$CRI_RUN/$h"
        SystemdCgroup = false
EOF
    done
}

# cri_args: the client's options every mode takes (in CRI_ARGS).
cri_args() {
    CRI_ARGS=(--socket "$CRI_SOCK" --work "$CRI_VAR/pods" --cgroup-root "$CRI_CG"
        --image "$CRI_IMAGE" --pause-image "$CRI_PAUSE" --subnet "${CRI_NET:-}"
        --timeout "$CRI_CALL_TIMEOUT"
        --handler "husk=$CRI_HUSK=$CRI_RUN/husk/k8s.io" --handler "runc=$CRI_RUNC=$CRI_RUN/runc/k8s.io")
}

# cri_run_client NAME MODE...: runs the client (itself bounded: every call has a timeout, and
# the whole run gets a generous outer one) and counts its PASS/FAIL lines into the results.
cri_run_client() {
    local name=$1 line
    shift
    : >"$CRI_VAR/client.out"
    timeout -k 10 1200 "$CRI_BIN/husk-cri-e2e" "${CRI_ARGS[@]}" "$@" >"$CRI_VAR/client.out" \
        2>"$CRI_VAR/client.err"
    local rc=$?
    while IFS= read -r line; do
        case $line in
        "PASS "*) pass "${line#PASS }" ;;
        "FAIL "*) fail "${line#FAIL }" "" ;;
        *) printf '%s\n' "$line" ;;
        esac
    done <"$CRI_VAR/client.out"
    cat "$CRI_VAR/client.err" >>"$WORK/commands.log"
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$CRI_VAR/client.out"; then
        fail "$name" "client exited $rc: $(tail -3 "$CRI_VAR/client.err")"
    fi
}

cri_cleanup() {
    [ -n "${CRI_RUN:-}" ] || return 0
    # Pods first, through CRI, while containerd runs (the client removes every pod of ours).
    if [ -n "${CRI_PID:-}" ] && [ -n "${CRI_BIN:-}" ]; then
        cri_args
        timeout -k 5 120 "$CRI_BIN/husk-cri-e2e" "${CRI_ARGS[@]}" cleanup \
            2>>"$WORK/cleanup.log"
    fi
    local pid h id
    if [ -n "${CRI_PID:-}" ]; then
        kill "$CRI_PID" 2>/dev/null
        wait "$CRI_PID" 2>/dev/null
    fi
    # Shims of our containerd that outlived it (their command line names our socket), then
    # whatever they left with the runtimes.
    for pid in $(grep -l -F -- "$CRI_SOCK" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
        [ "$pid" != "$$" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'containerd-shim' &&
            kill -9 "$pid"
    done
    for h in husk runc; do
        local bin=$RUNTIME
        [ "$h" = runc ] && bin=${CRI_RUNC:-runc}
        for id in $("$bin" --root "$CRI_RUN/$h/k8s.io" list -q 2>/dev/null); do
            timeout 10 "$bin" --root "$CRI_RUN/$h/k8s.io" delete --force "$id"
        done
    done
    # Shim sockets: containerd 1.6 puts them in /run/containerd/s/<sha256(address/ns/id)>, one
    # shim per sandbox; the client recorded every sandbox id.
    for id in $(cat "$CRI_VAR/pods/sandboxes" 2>/dev/null); do
        rm -f "/run/containerd/s/$(printf '%s' "$CRI_SOCK/k8s.io/$id" | sha256sum | cut -d' ' -f1)"
    done
    if [ "$CRI_RUN_EXISTED" = 0 ]; then
        rmdir /run/containerd/s /run/containerd 2>/dev/null
    fi
    umount_under "$CRI_RUN"
    umount_under "$CRI_VAR"
    ip link del "$CRI_BRIDGE" 2>/dev/null
    rm_cgroups "$CRI_CG"
    [ -z "$CRI_TRACE_DIR" ] || cp "$CRI_VAR/containerd.log" "$CRI_TRACE_DIR/containerd.log" 2>/dev/null
    rm -rf "$CRI_RUN" "$CRI_VAR"
}

cri_suite() {
    if [ -z "$(command -v runc)" ]; then
        fail "CRI: runc handler" "runc is not installed (apt-get install runc)"
        return
    fi
    cri_build_client || return
    cri_images || { fail "CRI: build the pause image" "see $WORK/commands.log"; return; }
    cri_setup || return
    cri_args
    local t0=$SECONDS
    if [ "$CRI_CHECKS" != 0 ]; then
        cri_run_client "CRI checks" checks
        echo "CRI checks (both handlers): $((SECONDS - t0)) s"
    fi
    if [ "$CRI_BENCH_ROUNDS" -gt 0 ]; then
        if [ -n "$CRI_BENCH_RUNTIME" ]; then
            ln -sfn "$(readlink -f "$CRI_BENCH_RUNTIME")" "$CRI_HUSK"
        fi
        echo "CRI latency: husk = $(readlink "$CRI_HUSK"), runc = $CRI_RUNC"
        t0=$SECONDS
        cri_run_client "CRI latency" bench --rounds "$CRI_BENCH_ROUNDS"
        echo "CRI latency benchmark: $((SECONDS - t0)) s"
    fi
}
