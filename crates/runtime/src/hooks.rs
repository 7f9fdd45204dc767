//! Hooks run by husk itself, in the runtime's namespaces: prestart, createRuntime, poststart,
//! poststop. (createContainer and startContainer run inside the container; see `child`.)

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use oci_spec::runtime::Hook;

use crate::error::HookError;
use crate::RuntimeError;

/// Runs `hooks` in order with `state` on stdin; the first failure stops and is returned.
pub(crate) fn run_all(
    kind: &str,
    hooks: Option<&Vec<Hook>>,
    state: &[u8],
) -> Result<(), RuntimeError> {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        run_one(h, state).map_err(|reason| HookError {
            kind: kind.into(),
            index: i,
            path: h.path().clone(),
            reason,
        })?;
    }
    Ok(())
}

/// Like [`run_all`] but a failure is only a warning (poststart, poststop).
pub(crate) fn run_all_warn(kind: &str, hooks: Option<&Vec<Hook>>, state: &[u8]) {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        if let Err(e) = run_one(h, state) {
            tracing::warn!("{kind} hook #{i} ({}): {e}", h.path().display());
        }
    }
}

fn run_one(h: &Hook, state: &[u8]) -> Result<(), String> {
    let mut cmd = Command::new(h.path());
    if let Some(args) = h.args().as_ref().filter(|a| !a.is_empty()) {
        cmd.arg0(&args[0]).args(&args[1..]);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin.
        let _ = stdin.write_all(state);
    }
    let timeout_ms = h.timeout().map_or(-1, |t| t.saturating_mul(1000) as i32);
    let pidfd = husk_sys::proc::pidfd_open(child.id() as i32).map_err(|e| e.to_string())?;
    if !husk_sys::proc::pidfd_wait_exit(&pidfd, timeout_ms).map_err(|e| e.to_string())? {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        return Ok(());
    }
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    Err(format!(
        "{status}, stdout: {}, stderr: {}",
        out.trim(),
        err.trim()
    ))
}
