//! What a kubelet reads about a running container: stats (CPU, memory, process count) and the
//! CRI log file, reopened after rotation.

use std::time::Duration;

use k8s_cri::v1 as cri;

use super::{eventually, Ctx, Started};
use crate::cri::bounded;
use crate::host;
use crate::report::ensure;

pub async fn stats(cx: &Ctx<'_>, st: &Started, id: &str) {
    let req = cri::ContainerStatsRequest {
        container_id: id.into(),
    };
    let r = bounded(
        cx.cri.timeout,
        "ContainerStats",
        cx.cri.rt.clone().container_stats(req),
    )
    .await;
    cx.check(
        "ContainerStats (CPU, memory)",
        r.and_then(|s| {
            let s = s.stats.ok_or("no stats")?;
            let cpu = s
                .cpu
                .and_then(|c| c.usage_core_nano_seconds)
                .map(|v| v.value)
                .unwrap_or(0);
            let mem = s
                .memory
                .and_then(|m| m.working_set_bytes)
                .map(|v| v.value)
                .unwrap_or(0);
            ensure(cpu > 0 && mem > 0, || {
                format!("cpu {cpu} ns, working set {mem} bytes")
            })
        }),
    );
    let req = cri::ListContainerStatsRequest {
        filter: Some(cri::ContainerStatsFilter {
            pod_sandbox_id: st.sandbox.clone(),
            ..Default::default()
        }),
    };
    let r = bounded(
        cx.cri.timeout,
        "ListContainerStats",
        cx.cri.rt.clone().list_container_stats(req),
    )
    .await;
    cx.check(
        "ListContainerStats (the pod's containers)",
        r.and_then(|s| {
            let ids: Vec<String> = s
                .stats
                .iter()
                .filter_map(|s| s.attributes.as_ref().map(|a| a.id.clone()))
                .collect();
            ensure(ids.iter().any(|i| i == id), || {
                format!("ids {ids:?} lack {id}")
            })
        }),
    );
    let req = cri::PodSandboxStatsRequest {
        pod_sandbox_id: st.sandbox.clone(),
    };
    match bounded(
        cx.cri.timeout,
        "PodSandboxStats",
        cx.cri.rt.clone().pod_sandbox_stats(req),
    )
    .await
    {
        Err(e) if e.contains("Unimplemented") => {
            println!("note [{}]: PodSandboxStats (process count) is not implemented by this containerd: {e}", cx.h.name)
        }
        r => {
            cx.check(
                "PodSandboxStats (process count)",
                r.and_then(|s| {
                    let n = s
                        .stats
                        .and_then(|s| s.linux)
                        .and_then(|l| l.process)
                        .and_then(|p| p.process_count);
                    let pc = |p: &str| host::read(host::cgroup("pids", p).join("pids.current"));
                    ensure(n.is_some_and(|n| n.value >= 2), || {
                        format!(
                            "process count {n:?} (pids.current: pod {}, sandbox {}, app {})",
                            pc(&st.pod.cgroup_parent),
                            pc(&format!("{}/{}", st.pod.cgroup_parent, st.sandbox)),
                            pc(&format!("{}/{id}", st.pod.cgroup_parent))
                        )
                    })
                }),
            );
        }
    }
}

/// The CRI log file (`<timestamp> stdout F <line>`), and ReopenContainerLog after the kubelet
/// rotated it.
pub async fn logs(cx: &Ctx<'_>, st: &Started, id: &str) {
    let log = st.pod.log_dir.join("app/0.log");
    let has = |p: &std::path::Path, line: &str| {
        host::read(p).lines().any(|l| {
            let f: Vec<&str> = l.splitn(4, ' ').collect();
            f.len() == 4 && f[0].contains('T') && f[1] == "stdout" && f[2] == "F" && f[3] == line
        })
    };
    cx.check(
        "CRI log file (timestamp stdout F line)",
        ensure(has(&log, "started bar"), || {
            format!("{}: {:?}", log.display(), host::read(&log))
        }),
    );
    let r = async {
        let rotated = st.pod.log_dir.join("app/0.log.1");
        std::fs::rename(&log, &rotated).map_err(|e| format!("rename {}: {e}", log.display()))?;
        let req = cri::ReopenContainerLogRequest {
            container_id: id.into(),
        };
        bounded(
            cx.cri.timeout,
            "ReopenContainerLog",
            cx.cri.rt.clone().reopen_container_log(req),
        )
        .await?;
        let say = st.pod.volumes.join("kubernetes.io~empty-dir/data");
        host::write_file(&say.join("say.tmp"), "after-reopen\n")?;
        std::fs::rename(say.join("say.tmp"), say.join("say")).map_err(|e| e.to_string())?;
        eventually(Duration::from_secs(10), || async {
            ensure(has(&log, "after-reopen"), || {
                format!(
                    "{} lacks 'after-reopen': {:?}",
                    log.display(),
                    host::read(&log)
                )
            })
        })
        .await?;
        ensure(!has(&rotated, "after-reopen"), || {
            "the rotated file got the new line".into()
        })
    };
    cx.check("ReopenContainerLog (new line in the new file)", r.await);
}
