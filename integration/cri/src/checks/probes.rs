//! ExecSync as liveness/readiness probes, and UpdateContainerResources.

use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;

use super::{eventually, Ctx, Started};
use crate::report::ensure;

pub async fn probes(cx: &Ctx<'_>, id: &str) {
    let r = cx.cri.exec(id, &["sh", "-c", "echo alive"], 5).await;
    cx.check(
        "ExecSync liveness probe (exit 0, stdout)",
        r.and_then(|e| {
            ensure(e.code == 0 && e.stdout == "alive\n", || {
                format!("exit {} stdout {:?}", e.code, e.stdout)
            })
        }),
    );
    let r = cx
        .cri
        .exec(id, &["sh", "-c", "echo not-ready >&2; exit 3"], 5)
        .await;
    cx.check(
        "ExecSync failing probe (exit 3, stderr)",
        r.and_then(|e| {
            ensure(e.code == 3 && e.stderr == "not-ready\n", || {
                format!("exit {} stderr {:?}", e.code, e.stderr)
            })
        }),
    );
    cx.check(
        "ExecSync probe timeout (1 s, probe process killed)",
        timeout_probe(cx, id).await,
    );
}

async fn timeout_probe(cx: &Ctx<'_>, id: &str) -> Result<(), String> {
    let t0 = Instant::now();
    let r = cx.cri.exec(id, &["sleep", "37"], 1).await;
    let took = t0.elapsed();
    match r {
        Ok(e) => return Err(format!("no timeout: exit {} after {took:?}", e.code)),
        Err(e) if !e.contains("timeout") && !e.contains("deadline") => return Err(e),
        Err(_) => {}
    }
    ensure(
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        || format!("answered after {took:?}"),
    )?;
    let script = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' <$f; echo; done 2>/dev/null | grep -c '^sleep 37' || true";
    eventually(Duration::from_secs(5), || async {
        let n = cx.cri.sh(id, script).await?;
        ensure(n == "0", || {
            format!("{n} `sleep 37` probe processes still running")
        })
    })
    .await
}

pub async fn update(cx: &Ctx<'_>, st: &Started, id: &str) -> Result<(), String> {
    let req = cri::UpdateContainerResourcesRequest {
        container_id: id.into(),
        linux: Some(cri::LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 20_000,
            cpu_shares: 512,
            memory_limit_in_bytes: 128 * super::web::MIB,
            oom_score_adj: 900,
            ..Default::default()
        }),
        ..Default::default()
    };
    crate::cri::bounded(
        cx.cri.timeout,
        "UpdateContainerResources",
        cx.cri.rt.clone().update_container_resources(req),
    )
    .await?;
    super::web::limits(st, id, 128 * super::web::MIB, 20_000, 512)
}
