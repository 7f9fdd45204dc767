//! Stats, logs, two containers sharing the pod's namespaces, stops with grace periods, a
//! restarted container; the OOM pod and the hostNetwork pod.

use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;

use super::web::want;
use super::{eventually, start_container, start_pod, Ctx, Started};
use crate::cri::bounded;
use crate::host;
use crate::kube::{self, Pod};
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

/// A `server` container (busybox httpd on 127.0.0.1:8080) in the same pod.
pub async fn share(cx: &Ctx<'_>, st: &mut Started, app: &str) {
    let server = async {
        let c = st.pod.container(
            cx.env,
            "server",
            0,
            "exec httpd -f -p 127.0.0.1:8080 -h /etc",
        )?;
        let id = start_container(cx, st, c).await?;
        cx.cri
            .wait_state(
                &id,
                cri::ContainerState::ContainerRunning,
                Duration::from_secs(10),
            )
            .await?;
        Ok::<_, String>(id)
    };
    let server = match server.await {
        Ok(id) => id,
        Err(e) => {
            cx.check(
                "two containers share the network (HTTP on localhost)",
                Err(e),
            );
            return;
        }
    };
    let host_name = st.pod.name.clone();
    let r = eventually(Duration::from_secs(10), || async {
        want(
            cx.cri
                .sh(app, "wget -q -O - http://127.0.0.1:8080/hostname")
                .await,
            &host_name,
        )
    })
    .await;
    cx.check("two containers share the network (HTTP on localhost)", r);
    let r = async {
        cx.cri.sh(app, "echo shared-ipc >/dev/shm/x").await?;
        want(cx.cri.sh(&server, "cat /dev/shm/x").await, "shared-ipc")?;
        let pid = |id: &str| {
            st.containers
                .iter()
                .find(|c| c.0 == id)
                .map(|c| c.1.to_string())
                .unwrap_or_default()
        };
        let (a, s) = (pid(app), pid(&server));
        for kind in ["net", "ipc", "uts"] {
            ensure(
                host::ns(&a, kind) == host::ns(&s, kind) && !host::ns(&a, kind).is_empty(),
                || format!("{kind}: {} vs {}", host::ns(&a, kind), host::ns(&s, kind)),
            )?;
        }
        ensure(host::ns(&a, "pid") != host::ns(&s, "pid"), || {
            "one pid namespace for both".into()
        })
    };
    cx.check("two containers share IPC (/dev/shm, namespaces)", r.await);
}

/// Stops with grace periods, an exited container restarted in the same sandbox.
pub async fn web(cx: &Ctx<'_>, st: &mut Started, app: &str) {
    cx.check(
        "StopContainer, TERM handled (exit 0, Completed)",
        stop(cx, app, 30, 0, "Completed", 0..10).await,
    );
    let r = async {
        let c = st.pod.container(
            cx.env,
            "stubborn",
            0,
            "trap '' TERM; echo ready; while :; do sleep 0.2; done",
        )?;
        let id = start_container(cx, st, c).await?;
        cx.cri
            .wait_state(
                &id,
                cri::ContainerState::ContainerRunning,
                Duration::from_secs(10),
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop(cx, &id, 2, 137, "Error", 2..15).await
    };
    cx.check(
        "StopContainer grace period, TERM ignored (KILL after 2 s, exit 137)",
        r.await,
    );
    restart(cx, st).await;
}

async fn stop(
    cx: &Ctx<'_>,
    id: &str,
    grace: i64,
    code: i32,
    reason: &str,
    secs: std::ops::Range<u64>,
) -> Result<(), String> {
    let t0 = Instant::now();
    cx.cri.stop(id, grace).await?;
    let took = t0.elapsed();
    let (s, _) = cx.cri.status(id).await?;
    ensure(
        s.state == cri::ContainerState::ContainerExited as i32
            && s.exit_code == code
            && s.reason == reason,
        || {
            format!(
                "state {} exit {} reason '{}', wanted exit {code} {reason}",
                s.state, s.exit_code, s.reason
            )
        },
    )?;
    ensure(secs.contains(&took.as_secs()), || {
        format!("StopContainer took {took:?}, wanted {secs:?} s")
    })?;
    Ok(())
}

const JOB: &str =
    "echo run >>/data/runs; n=$(wc -l </data/runs); echo attempt $n; [ $n -gt 1 ] || exit 2";

async fn restart(cx: &Ctx<'_>, st: &mut Started) {
    let first = async {
        let mut c = st.pod.container(cx.env, "job", 0, JOB)?;
        c.mounts.push(super::web::mount(
            "/data",
            &st.pod.volumes.join("kubernetes.io~empty-dir/data"),
            false,
        ));
        let id = start_container(cx, st, c).await?;
        let s = cx
            .cri
            .wait_state(
                &id,
                cri::ContainerState::ContainerExited,
                Duration::from_secs(20),
            )
            .await?;
        ensure(s.exit_code == 2 && s.reason == "Error", || {
            format!("exit {} reason '{}'", s.exit_code, s.reason)
        })?;
        Ok::<_, String>(id)
    };
    let first = match first.await {
        Ok(id) => {
            cx.check("container exits (exit 2, reason Error)", Ok(()));
            id
        }
        Err(e) => {
            cx.check("container exits (exit 2, reason Error)", Err(e));
            return;
        }
    };
    let r = async {
        let mut c = st.pod.container(cx.env, "job", 1, JOB)?;
        c.mounts.push(super::web::mount(
            "/data",
            &st.pod.volumes.join("kubernetes.io~empty-dir/data"),
            false,
        ));
        let id = start_container(cx, st, c).await?;
        let s = cx
            .cri
            .wait_state(
                &id,
                cri::ContainerState::ContainerExited,
                Duration::from_secs(20),
            )
            .await?;
        ensure(s.exit_code == 0 && s.reason == "Completed", || {
            format!("exit {} reason '{}'", s.exit_code, s.reason)
        })?;
        let log = host::read(st.pod.log_dir.join("job/1.log"));
        ensure(log.contains("stdout F attempt 2"), || {
            format!("job/1.log: {log:?}")
        })?;
        let (old, _) = cx.cri.status(&first).await?;
        ensure(old.exit_code == 2, || {
            format!("attempt 0 now exit {}", old.exit_code)
        })?;
        cx.cri.remove(&first).await
    };
    cx.check(
        "container restarted in the same sandbox (attempt 1, exit 0)",
        r.await,
    );
}

pub async fn oom(cx: &Ctx<'_>) {
    let r = async {
        let pod = Pod::new(cx.env, &format!("oom-{}", cx.h.name), false)?;
        let mut st = start_pod(cx, pod).await?;
        let r = async {
            let mut c = st.pod.container(cx.env, "hog", 0, "exec tail /dev/zero")?;
            kube::resources(&mut c).memory_limit_in_bytes = 32 << 20;
            let id = start_container(cx, &mut st, c).await?;
            let s = cx
                .cri
                .wait_state(
                    &id,
                    cri::ContainerState::ContainerExited,
                    Duration::from_secs(30),
                )
                .await?;
            ensure(s.exit_code == 137 && s.reason == "OOMKilled", || {
                format!("exit {} reason '{}'", s.exit_code, s.reason)
            })
        };
        let r = r.await;
        Ok::<_, String>((st, r))
    };
    match r.await {
        Ok((st, r)) => {
            cx.check("OOM-killed container (exit 137, reason OOMKilled)", r);
            super::teardown::pod(cx, st, false).await;
        }
        Err(e) => {
            cx.check("OOM-killed container (exit 137, reason OOMKilled)", Err(e));
        }
    }
}

pub async fn host_network(cx: &Ctx<'_>) {
    let r = async {
        let mut pod = Pod::new(cx.env, &format!("hostnet-{}", cx.h.name), true)?;
        pod.share_pid();
        let mut st = start_pod(cx, pod).await?;
        let r = async {
            let c = st.pod.container(cx.env, "main", 0, "sleep 3600")?;
            let id = start_container(cx, &mut st, c).await?;
            let got = cx
                .cri
                .sh(&id, "echo $(readlink /proc/self/ns/net) $(hostname) $(tr -d '\\0' </proc/1/cmdline)")
                .await?;
            let want = format!(
                "{} {} /pause",
                host::ns("self", "net"),
                host::read("/proc/sys/kernel/hostname")
            );
            ensure(got == want, || {
                format!("got '{got}', wanted the host's '{want}'")
            })
        };
        let r = r.await;
        Ok::<_, String>((st, r))
    };
    match r.await {
        Ok((st, r)) => {
            cx.check(
                "hostNetwork + shareProcessNamespace pod (host netns and hostname, pause is PID 1)",
                r,
            );
            super::teardown::pod(cx, st, false).await;
        }
        Err(e) => {
            cx.check(
                "hostNetwork + shareProcessNamespace pod (host netns and hostname, pause is PID 1)",
                Err(e),
            );
        }
    }
}
