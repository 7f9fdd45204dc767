//! Pod and container configs shaped like the ones a kubelet (1.26+, cgroupfs driver) sends:
//! metadata and the kubelet's labels, log directory, DNS, cgroup parent, namespace modes,
//! masked/read-only paths, the termination-log mount.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_cri::v1 as cri;

use crate::{host, Env};

pub const NAMESPACE: &str = "husk-cri";
/// The cluster DNS server written to the pods' resolv.conf (never contacted).
pub const DNS_SERVER: &str = "10.96.0.10";
pub const DNS_SEARCH: &str = "husk-cri.svc.cluster.local";

/// The kubelet's default masked and read-only paths (pkg/securitycontext).
pub const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
pub const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A pod as the kubelet has it before RunPodSandbox: its uid, directories and sandbox config.
#[derive(Clone)]
pub struct Pod {
    pub name: String,
    pub uid: String,
    pub cgroup_parent: String,
    pub log_dir: PathBuf,
    pub volumes: PathBuf,
    pub config: cri::PodSandboxConfig,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A UUID-shaped pod uid, unique within this run.
fn uid() -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let s = SEQ.fetch_add(1, Ordering::Relaxed);
    let p = std::process::id();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (n >> 32) as u32,
        (n >> 16) as u16,
        s & 0xfff,
        p & 0xfff,
        n as u64 & 0xffff_ffff_ffff
    )
}

fn ns_options(network: cri::NamespaceMode) -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: network as i32,
        pid: cri::NamespaceMode::Container as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

impl Pod {
    /// A pod (CNI network unless `host_network`) and its kubelet-made directories and cgroup.
    pub fn new(env: &Env, name: &str, host_network: bool) -> Result<Pod, String> {
        let uid = uid();
        let cgroup_parent = format!("/{}/kubepods/burstable/pod{uid}", env.cgroup_root);
        let log_dir = env.work.join(format!("logs/{NAMESPACE}_{name}_{uid}"));
        let volumes = env.work.join(format!("pods/{uid}/volumes"));
        for d in [&log_dir, &volumes] {
            std::fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        }
        host::make_pod_cgroup(&cgroup_parent)?;
        let labels = HashMap::from([
            ("io.kubernetes.pod.name".to_string(), name.to_string()),
            (
                "io.kubernetes.pod.namespace".to_string(),
                NAMESPACE.to_string(),
            ),
            ("io.kubernetes.pod.uid".to_string(), uid.clone()),
        ]);
        let network = if host_network {
            cri::NamespaceMode::Node
        } else {
            cri::NamespaceMode::Pod
        };
        let config = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.into(),
                uid: uid.clone(),
                namespace: NAMESPACE.into(),
                attempt: 0,
            }),
            hostname: if host_network {
                String::new()
            } else {
                name.into()
            },
            log_directory: log_dir.display().to_string(),
            dns_config: Some(cri::DnsConfig {
                servers: vec![DNS_SERVER.into()],
                searches: vec![DNS_SEARCH.into(), "svc.cluster.local".into()],
                options: vec!["ndots:5".into()],
            }),
            labels: labels.clone(),
            annotations: HashMap::from([("kubernetes.io/config.source".into(), "api".into())]),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: cgroup_parent.clone(),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(ns_options(network)),
                    seccomp: Some(runtime_default()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok(Pod {
            name: name.into(),
            uid,
            cgroup_parent,
            log_dir,
            volumes,
            config,
        })
    }

    /// The sandbox's namespace options (the containers get the same, as from the kubelet).
    fn namespaces(&self) -> cri::NamespaceOption {
        let sc = self
            .config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref());
        sc.and_then(|s| s.namespace_options.clone())
            .unwrap_or_default()
    }

    pub fn host_network(&self) -> bool {
        self.namespaces().network == cri::NamespaceMode::Node as i32
    }

    /// shareProcessNamespace: one pid namespace for the pod (the pause process is its PID 1).
    pub fn share_pid(&mut self) {
        let sc = self.config.linux.get_or_insert_with(Default::default);
        let sc = sc.security_context.get_or_insert_with(Default::default);
        sc.namespace_options
            .get_or_insert_with(Default::default)
            .pid = cri::NamespaceMode::Pod as i32;
    }

    /// A container of this pod running `script` with `sh -c`, with the kubelet's defaults: the
    /// pod's labels, log path `<name>/<attempt>.log`, the termination-log mount, masked and
    /// read-only paths, the pod's namespace modes, and a RuntimeDefault seccomp profile.
    pub fn container(
        &self,
        env: &Env,
        name: &str,
        attempt: u32,
        script: &str,
    ) -> Result<cri::ContainerConfig, String> {
        let cdir = self.log_dir.join(name);
        std::fs::create_dir_all(&cdir).map_err(|e| format!("mkdir {}: {e}", cdir.display()))?;
        let term = self.volumes.join(format!("../containers/{name}/{attempt}"));
        host::write_file(&term, "")?;
        let mut labels = self.config.labels.clone();
        labels.insert("io.kubernetes.container.name".into(), name.into());
        Ok(cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt,
            }),
            image: Some(cri::ImageSpec {
                image: env.image.clone(),
                ..Default::default()
            }),
            command: vec!["sh".into(), "-c".into(), script.into()],
            envs: vec![
                kv("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
                kv("HOSTNAME", &self.name),
            ],
            mounts: vec![cri::Mount {
                container_path: "/dev/termination-log".into(),
                host_path: term.display().to_string(),
                ..Default::default()
            }],
            labels,
            annotations: HashMap::from([
                (
                    "io.kubernetes.container.restartCount".into(),
                    attempt.to_string(),
                ),
                (
                    "io.kubernetes.container.terminationMessagePath".into(),
                    "/dev/termination-log".into(),
                ),
            ]),
            log_path: format!("{name}/{attempt}.log"),
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(cri::LinuxContainerResources {
                    cpu_period: 100_000,
                    cpu_shares: 102,
                    oom_score_adj: 900,
                    ..Default::default()
                }),
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(self.namespaces()),
                    masked_paths: MASKED.iter().map(|s| s.to_string()).collect(),
                    readonly_paths: READONLY.iter().map(|s| s.to_string()).collect(),
                    seccomp: Some(runtime_default()),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        })
    }
}

pub fn kv(k: &str, v: &str) -> cri::KeyValue {
    cri::KeyValue {
        key: k.into(),
        value: v.into(),
    }
}

pub fn runtime_default() -> cri::SecurityProfile {
    cri::SecurityProfile {
        profile_type: cri::security_profile::ProfileType::RuntimeDefault as i32,
        ..Default::default()
    }
}

/// The container's security context (always present in configs made by `Pod::container`).
pub fn security(c: &mut cri::ContainerConfig) -> &mut cri::LinuxContainerSecurityContext {
    c.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

/// The container's resources (always present in configs made by `Pod::container`).
pub fn resources(c: &mut cri::ContainerConfig) -> &mut cri::LinuxContainerResources {
    c.linux
        .get_or_insert_with(Default::default)
        .resources
        .get_or_insert_with(Default::default)
}
