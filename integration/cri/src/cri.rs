//! The CRI connection (gRPC over containerd's unix socket, API runtime.v1) and the calls the
//! checks make, each bounded by the suite's timeout.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

#[derive(Clone)]
pub struct Cri {
    pub rt: RuntimeServiceClient<Channel>,
    pub img: ImageServiceClient<Channel>,
    pub timeout: Duration,
}

/// Awaits one gRPC call for at most `limit`; the error names the call.
pub async fn bounded<T, F>(limit: Duration, what: &str, fut: F) -> Result<T, String>
where
    F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    match tokio::time::timeout(limit, fut).await {
        Err(_) => Err(format!("{what}: no answer in {} s", limit.as_secs())),
        Ok(Err(s)) => Err(format!("{what}: {:?}: {}", s.code(), s.message())),
        Ok(Ok(r)) => Ok(r.into_inner()),
    }
}

/// The output of ExecSync.
pub struct Exec {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Cri {
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<Cri, String> {
        let path: PathBuf = socket.to_path_buf();
        let connector = tower::service_fn(move |_: Uri| {
            let p = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(p).await?)) }
        });
        let ep = Endpoint::from_static("http://[::]:50051").connect_timeout(timeout);
        let ch = tokio::time::timeout(timeout, ep.connect_with_connector(connector))
            .await
            .map_err(|_| {
                format!(
                    "{}: no connection in {} s",
                    socket.display(),
                    timeout.as_secs()
                )
            })?
            .map_err(|e| format!("{}: {e}", socket.display()))?;
        Ok(Cri {
            rt: RuntimeServiceClient::new(ch.clone()),
            img: ImageServiceClient::new(ch),
            timeout,
        })
    }

    pub async fn run_pod(
        &self,
        config: &cri::PodSandboxConfig,
        handler: &str,
    ) -> Result<String, String> {
        let req = cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        };
        let r = bounded(
            self.timeout,
            "RunPodSandbox",
            self.rt.clone().run_pod_sandbox(req),
        )
        .await?;
        Ok(r.pod_sandbox_id)
    }

    pub async fn pod_status(&self, id: &str) -> Result<cri::PodSandboxStatusResponse, String> {
        let req = cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        };
        bounded(
            self.timeout,
            "PodSandboxStatus",
            self.rt.clone().pod_sandbox_status(req),
        )
        .await
    }

    pub async fn create(
        &self,
        pod: &str,
        config: cri::ContainerConfig,
        sandbox: &cri::PodSandboxConfig,
    ) -> Result<String, String> {
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(config),
            sandbox_config: Some(sandbox.clone()),
        };
        let r = bounded(
            self.timeout,
            "CreateContainer",
            self.rt.clone().create_container(req),
        )
        .await?;
        Ok(r.container_id)
    }

    pub async fn start(&self, id: &str) -> Result<(), String> {
        let req = cri::StartContainerRequest {
            container_id: id.into(),
        };
        bounded(
            self.timeout,
            "StartContainer",
            self.rt.clone().start_container(req),
        )
        .await?;
        Ok(())
    }

    /// The status and the verbose info (containerd's JSON under "info").
    pub async fn status(
        &self,
        id: &str,
    ) -> Result<(cri::ContainerStatus, serde_json::Value), String> {
        let req = cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        let r = bounded(
            self.timeout,
            "ContainerStatus",
            self.rt.clone().container_status(req),
        )
        .await?;
        let info = info_json(&r.info);
        r.status
            .map(|s| (s, info))
            .ok_or_else(|| "ContainerStatus: no status".to_string())
    }

    pub async fn exec(&self, id: &str, cmd: &[&str], timeout_s: i64) -> Result<Exec, String> {
        let req = cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout_s,
        };
        let r = bounded(self.timeout, "ExecSync", self.rt.clone().exec_sync(req)).await?;
        Ok(Exec {
            code: r.exit_code,
            stdout: String::from_utf8_lossy(&r.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&r.stderr).into_owned(),
        })
    }

    /// `sh -c SCRIPT` in the container; its stdout (trimmed) if it exits 0.
    pub async fn sh(&self, id: &str, script: &str) -> Result<String, String> {
        let e = self.exec(id, &["sh", "-c", script], 30).await?;
        if e.code != 0 {
            return Err(format!(
                "`{script}` exited {}: {} {}",
                e.code, e.stdout, e.stderr
            ));
        }
        Ok(e.stdout.trim().to_string())
    }

    pub async fn stop(&self, id: &str, grace_s: i64) -> Result<(), String> {
        let req = cri::StopContainerRequest {
            container_id: id.into(),
            timeout: grace_s,
        };
        let limit = self.timeout + Duration::from_secs(grace_s.max(0) as u64);
        bounded(limit, "StopContainer", self.rt.clone().stop_container(req)).await?;
        Ok(())
    }

    pub async fn remove(&self, id: &str) -> Result<(), String> {
        let req = cri::RemoveContainerRequest {
            container_id: id.into(),
        };
        bounded(
            self.timeout,
            "RemoveContainer",
            self.rt.clone().remove_container(req),
        )
        .await?;
        Ok(())
    }

    pub async fn stop_pod(&self, id: &str) -> Result<(), String> {
        let req = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        bounded(
            self.timeout,
            "StopPodSandbox",
            self.rt.clone().stop_pod_sandbox(req),
        )
        .await?;
        Ok(())
    }

    pub async fn remove_pod(&self, id: &str) -> Result<(), String> {
        let req = cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        bounded(
            self.timeout,
            "RemovePodSandbox",
            self.rt.clone().remove_pod_sandbox(req),
        )
        .await?;
        Ok(())
    }

    pub async fn list_pods(&self) -> Result<Vec<cri::PodSandbox>, String> {
        let req = cri::ListPodSandboxRequest { filter: None };
        Ok(bounded(
            self.timeout,
            "ListPodSandbox",
            self.rt.clone().list_pod_sandbox(req),
        )
        .await?
        .items)
    }

    pub async fn list_containers(&self, pod: &str) -> Result<Vec<cri::Container>, String> {
        let req = cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                pod_sandbox_id: pod.into(),
                ..Default::default()
            }),
        };
        Ok(bounded(
            self.timeout,
            "ListContainers",
            self.rt.clone().list_containers(req),
        )
        .await?
        .containers)
    }

    /// Waits (polling ContainerStatus) until the container is in `state`.
    pub async fn wait_state(
        &self,
        id: &str,
        state: cri::ContainerState,
        within: Duration,
    ) -> Result<cri::ContainerStatus, String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (s, _) = self.status(id).await?;
            if s.state == state as i32 {
                return Ok(s);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "container {} is {:?} after {} s, wanted {:?}",
                    short(id),
                    cri::ContainerState::try_from(s.state)
                        .unwrap_or(cri::ContainerState::ContainerUnknown),
                    within.as_secs(),
                    state
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// containerd's verbose "info" entry, parsed (Null when absent or not JSON).
pub fn info_json(info: &HashMap<String, String>) -> serde_json::Value {
    info.get("info")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// The first 12 characters of an id, as kubectl and crictl print them.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
