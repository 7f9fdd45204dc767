//! Turning the init's compact failure reports into one-line messages that name the step and
//! the object (mount, sysctl, hook, program) that failed.

use husk_sys::Errno;

use crate::child::Step;
use crate::plan::ChildPlan;
use crate::protocol::Domain;

pub(crate) fn failure(
    plan: &ChildPlan,
    domain: Domain,
    step: u16,
    index: u32,
    errno: Errno,
) -> String {
    match domain {
        Domain::Rootfs => match (husk_rootfs::Step::from_u16(step), &plan.init) {
            (Some(step), Some(init)) => {
                init.rootfs
                    .describe(&husk_rootfs::Failure { step, index, errno })
            }
            _ => format!("rootfs setup step {step}: {errno}"),
        },
        Domain::Hardening => match husk_hardening::Step::try_from(step).ok() {
            Some(step) => {
                husk_hardening::Failure { step, index, errno }.describe(&plan.process.hardening)
            }
            None => format!("security setup step {step}: {errno}"),
        },
        Domain::Runtime => runtime_step(plan, step, index, errno),
    }
}

fn runtime_step(plan: &ChildPlan, step: u16, index: u32, errno: Errno) -> String {
    let i = index as usize;
    let Some(step) = Step::from_u16(step) else {
        return format!("init step {step}: {errno}");
    };
    let hook = |hooks: Option<&Vec<crate::plan::ChildHook>>, kind: &str| {
        let path = hooks
            .and_then(|h| h.get(i))
            .map_or_else(|| "?".into(), |h| h.path.to_string_lossy().into_owned());
        format!(
            "error running {kind} hook #{i}: {} (hook {path})",
            hook_reason(errno)
        )
    };
    match step {
        Step::Fds => format!("close inherited file descriptors: {errno}"),
        Step::Sync => format!("talk to husk over the sync socket: {errno}"),
        Step::Setns if errno.0 == libc::ESRCH => {
            "join the container's namespaces: the container stopped (its init process exited)"
                .to_string()
        }
        Step::Setns if index == u32::MAX => format!("join the container's namespaces: {errno}"),
        Step::Setns => match plan.init.as_ref().and_then(|x| x.child_joins.get(i)) {
            Some(j) => {
                let name = crate::namespaces::proc_name(j.flag);
                let hint = if errno.0 == libc::EPERM && j.flag != libc::CLONE_NEWUSER {
                    " (a namespace owned by a user namespace the container is not in, or \
                     the host's: a rootless container can only join those of its own user \
                     namespace)"
                } else {
                    ""
                };
                format!("join {name} namespace given by path in linux.namespaces: {errno}{hint}")
            }
            None => format!("join namespace #{i}: {errno}"),
        },
        Step::Unshare => format!("create namespaces: {errno}"),
        Step::BecomeRoot => format!("become root in the new user namespace: {errno}"),
        Step::Hostname => format!("set hostname: {errno}"),
        Step::Domainname => format!("set domainname: {errno}"),
        Step::Sysctl => {
            let name = plan
                .init
                .as_ref()
                .and_then(|init| init.sysctls.get(i))
                .map_or_else(|| "?".into(), |s| s.path.to_string_lossy().into_owned());
            format!("write sysctl {name}: {errno}")
        }
        Step::Console => format!("set up the console: {errno}"),
        Step::Cwd if index == 1 => {
            format!(
                "cwd {:?} {} is outside the container's root: {errno}",
                plan.process.cwd, plan.process.cwd_origin
            )
        }
        Step::Cwd => format!(
            "chdir to cwd {:?} {}: {errno}",
            plan.process.cwd, plan.process.cwd_origin
        ),
        Step::Lookup => exec_lookup(plan, errno),
        Step::CreateContainerHook => hook(
            plan.init.as_ref().map(|i| &i.create_container_hooks),
            "createContainer",
        ),
        Step::StartContainerHook => hook(
            plan.init.as_ref().map(|i| &i.start_container_hooks),
            "startContainer",
        ),
        Step::StartWait => format!("wait for start: {errno}"),
        Step::Keyring => format!("join a new session keyring: {errno}"),
        Step::CgroupJoin => {
            let file = plan
                .cgroup_tasks
                .get(i)
                .map_or_else(|| "?".into(), |p| p.to_string_lossy().into_owned());
            format!("join cgroup ({file}): {errno}")
        }
        // runc's wording: `exec /run.sh: no such file or directory`.
        Step::Affinity => format!(
            "set CPU affinity (process.execCPUAffinity.{}): {errno}",
            if index == 0 { "initial" } else { "final" }
        ),
        Step::MemPolicy => {
            format!("set_mempolicy (linux.memoryPolicy): invalid memory policy: {errno}")
        }
        Step::Exec => format!("exec {}: {errno}", plan.process.exe.arg0.to_string_lossy()),
    }
}

/// runc's wording, which Podman maps to exit codes 127 and 126.
fn exec_lookup(plan: &ChildPlan, errno: Errno) -> String {
    let arg0 = plan.process.exe.arg0.to_string_lossy();
    if plan.process.exe.search.is_empty() {
        format!("exec: {arg0:?}: stat {arg0}: {errno}")
    } else if errno.0 == libc::ENOENT {
        format!("exec: {arg0:?}: executable file not found in $PATH")
    } else {
        format!("exec: {arg0:?}: {errno}")
    }
}

/// Why a hook the init ran failed: its exit status (see `child::HOOK_STATUS`), a timeout, or
/// the error starting or waiting for it.
fn hook_reason(errno: Errno) -> String {
    match errno.0 {
        libc::ETIMEDOUT => "timed out".to_string(),
        e if e & crate::child::HOOK_STATUS != 0 => wait_status(e & 0xffff),
        _ => errno.to_string(),
    }
}

pub(crate) fn wait_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

/// A failure the init reports after it was started, to a `husk start` that has only the
/// container's record (not the plan).
pub(crate) fn after_start(
    spec: &oci_spec::runtime::Spec,
    domain: Domain,
    step: u16,
    index: u32,
    errno: Errno,
) -> String {
    let arg0 = spec
        .process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    match (domain, Step::from_u16(step)) {
        (Domain::Runtime, Some(Step::Exec)) => format!("exec {arg0}: {errno}"),
        (Domain::Runtime, Some(Step::StartContainerHook)) => {
            let path = spec
                .hooks()
                .as_ref()
                .and_then(|h| h.start_container().as_ref())
                .and_then(|v| v.get(index as usize))
                .map_or_else(|| "?".into(), |h| h.path().display().to_string());
            format!(
                "error running startContainer hook #{index}: {} (hook {path})",
                hook_reason(errno)
            )
        }
        (Domain::Hardening, _) => format!("install seccomp filter: {errno}"),
        _ => format!("start step {step}: {errno}"),
    }
}
