//! `create` (and the first half of `run`): plan in the parent, clone the init, drive it through
//! setup over the sync socket, then record the container.

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use husk_state::{ContainerDir, Status};

use crate::error::InitError;
use crate::footprint::Footprint;
use crate::namespaces::{write_id_maps, Namespaces, ParentSwitch};
use crate::plan::{cstring, sysctls, ChildHook, ChildPlan, InitSetup, ProcessPlan, StartGate};
use crate::protocol::{self, ToChild};
use crate::record::{Record, START_SOCKET};
use crate::relay::Console;
use crate::spawn::{self, spawn, Until};
use crate::{hooks, Result, Runtime, RuntimeError};

/// The `create`/`run` flags.
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// `--pidfd-socket`: where a pidfd of the init goes.
    pub pidfd_socket: Option<PathBuf>,
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
    /// `linux.netDevices` moved into the container, to move back.
    net: Option<crate::netdev::Moved>,
    /// The bind that keeps the container's own network namespace (crate::netdev).
    netns_held: Option<PathBuf>,
}

impl Cleanup {
    fn disarm(mut self) -> ContainerDir {
        self.cgroup = None;
        self.host_rootfs = None;
        self.pid = None;
        self.net = None;
        self.netns_held = None;
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
        if let Some(moved) = &self.net {
            if let Err(e) = moved.move_back() {
                tracing::warn!("cleanup: {e}");
            }
        }
        if let Some(held) = &self.netns_held {
            crate::netdev::release(held, &[]);
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
    /// terminal and no console socket was given (a foreground run). Without `subreaper`
    /// (`run --no-subreaper`) a foreground run cannot wait for an init that is husk's
    /// grandchild, and refuses a container that needs one.
    Sync { relay: bool, subreaper: bool },
}

/// Everything `create` made before the clone, owned in one place.
struct Prepared {
    bundle: husk_spec::Bundle,
    /// Undoes it all unless disarmed.
    cleanup: Cleanup,
    /// None for a rootless container that may not have one (see `crate::rootless`).
    cgroup: Option<husk_cgroups::Manager>,
    /// The cgroup v2 directory the child is born in (CLONE_INTO_CGROUP).
    clone_cgroup: Option<OwnedFd>,
    ns: Namespaces,
    has_mount_ns: bool,
    console: Console,
    parent_sync: OwnedFd,
    child_sync: OwnedFd,
    plan: ChildPlan,
    /// What was made so far, on disk before each side effect (footprint.rs).
    footprint: Footprint,
}

/// Refuses a terminal without anywhere for its pty master to go, and a console socket without
/// a terminal (runc's wording). `detached`: husk will not stay to relay the terminal itself.
pub(crate) fn check_console(terminal: bool, console_socket: bool, detached: bool) -> Result<()> {
    if terminal && !console_socket && detached {
        return Err(RuntimeError::Usage(
            "cannot allocate tty if husk will detach without setting console socket".into(),
        ));
    }
    if !terminal && console_socket {
        return Err(RuntimeError::Usage(
            "cannot use console socket if husk will not detach or allocate tty".into(),
        ));
    }
    Ok(())
}

impl Runtime {
    pub fn create(&self, opts: &CreateOptions) -> Result<()> {
        let created = self
            .create_container(opts, Gate::Socket)
            .map_err(|e| e.in_container(&opts.id))?;
        drop(created);
        Ok(())
    }

    /// prepare → spawn → drive the init through its setup → record.
    pub(crate) fn create_container(&self, opts: &CreateOptions, gate: Gate) -> Result<Created> {
        let id = opts.id.as_str();
        let mut phases = crate::trace::Phases::new();
        let mut p = self.prepare(opts, gate, &mut phases)?;
        phases.mark("plan");
        phases.init_begins();
        // Clone with the parent standing in the joined namespaces, then step back out.
        let switch = ParentSwitch::enter(&p.ns)?;
        let pid = spawn(
            &p.plan,
            p.child_sync,
            p.ns.clone_flags,
            p.clone_cgroup.as_ref(),
            switch,
            "of the init process",
        )?;
        phases.mark("clone");
        p.cleanup.pid = Some(pid);
        let dir = p.cleanup.dir.as_ref().expect("present");
        p.footprint.cloned(dir, pid)?;
        if let Some(cg) = p.cgroup.as_ref().filter(|c| c.made_around_pid()) {
            // The systemd driver: the unit is made around the waiting init, then recorded
            // (a unit of that name that is not ours is never stopped). Should husk die in
            // between, the recorded init is killed and systemd drops the empty scope.
            let resources = self.cgroup_resources(&p.bundle.spec);
            cg.enter(pid, resources.as_ref())
                .map_err(RuntimeError::Cgroup)?;
            p.cleanup.cgroup = Some(cg.clone());
            p.footprint.unit_made(dir, cg)?;
            phases.mark("cgroup-unit");
        }
        let mut record = Record {
            id: id.to_string(),
            pid,
            pid_start: 0,
            bundle: p.bundle.dir.clone(),
            rootfs: p.bundle.rootfs.clone(),
            created: husk_state::rfc3339_now(),
            annotations: p
                .bundle
                .spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            cgroup: p.cgroup.clone(),
            pid_ns: p.ns.pid_ns,
            mount_ns: p.has_mount_ns,
            spec: p.bundle.spec.clone(),
        };
        let sync = p.parent_sync.as_fd();
        setup_init(sync, &p.plan, &p.ns, &record)?;
        let mut host = CreateHost {
            record: &mut record,
            cleanup: &mut p.cleanup,
            footprint: &mut p.footprint,
            phases: &mut phases,
        };
        let mut pid = pid;
        spawn::drive(sync, &p.plan, &mut pid, Until::Ready, &mut host)?;
        phases.mark("init-setup");
        drop(p.plan);
        self.record(opts, record, p.cleanup, p.console, p.parent_sync, phases)
    }

    /// Everything before the clone: the spec, the state directory, the cgroup, the
    /// namespaces, the rootfs plan and the [`ChildPlan`].
    fn prepare(
        &self,
        opts: &CreateOptions,
        gate: Gate,
        phases: &mut crate::trace::Phases,
    ) -> Result<Prepared> {
        let mut bundle = husk_spec::load_bundle(&opts.bundle)?;
        crate::userns::joined_mappings(&mut bundle.spec)?;
        phases.mark("spec");
        let spec = &bundle.spec;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| RuntimeError::Spec("process: missing".into()))?;
        let terminal = process.terminal().unwrap_or(false);
        let may_relay = matches!(gate, Gate::Sync { relay: true, .. });
        check_console(terminal, opts.console_socket.is_some(), !may_relay)?;
        let relay = terminal && opts.console_socket.is_none() && may_relay;
        if relay {
            crate::relay::check_host_console()?;
        }

        let id = opts.id.as_str();
        let root_dir = std::fs::File::open(&bundle.rootfs).map_err(RuntimeError::io(format!(
            "open rootfs {}",
            bundle.rootfs.display()
        )))?;
        let with_home = crate::home::with_home(process, &root_dir);
        let process = with_home.as_ref().unwrap_or(process);
        let mut process_plan = ProcessPlan::new(process, spec.linux().as_ref())?;
        if self.rootless.active() && !crate::netdev::devices(spec).is_empty() {
            return Err(RuntimeError::Spec(
                "linux.netDevices: moving host network devices needs root (not supported for rootless containers)".into(),
            ));
        }
        crate::seccomp_agent::check(spec, process_plan.hardening.seccomp_notify())?;
        let dir = self.new_container_dir(id)?;
        phases.mark("state-dir");
        let mut cleanup = Cleanup {
            dir: Some(dir),
            cgroup: None,
            pid: None,
            host_rootfs: None,
            net: None,
            netns_held: None,
        };
        let dir = cleanup.dir.as_ref().expect("just set");
        let (cgroup, mut footprint) = self.make_cgroup(id, &bundle, dir)?;
        // The systemd driver makes the cgroup around the init's pid, after the clone.
        let around_pid = cgroup.as_ref().is_some_and(|c| c.made_around_pid());
        if !around_pid {
            cleanup.cgroup.clone_from(&cgroup);
        }
        let clone_cgroup = cgroup
            .as_ref()
            .filter(|_| !around_pid)
            .and_then(|c| c.clone_into_fd())
            .transpose()
            .map_err(RuntimeError::Cgroup)?;
        phases.mark("cgroup");
        // A new cgroup namespace can be made at clone time only when the child is born in all
        // its cgroups (v2); on v1, or when systemd moves it in later, it unshares afterwards.
        let unified = !around_pid
            && cgroup
                .as_ref()
                .map_or(true, |c| c.mode() == husk_cgroups::Mode::Unified);
        let mut ns = Namespaces::plan(spec, unified)?;
        if ns.fork_again
            && matches!(
                gate,
                Gate::Sync {
                    relay: true,
                    subreaper: false
                }
            )
        {
            return Err(RuntimeError::Usage(
                "run: --no-subreaper cannot be used with this container: its init is husk's grandchild (a pid or time namespace made inside a joined user namespace), which husk can wait for only as a child subreaper".into(),
            ));
        }
        if ns.map_writer == Some(crate::userns::MapWriter::OwnIds)
            || (ns.joined_user && crate::userns::joined_setgroups_denied(spec))
        {
            // setgroups is denied in the user namespace: the kernel would refuse the call.
            process_plan.hardening.set_setgroups_allowed(false);
        }
        let has_mount_ns = ns.has_mount_ns();
        if !has_mount_ns {
            // Mounts will land in the host's table: put them all on a bind of the rootfs that
            // husk made itself, so a failed create or a delete can detach them at once.
            footprint.will_bind(dir, &bundle.rootfs)?;
            bind_rootfs(&bundle.rootfs).map_err(RuntimeError::io(format!(
                "bind rootfs {}",
                bundle.rootfs.display()
            )))?;
            cleanup.host_rootfs = Some(bundle.rootfs.clone());
        }
        let rootfs = husk_rootfs::RootfsPlan::new(
            spec,
            &bundle.rootfs,
            &bundle.dir,
            &husk_rootfs::PlanOptions {
                no_pivot: opts.no_pivot,
                // Also when husk itself runs in a user namespace (rootless Podman): no mknod,
                // no sysfs without the network namespace, as runc.
                new_userns: ns.new_user || ns.joined_user || crate::rootless::in_user_namespace(),
                host_mount_ns: !has_mount_ns,
                cgroups: cgroup.as_ref().map_or(husk_rootfs::CgroupView::None, |c| {
                    cgroup_view(c, ns.has_cgroup_ns())
                }),
            },
        )?;

        let mut console = Console::new(opts.console_socket.as_deref(), relay)?;
        let (parent_sync, child_sync) =
            protocol::socketpair().map_err(RuntimeError::io("create sync socket"))?;
        let start_gate = match gate {
            Gate::Socket => {
                let path = dir.socket_path(START_SOCKET);
                let l = UnixListener::bind(&path).map_err(RuntimeError::io(format!(
                    "listen on {}",
                    dir.file(START_SOCKET).display()
                )))?;
                StartGate::Socket(OwnedFd::from(l))
            }
            Gate::Sync { .. } => StartGate::Sync,
        };
        let init = init_setup(spec, opts, &mut ns, rootfs, around_pid)?;
        let plan = ChildPlan {
            sync: child_sync.as_raw_fd(),
            gate: start_gate,
            console: console.child_end.take(),
            // Also the cgroup fd (clone3 needs it in the parent only) and what the caller left
            // open beyond --preserve-fds: nothing of the host stays in the waiting init.
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
            // The systemd driver's cgroups do not exist yet: `enter` moves the init in.
            cgroup_tasks: cgroup
                .as_ref()
                .filter(|_| !around_pid)
                .map(self_join)
                .transpose()?
                .unwrap_or_default(),
            // execCPUAffinity does not apply to the init.
            affinity: (None, crate::plan::ALL_CPUS),
            mempolicy: crate::plan::mempolicy(spec.linux().as_ref())?,
            join_init: None,
            init: Some(init),
            process: process_plan,
            trace: phases.enabled(),
        };
        Ok(Prepared {
            bundle,
            cleanup,
            cgroup,
            clone_cgroup,
            ns,
            has_mount_ns,
            console,
            parent_sync,
            child_sync,
            plan,
            footprint,
        })
    }

    /// The container's cgroup, created with its resources (none for a rootless container
    /// whose user may not make one, when it sets no limits), and the footprint that records it
    /// (saved before the cgroup is made).
    fn make_cgroup(
        &self,
        id: &str,
        bundle: &husk_spec::Bundle,
        dir: &ContainerDir,
    ) -> Result<(Option<husk_cgroups::Manager>, Footprint)> {
        let spec = &bundle.spec;
        let cg_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.display().to_string());
        let layout = husk_cgroups::detect().map_err(RuntimeError::Cgroup)?;
        let cgroup =
            husk_cgroups::Manager::new(&layout, id, cg_path.as_deref(), self.cgroup_driver())
                .and_then(|m| m.with_unit_annotations(spec.annotations().iter().flatten()))
                .map_err(RuntimeError::Cgroup)?;
        let mut footprint = Footprint::new(id, bundle, &cgroup);
        if cgroup.made_around_pid() {
            // Not made yet, and the name may be another container's: recorded once made.
            footprint.cgroup = None;
        }
        footprint.save(dir)?;
        let resources = self.cgroup_resources(spec);
        match cgroup.create(resources.as_ref()) {
            Ok(()) => Ok((Some(cgroup), footprint)),
            Err(e) if self.rootless.active() => {
                let none = crate::rootless::without_cgroup(e, &cgroup, spec)?;
                footprint.cgroup = None;
                footprint.save(dir)?;
                Ok((none, footprint))
            }
            Err(e) => Err(RuntimeError::Cgroup(e)),
        }
    }

    /// `linux.resources` as the cgroup gets them, with the devices the spec implies.
    fn cgroup_resources(
        &self,
        spec: &oci_spec::runtime::Spec,
    ) -> Option<oci_spec::runtime::LinuxResources> {
        let mut resources = crate::devices::effective_resources(spec);
        if self.rootless.active() {
            // As runc: no device cgroup when rootless (a user may not load the v2 filter, nor
            // write v1 devices.*); in its user namespace the container cannot make device
            // nodes, and the ones bound in keep their host permissions.
            if let Some(r) = resources.as_mut() {
                r.set_devices(None);
            }
        }
        resources
    }

    /// The init is set up: record the container (its state file unlocks it for the other
    /// commands), write the pid file, and hand back what `run` needs.
    fn record(
        &self,
        opts: &CreateOptions,
        mut record: Record,
        cleanup: Cleanup,
        console: Console,
        sync: OwnedFd,
        mut phases: crate::trace::Phases,
    ) -> Result<Created> {
        let id = opts.id.as_str();
        let pid = record.pid;
        record.pid_start = husk_sys::proc::start_time(pid).ok_or(InitError::Vanished(pid))?;
        let dir = cleanup.dir.as_ref().expect("present");
        // state.json keeps what the later commands read, not the whole config.
        let slim = crate::record::slim_spec(&record.spec);
        let full = std::mem::replace(&mut record.spec, slim);
        dir.save(&record)?;
        record.spec = full;
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, pid)?;
        }
        if let Some(sock) = &opts.pidfd_socket {
            send_pidfd(sock, pid)?;
        }
        phases.mark("record");
        phases.report("create", id);
        // Unlocks the container: `state`, `kill` and the rest may work on it now.
        let console_master = console.master()?;
        drop(cleanup.disarm());
        Ok(Created {
            record,
            sync,
            console_master,
        })
    }
}

/// The init-only part of the plan: namespaces the child joins or makes, identity, hostname,
/// sysctls, the rootfs and the hooks that run inside the container. `cgroup_later`: the init
/// is put into its cgroup after the clone (systemd driver) and must wait for that.
fn init_setup(
    spec: &oci_spec::runtime::Spec,
    opts: &CreateOptions,
    ns: &mut Namespaces,
    rootfs: husk_rootfs::RootfsPlan,
    cgroup_later: bool,
) -> Result<InitSetup> {
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
    // The parent moves linux.netDevices at the same point, before those hooks.
    let hooks_in_parent = hooks_in_parent || !crate::netdev::devices(spec).is_empty();
    let container_hooks = !create_container_hooks.is_empty() || !start_container_hooks.is_empty();
    Ok(InitSetup {
        wait_setup: ns.new_user || container_hooks || ns.fork_again || cgroup_later,
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
            Some(cstring(opts.id.as_str(), "container id")?)
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
        rootfs,
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
    })
}

/// Between the clone and the init's first message: the id maps of a new user namespace, the
/// init's OOM score, then SetupDone and the state JSON for the hooks the init runs.
fn setup_init(
    sync: BorrowedFd<'_>,
    plan: &ChildPlan,
    ns: &Namespaces,
    record: &Record,
) -> Result<()> {
    let pid = record.pid;
    if ns.new_user {
        write_id_maps(pid, ns)?;
    }
    let process = record.spec.process().as_ref();
    if let Some(adj) = process.and_then(|p| p.oom_score_adj()) {
        let path = format!("/proc/{pid}/oom_score_adj");
        std::fs::write(&path, adj.to_string())
            .map_err(RuntimeError::io(format!("write {path}")))?;
    }
    let Some(init) = &plan.init else {
        return Ok(());
    };
    if init.wait_setup {
        protocol::send(sync, ToChild::SetupDone).map_err(InitError::step("sync"))?;
    }
    if init.container_hooks() {
        for status in [Status::Creating, Status::Created] {
            let state = serde_json::to_vec(&record.oci_state(status)).unwrap_or_default();
            protocol::send_blob(sync, &state).map_err(InitError::step("send state to init"))?;
        }
    }
    Ok(())
}

/// `create`'s answers to the init: hooks in the runtime's namespaces, the seccomp agent, the
/// init's pid when it is a grandchild, and traced phases.
struct CreateHost<'a> {
    record: &'a mut Record,
    cleanup: &'a mut Cleanup,
    footprint: &'a mut Footprint,
    phases: &'a mut crate::trace::Phases,
}

impl spawn::Host for CreateHost<'_> {
    fn new_pid(&mut self, pid: i32) -> Result<()> {
        self.cleanup.pid = Some(pid);
        self.record.pid = pid;
        let dir = self.cleanup.dir.as_ref().expect("present");
        self.footprint.cloned(dir, pid)
    }

    fn reaped(&mut self) {
        self.cleanup.pid = None;
    }

    fn mark(&mut self, phase: u16, ns: u64) {
        self.phases.init_mark(phase, ns);
    }

    fn seccomp_listener(&mut self, pid: i32, listener: OwnedFd) -> Result<()> {
        let state = self.record.oci_state(Status::Creating);
        crate::seccomp_agent::hand_over(&self.record.spec, pid, &state, listener)
    }

    fn run_hooks(&mut self) -> Result<Option<()>> {
        self.move_net_devices()?;
        let spec = &self.record.spec;
        let hooks = spec.hooks().as_ref();
        // prestart keeps its runtime-spec 1.0 meaning ("after start is called"): its state
        // says created, as crun and the validation suite have it.
        let created =
            serde_json::to_vec(&self.record.oci_state(Status::Created)).unwrap_or_default();
        #[allow(deprecated)]
        let prestart = hooks.and_then(|h| h.prestart().as_ref());
        hooks::run_all("prestart", prestart, &created)?;
        let creating =
            serde_json::to_vec(&self.record.oci_state(Status::Creating)).unwrap_or_default();
        hooks::run_all(
            "createRuntime",
            hooks.and_then(|h| h.create_runtime().as_ref()),
            &creating,
        )?;
        Ok(Some(()))
    }
}

impl CreateHost<'_> {
    /// `linux.netDevices`, into the init's network namespace (crate::netdev); a namespace of
    /// the container's own is held first, recorded in the footprint before.
    fn move_net_devices(&mut self) -> Result<()> {
        let devices = crate::netdev::devices(&self.record.spec);
        if devices.is_empty() {
            return Ok(());
        }
        let pid = self.record.pid;
        if crate::netdev::own_netns(&self.record.spec) {
            let dir = self.cleanup.dir.as_ref().expect("present");
            let path = dir.file(crate::netdev::NETNS_FILE);
            self.footprint.net_devices.clone_from(&devices);
            self.footprint.save(dir)?;
            self.cleanup.netns_held = Some(path.clone());
            crate::netdev::hold(&path, pid)?;
        }
        self.cleanup.net = Some(crate::netdev::move_in(pid, &devices)?);
        Ok(())
    }
}

/// `--pidfd-socket`: connects to the caller's socket and sends a pidfd of `pid` over it
/// (SCM_RIGHTS), as runc does.
pub(crate) fn send_pidfd(sock: &Path, pid: i32) -> Result<()> {
    let what = || format!("send pidfd to {}", sock.display());
    let conn = std::os::unix::net::UnixStream::connect(sock).map_err(RuntimeError::io(what()))?;
    let pidfd = husk_sys::proc::pidfd_open(pid).map_err(InitError::step(what()))?;
    husk_sys::send_fd(&conn, &pidfd).map_err(InitError::step(what()))
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
pub(crate) fn cgroup_view(cg: &husk_cgroups::Manager, cgroupns: bool) -> husk_rootfs::CgroupView {
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
