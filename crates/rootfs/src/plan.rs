//! The parent-side half: turn the spec's root, mounts, devices, masked and readonly paths into
//! a plan of C strings and flags that the child can carry out without allocating.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceType, Spec};

use crate::options::{propagation_of, Options};
use crate::RootfsError;

/// How the container sees its cgroups at `type: cgroup` mount destinations.
#[derive(Debug, Clone)]
pub enum CgroupView {
    /// cgroup v1 (and hybrid): one directory per hierarchy, bind-mounted from the host.
    /// `(name, host_dir)`: name is the hierarchy's mount name (`cpu`, `memory`, `cpu,cpuacct`,
    /// `unified`, `systemd`), host_dir the container's cgroup directory in it.
    V1(Vec<(String, PathBuf)>),
    /// cgroup v2 only; `host_dir` is the container's cgroup. With a cgroup namespace a fresh
    /// cgroup2 mount is made instead of a bind.
    V2 { host_dir: PathBuf, cgroupns: bool },
    /// No cgroup information: cgroup mounts are skipped.
    None,
}

/// Options that do not come from the spec.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// `--no-pivot`: move the rootfs onto `/` and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The container gets a new user namespace: devices are bind-mounted, not created.
    pub new_userns: bool,
    /// The container shares the host's mount namespace: no propagation change of `/`, and
    /// chroot instead of pivot_root. The caller binds the rootfs onto itself first, so
    /// everything is mounted on that bind and one detach of it at delete removes it all.
    pub host_mount_ns: bool,
    pub cgroups: CgroupView,
}

#[derive(Debug)]
pub(crate) enum MountKind {
    /// A filesystem mount: `mount(source, target, fstype, flags, data)`.
    Fs {
        source: Option<CString>,
        fstype: CString,
        data: Option<CString>,
        /// sysfs in a user namespace that does not own the network namespace cannot be
        /// mounted: bind the host's tree (recursively, with these attributes) instead, as runc.
        bind_on_eperm: Option<(CString, u64)>,
        /// Recursive attributes (`rro`, `rnosymfollow`, ...): mount_setattr(AT_RECURSIVE) on
        /// the new mount, set and clear masks.
        rec: (u64, u64),
    },
    /// A bind mount made with open_tree(2) + mount_setattr(2) + move_mount(2).
    Bind {
        source: CString,
        recursive: bool,
        set: u64,
        clr: u64,
        rec_set: u64,
        rec_clr: u64,
    },
    /// Change the attributes of the mount already at the destination (the cgroup tmpfs is
    /// made read-only once the hierarchies are bound into it).
    SetAttr { set: u64 },
    /// A detached mount the parent prepared (`tmpcopyup`), attached with move_mount(2).
    Attach(std::os::fd::OwnedFd),
}

#[derive(Debug)]
pub(crate) struct MountOp {
    pub kind: MountKind,
    /// Destination relative to the rootfs, without the leading `/` (`proc`, `dev/pts`).
    pub dest: CString,
    /// The mount point is a file (bind mount of a file).
    pub file: bool,
    pub flags: libc::c_ulong,
    pub propagation: libc::c_ulong,
    /// Index in the spec's `mounts` (for error messages); synthesized mounts share their parent's.
    pub spec_index: u32,
}

#[derive(Debug)]
pub(crate) struct DeviceOp {
    /// Parent directory and file name, relative to the rootfs (`dev`, `null`).
    pub dir: CString,
    pub name: CString,
    /// Host path, used when bind-mounting instead of mknod (user namespaces).
    pub host: CString,
    pub mode: libc::mode_t,
    pub dev: libc::dev_t,
    pub uid: u32,
    pub gid: u32,
}

/// Everything the child needs to build the container's filesystem view.
#[derive(Debug)]
pub struct RootfsPlan {
    pub(crate) rootfs: CString,
    pub(crate) root_propagation: libc::c_ulong,
    pub(crate) mounts: Vec<MountOp>,
    pub(crate) devices: Vec<DeviceOp>,
    pub(crate) bind_devices: bool,
    pub(crate) setup_dev: bool,
    pub(crate) no_pivot: bool,
    /// With `no_pivot`: the host's procfs/sysfs mounts to detach first (see `nopivot`).
    pub(crate) no_pivot_hide: Vec<CString>,
    pub(crate) host_mount_ns: bool,
    pub(crate) readonly_root: bool,
    /// The mount op of a read-only /dev, made read-only in `finalize`.
    pub(crate) readonly_dev: Option<u32>,
    pub(crate) masked: Vec<CString>,
    pub(crate) readonly: Vec<CString>,
    /// The spec's mount destinations, for messages only.
    pub(crate) mount_names: Vec<String>,
}

fn cstr(s: impl AsRef<[u8]>, what: &str) -> Result<CString, RootfsError> {
    CString::new(s.as_ref().to_vec())
        .map_err(|_| RootfsError::Invalid(format!("{what}: contains a NUL byte")))
}

/// `paths` without repeats, first occurrence kept (a path masked twice is masked once, as in
/// runc): the child then mounts each masked path exactly once.
fn dedup(paths: Vec<CString>) -> Vec<CString> {
    let mut seen = std::collections::HashSet::with_capacity(paths.len());
    paths
        .into_iter()
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

/// `/dev/pts` -> `dev/pts`; `/` -> `.`
fn relative(dest: &Path) -> Vec<u8> {
    let b = dest.as_os_str().as_bytes();
    let trimmed: &[u8] = {
        let mut s = b;
        while let [b'/', rest @ ..] = s {
            s = rest;
        }
        s
    };
    if trimmed.is_empty() {
        b".".to_vec()
    } else {
        trimmed.to_vec()
    }
}

const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

impl RootfsPlan {
    pub fn new(
        spec: &Spec,
        rootfs: &Path,
        bundle: &Path,
        opts: &PlanOptions,
    ) -> Result<RootfsPlan, RootfsError> {
        let linux = spec.linux().as_ref();
        let root_propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
            None | Some("") => libc::MS_SLAVE | libc::MS_REC,
            Some(p) => propagation_of(p).ok_or_else(|| {
                RootfsError::Invalid(format!(
                    "linux.rootfsPropagation: unknown propagation {p:?}"
                ))
            })?,
        };
        let mut mounts = Vec::new();
        let mut mount_names = Vec::new();
        let mut dev_is_bound = false;
        let mut usernses = crate::idmap::Usernses::default();
        for (i, m) in spec.mounts().iter().flatten().enumerate() {
            mount_names.push(m.destination().display().to_string());
            let dest = relative(m.destination());
            let is_dev = dest == b"dev";
            let idmapped =
                crate::idmap::mount_op(spec, m, i as u32, &dest, rootfs, bundle, &mut usernses)?;
            if let Some((op, bind)) = idmapped {
                dev_is_bound |= bind && is_dev;
                mounts.push(op);
                continue;
            }
            let bind = push_mount(&mut mounts, m, i as u32, dest, rootfs, bundle, opts)?;
            dev_is_bound |= bind && is_dev;
        }
        // A read-only /dev (not a bind) is mounted read-write and made read-only at the end,
        // as runc does: the mount points of later mounts (/dev/pts, /dev/shm) and the device
        // nodes go in first.
        let mut readonly_dev = None;
        for (op, m) in mounts.iter_mut().enumerate() {
            if m.dest.as_bytes() == b"dev"
                && matches!(m.kind, MountKind::Fs { .. })
                && m.flags & libc::MS_RDONLY != 0
            {
                m.flags &= !libc::MS_RDONLY;
                readonly_dev = Some(op as u32);
            }
        }

        let setup_dev = !dev_is_bound;
        let devices = if setup_dev {
            device_ops(linux.and_then(|l| l.devices().as_ref()))?
        } else {
            Vec::new()
        };

        let paths = |v: Option<&Vec<String>>, what: &str| -> Result<Vec<CString>, RootfsError> {
            v.into_iter().flatten().map(|p| cstr(p, what)).collect()
        };
        Ok(RootfsPlan {
            rootfs: cstr(rootfs.as_os_str().as_bytes(), "root.path")?,
            root_propagation,
            mounts,
            devices,
            bind_devices: opts.new_userns,
            setup_dev,
            no_pivot: opts.no_pivot,
            no_pivot_hide: if opts.no_pivot && !opts.host_mount_ns {
                crate::nopivot::host_pseudo_mounts(rootfs)
            } else {
                Vec::new()
            },
            host_mount_ns: opts.host_mount_ns,
            readonly_dev,
            readonly_root: spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
            masked: dedup(paths(
                linux.and_then(|l| l.masked_paths().as_ref()),
                "linux.maskedPaths",
            )?),
            readonly: paths(
                linux.and_then(|l| l.readonly_paths().as_ref()),
                "linux.readonlyPaths",
            )?,
            mount_names,
        })
    }
}

/// The mount operations for the spec's `mounts[idx]`, appended to `mounts`. Returns whether
/// it is a bind mount.
fn push_mount(
    mounts: &mut Vec<MountOp>,
    m: &oci_spec::runtime::Mount,
    idx: u32,
    dest: Vec<u8>,
    rootfs: &Path,
    bundle: &Path,
    opts: &PlanOptions,
) -> Result<bool, RootfsError> {
    let what = format!("mounts[{idx}]");
    let opts_list = m.options().clone().unwrap_or_default();
    let o = Options::parse(&opts_list);
    let typ = m.typ().as_deref().unwrap_or("");
    if typ == "cgroup" || typ == "cgroup2" {
        push_cgroup_mounts(mounts, &opts.cgroups, &dest, &o, idx)?;
        return Ok(false);
    }
    if o.bind || typ == "bind" {
        let src = m.source().as_deref().ok_or_else(|| {
            RootfsError::Invalid(format!("{what}.source: a bind mount needs a source"))
        })?;
        let src = if src.is_absolute() {
            src.to_path_buf()
        } else {
            bundle.join(src)
        };
        let (kind, file) = if opts.new_userns && husk_sys::geteuid() == 0 {
            // The init will be in a user namespace whose root may not reach the source:
            // open it here, as the host's root, and let the child attach it.
            let (tree, file) = crate::idmap::bind_tree(m, &o, bundle, &what)?;
            (MountKind::Attach(tree), file)
        } else {
            let file = std::fs::metadata(&src)
                .map(|md| !md.is_dir())
                .unwrap_or(false);
            let (set, clr) = o.attrs();
            let kind = MountKind::Bind {
                source: cstr(src.as_os_str().as_bytes(), &what)?,
                recursive: o.recursive,
                set,
                clr,
                rec_set: o.rec_set,
                rec_clr: o.rec_clr,
            };
            (kind, file)
        };
        mounts.push(MountOp {
            kind,
            dest: cstr(&dest, &what)?,
            file,
            flags: 0,
            propagation: o.propagation,
            spec_index: idx,
        });
        return Ok(true);
    }
    let source = m
        .source()
        .as_ref()
        .map(|s| cstr(s.as_os_str().as_bytes(), &what))
        .transpose()?;
    let fstype = if typ.is_empty() { "none" } else { typ };
    let mut o = o;
    if fstype == "tmpfs" && !o.data.split(',').any(|d| d.starts_with("mode=")) {
        // runc >= 1.4: a tmpfs without mode= takes the mode of the directory it covers.
        if let Some(mode) = mountpoint_mode(rootfs, &dest) {
            if !o.data.is_empty() {
                o.data.push(',');
            }
            o.data.push_str(&format!("mode={mode:o}"));
        }
    }
    if o.tmpcopyup && fstype == "tmpfs" {
        let detached = crate::copyup::detached_tmpfs(rootfs, &dest, &o.data, o.flags, &what)?;
        mounts.push(MountOp {
            kind: MountKind::Attach(detached),
            dest: cstr(&dest, &what)?,
            file: false,
            flags: 0,
            propagation: o.propagation,
            spec_index: idx,
        });
        return Ok(false);
    }
    let bind_on_eperm =
        (typ == "sysfs" && opts.new_userns).then(|| (c"/sys".to_owned(), o.attrs().0));
    mounts.push(MountOp {
        kind: MountKind::Fs {
            source,
            fstype: cstr(fstype, &what)?,
            data: if o.data.is_empty() {
                None
            } else {
                Some(cstr(&o.data, &what)?)
            },
            bind_on_eperm,
            rec: (o.rec_set, o.rec_clr),
        },
        dest: cstr(&dest, &what)?,
        file: false,
        flags: o.flags,
        propagation: o.propagation,
        spec_index: idx,
    });
    Ok(false)
}

/// The permission bits of the existing directory `dest` in the rootfs (resolved inside it),
/// or `None` when there is none yet.
fn mountpoint_mode(rootfs: &Path, dest: &[u8]) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let root = std::fs::File::open(rootfs).ok()?;
    let rel = dest.strip_prefix(b"/").unwrap_or(dest);
    let rel = std::ffi::CString::new(if rel.is_empty() { &b"."[..] } else { rel }).ok()?;
    let fd = crate::walk::open_in_root(std::os::fd::AsFd::as_fd(&root), &rel, true).ok()?;
    let md = std::fs::File::from(fd).metadata().ok()?;
    Some(md.permissions().mode() & 0o7777)
}

/// The device nodes to make: the default ones (unless the spec lists the same path) and the
/// spec's `linux.devices`.
fn device_ops(
    spec_devices: Option<&Vec<oci_spec::runtime::LinuxDevice>>,
) -> Result<Vec<DeviceOp>, RootfsError> {
    let mut devices = Vec::new();
    let overridden =
        |p: &str| spec_devices.is_some_and(|d| d.iter().any(|d| d.path() == Path::new(p)));
    for (path, major, minor) in DEFAULT_DEVICES {
        if !overridden(path) {
            devices.push(device_op(
                Path::new(path),
                libc::S_IFCHR,
                major,
                minor,
                0o666,
                0,
                0,
                "default device",
            )?);
        }
    }
    for (i, d) in spec_devices.into_iter().flatten().enumerate() {
        let what = format!("linux.devices[{i}]");
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RootfsError::Invalid(format!(
                    "{what}.type: \"a\" is not a device node type"
                )))
            }
        };
        let mode = d.file_mode().unwrap_or(0o666) & 0o7777;
        devices.push(device_op(
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            mode,
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
            &what,
        )?);
    }
    Ok(devices)
}

#[allow(clippy::too_many_arguments)]
fn device_op(
    path: &Path,
    kind: libc::mode_t,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    what: &str,
) -> Result<DeviceOp, RootfsError> {
    let rel = relative(path);
    let (dir, name) = match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (rel[..i].to_vec(), rel[i + 1..].to_vec()),
        None => (b".".to_vec(), rel.clone()),
    };
    Ok(DeviceOp {
        dir: cstr(dir, what)?,
        name: cstr(name, what)?,
        host: cstr(path.as_os_str().as_bytes(), what)?,
        mode: kind | mode,
        dev: libc::makedev(major as u32, minor as u32),
        uid,
        gid,
    })
}

/// A `cgroup` mount becomes a tmpfs with one bind per v1 hierarchy, or one cgroup2 mount.
fn push_cgroup_mounts(
    mounts: &mut Vec<MountOp>,
    view: &CgroupView,
    dest: &[u8],
    o: &Options,
    idx: u32,
) -> Result<(), RootfsError> {
    let what = format!("mounts[{idx}]");
    let (set, clr) = o.attrs();
    match view {
        CgroupView::None => {}
        CgroupView::V2 { host_dir, cgroupns } => {
            let kind = if *cgroupns {
                MountKind::Fs {
                    source: Some(c"cgroup2".into()),
                    fstype: c"cgroup2".into(),
                    data: None,
                    bind_on_eperm: None,
                    rec: (0, 0),
                }
            } else {
                MountKind::Bind {
                    source: cstr(host_dir.as_os_str().as_bytes(), &what)?,
                    recursive: false,
                    set,
                    clr,
                    rec_set: 0,
                    rec_clr: 0,
                }
            };
            mounts.push(MountOp {
                kind,
                dest: cstr(dest, &what)?,
                file: false,
                flags: o.flags,
                propagation: o.propagation,
                spec_index: idx,
            });
        }
        CgroupView::V1(hierarchies) => {
            // The tmpfs stays writable until the binds are in; the binds carry the options.
            mounts.push(MountOp {
                kind: MountKind::Fs {
                    source: Some(c"tmpfs".into()),
                    fstype: c"tmpfs".into(),
                    data: Some(c"mode=755".into()),
                    bind_on_eperm: None,
                    rec: (0, 0),
                },
                dest: cstr(dest, &what)?,
                file: false,
                flags: o.flags & !libc::MS_RDONLY,
                propagation: 0,
                spec_index: idx,
            });
            for (name, host) in hierarchies {
                let mut d = dest.to_vec();
                d.push(b'/');
                d.extend_from_slice(name.as_bytes());
                mounts.push(MountOp {
                    kind: MountKind::Bind {
                        source: cstr(host.as_os_str().as_bytes(), &what)?,
                        recursive: false,
                        set,
                        clr,
                        rec_set: 0,
                        rec_clr: 0,
                    },
                    dest: cstr(d, &what)?,
                    file: false,
                    flags: 0,
                    propagation: o.propagation,
                    spec_index: idx,
                });
            }
            if set != 0 {
                mounts.push(MountOp {
                    kind: MountKind::SetAttr { set },
                    dest: cstr(dest, &what)?,
                    file: false,
                    flags: 0,
                    propagation: 0,
                    spec_index: idx,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_destinations() {
        assert_eq!(relative(Path::new("/dev/pts")), b"dev/pts");
        assert_eq!(relative(Path::new("//proc")), b"proc");
        assert_eq!(relative(Path::new("/")), b".");
    }
}
