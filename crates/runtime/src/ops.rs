//! `start`, `state`, `list`, `kill`, `delete`.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use husk_state::{ContainerDir, Lock, OciState, StateError, Status};

use crate::error::{InitError, Operation, StatusError};
use crate::record::{Record, START_SOCKET};
use crate::{hooks, Result, Runtime, RuntimeError};

/// Parses `KILL`, `SIGKILL`, `kill` or `9` into a signal number.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        // 0 is a valid signal: it checks that the container is alive (kill(2)).
        return (0..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    const NAMES: [(&str, i32); 31] = [
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("ILL", libc::SIGILL),
        ("TRAP", libc::SIGTRAP),
        ("ABRT", libc::SIGABRT),
        ("IOT", libc::SIGIOT),
        ("BUS", libc::SIGBUS),
        ("FPE", libc::SIGFPE),
        ("KILL", libc::SIGKILL),
        ("USR1", libc::SIGUSR1),
        ("SEGV", libc::SIGSEGV),
        ("USR2", libc::SIGUSR2),
        ("PIPE", libc::SIGPIPE),
        ("ALRM", libc::SIGALRM),
        ("TERM", libc::SIGTERM),
        ("STKFLT", libc::SIGSTKFLT),
        ("CHLD", libc::SIGCHLD),
        ("CONT", libc::SIGCONT),
        ("STOP", libc::SIGSTOP),
        ("TSTP", libc::SIGTSTP),
        ("TTIN", libc::SIGTTIN),
        ("TTOU", libc::SIGTTOU),
        ("URG", libc::SIGURG),
        ("XCPU", libc::SIGXCPU),
        ("XFSZ", libc::SIGXFSZ),
        ("VTALRM", libc::SIGVTALRM),
        ("PROF", libc::SIGPROF),
        ("WINCH", libc::SIGWINCH),
        ("IO", libc::SIGIO),
        ("SYS", libc::SIGSYS),
    ];
    if let Some(&(_, n)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Some(n);
    }
    // RTMIN, RTMIN+3, RTMAX-2
    let rt = |base: i32, rest: &str| -> Option<i32> {
        let v = if rest.is_empty() {
            base
        } else {
            base + rest.parse::<i32>().ok()?
        };
        (libc::SIGRTMIN()..=libc::SIGRTMAX())
            .contains(&v)
            .then_some(v)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(libc::SIGRTMIN(), rest);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(libc::SIGRTMAX(), rest);
    }
    None
}

impl Record {
    /// The live status, derived from the init process, the start socket and the freezer.
    pub(crate) fn status(&self, dir: &ContainerDir) -> Status {
        if !self.alive() {
            return Status::Stopped;
        }
        if dir.file(START_SOCKET).exists() {
            return Status::Created;
        }
        if self
            .cgroup
            .as_ref()
            .is_some_and(|c| c.is_frozen().unwrap_or(false))
        {
            return Status::Paused;
        }
        Status::Running
    }
}

impl Runtime {
    pub(crate) fn load(&self, id: &str, lock: Lock) -> Result<(ContainerDir, Record)> {
        let dir = self.store.open(id, lock)?;
        let record = crate::footprint::load_record(&dir)?;
        Ok((dir, record))
    }

    /// The container's state; a container still being created (or whose `create` was
    /// killed) is described from its footprint: status `creating` (or `stopped`).
    pub fn state(&self, id: &str) -> Result<OciState> {
        let dir = self.store.open_dir(id, Lock::None)?;
        match crate::footprint::load_record(&dir) {
            Ok(rec) => {
                let status = rec.status(&dir);
                Ok(rec.oci_state(status))
            }
            Err(StateError::NotFound { .. }) => self.footprint_state(&dir),
            Err(e) => Err(e.into()),
        }
    }

    /// Every container; one whose state cannot be read is listed with status `unknown`
    /// (and a warning naming the problem) rather than hidden.
    pub fn list(&self) -> Result<Vec<OciState>> {
        let mut out = Vec::new();
        for id in self.store.ids()? {
            match self.state(&id) {
                Ok(s) => out.push(s),
                Err(RuntimeError::State(StateError::NotFound { .. })) => {}
                Err(e) => {
                    tracing::warn!("list: {e}");
                    let dir = self.store.open_dir(&id, Lock::None)?;
                    let mut s = match dir
                        .load_from::<crate::footprint::Footprint>(crate::footprint::FOOTPRINT_FILE)
                    {
                        Ok(fp) => fp.oci_state(Status::Unknown),
                        Err(_) => crate::footprint::Footprint {
                            id: id.clone(),
                            ..Default::default()
                        }
                        .oci_state(Status::Unknown),
                    };
                    s.pid = 0;
                    out.push(s);
                }
            }
        }
        Ok(out)
    }

    pub fn start(&self, id: &str) -> Result<()> {
        self.start_container(id).map_err(|e| e.in_container(id))
    }

    fn start_container(&self, id: &str) -> Result<()> {
        let (dir, rec) = self.load(id, Lock::Exclusive)?;
        match rec.status(&dir) {
            Status::Created => {}
            status => return Err(StatusError::new(Operation::Start, status).into()),
        }
        let path = dir.socket_path(START_SOCKET);
        let mut conn = UnixStream::connect(&path).map_err(RuntimeError::io(format!(
            "connect to init at {}",
            dir.file(START_SOCKET).display()
        )))?;
        let _ = std::fs::remove_file(&path);
        // End of file: the init exec'd (the connection is close-on-exec). A message: it failed.
        let mut buf = [0u8; 16];
        let n = read_full(&mut conn, &mut buf).map_err(RuntimeError::io("wait for init"))?;
        if n != 0 {
            return Err(InitError::Reported(match crate::protocol::decode(&buf, n) {
                Some(crate::protocol::ToParent::Failed {
                    domain,
                    step,
                    index,
                    errno,
                }) => crate::describe::after_start(&rec.spec, domain, step, index, errno),
                _ => "init failed to start".into(),
            })
            .into());
        }
        rec.run_poststart();
        Ok(())
    }

    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        self.kill_container(id, signal, all)
            .map_err(|e| e.in_container(id))
    }

    fn kill_container(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        let (dir, rec) = self.load(id, Lock::Shared)?;
        let status = rec.status(&dir);
        // Like runc >= 1.2: without its own pid namespace, killing the init does not take the
        // other processes with it, so SIGKILL goes to the whole cgroup (even once the init
        // is gone).
        let all = all || (signal == libc::SIGKILL && !private_pid_ns(&rec.spec));
        if all {
            if let Some(cg) = &rec.cgroup {
                return cg.kill_all(signal).map_err(RuntimeError::Cgroup);
            }
        }
        if status == Status::Stopped {
            return Err(StatusError::new(Operation::Kill, status).into());
        }
        signal_init(&rec, signal)
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        self.delete_container(id, force)
            .map_err(|e| e.in_container(id))
    }

    fn delete_container(&self, id: &str, force: bool) -> Result<()> {
        let dir = match self.store.open_dir(id, Lock::Exclusive) {
            Err(StateError::NotFound { .. }) if force => return Ok(()),
            other => other?,
        };
        let rec: Record = match crate::footprint::load_record(&dir) {
            Ok(rec) => rec,
            // A create that was killed (no state.json) or a damaged state file: everything
            // the container made is found through its footprint.
            Err(StateError::NotFound { .. } | StateError::Corrupt { .. }) if force => {
                return self.reap_dir(dir)
            }
            Err(e) => return Err(e.into()),
        };
        let status = rec.status(&dir);
        if status != Status::Stopped {
            if !force {
                return Err(StatusError::new(Operation::Delete, status).into());
            }
            stop_now(&rec)?;
        }
        self.destroy(dir, &rec)
    }

    /// Removes a stopped container: what is left of its processes, poststop hooks, a host
    /// rootfs bind, its cgroup and its state directory (whose lock `dir` holds).
    pub(crate) fn destroy(&self, dir: ContainerDir, rec: &Record) -> Result<()> {
        if !rec.pid_ns {
            // Without its own pid namespace, the init's death leaves the other processes alive.
            if let Some(cg) = &rec.cgroup {
                let _ = cg.kill_all(libc::SIGKILL);
            }
        }
        // Before the namespace goes: its devices back to the host (crate::netdev).
        crate::netdev::release(
            &dir.file(crate::netdev::NETNS_FILE),
            &crate::netdev::devices(&rec.spec),
        );
        let state = serde_json::to_vec(&rec.oci_state(Status::Stopped)).unwrap_or_default();
        hooks::run_all_warn(
            "poststop",
            rec.spec
                .hooks()
                .as_ref()
                .and_then(|h| h.poststop().as_ref()),
            &state,
        );
        if !rec.mount_ns {
            crate::create::unbind_rootfs(&rec.rootfs);
        }
        if let Some(cg) = &rec.cgroup {
            cg.destroy().map_err(RuntimeError::Cgroup)?;
        }
        dir.remove()?;
        Ok(())
    }
}

/// Reads until `buf` is full or the peer closes; returns the byte count.
fn read_full(conn: &mut UnixStream, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match conn.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn signal_init(rec: &Record, signal: i32) -> Result<()> {
    let pidfd = husk_sys::proc::pidfd_open(rec.pid)
        .map_err(InitError::step(format!("open init process {}", rec.pid)))?;
    // The pidfd pins the process; check it is still ours before signalling.
    if !rec.alive() {
        return Err(StatusError::new(Operation::Kill, Status::Stopped).into());
    }
    husk_sys::proc::pidfd_send_signal(&pidfd, signal)
        .map_err(InitError::step(format!("send signal {signal}")))
}

/// SIGKILL the container and wait until its init is gone (thawing a paused one first).
fn stop_now(rec: &Record) -> Result<()> {
    let pidfd = match husk_sys::proc::pidfd_open(rec.pid) {
        Ok(fd) if rec.alive() => fd,
        _ => return Ok(()),
    };
    if let Some(cg) = &rec.cgroup {
        let _ = cg.kill_all(libc::SIGKILL);
    }
    let _ = husk_sys::proc::pidfd_send_signal(&pidfd, libc::SIGKILL);
    if let Some(cg) = &rec.cgroup {
        let _ = cg.thaw();
    }
    let timeout = Duration::from_secs(10);
    match husk_sys::proc::pidfd_wait_exit(&pidfd, timeout.as_millis() as i32) {
        Ok(true) => Ok(()),
        Ok(false) => Err(InitError::Unkillable(rec.pid).into()),
        Err(e) => Err(InitError::step("wait for init")(e)),
    }
}

/// Whether the container has a pid namespace of its own (a new one, not one joined by path).
fn private_pid_ns(spec: &oci_spec::runtime::Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none())
}

#[cfg(test)]
mod tests {
    use super::parse_signal;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("KILL"), Some(9));
        assert_eq!(parse_signal("SIGKILL"), Some(9));
        assert_eq!(parse_signal("term"), Some(15));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("RTMIN+1"), Some(libc::SIGRTMIN() + 1));
        assert_eq!(parse_signal("FOO"), None);
        assert_eq!(parse_signal("0"), Some(0));
        assert_eq!(parse_signal("-1"), None);
        assert_eq!(parse_signal("65"), None);
    }
}
