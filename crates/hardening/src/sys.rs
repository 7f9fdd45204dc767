//! Raw system calls husk-sys does not wrap: capset(2), seccomp(2), ioprio_set(2),
//! sched_setattr(2) and personality(2). Allocation-free, safe to call in the cloned child.

use std::os::fd::{FromRawFd, OwnedFd};

use husk_sys::{check, Errno};

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `capset(2)` on the calling thread with 64-bit masks (two 32-bit halves, version 3).
pub(crate) fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let half = |shift: u32| CapData {
        effective: (effective >> shift) as u32,
        permitted: (permitted >> shift) as u32,
        inheritable: (inheritable >> shift) as u32,
    };
    let data = [half(0), half(32)];
    // SAFETY: header and data are valid for the duration of the call; version 3 takes exactly
    // two CapData entries, and the kernel only reads them.
    check(unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) })
        .map(drop)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`. Returns the listener descriptor when
/// `flags` holds `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
pub(crate) fn seccomp_set_filter(
    flags: u32,
    program: &[libc::sock_filter],
) -> Result<Option<OwnedFd>, Errno> {
    let prog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: prog points at `program`, which outlives the call; the kernel copies the
    // instructions and never writes through the pointer.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    })?;
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32 == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER the return value is a fresh descriptor owned by nobody else.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) }))
}

const IOPRIO_WHO_PROCESS: libc::c_int = 1;

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, ioprio)` for the calling process.
pub(crate) fn ioprio_set(ioprio: u32) -> Result<(), Errno> {
    // SAFETY: scalar arguments only.
    check(unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            ioprio as libc::c_int,
        )
    })
    .map(drop)
}

/// `struct sched_attr`, first published layout (SCHED_ATTR_SIZE_VER0, 48 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// `sched_setattr(0, attr, 0)` for the calling thread.
pub(crate) fn sched_setattr(attr: &SchedAttr) -> Result<(), Errno> {
    // SAFETY: attr is a valid sched_attr whose `size` field matches its layout; the kernel
    // only reads it.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *const SchedAttr, 0) })
        .map(drop)
}

/// `personality(2)`, setting the execution domain.
pub(crate) fn personality(persona: u32) -> Result<(), Errno> {
    // SAFETY: scalar argument only.
    check(unsafe { libc::syscall(libc::SYS_personality, persona as libc::c_ulong) }).map(drop)
}
