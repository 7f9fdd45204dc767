//! Handing a seccomp notify listener to the agent at `linux.seccomp.listenerPath`: one message
//! with the container process state (runtime-spec "ContainerProcessState") and the listener
//! attached as SCM_RIGHTS.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use oci_spec::runtime::Spec;
use serde::Serialize;

use husk_state::OciState;

use husk_sys::Errno;

use crate::error::InitError;
use crate::{Result, RuntimeError};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerProcessState<'a> {
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    metadata: &'a str,
    state: &'a OciState,
}

/// Checks a notify profile has somewhere to send its listener (before anything is created).
pub(crate) fn check(spec: &Spec, notify: bool) -> Result<()> {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_path().as_ref());
    if notify && path.is_none() {
        return Err(RuntimeError::Spec(
            "linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath".into(),
        ));
    }
    Ok(())
}

/// Sends `listener` for process `pid` of the container described by `state`.
pub(crate) fn hand_over(spec: &Spec, pid: i32, state: &OciState, listener: OwnedFd) -> Result<()> {
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let Some(path) = seccomp.and_then(|s| s.listener_path().as_ref()) else {
        return Err(RuntimeError::Spec(
            "linux.seccomp.listenerPath: missing".into(),
        ));
    };
    let msg = ContainerProcessState {
        oci_version: spec.version(),
        fds: ["seccompFd"],
        pid,
        metadata: seccomp
            .and_then(|s| s.listener_metadata().as_deref())
            .unwrap_or(""),
        state,
    };
    let json = serde_json::to_vec(&msg).unwrap_or_default();
    // runc's words, which its users match ("failed to connect with seccomp agent").
    let sock = UnixStream::connect(path).map_err(|e| {
        InitError::step(format!(
            "failed to connect with seccomp agent specified in the seccomp profile: {}",
            path.display()
        ))(Errno(e.raw_os_error().unwrap_or(libc::EIO)))
    })?;
    husk_sys::send_with_fd(&sock, &json, &listener).map_err(InitError::step(format!(
        "cannot send seccomp fd to {}",
        path.display()
    )))
}
