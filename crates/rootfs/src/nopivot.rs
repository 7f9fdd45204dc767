//! `--no-pivot`: the host's root stays under the container's, reachable through the mount
//! table (a chroot is no barrier to `mount -t proc` in a new user namespace: the kernel allows
//! a new procfs/sysfs where a full one is visible). As runc's `msMoveRoot` does, every full
//! procfs and sysfs mount of the host (outside the rootfs) is detached in the container's
//! mount namespace before the rootfs is moved onto `/`, or covered with a tmpfs when it
//! cannot be detached.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use husk_sys::{mount, Errno, Result};

/// Mount points of full (root `/`) procfs and sysfs mounts in this mount namespace, outside
/// `rootfs`, parents before children. Read in the parent before clone: the child's new mount
/// namespace starts as a copy of this table.
pub(crate) fn host_pseudo_mounts(rootfs: &Path) -> Vec<CString> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let root = rootfs.as_os_str().as_bytes();
    let mut out = Vec::new();
    for line in text.lines() {
        let (pre, post) = line.split_once(" - ").unwrap_or((line, ""));
        let fields: Vec<&str> = pre.split(' ').collect();
        let fstype = post.split(' ').next().unwrap_or("");
        if fields.len() < 5 || fields[3] != "/" || !matches!(fstype, "proc" | "sysfs") {
            continue;
        }
        let point = unescape(fields[4]);
        if point.starts_with(root) {
            continue;
        }
        if let Ok(c) = CString::new(point) {
            out.push(c);
        }
    }
    out
}

fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Child side: detach (or cover) each of `points`. System calls only.
pub(crate) fn hide(points: &[CString]) -> Result<()> {
    for p in points {
        // Never let the unmount propagate to the host.
        match mount::mount(None, p, None, libc::MS_SLAVE | libc::MS_REC, None) {
            Ok(()) => {}
            // A parent already went, taking this one with it.
            Err(Errno(libc::ENOENT | libc::EINVAL)) => continue,
            Err(e) => return Err(e),
        }
        match mount::umount2(p, libc::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno(libc::EINVAL | libc::EPERM)) => {
                mount::mount(Some(c"tmpfs"), p, Some(c"tmpfs"), 0, None)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
