//! AppArmor profile and SELinux process label, applied on the next execve.

use std::ffi::CStr;
use std::path::Path;

use crate::failure::{Failure, Step};
use crate::HardeningError;

const APPARMOR_EXEC: &CStr = c"/proc/thread-self/attr/apparmor/exec";
const APPARMOR_EXEC_FALLBACK: &CStr = c"/proc/self/attr/exec";
const SELINUX_EXEC: &CStr = c"/proc/thread-self/attr/exec";

/// `Failure::index` values of a [`Step::Lsm`] failure.
pub(crate) const APPARMOR: u32 = 0;
pub(crate) const SELINUX: u32 = 1;

/// The prepared bytes to write: "exec <profile>" and the SELinux label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Labels {
    pub apparmor_profile: Option<String>,
    apparmor: Option<Vec<u8>>,
    pub selinux_label: Option<String>,
}

impl Labels {
    pub fn new(
        apparmor: Option<&String>,
        selinux: Option<&String>,
    ) -> Result<Labels, HardeningError> {
        let apparmor = apparmor.filter(|p| !p.is_empty());
        let selinux = selinux.filter(|l| !l.is_empty());
        if let Some(p) = apparmor {
            if p.contains('\0') {
                return Err(HardeningError::invalid(
                    "process.apparmorProfile",
                    "contains a NUL byte",
                ));
            }
            if !apparmor_enabled() {
                return Err(HardeningError::invalid(
                    "process.apparmorProfile",
                    format!("profile \"{p}\" is set but AppArmor is not enabled on this host"),
                ));
            }
        }
        if let Some(l) = selinux {
            if l.contains('\0') {
                return Err(HardeningError::invalid(
                    "process.selinuxLabel",
                    "contains a NUL byte",
                ));
            }
            if !Path::new("/sys/fs/selinux/enforce").exists() {
                return Err(HardeningError::invalid(
                    "process.selinuxLabel",
                    format!("label \"{l}\" is set but SELinux is disabled or not supported on this host"),
                ));
            }
        }
        Ok(Labels {
            apparmor: apparmor.map(|p| format!("exec {p}").into_bytes()),
            apparmor_profile: apparmor.cloned(),
            selinux_label: selinux.cloned(),
        })
    }

    /// Child: writes the exec-time labels (after /proc of the container is mounted).
    pub fn apply(&self) -> Result<(), Failure> {
        if let Some(data) = &self.apparmor {
            let first = husk_sys::write_file_at(husk_sys::CWD, APPARMOR_EXEC, data);
            match first {
                Err(e) if e.0 == libc::ENOENT => {
                    husk_sys::write_file_at(husk_sys::CWD, APPARMOR_EXEC_FALLBACK, data)
                }
                other => other,
            }
            .map_err(|e| Failure::new(Step::Lsm, APPARMOR, e))?;
        }
        if let Some(label) = &self.selinux_label {
            husk_sys::write_file_at(husk_sys::CWD, SELINUX_EXEC, label.as_bytes())
                .map_err(|e| Failure::new(Step::Lsm, SELINUX, e))?;
        }
        Ok(())
    }
}

fn apparmor_enabled() -> bool {
    std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"))
}
