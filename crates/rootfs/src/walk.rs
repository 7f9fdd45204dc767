//! Path resolution confined to the rootfs (openat2 with RESOLVE_IN_ROOT), so that symlinks in
//! an image can never send a mount or mknod outside the container's root.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use husk_sys::buf::PathBuf;
use husk_sys::{openat2, Errno, Result};

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// Opens `rel` below `root` as an O_PATH descriptor, following symlinks only inside the root.
pub fn open_in_root(root: BorrowedFd<'_>, rel: &CStr, dir: bool) -> Result<OwnedFd> {
    let mut flags = libc::O_PATH as u64;
    if dir {
        flags |= libc::O_DIRECTORY as u64;
    }
    openat2(root, rel, flags, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
}

/// `mkdir -p` of `rel` below `root`, confined to the root; returns the directory, opened.
/// A dangling symlink on the way is followed (inside the root) and its target created, as
/// runc's securejoin does; symlink loops end with ELOOP.
pub fn mkdir_all(root: BorrowedFd<'_>, rel: &CStr, mode: libc::mode_t) -> Result<OwnedFd> {
    match open_in_root(root, rel, true) {
        Err(Errno(libc::ENOENT)) => {}
        other => return other,
    }
    let mut path = PathBuf::new();
    path.push_bytes(rel.to_bytes())?;
    let mut next = PathBuf::new();
    for _ in 0..40 {
        match walk_once(root, &path, mode, &mut next)? {
            Some(fd) => return Ok(fd),
            None => std::mem::swap(&mut path, &mut next),
        }
    }
    Err(Errno(libc::ELOOP))
}

/// Creates `path` component by component. `None` when a dangling symlink was met: `next` then
/// holds the path (relative to the root) to create instead.
fn walk_once(
    root: BorrowedFd<'_>,
    path: &PathBuf,
    mode: libc::mode_t,
    next: &mut PathBuf,
) -> Result<Option<OwnedFd>> {
    let bytes = path.as_bytes();
    let mut prefix = PathBuf::new();
    let mut dir = open_in_root(root, c".", true)?;
    let mut comps = bytes
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".");
    while let Some(comp) = comps.next() {
        let parent_len = prefix.len();
        if !prefix.is_empty() {
            prefix.push_bytes(b"/")?;
        }
        prefix.push_bytes(comp)?;
        match open_in_root(root, prefix.as_cstr(), true) {
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(Errno(libc::ENOENT)) => {}
            Err(e) => return Err(e),
        }
        let mut name = PathBuf::new();
        name.push_bytes(comp)?;
        match husk_sys::mkdirat(dir.as_fd(), name.as_cstr(), mode) {
            Ok(()) => {}
            Err(Errno(libc::EEXIST)) => {
                // Something is there but does not resolve: a dangling symlink.
                let mut target = [0u8; 4096];
                if let Ok(n) = husk_sys::readlinkat(dir.as_fd(), name.as_cstr(), &mut target) {
                    let target = &target[..n];
                    next.clear();
                    if target.first() != Some(&b'/') {
                        next.push_bytes(&prefix.as_bytes()[..parent_len])?
                            .push_bytes(b"/")?;
                    }
                    next.push_bytes(target)?;
                    for rest in comps {
                        next.push_bytes(b"/")?.push_bytes(rest)?;
                    }
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
        dir = open_in_root(root, prefix.as_cstr(), true)?;
    }
    Ok(Some(dir))
}

/// Makes sure a mount point exists at `rel` (a directory, or an empty file when `file`), and
/// returns it opened as O_PATH. A dangling symlink in the way is followed inside the root and
/// its target created, as runc does (for a file too, at the last component).
pub fn mountpoint(root: BorrowedFd<'_>, rel: &CStr, file: bool) -> Result<OwnedFd> {
    if !file {
        return mkdir_all(root, rel, 0o755);
    }
    let mut path = PathBuf::new();
    path.push_bytes(rel.to_bytes())?;
    for _ in 0..40 {
        match open_in_root(root, path.as_cstr(), false) {
            Err(Errno(libc::ENOENT)) => {}
            other => return other,
        }
        let bytes = path.as_bytes();
        let (parent, name) = match bytes.iter().rposition(|&b| b == b'/') {
            Some(i) => (&bytes[..i], &bytes[i + 1..]),
            None => (&b"."[..], bytes),
        };
        let mut p = PathBuf::new();
        p.push_bytes(if parent.is_empty() { b"." } else { parent })?;
        let dir = mkdir_all(root, p.as_cstr(), 0o755)?;
        let mut n = PathBuf::new();
        n.push_bytes(name)?;
        match husk_sys::mknodat(dir.as_fd(), n.as_cstr(), libc::S_IFREG | 0o644, 0) {
            Ok(()) => return open_in_root(root, path.as_cstr(), false),
            Err(Errno(libc::EEXIST)) => {}
            Err(e) => return Err(e),
        }
        // Something is there but does not resolve: a dangling symlink; create its target.
        let mut target = [0u8; 4096];
        let len = husk_sys::readlinkat(dir.as_fd(), n.as_cstr(), &mut target)
            .map_err(|_| Errno(libc::ENOENT))?;
        let target = &target[..len];
        let mut next = PathBuf::new();
        if target.first() != Some(&b'/') {
            next.push_bytes(p.as_bytes())?.push_bytes(b"/")?;
        }
        next.push_bytes(target)?;
        path = next;
    }
    Err(Errno(libc::ELOOP))
}

/// `/proc/self/fd/N`: a path that names exactly the object behind `fd`.
pub fn fd_path(fd: BorrowedFd<'_>) -> Result<PathBuf> {
    let mut p = PathBuf::new();
    p.push_bytes(b"/proc/self/fd/")?
        .push_u64(fd.as_raw_fd() as u64)?;
    Ok(p)
}
