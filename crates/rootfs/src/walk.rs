//! Path resolution confined to the rootfs (openat2 with RESOLVE_IN_ROOT), so that symlinks in
//! an image can never send a mount or mknod outside the container's root.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use husk_sys::buf::PathBuf;
use husk_sys::{openat2, Errno, Result};

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// Opens `rel` below `root` as an O_PATH descriptor, following symlinks only inside the root.
pub fn open_in_root(root: RawFd, rel: &CStr, dir: bool) -> Result<OwnedFd> {
    let mut flags = libc::O_PATH as u64;
    if dir {
        flags |= libc::O_DIRECTORY as u64;
    }
    openat2(root, rel, flags, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
}

/// `mkdir -p` of `rel` below `root`, confined to the root; returns the directory, opened.
pub fn mkdir_all(root: RawFd, rel: &CStr, mode: libc::mode_t) -> Result<OwnedFd> {
    match open_in_root(root, rel, true) {
        Err(Errno(libc::ENOENT)) => {}
        other => return other,
    }
    let mut prefix = PathBuf::new();
    let mut dir = open_in_root(root, c".", true)?;
    for comp in rel
        .to_bytes()
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
    {
        if !prefix.is_empty() {
            prefix.push_bytes(b"/")?;
        }
        let start = prefix.len();
        prefix.push_bytes(comp)?;
        dir = match open_in_root(root, prefix.as_cstr(), true) {
            Ok(fd) => fd,
            Err(Errno(libc::ENOENT)) => {
                let mut name = PathBuf::new();
                name.push_bytes(&prefix.as_bytes()[start..])?;
                match husk_sys::mkdirat(dir.as_raw_fd(), name.as_cstr(), mode) {
                    Ok(()) | Err(Errno(libc::EEXIST)) => {}
                    Err(e) => return Err(e),
                }
                open_in_root(root, prefix.as_cstr(), true)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(dir)
}

/// Makes sure a mount point exists at `rel` (a directory, or an empty file when `file`), and
/// returns it opened as O_PATH.
pub fn mountpoint(root: RawFd, rel: &CStr, file: bool) -> Result<OwnedFd> {
    if !file {
        return mkdir_all(root, rel, 0o755);
    }
    match open_in_root(root, rel, false) {
        Err(Errno(libc::ENOENT)) => {}
        other => return other,
    }
    let bytes = rel.to_bytes();
    let (parent, name) = match bytes.iter().rposition(|&b| b == b'/') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (&b"."[..], bytes),
    };
    let mut p = PathBuf::new();
    p.push_bytes(parent)?;
    let dir = mkdir_all(root, p.as_cstr(), 0o755)?;
    let mut n = PathBuf::new();
    n.push_bytes(name)?;
    match husk_sys::mknodat(dir.as_raw_fd(), n.as_cstr(), libc::S_IFREG | 0o644, 0) {
        Ok(()) | Err(Errno(libc::EEXIST)) => {}
        Err(e) => return Err(e),
    }
    open_in_root(root, rel, false)
}

/// `/proc/self/fd/N`: a path that names exactly the object behind `fd`.
pub fn fd_path(fd: RawFd) -> Result<PathBuf> {
    let mut p = PathBuf::new();
    p.push_bytes(b"/proc/self/fd/")?.push_u64(fd as u64)?;
    Ok(p)
}
