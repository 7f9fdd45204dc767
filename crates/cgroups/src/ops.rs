//! Operations on a running container's cgroup: freezing, listing and signalling processes.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use tracing::{debug, warn};

use crate::error::{io_err, CgroupError};
use crate::fsx::{self, Ver};
use crate::{Manager, Mode};

impl Manager {
    fn freezer_v1(&self) -> Result<&Path, CgroupError> {
        self.path_for("freezer").ok_or_else(|| {
            CgroupError::Unsupported("cgroup v1: the freezer controller is not mounted".into())
        })
    }

    fn unified_dir(&self) -> Option<&Path> {
        (self.mode == Mode::Unified)
            .then(|| self.path_for(""))
            .flatten()
    }

    /// Freezes every process of the container and waits until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match self.unified_dir() {
            Some(dir) => {
                fsx::write(Ver::V2, dir, "cgroup.freeze", "1")?;
                wait_frozen_v2(dir).inspect_err(|_| {
                    let _ = fsx::write_raw(dir, "cgroup.freeze", "0");
                })
            }
            None => {
                let dir = self.freezer_v1()?;
                freeze_v1(dir).inspect_err(|_| {
                    // Never leave the container half frozen.
                    let _ = fsx::write_raw(dir, "freezer.state", "THAWED");
                })
            }
        }
    }

    /// Lets the container's processes run again.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.unified_dir() {
            Some(dir) => fsx::write(Ver::V2, dir, "cgroup.freeze", "0"),
            None => fsx::write(Ver::V1, self.freezer_v1()?, "freezer.state", "THAWED"),
        }
    }

    /// Whether the container's cgroup itself is frozen (not merely an ancestor). Without a
    /// freezer (v1 host without it, kernel < 5.2 on v2) nothing can be frozen: false.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        if let Some(dir) = self.unified_dir() {
            return Ok(fsx::read_opt(dir, "cgroup.freeze")?.is_some_and(|s| s.trim() == "1"));
        }
        let Some(dir) = self.path_for("freezer") else {
            return Ok(false);
        };
        loop {
            match fsx::read(dir, "freezer.state")?.trim() {
                "THAWED" => return Ok(false),
                "FROZEN" => {
                    let own = fsx::read_opt(dir, "freezer.self_freezing")?;
                    return Ok(own.map_or(true, |s| s.trim() == "1"));
                }
                "FREEZING" => std::thread::sleep(Duration::from_millis(1)),
                other => {
                    return Err(CgroupError::Parse {
                        path: dir.join("freezer.state"),
                        what: format!("unknown state {other:?}"),
                    })
                }
            }
        }
    }

    /// Every process in the container's cgroup and its sub-cgroups.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = match self.mode {
            Mode::Unified => self.path_for(""),
            _ => self
                .path_for("devices")
                .or_else(|| self.paths.values().next().map(|p| p.as_path())),
        };
        let mut out = Vec::new();
        if let Some(dir) = dir {
            fsx::all_pids(dir, &mut out)?;
        }
        Ok(out)
    }

    /// Sends `signal` to every process of the container. SIGKILL on v2 uses `cgroup.kill`
    /// (kernel 5.14+), which cannot miss a forking process; otherwise the cgroup is frozen
    /// while the pids are listed and signalled, so none can escape by forking.
    pub fn kill_all(&self, signal: i32) -> Result<(), CgroupError> {
        if let Some(dir) = self.unified_dir() {
            if signal == libc::SIGKILL && fsx::exists(dir, "cgroup.kill") {
                return fsx::write(Ver::V2, dir, "cgroup.kill", "1");
            }
        }
        let can_freeze = match self.unified_dir() {
            Some(dir) => fsx::exists(dir, "cgroup.freeze"),
            None => self.path_for("freezer").is_some(),
        };
        let frozen = can_freeze
            && self.freeze().map_or_else(
                |e| {
                    warn!("signalling without freezing first: {e}");
                    false
                },
                |()| true,
            );
        let result = self.pids().and_then(|pids| {
            for pid in pids {
                match husk_sys::proc::kill(pid, signal) {
                    Ok(()) => {}
                    Err(husk_sys::Errno(libc::ESRCH)) => debug!(pid, "already gone"),
                    Err(errno) => {
                        return Err(CgroupError::Rejected(format!(
                            "cannot send signal {signal} to process {pid}: {errno}"
                        )))
                    }
                }
            }
            Ok(())
        });
        if frozen {
            self.thaw()?;
        }
        result
    }
}

/// cgroup v1 freezing, following runc: FREEZING may persist while tasks keep forking, so
/// FROZEN is re-written, with an occasional thaw and growing pauses, before giving up.
fn freeze_v1(dir: &Path) -> Result<(), CgroupError> {
    let mut pause = Duration::from_millis(1);
    for i in 0..1000 {
        if i % 50 == 49 {
            fsx::write(Ver::V1, dir, "freezer.state", "THAWED")?;
            std::thread::sleep(Duration::from_millis(10));
        }
        fsx::write(Ver::V1, dir, "freezer.state", "FROZEN")?;
        if i % 25 == 24 {
            std::thread::sleep(Duration::from_micros(10));
        }
        if i % 200 == 199 {
            std::thread::sleep(pause);
            pause *= 4;
        }
        match fsx::read(dir, "freezer.state")?.trim() {
            "FROZEN" => return Ok(()),
            "FREEZING" => continue,
            other => {
                return Err(CgroupError::Rejected(format!(
                    "unexpected freezer state {other:?} in {}",
                    dir.display()
                )))
            }
        }
    }
    Err(CgroupError::Rejected(format!(
        "unable to freeze {}: still FREEZING",
        dir.display()
    )))
}

/// Waits (up to 10 s, like runc) for `cgroup.events` to say "frozen 1".
fn wait_frozen_v2(dir: &Path) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.events");
    let file = File::open(&path).map_err(|e| io_err("open", &path, &e))?;
    let mut buf = [0u8; 256];
    let mut waited = Duration::ZERO;
    let mut step = Duration::from_micros(200);
    while waited < Duration::from_secs(10) {
        let n = file
            .read_at(&mut buf, 0)
            .map_err(|e| io_err("read", &path, &e))?;
        let text = String::from_utf8_lossy(&buf[..n]);
        if fsx::keyed(&text, "frozen") == Some(1) {
            return Ok(());
        }
        std::thread::sleep(step);
        waited += step;
        step = (step * 2).min(Duration::from_millis(10));
    }
    Err(CgroupError::Rejected(format!(
        "unable to freeze {}: timed out after 10s",
        dir.display()
    )))
}
