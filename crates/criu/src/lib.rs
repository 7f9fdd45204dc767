//! husk's CRIU client: `criu swrk` driven over a `SOCK_SEQPACKET` socketpair with CRIU's
//! protobuf RPC, the way runc talks to CRIU. The runtime builds [`Opts`] and handles the
//! notifications; this crate owns the binary, the host check, the process and the messages.
//!
//! The messages are encoded by hand ([`wire`]): CRIU's RPC needs ~40 scalar, string and nested
//! fields, which a hundred lines cover without a protobuf runtime in the static binary.

#![forbid(unsafe_code)]

mod rpc;
mod wire;

pub use rpc::{CgMode, Features, Opts, ReqType, Resp};

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rpc::Req;

#[derive(Debug, thiserror::Error)]
pub enum CriuError {
    #[error("criu binary {bin:?} not found: install CRIU (Debian: apt-get install criu) or pass --criu PATH")]
    NotFound { bin: String },
    #[error("CRIU cannot work on this host: `{bin} check` failed: {detail}")]
    Unusable { bin: String, detail: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("criu {op:?} failed: {msg}")]
    Failed { op: ReqType, msg: String },
    #[error("criu swrk: {0}")]
    Protocol(String),
}

pub type Result<T> = std::result::Result<T, CriuError>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CriuError {
    let what = what.into();
    move |source| CriuError::Io { what, source }
}

/// The CRIU binary (`--criu`, default `criu` from `$PATH`).
pub struct Criu {
    bin: String,
}

impl Criu {
    pub fn new(bin: Option<&str>) -> Criu {
        Criu {
            bin: bin.unwrap_or("criu").to_string(),
        }
    }

    fn resolve(&self) -> Result<PathBuf> {
        let found = if self.bin.contains('/') {
            Some(PathBuf::from(&self.bin)).filter(|p| p.is_file())
        } else {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(&self.bin))
                    .find(|p| p.is_file())
            })
        };
        found.ok_or_else(|| CriuError::NotFound {
            bin: self.bin.clone(),
        })
    }

    /// The binary exists and `criu check` passes on this kernel; else one error that names
    /// what is missing (CRIU's own `Error` lines).
    pub fn check(&self) -> Result<()> {
        let bin = self.resolve()?;
        let out = Command::new(&bin)
            .arg("check")
            .stdin(Stdio::null())
            .output()
            .map_err(io(format!("run {} check", bin.display())))?;
        if out.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        Err(CriuError::Unusable {
            bin: bin.display().to_string(),
            detail: error_lines(&text).unwrap_or_else(|| format!("exit {}", out.status)),
        })
    }

    /// Starts `criu swrk`; `pass_fds` reach it under the same numbers (images and work
    /// directories, inherited descriptors). With `stdio`, it shares husk's stdio (restore:
    /// the restored process may inherit it), else /dev/null.
    pub fn start(&self, pass_fds: &[BorrowedFd<'_>], stdio: bool) -> Result<Session> {
        let bin = self.resolve()?;
        let (ours, theirs) = husk_sys::socketpair(libc::SOCK_SEQPACKET)
            .map_err(|e| io("criu socketpair")(e.to_io()))?;
        let inherit: Vec<BorrowedFd<'_>> =
            pass_fds.iter().copied().chain([theirs.as_fd()]).collect();
        for fd in &inherit {
            husk_sys::set_cloexec(*fd, false).map_err(|e| io("pass fd to criu")(e.to_io()))?;
        }
        let mut cmd = Command::new(&bin);
        cmd.arg("swrk").arg(theirs.as_raw_fd().to_string());
        if !stdio {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        let spawned = cmd.spawn();
        for fd in &inherit {
            let _ = husk_sys::set_cloexec(*fd, true);
        }
        let child = spawned.map_err(io(format!("start {} swrk", bin.display())))?;
        drop(theirs);
        Ok(Session {
            child: Some(child),
            sock: Some(ours),
        })
    }

    /// CRIU's version as major*10000 + minor*100 + sublevel (3.17.1 = 31701).
    pub fn version(&self) -> Result<u32> {
        let mut s = self.start(&[], false)?;
        let resp = s.exchange(&Req::Version, ReqType::Version, &mut |_, _, _| Ok(()))?;
        s.finish();
        resp.version
            .ok_or_else(|| CriuError::Protocol("no version in the answer".into()))
    }

    /// Which of `want` CRIU and the kernel support.
    pub fn features(&self, want: Features) -> Result<Features> {
        let mut s = self.start(&[], false)?;
        let resp = s.exchange(
            &Req::FeatureCheck(want),
            ReqType::FeatureCheck,
            &mut |_, _, _| Ok(()),
        )?;
        s.finish();
        Ok(resp.features.unwrap_or_default())
    }
}

/// A notification from CRIU: script name (`post-restore`, `orphan-pts-master`, ...), pid, and
/// the descriptor that came with it. An `Err` aborts the operation.
pub type Notify<'a> = dyn FnMut(&str, i32, Option<OwnedFd>) -> std::result::Result<(), String> + 'a;

/// A running `criu swrk`.
pub struct Session {
    child: Option<Child>,
    /// Closed by `finish` (criu then sees end of file and exits).
    sock: Option<OwnedFd>,
}

impl Session {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Sends a dump, pre-dump or restore request and answers notifications until the final
    /// response, which is returned on success.
    pub fn run(&mut self, kind: ReqType, opts: &Opts, notify: &mut Notify<'_>) -> Result<Resp> {
        self.exchange(&Req::Run(kind, opts), kind, notify)
    }

    fn exchange(&mut self, req: &Req<'_>, kind: ReqType, notify: &mut Notify<'_>) -> Result<Resp> {
        let sock = self
            .sock
            .as_ref()
            .ok_or_else(|| CriuError::Protocol("connection already closed".into()))?;
        let fd = sock.as_fd();
        husk_sys::send(fd, &req.encode()).map_err(|e| io("send request to criu")(e.to_io()))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let (n, passed) = husk_sys::recv_with_fd(fd, &mut buf)
                .map_err(|e| io("read criu's answer")(e.to_io()))?;
            if n == 0 {
                let status = self.finish();
                return Err(CriuError::Failed {
                    op: kind,
                    msg: format!("criu exited without an answer ({status})"),
                });
            }
            let resp = Resp::decode(&buf[..n]).map_err(|e| CriuError::Protocol(e.into()))?;
            if !resp.success {
                let msg = match (&resp.cr_errmsg, resp.cr_errno) {
                    (Some(m), _) if !m.trim().is_empty() => m.trim().to_string(),
                    (_, Some(e)) if e != 0 => std::io::Error::from_raw_os_error(e).to_string(),
                    _ => "unsuccessful".into(),
                };
                return Err(CriuError::Failed { op: kind, msg });
            }
            if resp.kind == Some(ReqType::Notify) {
                let (script, pid) = resp.notify.clone().unwrap_or_default();
                tracing::debug!("criu notify: {script} (pid {pid})");
                notify(&script, pid, passed).map_err(|msg| CriuError::Failed { op: kind, msg })?;
                husk_sys::send(fd, &Req::NotifyDone.encode())
                    .map_err(|e| io("answer criu's notification")(e.to_io()))?;
                continue;
            }
            if resp.kind != Some(kind) {
                return Err(CriuError::Protocol(format!(
                    "unexpected answer {:?} to {kind:?}",
                    resp.kind
                )));
            }
            return Ok(resp);
        }
    }

    /// Closes the connection and waits for criu to exit; returns how it ended.
    pub fn finish(&mut self) -> String {
        self.sock = None;
        match self.child.take().map(|mut c| c.wait()) {
            Some(Ok(st)) => st.to_string(),
            Some(Err(e)) => format!("wait: {e}"),
            None => "already waited for".into(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.sock = None;
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// CRIU's `Error (file:line): message` lines, without the location, joined.
fn error_lines(text: &str) -> Option<String> {
    let msgs: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Error"))
        .map(|l| l.split_once("): ").map_or(l, |(_, m)| m).trim())
        .take(4)
        .collect();
    (!msgs.is_empty()).then(|| msgs.join("; "))
}

/// The first `Error` lines of a CRIU log file (dump.log, restore.log), for error messages.
pub fn log_errors(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Error (") || l.contains("Error:"))
        .take(3)
        .map(str::trim)
        .collect();
    (!lines.is_empty()).then(|| lines.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_output_is_summarised() {
        let text = "Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n\
                    Warn: x\nError (criu/crtools.c:260): Could not initialize kernel features detection.\n";
        assert_eq!(
            error_lines(text).unwrap(),
            "vdso: Unexpected rt vDSO area bounds; Could not initialize kernel features detection."
        );
    }

    #[test]
    fn missing_binary_is_named() {
        let e = Criu::new(Some("/nonexistent/criu")).check().unwrap_err();
        assert!(e.to_string().contains("/nonexistent/criu"), "{e}");
    }
}
