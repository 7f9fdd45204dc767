//! `linux.netDevices` (runtime-spec 1.2): host interfaces moved into the container's network
//! namespace. Each name (the host's, and the optional one inside) must be one the kernel
//! accepts, no two devices may end with the same name inside, and the container needs a network
//! namespace that is not the runtime's own.

use std::os::unix::fs::MetadataExt;

use oci_spec::runtime::{Linux, LinuxNamespaceType};

use super::Namespaces;
use crate::error::{errno_text, SpecError};
use crate::CONFIG_FILE;

const FIELD: &str = "linux.netDevices";

pub(super) fn check_net_devices(linux: &Linux, ns: &Namespaces) -> Result<(), SpecError> {
    let Some(devices) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    let invalid = |msg: String| SpecError::invalid(CONFIG_FILE, FIELD, msg);
    let net = LinuxNamespaceType::Network;
    if !ns.has(net) {
        return Err(invalid(
            "moving network devices requires a network namespace in linux.namespaces".into(),
        ));
    }
    if let Some(joined) = ns.joined(net) {
        let own = std::fs::metadata("/proc/self/ns/net")
            .map_err(|e| invalid(format!("cannot stat /proc/self/ns/net: {}", errno_text(&e))))?;
        if joined == (own.dev(), own.ino()) {
            return Err(invalid(
                "the network namespace given in linux.namespaces is the runtime's own: devices cannot be moved into it".into(),
            ));
        }
    }
    // Sorted, so the message is the same whatever the map's order.
    let mut names: Vec<(&String, &str)> = devices
        .iter()
        .map(|(host, d)| {
            (
                host,
                d.name()
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(host),
            )
        })
        .collect();
    names.sort();
    for (host, inside) in &names {
        if let Some(why) = bad_name(host) {
            return Err(invalid(format!("device name {host:?} is not valid: {why}")));
        }
        if let Some(why) = bad_name(inside) {
            return Err(invalid(format!(
                "{host}.name {inside:?} is not a valid device name: {why}"
            )));
        }
    }
    for (i, (host, inside)) in names.iter().enumerate() {
        if let Some((other, _)) = names[..i].iter().find(|(_, n)| n == inside) {
            return Err(invalid(format!(
                "devices {other:?} and {host:?} would both be named {inside:?} in the container"
            )));
        }
    }
    Ok(())
}

/// Why the kernel would refuse `name` as an interface name (net/core/dev.c dev_valid_name).
fn bad_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() >= 16 {
        Some("it is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("it is \".\" or \"..\"")
    } else if name.contains(['/', ':'])
        || name.bytes().any(|b| b.is_ascii_whitespace() || b == 0x0b)
    {
        Some("it contains '/', ':' or white space")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::bad_name;

    #[test]
    fn kernel_interface_name_rules() {
        for ok in ["eth0", "veth-a.1", "x", "fifteen_chars15"] {
            assert_eq!(bad_name(ok), None, "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "tab\tx",
            "sixteen_chars_16",
        ] {
            assert!(bad_name(bad).is_some(), "{bad:?}");
        }
    }
}
