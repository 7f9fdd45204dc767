//! The runtime's error type.

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Spec problems found while planning (beyond what husk-spec validates).
    #[error("config.json: {0}")]
    Spec(String),
    #[error(transparent)]
    Bundle(#[from] husk_spec::SpecError),
    #[error(transparent)]
    State(#[from] husk_state::StateError),
    #[error("container {id}: cgroup: {source}")]
    Cgroup {
        id: String,
        source: husk_cgroups::CgroupError,
    },
    #[error(transparent)]
    Rootfs(#[from] husk_rootfs::RootfsError),
    #[error(transparent)]
    Hardening(#[from] husk_hardening::HardeningError),
    #[error("{0}")]
    Namespace(String),
    #[error("{0}")]
    Hook(String),
    /// A failure inside the container's init during create, already described.
    #[error("{0}")]
    Init(String),
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl RuntimeError {
    /// Names the container a failure of its setup belongs to.
    pub(crate) fn in_container(self, id: &str) -> RuntimeError {
        match self {
            RuntimeError::Init(what) => RuntimeError::Init(format!("container {id}: {what}")),
            RuntimeError::Io { what, source } => RuntimeError::Io {
                what: format!("container {id}: {what}"),
                source,
            },
            other => other,
        }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
        let what = what.into();
        move |source| RuntimeError::Io { what, source }
    }
}

pub type Result<T> = std::result::Result<T, RuntimeError>;
