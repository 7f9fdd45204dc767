//! One way to start a child for `create`, `run` and `exec`: [`spawn`] clones it (the parent
//! standing in the namespaces it must be born in), and [`drive`] answers its messages until it
//! is ready (the container's init) or has exec'd (`exec`'s process). See [`crate::protocol`]
//! for the order of the messages.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use husk_sys::clone::{clone3, Forked};

use crate::error::InitError;
use crate::namespaces::ParentSwitch;
use crate::plan::ChildPlan;
use crate::protocol::{self, ToChild, ToParent};
use crate::{child, describe, Result};

/// Clones the child that runs `plan`, born with the new namespaces `clone_flags` and, on
/// cgroup v2, in the cgroup `cgroup`. `switch` holds the parent in the namespaces the child
/// must be born in; the parent steps back out right after the clone. `what` names the child
/// in an error ("the init process", "exec").
pub(crate) fn spawn(
    plan: &ChildPlan,
    child_sync: OwnedFd,
    clone_flags: u64,
    cgroup: Option<&OwnedFd>,
    mut switch: ParentSwitch,
    what: &'static str,
) -> Result<i32> {
    // SAFETY: husk is single-threaded; the child only runs `child::main`, which makes raw
    // system calls on memory prepared above and never returns.
    let forked = unsafe { clone3(clone_flags, cgroup.map(|f| f.as_fd())) };
    let pid = match forked {
        Ok(Forked::Child) => child::main(plan),
        Ok(Forked::Parent { pid }) => pid,
        Err(e) => return Err(InitError::step(format!("clone3 {what}"))(e)),
    };
    switch.restore();
    drop(child_sync);
    Ok(pid)
}

/// When [`drive`] is done with the child.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// The init said [`ToParent::Ready`]: it is set up and waits to be started.
    Ready,
    /// End of file on the sync socket: the process exec'd (the child's end is close-on-exec).
    Exec,
}

/// The parent's side of the child's requests while [`drive`] runs.
pub(crate) trait Host {
    /// The child's (host) pid changed: the intermediate child is gone and `pid` is the init.
    fn new_pid(&mut self, _pid: i32) -> Result<()> {
        Ok(())
    }
    /// The child exited and was waited for.
    fn reaped(&mut self) {}
    /// A traced setup phase ended at `ns`.
    fn mark(&mut self, _phase: u16, _ns: u64) {}
    /// The seccomp notify listener of process `pid`, for the seccomp agent.
    fn seccomp_listener(&mut self, pid: i32, listener: OwnedFd) -> Result<()>;
    /// The mounts are ready: run prestart and createRuntime hooks (`create` only).
    fn run_hooks(&mut self) -> Result<Option<()>> {
        Ok(None)
    }
}

/// Answers the child's messages on `sync` until `until`. `pid` follows the child (the init
/// may be a grandchild). Failures come back described, without the container's id.
pub(crate) fn drive(
    sync: BorrowedFd<'_>,
    plan: &ChildPlan,
    pid: &mut i32,
    until: Until,
    host: &mut impl Host,
) -> Result<()> {
    loop {
        let msg = protocol::recv_with_fd::<ToParent>(sync).map_err(InitError::step("sync"))?;
        match msg {
            Some((ToParent::Ready, _)) if until == Until::Ready => return Ok(()),
            Some((ToParent::Ready, _)) => {}
            None if until == Until::Exec => return Ok(()),
            None => {
                let status = husk_sys::waitpid(*pid).unwrap_or(0);
                host.reaped();
                return Err(InitError::Exited(describe::wait_status(status)).into());
            }
            Some((ToParent::Mark { phase, ns }, _)) => host.mark(phase, ns),
            Some((ToParent::Pid(init), _)) => {
                // The intermediate child is done; its child is the container's init.
                let _ = husk_sys::waitpid(*pid);
                *pid = init;
                host.new_pid(init)?;
            }
            Some((ToParent::SeccompFd, Some(listener))) => host.seccomp_listener(*pid, listener)?,
            Some((ToParent::RunHooks, _)) if host.run_hooks()?.is_some() => {
                protocol::send(sync, ToChild::HooksDone).map_err(InitError::step("sync"))?;
            }
            Some((
                ToParent::Failed {
                    domain,
                    step,
                    index,
                    errno,
                },
                _,
            )) => {
                let what = describe::failure(plan, domain, step, index, errno);
                return Err(InitError::Reported(what).into());
            }
            Some((other, _)) => return Err(InitError::Unexpected(format!("{other:?}")).into()),
        }
    }
}
