//! Pod start (RunPodSandbox -> CreateContainer -> StartContainer returned) and ExecSync
//! latency per handler, with 1 pod (3 in a row) and with 10 pods started at once; the handlers take turns
//! round by round so that load from elsewhere on the machine hits both alike.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::cri::Cri;
use crate::kube::Pod;
use crate::report::{check, ensure, exit_code};
use crate::{host, Env};

/// Single-pod starts per handler and round.
const SINGLES: usize = 3;
/// ExecSync calls per pod and round (one after the other; all pods at once).
const EXECS: usize = 5;

#[derive(Default)]
struct Samples {
    start: Vec<f64>,
    exec: Vec<f64>,
}

pub async fn run(cri: &Cri, env: &Env, rounds: usize) -> i32 {
    let mut s: BTreeMap<(usize, String), Samples> = BTreeMap::new();
    let t0 = Instant::now();
    for r in 0..rounds {
        for n in [1, 10] {
            let mut hs: Vec<_> = env.handlers.iter().collect();
            if r % 2 == 1 {
                hs.reverse();
            }
            // Single pods: SINGLES one after the other per handler and round, for more samples.
            let reps = if n == 1 { SINGLES } else { 1 };
            for h in hs.into_iter().flat_map(|h| std::iter::repeat_n(h, reps)) {
                match round(cri, env, &h.name, n).await {
                    Ok((st, ex)) => {
                        let e = s.entry((n, h.name.clone())).or_default();
                        e.start.extend(st);
                        e.exec.extend(ex);
                    }
                    Err(e) => {
                        check(&format!("[bench] {} round {r}, {n} pods", h.name), Err(e));
                    }
                }
            }
        }
    }
    println!(
        "CRI latency ({rounds} rounds, {:.0} s; ms, p50 / p99 nearest rank):",
        t0.elapsed().as_secs_f64()
    );
    table(&s);
    ratios(&s);
    exit_code()
}

fn pct(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn table(s: &BTreeMap<(usize, String), Samples>) {
    println!("| metric | pods at once | handler | samples | p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for metric in ["pod start", "ExecSync"] {
        for ((n, h), v) in s {
            let v = if metric == "pod start" {
                &v.start
            } else {
                &v.exec
            };
            println!(
                "| {metric} | {n} | {h} | {} | {:.1} | {:.1} |",
                v.len(),
                pct(v, 0.5),
                pct(v, 0.99)
            );
        }
    }
}

/// Pod start, husk's time as a ratio of runc's, at p50 and p99, for 1 and 10 pods. Printed, not
/// asserted: a timing is a measurement (make bench, this table), never a pass/fail check.
fn ratios(s: &BTreeMap<(usize, String), Samples>) {
    for n in [1, 10] {
        let (Some(husk), Some(runc)) = (s.get(&(n, "husk".into())), s.get(&(n, "runc".into())))
        else {
            continue;
        };
        let (h50, r50) = (pct(&husk.start, 0.5), pct(&runc.start, 0.5));
        let (h99, r99) = (pct(&husk.start, 0.99), pct(&runc.start, 0.99));
        println!(
            "pod start, {n} pod(s) at once: husk/runc {:.2}x at p50, {:.2}x at p99",
            h50 / r50,
            h99 / r99
        );
    }
}

/// Starts `n` pods at once (one container each), runs EXECS ExecSyncs in each, removes them.
async fn round(
    cri: &Cri,
    env: &Env,
    handler: &str,
    n: usize,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let mut pods = Vec::new();
    for i in 0..n {
        pods.push(Pod::new(env, &format!("bench-{handler}-{i}"), false)?);
    }
    let mut set = JoinSet::new();
    for p in pods.clone() {
        let (cri, env, h) = (cri.clone(), env.clone(), handler.to_string());
        set.spawn(async move { start_one(&cri, &env, &h, &p).await });
    }
    let (mut starts, mut ids, mut err) = (Vec::new(), Vec::new(), None);
    while let Some(r) = set.join_next().await {
        match r.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok((ms, sb, c)) => {
                starts.push(ms);
                ids.push((sb, c));
            }
            Err(e) => err = Some(e),
        }
    }
    let execs = if err.is_none() {
        execs(cri, &ids).await
    } else {
        Ok(Vec::new())
    };
    let down = teardown(cri, &pods).await;
    if let Some(e) = err {
        return Err(e);
    }
    down?;
    Ok((starts, execs?))
}

async fn start_one(
    cri: &Cri,
    env: &Env,
    h: &str,
    p: &Pod,
) -> Result<(f64, String, String), String> {
    let c = p.container(env, "main", 0, "exec sleep 3600")?;
    let t0 = Instant::now();
    let sb = cri.run_pod(&p.config, h).await?;
    let id = cri.create(&sb, c, &p.config).await?;
    cri.start(&id).await?;
    Ok((t0.elapsed().as_secs_f64() * 1e3, sb, id))
}

async fn execs(cri: &Cri, ids: &[(String, String)]) -> Result<Vec<f64>, String> {
    let mut set = JoinSet::new();
    for (_, id) in ids {
        let (cri, id) = (cri.clone(), id.clone());
        set.spawn(async move {
            let mut v = Vec::new();
            for _ in 0..EXECS {
                let t0 = Instant::now();
                let e = cri.exec(&id, &["true"], 10).await?;
                ensure(e.code == 0, || format!("ExecSync true: exit {}", e.code))?;
                v.push(t0.elapsed().as_secs_f64() * 1e3);
            }
            Ok::<_, String>(v)
        });
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

/// Removes every pod of the round (found by uid, so also pods whose start failed half way).
async fn teardown(cri: &Cri, pods: &[Pod]) -> Result<(), String> {
    let all = cri.list_pods().await?;
    let mut set = JoinSet::new();
    for sb in all.into_iter().filter(|s| {
        pods.iter()
            .any(|p| s.metadata.as_ref().is_some_and(|m| m.uid == p.uid))
    }) {
        let cri = cri.clone();
        set.spawn(async move { cri.stop_pod(&sb.id).await.and(cri.remove_pod(&sb.id).await) });
    }
    let mut res = Ok(());
    while let Some(r) = set.join_next().await {
        if let Err(e) = r.map_err(|e| e.to_string()).and_then(|r| r) {
            res = Err(e);
        }
    }
    for p in pods {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            host::remove_pod_cgroup(&p.cgroup_parent)
        })
        .await;
    }
    res
}
