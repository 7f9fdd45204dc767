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
