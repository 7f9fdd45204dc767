//! The runtime under test, driven only through runc's command line: `RUNTIME --root DIR
//! <command> ...`. Nothing here knows which runtime it is talking to.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bundle::Bundle;
use crate::checks::{Outcome, Problem};
use crate::interrupted;

/// A runtime command that has not finished after this long is killed and reported.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a container gets to reach a status (or a file to appear) before a check fails.
pub const SETTLE: Duration = Duration::from_secs(10);

pub struct Runtime {
    bin: PathBuf,
    root: PathBuf,
    /// Where the output of the runtime's own commands goes (files, never pipes: a container
    /// started with `create` inherits stdio, and a pipe would stay open as long as it lives).
    logs: PathBuf,
}

/// What one runtime command did.
pub struct Out {
    pub ok: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// One line for a failure message: the exit status and the last line of stderr.
    pub fn brief(&self) -> String {
        let last = self.stderr.lines().rev().find(|l| !l.trim().is_empty());
        match last {
            Some(line) => format!("{}: {}", self.status, line.trim()),
            None => self.status.clone(),
        }
    }
}

/// Where the container process's standard streams go, and where the runtime runs from.
#[derive(Default)]
pub struct Io {
    pub stdin: Option<PathBuf>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
}

impl Runtime {
    pub fn new(bin: PathBuf, root: PathBuf, logs: PathBuf) -> Runtime {
        Runtime { bin, root, logs }
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Runs `RUNTIME --root ROOT args...` with its output in files.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, &Io::default())
    }

    pub fn run_with(&self, args: &[&str], io: &Io) -> Out {
        let what = format!("{} {}", self.bin.display(), args.join(" "));
        let out_path = io
            .stdout
            .clone()
            .unwrap_or_else(|| self.logs.join("cmd.out"));
        let err_path = io
            .stderr
            .clone()
            .unwrap_or_else(|| self.logs.join("cmd.err"));
        let spawned = (|| {
            let stdin = match &io.stdin {
                Some(p) => Stdio::from(File::open(p)?),
                None => Stdio::null(),
            };
            let mut cmd = Command::new(&self.bin);
            cmd.arg("--root").arg(&self.root).args(args);
            cmd.stdin(stdin)
                .stdout(open_output(&out_path, io.stdout.is_none())?)
                .stderr(open_output(&err_path, io.stderr.is_none())?);
            if let Some(dir) = &io.cwd {
                cmd.current_dir(dir);
            }
            cmd.spawn()
        })();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                return Out {
                    ok: false,
                    status: format!("could not run {what}: {e}"),
                    stdout: String::new(),
                    stderr: String::new(),
                }
            }
        };
        let (ok, status) = wait_bounded(child, COMMAND_TIMEOUT);
        Out {
            ok,
            status: format!("`{}` {status}", args.join(" ")),
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    /// `state ID` parsed as JSON.
    pub fn state(&self, id: &str) -> Result<Value, Problem> {
        let out = self.run(&["state", id]);
        if !out.ok {
            return Err(Problem::Fail(format!("state {id} failed: {}", out.brief())));
        }
        serde_json::from_str(&out.stdout).map_err(|e| {
            Problem::Fail(format!(
                "state {id} is not JSON ({e}): {:?}",
                out.stdout.trim()
            ))
        })
    }
}

/// Truncates a file for output: a fresh file for the runtime's own command output, or the
/// container's stream file, which is appended to (create and start share it).
fn open_output(path: &Path, truncate: bool) -> std::io::Result<File> {
    fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(!truncate)
        .truncate(truncate)
        .open(path)
}

/// Waits for a child up to `limit`, killing it past that. Returns (success, description).
fn wait_bounded(mut child: Child, limit: Duration) -> (bool, String) {
    let start = Instant::now();
    let mut nap = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                let desc = match st.code() {
                    Some(c) => format!("exited {c}"),
                    None => format!("ended by {st}"),
                };
                return (st.success(), desc);
            }
            Ok(None) if start.elapsed() < limit => {
                sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return (false, format!("did not finish within {limit:?}; killed"));
            }
            Err(e) => return (false, format!("could not be waited for: {e}")),
        }
    }
}

/// Polls `cond` until it holds or `limit` passes (or the run is interrupted).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= limit || interrupted() {
            return false;
        }
        sleep(Duration::from_millis(10));
    }
}

/// Whether a process is alive (exists and is not a zombie).
pub fn alive(pid: u64) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => match stat.rfind(')') {
            Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => false,
        },
        Err(_) => false,
    }
}

/// One container of one check. Dropping it removes the container: `delete --force`, then
/// `delete` (for runtimes without --force), errors ignored: it may be gone already.
pub struct Container<'a> {
    pub rt: &'a Runtime,
    pub id: String,
    pub bundle: &'a Bundle,
}

impl<'a> Container<'a> {
    pub fn new(rt: &'a Runtime, id: String, bundle: &'a Bundle) -> Container<'a> {
        Container { rt, id, bundle }
    }

    /// `create --bundle DIR ID` with the container's stdio in the bundle's stream files.
    pub fn try_create(&self) -> Out {
        if let Err(e) = self.bundle.save() {
            return Out {
                ok: false,
                status: format!("writing {}/config.json: {e}", self.bundle.dir.display()),
                stdout: String::new(),
                stderr: String::new(),
            };
        }
        let dir = self.bundle.dir.to_string_lossy().into_owned();
        self.rt.run_with(
            &["create", "--bundle", &dir, &self.id],
            &self.bundle.stdio(),
        )
    }

    pub fn create(&self) -> Outcome {
        let out = self.try_create();
        if !out.ok {
            return Err(Problem::Fail(format!("create failed: {}", out.brief())));
        }
        Ok(())
    }

    pub fn start(&self) -> Outcome {
        let out = self.rt.run(&["start", &self.id]);
        if !out.ok {
            return Err(Problem::Fail(format!("start failed: {}", out.brief())));
        }
        Ok(())
    }

    pub fn state(&self) -> Result<Value, Problem> {
        self.rt.state(&self.id)
    }

    pub fn status(&self) -> Result<String, Problem> {
        let st = self.state()?;
        Ok(st["status"].as_str().unwrap_or("<none>").to_string())
    }

    pub fn pid(&self) -> Result<u64, Problem> {
        let st = self.state()?;
        match st["pid"].as_u64() {
            Some(p) if p > 0 => Ok(p),
            _ => Err(Problem::Fail(format!("state has no pid > 0: {st}"))),
        }
    }

    /// Waits for `status`; fails naming the last status seen.
    pub fn wait_status(&self, want: &str) -> Outcome {
        let mut last = String::new();
        let reached = wait_until(SETTLE, || {
            last = match self.status() {
                Ok(s) => s,
                Err(Problem::Fail(e) | Problem::Skip(e)) => e,
            };
            last == want
        });
        if reached {
            Ok(())
        } else {
            Err(Problem::Fail(format!(
                "status never became {want:?} (last: {last})"
            )))
        }
    }

    /// create, start, and wait for the process to exit.
    pub fn run_to_exit(&self) -> Outcome {
        self.create()?;
        self.start()?;
        self.wait_status("stopped")
    }

    pub fn kill(&self, signal: Option<&str>) -> Out {
        match signal {
            Some(s) => self.rt.run(&["kill", &self.id, s]),
            None => self.rt.run(&["kill", &self.id]),
        }
    }

    pub fn delete(&self, force: bool) -> Out {
        if force {
            self.rt.run(&["delete", "--force", &self.id])
        } else {
            self.rt.run(&["delete", &self.id])
        }
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        self.rt.run(&["delete", "--force", &self.id]);
        self.rt.run(&["delete", &self.id]);
    }
}
