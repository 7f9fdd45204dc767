//! The id maps of a container's new user namespace: the spec's rules for `linux.uidMappings`
//! and `linux.gidMappings`, and who writes them. Root writes `/proc/PID/{uid,gid}_map`
//! itself, any number of ranges. A non-root user may map only its own ids, one range of size
//! 1 (then `setgroups` must be denied first); anything more goes through the setuid helpers
//! `newuidmap`/`newgidmap` (Debian's `uidmap`), which check `/etc/subuid` and `/etc/subgid`.

use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::error::NamespaceError;
use crate::RuntimeError;

/// How the maps of a new user namespace are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MapWriter {
    /// Root: straight into /proc/PID/*_map.
    Direct,
    /// A non-root user mapping only its own uid and gid: `setgroups` is denied first (the
    /// container then cannot call setgroups(2)).
    OwnIds,
    /// A non-root user with more ranges: newuidmap and newgidmap.
    Helpers {
        newuidmap: PathBuf,
        newgidmap: PathBuf,
    },
}

fn spec_err(msg: String) -> RuntimeError {
    RuntimeError::Spec(msg)
}

/// Checks the container's mappings beyond husk-spec's rules (which need a user namespace
/// for mappings, mappings for a new one, and no empty range): no two ranges overlap, inside
/// or outside, and at most 340 of them. Chooses who writes them for a new user namespace.
pub(crate) fn plan(spec: &Spec) -> Result<Option<MapWriter>, RuntimeError> {
    let linux = spec.linux().as_ref();
    let (uid, gid) = husk_rootfs::idmap::container_maps(spec);
    for (maps, field) in [(uid, "linux.uidMappings"), (gid, "linux.gidMappings")] {
        husk_rootfs::idmap::validate_ranges(maps, field).map_err(spec_err)?;
    }
    let new_user = linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .any(|n| {
            n.typ() == LinuxNamespaceType::User
                && !n.path().as_ref().is_some_and(|p| !p.as_os_str().is_empty())
        });
    if !new_user {
        return Ok(None);
    }
    writer(uid, gid).map(Some)
}

fn writer(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<MapWriter, RuntimeError> {
    let (euid, egid) = (husk_sys::geteuid(), husk_sys::getegid());
    if euid == 0 {
        return Ok(MapWriter::Direct);
    }
    let own = |maps: &[LinuxIdMapping], id: u32| matches!(maps, [m] if m.host_id() == id && m.size() == 1);
    if own(uid, euid) && own(gid, egid) {
        return Ok(MapWriter::OwnIds);
    }
    match (find("newuidmap"), find("newgidmap")) {
        (Some(newuidmap), Some(newgidmap)) => Ok(MapWriter::Helpers {
            newuidmap,
            newgidmap,
        }),
        _ => Err(spec_err(format!(
            "linux.uidMappings/gidMappings: mapping more than your own uid {euid} and gid \
             {egid} as a non-root user needs newuidmap and newgidmap (Debian package uidmap) \
             and subordinate ids for your user in /etc/subuid and /etc/subgid"
        ))),
    }
}

/// `name` in $PATH, then in /usr/bin and /bin.
fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn ns_err(step: String, path: Option<PathBuf>, e: std::io::Error) -> RuntimeError {
    NamespaceError {
        step,
        path,
        source: e.into(),
    }
    .into()
}

/// Writes `uid_map` and `gid_map` (the kernel's text form) of process `pid`.
pub(crate) fn write_maps(
    pid: i32,
    uid_map: &str,
    gid_map: &str,
    writer: &MapWriter,
) -> Result<(), RuntimeError> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let write = |file: &str, data: &str| {
        let path = proc.join(file);
        std::fs::write(&path, data).map_err(|e| ns_err("write".into(), Some(path), e))
    };
    match writer {
        MapWriter::Direct => {
            write("uid_map", uid_map)?;
            write("gid_map", gid_map)
        }
        MapWriter::OwnIds => {
            write("setgroups", "deny")?;
            write("uid_map", uid_map)?;
            write("gid_map", gid_map)
        }
        MapWriter::Helpers {
            newuidmap,
            newgidmap,
        } => {
            helper(newuidmap, pid, uid_map, "/etc/subuid")?;
            helper(newgidmap, pid, gid_map, "/etc/subgid")
        }
    }
}

/// Runs `newuidmap PID inside outside count...`; on failure says what the user lacks.
fn helper(tool: &Path, pid: i32, map: &str, subids: &str) -> Result<(), RuntimeError> {
    let out = Command::new(tool)
        .arg(pid.to_string())
        .args(map.split_whitespace())
        .output()
        .map_err(|e| ns_err(format!("run {}", tool.display()), None, e))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let user = std::env::var("USER").unwrap_or_else(|_| husk_sys::geteuid().to_string());
    let why = format!(
        "{} ({}): the host ids must lie in a range that {subids} gives user {user}",
        said.trim(),
        out.status
    );
    let step = format!(
        "{} {pid} {}",
        tool.display(),
        map.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    Err(ns_err(step, None, std::io::Error::other(why)))
}

/// Whether process `pid`'s user namespace denies setgroups(2) (a rootless container that
/// maps only its owner's ids): `exec` then does not call it.
pub(crate) fn setgroups_denied(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/setgroups")).is_ok_and(|s| s.trim() == "deny")
}

/// Whether the user namespace the spec joins by path denies setgroups(2), as far as can be
/// told: for `/proc/PID/ns/user`, that process's `setgroups` file.
pub(crate) fn joined_setgroups_denied(spec: &Spec) -> bool {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::User)
        .and_then(|n| n.path().clone());
    let pid = path.as_deref().and_then(|p| {
        let rest = p.strip_prefix("/proc").ok()?;
        let mut parts = rest.iter();
        let pid: i32 = parts.next()?.to_str()?.parse().ok()?;
        (parts.next()? == "ns" && parts.next()? == "user" && parts.next().is_none()).then_some(pid)
    });
    pid.is_some_and(setgroups_denied)
}
