//! Sysctl placement rules (runc's): a sysctl may only be set when the kernel namespace
//! it belongs to is the container's own.

use std::os::unix::fs::MetadataExt;

use oci_spec::runtime::{Linux, LinuxNamespaceType};

use super::Namespaces;
use crate::error::{errno_text, SpecError};
use crate::CONFIG_FILE;

/// Sysctls must live in a namespace the container owns (runc's rules). When several
/// are wrong the alphabetically first is reported, so the message is deterministic.
pub(super) fn check_sysctls(linux: &Linux, ns: &Namespaces) -> Result<(), SpecError> {
    let Some(sysctls) = linux.sysctl() else {
        return Ok(());
    };
    let mut host_net = None;
    let mut first: Option<(&String, String)> = None;
    for key in sysctls.keys() {
        if first.as_ref().is_some_and(|(k, _)| *k < key) {
            continue;
        }
        if let Some(msg) = sysctl_problem(key, ns, &mut host_net)? {
            first = Some((key, msg));
        }
    }
    match first {
        Some((_, msg)) => Err(SpecError::invalid(CONFIG_FILE, "linux.sysctl", msg)),
        None => Ok(()),
    }
}

/// Why `key` cannot be set, if it cannot. `host_net` caches whether a joined network
/// namespace is the runtime's own.
fn sysctl_problem(
    key: &str,
    ns: &Namespaces,
    host_net: &mut Option<bool>,
) -> Result<Option<String>, SpecError> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    // sysctl(8) accepts '/' as the separator: "net/ipv4/ip_forward".
    let dotted;
    let name = match key.find(['.', '/']) {
        Some(at) if key.as_bytes()[at] == b'/' => {
            dotted = key
                .chars()
                .map(|c| match c {
                    '/' => '.',
                    '.' => '/',
                    c => c,
                })
                .collect::<String>();
            dotted.as_str()
        }
        _ => key,
    };
    if IPC.contains(&name) || name.starts_with("fs.mqueue.") {
        if ns.has(LinuxNamespaceType::Ipc) {
            return Ok(None);
        }
        return Ok(Some(format!(
            "sysctl {key:?} requires an ipc namespace in linux.namespaces"
        )));
    }
    if name.starts_with("net.") {
        let net = LinuxNamespaceType::Network;
        if !ns.has(net) {
            return Ok(Some(format!(
                "sysctl {key:?} requires a network namespace in linux.namespaces"
            )));
        }
        if let Some(joined) = ns.joined(net) {
            let is_host = match *host_net {
                Some(is_host) => is_host,
                None => {
                    let own = std::fs::metadata("/proc/self/ns/net").map_err(|e| {
                        let msg = format!("cannot stat /proc/self/ns/net: {}", errno_text(&e));
                        SpecError::invalid(CONFIG_FILE, "linux.sysctl", msg)
                    })?;
                    *host_net.insert(joined == (own.dev(), own.ino()))
                }
            };
            if is_host {
                return Ok(Some(format!(
                    "sysctl {key:?} is not allowed in the host's network namespace"
                )));
            }
        }
        return Ok(None);
    }
    match name {
        "kernel.domainname" if ns.has(LinuxNamespaceType::Uts) => Ok(None),
        "kernel.hostname" if ns.has(LinuxNamespaceType::Uts) => Ok(Some(format!(
            "sysctl {key:?} conflicts with the \"hostname\" field; set that instead"
        ))),
        "kernel.domainname" | "kernel.hostname" => Ok(Some(format!(
            "sysctl {key:?} requires a uts namespace in linux.namespaces"
        ))),
        _ => Ok(Some(format!(
            "sysctl {key:?} is not in a separate kernel namespace"
        ))),
    }
}
