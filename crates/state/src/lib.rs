//! The state store: one directory per container under the runtime root (`--root`), holding
//! `state.json` (written atomically) and guarded by a per-container `flock`.
//!
//! The store knows nothing about what a container *is*; the lifecycle crate decides what it
//! persists (any `Serialize` record). This crate owns ids, directories, locking, atomic writes
//! and the OCI `state` output format.

#![forbid(unsafe_code)]

mod id;
mod oci;
mod store;
mod time;

pub use id::validate_id;
pub use oci::{OciState, Status};
pub use store::{ContainerDir, Lock, Store};
pub use time::{rfc3339_now, rfc3339_seconds};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("container does not exist")]
    NotFound { id: String },
    #[error("container with id {id:?} already exists")]
    AlreadyExists { id: String },
    #[error("state root {path}: {source}")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("container {id}: {op} {path}: {source}")]
    Io {
        id: String,
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("container {id}: damaged state file {path}: {reason} (`delete --force {id}` removes the container)")]
    Corrupt {
        id: String,
        path: PathBuf,
        reason: String,
    },
    #[error("container {id} is busy: another husk command is working on it")]
    Busy { id: String },
}

pub type Result<T> = std::result::Result<T, StateError>;
