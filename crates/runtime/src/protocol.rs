//! The sync protocol between `husk` (parent) and the container's init (child): fixed 16-byte
//! messages over a SOCK_SEQPACKET socketpair. No JSON, no allocation on the child's side.

use std::os::fd::{OwnedFd, RawFd};

use husk_sys::{Errno, Result};

/// Who reported a child-side failure; selects how `step` is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Domain {
    Runtime = 1,
    Rootfs = 2,
    Hardening = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg {
    /// Parent → child: uid/gid maps are written and the cgroup is joined; go on.
    SetupDone,
    /// Child → parent: the mounts are ready; run prestart and createRuntime hooks.
    RunHooks,
    /// Parent → child: hooks ran; go on.
    HooksDone,
    /// Child → parent: set up and waiting to be started.
    Ready,
    /// Parent → child (`run`): exec the user process now.
    Start,
    /// Child → parent: a step failed.
    Failed {
        domain: Domain,
        step: u16,
        index: u32,
        errno: Errno,
    },
    /// Child → parent: the seccomp notify listener, attached as SCM_RIGHTS.
    SeccompFd,
    /// Intermediate child → parent: the container's init is this (host) pid.
    Pid(i32),
    /// Child → parent, only when phases are traced: setup phase `phase` ended at `ns`
    /// (CLOCK_MONOTONIC).
    Mark { phase: u16, ns: u64 },
}

const SETUP_DONE: u32 = 1;
const RUN_HOOKS: u32 = 2;
const HOOKS_DONE: u32 = 3;
const READY: u32 = 4;
const START: u32 = 5;
const FAILED: u32 = 6;
const SECCOMP_FD: u32 = 7;
const PID: u32 = 8;
const MARK: u32 = 9;

impl Msg {
    fn encode(self) -> [u8; 16] {
        let (kind, a, b, c) = match self {
            Msg::SetupDone => (SETUP_DONE, 0, 0, 0),
            Msg::RunHooks => (RUN_HOOKS, 0, 0, 0),
            Msg::HooksDone => (HOOKS_DONE, 0, 0, 0),
            Msg::Ready => (READY, 0, 0, 0),
            Msg::Start => (START, 0, 0, 0),
            Msg::SeccompFd => (SECCOMP_FD, 0, 0, 0),
            Msg::Pid(pid) => (PID, pid as u32, 0, 0),
            Msg::Mark { phase, ns } => (MARK, phase as u32, ns as u32, (ns >> 32) as u32),
            Msg::Failed {
                domain,
                step,
                index,
                errno,
            } => (
                FAILED,
                (domain as u32) << 16 | step as u32,
                index,
                errno.0 as u32,
            ),
        };
        let mut out = [0u8; 16];
        for (i, v) in [kind, a, b, c].into_iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        out
    }

    fn decode(buf: &[u8; 16]) -> Option<Msg> {
        let word = |i: usize| {
            u32::from_ne_bytes([buf[i * 4], buf[i * 4 + 1], buf[i * 4 + 2], buf[i * 4 + 3]])
        };
        Some(match word(0) {
            SETUP_DONE => Msg::SetupDone,
            RUN_HOOKS => Msg::RunHooks,
            HOOKS_DONE => Msg::HooksDone,
            READY => Msg::Ready,
            START => Msg::Start,
            SECCOMP_FD => Msg::SeccompFd,
            PID => Msg::Pid(word(1) as i32),
            MARK => Msg::Mark {
                phase: word(1) as u16,
                ns: u64::from(word(2)) | u64::from(word(3)) << 32,
            },
            FAILED => {
                let domain = match word(1) >> 16 {
                    1 => Domain::Runtime,
                    2 => Domain::Rootfs,
                    3 => Domain::Hardening,
                    _ => return None,
                };
                Msg::Failed {
                    domain,
                    step: word(1) as u16,
                    index: word(2),
                    errno: Errno(word(3) as i32),
                }
            }
            _ => return None,
        })
    }
}

/// Decodes a message read by other means (the start connection).
pub fn decode(buf: &[u8; 16]) -> Option<Msg> {
    Msg::decode(buf)
}

/// Creates the socketpair: `(parent end, child end)`, both close-on-exec.
pub fn socketpair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    husk_sys::socketpair(libc::SOCK_SEQPACKET).map_err(Errno::to_io)
}

pub fn send(fd: RawFd, msg: Msg) -> Result<()> {
    husk_sys::send(fd, &msg.encode())
}

/// Receives one message; `Ok(None)` when the other side has closed its end.
pub fn recv(fd: RawFd) -> Result<Option<Msg>> {
    recv_with_fd(fd).map(|m| m.map(|(msg, _)| msg))
}

/// Receives one message and the descriptor attached to it, if any.
pub fn recv_with_fd(fd: RawFd) -> Result<Option<(Msg, Option<OwnedFd>)>> {
    let mut buf = [0u8; 16];
    let (n, passed) = husk_sys::recv_with_fd(fd, &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if n != buf.len() {
        return Err(Errno(libc::EPROTO));
    }
    let msg = Msg::decode(&buf).ok_or(Errno(libc::EPROTO))?;
    Ok(Some((msg, passed)))
}

/// Child side: sends the seccomp listener to the parent.
pub fn send_seccomp_fd(sync: RawFd, listener: RawFd) -> Result<()> {
    husk_sys::send_with_fd(sync, &Msg::SeccompFd.encode(), listener)
}

/// Sends a variable-length blob (the state JSON for hooks run inside the container).
pub fn send_blob(fd: RawFd, data: &[u8]) -> Result<()> {
    husk_sys::send(fd, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn round_trip() {
        let (a, b) = socketpair().unwrap();
        for m in [
            Msg::SetupDone,
            Msg::Ready,
            Msg::Mark {
                phase: 3,
                ns: 0x1234_5678_9abc_def0,
            },
            Msg::Failed {
                domain: Domain::Rootfs,
                step: 5,
                index: 3,
                errno: Errno(libc::EPERM),
            },
        ] {
            send(a.as_raw_fd(), m).unwrap();
            assert_eq!(recv(b.as_raw_fd()).unwrap(), Some(m));
        }
        drop(a);
        assert_eq!(recv(b.as_raw_fd()).unwrap(), None);
    }
}
