//! The web pod: a sandbox on the CNI network and an `app` container with the usual kubelet
//! config, then probes, resources, stats, logs; a `server` container sharing its network and
//! IPC; stops with grace periods and a restarted container (life.rs); teardown (teardown.rs).

use std::time::Duration;

use k8s_cri::v1 as cri;

use super::{start_container, start_pod, Ctx, Started};
use crate::host;
use crate::kube::{self, Pod, DNS_SEARCH, DNS_SERVER};
use crate::report::ensure;

const APP: &str = "echo started $FOO
sleep 3600 &
trap 'echo got-term; exit 0' TERM
while :; do
  if [ -f /data/say ]; then cat /data/say; rm -f /data/say; fi
  sleep 0.2
done";

pub const MIB: i64 = 1 << 20;

pub async fn run(cx: &Ctx<'_>) {
    let name = format!("web-{}", cx.h.name);
    let pod = match Pod::new(cx.env, &name, false) {
        Ok(mut p) => {
            // A safe sysctl, as a pod's securityContext.sysctls gives it (the pod's netns).
            let l = p.config.linux.get_or_insert_with(Default::default);
            l.sysctls
                .insert("net.ipv4.ip_unprivileged_port_start".into(), "80".into());
            p
        }
        Err(e) => {
            cx.check(
                "RunPodSandbox (handler, cgroup parent, DNS, hostname)",
                Err(e),
            );
            return;
        }
    };
    let mut st = match start_pod(cx, pod).await {
        Ok(st) => st,
        Err(e) => {
            cx.check(
                "RunPodSandbox (handler, cgroup parent, DNS, hostname)",
                Err(e),
            );
            return;
        }
    };
    cx.check(
        "RunPodSandbox (handler, cgroup parent, DNS, hostname)",
        Ok(()),
    );
    cx.check(
        "PodSandboxStatus (ready, pod IP from CNI, handler)",
        sandbox_status(cx, &st).await,
    );
    cx.check(
        "sandbox runs under the handler's runtime",
        sandbox_runtime(cx, &st),
    );
    cx.check(
        "sandbox cgroup under the pod cgroup",
        in_cgroup(&st.pod.cgroup_parent, &st.sandbox, st.pause_pid),
    );
    match app(cx, &mut st).await {
        Ok(id) => {
            cx.check("CreateContainer + StartContainer (kubelet config)", Ok(()));
            app_checks(cx, &mut st, &id).await;
            super::stop::run(cx, &mut st, &id).await;
        }
        Err(e) => {
            cx.check("CreateContainer + StartContainer (kubelet config)", Err(e));
        }
    }
    super::teardown::pod(cx, st, true).await;
}

async fn sandbox_status(cx: &Ctx<'_>, st: &Started) -> Result<(), String> {
    let s = cx
        .cri
        .pod_status(&st.sandbox)
        .await?
        .status
        .ok_or("no status")?;
    ensure(s.state == cri::PodSandboxState::SandboxReady as i32, || {
        format!("state {}", s.state)
    })?;
    let ip = s.network.map(|n| n.ip).unwrap_or_default();
    ensure(ip.starts_with(&format!("{}.", cx.env.subnet)), || {
        format!("pod IP '{ip}' not in {}.0/24", cx.env.subnet)
    })?;
    ensure(s.runtime_handler == cx.h.name, || {
        format!("runtime_handler '{}'", s.runtime_handler)
    })?;
    ensure(st.pause_pid > 0 && !st.netns.is_empty(), || {
        format!("verbose info: pid {} netns '{}'", st.pause_pid, st.netns)
    })
}

/// The runtime of this handler (its binary, its root) has the sandbox running.
fn sandbox_runtime(cx: &Ctx<'_>, st: &Started) -> Result<(), String> {
    let s = host::runtime_status(&cx.h.binary, &cx.h.root, &st.sandbox)?;
    ensure(s == "running", || {
        format!(
            "{} state {}: status '{s}'",
            cx.h.binary.display(),
            st.sandbox
        )
    })
}

/// The container `id` has the cgroup `<parent>/<id>` (memory, cpu, pids) holding `pid`.
pub fn in_cgroup(parent: &str, id: &str, pid: u64) -> Result<(), String> {
    for ctrl in ["memory", "cpu", "pids"] {
        let d = host::cgroup(ctrl, &format!("{parent}/{id}"));
        let procs = host::read(d.join("cgroup.procs"));
        ensure(procs.lines().any(|l| l == pid.to_string()), || {
            format!("pid {pid} not in {}/cgroup.procs ('{procs}')", d.display())
        })?;
    }
    Ok(())
}

async fn app(cx: &Ctx<'_>, st: &mut Started) -> Result<String, String> {
    let conf = st.pod.volumes.join("kubernetes.io~configmap/config");
    host::write_file(&conf.join("app.conf"), "hello-config\n")?;
    let data = st.pod.volumes.join("kubernetes.io~empty-dir/data");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .map_err(|e| e.to_string())?;
    let mut c = st.pod.container(cx.env, "app", 0, APP)?;
    c.envs.push(kube::kv("FOO", "bar"));
    c.working_dir = "/data".into();
    c.mounts.push(mount("/config", &conf, true));
    c.mounts.push(mount("/data", &data, false));
    let r = kube::resources(&mut c);
    (r.cpu_quota, r.cpu_shares, r.memory_limit_in_bytes) = (50_000, 512, 64 * MIB);
    let s = kube::security(&mut c);
    s.run_as_user = Some(cri::Int64Value { value: 1000 });
    s.run_as_group = Some(cri::Int64Value { value: 1000 });
    s.supplemental_groups = vec![2000];
    s.capabilities = Some(cri::Capability {
        add_capabilities: vec!["NET_BIND_SERVICE".into()],
        drop_capabilities: vec!["ALL".into()],
        ..Default::default()
    });
    s.readonly_rootfs = true;
    s.no_new_privs = true;
    let id = start_container(cx, st, c).await?;
    cx.cri
        .wait_state(
            &id,
            cri::ContainerState::ContainerRunning,
            Duration::from_secs(10),
        )
        .await?;
    let s = host::runtime_status(&cx.h.binary, &cx.h.root, &id)?;
    ensure(s == "running", || {
        format!("{} state {id}: status '{s}'", cx.h.binary.display())
    })?;
    Ok(id)
}

pub fn mount(ctr: &str, host: &std::path::Path, ro: bool) -> cri::Mount {
    cri::Mount {
        container_path: ctr.into(),
        host_path: host.display().to_string(),
        readonly: ro,
        ..Default::default()
    }
}

async fn app_checks(cx: &Ctx<'_>, st: &mut Started, id: &str) {
    let pod = &st.pod.name;
    let r = cx
        .cri
        .sh(id, "echo $(id -u):$(id -g):$(id -G | tr ' ' ,) $FOO $(pwd) $(hostname) $(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)")
        .await;
    cx.check(
        "process: run_as_user/group, supplemental groups, env, working dir, hostname, pod sysctl",
        want(r, &format!("1000:1000:1000,2000 bar /data {pod} 80")),
    );
    cx.check(
        "capabilities drop ALL + add NET_BIND_SERVICE, no_new_privs, RuntimeDefault seccomp",
        security(cx, id).await,
    );
    cx.check(
        "read-only rootfs, read-only mount, volume",
        mounts(cx, st, id).await,
    );
    cx.check("DNS config and hostname files", dns(cx, id, pod).await);
    cx.check(
        "masked and read-only paths (kubelet's defaults)",
        masked(cx, id).await,
    );
    cx.check(
        "cgroup limits and oom_score_adj",
        limits(st, id, 64 * MIB, 50_000, 512),
    );
    super::probes::probes(cx, id).await;
    cx.check(
        "UpdateContainerResources (memory, CPU quota)",
        super::probes::update(cx, st, id).await,
    );
    super::observe::stats(cx, st, id).await;
    super::observe::logs(cx, st, id).await;
    super::share::share(cx, st, id).await;
}

/// Each of the kubelet's masked paths that exists on the host is a mount point in the
/// container (runtimes mask with /dev/null or a read-only tmpfs), each read-only path a
/// read-only mount.
async fn masked(cx: &Ctx<'_>, id: &str) -> Result<(), String> {
    let out = cx
        .cri
        .sh(id, "awk '{print $5, substr($6,1,2)}' /proc/self/mountinfo")
        .await?;
    let mounts: Vec<(&str, &str)> = out.lines().filter_map(|l| l.split_once(' ')).collect();
    for p in kube::MASKED
        .iter()
        .filter(|p| std::path::Path::new(p).exists())
    {
        ensure(mounts.iter().any(|m| m.0 == *p), || {
            format!("{p} is not masked")
        })?;
    }
    for p in kube::READONLY
        .iter()
        .filter(|p| std::path::Path::new(p).exists())
    {
        ensure(mounts.iter().any(|m| m.0 == *p && m.1 == "ro"), || {
            format!("{p} is not a read-only mount")
        })?;
    }
    Ok(())
}

/// Ok if `r` is Ok(want).
pub fn want(r: Result<String, String>, want: &str) -> Result<(), String> {
    let got = r?;
    ensure(got == want, || format!("got '{got}', wanted '{want}'"))
}

async fn security(cx: &Ctx<'_>, id: &str) -> Result<(), String> {
    let out = cx
        .cri
        .sh(
            id,
            "grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status",
        )
        .await?;
    let got: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let want = [
        "CapEff: 0000000000000000",
        "CapBnd: 0000000000000400",
        "NoNewPrivs: 1",
        "Seccomp: 2",
    ];
    ensure(want.iter().all(|w| got.iter().any(|g| g == w)), || {
        format!("got {got:?}, wanted {want:?}")
    })
}

async fn mounts(cx: &Ctx<'_>, st: &Started, id: &str) -> Result<(), String> {
    let script = "(touch /x) 2>/dev/null && echo root-rw || echo root-ro
        (echo x >/config/app.conf) 2>/dev/null && echo config-rw || echo config-ro
        cat /config/app.conf; echo from-pod >/data/f && echo data-rw";
    let got = cx
        .cri
        .sh(id, script)
        .await?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    ensure(got == "root-ro config-ro hello-config data-rw", || {
        format!("got '{got}'")
    })?;
    let f = st.pod.volumes.join("kubernetes.io~empty-dir/data/f");
    let on_host = host::read(&f);
    ensure(on_host == "from-pod", || {
        format!("{} holds '{on_host}'", f.display())
    })
}

async fn dns(cx: &Ctx<'_>, id: &str, pod: &str) -> Result<(), String> {
    let conf = cx.cri.sh(id, "cat /etc/resolv.conf").await?;
    for line in [
        format!("nameserver {DNS_SERVER}"),
        format!("search {DNS_SEARCH} svc.cluster.local"),
        "options ndots:5".to_string(),
    ] {
        ensure(conf.lines().any(|l| l.trim() == line), || {
            format!("resolv.conf lacks '{line}': {conf:?}")
        })?;
    }
    want(cx.cri.sh(id, "cat /etc/hostname").await, pod)
}

/// The container's cgroup (under the pod's) has these limits; its init has the kubelet's
/// oom_score_adj.
pub fn limits(st: &Started, id: &str, mem: i64, quota: i64, shares: i64) -> Result<(), String> {
    let pid = st
        .containers
        .iter()
        .find(|c| c.0 == id)
        .map(|c| c.1)
        .unwrap_or(0);
    in_cgroup(&st.pod.cgroup_parent, id, pid)?;
    let cg = format!("{}/{id}", st.pod.cgroup_parent);
    let got = [
        host::read(host::cgroup("memory", &cg).join("memory.limit_in_bytes")),
        host::read(host::cgroup("cpu", &cg).join("cpu.cfs_quota_us")),
        host::read(host::cgroup("cpu", &cg).join("cpu.shares")),
        host::read(format!("/proc/{pid}/oom_score_adj")),
    ];
    let want = [
        mem.to_string(),
        quota.to_string(),
        shares.to_string(),
        "900".into(),
    ];
    ensure(got == want, || {
        format!("memory limit, cfs quota, shares, oom_score_adj: got {got:?}, wanted {want:?}")
    })
}
