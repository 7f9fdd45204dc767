//! Mount system calls, including the new mount API (`open_tree`, `move_mount`, `mount_setattr`).

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::{check, opt_ptr, Result};

pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<()> {
    // SAFETY: every pointer is NUL-terminated or null, as mount(2) allows.
    check(unsafe {
        libc::mount(
            opt_ptr(source),
            target.as_ptr(),
            opt_ptr(fstype),
            flags,
            opt_ptr(data).cast(),
        )
    } as libc::c_long)
    .map(drop)
}

pub fn umount2(target: &CStr, flags: libc::c_int) -> Result<()> {
    // SAFETY: target is NUL-terminated.
    check(unsafe { libc::umount2(target.as_ptr(), flags) } as libc::c_long).map(drop)
}

pub const OPEN_TREE_CLONE: u32 = 1;
pub const AT_RECURSIVE: u32 = 0x8000;
pub const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
pub const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR_IDMAP: u64 = 0x10_0000;

/// `open_tree(2)`: with `OPEN_TREE_CLONE` a detached copy of the mount at `path`.
pub fn open_tree(dirfd: impl AsFd, path: &CStr, flags: u32) -> Result<OwnedFd> {
    open_tree_raw(dirfd.as_fd().as_raw_fd(), path, flags)
}

fn open_tree_raw(dirfd: RawFd, path: &CStr, flags: u32) -> Result<OwnedFd> {
    // SAFETY: path is NUL-terminated.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            path.as_ptr(),
            flags | libc::O_CLOEXEC as u32,
        )
    })?;
    // SAFETY: a fresh descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `move_mount(2)`.
pub fn move_mount(
    from_dirfd: impl AsFd,
    from: &CStr,
    to_dirfd: impl AsFd,
    to: &CStr,
    flags: u32,
) -> Result<()> {
    move_mount_raw(
        from_dirfd.as_fd().as_raw_fd(),
        from,
        to_dirfd.as_fd().as_raw_fd(),
        to,
        flags,
    )
}

fn move_mount_raw(
    from_dirfd: RawFd,
    from: &CStr,
    to_dirfd: RawFd,
    to: &CStr,
    flags: u32,
) -> Result<()> {
    // SAFETY: both paths are NUL-terminated.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from_dirfd,
            from.as_ptr(),
            to_dirfd,
            to.as_ptr(),
            flags,
        )
    })
    .map(drop)
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)`: changes flags of one mount (or a tree with `AT_RECURSIVE`) in one call.
pub fn mount_setattr(
    dirfd: impl AsFd,
    path: &CStr,
    flags: u32,
    set: u64,
    clear: u64,
) -> Result<()> {
    mount_setattr_raw(dirfd.as_fd().as_raw_fd(), path, flags, set, clear)
}

/// `mount_setattr(2)` with `MOUNT_ATTR_IDMAP`: idmaps the detached mount `tree` (every mount
/// in it with `recursive`) through the user namespace `userns`.
pub fn mount_setattr_idmap(tree: impl AsFd, recursive: bool, userns: impl AsFd) -> Result<()> {
    let flags = libc::AT_EMPTY_PATH as u32 | if recursive { AT_RECURSIVE } else { 0 };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_fd().as_raw_fd() as u64,
    };
    setattr_raw(tree.as_fd().as_raw_fd(), c"", flags, &attr)
}

fn mount_setattr_raw(dirfd: RawFd, path: &CStr, flags: u32, set: u64, clear: u64) -> Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    setattr_raw(dirfd, path, flags, &attr)
}

fn setattr_raw(dirfd: RawFd, path: &CStr, flags: u32, attr: &MountAttr) -> Result<()> {
    // SAFETY: attr is a valid mount_attr of the size we pass; path is NUL-terminated.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

const FSOPEN_CLOEXEC: u32 = 1;
const FSMOUNT_CLOEXEC: u32 = 1;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;

/// `fsopen(2)`: a filesystem context for `fstype`.
pub fn fsopen(fstype: &CStr) -> Result<OwnedFd> {
    // SAFETY: fstype is NUL-terminated.
    let fd = check(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: a fresh descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `fsconfig(2)`: `key=value`, or the flag `key` when `value` is `None`.
pub fn fsconfig_set(fs: impl AsFd, key: &CStr, value: Option<&CStr>) -> Result<()> {
    fsconfig_set_raw(fs.as_fd().as_raw_fd(), key, value)
}

fn fsconfig_set_raw(fs: RawFd, key: &CStr, value: Option<&CStr>) -> Result<()> {
    let (cmd, v) = match value {
        Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
        None => (FSCONFIG_SET_FLAG, std::ptr::null()),
    };
    // SAFETY: key (and value) are NUL-terminated or null, as fsconfig allows.
    check(unsafe { libc::syscall(libc::SYS_fsconfig, fs, cmd, key.as_ptr(), v, 0) }).map(drop)
}

/// `fsconfig(FSCONFIG_CMD_CREATE)` then `fsmount(2)`: a detached mount with `attrs`
/// (`MOUNT_ATTR_*`).
pub fn fsmount(fs: impl AsFd, attrs: u64) -> Result<OwnedFd> {
    fsmount_raw(fs.as_fd().as_raw_fd(), attrs)
}

fn fsmount_raw(fs: RawFd, attrs: u64) -> Result<OwnedFd> {
    // SAFETY: plain syscalls on a filesystem context descriptor.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs,
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<u8>(),
            std::ptr::null::<u8>(),
            0,
        )
    })?;
    // SAFETY: as above.
    let fd = check(unsafe { libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs) })?;
    // SAFETY: a fresh descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
