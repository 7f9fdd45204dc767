//! What this build of husk supports, for `husk features`: derived from the tables and
//! parsers the hardening code itself uses, and filtered by the running kernel.

use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator};
use serde::de::DeserializeOwned;

use crate::seccomp::supports_arch;

const ACTIONS: [&str; 9] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];
const OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];
const ARCHS: [&str; 6] = [
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_NATIVE",
];
const FLAGS: [&str; 4] = [
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

fn parses<T: DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// Capability names the running kernel knows (husk's table cut at `cap_last_cap`).
pub fn capabilities() -> Vec<String> {
    crate::caps::known_names()
}

pub struct Seccomp {
    pub actions: Vec<String>,
    pub operators: Vec<String>,
    pub archs: Vec<String>,
    pub flags: Vec<String>,
}

/// Every seccomp action, operator and flag husk's compiler handles (its matches over the OCI
/// enums are exhaustive), and the architectures it has syscall tables for.
pub fn seccomp() -> Seccomp {
    let keep = |names: &[&str], ok: &dyn Fn(&str) -> bool| {
        names
            .iter()
            .filter(|n| ok(n))
            .map(|n| n.to_string())
            .collect()
    };
    Seccomp {
        actions: keep(&ACTIONS, &|n| parses::<LinuxSeccompAction>(n).is_some()),
        operators: keep(&OPERATORS, &|n| parses::<LinuxSeccompOperator>(n).is_some()),
        archs: keep(&ARCHS, &|n| parses::<Arch>(n).is_some_and(supports_arch)),
        flags: keep(&FLAGS, &|n| parses::<LinuxSeccompFilterFlag>(n).is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_value_is_known_to_oci_spec() {
        let s = seccomp();
        assert_eq!(s.actions.len(), ACTIONS.len());
        assert_eq!(s.operators.len(), OPERATORS.len());
        assert_eq!(s.flags.len(), FLAGS.len());
        assert!(
            s.archs.contains(&"SCMP_ARCH_X86_64".to_string())
                || s.archs.contains(&"SCMP_ARCH_AARCH64".to_string())
        );
        assert!(capabilities().contains(&"CAP_SYS_ADMIN".to_string()));
    }
}
