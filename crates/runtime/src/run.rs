//! `run`: create and start in one process. In the foreground husk stays the init's parent,
//! forwards signals to it, and exits with its exit code (128+signal when it was killed).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use husk_state::Status;

use crate::create::{CreateOptions, Gate};
use crate::protocol::{self, Msg};
use crate::{hooks, Result, Runtime, RuntimeError};

/// Signals a foreground `run` passes on to the container (SIGCHLD is ours).
const FORWARDED: [i32; 11] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

pub(crate) fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a stack-local set.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

impl Runtime {
    /// Returns the exit code husk should exit with.
    pub fn run(&self, opts: &CreateOptions, detach: bool) -> Result<i32> {
        // Block the forwarded signals before the clone so none is lost; the init unblocks
        // everything before it execs.
        let set = signal_set();
        if !detach {
            // SAFETY: changing this (single) thread's signal mask with a valid set.
            unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        }
        let created = self.create_container(opts, Gate::Sync)?;
        let id = opts.id.as_str();
        let rec = &created.record;
        let sync = created.sync.as_raw_fd();
        protocol::send(sync, Msg::Start)
            .map_err(|e| RuntimeError::Init(format!("container {id}: start: {e}")))?;
        // End of file: the init exec'd (its end is close-on-exec).
        match protocol::recv(sync) {
            Ok(None) => {}
            Ok(Some(Msg::Failed {
                domain,
                step,
                index,
                errno,
            })) => {
                let _ = husk_sys::waitpid(rec.pid);
                let msg = crate::describe::after_start(&rec.spec, domain, step, index, errno);
                let _ = self.delete(id, true);
                return Err(RuntimeError::Init(format!("container {id}: {msg}")));
            }
            Ok(Some(other)) => {
                return Err(RuntimeError::Init(format!(
                    "container {id}: unexpected {other:?} from init"
                )))
            }
            Err(e) => {
                return Err(RuntimeError::Init(format!(
                    "container {id}: wait for exec: {e}"
                )))
            }
        }
        let state = serde_json::to_vec(&rec.oci_state(Status::Running)).unwrap_or_default();
        hooks::run_all_warn(
            "poststart",
            rec.spec
                .hooks()
                .as_ref()
                .and_then(|h| h.poststart().as_ref()),
            &state,
        );
        if detach {
            return Ok(0);
        }
        let status = wait_forwarding(rec.pid, &set)?;
        drop(created);
        // Like runc: a foreground run removes the container once its process is gone.
        if let Err(e) = self.delete(id, true) {
            tracing::warn!("container {id}: cleanup after run: {e}");
        }
        Ok(exit_code(status))
    }
}

/// A wait status as a shell reports it: the exit code, or 128+N when killed by signal N.
pub(crate) fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// Waits for the init (our child) while forwarding signals to it; returns its wait status.
pub(crate) fn wait_forwarding(pid: i32, set: &libc::sigset_t) -> Result<i32> {
    let err = |what: &str| {
        let e = std::io::Error::last_os_error();
        RuntimeError::Init(format!("wait for container process {pid}: {what}: {e}"))
    };
    // SAFETY: signalfd with a valid set creates a new descriptor we own.
    let sfd = unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC) };
    if sfd < 0 {
        return Err(err("signalfd"));
    }
    // SAFETY: sfd was just created.
    let sfd = unsafe { OwnedFd::from_raw_fd(sfd) };
    let pidfd = husk_sys::proc::pidfd_open(pid).map_err(|_| err("pidfd_open"))?;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: sfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of two pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err("poll"));
        }
        if fds[0].revents & libc::POLLIN != 0 {
            // SAFETY: reading one signalfd_siginfo into a properly sized buffer.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let len = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: info is valid for `len` bytes.
            let r = unsafe {
                libc::read(
                    sfd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    len,
                )
            };
            if r == len as isize {
                let _ = husk_sys::proc::pidfd_send_signal(&pidfd, info.ssi_signo as i32);
            }
        }
        if fds[1].revents & libc::POLLIN != 0 {
            return husk_sys::waitpid(pid).map_err(|_| err("waitpid"));
        }
    }
}
