//! `exec`: a new process inside a running container. It is born in the container's pid
//! namespace (the parent joins it around `clone3`) and cgroup, then joins every other namespace
//! of the init in one `setns(pidfd, flags)` call, and execs the process spec's program.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use husk_state::{Lock, Status};
use oci_spec::runtime::{Capability, Process, Spec};

use crate::create::check_console;
use crate::error::{InitError, Operation, StatusError};
use crate::namespaces::{flag_of, Join, ParentSwitch};
use crate::plan::{ChildPlan, JoinInit, ProcessPlan, StartGate};
use crate::protocol;
use crate::record::Record;
use crate::relay::Console;
use crate::spawn::{self, spawn, Until};
use crate::{Result, Runtime, RuntimeError};

/// `husk exec` flags.
#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    pub id: String,
    /// `--process FILE`: a whole process JSON; the flags below then do not apply.
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// `--pidfd-socket`: where a pidfd of the process goes.
    pub pidfd_socket: Option<PathBuf>,
    pub tty: bool,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    /// `uid[:gid]`
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--cgroup [controller:]path`: existing sub-cgroups to run the process in.
    pub cgroups: Vec<String>,
}

impl Runtime {
    /// Returns the exit code for husk (the process's, unless detached).
    pub fn exec(&self, o: &ExecOptions) -> Result<i32> {
        self.exec_process(o).map_err(|e| e.in_container(&o.id))
    }

    fn exec_process(&self, o: &ExecOptions) -> Result<i32> {
        let id = o.id.as_str();
        let (dir, rec) = self.load(id, Lock::Shared)?;
        match rec.status(&dir) {
            status @ Status::Stopped => {
                return Err(StatusError::new(Operation::Exec, status).into())
            }
            status @ Status::Paused if !o.ignore_paused => {
                return Err(StatusError::new(Operation::Exec, status).into())
            }
            _ => {}
        }
        let mut process = process_of(o, &rec.spec)?;
        // HOME from the container's /etc/passwd (seen through the init's root).
        if let Ok(root) = std::fs::File::open(format!("/proc/{}/root", rec.pid)) {
            if let Some(p) = crate::home::with_home(&process, &root) {
                process = p;
            }
        }
        let mut process_plan = ProcessPlan::new(&process, rec.spec.linux().as_ref())?;
        process_plan.cwd_origin = match (&o.process, &o.cwd) {
            (Some(_), _) => "set in the --process file",
            (None, Some(_)) => "given by exec --cwd",
            (None, None) => "set in config.json",
        };
        crate::seccomp_agent::check(&rec.spec, process_plan.hardening.seccomp_notify())?;
        if crate::userns::setgroups_denied(rec.pid) {
            process_plan.hardening.set_setgroups_allowed(false);
        }
        let terminal = process.terminal().unwrap_or(false);
        check_console(terminal, o.console_socket.is_some(), o.detach)?;

        let init = husk_sys::proc::pidfd_open(rec.pid).map_err(|e| match e.0 {
            // The init exited since the status check: the container stopped.
            libc::ESRCH => StatusError::new(Operation::Exec, Status::Stopped).into(),
            _ => InitError::step(format!("open init process {}", rec.pid))(e),
        })?;
        if !rec.alive() {
            return Err(StatusError::new(Operation::Exec, Status::Stopped).into());
        }
        let (pid_join, join_init) = namespaces_of(&rec.spec, &init)?;
        let cgroup = exec_cgroup(o, &rec)?;
        let clone_cgroup: Option<OwnedFd> = match &cgroup {
            Some(cg) => cg
                .clone_into_fd()
                .transpose()
                .map_err(RuntimeError::Cgroup)?,
            None => None,
        };
        // In the foreground without a console socket, husk relays the terminal itself.
        let mut console = Console::new(o.console_socket.as_deref(), terminal)?;
        let (parent_sync, child_sync) =
            protocol::socketpair().map_err(RuntimeError::io("create sync socket"))?;
        let plan = ChildPlan {
            sync: child_sync.as_raw_fd(),
            gate: StartGate::Open,
            console: console.child_end.take(),
            close_first: vec![dir.fd().as_raw_fd(), parent_sync.as_raw_fd()],
            preserve_fds: o.preserve_fds,
            affinity: crate::plan::affinity(&process)?,
            mempolicy: crate::plan::mempolicy(rec.spec.linux().as_ref())?,
            cgroup_tasks: match &cgroup {
                Some(cg) => crate::create::self_join(cg)?,
                None => Vec::new(),
            },
            join_init,
            init: None,
            process: process_plan,
            trace: false,
        };

        // Block the forwarded signals before the clone so none is lost (the child unblocks).
        let set = crate::run::signal_set();
        if !o.detach {
            husk_sys::signals::block(&set);
            if plan
                .join_init
                .as_ref()
                .is_some_and(|(_, f)| f & libc::CLONE_NEWPID != 0)
            {
                // The process will be a grandchild (see `namespaces_of`): wait for it still.
                if let Err(e) = husk_sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0) {
                    tracing::debug!("cannot become a child subreaper: {e}");
                }
            }
        }
        let switch = ParentSwitch::join(&pid_join)?;
        let mut pid = spawn(
            &plan,
            child_sync,
            0,
            clone_cgroup.as_ref(),
            switch,
            "for exec",
        )
        .map_err(|e| {
            // A pid namespace whose init is dying takes no new process (ENOMEM from clone3):
            // the container stopped under us. Its init may still be reaping the namespace, so
            // give it a moment to be gone (on this failure path only).
            match husk_sys::proc::pidfd_wait_exit(&init, 200) {
                Ok(true) => StatusError::new(Operation::Exec, Status::Stopped).into(),
                _ => e,
            }
        })?;
        // The container may be deleted while the process runs: do not hold its lock.
        drop(dir);
        let mut host = ExecHost {
            spec: &rec.spec,
            state: rec.oci_state(Status::Running),
        };
        let sync = parent_sync.as_fd();
        if let Err(e) = spawn::drive(sync, &plan, &mut pid, Until::Exec, &mut host) {
            let _ = husk_sys::proc::kill(pid, libc::SIGKILL);
            let _ = husk_sys::waitpid(pid);
            return Err(InitError::Exec(Box::new(e)).into());
        }
        drop(plan);
        if let Some(pid_file) = &o.pid_file {
            crate::create::write_pid_file(pid_file, pid)?;
        }
        if let Some(sock) = &o.pidfd_socket {
            crate::create::send_pidfd(sock, pid)?;
        }
        if o.detach {
            return Ok(0);
        }
        let mut relay = console.master()?.map(crate::relay::Relay::new);
        let status = crate::run::wait_forwarding(pid, &set, relay.as_mut())?;
        Ok(crate::run::exit_code(status))
    }
}

/// `exec`'s answer to its process: only the seccomp agent.
struct ExecHost<'a> {
    spec: &'a Spec,
    state: husk_state::OciState,
}

impl spawn::Host for ExecHost<'_> {
    fn seccomp_listener(&mut self, pid: i32, listener: OwnedFd) -> Result<()> {
        crate::seccomp_agent::hand_over(self.spec, pid, &self.state, listener)
    }
}

/// The container's namespaces for an exec'd process: its pid namespace, which the parent
/// joins around the clone, and the others, which the child joins through the init's pidfd.
///
/// Without root in the initial user namespace, setns(2) to the pid namespace (or back) is
/// refused: the
/// child then joins it too, with the user namespace in the same call (the kernel checks the
/// rest against the joined user namespace), and forks once more so that its child is in it.
fn namespaces_of(spec: &Spec, init: &OwnedFd) -> Result<(Vec<Join>, Option<JoinInit>)> {
    let mut flags = 0;
    for n in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        flags |= flag_of(n.typ());
    }
    // In a user namespace (rootless Podman) the parent could enter it but not come back.
    let parent_joins_pid = crate::rootless::parent_may_switch();
    let pid_join = if flags & libc::CLONE_NEWPID != 0 && parent_joins_pid {
        vec![Join {
            fd: dup(init)?,
            flag: libc::CLONE_NEWPID,
        }]
    } else {
        Vec::new()
    };
    let child_flags = if parent_joins_pid {
        flags & !libc::CLONE_NEWPID
    } else {
        flags
    };
    let join_init = (child_flags != 0)
        .then(|| dup(init).map(|fd| (fd, child_flags)))
        .transpose()?;
    Ok((pid_join, join_init))
}

/// The cgroup the process is born in: the container's, or `--cgroup` sub-cgroups of it.
fn exec_cgroup(o: &ExecOptions, rec: &Record) -> Result<Option<husk_cgroups::Manager>> {
    let id = o.id.as_str();
    let mut cgroup = rec.cgroup.clone();
    for spec in &o.cgroups {
        let (controller, rel) = match spec.split_once(':') {
            Some((c, r)) => (Some(c), r),
            None => (None, spec.as_str()),
        };
        let Some(cg) = &cgroup else {
            return Err(RuntimeError::Usage(format!(
                "exec: --cgroup {spec}: container {id} has no cgroup"
            )));
        };
        cgroup = Some(
            cg.sub_cgroup(controller, rel)
                .map_err(RuntimeError::Cgroup)?,
        );
    }
    Ok(cgroup)
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd> {
    fd.try_clone().map_err(RuntimeError::io("duplicate pidfd"))
}

/// The process to exec: `--process FILE`, or the container's own process with the flags'
/// changes (as runc builds it).
fn process_of(o: &ExecOptions, spec: &Spec) -> Result<Process> {
    if let Some(path) = &o.process {
        return Ok(husk_spec::load_process(path)?);
    }
    if o.args.is_empty() {
        return Err(RuntimeError::Usage(
            "exec: no command given (husk exec [options] <container-id> <command> [args...])"
                .into(),
        ));
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.into());
    }
    if !o.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &o.env {
            let key = kv.split('=').next().unwrap_or_default();
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    let mut user = p.user().clone();
    if let Some(u) = &o.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        let num = |s: &str| {
            s.parse::<u32>().map_err(|_| {
                RuntimeError::Usage(format!("exec: --user {u:?}: expected uid[:gid] as numbers"))
            })
        };
        user.set_uid(num(uid)?);
        user.set_gid(gid.map(num).transpose()?.unwrap_or(0));
    }
    if !o.additional_gids.is_empty() {
        user.set_additional_gids(Some(o.additional_gids.clone()));
    }
    p.set_user(user);
    if !o.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &o.caps {
            let Ok(cap) = serde_json::from_value::<Capability>(name.as_str().into()) else {
                // runc >= 1.2: unknown capabilities are a warning, not an error.
                tracing::warn!("ignoring unknown or unavailable capabilities: [{name:?}]");
                continue;
            };
            let add = |s: &Option<std::collections::HashSet<Capability>>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (b, e, pm) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
            );
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(pm);
            // As runc >= 1.2: ambient too when the process has an inheritable set; the kernel
            // refuses it unless that set holds the capability.
            if let Some(inheritable) = caps.inheritable() {
                if !inheritable.contains(&cap) {
                    tracing::warn!(
                        "can't raise ambient capability {name}: operation not permitted"
                    );
                }
                let a = add(caps.ambient());
                caps.set_ambient(a);
            }
        }
        p.set_capabilities(Some(caps));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &o.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &o.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    Ok(p)
}
