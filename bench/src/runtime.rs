//! One runtime under test: how it is found, spawned, timed and cleaned up.
//!
//! Every runtime command goes through [`command`] and [`timed`]: `fork` + `exec` of the runtime
//! binary with stdin/stdout on /dev/null and stderr in a file, then `wait4` for its exit status
//! and `ru_maxrss`. The wall clock runs from just before `fork` to just after `wait4` returns.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use husk_sys::Errno;

use crate::BenchError;

pub struct Runtime {
    pub name: &'static str,
    pub bin: PathBuf,
    pub version: String,
    /// `--root` for this runtime: /run/husk-bench/<name>.
    root: PathBuf,
    /// Where the runtime's stderr goes (read only when a command fails).
    stderr: PathBuf,
    pub pid_file: PathBuf,
    /// crun only: the private mount namespace its processes enter before exec.
    mntns: Option<OwnedFd>,
    /// Peak `ru_maxrss` (KiB) per subcommand, over the one-at-a-time calls only: a forked
    /// child's `ru_maxrss` starts at the resident size of its copy of the driver (exec keeps
    /// the high-water mark of the mm it replaces), and in the batches the driver runs 10 or 50
    /// threads: there every husk and crun command measured 5.2-5.4 MiB in the cgroup v2 VM.
    rss: Mutex<BTreeMap<String, u64>>,
}

impl Runtime {
    pub fn new(
        name: &'static str,
        bin: PathBuf,
        work: &Path,
        mntns: Option<OwnedFd>,
    ) -> Result<Runtime, BenchError> {
        let out = Command::new(&bin)
            .arg("--version")
            .output()
            .map_err(|e| BenchError::io(format!("running {} --version", bin.display()), e))?;
        let version = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("unknown version")
            .to_string();
        Ok(Runtime {
            name,
            bin,
            version,
            root: Path::new("/run/husk-bench").join(name),
            stderr: work.join(format!("{name}.stderr")),
            pid_file: work.join(format!("{name}.pid")),
            mntns,
            rss: Mutex::default(),
        })
    }

    fn mntns(&self) -> Option<RawFd> {
        self.mntns.as_ref().map(AsRawFd::as_raw_fd)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = command(&self.bin, self.mntns());
        cmd.arg("--root").arg(&self.root).args(args);
        cmd
    }

    /// Runs `RUNTIME --root ROOT ARGS...`, returns its wall-clock time; fails unless it exits 0.
    pub fn call(&self, args: &[&str]) -> Result<Duration, BenchError> {
        self.call_in(args, &self.stderr, true)
    }

    /// [`Runtime::call`] from one of several threads at once: `slot` picks a stderr file of
    /// its own (removed again by [`Runtime::remove_slot_files`]).
    pub fn call_slot(&self, args: &[&str], slot: usize) -> Result<Duration, BenchError> {
        self.call_in(args, &self.slot_stderr(slot), false)
    }

    fn slot_stderr(&self, slot: usize) -> PathBuf {
        let mut name = self.stderr.clone().into_os_string();
        name.push(format!(".{slot}"));
        PathBuf::from(name)
    }

    pub fn remove_slot_files(&self, slots: usize) {
        for slot in 0..slots {
            let _ = fs::remove_file(self.slot_stderr(slot));
        }
    }

    /// The mount namespace this runtime's processes run in (None: the driver's, the host's).
    pub fn mntns_fd(&self) -> Option<RawFd> {
        self.mntns()
    }

    fn call_in(
        &self,
        args: &[&str],
        stderr_path: &Path,
        record_rss: bool,
    ) -> Result<Duration, BenchError> {
        let stderr = File::create(stderr_path)
            .map_err(|e| BenchError::io(format!("creating {}", stderr_path.display()), e))?;
        let mut cmd = self.command(args);
        cmd.stderr(stderr);
        let what = || format!("{} {}", self.name, args.join(" "));
        let run = timed(cmd).map_err(|e| BenchError::io(what(), e))?;
        let op = args.first().copied().unwrap_or_default().to_string();
        if record_rss {
            let mut rss = self.rss.lock().unwrap_or_else(|e| e.into_inner());
            let peak = rss.entry(op).or_default();
            *peak = (*peak).max(run.maxrss_kib);
        }
        if run.status == 0 {
            return Ok(run.elapsed);
        }
        let text = fs::read_to_string(stderr_path).unwrap_or_default();
        let detail = text.lines().rev().find(|l| !l.trim().is_empty());
        Err(BenchError::Failed {
            what: what(),
            status: describe_status(run.status),
            detail: detail.unwrap_or("(no stderr)").trim().to_string(),
        })
    }

    /// The pid and stderr files, for removal at the end.
    pub fn scratch_files(&self) -> [&Path; 2] {
        [&self.pid_file, &self.stderr]
    }

    /// Times `/bin/true` spawned exactly like this runtime (crun: with its setns).
    pub fn spawn_true(&self) -> Result<Duration, BenchError> {
        let cmd = command(Path::new("/bin/true"), self.mntns());
        let what = || format!("{}: spawning /bin/true", self.name);
        let run = timed(cmd).map_err(|e| BenchError::io(what(), e))?;
        match run.status {
            0 => Ok(run.elapsed),
            s => Err(BenchError::Setup(format!(
                "{}: {}",
                what(),
                describe_status(s)
            ))),
        }
    }

    /// Peak RSS in KiB over the given subcommands (0 when none ran).
    pub fn peak_rss(&self, ops: &[&str]) -> u64 {
        let rss = self.rss.lock().unwrap_or_else(|e| e.into_inner());
        ops.iter()
            .filter_map(|op| rss.get(*op))
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// `delete --force ID`, ignoring failure (the container may already be gone).
    pub fn force_delete(&self, id: &str) {
        let _ = self.call(&["delete", "--force", id]);
    }

    /// Deletes every container under this runtime's root and removes the root.
    pub fn cleanup(&self) {
        if !self.root.exists() {
            return;
        }
        let mut cmd = self.command(&["list", "--quiet"]);
        cmd.stderr(Stdio::null());
        if let Ok(out) = cmd.output() {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                self.force_delete(id);
            }
        }
        if let Err(e) = fs::remove_dir_all(&self.root) {
            crate::say(&format!("warning: removing {}: {e}", self.root.display()));
        }
    }
}

/// The one spawn path for every measured process. Each child runs a `pre_exec` hook, so std
/// always takes the same fork+exec route (never posix_spawn); for crun the hook joins its mount
/// namespace, for the others it does nothing.
pub fn command(bin: &Path, mntns: Option<RawFd>) -> Command {
    let mut cmd = Command::new(bin);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let hook = move || match mntns {
        Some(fd) => {
            // SAFETY: `fd` is the namespace descriptor the driver keeps open while any
            // runtime command runs; the forked child only borrows it for this call.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            husk_sys::setns(fd, libc::CLONE_NEWNS).map_err(Errno::to_io)
        }
        None => Ok(()),
    };
    // SAFETY: the hook runs between fork and exec and only makes the setns(2) system call
    // (Errno::to_io builds an io::Error from a code, without allocating).
    unsafe { cmd.pre_exec(hook) };
    cmd
}

pub struct Timed {
    pub elapsed: Duration,
    /// Raw wait status.
    pub status: i32,
    pub maxrss_kib: u64,
}

/// Spawns `cmd` and reaps it with `wait4`, timing fork to reap.
pub fn timed(mut cmd: Command) -> io::Result<Timed> {
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain integers, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: status and usage are valid for writes for the duration of the call.
        if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(Timed {
        elapsed: start.elapsed(),
        status,
        maxrss_kib: usage.ru_maxrss.max(0) as u64,
    })
}

fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

/// A private mount namespace in which /sys/fs/cgroup/unified is unmounted, for crun 1.8.1,
/// which refuses a hybrid cgroup host. None when there is no such mount (nothing to hide).
///
/// The driver unshares its own mount namespace, makes every mount private (so nothing
/// propagates to the host), unmounts the cgroup2 mount, keeps an fd to the namespace and
/// returns to the host's. The open fd keeps the namespace alive; nothing is bind-mounted, so
/// nothing outlives the driver. An empty tmpfs goes where the cgroup2 mount was: crun still
/// sees the `0::` line of /proc/self/cgroup and writes a directory and a cgroup.procs file
/// there for every container, which would otherwise pile up, hidden, in the host's
/// /sys/fs/cgroup tmpfs under the cgroup2 mount point. Must run while single-threaded.
pub fn crun_mount_ns() -> Result<Option<OwnedFd>, BenchError> {
    let open_ns = || {
        File::open("/proc/self/ns/mnt")
            .map(OwnedFd::from)
            .map_err(|e| BenchError::io("opening /proc/self/ns/mnt".into(), e))
    };
    let sys = |what: &str, e: Errno| BenchError::io(what.into(), e.to_io());
    let unified = c"/sys/fs/cgroup/unified";
    let host = open_ns()?;
    husk_sys::unshare(libc::CLONE_NEWNS).map_err(|e| sys("unshare(CLONE_NEWNS) for crun", e))?;
    let hide = || -> Result<Option<OwnedFd>, BenchError> {
        let (private, flags) = (
            libc::MS_REC | libc::MS_PRIVATE,
            libc::MS_NOSUID | libc::MS_NODEV,
        );
        husk_sys::mount::mount(None, c"/", None, private, None)
            .map_err(|e| sys("making / private in crun's mount namespace", e))?;
        match husk_sys::mount::umount2(unified, libc::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno(libc::EINVAL | libc::ENOENT)) => return Ok(None),
            Err(e) => return Err(sys("unmounting /sys/fs/cgroup/unified for crun", e)),
        }
        husk_sys::mount::mount(
            Some(c"tmpfs"),
            unified,
            Some(c"tmpfs"),
            flags,
            Some(c"size=64m"),
        )
        .map_err(|e| sys("mounting a tmpfs on /sys/fs/cgroup/unified for crun", e))?;
        open_ns().map(Some)
    };
    let ns = hide();
    husk_sys::setns(&host, libc::CLONE_NEWNS)
        .map_err(|e| sys("returning to the host mount namespace", e))?;
    ns
}

/// `name` in $PATH or the sbin directories (runc is /usr/sbin/runc on Debian).
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// (size of the binary, size of the binary plus every shared library `ldd` lists), in bytes.
pub fn binary_sizes(bin: &Path) -> (u64, u64) {
    let size = |p: &Path| fs::metadata(p).map_or(0, |m| m.len());
    let own = size(bin);
    let out = Command::new("ldd").arg(bin).output();
    let text = out.map(|o| o.stdout).unwrap_or_default();
    let mut libs: Vec<PathBuf> = String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| l.split_whitespace().find(|t| t.starts_with('/')))
        .filter_map(|p| fs::canonicalize(p).ok())
        .collect();
    libs.sort();
    libs.dedup();
    (own, own + libs.iter().map(|p| size(p)).sum::<u64>())
}
