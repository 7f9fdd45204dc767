//! The checks, per RuntimeClass handler: a web pod with two containers (kubelet config,
//! probes, resources, stats, logs, shared network and IPC, stop with grace period, restart), a
//! pod whose container is OOM-killed, a hostNetwork pod, and after each removal: nothing left.

mod node;
mod observe;
mod pods;
mod probes;
mod share;
mod stop;
mod teardown;
mod web;

use std::time::Duration;

use k8s_cri::v1 as cri;

use crate::cri::{info_json, Cri};
use crate::kube::Pod;
use crate::{host, report, Env, Handler};

/// One handler's run: the client, the suite's settings, the handler.
pub struct Ctx<'a> {
    pub cri: &'a Cri,
    pub env: &'a Env,
    pub h: &'a Handler,
}

impl Ctx<'_> {
    /// Prints the check's PASS/FAIL line, prefixed with the handler.
    pub fn check(&self, name: &str, r: Result<(), String>) -> bool {
        report::check(&format!("[{}] {name}", self.h.name), r)
    }
}

/// A running pod as the checks track it for the teardown checks.
pub struct Started {
    pub pod: Pod,
    pub sandbox: String,
    pub pause_pid: u64,
    pub netns: String,
    /// Container ids and their init pids.
    pub containers: Vec<(String, u64)>,
}

pub async fn run(cri: &Cri, env: &Env) -> i32 {
    node::run(cri, env).await;
    for h in &env.handlers {
        let cx = Ctx { cri, env, h };
        web::run(&cx).await;
        pods::oom(&cx).await;
        pods::host_network(&cx).await;
        teardown::handler_empty(&cx);
    }
    report::exit_code()
}

/// RunPodSandbox for `pod` with this handler, then its status: the sandbox id, the pause pid
/// and the netns path (from containerd's verbose info).
pub async fn start_pod(cx: &Ctx<'_>, pod: Pod) -> Result<Started, String> {
    let sandbox = match cx.cri.run_pod(&pod.config, &cx.h.name).await {
        Ok(id) => id,
        Err(e) => {
            let _ = host::remove_pod_cgroup(&pod.cgroup_parent);
            return Err(e);
        }
    };
    record_sandbox(cx.env, &sandbox);
    let st = cx.cri.pod_status(&sandbox).await?;
    let info = info_json(&st.info);
    let pause_pid = info["pid"].as_u64().unwrap_or(0);
    let netns = info["runtimeSpec"]["linux"]["namespaces"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["type"] == "network"))
        .and_then(|n| n["path"].as_str())
        .unwrap_or_default()
        .to_string();
    Ok(Started {
        pod,
        sandbox,
        pause_pid,
        netns,
        containers: Vec::new(),
    })
}

/// Appends the sandbox id to <work>/sandboxes (the suite's cleanup derives shim sockets from it).
fn record_sandbox(env: &Env, id: &str) {
    use std::io::Write;
    let p = env.work.join("sandboxes");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
    {
        let _ = writeln!(f, "{id}");
    }
}

/// CreateContainer + StartContainer, then the container's init pid (verbose status).
pub async fn start_container(
    cx: &Ctx<'_>,
    st: &mut Started,
    config: cri::ContainerConfig,
) -> Result<String, String> {
    let id = cx.cri.create(&st.sandbox, config, &st.pod.config).await?;
    st.containers.push((id.clone(), 0));
    cx.cri.start(&id).await?;
    let (_, info) = cx.cri.status(&id).await?;
    let pid = info["pid"].as_u64().unwrap_or(0);
    if let Some(c) = st.containers.iter_mut().find(|c| c.0 == id) {
        c.1 = pid;
    }
    Ok(id)
}

/// Polls `f` every 100 ms until it returns Ok, for at most `within`; the last error otherwise.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match f().await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
