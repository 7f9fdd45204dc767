//! `linux.seccomp`: compiled to classic BPF in the parent, loaded with seccomp(2) in the child.

mod arch;
mod bpf;
mod compile;
mod rules;
#[cfg(any(test, target_arch = "aarch64"))]
mod syscalls_aarch64;
#[cfg(any(test, target_arch = "aarch64"))]
mod syscalls_arm;
#[cfg(any(test, target_arch = "x86_64"))]
mod syscalls_i386;
#[cfg(any(test, target_arch = "x86_64"))]
mod syscalls_x32;
#[cfg(any(test, target_arch = "x86_64"))]
mod syscalls_x86_64;

use std::os::fd::OwnedFd;

use oci_spec::runtime::LinuxSeccomp;

use crate::failure::{Failure, Step};
use crate::{sys, HardeningError};
use arch::Host;

/// Whether profiles may name `arch` on this host (husk has its syscall table).
pub(crate) fn supports_arch(arch: oci_spec::runtime::Arch) -> bool {
    Host::CURRENT.is_some_and(|h| arch::Abi::from_oci(arch, h.native).is_some())
}

/// A compiled filter and the seccomp(2) flags to load it with.
pub(crate) struct Filter {
    program: Vec<libc::sock_filter>,
    flags: u32,
}

impl Filter {
    pub fn new(spec: &LinuxSeccomp) -> Result<Filter, HardeningError> {
        let host = Host::CURRENT.ok_or_else(|| {
            HardeningError::invalid(
                "linux.seccomp",
                "seccomp filters are not supported on this architecture",
            )
        })?;
        Self::for_host(spec, host)
    }

    fn for_host(spec: &LinuxSeccomp, host: Host) -> Result<Filter, HardeningError> {
        let profile = rules::build(spec, host)?;
        let program = compile::compile(&profile)?;
        Ok(Filter {
            program,
            flags: profile.flags,
        })
    }

    /// The profile sends syscalls to a seccomp agent: loading returns a listener fd.
    pub fn notify(&self) -> bool {
        self.flags & rules::FLAG_NEW_LISTENER != 0
    }

    pub fn instructions(&self) -> usize {
        self.program.len()
    }

    /// Child: loads the filter (needs no_new_privs or CAP_SYS_ADMIN).
    pub fn install(&self) -> Result<Option<OwnedFd>, Failure> {
        sys::seccomp_set_filter(self.flags, &self.program)
            .map_err(|e| Failure::new(Step::Seccomp, 0, e))
    }
}

#[cfg(test)]
mod tests;
