//! `process.rlimits`: resource numbers resolved in the parent, setrlimit in the child.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use crate::failure::{Failure, Step};
use crate::HardeningError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rlimit {
    pub resource: u32,
    pub name: &'static str,
    pub soft: u64,
    pub hard: u64,
}

/// The resource number and name of an rlimit type. (oci-spec rejects unknown `RLIMIT_*`
/// names while parsing config.json, so every value here is known.)
fn resource(t: PosixRlimitType) -> (u32, &'static str) {
    use PosixRlimitType::*;
    let (r, n) = match t {
        RlimitCpu => (libc::RLIMIT_CPU, "RLIMIT_CPU"),
        RlimitFsize => (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        RlimitData => (libc::RLIMIT_DATA, "RLIMIT_DATA"),
        RlimitStack => (libc::RLIMIT_STACK, "RLIMIT_STACK"),
        RlimitCore => (libc::RLIMIT_CORE, "RLIMIT_CORE"),
        RlimitRss => (libc::RLIMIT_RSS, "RLIMIT_RSS"),
        RlimitNproc => (libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
        RlimitNofile => (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        RlimitMemlock => (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        RlimitAs => (libc::RLIMIT_AS, "RLIMIT_AS"),
        RlimitLocks => (libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        RlimitSigpending => (libc::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        RlimitMsgqueue => (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        RlimitNice => (libc::RLIMIT_NICE, "RLIMIT_NICE"),
        RlimitRtprio => (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        RlimitRttime => (libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    };
    // RLIMIT_* are c_uint with glibc but c_int with musl.
    #[allow(clippy::unnecessary_cast)]
    (r as u32, n)
}

/// Resolves `process.rlimits`; a type listed twice is an error (runtime-spec).
pub(crate) fn prepare(limits: Option<&Vec<PosixRlimit>>) -> Result<Vec<Rlimit>, HardeningError> {
    let mut out: Vec<Rlimit> = Vec::new();
    for (i, l) in limits.into_iter().flatten().enumerate() {
        let (resource, name) = resource(l.typ());
        if out.iter().any(|o| o.resource == resource) {
            return Err(HardeningError::invalid(
                format!("process.rlimits[{i}].type"),
                format!("duplicate rlimit \"{name}\""),
            ));
        }
        out.push(Rlimit {
            resource,
            name,
            soft: l.soft(),
            hard: l.hard(),
        });
    }
    Ok(out)
}

/// Child: applies every rlimit in order.
pub(crate) fn apply(limits: &[Rlimit]) -> Result<(), Failure> {
    for (i, l) in limits.iter().enumerate() {
        husk_sys::setrlimit(l.resource, l.soft, l.hard)
            .map_err(|e| Failure::new(Step::Rlimit, i as u32, e))?;
    }
    Ok(())
}
