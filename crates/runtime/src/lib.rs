//! The container lifecycle: `create`, `start`, `state`, `kill`, `delete`, `run`, tying the
//! spec, state store, cgroups, rootfs and hardening crates together.
//!
//! Process model: one `clone3` makes the container's init with all its new namespaces (and, on
//! cgroup v2, directly inside its cgroup). The init is a copy of this process, not a re-exec of
//! the husk binary: it runs the prepared [`plan::ChildPlan`] with raw system calls only and
//! reports to the parent through 16-byte messages ([`protocol`], whose top draws the order of
//! the messages for create and exec). After `create` the init blocks in `accept()` on a socket
//! in the state directory until `husk start` connects.
//!
//! `create` runs prepare → spawn → drive → record (`create.rs`); `exec` uses the same
//! [`spawn::spawn`] and [`spawn::drive`] with a plan whose init-only part
//! ([`plan::InitSetup`]) is `None`. Errors get the container's id once, in the public
//! `Runtime` methods ([`RuntimeError::in_container`]).

mod cgroup_ops;
mod checkpoint;
mod child;
mod create;
mod describe;
mod devices;
mod error;
mod exec;
mod features;
mod footprint;
mod home;
mod hooks;
mod namespaces;
mod netdev;
mod ops;
mod plan;
#[cfg(test)]
mod plan_tests;
mod protocol;
mod record;
mod relay;
mod restore;
mod rootless;
mod run;
mod seccomp_agent;
mod spawn;
mod trace;
mod userns;

pub use cgroup_ops::Event;
pub use checkpoint::{CheckpointOptions, CriuFlags, EMPTY_NS_NETWORK};
pub use create::CreateOptions;
pub use error::{Result, RuntimeError};
pub use exec::ExecOptions;
pub use features::{features, SPEC_VERSION};
pub use husk_cgroups::Stats;
pub use husk_criu::CgMode;
pub use husk_state::{OciState, Status};
pub use ops::parse_signal;
pub use restore::RestoreOptions;
pub use rootless::Rootless;
pub use run::RunFlags;

use std::path::{Path, PathBuf};

use husk_state::Store;

static INHERITED_FDS: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();

/// Remembers the descriptors above stdio that husk inherited from its caller. Call first
/// thing in `main` (before husk opens anything) for `create` and `run`: the container's init
/// closes them at clone time (beyond `--preserve-fds`), so none is reachable through its
/// `/proc/PID/fd` while it waits for `start`.
pub fn note_inherited_fds() {
    let listed: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd > 2)
                .collect()
        })
        .unwrap_or_default();
    // The directory's own descriptor is in the listing and closed by now.
    let open = listed
        .into_iter()
        .filter(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok())
        .collect();
    let _ = INHERITED_FDS.set(open);
}

/// The descriptors [`note_inherited_fds`] found (none when it was not called).
pub(crate) fn inherited_fds() -> &'static [i32] {
    INHERITED_FDS.get().map_or(&[], Vec::as_slice)
}

/// The runtime as the CLI sees it: a state root and global options.
pub struct Runtime {
    store: Store,
    systemd_cgroup: bool,
    rootless: Rootless,
}

impl Runtime {
    pub fn new(root: Option<&Path>, systemd_cgroup: bool) -> Runtime {
        let root: PathBuf = root
            .map(Path::to_path_buf)
            .unwrap_or_else(Store::default_root);
        Runtime {
            store: Store::new(&root),
            systemd_cgroup,
            rootless: Rootless::Auto,
        }
    }

    /// runc's `--rootless`: whether a cgroup the user may not make is done without.
    pub fn with_rootless(mut self, rootless: Rootless) -> Runtime {
        self.rootless = rootless;
        self
    }

    pub fn root(&self) -> &Path {
        self.store.root()
    }

    /// `--systemd-cgroup`: the systemd manager new containers' units belong to (the user's
    /// when rootless, as runc); `None` for the cgroupfs driver.
    pub(crate) fn cgroup_driver(&self) -> Option<husk_cgroups::SystemdInstance> {
        self.systemd_cgroup.then(|| {
            if self.rootless.active() {
                husk_cgroups::SystemdInstance::User
            } else {
                husk_cgroups::SystemdInstance::System
            }
        })
    }
}
