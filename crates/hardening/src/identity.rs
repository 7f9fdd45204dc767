//! process.user: uid, gid, additional groups and umask.

use oci_spec::runtime::User;

use crate::failure::{Failure, Step};

/// runc's umask when process.user.umask is absent.
const DEFAULT_UMASK: u32 = 0o022;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    pub umask: libc::mode_t,
    /// False when the container's user namespace has setgroups "deny".
    pub setgroups: bool,
}

impl Identity {
    pub fn new(user: &User) -> Identity {
        Identity {
            uid: user.uid(),
            gid: user.gid(),
            groups: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask().unwrap_or(DEFAULT_UMASK) as libc::mode_t,
            setgroups: true,
        }
    }

    /// Child: setgroups (unless denied), setresgid, setresuid.
    pub fn switch(&self) -> Result<(), Failure> {
        if self.setgroups {
            husk_sys::setgroups(&self.groups).map_err(|e| Failure::new(Step::Setgroups, 0, e))?;
        }
        husk_sys::setresgid(self.gid).map_err(|e| Failure::new(Step::Setgid, 0, e))?;
        husk_sys::setresuid(self.uid).map_err(|e| Failure::new(Step::Setuid, 0, e))
    }
}
