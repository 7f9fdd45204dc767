//! The crate's error type.

use std::path::PathBuf;

use husk_sys::Errno;

/// Everything that can go wrong managing a container's cgroups. Each message is one line
/// naming the file, path or setting that failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The host's cgroup mounts could not be understood.
    #[error("cgroup layout: {0}")]
    Layout(String),
    /// The requested settings are invalid or contradict each other.
    #[error("invalid cgroup configuration: {0}")]
    Config(String),
    /// The systemd driver (`--systemd-cgroup`) failed: no bus, unit exists, job failed,
    /// property refused...
    #[error("systemd cgroup driver: {0}")]
    Systemd(String),
    /// The host cannot provide a requested setting (missing file or controller).
    #[error("{0}")]
    Unsupported(String),
    /// An `exec --cgroup` path that is not an existing sub-cgroup of the container's, in
    /// runc's words.
    #[error("{0}")]
    SubCgroup(String),
    /// The kernel refused a value or the cgroup could not be changed as asked.
    #[error("{0}")]
    Rejected(String),
    /// Writing a cgroup file failed.
    #[error("cannot write {value:?} to {path}: {errno}")]
    Write {
        path: PathBuf,
        value: String,
        errno: Errno,
    },
    /// Any other file system operation on a cgroup path failed.
    #[error("cannot {op} {path}: {errno}")]
    Io {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    /// A cgroup file had unexpected contents.
    #[error("cannot parse {path}: {what}")]
    Parse { path: PathBuf, what: String },
    /// A step of installing the cgroup v2 device filter failed.
    #[error("cgroup v2 device filter: {step}: {errno}")]
    Bpf { step: &'static str, errno: Errno },
}

pub(crate) fn errno_of(e: &std::io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(libc::EIO))
}

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
    e: &std::io::Error,
) -> CgroupError {
    CgroupError::Io {
        op,
        path: path.into(),
        errno: errno_of(e),
    }
}
