//! Everything the container's init needs, prepared by the parent before `clone3`: C strings,
//! pointer arrays, flags. The child reads this from its copy of the parent's memory, so nothing
//! is serialized or sent.

use std::ffi::CString;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use oci_spec::runtime::{Hook, Spec};

use crate::namespaces::Join;
use crate::RuntimeError;

/// A NULL-terminated `char *[]` over owned C strings.
pub(crate) struct CArray {
    _strings: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CArray {
    pub fn new<I: IntoIterator<Item = CString>>(items: I) -> CArray {
        let strings: Vec<CString> = items.into_iter().collect();
        let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CArray {
            _strings: strings,
            ptrs,
        }
    }
    pub fn as_ptrs(&self) -> &[*const libc::c_char] {
        &self.ptrs
    }
}

pub(crate) fn cstring(s: impl Into<Vec<u8>>, what: &str) -> Result<CString, RuntimeError> {
    CString::new(s).map_err(|_| RuntimeError::Spec(format!("{what}: contains a NUL byte")))
}

/// A hook the child runs itself (createContainer, startContainer).
pub(crate) struct ChildHook {
    pub path: CString,
    pub argv: CArray,
    /// `None`: the hook has no `env` and gets the process's, as runc's hooks do.
    pub envp: Option<CArray>,
    pub timeout_ms: i32,
}

impl ChildHook {
    pub fn new(h: &Hook, what: &str) -> Result<ChildHook, RuntimeError> {
        let path = cstring(h.path().as_os_str().as_bytes(), what)?;
        let args: Vec<CString> = match h.args() {
            Some(a) if !a.is_empty() => a
                .iter()
                .map(|s| cstring(s.as_str(), what))
                .collect::<Result<_, _>>()?,
            _ => vec![path.clone()],
        };
        let env: Option<Vec<CString>> = h
            .env()
            .as_ref()
            .map(|e| e.iter().map(|s| cstring(s.as_str(), what)).collect())
            .transpose()?;
        Ok(ChildHook {
            path,
            argv: CArray::new(args),
            envp: env.map(CArray::new),
            timeout_ms: h.timeout().map_or(-1, |t| t.saturating_mul(1000) as i32),
        })
    }
}

/// How the child finds the program to exec, mirroring execvp's PATH search.
pub(crate) struct Exe {
    pub arg0: CString,
    /// Directories of the process's PATH (empty when arg0 contains a slash).
    pub search: Vec<CString>,
}

pub(crate) struct Sysctl {
    pub path: CString,
    pub value: CString,
}

/// How the child waits for `start`.
pub(crate) enum StartGate {
    /// `create`: accept() on this listening socket; `husk start` connects.
    Socket(OwnedFd),
    /// `run`: a Start message on the sync socket.
    Sync,
    /// `exec`: no waiting.
    Open,
}

/// `husk exec`'s way into the container: the init's pidfd and the namespace flags for
/// `setns(pidfd, flags)`.
pub(crate) type JoinInit = (OwnedFd, libc::c_int);

/// Everything the child needs, for the container's init (`create`, `run`) and for `exec`'s
/// process alike: the descriptors it keeps or closes, how it joins its cgroup, the process to
/// exec, and, for the init only, [`InitSetup`].
pub(crate) struct ChildPlan {
    pub sync: RawFd,
    pub gate: StartGate,
    pub console: Option<OwnedFd>,
    /// Parent-only descriptors the child must close at once (the state directory lock).
    pub close_first: Vec<RawFd>,
    pub preserve_fds: u32,
    /// v1 `tasks` files the child writes "0" to first thing, joining its cgroups itself.
    pub cgroup_tasks: Vec<CString>,
    /// CPU affinity before joining the cgroup (`process.execCPUAffinity.initial`) and after
    /// it (`final`, else every CPU: the cgroup's cpuset, not the caller's `taskset`).
    pub affinity: (Option<husk_sys::CpuMask>, husk_sys::CpuMask),
    /// `linux.memoryPolicy` for set_mempolicy(2): mode with flags, and the nodes.
    pub mempolicy: Option<(libc::c_int, Option<husk_sys::CpuMask>)>,
    /// `husk exec`: the container's init as a pidfd, and the namespaces to join through it.
    pub join_init: Option<JoinInit>,
    /// The container's own setup: namespaces, rootfs, hostname, sysctls, hooks. `None` for
    /// `exec`, whose process enters a container that is set up already.
    pub init: Option<InitSetup>,
    pub process: ProcessPlan,
    /// Send a [`ToParent::Mark`](crate::protocol::ToParent::Mark) at the end of each setup phase.
    pub trace: bool,
}

impl ChildPlan {
    /// The child's end of the sync socket, in the child (between clone and exec).
    pub fn child_sync(&self) -> BorrowedFd<'_> {
        // SAFETY: `sync` is the number of the child's end of the socketpair, which the
        // parent's OwnedFd keeps open across the clone; the child's copy is never closed
        // before exec (it is close-on-exec), and only the child calls this.
        unsafe { BorrowedFd::borrow_raw(self.sync) }
    }
}

/// The init-only part of the [`ChildPlan`].
pub(crate) struct InitSetup {
    /// Wait for [`ToChild::SetupDone`](crate::protocol::ToChild::SetupDone) before going on (id maps,
    /// hook state, the grandchild's pid).
    pub wait_setup: bool,
    pub child_joins: Vec<Join>,
    pub child_unshare: libc::c_int,
    /// Fork once more after unsharing (see `Namespaces::fork_again`), writing these time
    /// namespace offsets first.
    pub fork_again: bool,
    pub time_offsets: Option<CString>,
    pub new_user: bool,
    /// Name of the new session keyring (`None` with `--no-new-keyring`).
    pub keyring: Option<CString>,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    pub sysctls: Vec<Sysctl>,
    pub rootfs: husk_rootfs::RootfsPlan,
    pub hooks_in_parent: bool,
    pub create_container_hooks: Vec<ChildHook>,
    pub start_container_hooks: Vec<ChildHook>,
    /// Buffers the parent's state JSON is received into, for the hooks above (status
    /// "creating" for createContainer, "created" for startContainer).
    pub hook_state: [std::cell::RefCell<Vec<u8>>; 2],
}

impl InitSetup {
    /// Hooks the init runs itself, which need the state JSON from the parent.
    pub fn container_hooks(&self) -> bool {
        !self.create_container_hooks.is_empty() || !self.start_container_hooks.is_empty()
    }
}

/// The part of the plan that describes the process itself, shared by `create` and `exec`.
pub(crate) struct ProcessPlan {
    pub hardening: husk_hardening::Plan,
    pub cwd: CString,
    /// Where `cwd` came from, for messages: "set in config.json", or `exec`'s flag or file.
    pub cwd_origin: &'static str,
    pub exe: Exe,
    pub argv: CArray,
    pub envp: CArray,
    pub terminal: bool,
    /// The process's uid, which owns its console (the pty slave).
    pub uid: u32,
    pub console_size: Option<(u16, u16)>,
    /// The exec trampoline (CVE-2019-5736), and its argv:
    /// `[report fd, program path, argv..., NULL]`, whose first two slots the child fills in.
    pub trampoline: Option<OwnedFd>,
    pub trampoline_argv: std::cell::RefCell<Vec<*const libc::c_char>>,
}

impl ProcessPlan {
    pub fn new(
        process: &oci_spec::runtime::Process,
        linux: Option<&oci_spec::runtime::Linux>,
    ) -> Result<ProcessPlan, RuntimeError> {
        let args = process
            .args()
            .as_ref()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| RuntimeError::Spec("process.args: must not be empty".into()))?;
        let env = process.env().clone().unwrap_or_default();
        let argv = CArray::new(
            args.iter()
                .map(|a| cstring(a.as_str(), "process.args"))
                .collect::<Result<Vec<_>, _>>()?,
        );
        let mut trampoline_argv = vec![std::ptr::null(), std::ptr::null()];
        trampoline_argv.extend_from_slice(argv.as_ptrs());
        let trampoline = husk_sys::exe_guard::trampoline().map_err(|e| RuntimeError::Io {
            what: "create the exec trampoline memfd".into(),
            source: e.to_io(),
        })?;
        Ok(ProcessPlan {
            hardening: husk_hardening::Plan::new(process, linux)?,
            cwd: cstring(process.cwd().as_os_str().as_bytes(), "process.cwd")?,
            cwd_origin: "set in config.json",
            exe: Exe::new(&args[0], &env)?,
            argv,
            envp: CArray::new(
                env.iter()
                    .map(|e| cstring(e.as_str(), "process.env"))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            terminal: process.terminal().unwrap_or(false),
            uid: process.user().uid(),
            console_size: process
                .console_size()
                .as_ref()
                .map(|b| (b.height() as u16, b.width() as u16)),
            trampoline,
            trampoline_argv: std::cell::RefCell::new(trampoline_argv),
        })
    }
}

pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Exe {
    pub fn new(arg0: &str, env: &[String]) -> Result<Exe, RuntimeError> {
        let search = if arg0.contains('/') {
            Vec::new()
        } else {
            let path = env
                .iter()
                .rev()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or(DEFAULT_PATH);
            path.split(':')
                .map(|d| if d.is_empty() { "." } else { d })
                .map(|d| cstring(d, "process.env PATH"))
                .collect::<Result<_, _>>()?
        };
        Ok(Exe {
            arg0: cstring(arg0, "process.args[0]")?,
            search,
        })
    }
}

pub(crate) fn sysctls(spec: &Spec) -> Result<Vec<Sysctl>, RuntimeError> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(Vec::new());
    };
    map.iter()
        .map(|(k, v)| {
            let what = format!("linux.sysctl[{k:?}]");
            if k.contains('/') || k.split('.').any(|c| c.is_empty() || c == "..") {
                return Err(RuntimeError::Spec(format!("{what}: not a sysctl name")));
            }
            let path = Path::new("/proc/sys").join(k.replace('.', "/"));
            Ok(Sysctl {
                path: cstring(path.as_os_str().as_bytes(), &what)?,
                value: cstring(v.as_str(), &what)?,
            })
        })
        .collect()
}

/// Every CPU: what a process gets once in its cgroup (the kernel narrows it to the cpuset).
pub(crate) const ALL_CPUS: husk_sys::CpuMask = [u64::MAX; 16];

/// The affinity of a process: `process.execCPUAffinity` (exec only), else every CPU.
pub(crate) fn affinity(
    process: &oci_spec::runtime::Process,
) -> Result<(Option<husk_sys::CpuMask>, husk_sys::CpuMask), RuntimeError> {
    let Some(a) = process.exec_cpu_affinity() else {
        return Ok((None, ALL_CPUS));
    };
    let mask = |s: &Option<String>, what: &str| {
        s.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| cpu_mask(s, what))
            .transpose()
    };
    Ok((
        mask(a.initial(), "process.execCPUAffinity.initial")?,
        mask(a.cpu_affinity_final(), "process.execCPUAffinity.final")?.unwrap_or(ALL_CPUS),
    ))
}

/// A CPU list (`0-3,7`) as a mask.
pub(crate) fn cpu_mask(list: &str, what: &str) -> Result<husk_sys::CpuMask, RuntimeError> {
    let bad = || RuntimeError::Spec(format!("{what}: invalid CPU list {list:?}"));
    let mut m = [0u64; 16];
    for part in list.split(',').map(str::trim) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b || b >= 1024 {
            return Err(bad());
        }
        for cpu in a..=b {
            m[cpu / 64] |= 1 << (cpu % 64);
        }
    }
    Ok(m)
}

/// `linux.memoryPolicy` checked and translated for set_mempolicy(2), as runc >= 1.3 does.
pub(crate) fn mempolicy(
    linux: Option<&oci_spec::runtime::Linux>,
) -> Result<Option<(libc::c_int, Option<husk_sys::CpuMask>)>, RuntimeError> {
    use oci_spec::runtime::{MemoryPolicyFlagType as F, MemoryPolicyModeType as M};
    let Some(p) = linux.and_then(|l| l.memory_policy().as_ref()) else {
        return Ok(None);
    };
    let bad = |why: String| {
        RuntimeError::Spec(format!("linux.memoryPolicy: invalid memory policy: {why}"))
    };
    let nodes = p
        .nodes()
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let (mode, needs_nodes) = match p.mode() {
        M::MpolDefault => (0, Some(false)),
        M::MpolPreferred => (1, None),
        M::MpolBind => (2, Some(true)),
        M::MpolInterleave => (3, Some(true)),
        M::MpolLocal => (4, Some(false)),
        M::MpolPreferredMany => (5, Some(true)),
        M::MpolWeightedInterleave => (6, Some(true)),
    };
    match (needs_nodes, nodes) {
        (Some(true), None) => return Err(bad(format!("mode {} requires nodes", p.mode()))),
        (Some(false), Some(n)) => {
            return Err(bad(format!("mode {} takes no nodes, got {n:?}", p.mode())))
        }
        _ => {}
    }
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            F::MpolFNumaBalancing => 1 << 13,
            F::MpolFRelativeNodes => 1 << 14,
            F::MpolFStaticNodes => 1 << 15,
        };
    }
    if flags & (3 << 14) == 3 << 14 {
        return Err(bad(
            "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other".into(),
        ));
    }
    if mode == 0 && flags != 0 {
        return Err(bad("MPOL_DEFAULT takes no flags".into()));
    }
    let nodes = nodes
        .map(|n| cpu_mask(n, "linux.memoryPolicy.nodes"))
        .transpose()
        .map_err(|_| bad(format!("nodes {:?}: not a node list", nodes.unwrap_or(""))))?;
    Ok(Some((mode | flags, nodes)))
}
