//! husk's cgroup manager (runc's "cgroupfs" driver): resolves a container's cgroup paths,
//! creates them, applies `linux.resources`, moves processes in, freezes, signals, reports
//! stats and removes them again, on cgroup v1, hybrid and v2 hosts.
//!
//! The [`Manager`] holds only resolved paths and its [`Driver`], so the runtime stores it in
//! its state file and later invocations (`kill`, `pause`, `events`, `delete`) use it without
//! detecting anything. Two drivers decide who makes and removes the cgroup: husk itself
//! (cgroupfs) or systemd (`--systemd-cgroup`, a transient unit, see `systemd.rs`); the
//! resource writers and the freezer, kill and stats code are the same for both.

mod common;
mod devices;
mod error;
mod fsx;
mod layout;
mod ops;
mod reuse;
pub mod stats;
mod sys;
mod systemd;
mod systemd_devices;
mod v1;
mod v2;

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use error::CgroupError;
pub use husk_systemd::Instance as SystemdInstance;
pub use layout::{detect, Hierarchy, Layout, CGROUP_ROOT};
pub use stats::Stats;
pub use systemd::Driver;

use fsx::Ver;

/// Which kind of host a [`Manager`] was resolved on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    V1,
    Hybrid,
    Unified,
}

/// The cgroup(s) of one container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Manager {
    mode: Mode,
    /// Like runc's state.json `cgroup_paths`: v1 controller (or "name=systemd") -> directory;
    /// the key "" is the v2 directory (the only entry on v2 hosts).
    paths: BTreeMap<String, PathBuf>,
    /// Mount point of the v2 hierarchy (v2 and hybrid hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unified_mount: Option<PathBuf>,
    /// Who makes and removes the cgroup (absent in state files = cgroupfs).
    #[serde(default, skip_serializing_if = "Driver::is_fs")]
    driver: Driver,
}

impl Manager {
    /// Resolves the cgroup of container `id` like runc's cgroupfs driver:
    /// an absolute `cgroups_path` is taken below each hierarchy's root; a relative one below
    /// this process's own cgroup (v1: per hierarchy; v2: its parent, which has no processes);
    /// none or empty means the relative path `<id>` (runc has no default parent).
    /// With `systemd` (`--systemd-cgroup`: the system's or, rootless, the user's manager),
    /// `cgroups_path` is runc's `slice:prefix:name` and the cgroup is the unit's (on v1 and
    /// hybrid hosts its path in every hierarchy). Touches nothing (a user's manager is asked
    /// where its cgroup is).
    pub fn new(
        layout: &Layout,
        id: &str,
        cgroups_path: Option<&str>,
        systemd: Option<SystemdInstance>,
    ) -> Result<Manager, CgroupError> {
        if let Some(instance) = systemd {
            return Manager::new_systemd(layout, id, cgroups_path, instance);
        }
        let path = cgroups_path.filter(|p| !p.is_empty()).unwrap_or(id);
        let (comps, absolute) = layout::clean(path);
        if comps.is_empty() {
            let what = if absolute {
                "the root cgroup"
            } else {
                "husk's own cgroup"
            };
            return Err(CgroupError::Config(format!(
                "cgroupsPath {path:?} resolves to {what}"
            )));
        }
        let inner = format!("/{}", comps.join("/"));
        let base = |own: &str| {
            if absolute {
                inner.clone()
            } else {
                format!("{}{inner}", own.trim_end_matches('/'))
            }
        };
        let mut paths = BTreeMap::new();
        let mut unified_mount = None;
        for h in layout.hierarchies() {
            let dir = layout::join(&h.mount, &base(&h.own));
            for c in &h.controllers {
                paths.insert(c.clone(), dir.clone());
            }
        }
        let mode = match layout {
            Layout::V1 { .. } => Mode::V1,
            Layout::Hybrid { unified, .. } => {
                paths.insert(
                    String::new(),
                    layout::join(&unified.mount, &base(&unified.own)),
                );
                unified_mount = Some(unified.mount.clone());
                Mode::Hybrid
            }
            Layout::Unified { mount } => {
                let dir = if absolute {
                    layout::join(mount, &inner)
                } else {
                    let own = layout::own_v2_cgroup()?;
                    layout::join(
                        mount,
                        &format!(
                            "{}{inner}",
                            layout::parent_cgroup(&own).trim_end_matches('/')
                        ),
                    )
                };
                paths.insert(String::new(), dir);
                unified_mount = Some(mount.clone());
                Mode::Unified
            }
        };
        require_devices(mode, &paths)?;
        Ok(Manager {
            mode,
            paths,
            unified_mount,
            driver: Driver::Fs,
        })
    }

    /// The systemd driver's [`Manager`]; cold, so the cgroupfs path's pages stay as they were.
    #[cold]
    #[inline(never)]
    fn new_systemd(
        layout: &Layout,
        id: &str,
        cgroups_path: Option<&str>,
        instance: SystemdInstance,
    ) -> Result<Manager, CgroupError> {
        let (place, (mode, paths, unified_mount)) =
            systemd::resolve(layout, id, cgroups_path, instance)?;
        require_devices(mode, &paths)?;
        Ok(Manager {
            mode,
            paths,
            unified_mount,
            driver: Driver::Systemd {
                unit: place.unit,
                slice: place.slice,
                user: instance == SystemdInstance::User,
                annotations: Vec::new(),
            },
        })
    }

    /// Keeps the `org.systemd.property.*` annotations for the unit the systemd driver will
    /// create (checked now, so a bad one fails before anything is made). The cgroupfs
    /// driver ignores them, as runc does.
    pub fn with_unit_annotations<'a>(
        mut self,
        annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<Manager, CgroupError> {
        if let Driver::Systemd { annotations: a, .. } = &mut self.driver {
            *a = annotations
                .into_iter()
                .filter(|(k, _)| k.starts_with(husk_systemd::ANNOTATION_PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            a.sort();
            husk_systemd::from_annotations(a.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(systemd::err)?;
        }
        Ok(self)
    }

    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    /// Whether the cgroup can only be made once the init exists ([`Manager::enter`]): the
    /// systemd driver creates its unit around the init's pid. The init is then cloned
    /// outside it and must wait for the parent before doing anything else.
    pub fn made_around_pid(&self) -> bool {
        !self.driver.is_fs()
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// All resolved directories, keyed like runc's `cgroup_paths` ("" = v2 directory).
    pub fn paths(&self) -> &BTreeMap<String, PathBuf> {
        &self.paths
    }

    /// The directory holding `controller`'s files: on v2 the container's only directory.
    pub fn path_for(&self, controller: &str) -> Option<&Path> {
        match self.mode {
            Mode::Unified => self.paths.get(""),
            _ => self
                .paths
                .get(controller)
                .filter(|_| !controller.is_empty()),
        }
        .map(PathBuf::as_path)
    }

    /// Every distinct directory with its hierarchy version (co-mounted controllers share one).
    fn dirs(&self) -> Vec<(Ver, &Path)> {
        let mut seen = BTreeSet::new();
        self.paths
            .iter()
            .filter(|(_, p)| seen.insert(p.as_path()))
            .map(|(k, p)| (if k.is_empty() { Ver::V2 } else { Ver::V1 }, p.as_path()))
            .collect()
    }

    fn v2_dir(&self) -> Option<&Path> {
        self.paths.get("").map(PathBuf::as_path)
    }

    /// Creates the cgroup directories (and missing parents) and applies `resources`. On
    /// failure everything this call created is removed again.
    /// With the systemd driver this only validates: the unit is made by [`Manager::enter`].
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
        if let Some(r) = resources {
            self.validate(r)?;
        }
        if self.made_around_pid() {
            return Ok(());
        }
        let mut created = Vec::new();
        let result = self.create_inner(resources, &mut created);
        if result.is_err() {
            for dir in created.iter().rev() {
                if let Err(e) = fsx::rmdir(dir, false) {
                    tracing::warn!("cleanup after failed cgroup creation: {e}");
                }
            }
        }
        result
    }

    fn validate(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if self.mode == Mode::Unified {
            return v2::validate(r);
        }
        // runc's words (even for an empty map, as runc), which clients match.
        if r.unified().is_some() {
            return Err(CgroupError::Rejected(
                "invalid configuration: cannot use unified on cgroup v1 (linux.resources.unified)"
                    .into(),
            ));
        }
        if let Some(rules) = r.devices() {
            devices::Emulator::from_rules(&devices::parse_rules(rules)?)?;
        }
        Ok(())
    }

    fn create_inner(
        &self,
        resources: Option<&LinuxResources>,
        created: &mut Vec<PathBuf>,
    ) -> Result<(), CgroupError> {
        for (_, dir) in self.dirs() {
            fsx::mkdir_p(dir, created)?;
        }
        if self.driver.is_fs() {
            // A systemd unit is new (systemd refuses an existing name) and holds the init.
            self.check_usable(created)?;
        }
        // Even without resources: v1 cpusets need cpus/mems before any task can join, and
        // v2 controllers are enabled now so that a later `apply` finds their files.
        let none = LinuxResources::default();
        let r = resources.unwrap_or(&none);
        match self.mode {
            Mode::Unified => {
                let (Some(mount), Some(dir)) = (&self.unified_mount, self.v2_dir()) else {
                    return Ok(());
                };
                let available = fsx::read(mount, "cgroup.controllers")?;
                let available: Vec<&str> = available.split_whitespace().collect();
                common::enable_controllers(mount, dir, &available);
                v2::apply_v2(dir, r, v2::Phase::Create)
            }
            _ => self.apply_v1(r, created),
        }
    }

    /// Puts `pid` (the new init, still waiting) into the container's cgroup when the driver
    /// makes the cgroup around it: systemd creates the unit with `pid` in it and waits for
    /// the job, then `resources` are written as by `create`. If anything fails the unit is
    /// stopped again. Nothing to do for the cgroupfs driver (the init was born inside).
    pub fn enter(&self, pid: i32, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
        if self.driver.is_fs() {
            return Ok(());
        }
        self.enter_systemd(pid, resources)
    }

    #[cold]
    #[inline(never)]
    fn enter_systemd(
        &self,
        pid: i32,
        resources: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        let Driver::Systemd {
            unit,
            slice,
            annotations,
            ..
        } = &self.driver
        else {
            return Ok(());
        };
        let v1 = self.mode != Mode::Unified;
        let props = systemd::unit_properties(unit, slice, pid, resources, annotations, v1)?;
        let mut sd = systemd::connect(self.driver.instance())?;
        sd.start_transient(unit, &props).map_err(systemd::err)?;
        let mut created = Vec::new();
        self.create_inner(resources, &mut created)
            // v1: systemd put the init in the hierarchies it manages; the directories husk
            // made (cpuset, freezer, ...) are joined here, as runc's joinCgroups does.
            .and_then(|()| if v1 { self.add_process(pid) } else { Ok(()) })
            .inspect_err(|_| {
                // The init may be a pid namespace's init, which ignores systemd's SIGTERM.
                let _ = self.kill_all(libc::SIGKILL);
                if let Err(e) = sd.stop(unit) {
                    tracing::warn!("cleanup after failed cgroup setup: {e}");
                }
                for dir in created.iter().rev() {
                    if let Err(e) = fsx::rmdir(dir, false) {
                        tracing::warn!("cleanup after failed cgroup setup: {e}");
                    }
                }
            })
    }

    /// The container's cgroup2 directory, opened for clone3(CLONE_INTO_CGROUP): on v2 hosts,
    /// and for the cgroup2 part of hybrid hosts. `None` on pure v1 hosts.
    pub fn clone_into_fd(&self) -> Option<Result<OwnedFd, CgroupError>> {
        let dir = self.v2_dir()?;
        Some(
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(dir)
                .map(OwnedFd::from)
                .map_err(|e| error::io_err("open cgroup", dir, &e)),
        )
    }

    /// The v1 `tasks` files a new single-threaded process writes "0" to, to join its v1
    /// cgroups itself. The kernel lets a thread that moves itself skip the global threadgroup
    /// lock: about 0.3 ms here, against 5-15 ms for a `cgroup.procs` write after idle. Empty
    /// on v2 hosts.
    pub fn self_join_files(&self) -> Vec<PathBuf> {
        self.dirs()
            .into_iter()
            .filter(|(ver, _)| *ver == Ver::V1)
            .map(|(_, dir)| dir.join("tasks"))
            .collect()
    }

    /// An existing sub-cgroup of the container's, for `exec --cgroup [controller:]path`: in
    /// every hierarchy, or on v1 only in `controller`'s. The directories must exist; `/` is
    /// the container's cgroup itself. Failures use runc's words, which its users match: "bad
    /// sub cgroup path", "unknown controller", "error adding pid to cgroups".
    pub fn sub_cgroup(&self, controller: Option<&str>, rel: &str) -> Result<Manager, CgroupError> {
        // As runc: the path is cleaned first, and must stay at or below the container's cgroup
        // ("a/../b" is fine, "../sibling" is not). "/" (or "") is the container's own cgroup.
        if escapes(rel) {
            return Err(CgroupError::SubCgroup(format!(
                "bad sub cgroup path: {rel}"
            )));
        }
        let (comps, _) = layout::clean(rel);
        let below = comps.join("/");
        let mut sub = self.clone();
        let mut found = false;
        for (key, dir) in sub.paths.iter_mut() {
            let selected = match controller {
                None => true,
                // On v2 every controller lives in the one directory.
                Some(c) => self.mode == Mode::Unified || key == c || key.split(',').any(|k| k == c),
            };
            if selected {
                if !below.is_empty() {
                    *dir = dir.join(&below);
                }
                if !dir.is_dir() {
                    return Err(CgroupError::SubCgroup(format!(
                        "error adding pid to cgroups: {}: no such file or directory",
                        dir.display()
                    )));
                }
                found = true;
            }
        }
        if !found {
            return Err(CgroupError::SubCgroup(format!(
                "unknown controller {} in --cgroup",
                controller.unwrap_or("")
            )));
        }
        Ok(sub)
    }

    /// Moves process `pid` into the container's cgroup in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for (ver, dir) in self.dirs() {
            fsx::add_pid(ver, dir, pid)?;
        }
        Ok(())
    }

    /// Applies `resources` to the existing cgroup (`husk update`). Only the settings present
    /// are written.
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        self.validate(resources)?;
        if !self.driver.is_fs() {
            self.apply_systemd(resources)?;
        }
        match (self.mode, self.v2_dir()) {
            (Mode::Unified, Some(dir)) => v2::apply_v2(dir, resources, v2::Phase::Update),
            _ => self.apply_v1(resources, &[]),
        }
    }

    /// How many processes the kernel's OOM killer has killed in this cgroup so far
    /// (`oom_kill` of v1 `memory.oom_control` or v2 `memory.events`); 0 when not reported.
    pub fn oom_kills(&self) -> Result<u64, CgroupError> {
        let (dir, file) = match self.mode {
            Mode::Unified => (self.v2_dir(), "memory.events"),
            _ => (self.path_for("memory"), "memory.oom_control"),
        };
        let Some(dir) = dir else { return Ok(0) };
        Ok(fsx::read_opt(dir, file)?
            .and_then(|t| fsx::keyed(&t, "oom_kill"))
            .unwrap_or(0))
    }

    /// `update` with the systemd driver: the unit's properties first (as runc).
    #[cold]
    #[inline(never)]
    fn apply_systemd(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Driver::Systemd { unit, .. } = &self.driver else {
            return Ok(());
        };
        let props = systemd::resource_properties(resources, self.mode != Mode::Unified)?;
        if !props.is_empty() {
            let mut sd = systemd::connect(self.driver.instance())?;
            sd.set_properties(unit, &props).map_err(systemd::err)?;
        }
        Ok(())
    }

    /// Stops the systemd driver's unit.
    #[cold]
    #[inline(never)]
    fn stop_systemd(&self) -> Result<(), CgroupError> {
        let Driver::Systemd { unit, .. } = &self.driver else {
            return Ok(());
        };
        match systemd::connect(self.driver.instance())?.stop(unit) {
            Ok(()) => {}
            // systemd stayed silent but the unit's cgroup is gone: nothing is left.
            Err(e @ husk_systemd::SystemdError::NoAnswer { .. })
                if self
                    .v2_dir()
                    .or(self.path_for("name=systemd"))
                    .is_some_and(|d| !d.exists()) =>
            {
                tracing::warn!("{e}; its cgroup is gone already");
            }
            Err(e) => return Err(systemd::err(e)),
        }
        Ok(())
    }

    /// Removes the container's cgroup (and any sub-cgroups) in every hierarchy, waiting
    /// briefly while exiting processes drain. Already removed directories are fine.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        if !self.driver.is_fs() {
            self.stop_systemd()?;
        }
        // Once one hierarchy stayed busy through the retries the processes are still alive,
        // so the others are tried once only.
        let mut first_err = None;
        for (_, dir) in self.dirs() {
            if let Err(e) = fsx::rmdir_tree(dir, first_err.is_none()) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Device isolation must not silently disappear on v1 (runc treats this as fatal too).
fn require_devices(mode: Mode, paths: &BTreeMap<String, PathBuf>) -> Result<(), CgroupError> {
    if mode != Mode::Unified && !paths.contains_key("devices") {
        return Err(CgroupError::Unsupported(
            "cgroup v1: the devices controller is not mounted".into(),
        ));
    }
    Ok(())
}

/// Whether a relative cgroup path leaves the directory it is relative to once cleaned:
/// "..", "a/../..", "../sibling".
fn escapes(rel: &str) -> bool {
    let mut depth = 0usize;
    for comp in rel.split('/') {
        match comp {
            "" | "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::escapes;

    #[test]
    fn sub_cgroup_paths_that_leave_the_container() {
        for bad in ["..", "../x", "a/../..", "/../x", "./.."] {
            assert!(escapes(bad), "{bad}");
        }
        for ok in ["", "/", "a", "/a/b", "a/../b", "a/./b/.."] {
            assert!(!escapes(ok), "{ok}");
        }
    }
}
