//! The device cgroup rules a container really gets: the spec's own rules, then the devices
//! every container needs (as runc does).

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

/// `linux.resources` with the device rules completed: the spec's own rules, then the devices
/// every container may use ([`ALWAYS_ALLOWED`], as runc appends them). Devices listed in
/// `linux.devices` are created in the container but get no rule of their own: the cgroup
/// policy is what `resources.devices` says (runc does the same), so a deny-all stays a
/// deny-all for them. A default is left out when the spec has a rule naming that exact device
/// (an explicit deny of `/dev/tty`, say, is kept). `None` when the spec has no `linux`.
pub(crate) fn effective_resources(spec: &Spec) -> Option<LinuxResources> {
    let linux = spec.linux().as_ref()?;
    let mut res = linux.resources().clone().unwrap_or_default();
    let mut rules = res.devices().clone().unwrap_or_default();
    let named = |t: LinuxDeviceType, ma: Option<i64>, mi: Option<i64>| {
        ma.is_some()
            && mi.is_some()
            && rules
                .iter()
                .any(|r| r.typ() == Some(t) && r.major() == ma && r.minor() == mi)
    };
    let defaults: Vec<LinuxDeviceCgroup> = ALWAYS_ALLOWED
        .iter()
        .filter(|&&(t, ma, mi, _)| !named(t, ma, mi))
        .filter_map(|&(t, ma, mi, a)| rule(t, ma, mi, a))
        .collect();
    rules.extend(defaults);
    res.set_devices(Some(rules));
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn linux_devices_get_no_allow_rule() {
        let s = spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "linux": {
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "devices": [{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]
            }
        }));
        let rules = effective_resources(&s).unwrap().devices().clone().unwrap();
        assert!(!rules
            .iter()
            .any(|r| r.major() == Some(1) && r.minor() == Some(11)));
        assert!(rules
            .iter()
            .any(|r| r.major() == Some(1) && r.minor() == Some(3)));
    }

    #[test]
    fn explicit_deny_of_a_default_device_is_kept() {
        let s = spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "linux": {"resources": {"devices": [
                {"allow": false, "access": "rwm"},
                {"allow": false, "type": "c", "major": 5, "minor": 0, "access": "rwm"}
            ]}}
        }));
        let rules = effective_resources(&s).unwrap().devices().clone().unwrap();
        let tty: Vec<_> = rules
            .iter()
            .filter(|r| r.major() == Some(5) && r.minor() == Some(0))
            .collect();
        assert_eq!(tty.len(), 1);
        assert!(!tty[0].allow());
    }
}
