//! Idmapped mounts: a mount's `uidMappings`/`gidMappings` and the `idmap`/`ridmap` options.
//!
//! Everything happens in the parent, as the host's root, before the clone: the kernel only
//! idmaps a detached mount, and only for a caller privileged over the filesystem (the init,
//! inside its user namespace, is not). For each distinct mapping a user namespace is made
//! (`husk_sys::userns::with_maps`); the bind source is cloned with `open_tree` (with its
//! sub-mounts for `rbind`), given the mount's attributes, then `MOUNT_ATTR_IDMAP` (on every
//! mount of the tree for `ridmap`). A tmpfs is made detached with `fsmount` and idmapped the
//! same way. The child only attaches the result ([`MountKind::Attach`]).
//!
//! A mapping on-disk id `containerID` shows as `hostID` through the mount, as in runc and crun.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use husk_sys::mount::{
    mount_setattr, mount_setattr_idmap, open_tree, AT_RECURSIVE, OPEN_TREE_CLONE,
};
use husk_sys::userns::UsernsStep;
use husk_sys::Errno;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use crate::options::Options;
use crate::plan::{MountKind, MountOp};
use crate::RootfsError;

/// The kernel accepts at most this many lines in a uid_map or gid_map.
pub const MAX_MAP_LINES: usize = 340;

/// Checks one `uidMappings`/`gidMappings` list (`field` names it): every range non-empty and
/// within 32 bits, no two ranges overlapping inside or outside, at most 340 ranges.
pub fn validate_ranges(maps: &[LinuxIdMapping], field: &str) -> Result<(), String> {
    if maps.len() > MAX_MAP_LINES {
        return Err(format!(
            "{field}: {} ranges, the kernel allows at most {MAX_MAP_LINES}",
            maps.len()
        ));
    }
    let end = |start: u32, size: u32| u64::from(start) + u64::from(size);
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            return Err(format!("{field}[{i}].size: must be at least 1"));
        }
        for (start, name) in [(m.container_id(), "containerID"), (m.host_id(), "hostID")] {
            if end(start, m.size()) > u64::from(u32::MAX) {
                return Err(format!(
                    "{field}[{i}]: {name} {start} + size {} passes 4294967295",
                    m.size()
                ));
            }
        }
        for (j, o) in maps.iter().enumerate().take(i) {
            let overlaps =
                |a: u32, b: u32| u64::from(a) < end(b, o.size()) && u64::from(b) < end(a, m.size());
            if overlaps(m.container_id(), o.container_id()) {
                return Err(format!(
                    "{field}[{i}]: containerID range overlaps {field}[{j}]"
                ));
            }
            if overlaps(m.host_id(), o.host_id()) {
                return Err(format!("{field}[{i}]: hostID range overlaps {field}[{j}]"));
            }
        }
    }
    Ok(())
}

/// The container's `linux.uidMappings` and `linux.gidMappings` (empty when absent).
pub fn container_maps(spec: &Spec) -> (&[LinuxIdMapping], &[LinuxIdMapping]) {
    let linux = spec.linux().as_ref();
    let uid = linux.and_then(|l| l.uid_mappings().as_deref());
    let gid = linux.and_then(|l| l.gid_mappings().as_deref());
    (uid.unwrap_or_default(), gid.unwrap_or_default())
}

/// The kernel's form of a mapping list: `ID-inside ID-outside count` lines.
pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// User namespaces made for mappings, one per distinct (uid map, gid map), while a plan is
/// built. They are only needed until the mounts are idmapped.
#[derive(Default)]
pub(crate) struct Usernses(HashMap<(String, String), OwnedFd>);

impl Usernses {
    fn get(&mut self, uid: String, gid: String, what: &str) -> Result<&OwnedFd, RootfsError> {
        use std::collections::hash_map::Entry;
        match self.0.entry((uid, gid)) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => {
                let (uid, gid) = e.key();
                let fd = husk_sys::userns::with_maps(uid.as_bytes(), gid.as_bytes()).map_err(
                    |(step, errno)| {
                        let step = match step {
                            UsernsStep::Fork => "create a user namespace",
                            UsernsStep::UidMap => "write uid_map of its user namespace",
                            UsernsStep::GidMap => "write gid_map of its user namespace",
                            UsernsStep::Open => "open its user namespace",
                        };
                        RootfsError::Invalid(format!("{what}: idmapped mount: {step}: {errno}"))
                    },
                )?;
                Ok(e.insert(fd))
            }
        }
    }
}

/// The mapping a mount asks for: its own lists, or with `idmap`/`ridmap` alone the container's.
struct Wanted<'a> {
    uid: &'a [LinuxIdMapping],
    gid: &'a [LinuxIdMapping],
    recursive: bool,
}

fn wanted<'a>(
    spec: &'a Spec,
    m: &'a Mount,
    o: &Options,
    what: &str,
) -> Result<Option<Wanted<'a>>, RootfsError> {
    let bad = |msg: String| RootfsError::Invalid(format!("{what}: {msg}"));
    let uid = m.uid_mappings().as_deref().unwrap_or_default();
    let gid = m.gid_mappings().as_deref().unwrap_or_default();
    if uid.is_empty() != gid.is_empty() {
        return Err(bad(
            "id-mapped mounts must have both uidMappings and gidMappings".into(),
        ));
    }
    if uid.is_empty() && o.idmap.is_none() {
        return Ok(None);
    }
    let recursive = o.idmap == Some(true);
    if !uid.is_empty() {
        validate_ranges(uid, "uidMappings").map_err(bad)?;
        validate_ranges(gid, "gidMappings").map_err(bad)?;
        return Ok(Some(Wanted {
            uid,
            gid,
            recursive,
        }));
    }
    // `idmap` alone: the mount is mapped like the container's user namespace.
    let (uid, gid) = container_maps(spec);
    if uid.is_empty() || gid.is_empty() {
        return Err(bad(
            "the idmap/ridmap option without the mount's own uidMappings/gidMappings needs the \
             container's linux.uidMappings and linux.gidMappings"
                .into(),
        ));
    }
    Ok(Some(Wanted {
        uid,
        gid,
        recursive,
    }))
}

/// The operation for `mounts[idx]` if it is idmapped (`None` otherwise): a detached,
/// idmapped bind or tmpfs the child attaches, and whether it is a bind. Refuses what cannot
/// be idmapped.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mount_op(
    spec: &Spec,
    m: &Mount,
    idx: u32,
    dest: &[u8],
    rootfs: &Path,
    bundle: &Path,
    usernses: &mut Usernses,
) -> Result<Option<(MountOp, bool)>, RootfsError> {
    let what = format!("mounts[{idx}]");
    let o = Options::parse(m.options().as_deref().unwrap_or_default());
    let Some(want) = wanted(spec, m, &o, &what)? else {
        return Ok(None);
    };
    let bad = |msg: String| RootfsError::Invalid(format!("{what}: {msg}"));
    if husk_sys::geteuid() != 0 {
        return Err(bad(
            "id-mapped mounts are not supported for rootless containers (they need \
             CAP_SYS_ADMIN in the initial user namespace)"
                .into(),
        ));
    }
    let typ = m.typ().as_deref().unwrap_or("");
    let userns = usernses.get(map_text(want.uid), map_text(want.gid), &what)?;
    let bind = o.bind || typ == "bind";
    let (tree, file) = if bind {
        bind_tree(m, &o, bundle, &what)?
    } else if typ == "tmpfs" {
        if want.recursive {
            return Err(bad("ridmap: a tmpfs has no sub-mounts; use idmap".into()));
        }
        (tmpfs(rootfs, dest, &o, &what)?, false)
    } else {
        return Err(bad(format!(
            "id-mapped mounts are only supported for bind mounts and tmpfs, not type {typ:?}"
        )));
    };
    mount_setattr_idmap(tree.as_fd(), want.recursive, userns.as_fd()).map_err(|e| {
        bad(format!(
            "idmap the mount (mount_setattr MOUNT_ATTR_IDMAP): {e}{}",
            hint(e)
        ))
    })?;
    let op = MountOp {
        kind: MountKind::Attach(tree),
        dest: CString::new(dest.to_vec()).map_err(|_| bad("destination contains NUL".into()))?,
        file,
        flags: 0,
        propagation: o.propagation,
        spec_index: idx,
    };
    Ok(Some((op, bind)))
}

fn hint(e: Errno) -> &'static str {
    match e.0 {
        libc::EINVAL => " (the filesystem, or one under it with ridmap, cannot be idmapped)",
        libc::ENOSYS => " (the kernel has no mount_setattr: Linux 5.12 or newer is needed)",
        libc::EPERM => " (needs CAP_SYS_ADMIN over the filesystem)",
        _ => "",
    }
}

/// A detached copy of the bind source (its sub-mounts too with `rbind`), with the mount's
/// attributes set. Returns it and whether the source is a file. Made by the parent as the
/// host's root, it also serves bind mounts of a container in a user namespace, whose mapped
/// root may not reach the source.
pub(crate) fn bind_tree(
    m: &Mount,
    o: &Options,
    bundle: &Path,
    what: &str,
) -> Result<(OwnedFd, bool), RootfsError> {
    let bad = |msg: String| RootfsError::Invalid(format!("{what}: {msg}"));
    let src = m
        .source()
        .as_deref()
        .ok_or_else(|| bad("a bind mount needs a source".into()))?;
    let src = if src.is_absolute() {
        src.to_path_buf()
    } else {
        bundle.join(src)
    };
    let file = std::fs::metadata(&src)
        .map(|md| !md.is_dir())
        .unwrap_or(false);
    let c_src = CString::new(src.as_os_str().as_bytes())
        .map_err(|_| bad("source contains a NUL byte".into()))?;
    let flags = OPEN_TREE_CLONE | if o.recursive { AT_RECURSIVE } else { 0 };
    let tree = open_tree(husk_sys::CWD, &c_src, flags)
        .map_err(|e| bad(format!("bind {}: {e}", src.display())))?;
    let here = libc::AT_EMPTY_PATH as u32;
    let (set, clr) = o.attrs();
    let set_attrs = |flags, set: u64, clr: u64| -> Result<(), RootfsError> {
        if set | clr != 0 {
            mount_setattr(tree.as_fd(), c"", flags, set, clr)
                .map_err(|e| bad(format!("set attributes of {}: {e}", src.display())))?;
        }
        Ok(())
    };
    set_attrs(here, set, clr)?;
    set_attrs(here | AT_RECURSIVE, o.rec_set, o.rec_clr)?;
    Ok((tree, file))
}

/// A detached tmpfs with the mount's options (a copy of the image's directory with
/// `tmpcopyup`).
fn tmpfs(rootfs: &Path, dest: &[u8], o: &Options, what: &str) -> Result<OwnedFd, RootfsError> {
    if o.tmpcopyup {
        return crate::copyup::detached_tmpfs(rootfs, dest, &o.data, o.flags, what);
    }
    let bad = |msg: String| RootfsError::Invalid(format!("{what}: {msg}"));
    let ctx = husk_sys::mount::fsopen(c"tmpfs").map_err(|e| bad(format!("fsopen tmpfs: {e}")))?;
    for opt in o.data.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        let c = |s: &str| CString::new(s).map_err(|_| bad(format!("option {opt:?}: NUL byte")));
        let v = v.map(c).transpose()?;
        husk_sys::mount::fsconfig_set(ctx.as_fd(), &c(k)?, v.as_deref())
            .map_err(|e| bad(format!("tmpfs option {opt}: {e}")))?;
    }
    let (set, _) = o.attrs();
    husk_sys::mount::fsmount(ctx.as_fd(), set).map_err(|e| bad(format!("mount tmpfs: {e}")))
}

/// Whether this kernel idmaps mounts for husk: a detached tmpfs, else a clone of `/`, is
/// idmapped through a fresh user namespace. Needs root (as idmapped mounts do).
pub fn supported() -> bool {
    if husk_sys::geteuid() != 0 {
        return false;
    }
    let Ok(userns) = husk_sys::userns::with_maps(b"0 65534 1\n", b"0 65534 1\n") else {
        return false;
    };
    let tmpfs =
        husk_sys::mount::fsopen(c"tmpfs").and_then(|ctx| husk_sys::mount::fsmount(ctx.as_fd(), 0));
    if let Ok(t) = tmpfs {
        if mount_setattr_idmap(t.as_fd(), false, userns.as_fd()).is_ok() {
            return true;
        }
    }
    open_tree(husk_sys::CWD, c"/", OPEN_TREE_CLONE)
        .and_then(|t| mount_setattr_idmap(t.as_fd(), false, userns.as_fd()))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(v: &[(u32, u32, u32)]) -> Vec<LinuxIdMapping> {
        v.iter()
            .map(|&(c, h, s)| {
                oci_spec::runtime::LinuxIdMappingBuilder::default()
                    .container_id(c)
                    .host_id(h)
                    .size(s)
                    .build()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn ranges_are_checked() {
        let ok = maps(&[(0, 1000, 10), (10, 5000, 10), (20, 1010, 1)]);
        assert_eq!(validate_ranges(&ok, "m"), Ok(()));
        assert_eq!(map_text(&ok), "0 1000 10\n10 5000 10\n20 1010 1\n");
        let inside = maps(&[(0, 1000, 10), (9, 5000, 10)]);
        assert_eq!(
            validate_ranges(&inside, "m"),
            Err("m[1]: containerID range overlaps m[0]".into())
        );
        let outside = maps(&[(0, 1000, 10), (10, 995, 10)]);
        assert!(validate_ranges(&outside, "m")
            .unwrap_err()
            .contains("hostID range overlaps"));
        assert!(validate_ranges(&maps(&[(0, 1, 0)]), "m").is_err());
        assert!(validate_ranges(&maps(&[(0, u32::MAX - 5, 10)]), "m").is_err());
        let many: Vec<_> = (0..341).map(|i| (i, 10_000 + i, 1)).collect();
        assert!(validate_ranges(&maps(&many), "m")
            .unwrap_err()
            .contains("at most 340"));
    }
}
