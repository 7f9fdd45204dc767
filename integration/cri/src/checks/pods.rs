//! The OOM pod and the hostNetwork + shareProcessNamespace pod.

use std::time::Duration;

use k8s_cri::v1 as cri;

use super::{start_container, start_pod, Ctx};
use crate::host;
use crate::kube::{self, Pod};
use crate::report::ensure;

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
