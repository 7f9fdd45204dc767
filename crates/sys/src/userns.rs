//! A user namespace made only to be named: a short-lived child unshares a new user namespace,
//! the caller writes its id maps, keeps a descriptor of `/proc/PID/ns/user`, and the child
//! exits. Used for idmapped mounts (`mount_setattr(MOUNT_ATTR_IDMAP)`), in the parent only.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

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
