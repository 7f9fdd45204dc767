//! Running without privileges: runc's `--rootless` (`auto`, `true`, `false`) and what it
//! changes. A rootless husk makes the container's cgroup when it can (a delegated cgroup v2
//! subtree the user owns) and otherwise runs the container without one, unless the spec asks
//! for limits, which need a cgroup: then it says what the user lacks.

use husk_cgroups::{CgroupError, Manager};
use husk_sys::Errno;
use oci_spec::runtime::{LinuxResources, Spec};

use crate::RuntimeError;

/// The `--rootless` global flag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rootless {
    /// Rootless when not root, or root only inside a user namespace (as runc decides).
    #[default]
    Auto,
    True,
    False,
}

impl Rootless {
    /// runc's values: `true`, `false`, `auto`.
    pub fn parse(s: &str) -> Option<Rootless> {
        Some(match s {
            "auto" => Rootless::Auto,
            "true" => Rootless::True,
            "false" => Rootless::False,
            _ => return None,
        })
    }

    /// Whether cgroup permission failures are tolerated.
    pub fn active(self) -> bool {
        match self {
            Rootless::True => true,
            Rootless::False => false,
            Rootless::Auto => husk_sys::geteuid() != 0 || in_user_namespace(),
        }
    }
}

/// Whether husk runs in a user namespace other than the initial one (its uid_map is not the
/// identity over all ids).
pub(crate) fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
        let f: Vec<&str> = m.split_whitespace().collect();
        f != ["0", "0", "4294967295"]
    })
}

/// Whether husk may enter a namespace and come back (root in the initial user namespace).
pub(crate) fn parent_may_switch() -> bool {
    husk_sys::geteuid() == 0 && !in_user_namespace()
}

/// The first resource setting the spec asks for (which needs a cgroup), by its JSON field.
fn wanted_resource(r: &LinuxResources) -> Option<&'static str> {
    let set = [
        (r.memory().is_some(), "memory"),
        (r.cpu().is_some(), "cpu"),
        (r.pids().is_some(), "pids"),
        (r.block_io().is_some(), "blockIO"),
        (
            r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty()),
            "hugepageLimits",
        ),
        (r.network().is_some(), "network"),
        (r.rdma().as_ref().is_some_and(|m| !m.is_empty()), "rdma"),
        (
            r.unified().as_ref().is_some_and(|m| !m.is_empty()),
            "unified",
        ),
    ];
    set.into_iter().find(|(on, _)| *on).map(|(_, name)| name)
}

fn denied(e: &CgroupError) -> bool {
    let errno = match e {
        CgroupError::Io { errno, .. } | CgroupError::Write { errno, .. } => *errno,
        _ => return false,
    };
    matches!(
        errno,
        Errno(libc::EACCES) | Errno(libc::EPERM) | Errno(libc::EROFS)
    )
}

/// A rootless container's cgroup could not be made (`err`): go on without one when that is
/// only for lack of permission and the spec sets no limits; else say what is missing.
pub(crate) fn without_cgroup(
    err: CgroupError,
    cgroup: &Manager,
    spec: &Spec,
) -> Result<Option<Manager>, RuntimeError> {
    if !denied(&err) {
        return Err(RuntimeError::Cgroup(err));
    }
    // Remove what was made before the refusal (v1 makes one directory per hierarchy).
    let _ = cgroup.destroy();
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    if let Some(field) = resources.and_then(wanted_resource) {
        let user = std::env::var("USER").unwrap_or_else(|_| husk_sys::geteuid().to_string());
        return Err(RuntimeError::Spec(format!(
            "linux.resources.{field}: a rootless container needs a cgroup for its limits, but \
             user {user} has no delegated cgroup ({err}): run it in a cgroup v2 subtree the \
             user owns (systemd: Delegate=yes), or drop the limits"
        )));
    }
    tracing::debug!("rootless: no cgroup ({err})");
    Ok(None)
}
