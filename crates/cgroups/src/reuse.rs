//! Checks on a cgroup that already exists when a container is created in it (a `cgroupsPath`
//! chosen by the caller, or a leftover): it must not be frozen (the init would hang in the
//! kernel's freezer, unkillable by `create`'s own error path) and must not already hold
//! processes (another container's: runc >= 1.2 refuses this too).

use std::path::{Path, PathBuf};

use crate::fsx;
use crate::{CgroupError, Manager, Mode};

impl Manager {
    /// Fails when a directory of the container's cgroup is frozen (by itself or through an
    /// ancestor) or holds processes. Run after the directories exist. A directory in `created`
    /// was just made by this create: it can hold no processes yet, so its `cgroup.procs`
    /// files are not read (ten of them on a v1 host, each a kernfs open under load).
    pub(crate) fn check_usable(&self, created: &[PathBuf]) -> Result<(), CgroupError> {
        for (_, dir) in self.dirs() {
            if created.iter().any(|c| c == dir) {
                continue;
            }
            let mut pids = Vec::new();
            fsx::all_pids(dir, &mut pids)?;
            if !pids.is_empty() {
                return Err(CgroupError::Rejected(format!(
                    "container's cgroup is not empty: {} process(es) found in {}",
                    pids.len(),
                    dir.display()
                )));
            }
        }
        if let Some(dir) = self.frozen_dir()? {
            return Err(CgroupError::Rejected(format!(
                "cgroup {} is frozen: thaw it or choose another cgroupsPath",
                dir.display()
            )));
        }
        Ok(())
    }

    fn frozen_dir(&self) -> Result<Option<&Path>, CgroupError> {
        if let Some(dir) = self.paths.get("") {
            // `frozen` in cgroup.events is the effective state, ancestors included.
            let events = fsx::read_opt(dir, "cgroup.events")?.unwrap_or_default();
            let own = fsx::read_opt(dir, "cgroup.freeze")?.unwrap_or_default();
            if fsx::keyed(&events, "frozen") == Some(1) || own.trim() == "1" {
                return Ok(Some(dir));
            }
        }
        if self.mode != Mode::Unified {
            if let Some(dir) = self.path_for("freezer") {
                // v1: a child of a frozen cgroup reports FROZEN (or FREEZING) too.
                let state = fsx::read_opt(dir, "freezer.state")?.unwrap_or_default();
                if !state.trim().is_empty() && state.trim() != "THAWED" {
                    return Ok(Some(dir));
                }
            }
        }
        Ok(None)
    }
}
