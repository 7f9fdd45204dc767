//! Stops with grace periods, and a container restarted in the same sandbox after it exited.

use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;

use super::{start_container, Ctx, Started};
use crate::host;
use crate::report::ensure;

/// Stops with grace periods, an exited container restarted in the same sandbox.
pub async fn run(cx: &Ctx<'_>, st: &mut Started, app: &str) {
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
