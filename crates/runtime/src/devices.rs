//! The device cgroup rules a container really gets: the spec's own rules, then an allow rule
//! for every device in `linux.devices`, then the devices every container needs (as runc does).

use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResources, Spec,
};

/// `(type, major, minor, access)`; `None` is the `*` wildcard.
const ALWAYS_ALLOWED: [(LinuxDeviceType, Option<i64>, Option<i64>, &str); 12] = [
    (LinuxDeviceType::C, None, None, "m"),
    (LinuxDeviceType::B, None, None, "m"),
    (LinuxDeviceType::C, Some(1), Some(3), "rwm"), // null
    (LinuxDeviceType::C, Some(1), Some(8), "rwm"), // random
    (LinuxDeviceType::C, Some(1), Some(7), "rwm"), // full
    (LinuxDeviceType::C, Some(5), Some(0), "rwm"), // tty
    (LinuxDeviceType::C, Some(1), Some(5), "rwm"), // zero
    (LinuxDeviceType::C, Some(1), Some(9), "rwm"), // urandom
    (LinuxDeviceType::C, Some(5), Some(1), "rwm"), // console
    (LinuxDeviceType::C, Some(136), None, "rwm"),  // pts/*
    (LinuxDeviceType::C, Some(5), Some(2), "rwm"), // ptmx
    (LinuxDeviceType::C, Some(10), Some(200), "rwm"), // net/tun
];

fn rule(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Option<LinuxDeviceCgroup> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(typ)
        .access(access.to_string());
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().ok()
}

/// `linux.resources` with the device rules completed; `None` when the spec has no resources
/// and no devices to allow beyond the defaults.
pub(crate) fn effective_resources(spec: &Spec) -> Option<LinuxResources> {
    let linux = spec.linux().as_ref()?;
    let mut res = linux.resources().clone().unwrap_or_default();
    let mut rules = res.devices().clone().unwrap_or_default();
    for d in linux.devices().iter().flatten() {
        // The devices controller knows character and block devices only (not FIFOs).
        let typ = match d.typ() {
            LinuxDeviceType::U | LinuxDeviceType::C => LinuxDeviceType::C,
            LinuxDeviceType::B => LinuxDeviceType::B,
            _ => continue,
        };
        rules.extend(rule(typ, Some(d.major()), Some(d.minor()), "rwm"));
    }
    rules.extend(
        ALWAYS_ALLOWED
            .iter()
            .filter_map(|&(t, ma, mi, a)| rule(t, ma, mi, a)),
    );
    res.set_devices(Some(rules));
    Some(res)
}
