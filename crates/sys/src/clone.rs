//! `clone3(2)`: one call that creates the container's init with all its new namespaces, and
//! on cgroup v2 places it straight into its cgroup (`CLONE_INTO_CGROUP`).

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::{check, Result};

pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Which side of the fork we are on.
pub enum Forked {
    Parent { pid: i32 },
    Child,
}

/// Forks like `fork(2)` (no shared memory, SIGCHLD on exit) with extra `CLONE_*` flags, and
/// optionally into the cgroup v2 directory `cgroup_fd`.
///
/// # Safety
/// The caller must be single-threaded, and the child must only do async-signal-safe work
/// until it execs or exits (it is a copy of the parent's address space).
pub unsafe fn clone3(flags: u64, cgroup_fd: Option<BorrowedFd<'_>>) -> Result<Forked> {
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: args is a valid clone_args of the size we pass; no CLONE_VM, so the child gets
    // its own copy of memory and returns here like fork(2). The caller upholds the rest.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    })?;
    Ok(if ret == 0 {
        Forked::Child
    } else {
        Forked::Parent { pid: ret as i32 }
    })
}

/// `fork(2)` through the classic `clone` system call: for code that may run under a seccomp
/// filter refusing `clone3` (Docker's default profile answers ENOSYS).
///
/// # Safety
/// As [`clone3`].
pub unsafe fn fork_classic() -> Result<Forked> {
    // SAFETY: clone with only an exit signal and no stack behaves like fork(2); the caller
    // upholds the single-threaded, async-signal-safe contract.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    })?;
    Ok(if ret == 0 {
        Forked::Child
    } else {
        Forked::Parent { pid: ret as i32 }
    })
}
