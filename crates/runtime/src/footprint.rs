//! What a container made on the host, recorded before each thing is made.
//!
//! `create` writes `footprint.json` in the container's state directory before its first side
//! effect (the cgroup), and again before each further one (a rootfs bind in the host's mount
//! table, the init process). A systemd unit (`--systemd-cgroup`) is made around the init and
//! recorded right after systemd made it: killed in between, the recorded init is killed and
//! systemd removes the scope it emptied; a unit of the same name that was never husk's is left
//! alone. It is kept for the container's whole life. Whatever kills husk
//! (`kill -9` of `create`, `start`, `delete` or `run` at any step), and whatever happens to
//! `state.json` (missing because `create` died, or damaged), `delete --force ID` — and a new
//! `create` of the same id — find everything through it and remove it: processes (through
//! the cgroup, then the recorded init), the rootfs bind, the cgroups, the state directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use husk_state::{ContainerDir, Lock, OciState, StateError, Status};
use serde::{Deserialize, Serialize};

use crate::{Result, Runtime, RuntimeError};

/// The footprint's file name inside the state directory.
pub(crate) const FOOTPRINT_FILE: &str = "footprint.json";

#[derive(Serialize, Deserialize, Default, Clone)]
pub(crate) struct Footprint {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    /// Every cgroup directory of the container (recorded before they are made).
    pub cgroup: Option<husk_cgroups::Manager>,
    /// The rootfs bound onto itself in the host's mount table (containers without a mount
    /// namespace), with how many mounts sat on that path before: only a mount beyond those
    /// is husk's to detach.
    pub host_bind: Option<HostBind>,
    /// The process husk cloned (the init, or the intermediate child that forks it), with its
    /// start time so a recycled pid is never signalled.
    pub pid: i32,
    pub pid_start: u64,
    /// `linux.netDevices` moved into a network namespace of the container's own, which a bind
    /// in the state directory keeps (recorded before the bind is made): moved back on reap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net_devices: Vec<crate::netdev::Device>,
}

#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct HostBind {
    pub path: PathBuf,
    pub mounts_before: usize,
}

impl Footprint {
    pub fn new(id: &str, bundle: &husk_spec::Bundle, cgroup: &husk_cgroups::Manager) -> Self {
        Footprint {
            id: id.to_string(),
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: husk_state::rfc3339_now(),
            cgroup: Some(cgroup.clone()),
            ..Footprint::default()
        }
    }

    /// Writes the footprint (atomically: a kill leaves the previous version whole).
    pub fn save(&self, dir: &ContainerDir) -> Result<()> {
        Ok(dir.save_as(FOOTPRINT_FILE, self)?)
    }

    /// Records the rootfs bind about to be made (before it is made).
    pub fn will_bind(&mut self, dir: &ContainerDir, rootfs: &Path) -> Result<()> {
        self.host_bind = Some(HostBind {
            path: rootfs.to_path_buf(),
            mounts_before: mounts_at(rootfs),
        });
        self.save(dir)
    }

    /// Records the systemd unit just made around the init (`--systemd-cgroup`).
    pub fn unit_made(&mut self, dir: &ContainerDir, cgroup: &husk_cgroups::Manager) -> Result<()> {
        self.cgroup = Some(cgroup.clone());
        self.save(dir)
    }

    /// Records the process husk just cloned (or the init it reported).
    pub fn cloned(&mut self, dir: &ContainerDir, pid: i32) -> Result<()> {
        self.pid = pid;
        self.pid_start = husk_sys::proc::start_time(pid).unwrap_or(0);
        self.save(dir)
    }

    /// Removes everything recorded: processes, the rootfs bind, the cgroups. The state
    /// directory is the caller's to remove.
    pub fn reap(&self) -> Result<()> {
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.thaw();
        }
        if self.pid > 0 && husk_sys::proc::is_same_live_process(self.pid, self.pid_start) {
            if let Ok(pidfd) = husk_sys::proc::pidfd_open(self.pid) {
                if husk_sys::proc::is_same_live_process(self.pid, self.pid_start) {
                    let _ = husk_sys::proc::pidfd_send_signal(&pidfd, libc::SIGKILL);
                    let ms = Duration::from_secs(10).as_millis() as i32;
                    let _ = husk_sys::proc::pidfd_wait_exit(&pidfd, ms);
                }
            }
        }
        if let Some(b) = &self.host_bind {
            if mounts_at(&b.path) > b.mounts_before {
                crate::create::unbind_rootfs(&b.path);
            }
        }
        if let Some(cg) = &self.cgroup {
            cg.destroy().map_err(RuntimeError::Cgroup)?;
        }
        Ok(())
    }

    /// What `state` shows of a container that has no (readable) `state.json`.
    pub fn oci_state(&self, status: Status) -> OciState {
        OciState {
            oci_version: husk_spec::SPEC_VERSION.to_string(),
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
            annotations: Default::default(),
        }
    }
}

/// Loads a record from `dir`, refusing one that names another container: a record is only
/// trusted for the directory it lives in (`state`, `delete --force` act on what it names).
pub(crate) fn load_checked<T: serde::de::DeserializeOwned>(
    dir: &ContainerDir,
    name: &str,
    id_of: impl Fn(&T) -> &str,
) -> std::result::Result<T, StateError> {
    let rec: T = dir.load_from(name)?;
    if id_of(&rec) != dir.id() {
        return Err(StateError::Corrupt {
            id: dir.id().to_string(),
            path: dir.file(name),
            reason: format!("it records container {:?}", id_of(&rec)),
        });
    }
    Ok(rec)
}

pub(crate) fn load_footprint(dir: &ContainerDir) -> std::result::Result<Footprint, StateError> {
    load_checked(dir, FOOTPRINT_FILE, |f: &Footprint| f.id.as_str())
}

/// `state.json`, checked like [`load_checked`].
pub(crate) fn load_record(
    dir: &ContainerDir,
) -> std::result::Result<crate::record::Record, StateError> {
    load_checked(dir, "state.json", |r: &crate::record::Record| r.id.as_str())
}

/// How many mounts sit exactly on `path` in husk's mount namespace.
fn mounts_at(path: &Path) -> usize {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return 0;
    };
    let want = path.as_os_str().as_encoded_bytes();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| unescape(m) == want)
        .count()
}

/// mountinfo escapes space, tab, newline and backslash as `\NNN` (octal).
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let n = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

impl Runtime {
    /// The state directory for a new container. An abandoned one of the same id (a `create`
    /// that was killed: no `state.json`, nobody holding its lock) is cleared away first.
    pub(crate) fn new_container_dir(&self, id: &str) -> Result<ContainerDir> {
        match self.store.create(id) {
            Err(StateError::AlreadyExists { .. }) => {
                let dir = match self.store.open_dir(id, Lock::TryExclusive) {
                    Ok(dir) if dir.is_current() && !dir.has_state() => dir,
                    _ => return Err(StateError::AlreadyExists { id: id.into() }.into()),
                };
                tracing::info!("container {id}: clearing what a killed create left");
                self.reap_dir(dir)?;
                Ok(self.store.create(id)?)
            }
            other => Ok(other?),
        }
    }

    /// Removes a container found through its footprint alone (its `state.json` is missing
    /// or damaged), then its state directory, whose lock `dir` holds.
    pub(crate) fn reap_dir(&self, dir: ContainerDir) -> Result<()> {
        match load_footprint(&dir) {
            Ok(fp) => {
                fp.reap()?;
                let held = dir.file(crate::netdev::NETNS_FILE);
                crate::netdev::release(&held, &fp.net_devices);
            }
            // Killed before the first side effect: there is nothing but the directory.
            Err(StateError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        // A killed restore's bind of the rootfs: detached first, or removing the directory
        // would remove the bundle's rootfs through it.
        crate::restore::detach_leftover_root(dir.path());
        Ok(dir.remove()?)
    }

    /// `state` of a container without a readable `state.json`: being created (its lock is
    /// held), or left by a killed `create`.
    pub(crate) fn footprint_state(&self, dir: &ContainerDir) -> Result<OciState> {
        let fp = load_footprint(dir)?;
        let status = if dir.is_locked() {
            Status::Creating
        } else {
            Status::Stopped
        };
        Ok(fp.oci_state(status))
    }
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/a\040b\134c"), b"/a b\\c");
        assert_eq!(unescape("/plain"), b"/plain");
        assert_eq!(unescape(r"/trail\04"), br"/trail\04");
    }
}
