//! Process hardening for the container's init: rlimits, no_new_privs, user and group switch,
//! capabilities, seccomp, LSM exec labels and scheduling.
//!
//! [`Plan::new`] runs in the parent before `clone`: it validates the spec and prepares every
//! value (capability masks, the compiled seccomp BPF program, label strings). The `apply_*`,
//! `set_*`, `finalize_identity` and `install_seccomp` methods run in the cloned child and only
//! make system calls: no allocation, locks or logging. They report a [`Failure`] the child can
//! send to the parent as bytes, which [`Failure::describe`] turns into a message.

mod caps;
mod failure;
pub mod features;
mod identity;
mod lsm;
mod rlimits;
mod sched;
mod seccomp;
mod sys;

use std::os::fd::OwnedFd;

use oci_spec::runtime::{Linux, Process};
use tracing::debug;

pub use failure::{Failure, Step, AMBIENT_CLEAR_ALL, FAILURE_BYTES};

/// Errors found while building a [`Plan`] from the spec.
#[derive(Debug, thiserror::Error)]
pub enum HardeningError {
    /// A spec field husk cannot honour; `field` is its JSON path.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("linux.seccomp: the compiled filter has {0} instructions, more than the kernel's limit of 4096")]
    FilterTooLong(usize),
    #[error("linux.seccomp: internal filter compiler error: {0}")]
    Compiler(&'static str),
}

impl HardeningError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> HardeningError {
        HardeningError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Everything the child applies between clone and execve, prepared in the parent.
pub struct Plan {
    rlimits: Vec<rlimits::Rlimit>,
    no_new_privs: bool,
    identity: identity::Identity,
    caps: caps::CapSets,
    seccomp: Option<seccomp::Filter>,
    labels: lsm::Labels,
    scheduling: sched::Scheduling,
}

impl Plan {
    /// Built in the parent from the spec's process and linux sections; all validation and
    /// all allocation happen here.
    pub fn new(process: &Process, linux: Option<&Linux>) -> Result<Plan, HardeningError> {
        let seccomp = linux
            .and_then(|l| l.seccomp().as_ref())
            .map(seccomp::Filter::new)
            .transpose()?;
        if let Some(f) = &seccomp {
            debug!(
                "seccomp filter compiled: {} instructions, notify: {}",
                f.instructions(),
                f.notify()
            );
        }
        Ok(Plan {
            rlimits: rlimits::prepare(process.rlimits().as_ref())?,
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            identity: identity::Identity::new(process.user()),
            caps: caps::CapSets::new(process.capabilities().as_ref()),
            seccomp,
            labels: lsm::Labels::new(
                process.apparmor_profile().as_ref(),
                process.selinux_label().as_ref(),
            )?,
            scheduling: sched::Scheduling::new(
                process.io_priority().as_ref(),
                process.scheduler().as_ref(),
                linux.and_then(|l| l.personality().as_ref()),
            )?,
        })
    }

    /// Whether `finalize_identity` calls setgroups(2). Set to false when the container's user
    /// namespace has `setgroups` set to "deny" (the kernel would refuse the call).
    pub fn set_setgroups_allowed(&mut self, allowed: bool) {
        self.identity.setgroups = allowed;
    }

    pub fn no_new_privs(&self) -> bool {
        self.no_new_privs
    }

    pub fn has_seccomp(&self) -> bool {
        self.seccomp.is_some()
    }

    /// The filter uses SCMP_ACT_NOTIFY: `install_seccomp` returns a listener fd for the
    /// seccomp agent.
    pub fn seccomp_notify(&self) -> bool {
        self.seccomp.as_ref().is_some_and(seccomp::Filter::notify)
    }

    // ---- child side: allocation-free, async-signal-safe ----

    /// Child: process.rlimits, in order.
    pub fn apply_rlimits(&self) -> Result<(), Failure> {
        rlimits::apply(&self.rlimits)
    }

    /// Child: PR_SET_NO_NEW_PRIVS when process.noNewPrivileges is true.
    pub fn set_no_new_privs(&self) -> Result<(), Failure> {
        if !self.no_new_privs {
            return Ok(());
        }
        husk_sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0)
            .map_err(|e| Failure::new(Step::NoNewPrivs, 0, e))
    }

    /// Child: switches identity and capabilities, in this order: drop the bounding set,
    /// PR_SET_KEEPCAPS(1), setgroups, setresgid, setresuid, PR_SET_KEEPCAPS(0),
    /// capset(effective, permitted, inheritable), ambient (clear, then raise each), umask.
    /// A non-root user keeps its ambient capabilities across execve.
    pub fn finalize_identity(&self) -> Result<(), Failure> {
        self.caps.drop_bounding()?;
        husk_sys::prctl(libc::PR_SET_KEEPCAPS, 1, 0)
            .map_err(|e| Failure::new(Step::KeepCaps, 1, e))?;
        self.identity.switch()?;
        husk_sys::prctl(libc::PR_SET_KEEPCAPS, 0, 0)
            .map_err(|e| Failure::new(Step::KeepCaps, 0, e))?;
        self.caps.capset()?;
        self.caps.set_ambient()?;
        husk_sys::umask(self.identity.umask);
        Ok(())
    }

    /// Child: loads the seccomp filter, if any. Returns the SECCOMP_FILTER_FLAG_NEW_LISTENER
    /// descriptor when the profile uses SCMP_ACT_NOTIFY. Needs no_new_privs or CAP_SYS_ADMIN.
    pub fn install_seccomp(&self) -> Result<Option<OwnedFd>, Failure> {
        match &self.seccomp {
            Some(f) => f.install(),
            None => Ok(None),
        }
    }

    /// Child: AppArmor "exec <profile>" and the SELinux exec label, for the next execve.
    pub fn apply_lsm_exec_label(&self) -> Result<(), Failure> {
        self.labels.apply()
    }

    /// Child: process.ioPriority (ioprio_set), process.scheduler (sched_setattr),
    /// linux.personality (personality).
    pub fn apply_scheduling(&self) -> Result<(), Failure> {
        self.scheduling.apply()
    }
}

impl Failure {
    /// Parent side: a one-line message naming the step and item, ending in the errno text
    /// ("operation not permitted", "permission denied", ... as Podman expects).
    pub fn describe(&self, plan: &Plan) -> String {
        let what = match self.step {
            Step::Rlimit => match plan.rlimits.get(self.index as usize) {
                Some(l) => format!("setrlimit {}", l.name),
                None => format!("setrlimit (rlimit #{})", self.index),
            },
            Step::NoNewPrivs => "prctl(PR_SET_NO_NEW_PRIVS)".to_string(),
            Step::Bounding => format!(
                "drop {} from the capability bounding set",
                caps::name(self.index)
            ),
            Step::KeepCaps => format!("prctl(PR_SET_KEEPCAPS, {})", self.index),
            Step::Setgroups => format!("setgroups {:?}", plan.identity.groups),
            Step::Setgid => format!("setresgid {}", plan.identity.gid),
            Step::Setuid => format!("setresuid {}", plan.identity.uid),
            Step::Capset => format!(
                "capset (effective {:#x}, permitted {:#x}, inheritable {:#x})",
                plan.caps.effective, plan.caps.permitted, plan.caps.inheritable
            ),
            Step::Ambient if self.index == AMBIENT_CLEAR_ALL => {
                "clear the ambient capability set".to_string()
            }
            Step::Ambient => format!("raise ambient capability {}", caps::name(self.index)),
            Step::Seccomp => "load the seccomp filter".to_string(),
            Step::Lsm if self.index == lsm::SELINUX => {
                format!(
                    "set SELinux exec label \"{}\"",
                    plan.labels.selinux_label.as_deref().unwrap_or("")
                )
            }
            Step::Lsm => {
                format!(
                    "set AppArmor exec profile \"{}\"",
                    plan.labels.apparmor_profile.as_deref().unwrap_or("")
                )
            }
            Step::IoPriority => match &plan.scheduling.ioprio {
                Some((_, desc)) => format!("ioprio_set {desc}"),
                None => "ioprio_set".to_string(),
            },
            Step::Scheduler => match &plan.scheduling.sched {
                Some((_, policy)) => format!("sched_setattr {policy}"),
                None => "sched_setattr".to_string(),
            },
            Step::Personality => match plan.scheduling.personality {
                Some((_, name)) => format!("personality {name}"),
                None => "personality".to_string(),
            },
        };
        format!("{what}: {}", self.errno)
    }
}

#[cfg(test)]
mod tests;
