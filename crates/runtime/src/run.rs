//! `run`: create and start in one process. In the foreground husk stays the init's parent,
//! forwards signals to it, and exits with its exit code (128+signal when it was killed).

use std::os::fd::{AsFd, AsRawFd};

use crate::create::{CreateOptions, Gate};
use crate::error::InitError;
use crate::protocol::{self, ToChild, ToParent};
use crate::relay::Relay;
use crate::{Result, Runtime};

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
    husk_sys::signals::set_of(&FORWARDED)
}

/// `run`'s own flags (beyond create's).
#[derive(Debug, Default, Clone, Copy)]
pub struct RunFlags {
    /// `--detach`: return once the process is started.
    pub detach: bool,
    /// `--keep`: keep the stopped container instead of removing it.
    pub keep: bool,
    /// `--no-subreaper`: husk does not make itself a child subreaper while it waits.
    pub no_subreaper: bool,
}

impl Runtime {
    /// Returns the exit code husk should exit with. With `keep` (runc's `run --keep`) the
    /// stopped container stays, for `state` and `delete`, instead of being removed.
    pub fn run(&self, opts: &CreateOptions, flags: RunFlags) -> Result<i32> {
        self.run_container(opts, flags)
            .map_err(|e| e.in_container(&opts.id))
    }

    fn run_container(&self, opts: &CreateOptions, flags: RunFlags) -> Result<i32> {
        let RunFlags {
            detach,
            keep,
            no_subreaper,
        } = flags;
        // Block the forwarded signals before the clone so none is lost; the init unblocks
        // everything before it execs.
        let set = signal_set();
        if !detach {
            husk_sys::signals::block(&set);
            // Like runc (unless --no-subreaper): processes orphaned in the container come
            // back to husk, and an init that is a grandchild (a pid namespace made inside a
            // joined user namespace) can be waited for. Without it, create refuses such an
            // init (Gate::Sync's `subreaper`).
            if !no_subreaper {
                if let Err(e) = husk_sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0) {
                    tracing::debug!("cannot become a child subreaper: {e}");
                }
            }
        }
        let gate = Gate::Sync {
            relay: !detach,
            subreaper: !no_subreaper,
        };
        let created = self.create_container(opts, gate)?;
        let id = opts.id.as_str();
        let rec = &created.record;
        let sync = created.sync.as_fd();
        protocol::send(sync, ToChild::Start).map_err(InitError::step("start"))?;
        // End of file: the init exec'd (its end is close-on-exec).
        match protocol::recv::<ToParent>(sync) {
            Ok(None) => {}
            Ok(Some(ToParent::Failed {
                domain,
                step,
                index,
                errno,
            })) => {
                let _ = husk_sys::waitpid(rec.pid);
                let msg = crate::describe::after_start(&rec.spec, domain, step, index, errno);
                if !keep {
                    let _ = self.destroy_after_run(rec);
                }
                return Err(InitError::Reported(msg).into());
            }
            Ok(Some(other)) => return Err(InitError::Unexpected(format!("{other:?}")).into()),
            Err(e) => return Err(InitError::step("wait for exec")(e)),
        }
        rec.run_poststart();
        if detach {
            return Ok(0);
        }
        let mut relay = created.console_master.map(Relay::new);
        let status = wait_forwarding(rec.pid, &set, relay.as_mut())?;
        drop(relay);
        drop(created.sync);
        // Like runc: a foreground run removes the container once its process is gone.
        if keep {
            return Ok(exit_code(status));
        }
        if let Err(e) = self.destroy_after_run(rec) {
            tracing::warn!("container {id}: cleanup after run: {e}");
        }
        Ok(exit_code(status))
    }
}

impl Runtime {
    /// The init is gone: remove the container with the record `run` already has in memory.
    fn destroy_after_run(&self, rec: &crate::record::Record) -> Result<()> {
        let dir = self.store.open(&rec.id, husk_state::Lock::Exclusive)?;
        self.destroy(dir, rec)
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

/// Waits for the process (our child) while forwarding signals to it and, with a terminal,
/// relaying between the pty and husk's stdio; returns its wait status.
pub(crate) fn wait_forwarding(
    pid: i32,
    set: &libc::sigset_t,
    mut relay: Option<&mut Relay>,
) -> Result<i32> {
    let err = |what: &str, e: husk_sys::Errno| {
        InitError::step(format!("wait for container process {pid}: {what}"))(e)
    };
    let sfd = husk_sys::signals::signalfd(set).map_err(|e| err("signalfd", e))?;
    let pidfd = husk_sys::proc::pidfd_open(pid).map_err(|e| err("pidfd_open", e))?;
    let mut master_open = relay.is_some();
    loop {
        let pollfd = |fd: i32| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let (master, stdin) = match &relay {
            Some(r) => (
                if master_open { r.master() } else { -1 },
                if r.stdin_open() { 0 } else { -1 },
            ),
            None => (-1, -1),
        };
        let mut fds = [
            pollfd(sfd.as_raw_fd()),
            pollfd(pidfd.as_raw_fd()),
            pollfd(master),
            pollfd(stdin),
        ];
        husk_sys::poll(&mut fds, -1).map_err(|e| err("poll", e))?;
        if fds[0].revents & libc::POLLIN != 0 {
            match (husk_sys::signals::read(&sfd), relay.as_deref()) {
                // The pty itself tells the container when its window changes.
                (Some(libc::SIGWINCH), Some(r)) => r.resize(),
                (Some(sig), _) => {
                    let _ = husk_sys::proc::pidfd_send_signal(&pidfd, sig);
                }
                (None, _) => {}
            }
        }
        if let Some(r) = relay.as_deref_mut() {
            if fds[2].revents != 0 && !r.pump_stdout() {
                master_open = false;
            }
            if fds[3].revents != 0 {
                r.pump_stdin();
            }
        }
        if fds[1].revents & libc::POLLIN != 0 {
            if let Some(r) = relay.as_deref() {
                r.drain();
            }
            return husk_sys::waitpid(pid).map_err(|e| err("waitpid", e));
        }
    }
}
