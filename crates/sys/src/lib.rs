//! Raw, allocation-free system call wrappers.
//!
//! This crate is the one place in husk where `unsafe` meets the kernel for the code that runs
//! between `clone` and `execve` in the container's init process. Every function here:
//!
//! * takes C strings or raw byte buffers that the parent prepared before `clone`,
//! * never allocates, locks or logs (so it is safe to call in the cloned child),
//! * returns [`Errno`] on failure, which the child reports to the parent over the sync socket.
//!
//! Parent-side code uses these too (husk has no `nix`: README, "Why husk has its own system
//! layer").

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub mod buf;
pub mod clone;
pub mod exe_guard;
pub mod mount;
pub mod netlink;
pub mod proc;
pub mod userns;

/// An `errno` value, `Copy` so it travels through the child's error path without allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The calling thread's current `errno`.
    pub fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
    /// `std::io::Error` carrying the same code (parent side, for messages).
    pub fn to_io(self) -> std::io::Error {
        std::io::Error::from_raw_os_error(self.0)
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // strerror-like text without the " (os error N)" suffix std adds.
        let text = self.to_io().to_string();
        let text = text.split(" (os error").next().unwrap_or(&text).to_string();
        f.write_str(&text.to_lowercase())
    }
}

impl std::error::Error for Errno {}

pub type Result<T> = std::result::Result<T, Errno>;

/// Turns a `-1`-on-error return value into a `Result`.
#[inline]
pub fn check(ret: libc::c_long) -> Result<libc::c_long> {
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

#[inline]
fn check_int(ret: libc::c_int) -> Result<libc::c_int> {
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// `AT_FDCWD` as a descriptor: "relative to the current directory" for the `*at` calls.
// SAFETY: AT_FDCWD is not -1 and is never closed; the kernel reads it as the working
// directory, so a borrow of it is valid for as long as the process lives.
pub const CWD: BorrowedFd<'static> = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };

fn opt_ptr(s: Option<&CStr>) -> *const libc::c_char {
    s.map_or(std::ptr::null(), CStr::as_ptr)
}

/// Wraps a descriptor the kernel just returned.
///
/// # Safety
/// `fd` must be a freshly returned, open descriptor owned by nobody else.
unsafe fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: guaranteed by the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `openat(2)`; `dirfd` may be `libc::AT_FDCWD`.
pub fn openat(
    dirfd: impl AsFd,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> Result<OwnedFd> {
    openat_raw(dirfd.as_fd().as_raw_fd(), path, flags, mode)
}

fn openat_raw(
    dirfd: RawFd,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> Result<OwnedFd> {
    // SAFETY: path is NUL-terminated; the kernel does not keep the pointer.
    let fd =
        check_int(unsafe { libc::openat(dirfd, path.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: fd was just returned by the kernel.
    Ok(unsafe { owned(fd) })
}

/// `openat2(2)` with a `resolve` mask such as `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`.
pub fn openat2(
    dirfd: impl AsFd,
    path: &CStr,
    flags: u64,
    mode: u64,
    resolve: u64,
) -> Result<OwnedFd> {
    openat2_raw(dirfd.as_fd().as_raw_fd(), path, flags, mode, resolve)
}

fn openat2_raw(dirfd: RawFd, path: &CStr, flags: u64, mode: u64, resolve: u64) -> Result<OwnedFd> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: flags | libc::O_CLOEXEC as u64,
        mode,
        resolve,
    };
    // SAFETY: `how` is a valid open_how of the size we pass; path is NUL-terminated.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })?;
    // SAFETY: fd was just returned by the kernel.
    Ok(unsafe { owned(fd as libc::c_int) })
}

pub fn mkdirat(dirfd: impl AsFd, path: &CStr, mode: libc::mode_t) -> Result<()> {
    mkdirat_raw(dirfd.as_fd().as_raw_fd(), path, mode)
}

fn mkdirat_raw(dirfd: RawFd, path: &CStr, mode: libc::mode_t) -> Result<()> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::mkdirat(dirfd, path.as_ptr(), mode) }).map(drop)
}

pub fn mknodat(dirfd: impl AsFd, path: &CStr, mode: libc::mode_t, dev: libc::dev_t) -> Result<()> {
    mknodat_raw(dirfd.as_fd().as_raw_fd(), path, mode, dev)
}

fn mknodat_raw(dirfd: RawFd, path: &CStr, mode: libc::mode_t, dev: libc::dev_t) -> Result<()> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::mknodat(dirfd, path.as_ptr(), mode, dev) }).map(drop)
}

pub fn symlinkat(target: &CStr, dirfd: impl AsFd, link: &CStr) -> Result<()> {
    symlinkat_raw(target, dirfd.as_fd().as_raw_fd(), link)
}

fn symlinkat_raw(target: &CStr, dirfd: RawFd, link: &CStr) -> Result<()> {
    // SAFETY: both strings are NUL-terminated.
    check_int(unsafe { libc::symlinkat(target.as_ptr(), dirfd, link.as_ptr()) }).map(drop)
}

pub fn fchownat(
    dirfd: impl AsFd,
    path: &CStr,
    uid: u32,
    gid: u32,
    flags: libc::c_int,
) -> Result<()> {
    fchownat_raw(dirfd.as_fd().as_raw_fd(), path, uid, gid, flags)
}

fn fchownat_raw(dirfd: RawFd, path: &CStr, uid: u32, gid: u32, flags: libc::c_int) -> Result<()> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::fchownat(dirfd, path.as_ptr(), uid, gid, flags) }).map(drop)
}

pub fn fchmod(fd: impl AsFd, mode: libc::mode_t) -> Result<()> {
    fchmod_raw(fd.as_fd().as_raw_fd(), mode)
}

fn fchmod_raw(fd: RawFd, mode: libc::mode_t) -> Result<()> {
    // SAFETY: plain syscall on a descriptor.
    check_int(unsafe { libc::fchmod(fd, mode) }).map(drop)
}

pub fn fstatat(dirfd: impl AsFd, path: &CStr, flags: libc::c_int) -> Result<libc::stat> {
    fstatat_raw(dirfd.as_fd().as_raw_fd(), path, flags)
}

fn fstatat_raw(dirfd: RawFd, path: &CStr, flags: libc::c_int) -> Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is a valid out-pointer; path is NUL-terminated.
    check_int(unsafe { libc::fstatat(dirfd, path.as_ptr(), st.as_mut_ptr(), flags) })?;
    // SAFETY: the kernel filled it in.
    Ok(unsafe { st.assume_init() })
}

pub fn write_all(fd: impl AsFd, data: &[u8]) -> Result<()> {
    write_all_raw(fd.as_fd().as_raw_fd(), data)
}

fn write_all_raw(fd: RawFd, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        // SAFETY: data is a valid buffer of the given length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = Errno::last();
            if e.0 == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// `read(2)`, retried on EINTR. Returns the byte count (0 at end of file).
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> Result<usize> {
    read_raw(fd.as_fd().as_raw_fd(), buf)
}

fn read_raw(fd: RawFd, buf: &mut [u8]) -> Result<usize> {
    loop {
        // SAFETY: buf is a valid, writable buffer of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// Writes `data` to the file at `path` (relative to `dirfd`), which must exist.
pub fn write_file_at(dirfd: impl AsFd, path: &CStr, data: &[u8]) -> Result<()> {
    let fd = openat(dirfd, path, libc::O_WRONLY | libc::O_NOCTTY, 0)?;
    write_all(fd, data)
}

pub fn chdir(path: &CStr) -> Result<()> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

pub fn fchdir(fd: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: plain syscall on a descriptor.
    check_int(unsafe { libc::fchdir(fd.as_raw_fd()) }).map(drop)
}

pub fn chroot(path: &CStr) -> Result<()> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::chroot(path.as_ptr()) }).map(drop)
}

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> Result<()> {
    // SAFETY: both strings are NUL-terminated.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
        .map(drop)
}

pub fn sethostname(name: &[u8]) -> Result<()> {
    // SAFETY: name is a valid buffer of the given length.
    check_int(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

pub fn setdomainname(name: &[u8]) -> Result<()> {
    // SAFETY: name is a valid buffer of the given length.
    check_int(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) }).map(drop)
}

pub fn setns(fd: impl AsFd, nstype: libc::c_int) -> Result<()> {
    setns_raw(fd.as_fd().as_raw_fd(), nstype)
}

fn setns_raw(fd: RawFd, nstype: libc::c_int) -> Result<()> {
    // SAFETY: plain syscall; a bad fd is reported as EBADF.
    check_int(unsafe { libc::setns(fd, nstype) }).map(drop)
}

pub fn unshare(flags: libc::c_int) -> Result<()> {
    // SAFETY: plain syscall.
    check_int(unsafe { libc::unshare(flags) }).map(drop)
}

pub fn setresuid(uid: u32) -> Result<()> {
    // SAFETY: raw syscall (not the glibc wrapper, which would broadcast to other threads).
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

pub fn setresgid(gid: u32) -> Result<()> {
    // SAFETY: raw syscall, see setresuid.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

pub fn setgroups(groups: &[libc::gid_t]) -> Result<()> {
    // SAFETY: raw syscall with a valid slice.
    check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) }).map(drop)
}

pub fn umask(mask: libc::mode_t) {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask) };
}

pub fn prctl(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> Result<()> {
    // SAFETY: prctl with scalar arguments only.
    check_int(unsafe { libc::prctl(option, arg2, arg3, 0, 0) }).map(drop)
}

/// A CPU set for [`sched_setaffinity`]: 1024 CPUs, one bit each.
pub type CpuMask = [u64; 16];

/// `sched_setaffinity(2)` for the calling thread. The kernel keeps only the CPUs the
/// thread's cpuset allows (EINVAL when none is left).
pub fn sched_setaffinity(mask: &CpuMask) -> Result<()> {
    // SAFETY: the kernel reads size_of_val(mask) bytes from a valid array.
    check(unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            0,
            std::mem::size_of_val(mask),
            mask.as_ptr(),
        )
    })
    .map(drop)
}

/// `set_mempolicy(2)`: `mode` with its flags, and a node mask (empty when `None`).
pub fn set_mempolicy(mode: libc::c_int, nodes: Option<&CpuMask>) -> Result<()> {
    let (ptr, maxnode) = match nodes {
        // The kernel reads maxnode - 1 bits.
        Some(m) => (m.as_ptr(), m.len() * 64 + 1),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: the kernel reads at most maxnode - 1 bits from a valid array (or nothing).
    check(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) }).map(drop)
}

pub fn setrlimit(resource: u32, soft: u64, hard: u64) -> Result<()> {
    let lim = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is valid for reading; pid 0 is the caller.
    check_int(unsafe { libc::prlimit64(0, resource as _, &lim, std::ptr::null_mut()) }).map(drop)
}

pub fn setsid() -> Result<()> {
    // SAFETY: plain syscall.
    check_int(unsafe { libc::setsid() }).map(drop)
}

pub fn dup2(from: impl AsFd, to: RawFd) -> Result<()> {
    dup2_raw(from.as_fd().as_raw_fd(), to)
}

fn dup2_raw(from: RawFd, to: RawFd) -> Result<()> {
    if from == to {
        // Make sure it survives exec.
        // SAFETY: fcntl on a descriptor.
        return check_int(unsafe { libc::fcntl(from, libc::F_SETFD, 0) }).map(drop);
    }
    // SAFETY: dup3 without O_CLOEXEC so the target survives exec.
    check_int(unsafe { libc::dup3(from, to, 0) }).map(drop)
}

pub fn ioctl_int(fd: impl AsFd, req: libc::c_ulong, arg: libc::c_ulong) -> Result<()> {
    ioctl_int_raw(fd.as_fd().as_raw_fd(), req, arg)
}

fn ioctl_int_raw(fd: RawFd, req: libc::c_ulong, arg: libc::c_ulong) -> Result<()> {
    // SAFETY: ioctl with a scalar argument.
    check_int(unsafe { libc::ioctl(fd, req, arg) }).map(drop)
}

/// Marks every descriptor from `first` on as close-on-exec, so only stdio and preserved fds
/// reach the container process.
pub fn cloexec_from(first: u32) -> Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes flags.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })
    .map(drop)
}

pub fn set_cloexec(fd: impl AsFd, on: bool) -> Result<()> {
    set_cloexec_raw(fd.as_fd().as_raw_fd(), on)
}

fn set_cloexec_raw(fd: RawFd, on: bool) -> Result<()> {
    let flag = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: fcntl on a descriptor.
    check_int(unsafe { libc::fcntl(fd, libc::F_SETFD, flag) }).map(drop)
}

/// `execve(2)` with argv/envp arrays prepared by the parent. Returns only on failure.
pub fn execve(path: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> Errno {
    debug_assert!(argv.last().is_some_and(|p| p.is_null()));
    debug_assert!(envp.last().is_some_and(|p| p.is_null()));
    // SAFETY: both arrays are NULL-terminated and point at C strings that outlive this call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for the parent and the init, read through the
/// vDSO (async-signal-safe, no allocation).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `_exit(2)`: leaves the child without running Rust or libc exit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no user-space state.
    unsafe { libc::_exit(code) }
}

/// Sends one byte and one descriptor over a connected unix socket (SCM_RIGHTS), no allocation.
pub fn send_fd(sock: impl AsFd, fd: impl AsFd) -> Result<()> {
    send_with_fd(sock, &[0u8], fd)
}

/// Sends `data` with one descriptor attached (SCM_RIGHTS) in a single message, no allocation.
pub fn send_with_fd(sock: impl AsFd, data: &[u8], fd: impl AsFd) -> Result<()> {
    send_with_fd_raw(sock.as_fd().as_raw_fd(), data, fd.as_fd().as_raw_fd())
}

fn send_with_fd_raw(sock: RawFd, data: &[u8], fd: RawFd) -> Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // Control buffer sized for one fd, aligned for cmsghdr.
    #[repr(C)]
    union Cmsg {
        _align: libc::cmsghdr,
        buf: [u8; 64],
    }
    let mut cbuf = Cmsg { buf: [0; 64] };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    // SAFETY: zeroed msghdr is a valid starting value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: taking a pointer to the union's buffer, which is large enough for `space`.
    msg.msg_control = unsafe { cbuf.buf.as_mut_ptr() }.cast();
    msg.msg_controllen = space;
    // SAFETY: msg_control points at a buffer of msg_controllen bytes; CMSG_* walk inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
    }
    loop {
        // SAFETY: msg is fully initialised and its buffers live until the call returns;
        // the kernel only reads iov_base.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// Receives a message into `buf` with at most one attached descriptor (close-on-exec).
/// Returns the byte count (0 when the peer closed) and the descriptor, if any.
pub fn recv_with_fd(sock: impl AsFd, buf: &mut [u8]) -> Result<(usize, Option<OwnedFd>)> {
    recv_with_fd_raw(sock.as_fd().as_raw_fd(), buf)
}

fn recv_with_fd_raw(sock: RawFd, buf: &mut [u8]) -> Result<(usize, Option<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    #[repr(C)]
    union Cmsg {
        _align: libc::cmsghdr,
        buf: [u8; 64],
    }
    let mut cbuf = Cmsg { buf: [0; 64] };
    // SAFETY: zeroed msghdr is a valid starting value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: pointer to the union's buffer.
    msg.msg_control = unsafe { cbuf.buf.as_mut_ptr() }.cast();
    msg.msg_controllen = 64;
    let n = loop {
        // SAFETY: msg describes valid buffers.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    };
    // SAFETY: CMSG_* walk inside the buffer the kernel filled.
    let fd = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            None
        } else {
            Some(owned(std::ptr::read_unaligned(
                libc::CMSG_DATA(cmsg).cast::<RawFd>(),
            )))
        }
    };
    Ok((n, fd))
}

/// Receives one descriptor sent with [`send_fd`] (parent side; used by tests and tools).
pub fn recv_fd(sock: impl AsFd) -> Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    recv_with_fd(sock, &mut byte).map(|(_, fd)| fd)
}

/// `pipe2(O_CLOEXEC)`: `(read end, write end)`.
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out-array of two ints.
    check_int(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just created.
    Ok(unsafe { (owned(fds[0]), owned(fds[1])) })
}

/// `accept4(2)` on a listening socket, close-on-exec, retried on EINTR.
pub fn accept(fd: impl AsFd) -> Result<OwnedFd> {
    accept_raw(fd.as_fd().as_raw_fd())
}

fn accept_raw(fd: RawFd) -> Result<OwnedFd> {
    loop {
        // SAFETY: null address pointers are allowed.
        let c = unsafe {
            libc::accept4(
                fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if c >= 0 {
            // SAFETY: a fresh descriptor from the kernel.
            return Ok(unsafe { owned(c) });
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// `waitpid(2)` for one child, retried on EINTR; returns the raw wait status.
pub fn waitpid(pid: i32) -> Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 {
            return Ok(status);
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// `faccessat(2)` with the effective ids.
pub fn access(path: &CStr, mode: libc::c_int) -> Result<()> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), mode, libc::AT_EACCESS) })
        .map(drop)
}

pub mod tty {
    //! Pseudo-terminals for containers with `process.terminal`.
    use super::*;

    /// Opens a new pty pair from `/dev/ptmx` (the container's devpts after pivot_root) and
    /// sets its window size. Returns `(master, slave)`.
    pub fn open_pty(size: Option<(u16, u16)>) -> Result<(OwnedFd, OwnedFd)> {
        let master = openat(CWD, c"/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY, 0)?;
        let m = master.as_raw_fd();
        let unlock: libc::c_int = 0;
        // SAFETY: TIOCSPTLCK reads an int through the pointer.
        check_int(unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &unlock) })?;
        if let Some((rows, cols)) = size {
            let ws = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCSWINSZ reads a winsize through the pointer.
            check_int(unsafe { libc::ioctl(m, libc::TIOCSWINSZ, &ws) })?;
        }
        // TIOCGPTPEER opens the peer without a path lookup.
        // SAFETY: TIOCGPTPEER takes open flags by value and returns a new descriptor.
        let s = check_int(unsafe {
            libc::ioctl(
                m,
                libc::TIOCGPTPEER,
                (libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) as libc::c_ulong,
            )
        })?;
        // SAFETY: a fresh descriptor from the kernel.
        Ok((master, unsafe { owned(s) }))
    }

    /// Clears ONLCR on terminal `fd`: output newlines stay `\n` instead of `\r\n` (as runc
    /// sets up a container's console). Allocation-free.
    pub fn clear_onlcr(fd: impl AsFd) -> Result<()> {
        clear_onlcr_raw(fd.as_fd().as_raw_fd())
    }

    fn clear_onlcr_raw(fd: RawFd) -> Result<()> {
        // SAFETY: termios calls with a valid pointer to a stack value.
        unsafe {
            let mut t = std::mem::zeroed::<libc::termios>();
            check_int(libc::tcgetattr(fd, &mut t))?;
            t.c_oflag &= !libc::ONLCR;
            check_int(libc::tcsetattr(fd, libc::TCSANOW, &t)).map(drop)
        }
    }

    /// Puts the terminal on `fd` in raw mode; returns the settings to restore, or `None`
    /// when `fd` is not a terminal.
    pub fn make_raw(fd: impl AsFd) -> Option<libc::termios> {
        make_raw_raw(fd.as_fd().as_raw_fd())
    }

    fn make_raw_raw(fd: RawFd) -> Option<libc::termios> {
        // SAFETY: termios calls with valid pointers to stack values.
        unsafe {
            let mut saved = std::mem::zeroed::<libc::termios>();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(fd, libc::TCSANOW, &raw) != 0 {
                return None;
            }
            Some(saved)
        }
    }

    /// Restores settings saved by [`make_raw`].
    pub fn restore(fd: impl AsFd, saved: &libc::termios) {
        restore_raw(fd.as_fd().as_raw_fd(), saved)
    }

    fn restore_raw(fd: RawFd, saved: &libc::termios) {
        // SAFETY: tcsetattr with a valid termios.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, saved) };
    }

    /// Copies the window size of terminal `from` to terminal `to` (the pty master).
    pub fn copy_size(from: impl AsFd, to: impl AsFd) {
        copy_size_raw(from.as_fd().as_raw_fd(), to.as_fd().as_raw_fd())
    }

    fn copy_size_raw(from: RawFd, to: RawFd) {
        // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a valid winsize.
        unsafe {
            let mut ws = std::mem::zeroed::<libc::winsize>();
            if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(to, libc::TIOCSWINSZ, &ws);
            }
        }
    }

    /// Makes `slave` the controlling terminal of a new session and the process's stdio.
    pub fn make_controlling(slave: BorrowedFd<'_>) -> Result<()> {
        setsid()?;
        ioctl_int(slave, libc::TIOCSCTTY, 0)?;
        for fd in 0..3 {
            dup2(slave, fd)?;
        }
        Ok(())
    }
}

/// Restores default signal handling for the program about to be exec'd: SIGPIPE (which the
/// Rust runtime ignores) back to default, and nothing blocked.
pub fn reset_signals() {
    // SAFETY: sigset and sigaction calls with valid, stack-local arguments.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Joins a new session keyring named `name` (so the container does not share the caller's),
/// and lets the possessor and the user view and use it (runc's permissions).
pub fn new_session_keyring(name: &CStr) -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    const KEYCTL_SETPERM: libc::c_long = 5;
    // SAFETY: keyctl with a NUL-terminated name; the kernel copies it.
    let id = check(unsafe {
        libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr())
    })?;
    // possessor: all; user: view, read, search, link (0x3f3f0000 | 0x1b... as runc sets)
    let perm: libc::c_ulong = 0x3f1b_0000;
    // SAFETY: keyctl with scalar arguments.
    check(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, id, perm) }).map(drop)
}

/// `getcwd(2)` into `buf`; the kernel prefixes "(unreachable)" when the directory is outside
/// the process's root.
pub fn getcwd(buf: &mut [u8]) -> Result<&[u8]> {
    // SAFETY: raw syscall writing at most buf.len() bytes into buf.
    let n =
        check(unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) })? as usize;
    // The length includes the terminating NUL.
    Ok(&buf[..n.saturating_sub(1)])
}

/// `readlinkat(2)` into `buf`; returns the target's length.
pub fn readlinkat(dirfd: impl AsFd, path: &CStr, buf: &mut [u8]) -> Result<usize> {
    readlinkat_raw(dirfd.as_fd().as_raw_fd(), path, buf)
}

fn readlinkat_raw(dirfd: RawFd, path: &CStr, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    let n = unsafe { libc::readlinkat(dirfd, path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    check(n as libc::c_long).map(|n| n as usize)
}

/// `unlinkat(2)`.
pub fn unlinkat(dirfd: impl AsFd, path: &CStr, flags: libc::c_int) -> Result<()> {
    unlinkat_raw(dirfd.as_fd().as_raw_fd(), path, flags)
}

fn unlinkat_raw(dirfd: RawFd, path: &CStr, flags: libc::c_int) -> Result<()> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::unlinkat(dirfd, path.as_ptr(), flags) }).map(drop)
}

pub mod signals {
    //! Signals as descriptors, for the foreground `run`/`exec` loop.
    use super::*;

    /// Blocks `set` in this (single) thread so that it can be read from a signalfd.
    pub fn block(set: &libc::sigset_t) {
        // SAFETY: sigprocmask with a valid set.
        unsafe { libc::sigprocmask(libc::SIG_BLOCK, set, std::ptr::null_mut()) };
    }

    /// A set holding `signals`.
    pub fn set_of(signals: &[i32]) -> libc::sigset_t {
        // SAFETY: sigemptyset/sigaddset fill a stack-local set.
        unsafe {
            let mut set = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
            set
        }
    }

    pub fn signalfd(set: &libc::sigset_t) -> Result<OwnedFd> {
        // SAFETY: signalfd with a valid set creates a new descriptor.
        let fd = check_int(unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC) })?;
        // SAFETY: a fresh descriptor from the kernel.
        Ok(unsafe { owned(fd) })
    }

    /// The next pending signal number on a signalfd.
    pub fn read(fd: impl AsFd) -> Option<i32> {
        read_raw(fd.as_fd().as_raw_fd())
    }

    fn read_raw(fd: RawFd) -> Option<i32> {
        // SAFETY: a zeroed signalfd_siginfo is valid; read fills at most its size.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let len = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: info is valid for `len` bytes.
        let r = unsafe { libc::read(fd, (&mut info as *mut libc::signalfd_siginfo).cast(), len) };
        (r == len as isize).then_some(info.ssi_signo as i32)
    }
}

/// `poll(2)`, retried on EINTR; returns the number of ready descriptors.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize> {
    loop {
        // SAFETY: fds is a valid array of pollfds of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// A connected `AF_UNIX` socketpair of `kind` (`SOCK_SEQPACKET`, `SOCK_STREAM`), close-on-exec.
pub fn socketpair(kind: libc::c_int) -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out-array of two ints.
    check_int(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            kind | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (owned(fds[0]), owned(fds[1])) })
}

/// `send(2)` of one whole message on a socket, without SIGPIPE.
pub fn send(fd: impl AsFd, data: &[u8]) -> Result<()> {
    send_raw(fd.as_fd().as_raw_fd(), data)
}

fn send_raw(fd: RawFd, data: &[u8]) -> Result<()> {
    // SAFETY: data is a valid buffer of the given length.
    let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
    if n == data.len() as isize {
        Ok(())
    } else if n < 0 {
        Err(Errno::last())
    } else {
        Err(Errno(libc::EMSGSIZE))
    }
}

/// Closes a descriptor this process holds a copy of but does not own as an `OwnedFd` (the
/// child's copies of parent-only descriptors after clone).
pub fn close_raw(fd: RawFd) {
    // SAFETY: closing a descriptor number is memory-safe; callers pass copies they never use again.
    unsafe { libc::close(fd) };
}

pub fn set_nonblocking(fd: impl AsFd) -> Result<()> {
    set_nonblocking_raw(fd.as_fd().as_raw_fd())
}

fn set_nonblocking_raw(fd: RawFd) -> Result<()> {
    // SAFETY: fcntl on a descriptor.
    let fl = check_int(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    check_int(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) }).map(drop)
}

/// `flock(2)`, retried on EINTR.
pub fn flock(fd: impl AsFd, op: libc::c_int) -> Result<()> {
    flock_raw(fd.as_fd().as_raw_fd(), op)
}

fn flock_raw(fd: RawFd, op: libc::c_int) -> Result<()> {
    loop {
        // SAFETY: flock on a descriptor.
        if unsafe { libc::flock(fd, op) } == 0 {
            return Ok(());
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

pub fn getegid() -> u32 {
    // SAFETY: getegid cannot fail.
    unsafe { libc::getegid() }
}

/// Declares a `#[repr(u16)]` enum of child-side steps, numbered from 1, with `from_u16` to
/// decode what travelled over the sync socket.
#[macro_export]
macro_rules! step_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $first:ident $(, $rest:ident)* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        $vis enum $name {
            $first = 1,
            $($rest,)*
        }

        impl $name {
            /// The step with this number, if there is one.
            pub fn from_u16(v: u16) -> Option<$name> {
                [$name::$first $(, $name::$rest)*].into_iter().find(|s| *s as u16 == v)
            }
        }
    };
}
