//! `linux.resources.devices` as systemd's `DevicePolicy`/`DeviceAllow` unit properties, the
//! way runc converts them: systemd keeps an allow list only, so the rules are evaluated first
//! (the same emulator as the cgroupfs writers) and the resulting exceptions are named as
//! systemd names devices: `/dev/char/M:m`, a device group from `/proc/devices` (`char-pts`)
//! for a wildcard minor, `char-*` for both wildcards. What systemd cannot express (a deny
//! list, a wildcard major) is left to husk's own device filter, which is installed through
//! cgroupfs afterwards in every case, as runc does.

use husk_systemd::{Property, Value};
use oci_spec::runtime::LinuxDeviceCgroup;

use crate::devices::{self, Emulator, Rule, ANY};
use crate::error::CgroupError;

/// `DevicePolicy` and `DeviceAllow` for `rules`. `proc_devices` is the text of
/// `/proc/devices` (device groups for wildcard-minor rules).
pub(crate) fn properties(
    rules: &[LinuxDeviceCgroup],
    proc_devices: &str,
) -> Result<Vec<Property>, CgroupError> {
    let emu = Emulator::from_rules(&devices::parse_rules(rules)?)?;
    let policy = |p: &str| ("DevicePolicy".to_string(), Value::Str(p.into()));
    let allow = |entries: Vec<Value>| {
        (
            "DeviceAllow".to_string(),
            Value::Array("(ss)".into(), entries),
        )
    };
    if emu.default_allow {
        if emu.exceptions.iter().next().is_none() {
            // Allow everything: systemd's default policy with no list.
            return Ok(vec![policy("auto"), allow(Vec::new())]);
        }
        // A deny list: systemd has none. Deny all in the unit (runc does the same); husk's
        // filter carries the real rules.
        tracing::warn!(
            "systemd has no device deny list: the unit denies all devices, husk's filter applies the rules"
        );
        return Ok(vec![policy("strict"), allow(Vec::new())]);
    }
    let mut entries = Vec::new();
    for rule in emu.exception_rules() {
        match entry_path(&rule, proc_devices) {
            Some(path) => entries.push(Value::Struct(vec![
                Value::Str(path),
                Value::Str(perms(rule.access)),
            ])),
            None => tracing::warn!(
                "systemd cannot name device rule {:?}: husk's filter applies it alone",
                rule.cgroup_string()
            ),
        }
    }
    // The empty list first resets what the unit allowed before (an update), as runc.
    Ok(vec![policy("strict"), allow(Vec::new()), allow(entries)])
}

/// "rwm" in systemd's order.
fn perms(access: u8) -> String {
    [
        (devices::ACC_READ, 'r'),
        (devices::ACC_WRITE, 'w'),
        (devices::ACC_MKNOD, 'm'),
    ]
    .iter()
    .filter(|(bit, _)| access & bit != 0)
    .map(|(_, c)| *c)
    .collect()
}

/// How systemd names the devices of an allow rule; `None` when it cannot (`*:N`).
fn entry_path(rule: &Rule, proc_devices: &str) -> Option<String> {
    let kind = match rule.typ {
        b'c' => "char",
        b'b' => "block",
        _ => return None,
    };
    match (rule.major, rule.minor) {
        (ANY, ANY) => Some(format!("{kind}-*")),
        (ANY, _) => None,
        (major, ANY) => device_group(proc_devices, kind, major).map(|g| format!("{kind}-{g}")),
        (major, minor) => Some(format!("/dev/{kind}/{major}:{minor}")),
    }
}

/// The name `/proc/devices` gives major `major` among its `kind` ("char"/"block") devices.
fn device_group(proc_devices: &str, kind: &str, major: i64) -> Option<String> {
    let header = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    proc_devices
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (n, name) = l.trim().split_once(char::is_whitespace)?;
            (n.parse::<i64>().ok()? == major).then(|| name.trim().to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};

    const PROC_DEVICES: &str =
        "Character devices:\n  1 mem\n  5 /dev/tty\n136 pts\n\nBlock devices:\n  7 loop\n  8 sd\n";

    fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    fn allow_list(p: &[Property]) -> Vec<(String, String)> {
        let Some((_, Value::Array(_, items))) = p.last() else {
            panic!("{p:?}")
        };
        items
            .iter()
            .map(|i| match i {
                Value::Struct(f) => (
                    f[0].as_str().unwrap().to_string(),
                    f[1].as_str().unwrap().to_string(),
                ),
                _ => panic!(),
            })
            .collect()
    }

    #[test]
    fn allow_lists_are_named_as_systemd_names_devices() {
        use LinuxDeviceType::{A, B, C};
        let rules = [
            rule(false, A, None, None, "rwm"),
            rule(true, C, Some(1), Some(3), "rwm"),
            rule(true, C, Some(136), None, "rw"),
            rule(true, B, Some(7), None, "r"),
            rule(true, B, None, None, "m"),
            rule(true, C, None, Some(9), "r"),
            rule(true, C, Some(250), None, "r"),
        ];
        let p = properties(&rules, PROC_DEVICES).unwrap();
        assert_eq!(p[0], ("DevicePolicy".into(), Value::Str("strict".into())));
        let mut got = allow_list(&p);
        got.sort();
        let want = [
            ("/dev/char/1:3", "rwm"),
            ("block-*", "m"),
            ("block-loop", "r"),
            ("char-pts", "rw"),
        ];
        assert_eq!(
            got,
            want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
        );
    }

    #[test]
    fn allow_all_and_deny_lists() {
        use LinuxDeviceType::{A, C};
        let p = properties(&[rule(true, A, None, None, "rwm")], PROC_DEVICES).unwrap();
        assert_eq!(p[0], ("DevicePolicy".into(), Value::Str("auto".into())));
        let p = properties(
            &[
                rule(true, A, None, None, "rwm"),
                rule(false, C, Some(1), Some(3), "rwm"),
            ],
            PROC_DEVICES,
        )
        .unwrap();
        assert_eq!(p[0], ("DevicePolicy".into(), Value::Str("strict".into())));
        assert!(allow_list(&p).is_empty());
    }
}
