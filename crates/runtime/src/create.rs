//! `create` (and the first half of `run`): plan in the parent, clone the init, drive it through
//! setup over the sync socket, then record the container.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use husk_state::{ContainerDir, Status};
use husk_sys::clone::{clone3, Forked};

use crate::namespaces::{write_id_maps, Namespaces, ParentSwitch};
use crate::plan::{cstring, sysctls, ChildHook, ChildPlan, ProcessPlan, StartGate};
use crate::protocol::{self, Msg};
use crate::record::{Record, START_SOCKET};
use crate::relay::Console;
use crate::{child, describe, hooks, Result, Runtime, RuntimeError};

/// The `create`/`run` flags.
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

/// A container whose init is set up and waiting to be started.
pub(crate) struct Created {
    pub record: Record,
    /// Parent end of the sync socket (`run` sends Start over it).
    pub sync: OwnedFd,
    /// The pty master, when husk relays the terminal itself.
    pub console_master: Option<OwnedFd>,
}

/// Undoes a half-made container: kills the init, removes the cgroup and the state directory.
struct Cleanup {
    dir: Option<ContainerDir>,
    cgroup: Option<husk_cgroups::Manager>,
    pid: Option<i32>,
    /// A rootfs bound onto itself in the host's mount namespace.
    host_rootfs: Option<PathBuf>,
}

impl Cleanup {
    fn disarm(mut self) -> ContainerDir {
        self.cgroup = None;
        self.host_rootfs = None;
        self.pid = None;
        self.dir
            .take()
            .expect("state directory present until disarmed")
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = husk_sys::proc::kill(pid, libc::SIGKILL);
            let _ = husk_sys::waitpid(pid);
        }
        if let Some(rootfs) = &self.host_rootfs {
            unbind_rootfs(rootfs);
        }
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.destroy() {
                tracing::warn!("cleanup: remove cgroup: {e}");
            }
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.remove() {
                tracing::warn!("cleanup: {e}");
            }
        }
    }
}

/// Where the init waits for `start`.
pub(crate) enum Gate {
    /// `create`: the start socket.
    Socket,
    /// `run`: the sync socket; with `relay`, husk holds the pty itself when the process has a
    /// terminal and no console socket was given (a foreground run).
    Sync { relay: bool },
}

impl Runtime {
    pub fn create(&self, opts: &CreateOptions) -> Result<()> {
        let created = self.create_container(opts, Gate::Socket)?;
        drop(created);
        Ok(())
    }

    pub(crate) fn create_container(&self, opts: &CreateOptions, gate: Gate) -> Result<Created> {
        let mut phases = crate::trace::Phases::new();
        let bundle = husk_spec::load_bundle(&opts.bundle)?;
        phases.mark("spec");
        let spec = &bundle.spec;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| RuntimeError::Spec("process: missing".into()))?;
        let terminal = process.terminal().unwrap_or(false);
        let relay =
            terminal && opts.console_socket.is_none() && matches!(gate, Gate::Sync { relay: true });
        if terminal && opts.console_socket.is_none() && !relay {
            return Err(RuntimeError::Usage(
                "cannot allocate tty if husk will detach without setting console socket".into(),
            ));
        }
        if !terminal && opts.console_socket.is_some() {
            return Err(RuntimeError::Usage(
                "cannot use console socket if husk will not detach or allocate tty".into(),
            ));
        }

        let id = opts.id.as_str();
        let process_plan = ProcessPlan::new(process, spec.linux().as_ref())?;
        crate::seccomp_agent::check(spec, process_plan.hardening.seccomp_notify())?;
        // [crash] clears an abandoned directory of this id (footprint.rs).
        let dir = self.new_container_dir(id)?;
        phases.mark("state-dir");
        let mut cleanup = Cleanup {
            dir: Some(dir),
            cgroup: None,
            pid: None,
            host_rootfs: None,
        };
        let dir = cleanup.dir.as_ref().expect("just set");

        let linux = spec.linux().as_ref();
        let cg_path = linux
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.display().to_string());
        let layout = husk_cgroups::detect().map_err(|source| RuntimeError::Cgroup {
            id: id.into(),
            source,
        })?;
        let cgroup =
            husk_cgroups::Manager::new(&layout, id, cg_path.as_deref(), self.systemd_cgroup)
                .map_err(|source| RuntimeError::Cgroup {
                    id: id.into(),
                    source,
                })?;
        let cg_err = |source| RuntimeError::Cgroup {
            id: id.to_string(),
            source,
        };
        // [crash] the footprint records every side effect before it happens (footprint.rs).
        let mut footprint = crate::footprint::Footprint::new(id, &bundle, &cgroup);
        footprint.save(dir)?;
        cgroup
            .create(crate::devices::effective_resources(spec).as_ref())
            .map_err(cg_err)?;
        cleanup.cgroup = Some(cgroup.clone());
        let clone_cgroup: Option<OwnedFd> = cgroup.clone_into_fd().transpose().map_err(cg_err)?;

        phases.mark("cgroup");
        // A new cgroup namespace can be made at clone time only when the child is born in all
        // its cgroups (v2); on v1 it joins them first, then unshares.
        let mut ns = Namespaces::plan(spec, cgroup.mode() == husk_cgroups::Mode::Unified)?;
        let has_mount_ns = ns.clone_flags & libc::CLONE_NEWNS as u64 != 0
            || ns.child_joins.iter().any(|j| j.flag == libc::CLONE_NEWNS)
            || ns.child_unshare & libc::CLONE_NEWNS != 0;
        if !has_mount_ns {
            // Mounts will land in the host's table: put them all on a bind of the rootfs that
            // husk made itself, so a failed create or a delete can detach them at once.
            footprint.will_bind(dir, &bundle.rootfs)?; // [crash]
            bind_rootfs(&bundle.rootfs).map_err(|e| {
                RuntimeError::Init(format!(
                    "container {id}: bind rootfs {}: {e}",
                    bundle.rootfs.display()
                ))
            })?;
            cleanup.host_rootfs = Some(bundle.rootfs.clone());
        }
        let cgroupns = ns.clone_flags & libc::CLONE_NEWCGROUP as u64 != 0
            || ns.child_unshare & libc::CLONE_NEWCGROUP != 0;
        let rootfs = husk_rootfs::RootfsPlan::new(
            spec,
            &bundle.rootfs,
            &bundle.dir,
            &husk_rootfs::PlanOptions {
                no_pivot: opts.no_pivot,
                new_userns: ns.new_user || ns.joined_user,
                host_mount_ns: !has_mount_ns,
                cgroups: cgroup_view(&cgroup, cgroupns),
            },
        )?;

        let mut console = Console::new(opts.console_socket.as_deref(), relay)?;
        let (parent_sync, child_sync) =
            protocol::socketpair().map_err(RuntimeError::io("create sync socket"))?;
        let start_gate = match gate {
            Gate::Socket => {
                // [crash] a short path: a long root or id must not overflow sun_path.
                let path = dir.short_path(START_SOCKET);
                let l = UnixListener::bind(&path)
                    .map_err(RuntimeError::io(format!("listen on {}", path.display())))?;
                StartGate::Socket(OwnedFd::from(l))
            }
            Gate::Sync { .. } => StartGate::Sync,
        };

        let hooks = spec.hooks().as_ref();
        let child_hooks =
            |list: Option<&Vec<oci_spec::runtime::Hook>>, kind: &str| -> Result<Vec<ChildHook>> {
                list.into_iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, h)| ChildHook::new(h, &format!("hooks.{kind}[{i}]")))
                    .collect()
            };
        let create_container_hooks = child_hooks(
            hooks.and_then(|h| h.create_container().as_ref()),
            "createContainer",
        )?;
        let start_container_hooks = child_hooks(
            hooks.and_then(|h| h.start_container().as_ref()),
            "startContainer",
        )?;
        #[allow(deprecated)]
        let hooks_in_parent = hooks.is_some_and(|h| {
            h.prestart().as_ref().is_some_and(|v| !v.is_empty())
                || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
        });
        let container_hooks =
            !create_container_hooks.is_empty() || !start_container_hooks.is_empty();

        let plan = ChildPlan {
            sync: child_sync.as_raw_fd(),
            gate: start_gate,
            console: console.child_end.take(),
            // [crash] also the cgroup fd (clone3 needs it in the parent only) and what the
            // caller left open beyond --preserve-fds: nothing of the host stays in the init.
            close_first: [dir.fd().as_raw_fd(), parent_sync.as_raw_fd()]
                .into_iter()
                .chain(clone_cgroup.as_ref().map(|f| f.as_raw_fd()))
                .chain(
                    crate::inherited_fds()
                        .iter()
                        .copied()
                        .filter(|&fd| fd >= 3 + opts.preserve_fds as i32),
                )
                .collect(),
            preserve_fds: opts.preserve_fds,
            wait_setup: ns.new_user || container_hooks || ns.fork_again,
            cgroup_tasks: self_join(&cgroup)?,
            child_joins: std::mem::take(&mut ns.child_joins),
            child_unshare: ns.child_unshare,
            fork_again: ns.fork_again,
            time_offsets: match (&ns.time_offsets, ns.fork_again) {
                (Some(o), true) => Some(cstring(o.as_str(), "linux.timeOffsets")?),
                _ => None,
            },
            new_user: ns.new_user || ns.joined_user,
            keyring: if opts.no_new_keyring {
                None
            } else {
                Some(cstring(id, "container id")?)
            },
            hostname: spec
                .hostname()
                .as_deref()
                .filter(|h| !h.is_empty() || ns.new_uts)
                .map(|h| cstring(h, "hostname"))
                .transpose()?,
            domainname: spec
                .domainname()
                .as_deref()
                .map(|h| cstring(h, "domainname"))
                .transpose()?,
            sysctls: sysctls(spec)?,
            rootfs: Some(rootfs),
            join_init: None,
            hooks_in_parent,
            create_container_hooks,
            start_container_hooks,
            hook_state: [(); 2].map(|_| {
                RefCell::new(if container_hooks {
                    vec![0u8; 1 << 20]
                } else {
                    Vec::new()
                })
            }),
            process: process_plan,
            trace: phases.enabled(),
        };

        phases.mark("plan");
        phases.init_begins();
        // Clone with the parent standing in the joined namespaces, then step back out.
        let mut switch = ParentSwitch::enter(&ns)?;
        // SAFETY: husk is single-threaded; the child only runs `child::main`, which makes raw
        // system calls on memory prepared above and never returns.
        let forked =
            unsafe { clone3(ns.clone_flags, clone_cgroup.as_ref().map(|f| f.as_raw_fd())) };
        let mut pid = match forked {
            Ok(Forked::Child) => child::main(&plan),
            Ok(Forked::Parent { pid }) => pid,
            Err(e) => {
                return Err(RuntimeError::Init(format!(
                    "container {id}: clone3 of the init process: {e}"
                )));
            }
        };
        switch.restore();
        phases.mark("clone");
        cleanup.pid = Some(pid);
        footprint.cloned(dir, pid)?; // [crash]
        drop(child_sync);
        let sync = parent_sync.as_raw_fd();
        let io = |what: &'static str| {
            move |e: husk_sys::Errno| RuntimeError::Init(format!("container {id}: {what}: {e}"))
        };

        if ns.new_user {
            write_id_maps(pid, &ns)?;
        }
        if let Some(adj) = process.oom_score_adj() {
            let path = format!("/proc/{pid}/oom_score_adj");
            std::fs::write(&path, adj.to_string())
                .map_err(RuntimeError::io(format!("container {id}: write {path}")))?;
        }
        let mut record = Record {
            id: id.to_string(),
            pid,
            pid_start: 0,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: husk_state::rfc3339_now(),
            annotations: spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            cgroup: Some(cgroup.clone()),
            pid_ns: ns.pid_ns,
            mount_ns: has_mount_ns,
            spec: crate::record::slim_spec(spec), // [crash] only what later commands read
        };
        if plan.wait_setup {
            protocol::send(sync, Msg::SetupDone).map_err(io("sync"))?;
        }
        if container_hooks {
            for status in [Status::Creating, Status::Created] {
                let state = serde_json::to_vec(&record.oci_state(status)).unwrap_or_default();
                protocol::send_blob(sync, &state).map_err(io("send state to init"))?;
            }
        }
        loop {
            match protocol::recv_with_fd(sync).map_err(io("sync"))? {
                Some((Msg::Ready, _)) => break,
                Some((Msg::Mark { phase, ns }, _)) => phases.init_mark(phase, ns),
                Some((Msg::Pid(init), _)) => {
                    // The intermediate child is done; its child is the container's init.
                    let _ = husk_sys::waitpid(pid);
                    pid = init;
                    cleanup.pid = Some(init);
                    record.pid = init;
                    footprint.cloned(dir, init)?; // [crash]
                }
                Some((Msg::SeccompFd, Some(listener))) => {
                    crate::seccomp_agent::hand_over(
                        spec,
                        pid,
                        &record.oci_state(Status::Creating),
                        listener,
                    )?;
                }
                Some((Msg::RunHooks, _)) => {
                    let hooks = spec.hooks().as_ref();
                    // prestart keeps its runtime-spec 1.0 meaning ("after start is called"):
                    // its state says created, as crun and the validation suite have it.
                    let created =
                        serde_json::to_vec(&record.oci_state(Status::Created)).unwrap_or_default();
                    #[allow(deprecated)]
                    let prestart = hooks.and_then(|h| h.prestart().as_ref());
                    hooks::run_all("prestart", prestart, &created)?;
                    let creating =
                        serde_json::to_vec(&record.oci_state(Status::Creating)).unwrap_or_default();
                    hooks::run_all(
                        "createRuntime",
                        hooks.and_then(|h| h.create_runtime().as_ref()),
                        &creating,
                    )?;
                    protocol::send(sync, Msg::HooksDone).map_err(io("sync"))?;
                }
                Some((
                    Msg::Failed {
                        domain,
                        step,
                        index,
                        errno,
                    },
                    _,
                )) => {
                    let what = describe::failure(&plan, domain, step, index, errno);
                    return Err(RuntimeError::Init(format!("container {id}: {what}")));
                }
                Some((other, _)) => {
                    return Err(RuntimeError::Init(format!(
                        "container {id}: unexpected message {other:?} from init"
                    )))
                }
                None => {
                    let status = husk_sys::waitpid(pid).unwrap_or(0);
                    cleanup.pid = None;
                    return Err(RuntimeError::Init(format!(
                        "container {id}: init exited during setup ({})",
                        describe::wait_status(status)
                    )));
                }
            }
        }
        phases.mark("init-setup");
        record.pid_start = husk_sys::proc::start_time(pid).ok_or_else(|| {
            RuntimeError::Init(format!("container {id}: init process {pid} vanished"))
        })?;
        let dir_ref = cleanup.dir.as_ref().expect("present");
        dir_ref.save(&record)?;
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, pid)?;
        }
        drop(plan);
        phases.mark("record");
        phases.report("create", id);
        // Unlocks the container: `state`, `kill` and the rest may work on it now.
        let console_master = console.master(id)?;
        drop(cleanup.disarm());
        Ok(Created {
            record,
            sync: parent_sync,
            console_master,
        })
    }
}

/// Writes the pid file atomically (temporary file and rename), without a newline, as runc does.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.husk-tmp"));
    std::fs::write(&tmp, pid.to_string()).map_err(RuntimeError::io(format!(
        "write pid file {}",
        tmp.display()
    )))?;
    std::fs::rename(&tmp, path).map_err(RuntimeError::io(format!(
        "write pid file {}",
        path.display()
    )))
}

/// How the container's `cgroup` mounts should look: one bind per v1 hierarchy (named like its
/// host mount point), or the v2 directory.
fn cgroup_view(cg: &husk_cgroups::Manager, cgroupns: bool) -> husk_rootfs::CgroupView {
    let root = Path::new(husk_cgroups::CGROUP_ROOT);
    if cg.mode() == husk_cgroups::Mode::Unified {
        return match cg.paths().get("") {
            Some(dir) => husk_rootfs::CgroupView::V2 {
                host_dir: dir.clone(),
                cgroupns,
            },
            None => husk_rootfs::CgroupView::None,
        };
    }
    let mut seen = std::collections::BTreeMap::new();
    for dir in cg.paths().values() {
        if let Some(name) = dir
            .strip_prefix(root)
            .ok()
            .and_then(|r| r.components().next())
        {
            seen.entry(name.as_os_str().to_string_lossy().into_owned())
                .or_insert_with(|| dir.clone());
        }
    }
    husk_rootfs::CgroupView::V1(seen.into_iter().collect())
}

fn path_cstring(p: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// Binds `rootfs` onto itself in the host's mount namespace (containers without their own).
fn bind_rootfs(rootfs: &Path) -> std::io::Result<()> {
    let c = path_cstring(rootfs)?;
    husk_sys::mount::mount(Some(&c), &c, None, libc::MS_BIND | libc::MS_REC, None)
        .map_err(husk_sys::Errno::to_io)
}

/// Detaches the bind made by [`bind_rootfs`] with everything mounted on it.
pub(crate) fn unbind_rootfs(rootfs: &Path) {
    if let Ok(c) = path_cstring(rootfs) {
        if let Err(e) = husk_sys::mount::umount2(&c, libc::MNT_DETACH) {
            tracing::warn!("detach rootfs {}: {e}", rootfs.display());
        }
    }
}

/// The v1 `tasks` files the child writes "0" to (see `Manager::self_join_files`).
pub(crate) fn self_join(cgroup: &husk_cgroups::Manager) -> Result<Vec<std::ffi::CString>> {
    cgroup
        .self_join_files()
        .iter()
        .map(|p| path_cstring(p).map_err(RuntimeError::io(format!("cgroup path {}", p.display()))))
        .collect()
}
