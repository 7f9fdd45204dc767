//! The sync protocol between `husk` (parent) and the container's init (child): fixed 16-byte
//! messages over a SOCK_SEQPACKET socketpair. No JSON, no allocation on the child's side.
//! Messages are typed by direction: the parent sends [`ToChild`], the child [`ToParent`].
//!
//! ```text
//! create / run                                 (the child's steps: crate::child)
//!
//!   parent (husk)                                   child (the init)
//!   ── clone3(new namespaces, into the v2 cgroup) ──▶ close fds, write "0" to v1 tasks
//!   write uid_map, gid_map  (new user namespace)
//!   write oom_score_adj
//!   SetupDone ─────────────────────────────────────▶ (only if wait_setup: new user ns,
//!                                                     fork again, or in-container hooks)
//!   state "creating", state "created" (raw blobs) ─▶ (only with createContainer or
//!                                                     startContainer hooks)
//!                                                     setns(joins), unshare
//!         ◀──────────────────────────────────────── Pid(grandchild)  (fork again: a pid or
//!   the grandchild is the init now                    time ns under a joined user ns)
//!                                                     become root, keyring, hostname,
//!                                                     mounts (not yet pivoted)
//!         ◀──────────────────────────────────────── RunHooks  (prestart/createRuntime set)
//!   run prestart, createRuntime
//!   HooksDone ─────────────────────────────────────▶ createContainer hooks, pivot_root,
//!                                                     console, sysctls, rlimits, cwd, ...
//!         ◀──────────────────────────────────────── SeccompFd + listener (notify filter)
//!   listener → seccomp agent
//!         ◀──────────────────────────────────────── Ready
//!   save state.json; `create` returns                 waits for start:
//!
//!   create: `husk start` connects to the start socket ▶ accept()
//!   run:    Start ────────────────────────────────────▶ (on the sync socket)
//!         ◀──── end of file at exec (the channel is close-on-exec), or Failed on it
//!               (or 4 bytes of errno from the exec trampoline when the final execve fails)
//!                                                     startContainer hooks, seccomp, execve
//!
//! exec
//!
//!   parent (husk exec)                              child (the new process)
//!   setns(init's pid ns); clone3(into the cgroup) ──▶ close fds, write "0" to v1 tasks,
//!   setns back                                        setns(init's pidfd, other namespaces)
//!         ◀──────────────────────────────────────── SeccompFd + listener (notify filter)
//!   listener → seccomp agent
//!         ◀──────────────────────────────────────── Ready (no gate: the child goes on)
//!         ◀──── end of file at exec, or Failed                  execve
//! ```
//!
//! At any point the child may send `Failed { domain, step, index, errno }` instead and exit;
//! the parent names the step and its object from the plan ([`crate::describe`]). With
//! `HUSK_TRACE`, `Mark { phase, ns }` messages come between the others. One driver,
//! [`crate::spawn::drive`], reads the child's messages for create, run and exec.

use std::os::fd::{AsFd, OwnedFd};

use husk_sys::{Errno, Result};

/// Who reported a child-side failure; selects how `step` is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Domain {
    Runtime = 1,
    Rootfs = 2,
    Hardening = 3,
}

/// Messages the parent sends to the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToChild {
    /// uid/gid maps are written (and the hook state follows); go on.
    SetupDone,
    /// Hooks ran; go on.
    HooksDone,
    /// `run`: exec the user process now.
    Start,
}

/// Messages the child sends to the parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToParent {
    /// The mounts are ready; run prestart and createRuntime hooks.
    RunHooks,
    /// Set up and waiting to be started.
    Ready,
    /// A step failed.
    Failed {
        domain: Domain,
        step: u16,
        index: u32,
        errno: Errno,
    },
    /// The seccomp notify listener, attached as SCM_RIGHTS.
    SeccompFd,
    /// Intermediate child: the container's init is this (host) pid.
    Pid(i32),
    /// Only when phases are traced: setup phase `phase` ended at `ns` (CLOCK_MONOTONIC).
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

/// A message of one direction: four native-endian words, the first its kind.
pub trait Message: Copy + Sized {
    fn words(self) -> [u32; 4];
    fn from_words(w: [u32; 4]) -> Option<Self>;

    fn encode(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, v) in self.words().into_iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        out
    }

    fn decode(buf: &[u8; 16]) -> Option<Self> {
        let word = |i: usize| {
            u32::from_ne_bytes([buf[i * 4], buf[i * 4 + 1], buf[i * 4 + 2], buf[i * 4 + 3]])
        };
        Self::from_words([word(0), word(1), word(2), word(3)])
    }
}

impl Message for ToChild {
    fn words(self) -> [u32; 4] {
        let kind = match self {
            ToChild::SetupDone => SETUP_DONE,
            ToChild::HooksDone => HOOKS_DONE,
            ToChild::Start => START,
        };
        [kind, 0, 0, 0]
    }

    fn from_words(w: [u32; 4]) -> Option<ToChild> {
        Some(match w[0] {
            SETUP_DONE => ToChild::SetupDone,
            HOOKS_DONE => ToChild::HooksDone,
            START => ToChild::Start,
            _ => return None,
        })
    }
}

impl Message for ToParent {
    fn words(self) -> [u32; 4] {
        match self {
            ToParent::RunHooks => [RUN_HOOKS, 0, 0, 0],
            ToParent::Ready => [READY, 0, 0, 0],
            ToParent::SeccompFd => [SECCOMP_FD, 0, 0, 0],
            ToParent::Pid(pid) => [PID, pid as u32, 0, 0],
            ToParent::Mark { phase, ns } => [MARK, phase as u32, ns as u32, (ns >> 32) as u32],
            ToParent::Failed {
                domain,
                step,
                index,
                errno,
            } => [
                FAILED,
                (domain as u32) << 16 | step as u32,
                index,
                errno.0 as u32,
            ],
        }
    }

    fn from_words(w: [u32; 4]) -> Option<ToParent> {
        Some(match w[0] {
            RUN_HOOKS => ToParent::RunHooks,
            READY => ToParent::Ready,
            SECCOMP_FD => ToParent::SeccompFd,
            PID => ToParent::Pid(w[1] as i32),
            MARK => ToParent::Mark {
                phase: w[1] as u16,
                ns: u64::from(w[2]) | u64::from(w[3]) << 32,
            },
            FAILED => {
                let domain = match w[1] >> 16 {
                    1 => Domain::Runtime,
                    2 => Domain::Rootfs,
                    3 => Domain::Hardening,
                    _ => return None,
                };
                ToParent::Failed {
                    domain,
                    step: w[1] as u16,
                    index: w[2],
                    errno: Errno(w[3] as i32),
                }
            }
            _ => return None,
        })
    }
}

/// Decodes a child's message read by other means (the start connection); `n` bytes came.
pub fn decode(buf: &[u8; 16], n: usize) -> Option<ToParent> {
    match n {
        16 => ToParent::decode(buf),
        husk_sys::exe_guard::EXEC_FAILED_LEN => Some(exec_failed(buf)),
        _ => None,
    }
}

/// The exec trampoline's report: its final execve failed with the errno in the first 4 bytes.
fn exec_failed(buf: &[u8; 16]) -> ToParent {
    ToParent::Failed {
        domain: Domain::Runtime,
        step: crate::child::Step::Exec as u16,
        index: 0,
        errno: Errno(i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]])),
    }
}

/// Creates the socketpair: `(parent end, child end)`, both close-on-exec.
pub fn socketpair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    husk_sys::socketpair(libc::SOCK_SEQPACKET).map_err(Errno::to_io)
}

pub fn send(fd: impl AsFd, msg: impl Message) -> Result<()> {
    husk_sys::send(fd, &msg.encode())
}

/// Receives one message; `Ok(None)` when the other side has closed its end.
pub fn recv<M: Message>(fd: impl AsFd) -> Result<Option<M>> {
    recv_with_fd(fd).map(|m| m.map(|(msg, _)| msg))
}

/// Receives one message and the descriptor attached to it, if any.
pub fn recv_with_fd<M: Message>(fd: impl AsFd) -> Result<Option<(M, Option<OwnedFd>)>> {
    let mut buf = [0u8; 16];
    let (n, passed) = husk_sys::recv_with_fd(fd, &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if n == husk_sys::exe_guard::EXEC_FAILED_LEN {
        // Only ToParent has this short form; the parent never sends it.
        let msg = M::from_words(ToParent::words(exec_failed(&buf))).ok_or(Errno(libc::EPROTO))?;
        return Ok(Some((msg, passed)));
    }
    if n != buf.len() {
        return Err(Errno(libc::EPROTO));
    }
    let msg = M::decode(&buf).ok_or(Errno(libc::EPROTO))?;
    Ok(Some((msg, passed)))
}

/// Child side: sends the seccomp listener to the parent.
pub fn send_seccomp_fd(sync: impl AsFd, listener: impl AsFd) -> Result<()> {
    husk_sys::send_with_fd(sync, &ToParent::SeccompFd.encode(), listener)
}

/// Sends a variable-length blob (the state JSON for hooks run inside the container).
pub fn send_blob(fd: impl AsFd, data: &[u8]) -> Result<()> {
    husk_sys::send(fd, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let (a, b) = socketpair().unwrap();
        for m in [
            ToParent::RunHooks,
            ToParent::Ready,
            ToParent::Pid(4242),
            ToParent::Mark {
                phase: 3,
                ns: 0x1234_5678_9abc_def0,
            },
            ToParent::Failed {
                domain: Domain::Rootfs,
                step: 5,
                index: 3,
                errno: Errno(libc::EPERM),
            },
        ] {
            send(&a, m).unwrap();
            assert_eq!(recv::<ToParent>(&b).unwrap(), Some(m));
        }
        for m in [ToChild::SetupDone, ToChild::HooksDone, ToChild::Start] {
            send(&a, m).unwrap();
            assert_eq!(recv::<ToChild>(&b).unwrap(), Some(m));
        }
        drop(a);
        assert_eq!(recv::<ToParent>(&b).unwrap(), None);
    }

    /// A message of the other direction is a protocol error, not a misread.
    #[test]
    fn directions_do_not_mix() {
        let (a, b) = socketpair().unwrap();
        send(&a, ToChild::Start).unwrap();
        assert_eq!(recv::<ToParent>(&b), Err(Errno(libc::EPROTO)));
        send(&a, ToParent::Ready).unwrap();
        assert_eq!(recv::<ToChild>(&b), Err(Errno(libc::EPROTO)));
    }
}
