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

/// The path of the user namespace the spec joins, if it joins one.
fn joined_user_path(spec: &Spec) -> Option<PathBuf> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::User)
        .and_then(|n| n.path().clone())
        .filter(|p| !p.as_os_str().is_empty())
}

/// The kernel's map text (`inside outside count` lines) as mappings.
fn parse_map(text: &[u8]) -> Vec<LinuxIdMapping> {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(|n| n.parse::<u32>());
            let (c, h, s) = (f.next()?.ok()?, f.next()?.ok()?, f.next()?.ok()?);
            oci_spec::runtime::LinuxIdMappingBuilder::default()
                .container_id(c)
                .host_id(h)
                .size(s)
                .build()
                .ok()
        })
        .collect()
}

fn sorted(maps: &[LinuxIdMapping]) -> Vec<(u32, u32, u32)> {
    let mut v: Vec<_> = maps
        .iter()
        .map(|m| (m.container_id(), m.host_id(), m.size()))
        .collect();
    v.sort_unstable();
    v
}

/// The id maps of the user namespace at `path`: read from inside it, or from husk's own
/// when `path` is husk's own user namespace (which setns refuses to enter).
fn maps_at(path: &Path) -> Result<(Vec<u8>, Vec<u8>), RuntimeError> {
    use std::os::unix::fs::MetadataExt;
    let step = || "read the id maps of the user namespace".to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| ns_err("open user namespace".into(), Some(path.to_path_buf()), e))?;
    let own = std::fs::metadata("/proc/self/ns/user")
        .and_then(|o| {
            file.metadata()
                .map(|m| (m.dev(), m.ino()) == (o.dev(), o.ino()))
        })
        .unwrap_or(false);
    if own {
        let read = |f: &str| {
            std::fs::read(format!("/proc/self/{f}"))
                .map_err(|e| ns_err(step(), Some(path.to_path_buf()), e))
        };
        return Ok((read("uid_map")?, read("gid_map")?));
    }
    husk_sys::userns::maps_of(std::os::fd::AsFd::as_fd(&file)).map_err(|e| {
        NamespaceError {
            step: step(),
            path: Some(path.to_path_buf()),
            source: e.into(),
        }
        .into()
    })
}

/// A user namespace joined by path, as runc: mappings the config gives must be the
/// namespace's own (containerd and CRI-O repeat them), and are refused otherwise; without
/// any, the namespace's are taken, so what needs the container's mapping (an `idmap` mount)
/// has it.
pub(crate) fn joined_mappings(spec: &mut Spec) -> Result<(), RuntimeError> {
    let Some(path) = joined_user_path(spec) else {
        return Ok(());
    };
    let (uid_text, gid_text) = maps_at(&path)?;
    let (uid, gid) = (parse_map(&uid_text), parse_map(&gid_text));
    let Some(linux) = spec.linux_mut() else {
        return Ok(());
    };
    let given_uid = linux.uid_mappings().clone().unwrap_or_default();
    let given_gid = linux.gid_mappings().clone().unwrap_or_default();
    if given_uid.is_empty() && given_gid.is_empty() {
        linux.set_uid_mappings(Some(uid));
        linux.set_gid_mappings(Some(gid));
        return Ok(());
    }
    if sorted(&given_uid) != sorted(&uid) || sorted(&given_gid) != sorted(&gid) {
        let show = |t: &[u8]| {
            String::from_utf8_lossy(t)
                .split_whitespace()
                .collect::<Vec<_>>()
                .chunks(3)
                .map(|c| c.join(" "))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(spec_err(format!(
            "linux.uidMappings/gidMappings: user namespaces enabled, but both namespace path \
             and non-matching mapping specified -- you may only provide one ({} maps uids {}; \
             gids {})",
            path.display(),
            show(&uid_text),
            show(&gid_text)
        )));
    }
    Ok(())
}
