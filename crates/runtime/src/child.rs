//! The container's init between `clone3` and `execve`. Only system calls from here on: no
//! allocation, no locks, no logging. Failures travel to the parent as a fixed-size message.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use husk_sys::buf::PathBuf;
use husk_sys::{Errno, Result as SysResult};

use crate::plan::{ChildHook, ChildPlan, InitSetup, StartGate};
use crate::protocol::{self, Domain, ToChild, ToParent};
use crate::trace::InitPhase;

husk_sys::step_enum! {
    /// Runtime-side steps of the child (decoded by [`crate::describe`] into messages).
    pub(crate) enum Step {
        Fds,
        Sync,
        Setns,
        Unshare,
        BecomeRoot,
        Hostname,
        Domainname,
        Sysctl,
        Console,
        Cwd,
        Lookup,
        CreateContainerHook,
        StartContainerHook,
        StartWait,
        Keyring,
        Exec,
        CgroupJoin,
        Affinity,
        MemPolicy,
    }
}

/// Marks a hook failure's "errno" as the hook's wait status (in the low 16 bits).
pub(crate) const HOOK_STATUS: i32 = 0x4000_0000;

struct Fail {
    domain: Domain,
    step: u16,
    index: u32,
    errno: Errno,
}

fn rt(step: Step, index: u32) -> impl Fn(Errno) -> Fail + Copy {
    move |errno| Fail {
        domain: Domain::Runtime,
        step: step as u16,
        index,
        errno,
    }
}

impl From<husk_rootfs::Failure> for Fail {
    fn from(f: husk_rootfs::Failure) -> Fail {
        Fail {
            domain: Domain::Rootfs,
            step: f.step as u16,
            index: f.index,
            errno: f.errno,
        }
    }
}

impl From<husk_hardening::Failure> for Fail {
    fn from(f: husk_hardening::Failure) -> Fail {
        Fail {
            domain: Domain::Hardening,
            step: f.step as u16,
            index: f.index,
            errno: f.errno,
        }
    }
}

/// Entry point in the cloned child. Never returns.
pub(crate) fn main(plan: &ChildPlan) -> ! {
    let Err(f) = run(plan);
    fail_and_exit(plan.child_sync(), f)
}

/// Tells whoever waits on `fd` which step failed, then exits.
fn fail_and_exit(fd: BorrowedFd<'_>, f: Fail) -> ! {
    let msg = ToParent::Failed {
        domain: f.domain,
        step: f.step,
        index: f.index,
        errno: f.errno,
    };
    let _ = protocol::send(fd, msg);
    husk_sys::exit_now(1)
}

/// With tracing on, tells the parent that `phase` just ended.
fn mark(plan: &ChildPlan, phase: InitPhase) {
    if plan.trace {
        let ns = husk_sys::monotonic_ns();
        let _ = protocol::send(
            plan.child_sync(),
            ToParent::Mark {
                phase: phase as u16,
                ns,
            },
        );
    }
}

fn expect(sync: BorrowedFd<'_>, want: ToChild) -> Result<(), Fail> {
    match protocol::recv::<ToChild>(sync) {
        Ok(Some(m)) if m == want => Ok(()),
        // The parent went away or said something else: stop quietly.
        Ok(_) => husk_sys::exit_now(1),
        Err(e) => Err(rt(Step::Sync, 0)(e)),
    }
}

fn run(plan: &ChildPlan) -> Result<Infallible, Fail> {
    mark(plan, InitPhase::Clone);
    for &fd in &plan.close_first {
        husk_sys::close_raw(fd);
    }
    husk_sys::cloexec_from(3 + plan.preserve_fds).map_err(rt(Step::Fds, 0))?;
    // Nobody in the container may ptrace or read /proc/PID/{fd,mem} of this process until it
    // execs the user's program (execve makes it dumpable again). An init that waits for its
    // setup does so once it is set up: a non-root parent writes /proc/PID/setgroups and the
    // id maps, which a non-dumpable process's /proc files (owned by root) would refuse it.
    if !plan.init.as_ref().is_some_and(|i| i.wait_setup) {
        husk_sys::prctl(libc::PR_SET_DUMPABLE, 0, 0).map_err(rt(Step::Fds, 1))?;
    }
    if let Some(initial) = &plan.affinity.0 {
        husk_sys::sched_setaffinity(initial).map_err(rt(Step::Affinity, 0))?;
    }
    // Join the v1 cgroups ourselves, before doing anything that is accounted: a thread moving
    // itself does not take the kernel's global threadgroup lock (an RCU grace period).
    for (i, tasks) in plan.cgroup_tasks.iter().enumerate() {
        husk_sys::write_file_at(husk_sys::CWD, tasks, b"0")
            .map_err(rt(Step::CgroupJoin, i as u32))?;
    }
    // As runc >= 1.2: the cgroup's CPUs (or execCPUAffinity.final), not the caller's taskset.
    match husk_sys::sched_setaffinity(&plan.affinity.1) {
        Err(e) if plan.affinity.1 != crate::plan::ALL_CPUS => {
            return Err(rt(Step::Affinity, 1)(e));
        }
        _ => {}
    }
    mark(plan, InitPhase::Cgroups);
    if let Some(init) = &plan.init {
        init_namespaces(plan, init)?;
    }
    if let Some((pidfd, flags)) = &plan.join_init {
        husk_sys::setns(pidfd.as_fd(), *flags).map_err(rt(Step::Setns, u32::MAX))?;
        if flags & libc::CLONE_NEWPID != 0 {
            // Joined here, not by the parent (exec without root): only children are in it.
            fork_once_more(plan)?;
        }
    }
    mark(plan, InitPhase::Namespaces);
    if let Some(init) = &plan.init {
        init_mounts(plan, init)?;
    }
    mark(plan, InitPhase::PivotRoot);
    if plan.process.terminal {
        setup_console(plan).map_err(rt(Step::Console, 0))?;
    } else {
        // Like runc, every container process leads its own session (CRIU needs the session
        // leader inside the container to checkpoint it); with a terminal, above, too.
        husk_sys::setsid().map_err(rt(Step::Console, 1))?;
    }
    if let Some(init) = &plan.init {
        for (i, s) in init.sysctls.iter().enumerate() {
            husk_sys::write_file_at(husk_sys::CWD, &s.path, s.value.as_bytes())
                .map_err(rt(Step::Sysctl, i as u32))?;
        }
        init.rootfs.finalize()?;
    }
    mark(plan, InitPhase::Finish);
    let exe = harden(plan)?;
    mark(plan, InitPhase::Security);

    protocol::send(plan.child_sync(), ToParent::Ready).map_err(rt(Step::Sync, 3))?;
    // Whoever started us waits on this channel: end of file (it is close-on-exec) means the
    // user process runs; a Failed message means it never will.
    let conn = wait_for_start(plan)?;
    let report = conn.as_ref().map_or(plan.child_sync(), |c| c.as_fd());
    let Err(f) = after_start(plan, &exe, report);
    fail_and_exit(report, f)
}

/// The init's namespaces: wait for the parent's setup (id maps, hook state), join and
/// unshare, become root in a new user namespace, keyring, hostname and domainname.
fn init_namespaces(plan: &ChildPlan, init: &InitSetup) -> Result<(), Fail> {
    if init.wait_setup {
        expect(plan.child_sync(), ToChild::SetupDone)?;
        husk_sys::prctl(libc::PR_SET_DUMPABLE, 0, 0).map_err(rt(Step::Fds, 1))?;
    }
    if init.container_hooks() {
        for state in &init.hook_state {
            let mut buf = state.borrow_mut();
            let n = husk_sys::read(plan.child_sync(), &mut buf).map_err(rt(Step::Sync, 1))?;
            buf.truncate(n);
        }
    }
    for (i, j) in init.child_joins.iter().enumerate() {
        husk_sys::setns(j.fd.as_fd(), j.flag).map_err(rt(Step::Setns, i as u32))?;
    }
    if init.child_unshare != 0 {
        husk_sys::unshare(init.child_unshare).map_err(rt(Step::Unshare, 0))?;
    }
    if init.fork_again {
        fork_again(plan, init)?;
    }
    if init.new_user {
        // Become the namespace's root for the setup (when 0 is mapped at all).
        for r in [husk_sys::setresgid(0), husk_sys::setresuid(0)] {
            match r {
                Ok(()) | Err(Errno(libc::EINVAL)) => {}
                Err(e) => return Err(rt(Step::BecomeRoot, 0)(e)),
            }
        }
    }
    if let Some(name) = &init.keyring {
        // Keyrings may be disabled or unavailable in a user namespace: as runc, go on then.
        match husk_sys::new_session_keyring(name) {
            Ok(()) | Err(Errno(libc::ENOSYS | libc::EPERM | libc::EACCES | libc::EDQUOT)) => {}
            Err(e) => return Err(rt(Step::Keyring, 0)(e)),
        }
    }
    if let Some(h) = &init.hostname {
        husk_sys::sethostname(h.as_bytes()).map_err(rt(Step::Hostname, 0))?;
    }
    if let Some(d) = &init.domainname {
        husk_sys::setdomainname(d.as_bytes()).map_err(rt(Step::Domainname, 0))?;
    }
    Ok(())
}

/// The init's mounts, the hooks that run while the root is still the host's (prestart,
/// createRuntime by the parent, createContainer here), then pivot_root.
fn init_mounts(plan: &ChildPlan, init: &InitSetup) -> Result<(), Fail> {
    let prepared = init.rootfs.prepare()?;
    mark(plan, InitPhase::Mounts);
    if init.hooks_in_parent {
        protocol::send(plan.child_sync(), ToParent::RunHooks).map_err(rt(Step::Sync, 2))?;
        expect(plan.child_sync(), ToChild::HooksDone)?;
    }
    if !init.create_container_hooks.is_empty() {
        // As runc: createContainer hooks run in the container's root filesystem.
        husk_sys::fchdir(prepared.root_fd()).map_err(rt(Step::CreateContainerHook, 0))?;
    }
    run_hooks(
        plan,
        init,
        &init.create_container_hooks,
        0,
        Step::CreateContainerHook,
    )?;
    if init.hooks_in_parent || !init.create_container_hooks.is_empty() {
        mark(plan, InitPhase::Hooks);
    }
    init.rootfs.enter(prepared)?;
    Ok(())
}

/// LSM label, rlimits, scheduling, cwd, no_new_privs, an early seccomp filter and the
/// identity switch; then finds the program. Returns its path.
fn harden(plan: &ChildPlan) -> Result<PathBuf, Fail> {
    if let Some((mode, nodes)) = &plan.mempolicy {
        husk_sys::set_mempolicy(*mode, nodes.as_ref()).map_err(rt(Step::MemPolicy, 0))?;
    }
    let h = &plan.process.hardening;
    h.apply_lsm_exec_label()?;
    h.apply_rlimits()?;
    h.apply_scheduling()?;
    // Before any seccomp filter: the cwd check itself uses getcwd, which profiles may block.
    change_dir(plan)?;
    if h.no_new_privs() {
        h.set_no_new_privs()?;
    }
    // Without no_new_privs the filter needs CAP_SYS_ADMIN: install it while we have it. A
    // filter with a notify listener goes in now too, while the parent is there to pass the
    // listener on to the seccomp agent.
    if !h.no_new_privs() || h.seccomp_notify() {
        install_seccomp(plan)?;
    }
    h.finalize_identity()?;
    let mut exe = PathBuf::new();
    lookup(plan, &mut exe).map_err(rt(Step::Lookup, 0))?;
    Ok(exe)
}

/// A new pid (or time) namespace made after joining a user namespace only applies to
/// children: fork, report the grandchild's pid, and let the grandchild be the init.
fn fork_again(plan: &ChildPlan, init: &InitSetup) -> Result<(), Fail> {
    if let Some(offsets) = &init.time_offsets {
        husk_sys::write_file_at(
            husk_sys::CWD,
            c"/proc/self/timens_offsets",
            offsets.as_bytes(),
        )
        .map_err(rt(Step::Unshare, 1))?;
    }
    fork_once_more(plan)
}

/// Forks; the parent reports the child's pid and exits, the child goes on as the process.
fn fork_once_more(plan: &ChildPlan) -> Result<(), Fail> {
    // SAFETY: single-threaded; the grandchild continues this same allocation-free routine.
    match unsafe { husk_sys::clone::clone3(0, None) }.map_err(rt(Step::Unshare, 2))? {
        husk_sys::clone::Forked::Child => Ok(()),
        husk_sys::clone::Forked::Parent { pid } => {
            let _ = protocol::send(plan.child_sync(), ToParent::Pid(pid));
            husk_sys::exit_now(0)
        }
    }
}

/// startContainer hooks, a late seccomp filter, and the exec itself.
fn after_start(
    plan: &ChildPlan,
    exe: &PathBuf,
    report: BorrowedFd<'_>,
) -> Result<Infallible, Fail> {
    let h = &plan.process.hardening;
    if h.no_new_privs() && !h.seccomp_notify() {
        // As late as possible: fewer syscalls of ours for the profile to allow. Before the
        // startContainer hooks, which run in the container under its filter (as runc's do).
        h.install_seccomp()?;
    }
    if let Some(init) = &plan.init {
        run_hooks(
            plan,
            init,
            &init.start_container_hooks,
            1,
            Step::StartContainerHook,
        )?;
    }
    husk_sys::reset_signals();
    let p = &plan.process;
    // The trampoline is handed the report descriptor (one byte of its argv[0]) and makes it
    // close-on-exec itself, so whoever waits sees end-of-file exactly at the user's exec.
    if let (Some(trampoline), Ok(fd)) = (&p.trampoline, u8::try_from(report.as_raw_fd())) {
        let fd_name = [fd, 0u8];
        let mut argv = p.trampoline_argv.borrow_mut();
        argv[0] = fd_name.as_ptr().cast();
        argv[1] = exe.as_cstr().as_ptr();
        husk_sys::set_cloexec(report, false).map_err(rt(Step::Exec, 1))?;
        match husk_sys::exe_guard::exec_via(trampoline.as_fd(), &argv, p.envp.as_ptrs()) {
            // A seccomp profile that forbids execveat: exec directly (without the guard).
            Errno(libc::EPERM | libc::ENOSYS | libc::EACCES) => {
                husk_sys::set_cloexec(report, true).map_err(rt(Step::Exec, 1))?;
            }
            e => return Err(rt(Step::Exec, 0)(e)),
        }
    }
    let e = husk_sys::execve(exe.as_cstr(), p.argv.as_ptrs(), p.envp.as_ptrs());
    Err(rt(Step::Exec, 0)(e))
}

/// Installs the seccomp filter; a notify listener goes to the parent (it then belongs to the
/// seccomp agent, never to the container).
fn install_seccomp(plan: &ChildPlan) -> Result<(), Fail> {
    if let Some(listener) = plan.process.hardening.install_seccomp()? {
        protocol::send_seccomp_fd(plan.child_sync(), listener.as_fd())
            .map_err(rt(Step::Sync, 4))?;
    }
    Ok(())
}

fn setup_console(plan: &ChildPlan) -> SysResult<()> {
    let (master, slave) = husk_sys::tty::open_pty(plan.process.console_size)?;
    // As runc: `\n` stays `\n`, and the process's user owns its terminal (the group stays the
    // devpts one, tty).
    husk_sys::tty::clear_onlcr(slave.as_fd())?;
    husk_sys::fchownat(
        slave.as_fd(),
        c"",
        plan.process.uid,
        u32::MAX,
        libc::AT_EMPTY_PATH,
    )?;
    if let Some(sock) = &plan.console {
        husk_sys::send_fd(sock.as_fd(), master.as_fd())?;
    }
    drop(master);
    husk_sys::tty::make_controlling(slave.as_fd())
}

fn change_dir(plan: &ChildPlan) -> Result<(), Fail> {
    let cwd = &plan.process.cwd;
    match husk_sys::chdir(cwd) {
        Err(Errno(libc::ENOENT)) if plan.init.is_some() => {
            // Like runc, make a missing working directory (not in `exec`).
            let root = husk_sys::openat(husk_sys::CWD, c"/", libc::O_PATH | libc::O_DIRECTORY, 0)
                .map_err(rt(Step::Cwd, 0))?;
            let mut rel = PathBuf::new();
            let bytes = cwd.to_bytes();
            rel.push_bytes(bytes.strip_prefix(b"/").unwrap_or(bytes))
                .map_err(rt(Step::Cwd, 0))?;
            mkdir_p(root.as_fd(), &rel).map_err(rt(Step::Cwd, 0))?;
            husk_sys::chdir(cwd).map_err(rt(Step::Cwd, 0))?;
        }
        other => other.map_err(rt(Step::Cwd, 0))?,
    }
    // A cwd that resolved through an inherited descriptor to a directory outside the
    // container's root (CVE-2024-21626) shows up as "(unreachable)".
    let mut raw = [0u8; 4096];
    match husk_sys::getcwd(&mut raw) {
        Ok(path) if path.first() == Some(&b'/') => Ok(()),
        Ok(_) => Err(rt(Step::Cwd, 1)(Errno(libc::EACCES))),
        Err(e) => Err(rt(Step::Cwd, 1)(e)),
    }
}

fn mkdir_p(root: BorrowedFd<'_>, rel: &PathBuf) -> SysResult<()> {
    let bytes = rel.as_bytes();
    let mut prefix = PathBuf::new();
    for comp in bytes.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if !prefix.is_empty() {
            prefix.push_bytes(b"/")?;
        }
        prefix.push_bytes(comp)?;
        match husk_sys::mkdirat(root, prefix.as_cstr(), 0o755) {
            Ok(()) | Err(Errno(libc::EEXIST)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn is_executable_file(path: &std::ffi::CStr) -> SysResult<()> {
    let st = husk_sys::fstatat(husk_sys::CWD, path, 0)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Errno(libc::EACCES));
    }
    husk_sys::access(path, libc::X_OK)
}

/// Finds the program like execvp: as given when it has a slash, else along PATH.
fn lookup(plan: &ChildPlan, out: &mut PathBuf) -> SysResult<()> {
    let exe = &plan.process.exe;
    if exe.search.is_empty() {
        out.push_bytes(exe.arg0.as_bytes())?;
        return is_executable_file(out.as_cstr());
    }
    let mut denied = false;
    for dir in &exe.search {
        out.clear();
        out.push_bytes(dir.as_bytes())?
            .push_bytes(b"/")?
            .push_bytes(exe.arg0.as_bytes())?;
        match is_executable_file(out.as_cstr()) {
            Ok(()) => return Ok(()),
            Err(Errno(libc::EACCES)) => denied = true,
            Err(_) => {}
        }
    }
    Err(Errno(if denied { libc::EACCES } else { libc::ENOENT }))
}

/// Blocks until started: `husk start` connecting (create) or a Start message (run). Returns
/// the connection, which must stay open until exec.
fn wait_for_start(plan: &ChildPlan) -> Result<Option<OwnedFd>, Fail> {
    match &plan.gate {
        StartGate::Sync => expect(plan.child_sync(), ToChild::Start).map(|()| None),
        StartGate::Open => Ok(None),
        StartGate::Socket(listener) => husk_sys::accept(listener.as_fd())
            .map(Some)
            .map_err(rt(Step::StartWait, 0)),
    }
}

fn run_hooks(
    plan: &ChildPlan,
    init: &InitSetup,
    hooks: &[ChildHook],
    state: usize,
    step: Step,
) -> Result<(), Fail> {
    let state = init.hook_state[state].borrow();
    for (i, h) in hooks.iter().enumerate() {
        // A hook without an `env` of its own gets the process's (as runc's do).
        let envp = h.envp.as_ref().unwrap_or(&plan.process.envp);
        run_hook(h, envp, &state).map_err(rt(step, i as u32))?;
    }
    Ok(())
}

/// Runs one hook with the state JSON on its stdin and waits for it, up to its timeout.
fn run_hook(h: &ChildHook, envp: &crate::plan::CArray, state: &[u8]) -> SysResult<()> {
    let (r, w) = husk_sys::pipe()?;
    // Under a seccomp profile that refuses clone3 (ENOSYS), the classic clone.
    // SAFETY: we are the single-threaded container init; the hook child only dup2s and execs.
    let forked = match unsafe { husk_sys::clone::clone3(0, None) } {
        // SAFETY: as above.
        Err(Errno(libc::ENOSYS | libc::EPERM)) => unsafe { husk_sys::clone::fork_classic() },
        other => other,
    }?;
    match forked {
        husk_sys::clone::Forked::Child => {
            if husk_sys::dup2(r.as_fd(), 0).is_ok() {
                husk_sys::execve(&h.path, h.argv.as_ptrs(), envp.as_ptrs());
            }
            husk_sys::exit_now(127)
        }
        husk_sys::clone::Forked::Parent { pid } => {
            drop(r);
            // A hook that does not read its stdin must not block us: ignore EPIPE.
            let _ = husk_sys::write_all(w.as_fd(), state);
            drop(w);
            // A profile may refuse pidfd_open: then wait without the timeout.
            let pidfd = match husk_sys::proc::pidfd_open(pid) {
                Ok(fd) => fd,
                Err(_) => return hook_status(husk_sys::waitpid(pid)?),
            };
            if !husk_sys::proc::pidfd_wait_exit(&pidfd, h.timeout_ms)? {
                let _ = husk_sys::proc::pidfd_send_signal(&pidfd, libc::SIGKILL);
                let _ = husk_sys::waitpid(pid);
                return Err(Errno(libc::ETIMEDOUT));
            }
            hook_status(husk_sys::waitpid(pid)?)
        }
    }
}

fn hook_status(status: i32) -> SysResult<()> {
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        // The wait status travels in the errno slot, marked (see describe::hook_reason).
        Err(Errno(HOOK_STATUS | (status & 0xffff)))
    }
}
