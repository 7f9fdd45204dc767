//! A user namespace made only to be named: a short-lived child unshares a new user namespace,
//! the caller writes its id maps, keeps a descriptor of `/proc/PID/ns/user`, and the child
//! exits. Used for idmapped mounts (`mount_setattr(MOUNT_ATTR_IDMAP)`), in the parent only.
//! And the maps of an existing user namespace, read from inside it ([`maps_of`]).

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::clone::{clone3, Forked};
use crate::Errno;

/// Which part of making the user namespace failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsernsStep {
    Fork,
    UidMap,
    GidMap,
    Open,
}

/// A new user namespace whose `uid_map` and `gid_map` are `uid_map` and `gid_map` (the
/// kernel's `ID-inside ID-outside count` lines). The caller must be single-threaded.
pub fn with_maps(
    uid_map: &[u8],
    gid_map: &[u8],
) -> std::result::Result<OwnedFd, (UsernsStep, Errno)> {
    let (rd, wr) = crate::pipe().map_err(|e| (UsernsStep::Fork, e))?;
    // SAFETY: husk's CLI is single-threaded; the child only blocks in read(2) on the pipe
    // and exits, without allocating.
    let pid = match unsafe { clone3(libc::CLONE_NEWUSER as u64, None) } {
        Ok(Forked::Child) => {
            drop(wr);
            let mut b = [0u8; 1];
            let _ = crate::read(rd.as_fd(), &mut b);
            crate::exit_now(0);
        }
        Ok(Forked::Parent { pid }) => pid,
        Err(e) => return Err((UsernsStep::Fork, e)),
    };
    drop(rd);
    let result = write_and_open(pid, uid_map, gid_map);
    drop(wr);
    let _ = crate::waitpid(pid);
    result
}

fn write_and_open(
    pid: i32,
    uid_map: &[u8],
    gid_map: &[u8],
) -> std::result::Result<OwnedFd, (UsernsStep, Errno)> {
    let io = |step| move |e: std::io::Error| (step, Errno(e.raw_os_error().unwrap_or(libc::EIO)));
    for (file, map, step) in [
        ("uid_map", uid_map, UsernsStep::UidMap),
        ("gid_map", gid_map, UsernsStep::GidMap),
    ] {
        std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{pid}/{file}"))
            .and_then(|mut f| f.write_all(map))
            .map_err(io(step))?;
    }
    let f = std::fs::File::open(format!("/proc/{pid}/ns/user")).map_err(io(UsernsStep::Open))?;
    Ok(f.into())
}

/// The `uid_map` and `gid_map` of the user namespace `ns`, as a member reads them (ids
/// outside relative to its parent namespace): a forked child joins it, reads
/// `/proc/self/{uid,gid}_map` into a stack buffer and writes them to a pipe, with a NUL
/// between. The caller must be single-threaded and may join `ns` (it owns it, or is root).
pub fn maps_of(ns: BorrowedFd<'_>) -> crate::Result<(Vec<u8>, Vec<u8>)> {
    let (rd, wr) = crate::pipe()?;
    // SAFETY: husk's CLI is single-threaded; the child makes system calls on a stack buffer
    // only and exits without returning.
    let pid = match unsafe { clone3(0, None) }? {
        Forked::Child => {
            drop(rd);
            let code = match read_maps_into(ns, wr.as_fd()) {
                Ok(()) => 0,
                Err(e) => e.0.clamp(1, 255),
            };
            crate::exit_now(code);
        }
        Forked::Parent { pid } => pid,
    };
    drop(wr);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = loop {
        match crate::read(rd.as_fd(), &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    let status = crate::waitpid(pid)?;
    read?;
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let code = libc::WEXITSTATUS(status);
        return Err(Errno(if code == 0 { libc::ECHILD } else { code }));
    }
    let Some(nul) = out.iter().position(|&b| b == 0) else {
        return Err(Errno(libc::EIO));
    };
    let gid = out.split_off(nul + 1);
    out.pop();
    Ok((out, gid))
}

/// In the child of [`maps_of`]: join `ns`, copy both maps to `out`.
fn read_maps_into(ns: BorrowedFd<'_>, out: BorrowedFd<'_>) -> crate::Result<()> {
    crate::setns(ns, libc::CLONE_NEWUSER)?;
    let mut buf = [0u8; 4096];
    for (file, end) in [
        (c"/proc/self/uid_map", &b"\0"[..]),
        (c"/proc/self/gid_map", &b""[..]),
    ] {
        let fd = crate::openat(crate::CWD, file, libc::O_RDONLY, 0)?;
        loop {
            let n = crate::read(fd.as_fd(), &mut buf)?;
            if n == 0 {
                break;
            }
            crate::write_all(out, &buf[..n])?;
        }
        crate::write_all(out, end)?;
    }
    Ok(())
}
