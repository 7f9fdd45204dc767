//! What husk keeps about a container in its `state.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use husk_state::{OciState, Status};

#[derive(Serialize, Deserialize)]
pub(crate) struct Record {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` (clock ticks since boot): tells it apart from a recycled pid.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    pub cgroup: Option<husk_cgroups::Manager>,
    /// The container has its own pid namespace, so killing its init kills everything.
    pub pid_ns: bool,
    /// The container has its own mount namespace; without one, its mounts sit on a bind of
    /// the rootfs in the host's table, which delete detaches.
    #[serde(default = "yes")]
    pub mount_ns: bool,
    pub spec: Spec,
}

fn yes() -> bool {
    true
}

/// Name of the socket the created init waits on, inside the container's state directory.
pub(crate) const START_SOCKET: &str = "start";

impl Record {
    pub fn alive(&self) -> bool {
        husk_sys::proc::is_same_live_process(self.pid, self.pid_start)
    }

    /// poststart hooks, once the user's process runs (a failure is only a warning).
    pub fn run_poststart(&self) {
        let state = serde_json::to_vec(&self.oci_state(Status::Running)).unwrap_or_default();
        let hooks = self
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().as_ref());
        crate::hooks::run_all_warn("poststart", hooks, &state);
    }

    pub fn oci_state(&self, status: Status) -> OciState {
        OciState {
            oci_version: self.spec.version().clone(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.annotations.clone(),
        }
    }
}

/// The part of the spec kept in `state.json`: what `start`, `exec`, `kill`, `update`,
/// `delete` and the hooks they run read back. The process, the hooks run after create
/// (startContainer for error messages, poststart, poststop), and of `linux` the namespaces
/// (exec joins them), seccomp and personality (exec applies them), resources (`update`
/// merges into them) and the cgroups path. Mounts, devices, masked paths, sysctls, id
/// mappings and annotations (kept once, beside) are not: `state.json` stays small whatever
/// the config (runc-sized configs make a few-KiB record).
pub(crate) fn slim_spec(spec: &Spec) -> Spec {
    use oci_spec::runtime::{Hooks, Linux};
    let mut slim = Spec::default();
    slim.set_version(spec.version().clone());
    slim.set_process(spec.process().clone());
    slim.set_root(None);
    // Kept: checkpoint describes the bind mounts to CRIU from them.
    slim.set_mounts(spec.mounts().clone());
    slim.set_hostname(spec.hostname().clone());
    slim.set_domainname(spec.domainname().clone());
    slim.set_annotations(None);
    slim.set_hooks(spec.hooks().as_ref().map(|h| {
        let mut kept = Hooks::default();
        kept.set_start_container(h.start_container().clone());
        kept.set_poststart(h.poststart().clone());
        kept.set_poststop(h.poststop().clone());
        kept
    }));
    slim.set_linux(spec.linux().as_ref().map(|l| {
        let mut kept = Linux::default();
        kept.set_uid_mappings(None);
        kept.set_gid_mappings(None);
        kept.set_masked_paths(None);
        kept.set_readonly_paths(None);
        kept.set_namespaces(l.namespaces().clone());
        kept.set_seccomp(l.seccomp().clone());
        kept.set_personality(l.personality().clone());
        kept.set_resources(l.resources().clone());
        kept.set_cgroups_path(l.cgroups_path().clone());
        // delete moves them back out of a network namespace of the container's own.
        kept.set_net_devices(l.net_devices().clone());
        // Checkpoint describes device nodes to CRIU as external mounts.
        kept.set_devices(l.devices().clone());
        kept
    }));
    slim
}

#[cfg(test)]
mod tests {
    use super::slim_spec;

    #[test]
    fn slim_spec_drops_bulk_and_keeps_what_commands_read() {
        let mut spec = husk_spec::default_spec(false);
        let big: std::collections::HashMap<String, String> =
            [("a".to_string(), "x".repeat(100_000))].into();
        spec.set_annotations(Some(big));
        let slim = slim_spec(&spec);
        let text = serde_json::to_string(&slim).unwrap();
        assert!(text.len() < 4096, "{text}");
        // Mounts stay: checkpoint describes the bind mounts to CRIU from them.
        assert_eq!(slim.mounts(), spec.mounts());
        assert!(!text.contains("maskedPaths"), "{text}");
        assert_eq!(slim.process(), spec.process());
        let ns = |s: &oci_spec::runtime::Spec| s.linux().as_ref().unwrap().namespaces().clone();
        assert_eq!(ns(&slim), ns(&spec));
        println!("{text}");
    }
}
