//! Which namespaces the container gets, and where each is made or joined.
//!
//! New namespaces are created by the one `clone3` call. Namespaces given by path are joined in
//! the parent just around that call (so the child is born in them and needs no privilege in
//! them), except the mount namespace, which only the child may enter. A new time namespace is
//! unshared in the parent too, because its offsets must be written before a process enters it.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::error::{Cause, NamespaceError};
use crate::RuntimeError;

pub(crate) fn flag_of(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

/// `/proc/PID/ns/<name>` for a namespace flag.
pub(crate) fn proc_name(flag: libc::c_int) -> &'static str {
    match flag {
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWNET => "net",
        libc::CLONE_NEWNS => "mnt",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWUSER => "user",
        libc::CLONE_NEWCGROUP => "cgroup",
        _ => "time",
    }
}

pub(crate) struct Join {
    pub fd: OwnedFd,
    pub flag: libc::c_int,
}

pub(crate) struct Namespaces {
    /// New namespaces made by clone3.
    pub clone_flags: u64,
    /// New namespaces the child unshares itself (a cgroup namespace after it joined its cgroup).
    pub child_unshare: libc::c_int,
    pub parent_joins: Vec<Join>,
    pub child_joins: Vec<Join>,
    pub new_user: bool,
    /// The container has a pid namespace of its own (new or joined).
    pub pid_ns: bool,
    pub new_uts: bool,
    /// Contents for /proc/self/timens_offsets of a new time namespace.
    pub time_offsets: Option<String>,
    /// A user namespace is joined by path and a new pid (or time) namespace is wanted: the
    /// child makes them after joining and forks once more, so the grandchild is the init.
    pub fork_again: bool,
    /// A user namespace is joined by path.
    pub joined_user: bool,
    pub uid_map: String,
    pub gid_map: String,
    /// Who writes the maps of a new user namespace (root, or a user via newuidmap).
    pub map_writer: Option<crate::userns::MapWriter>,
}

fn id_map(maps: Option<&Vec<LinuxIdMapping>>) -> String {
    maps.into_iter()
        .flatten()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

impl Namespaces {
    /// `cgroup_via_clone`: the child is born in its cgroup (cgroup v2 CLONE_INTO_CGROUP), so a new
    /// cgroup namespace can be made at clone time.
    pub fn plan(spec: &Spec, cgroup_via_clone: bool) -> Result<Namespaces, RuntimeError> {
        let linux = spec.linux().as_ref();
        let mut ns = Namespaces {
            clone_flags: 0,
            child_unshare: 0,
            parent_joins: Vec::new(),
            child_joins: Vec::new(),
            new_user: false,
            pid_ns: false,
            new_uts: false,
            time_offsets: None,
            fork_again: false,
            joined_user: false,
            uid_map: id_map(linux.and_then(|l| l.uid_mappings().as_ref())),
            gid_map: id_map(linux.and_then(|l| l.gid_mappings().as_ref())),
            map_writer: crate::userns::plan(spec)?,
        };
        let mut user_join = None;
        for n in linux
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
        {
            let flag = flag_of(n.typ());
            if flag == libc::CLONE_NEWPID {
                ns.pid_ns = true;
            }
            match n.path() {
                Some(path) if !path.as_os_str().is_empty() => {
                    let fd: OwnedFd = File::open(path)
                        .map_err(|e| NamespaceError {
                            step: format!("open {} namespace", proc_name(flag)),
                            path: Some(path.clone()),
                            source: e.into(),
                        })?
                        .into();
                    let join = Join { fd, flag };
                    match flag {
                        libc::CLONE_NEWUSER => user_join = Some(join),
                        libc::CLONE_NEWNS => ns.child_joins.push(join),
                        _ => ns.parent_joins.push(join),
                    }
                }
                _ => match flag {
                    libc::CLONE_NEWUSER => ns.new_user = true,
                    libc::CLONE_NEWUTS => {
                        ns.new_uts = true;
                        ns.clone_flags |= flag as u64;
                    }
                    libc::CLONE_NEWTIME => ns.time_offsets = Some(time_offsets(spec)),
                    libc::CLONE_NEWCGROUP if !cgroup_via_clone => ns.child_unshare |= flag,
                    _ => ns.clone_flags |= flag as u64,
                },
            }
        }
        if ns.new_user {
            ns.clone_flags |= libc::CLONE_NEWUSER as u64;
        }
        if let Some(user) = user_join {
            // Joining an existing user namespace: every other namespace must be made or
            // joined from inside it, so the child does it all after setns (a pid namespace
            // given by path is still entered by the parent around the clone).
            let mut joins = vec![user];
            let (pid, others): (Vec<Join>, Vec<Join>) = ns
                .parent_joins
                .drain(..)
                .partition(|j| j.flag == libc::CLONE_NEWPID);
            ns.parent_joins = pid;
            joins.extend(others);
            joins.append(&mut ns.child_joins);
            ns.child_joins = joins;
            ns.child_unshare |= ns.clone_flags as libc::c_int;
            ns.clone_flags = 0;
            if ns.time_offsets.is_some() {
                ns.child_unshare |= libc::CLONE_NEWTIME;
            }
            ns.fork_again = ns.child_unshare & (libc::CLONE_NEWPID | libc::CLONE_NEWTIME) != 0;
            ns.joined_user = true;
        }
        if !crate::rootless::parent_may_switch() {
            ns.child_joins_all();
        }
        Ok(ns)
    }
}

impl Namespaces {
    /// Without root in the initial user namespace husk could enter a namespace for the clone
    /// but not come back (setns needs privilege over its own namespaces too): the child joins
    /// them all, right after a joined user namespace (which gives it the privilege), and
    /// forks once more when one of them is a pid or time namespace.
    fn child_joins_all(&mut self) {
        let moved: Vec<Join> = self.parent_joins.drain(..).collect();
        if moved
            .iter()
            .any(|j| j.flag & (libc::CLONE_NEWPID | libc::CLONE_NEWTIME) != 0)
        {
            self.fork_again = true;
        }
        let at = usize::from(
            self.child_joins
                .first()
                .is_some_and(|j| j.flag == libc::CLONE_NEWUSER),
        );
        self.child_joins.splice(at..at, moved);
    }

    /// The container has a mount namespace of its own (new, joined, or unshared by the child).
    pub fn has_mount_ns(&self) -> bool {
        self.clone_flags & libc::CLONE_NEWNS as u64 != 0
            || self.child_joins.iter().any(|j| j.flag == libc::CLONE_NEWNS)
            || self.child_unshare & libc::CLONE_NEWNS != 0
    }

    /// The container gets a new cgroup namespace (at clone time or unshared by the child).
    pub fn has_cgroup_ns(&self) -> bool {
        self.clone_flags & libc::CLONE_NEWCGROUP as u64 != 0
            || self.child_unshare & libc::CLONE_NEWCGROUP != 0
    }
}

fn time_offsets(spec: &Spec) -> String {
    let mut out = String::new();
    if let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    {
        for (clock, off) in offsets {
            out.push_str(&format!(
                "{clock} {} {}\n",
                off.secs().unwrap_or(0),
                off.nanosecs().unwrap_or(0)
            ));
        }
    }
    out
}

/// The parent's own namespaces, saved while it stands in the container's for the clone.
pub(crate) struct ParentSwitch {
    saved: Vec<Join>,
}

impl ParentSwitch {
    /// Enters the path namespaces the child must be born in, and a new time namespace.
    pub fn enter(ns: &Namespaces) -> Result<ParentSwitch, RuntimeError> {
        let mut sw = ParentSwitch::join(&ns.parent_joins)?;
        if let Some(offsets) = ns.time_offsets.as_ref().filter(|_| !ns.fork_again) {
            sw.save(libc::CLONE_NEWTIME)?;
            husk_sys::unshare(libc::CLONE_NEWTIME).map_err(|e| NamespaceError {
                step: "create time namespace".into(),
                path: None,
                source: e.into(),
            })?;
            if !offsets.is_empty() {
                std::fs::write("/proc/self/timens_offsets", offsets).map_err(|e| {
                    NamespaceError {
                        step: "write time namespace offsets".into(),
                        path: None,
                        source: e.into(),
                    }
                })?;
            }
        }
        Ok(sw)
    }

    /// Enters `joins` for the clone (`exec`: the container's pid namespace through a pidfd).
    pub fn join(joins: &[Join]) -> Result<ParentSwitch, RuntimeError> {
        let mut sw = ParentSwitch { saved: Vec::new() };
        for j in joins {
            sw.save(j.flag)?;
            husk_sys::setns(&j.fd, j.flag).map_err(|e| NamespaceError {
                step: format!("join {} namespace", proc_name(j.flag)),
                path: None,
                // ESRCH: the process behind the pidfd exited (a kill raced with exec).
                source: if e.0 == libc::ESRCH {
                    Cause::Stopped
                } else {
                    e.into()
                },
            })?;
        }
        Ok(sw)
    }

    fn save(&mut self, flag: libc::c_int) -> Result<(), RuntimeError> {
        let path = Path::new("/proc/self/ns").join(proc_name(flag));
        let fd: OwnedFd = File::open(&path)
            .map_err(|e| NamespaceError {
                step: "open".into(),
                path: Some(path),
                source: e.into(),
            })?
            .into();
        self.saved.push(Join { fd, flag });
        Ok(())
    }

    /// Back to the parent's own namespaces (also on error paths, via Drop).
    pub fn restore(&mut self) {
        for j in self.saved.drain(..).rev() {
            if let Err(e) = husk_sys::setns(&j.fd, j.flag) {
                tracing::warn!("cannot return to own {} namespace: {e}", proc_name(j.flag));
            }
        }
    }
}

impl Drop for ParentSwitch {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Writes uid_map and gid_map of a child in a new user namespace.
pub(crate) fn write_id_maps(pid: i32, ns: &Namespaces) -> Result<(), RuntimeError> {
    let writer = ns
        .map_writer
        .as_ref()
        .unwrap_or(&crate::userns::MapWriter::Direct);
    crate::userns::write_maps(pid, &ns.uid_map, &ns.gid_map, writer)
}
