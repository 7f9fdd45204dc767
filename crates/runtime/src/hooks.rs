//! Hooks run by husk itself, in the runtime's namespaces: prestart, createRuntime, poststart,
//! poststop. (createContainer and startContainer run inside the container; see `child`.)

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
            tracing::warn!(
                "error running {kind} hook #{i}: {e} (hook {})",
                h.path().display()
            );
        }
    }
}

/// How much of a hook's stdout and of its stderr is kept for the error message.
const TAIL: usize = 4096;

/// The last [`TAIL`] bytes written to a stream.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.0.extend_from_slice(data);
        if self.0.len() > 2 * TAIL {
            let cut = self.0.len() - TAIL;
            self.0.drain(..cut);
        }
    }

    fn text(&self) -> String {
        let start = self.0.len().saturating_sub(TAIL);
        let text = String::from_utf8_lossy(&self.0[start..]);
        let text = text.trim();
        let mut one_line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if start > 0 {
            one_line.insert_str(0, "...");
        }
        one_line
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
    husk_sys::proc::die_with_parent(&mut cmd, libc::SIGKILL);
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let pidfd = husk_sys::proc::pidfd_open(child.id() as i32).map_err(|e| e.to_string())?;
    let timeout = h.timeout().map(|t| Duration::from_secs(t.max(0) as u64));
    let (mut out, mut err) = (Tail::default(), Tail::default());
    // The hook's output is read while it runs: a hook writing more than a pipe holds
    // (64 KiB) would otherwise block forever, and husk with it.
    let exited = pump(&mut child, &pidfd, state, timeout, &mut out, &mut err)?;
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        return Ok(());
    }
    Err(format!(
        "{}, stdout: {}, stderr: {}",
        crate::describe::wait_status(std::os::unix::process::ExitStatusExt::into_raw(status)),
        out.text(),
        err.text()
    ))
}

/// Feeds `state` to the hook's stdin and collects its output until it exits (true) or
/// `timeout` passes (false). Output still buffered in the pipes at exit is read too, but
/// without waiting for end-of-file (a background child of the hook may hold the pipes).
fn pump(
    child: &mut Child,
    pidfd: &OwnedFd,
    state: &[u8],
    timeout: Option<Duration>,
    out: &mut Tail,
    err: &mut Tail,
) -> Result<bool, String> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    for fd in [stdin.as_ref().map(|s| s.as_fd())]
        .into_iter()
        .chain([stdout.as_ref().map(|s| s.as_fd())])
        .chain([stderr.as_ref().map(|s| s.as_fd())])
        .flatten()
    {
        husk_sys::set_nonblocking(fd).map_err(|e| e.to_string())?;
    }
    let mut written = 0;
    let mut open = [stdout.is_some(), stderr.is_some()];
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let wait_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                left.as_millis().min(i32::MAX as u128) as i32
            }
        };
        let none = -1;
        let mut fds = [
            pollfd(pidfd.as_raw_fd()),
            pollfd(
                stdout
                    .as_ref()
                    .filter(|_| open[0])
                    .map_or(none, |s| s.as_raw_fd()),
            ),
            pollfd(
                stderr
                    .as_ref()
                    .filter(|_| open[1])
                    .map_or(none, |s| s.as_raw_fd()),
            ),
            libc::pollfd {
                fd: stdin.as_ref().map_or(none, |s| s.as_raw_fd()),
                events: libc::POLLOUT,
                revents: 0,
            },
        ];
        husk_sys::poll(&mut fds, wait_ms).map_err(|e| e.to_string())?;
        let exited = fds[0].revents != 0;
        for (i, tail) in [(0usize, &mut *out), (1, &mut *err)] {
            if fds[i + 1].fd >= 0 && (fds[i + 1].revents != 0 || exited) {
                let r: Option<&mut dyn Read> = match i {
                    0 => stdout.as_mut().map(|s| s as &mut dyn Read),
                    _ => stderr.as_mut().map(|s| s as &mut dyn Read),
                };
                if let Some(r) = r {
                    if !drain(r, &mut buf, tail) {
                        open[i] = false;
                    }
                }
            }
        }
        if fds[3].revents != 0 {
            if let Some(s) = stdin.as_mut() {
                // A hook may exit without reading its stdin: a write error ends feeding it.
                match s.write(&state[written..]) {
                    Ok(n) if written + n < state.len() => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    _ => stdin = None,
                }
            }
        }
        if exited {
            return Ok(true);
        }
    }
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Reads what the (non-blocking) pipe has now into `tail`; false at end-of-file or on an error.
fn drain(r: &mut dyn Read, buf: &mut [u8], tail: &mut Tail) -> bool {
    loop {
        match r.read(buf) {
            Ok(0) => return false,
            Ok(n) => tail.push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_one_line() {
        let mut t = Tail::default();
        for _ in 0..100 {
            t.push(&[b'a'; 1000]);
        }
        t.push(b"end\nof it\n");
        let text = t.text();
        assert!(
            text.starts_with("...") && text.ends_with("end of it"),
            "{text}"
        );
        assert!(text.len() <= TAIL + 3);
        assert!(!text.contains('\n'));
    }
}
