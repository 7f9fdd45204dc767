//! Processes seen from outside: liveness with pid-reuse protection, pidfds, signals.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use crate::{check, Errno, Result};

/// The start time of `pid` (field 22 of `/proc/PID/stat`, in clock ticks since boot), which
/// together with the pid identifies one process for its whole life.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Parses field 22 out of a `/proc/PID/stat` line; the command name may hold spaces and
/// parentheses, so fields are counted after the last ')'.
pub fn parse_start_time(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // After ')' come field 3 (state) onwards; start time is field 22.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// True when `pid` is alive (not a zombie) and is still the process that started at `start`.
pub fn is_same_live_process(pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.iter().rposition(|&b| b == b')') else {
        return false;
    };
    if matches!(stat.get(close + 2), Some(b'Z') | Some(b'X')) {
        return false;
    }
    parse_start_time(&stat) == Some(start)
}

pub fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: plain syscall.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: a fresh descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `sig` through a pidfd, which cannot hit a recycled pid.
pub fn pidfd_send_signal(pidfd: impl AsFd, sig: i32) -> Result<()> {
    let pidfd = pidfd.as_fd();
    // SAFETY: plain syscall; null siginfo is allowed.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<u8>(),
            0,
        )
    })
    .map(drop)
}

/// Waits until the process behind `pidfd` has exited, up to `timeout_ms` (-1: forever).
/// Returns false on timeout.
pub fn pidfd_wait_exit(pidfd: impl AsFd, timeout_ms: i32) -> Result<bool> {
    let pidfd = pidfd.as_fd();
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: pfd is a valid pollfd array of length 1.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n >= 0 {
            return Ok(n > 0);
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

pub fn kill(pid: i32, sig: i32) -> Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::kill(pid, sig) } as libc::c_long).map(drop)
}

/// Makes the process `cmd` starts get `signal` when husk dies (PR_SET_PDEATHSIG; husk is
/// single-threaded, so its one thread's exit is its death), also when husk died between the
/// fork and the prctl. A hook must not outlive a killed husk: nothing would wait for it, and
/// `delete --force` could not know it.
pub fn die_with_parent(cmd: &mut std::process::Command, signal: i32) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    let hook = move || {
        // SAFETY: runs in the forked child before exec; prctl and getppid are
        // async-signal-safe system calls on no memory of ours.
        let (set, ppid) = unsafe {
            (
                libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0),
                libc::getppid(),
            )
        };
        if set != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if ppid != parent {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    };
    // SAFETY: the closure only makes the two system calls above: no allocation, no lock,
    // nothing that is unsafe between fork and exec.
    unsafe {
        cmd.pre_exec(hook);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_survives_odd_comm() {
        let line = b"123 (a) b (c)) S 1 123 123 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 100 1";
        assert_eq!(parse_start_time(line), Some(98765));
    }

    #[test]
    fn own_process_is_alive() {
        let me = std::process::id() as i32;
        let st = start_time(me).unwrap();
        assert!(is_same_live_process(me, st));
        assert!(!is_same_live_process(me, st + 1));
    }
}
