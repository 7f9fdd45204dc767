//! `tmpcopyup` (a runc and crun extension that Podman uses for `--read-only` and `--tmpfs`):
//! a tmpfs that starts with what the image had at its destination. The parent builds it as a
//! detached mount (fsopen/fsmount), copies the image's directory into it, and the child only
//! attaches it.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use husk_sys::mount::{
    fsconfig_set, fsmount, fsopen, mount_setattr, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC,
    MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
};

use crate::walk::open_in_root;
use crate::RootfsError;

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// A detached tmpfs with `data` options and `flags`, holding a copy of `dest` from the image.
pub(crate) fn detached_tmpfs(
    rootfs: &Path,
    dest: &[u8],
    data: &str,
    flags: libc::c_ulong,
    what: &str,
) -> Result<OwnedFd, RootfsError> {
    let err = |step: &str, e: &dyn std::fmt::Display| {
        RootfsError::Invalid(format!("{what}: tmpcopyup: {step}: {e}"))
    };
    let fs_ctx = fsopen(c"tmpfs").map_err(|e| err("fsopen tmpfs", &e))?;
    for opt in data.split(',').filter(|o| !o.is_empty()) {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        let key_c = CString::new(key).map_err(|e| err("option", &e))?;
        let value_c = value
            .map(CString::new)
            .transpose()
            .map_err(|e| err("option", &e))?;
        fsconfig_set(fs_ctx.as_fd(), &key_c, value_c.as_deref())
            .map_err(|e| err(&format!("option {opt}"), &e))?;
    }
    let mut attrs = 0;
    for (ms, attr) in [
        (libc::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
    ] {
        if flags & ms != 0 {
            attrs |= attr;
        }
    }
    let mnt = fsmount(fs_ctx.as_fd(), attrs).map_err(|e| err("fsmount", &e))?;

    let root = fs::File::open(rootfs)
        .map_err(|e| err(&format!("open rootfs {}", rootfs.display()), &e))?;
    let rel = CString::new(dest.to_vec()).map_err(|e| err("destination", &e))?;
    match open_in_root(root.as_fd(), &rel, true) {
        Ok(src) => copy_tree(&fd_path(&src), &fd_path(&mnt), true)
            .map_err(|e| err("copy the image's directory", &e))?,
        Err(husk_sys::Errno(libc::ENOENT)) => {}
        Err(e) => return Err(err("open the image's directory", &e)),
    }
    if flags & libc::MS_RDONLY != 0 {
        mount_setattr(
            mnt.as_fd(),
            c"",
            libc::AT_EMPTY_PATH as u32,
            MOUNT_ATTR_RDONLY,
            0,
        )
        .map_err(|e| err("make read-only", &e))?;
    }
    Ok(mnt)
}

/// Copies `src` into `dst` with modes and owners: directories, files and symlinks (never
/// following a symlink). Device nodes, FIFOs and sockets are not carried over.
fn copy_tree(src: &Path, dst: &Path, top: bool) -> std::io::Result<()> {
    if top {
        // `src` and `dst` are /proc/self/fd links here: follow them.
        let md = fs::metadata(src)?;
        fs::set_permissions(dst, fs::Permissions::from_mode(md.mode() & 0o7777))?;
        std::os::unix::fs::chown(dst, Some(md.uid()), Some(md.gid()))?;
    }
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let md = fs::symlink_metadata(&from)?;
        let kind = md.file_type();
        if kind.is_dir() {
            fs::create_dir(&to)?;
            copy_tree(&from, &to, false)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if kind.is_file() {
            fs::copy(&from, &to)?;
        } else {
            tracing::debug!(
                "tmpcopyup: {} is not a file, directory or symlink; not copied",
                from.display()
            );
            continue;
        }
        std::os::unix::fs::lchown(&to, Some(md.uid()), Some(md.gid()))?;
        if !kind.is_symlink() {
            fs::set_permissions(&to, fs::Permissions::from_mode(md.mode() & 0o7777))?;
        }
    }
    Ok(())
}
