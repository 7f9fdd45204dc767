//! Helpers for tests that fork a child, apply plan steps there and look at the outcome.
//!
//! The child only makes system calls (no allocation, no panics): the test harness is
//! multi-threaded, so anything needing a lock could deadlock after fork.

#![allow(dead_code)]

use oci_spec::runtime::{Linux, Process};

/// How a forked child ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Forks; the child runs `child` and `_exit`s with its return value.
pub fn fork_child(child: impl FnOnce() -> i32) -> Exit {
    // SAFETY: the child only runs `child`, which the tests restrict to system calls, and exits
    // with _exit without returning into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        husk_sys::exit_now(child());
    }
    wait(pid)
}

pub fn wait(pid: libc::pid_t) -> Exit {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer; pid is our child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EINTR)
        );
    }
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

pub fn process(json: &str) -> Process {
    serde_json::from_str(json).expect("process JSON")
}

pub fn linux(json: &str) -> Linux {
    serde_json::from_str(json).expect("linux JSON")
}

/// errno after a failed call in the child.
pub fn errno() -> i32 {
    husk_sys::Errno::last().0
}

/// A raw syscall with up to six arguments; returns the result or -errno.
pub fn syscall(nr: libc::c_long, args: [u64; 6]) -> i64 {
    // SAFETY: the tests only pass syscalls whose arguments are scalars or ignored.
    let r = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) };
    if r == -1 {
        -(errno() as i64)
    } else {
        r as i64
    }
}
