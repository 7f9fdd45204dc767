//! Taking a pod down the kubelet's way (StopContainer, RemoveContainer, StopPodSandbox,
//! RemovePodSandbox, rmdir of the pod cgroup) and checking that nothing is left.

use std::path::Path;
use std::time::Duration;

use k8s_cri::v1 as cri;

use super::{Ctx, Started};
use crate::host;
use crate::report::ensure;

/// Takes the pod down; `detailed` gives each step its own check, else one check for all.
pub async fn pod(cx: &Ctx<'_>, st: Started, detailed: bool) {
    let kind = st.pod.name.split('-').next().unwrap_or("pod").to_string();
    let a = containers(cx, &st).await;
    let b = match &a {
        Ok(()) => stop(cx, &st).await,
        Err(_) => Err("not reached".into()),
    };
    let c = match &b {
        Ok(()) => remove(cx, &st).await,
        Err(_) => {
            // Remove anyway so that the next checks start clean.
            let _ = cx.cri.stop_pod(&st.sandbox).await;
            let _ = cx.cri.remove_pod(&st.sandbox).await;
            let _ = host::remove_pod_cgroup(&st.pod.cgroup_parent);
            Err("not reached".into())
        }
    };
    if detailed {
        cx.check(
            &format!("{kind} pod: StopContainer + RemoveContainer (gone from CRI and runtime)"),
            a,
        );
        cx.check(
            &format!("{kind} pod: StopPodSandbox (pause gone, netns removed)"),
            b,
        );
        cx.check(&format!("{kind} pod: RemovePodSandbox leaves nothing (processes, cgroups, mounts, netns, runtime state)"), c);
    } else {
        cx.check(
            &format!("{kind} pod: removed, nothing left"),
            a.and(b).and(c),
        );
    }
}

async fn containers(cx: &Ctx<'_>, st: &Started) -> Result<(), String> {
    for c in cx.cri.list_containers(&st.sandbox).await? {
        if c.state == cri::ContainerState::ContainerRunning as i32 {
            cx.cri.stop(&c.id, 5).await?;
        }
        cx.cri.remove(&c.id).await?;
    }
    let left = cx.cri.list_containers(&st.sandbox).await?;
    ensure(left.is_empty(), || {
        format!("{} containers still listed", left.len())
    })?;
    let ids = host::runtime_list(&cx.h.binary, &cx.h.root)?;
    let ours: Vec<&String> = ids
        .iter()
        .filter(|i| st.containers.iter().any(|c| &&c.0 == i))
        .collect();
    ensure(ours.is_empty(), || {
        format!("the runtime still has {ours:?}")
    })
}

async fn stop(cx: &Ctx<'_>, st: &Started) -> Result<(), String> {
    cx.cri.stop_pod(&st.sandbox).await?;
    let s = cx
        .cri
        .pod_status(&st.sandbox)
        .await?
        .status
        .ok_or("no status")?;
    ensure(
        s.state == cri::PodSandboxState::SandboxNotready as i32,
        || format!("state {}", s.state),
    )?;
    super::eventually(Duration::from_secs(5), || async {
        ensure(!host::alive(st.pause_pid), || {
            format!("pause pid {} alive", st.pause_pid)
        })
    })
    .await?;
    if !st.pod.host_network() {
        ensure(!Path::new(&st.netns).exists(), || {
            format!("netns {} still there", st.netns)
        })?;
    }
    Ok(())
}

async fn remove(cx: &Ctx<'_>, st: &Started) -> Result<(), String> {
    cx.cri.remove_pod(&st.sandbox).await?;
    let pods = cx.cri.list_pods().await?;
    ensure(!pods.iter().any(|p| p.id == st.sandbox), || {
        "sandbox still listed".into()
    })?;
    let mut pids = vec![st.pause_pid];
    pids.extend(st.containers.iter().map(|c| c.1));
    let live: Vec<u64> = pids
        .into_iter()
        .filter(|p| *p > 0 && host::alive(*p))
        .collect();
    ensure(live.is_empty(), || format!("processes left: {live:?}"))?;
    let ids = host::runtime_list(&cx.h.binary, &cx.h.root)?;
    ensure(!ids.contains(&st.sandbox), || {
        "the runtime still has the sandbox".into()
    })?;
    let mut mounts = host::mounts_with(&st.sandbox);
    for c in &st.containers {
        mounts.extend(host::mounts_with(&c.0));
    }
    if !st.netns.is_empty() {
        mounts.extend(host::mounts_with(&st.netns));
    }
    ensure(mounts.is_empty(), || format!("mounts left: {mounts:?}"))?;
    host::remove_pod_cgroup(&st.pod.cgroup_parent)
}

/// After all of a handler's pods: its runtime has no container left, and no pod cgroup is left.
pub fn handler_empty(cx: &Ctx<'_>) {
    let r = host::runtime_list(&cx.h.binary, &cx.h.root).and_then(|ids| {
        ensure(ids.is_empty(), || {
            format!("{} list: {ids:?}", cx.h.binary.display())
        })
    });
    let r = r.and_then(|()| {
        let dir = host::cgroup(
            "memory",
            &format!("/{}/kubepods/burstable", cx.env.cgroup_root),
        );
        let left: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ensure(left.is_empty(), || {
            format!("pod cgroups left in {}: {left:?}", dir.display())
        })
    });
    cx.check("no container or pod cgroup left after all pods", r);
}
