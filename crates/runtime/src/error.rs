//! The runtime's error type.
//!
//! Context is added once per layer: a failure is made where it happens, naming its step and
//! path, and the container it belongs to joins it once, at the [`Runtime`](crate::Runtime)
//! boundary ([`RuntimeError::in_container`]), not at each call site.

use std::path::PathBuf;

use husk_state::Status;
use husk_sys::Errno;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Spec problems found while planning (beyond what husk-spec validates).
    #[error("config.json: {0}")]
    Spec(String),
    #[error(transparent)]
    Bundle(#[from] husk_spec::SpecError),
    #[error(transparent)]
    State(#[from] husk_state::StateError),
    /// The command does not apply in the container's current status (runc's wording).
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error("cgroup: {0}")]
    Cgroup(#[from] husk_cgroups::CgroupError),
    #[error(transparent)]
    Rootfs(#[from] husk_rootfs::RootfsError),
    #[error(transparent)]
    Hardening(#[from] husk_hardening::HardeningError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error("{0}")]
    Usage(String),
    /// checkpoint/restore: CRIU failed or cannot work here.
    #[error(transparent)]
    Criu(#[from] husk_criu::CriuError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A failure of one container, named once.
    #[error("container {id}: {source}")]
    Container {
        id: String,
        source: Box<RuntimeError>,
    },
}

impl RuntimeError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
        let what = what.into();
        move |source| RuntimeError::Io { what, source }
    }

    /// Names the container a failure belongs to, once: failures of its setup, processes,
    /// cgroup, namespaces and hooks get the "container ID: " prefix; runc's status messages
    /// get the id where runc's text has it; usage, spec and state errors stay as they are
    /// (clients match them).
    pub(crate) fn in_container(self, id: &str) -> RuntimeError {
        match self {
            RuntimeError::Status(e) => RuntimeError::Status(StatusError { id: id.into(), ..e }),
            e @ (RuntimeError::Cgroup(_)
            | RuntimeError::Namespace(_)
            | RuntimeError::Hook(_)
            | RuntimeError::Init(_)
            | RuntimeError::Criu(_)
            | RuntimeError::Io { .. }) => RuntimeError::Container {
                id: id.into(),
                source: Box::new(e),
            },
            other => other,
        }
    }
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

/// What a command asked of a container, for [`StatusError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Start,
    Exec,
    Kill,
    Delete,
    Pause,
    Resume,
    Update,
    Stats,
}

/// A command that does not apply in the container's current status. Its text is runc's,
/// which clients (containerd, Podman, CRI-O) match on: the one place it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    pub op: Operation,
    pub status: Status,
    /// Set at the `Runtime` boundary; runc's delete message names the container.
    id: String,
}

impl StatusError {
    pub(crate) fn new(op: Operation, status: Status) -> StatusError {
        StatusError {
            op,
            status,
            id: String::new(),
        }
    }
}

impl std::error::Error for StatusError {}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (op, status) = (self.op, self.status);
        match (op, status) {
            (Operation::Start, Status::Stopped) => {
                f.write_str("cannot start a container that has stopped")
            }
            (Operation::Start, Status::Running) => {
                f.write_str("cannot start an already running container")
            }
            (Operation::Start, _) => write!(f, "cannot start a container in the {status} state"),
            (Operation::Exec, Status::Paused) => {
                f.write_str("cannot exec in a paused container (use --ignore-paused to override)")
            }
            (Operation::Exec, _) => f.write_str("cannot exec in a stopped container"),
            (Operation::Delete, _) => write!(
                f,
                "cannot delete container {} that is not stopped: {status}",
                self.id
            ),
            // husk's own text: runc answers "container not running" here, which misleads.
            (Operation::Pause, Status::Paused) => {
                write!(f, "container {} is already paused", self.id)
            }
            (Operation::Resume, _) => f.write_str("container not paused"),
            (Operation::Kill | Operation::Pause | Operation::Update | Operation::Stats, _) => {
                f.write_str("container not running")
            }
        }
    }
}

/// Joining, making or leaving a namespace failed.
#[derive(Debug, thiserror::Error)]
#[error("{step}{}: {source}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
pub struct NamespaceError {
    /// What husk was doing ("open net namespace", "join pid namespace").
    pub step: String,
    pub path: Option<PathBuf>,
    pub source: Cause,
}

/// A hook run by husk (prestart, createRuntime, poststart) failed. runc's wording ("error
/// running <kind> hook #<n>: ..."), which clients match, then the hook's path.
#[derive(Debug, thiserror::Error)]
#[error("error running {kind} hook #{index}: {reason} (hook {})", path.display())]
pub struct HookError {
    pub kind: String,
    pub index: usize,
    pub path: PathBuf,
    pub reason: String,
}

/// The container's init (or an exec'd process) failed, or talking to it did.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A step on the parent's side of the protocol, with the system call's error.
    #[error("{step}: {errno}")]
    Step { step: String, errno: Errno },
    /// A failure the child reported, already described (step and object).
    #[error("{0}")]
    Reported(String),
    #[error("init exited during setup ({0})")]
    Exited(String),
    #[error("unexpected message {0} from init")]
    Unexpected(String),
    #[error("init process {0} vanished")]
    Vanished(i32),
    #[error("init {0} did not die within 10s of SIGKILL")]
    Unkillable(i32),
    /// `exec`'s process did not start.
    #[error("exec: {0}")]
    Exec(Box<RuntimeError>),
}

impl InitError {
    pub(crate) fn step(step: impl Into<String>) -> impl FnOnce(Errno) -> RuntimeError {
        let step = step.into();
        move |errno| InitError::Step { step, errno }.into()
    }
}

/// The underlying error of a [`NamespaceError`]: a file operation or a system call.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Sys(#[from] Errno),
    /// The process whose namespace was to be joined exited (a kill raced with exec).
    #[error("the container stopped (its init process exited)")]
    Stopped,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(op: Operation, status: Status) -> String {
        RuntimeError::from(StatusError::new(op, status))
            .in_container("c1")
            .to_string()
    }

    /// The texts clients parse, byte for byte (runc's `libcontainer/error.go`, `start.go`,
    /// `exec.go`, `delete.go`), and husk's own where runc has none.
    #[test]
    fn status_messages_are_runcs() {
        use Operation::*;
        use Status::*;
        let cases = [
            (Start, Stopped, "cannot start a container that has stopped"),
            (Start, Running, "cannot start an already running container"),
            (
                Start,
                Paused,
                "cannot start a container in the paused state",
            ),
            (Exec, Stopped, "cannot exec in a stopped container"),
            (
                Exec,
                Paused,
                "cannot exec in a paused container (use --ignore-paused to override)",
            ),
            (Kill, Stopped, "container not running"),
            (
                Delete,
                Running,
                "cannot delete container c1 that is not stopped: running",
            ),
            (
                Delete,
                Paused,
                "cannot delete container c1 that is not stopped: paused",
            ),
            (Pause, Stopped, "container not running"),
            (Pause, Paused, "container c1 is already paused"),
            (Resume, Running, "container not paused"),
            (Resume, Stopped, "container not paused"),
            (Update, Stopped, "container not running"),
            (Stats, Stopped, "container not running"),
        ];
        for (op, st, want) in cases {
            assert_eq!(status(op, st), want, "{op:?} in {st}");
        }
    }

    #[test]
    fn container_id_is_added_once() {
        let e = RuntimeError::from(InitError::Vanished(7)).in_container("c1");
        assert_eq!(e.to_string(), "container c1: init process 7 vanished");
        assert_eq!(
            e.in_container("c1").to_string(),
            "container c1: init process 7 vanished"
        );
        let usage = RuntimeError::Usage("no command".into()).in_container("c1");
        assert_eq!(usage.to_string(), "no command");
        let ns = RuntimeError::from(NamespaceError {
            step: "open net namespace".into(),
            path: Some("/x".into()),
            source: Cause::Sys(Errno(libc::ENOENT)),
        })
        .in_container("c1");
        assert_eq!(
            ns.to_string(),
            "container c1: open net namespace /x: no such file or directory"
        );
        let hook = RuntimeError::from(HookError {
            kind: "createRuntime".into(),
            index: 0,
            path: "/bin/nope".into(),
            reason: "exit status 1".into(),
        })
        .in_container("c1");
        assert_eq!(
            hook.to_string(),
            "container c1: error running createRuntime hook #0: exit status 1 (hook /bin/nope)"
        );
    }
}
