//! The child-side half: carry out a [`RootfsPlan`] inside the new mount namespace. Only system
//! calls here — no allocation, no locks, no logging.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use husk_sys::mount::{
    self, mount_setattr, move_mount, open_tree, AT_RECURSIVE, MOUNT_ATTR_RDONLY,
    MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH, OPEN_TREE_CLONE,
};
use husk_sys::{Errno, Result};

use crate::plan::{MountKind, MountOp, RootfsPlan};
use crate::walk::{fd_path, mkdir_all, mountpoint, open_in_root};
use crate::{fail, Failure, Step};

/// The rootfs after [`RootfsPlan::prepare`]: its mount, opened.
pub struct Prepared {
    root: OwnedFd,
}

impl Prepared {
    /// The rootfs directory (still in the host's view, before pivot_root).
    pub fn root_fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }
}

fn bind_tree(source_dir: BorrowedFd<'_>, source: &CStr, recursive: bool) -> Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    open_tree(source_dir, source, flags)
}

/// Binds `source` (its whole tree when `recursive`) onto `target`, setting and clearing mount
/// attributes on the detached copy first: `top` for its top mount, `all` for every mount in it.
fn bind_onto(
    source: &CStr,
    recursive: bool,
    top: (u64, u64),
    all: (u64, u64),
    target: &OwnedFd,
) -> Result<()> {
    let tree = bind_tree(husk_sys::CWD, source, recursive)?;
    let here = libc::AT_EMPTY_PATH as u32;
    if top.0 | top.1 != 0 {
        mount_setattr(tree.as_fd(), c"", here, top.0, top.1)?;
    }
    if all.0 | all.1 != 0 {
        mount_setattr(tree.as_fd(), c"", here | AT_RECURSIVE, all.0, all.1)?;
    }
    attach(&tree, target)
}

fn attach(tree: &OwnedFd, target: &OwnedFd) -> Result<()> {
    move_mount(
        tree.as_fd(),
        c"",
        target.as_fd(),
        c"",
        MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
    )
}

impl RootfsPlan {
    /// The propagation of `/` while the rootfs is built. `rootfsPropagation` itself is applied
    /// to the new `/` after pivot_root: an unbindable `/` could not even bind the rootfs.
    fn setup_propagation(&self) -> libc::c_ulong {
        if self.root_propagation & libc::MS_SHARED != 0 {
            self.root_propagation
        } else if self.root_propagation & libc::MS_SLAVE != 0 {
            libc::MS_SLAVE | libc::MS_REC
        } else {
            libc::MS_PRIVATE | libc::MS_REC
        }
    }

    /// Sets `/` propagation, makes the rootfs a mount point, and builds everything below it:
    /// the spec's mounts in order, devices, and the standard /dev symlinks.
    pub fn prepare(&self) -> std::result::Result<Prepared, Failure> {
        let bind =
            |src: &CStr| mount::mount(Some(src), src, None, libc::MS_BIND | libc::MS_REC, None);
        // In the host's mount namespace the runtime has bound the rootfs onto itself already
        // (so it can undo it), and `/` is left alone.
        if !self.host_mount_ns {
            mount::mount(None, c"/", None, self.setup_propagation(), None)
                .map_err(fail(Step::RootPropagation, 0))?;
            bind(&self.rootfs).map_err(fail(Step::BindRootfs, 0))?;
            if self.root_propagation & libc::MS_SHARED != 0 {
                // pivot_root refuses a new root whose parent mount is shared: stack a second
                // bind on a private first one.
                mount::mount(None, &self.rootfs, None, libc::MS_PRIVATE, None)
                    .map_err(fail(Step::BindRootfs, 0))?;
                bind(&self.rootfs).map_err(fail(Step::BindRootfs, 0))?;
            }
        }
        let root = husk_sys::openat(
            husk_sys::CWD,
            &self.rootfs,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )
        .map_err(fail(Step::OpenRootfs, 0))?;
        husk_sys::umask(0);
        let rfd = root.as_fd();
        for (i, m) in self.mounts.iter().enumerate() {
            self.mount_one(rfd, m, i as u32)?;
        }
        if self.setup_dev {
            self.make_devices(rfd)?;
            self.dev_symlinks(rfd).map_err(fail(Step::DevSymlink, 0))?;
        }
        Ok(Prepared { root })
    }

    fn mount_one(
        &self,
        root: BorrowedFd<'_>,
        m: &MountOp,
        i: u32,
    ) -> std::result::Result<(), Failure> {
        if let MountKind::Fs { fstype, .. } = &m.kind {
            if is_pseudo_fs(fstype.to_bytes()) {
                refuse_symlink(root, &m.dest).map_err(fail(Step::SymlinkMountpoint, i))?;
            }
        }
        // A bind source is looked at now, after the earlier mounts (it may be under one of
        // them), not when the plan was made: a file needs a file to be mounted on.
        let file = match &m.kind {
            MountKind::Bind { source, .. } => husk_sys::fstatat(husk_sys::CWD, source, 0)
                .map_or(m.file, |st| st.st_mode & libc::S_IFMT != libc::S_IFDIR),
            _ => m.file,
        };
        let target = mountpoint(root, &m.dest, file).map_err(fail(Step::Mountpoint, i))?;
        match &m.kind {
            MountKind::Fs {
                source,
                fstype,
                data,
                bind_on_eperm,
                rec,
            } => {
                let path = fd_path(target.as_fd()).map_err(fail(Step::Mount, i))?;
                match mount::mount(
                    source.as_deref(),
                    path.as_cstr(),
                    Some(fstype),
                    m.flags,
                    data.as_deref(),
                ) {
                    Ok(()) => {}
                    Err(Errno(libc::EPERM)) if bind_on_eperm.is_some() => {
                        let (host, set) = bind_on_eperm.as_ref().expect("checked");
                        bind_onto(host, true, (0, 0), (*set, 0), &target)
                            .map_err(fail(Step::Mount, i))?;
                    }
                    Err(e) => return Err(fail(Step::Mount, i)(e)),
                }
                if rec.0 | rec.1 != 0 {
                    // The new mount, not the directory underneath it that `target` names.
                    let top = open_in_root(root, &m.dest, false).map_err(fail(Step::Mount, i))?;
                    let flags = libc::AT_EMPTY_PATH as u32 | AT_RECURSIVE;
                    mount_setattr(top.as_fd(), c"", flags, rec.0, rec.1)
                        .map_err(fail(Step::Mount, i))?;
                }
            }
            MountKind::Bind {
                source,
                recursive,
                set,
                clr,
                rec_set,
                rec_clr,
            } => {
                bind_onto(
                    source,
                    *recursive,
                    (*set, *clr),
                    (*rec_set, *rec_clr),
                    &target,
                )
                .map_err(fail(Step::Mount, i))?;
            }
            MountKind::Attach(mnt) => attach(mnt, &target).map_err(fail(Step::Mount, i))?,
            MountKind::SetAttr { set } => {
                mount_setattr(target.as_fd(), c"", libc::AT_EMPTY_PATH as u32, *set, 0)
                    .map_err(fail(Step::Mount, i))?;
            }
        }
        if m.propagation != 0 {
            // Reopen: the old descriptor names the directory underneath the new mount.
            let top = open_in_root(root, &m.dest, false).map_err(fail(Step::Propagation, i))?;
            let path = fd_path(top.as_fd()).map_err(fail(Step::Propagation, i))?;
            mount::mount(None, path.as_cstr(), None, m.propagation, None)
                .map_err(fail(Step::Propagation, i))?;
        }
        Ok(())
    }

    fn make_devices(&self, root: BorrowedFd<'_>) -> std::result::Result<(), Failure> {
        for (i, d) in self.devices.iter().enumerate() {
            let i = i as u32;
            let dir = mkdir_all(root, &d.dir, 0o755).map_err(fail(Step::Device, i))?;
            let dfd = dir.as_fd();
            if self.bind_devices {
                match husk_sys::mknodat(dfd, &d.name, libc::S_IFREG | 0o644, 0) {
                    Ok(()) | Err(Errno(libc::EEXIST)) => {}
                    Err(e) => return Err(fail(Step::Device, i)(e)),
                }
                let target = husk_sys::openat(dfd, &d.name, libc::O_PATH | libc::O_NOFOLLOW, 0)
                    .map_err(fail(Step::Device, i))?;
                bind_onto(&d.host, false, (0, 0), (0, 0), &target)
                    .map_err(fail(Step::Device, i))?;
                continue;
            }
            match husk_sys::mknodat(dfd, &d.name, d.mode, d.dev) {
                Ok(()) => {}
                Err(Errno(libc::EEXIST)) => continue,
                Err(e) => return Err(fail(Step::Device, i)(e)),
            }
            husk_sys::fchownat(dfd, &d.name, d.uid, d.gid, libc::AT_SYMLINK_NOFOLLOW)
                .map_err(fail(Step::Device, i))?;
        }
        Ok(())
    }

    fn dev_symlinks(&self, root: BorrowedFd<'_>) -> Result<()> {
        let dev = open_in_root(root, c"dev", true)?;
        let dfd = dev.as_fd();
        for (target, name) in [
            (c"/proc/self/fd", c"fd"),
            (c"/proc/self/fd/0", c"stdin"),
            (c"/proc/self/fd/1", c"stdout"),
            (c"/proc/self/fd/2", c"stderr"),
            (c"/proc/kcore", c"core"),
        ] {
            match husk_sys::symlinkat(target, dfd, name) {
                Ok(()) | Err(Errno(libc::EEXIST)) => {}
                Err(e) => return Err(e),
            }
        }
        // /dev/ptmx must be the devpts instance's ptmx, so ptys are made inside the container.
        match husk_sys::unlinkat(dfd, c"ptmx", 0) {
            Ok(()) | Err(Errno(libc::ENOENT)) => {}
            Err(e) => return Err(e),
        }
        husk_sys::symlinkat(c"pts/ptmx", dfd, c"ptmx")
    }

    /// Makes the rootfs the process's `/`: pivot_root (detaching the old root), or with
    /// `--no-pivot` a move onto `/` and chroot.
    pub fn enter(&self, prepared: Prepared) -> std::result::Result<(), Failure> {
        let f = fail(Step::PivotRoot, 0);
        husk_sys::fchdir(prepared.root.as_fd()).map_err(f)?;
        if self.host_mount_ns {
            husk_sys::chroot(c".").map_err(f)?;
            return husk_sys::chdir(c"/").map_err(f);
        }
        if self.no_pivot {
            crate::nopivot::hide(&self.no_pivot_hide).map_err(f)?;
            mount::mount(Some(c"."), c"/", None, libc::MS_MOVE, None).map_err(f)?;
            husk_sys::chroot(c".").map_err(f)?;
        } else {
            husk_sys::pivot_root(c".", c".").map_err(f)?;
            // The old root is now stacked on "."; never let its unmount reach the host.
            mount::mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None).map_err(f)?;
            mount::umount2(c".", libc::MNT_DETACH).map_err(f)?;
        }
        husk_sys::chdir(c"/").map_err(f)
    }

    /// After pivot_root: readonly paths, masked paths, and a read-only `/` if asked for.
    pub fn finalize(&self) -> std::result::Result<(), Failure> {
        if let Some(op) = self.readonly_dev {
            mount_setattr(husk_sys::CWD, c"/dev", 0, MOUNT_ATTR_RDONLY, 0)
                .map_err(fail(Step::Mount, op))?;
        }
        for (i, p) in self.readonly.iter().enumerate() {
            let f = fail(Step::ReadonlyPath, i as u32);
            match mount::mount(Some(p), p, None, libc::MS_BIND | libc::MS_REC, None) {
                Ok(()) => {}
                Err(Errno(libc::ENOENT)) => continue,
                Err(e) => return Err(f(e)),
            }
            mount_setattr(husk_sys::CWD, p, AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0).map_err(f)?;
        }
        self.mask_paths()?;
        if self.readonly_root {
            mount_setattr(husk_sys::CWD, c"/", 0, MOUNT_ATTR_RDONLY, 0)
                .map_err(fail(Step::ReadonlyRoot, 0))?;
        }
        // Last, so that an unbindable `/` does not stop the binds of readonly paths.
        if !self.host_mount_ns && self.root_propagation != libc::MS_SLAVE | libc::MS_REC {
            mount::mount(None, c"/", None, self.root_propagation, None)
                .map_err(fail(Step::RootPropagation, 0))?;
        }
        Ok(())
    }
}

/// The kernel's pseudo filesystems, which expose kernel or host state. runc refuses procfs and
/// sysfs on a symlink; husk refuses all of these. Ordinary filesystems (tmpfs, overlay, ...)
/// and bind mounts follow a symlink inside the root, as runc's do.
fn is_pseudo_fs(fstype: &[u8]) -> bool {
    matches!(
        fstype,
        b"proc"
            | b"sysfs"
            | b"cgroup"
            | b"cgroup2"
            | b"mqueue"
            | b"devpts"
            | b"securityfs"
            | b"debugfs"
            | b"tracefs"
            | b"bpf"
            | b"configfs"
            | b"pstore"
            | b"efivarfs"
            | b"binfmt_misc"
            | b"fusectl"
    )
}

/// A pseudo filesystem must not be mounted where the rootfs has a symlink: it would land on
/// the link's target (inside the root, but wherever the image says, e.g. procfs over /etc).
fn refuse_symlink(root: BorrowedFd<'_>, dest: &std::ffi::CStr) -> Result<()> {
    const RESOLVE_IN_ROOT: u64 = 0x10;
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    let flags = (libc::O_PATH | libc::O_NOFOLLOW) as u64;
    match husk_sys::openat2(
        root,
        dest,
        flags,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => {
            let st = husk_sys::fstatat(&fd, c"", libc::AT_EMPTY_PATH)?;
            if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                return Err(Errno(libc::ELOOP));
            }
            Ok(())
        }
        // Missing: the mount point will be made as a directory.
        Err(Errno(libc::ENOENT)) => Ok(()),
        Err(e) => Err(e),
    }
}

impl RootfsPlan {
    /// Masks `self.masked` (deduplicated by the plan). A file gets `/dev/null` bound over it; a
    /// directory gets an empty read-only tmpfs. As in runc >= 1.3, one tmpfs serves every
    /// masked directory: it is mounted on the first one, and each further directory gets a
    /// bind of that mount (open_tree clone of an `O_PATH` handle + move_mount), so 64 per-CPU
    /// paths cost 64 binds, not 64 tmpfs superblocks. The handle, not the path, is the bind
    /// source: a later masked directory may hide the first one's path. A missing path is
    /// skipped. Only system calls; nothing allocated.
    ///
    /// Whether a path is a directory is asked with `stat` (following links, as mount(2) does)
    /// instead of trying the `/dev/null` bind first: a bind the kernel refuses with ENOTDIR
    /// has already cloned the `/dev/null` mount, and undoing that waits for an RCU grace
    /// period (40-50 µs each on an idle host, milliseconds under load).
    fn mask_paths(&self) -> std::result::Result<(), Failure> {
        let mut shared: Option<OwnedFd> = None;
        for (i, p) in self.masked.iter().enumerate() {
            let f = fail(Step::Mask, i as u32);
            let dir = match husk_sys::fstatat(husk_sys::CWD, p, 0) {
                Ok(st) => st.st_mode & libc::S_IFMT == libc::S_IFDIR,
                Err(Errno(libc::ENOENT)) => continue,
                Err(e) => return Err(f(e)),
            };
            if !dir {
                match mount::mount(Some(c"/dev/null"), p, None, libc::MS_BIND, None) {
                    Ok(()) | Err(Errno(libc::ENOENT)) => continue,
                    // Replaced by a directory since the stat: mask it as one.
                    Err(Errno(libc::ENOTDIR)) => {}
                    Err(e) => return Err(f(e)),
                }
            }
            mask_dir(p, &mut shared).map_err(f)?;
        }
        Ok(())
    }
}

/// Masks the directory `p` with the shared read-only tmpfs: mounts it when `shared` is None
/// (and keeps an `O_PATH` handle to it there), else binds a clone of it.
fn mask_dir(p: &CStr, shared: &mut Option<OwnedFd>) -> Result<()> {
    match shared {
        Some(tmpfs) => {
            let here = libc::AT_EMPTY_PATH as u32;
            let tree = open_tree(tmpfs.as_fd(), c"", OPEN_TREE_CLONE | here)?;
            move_mount(tree.as_fd(), c"", husk_sys::CWD, p, MOVE_MOUNT_F_EMPTY_PATH)
        }
        None => {
            mount::mount(Some(c"tmpfs"), p, Some(c"tmpfs"), libc::MS_RDONLY, None)?;
            let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
            *shared = Some(husk_sys::openat(husk_sys::CWD, p, flags, 0)?);
            Ok(())
        }
    }
}
