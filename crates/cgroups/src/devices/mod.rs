//! Device access rules (`linux.resources.devices`).
//!
//! The rules are evaluated by an emulator of the cgroup v1 devices controller, exactly as runc
//! does for both versions: starting from "deny everything", each rule is applied in order, a
//! type "a" rule resets the whole list to allow-all or deny-all, and removing part of a
//! wildcard exception ("punching a hole") is refused instead of being silently ignored.
//! v1 writes the minimal transition from the cgroup's current `devices.list` to the result;
//! v2 compiles the result into an eBPF program ([`ebpf`]).

pub(crate) mod ebpf;

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::CgroupError;
use crate::fsx::{self, Ver};

/// Access bits, the same values the eBPF device context uses.
pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
pub(crate) const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Wildcard major or minor number.
pub(crate) const ANY: i64 = -1;

/// One device rule: type `b'a'`, `b'b'` or `b'c'`, numbers ([`ANY`] for "*"), access bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub typ: u8,
    pub major: i64,
    pub minor: i64,
    pub access: u8,
    pub allow: bool,
}

fn access_string(access: u8) -> String {
    let mut s = String::with_capacity(3);
    for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
        if access & bit != 0 {
            s.push(c);
        }
    }
    s
}

fn num(n: i64) -> String {
    if n == ANY {
        "*".into()
    } else {
        n.to_string()
    }
}

impl Rule {
    /// The rule as `devices.allow`/`devices.deny`/`devices.list` spell it: "c 1:3 rwm".
    pub fn cgroup_string(&self) -> String {
        format!(
            "{} {}:{} {}",
            self.typ as char,
            num(self.major),
            num(self.minor),
            access_string(self.access)
        )
    }
}

/// Converts and validates the OCI rules.
pub(crate) fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, CgroupError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let typ = match r.typ() {
                None | Some(LinuxDeviceType::A) => b'a',
                Some(LinuxDeviceType::B) => b'b',
                Some(LinuxDeviceType::C) => b'c',
                Some(t) => {
                    return Err(CgroupError::Config(format!(
                        "devices[{i}]: invalid cgroup device type {:?}",
                        t.as_str()
                    )))
                }
            };
            let access_str = r.access().as_deref().unwrap_or("");
            if access_str.is_empty() {
                return Err(CgroupError::Config(format!(
                    "devices[{i}]: device access field cannot be empty"
                )));
            }
            let mut access = 0;
            for c in access_str.chars() {
                access |= match c {
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    'm' => ACC_MKNOD,
                    _ => {
                        return Err(CgroupError::Config(format!(
                            "devices[{i}]: invalid device access {access_str:?}"
                        )))
                    }
                };
            }
            let number = |n: Option<i64>, what: &str| match n {
                None | Some(-1) => Ok(ANY),
                Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(n),
                Some(n) => Err(CgroupError::Config(format!(
                    "devices[{i}]: invalid {what} number {n}"
                ))),
            };
            Ok(Rule {
                typ,
                major: number(r.major(), "major")?,
                minor: number(r.minor(), "minor")?,
                access,
                allow: r.allow(),
            })
        })
        .collect()
}

/// Exceptions keyed by (major, minor, type), in the order they were first added: the spec
/// says device rules are applied in the listed order, and `devices.list` shows that order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Exceptions(Vec<((i64, i64, u8), u8)>);

impl Exceptions {
    pub fn get(&self, key: &(i64, i64, u8)) -> Option<&u8> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, a)| a)
    }
    fn get_mut(&mut self, key: &(i64, i64, u8)) -> Option<&mut u8> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, a)| a)
    }
    fn remove(&mut self, key: &(i64, i64, u8)) {
        self.0.retain(|(k, _)| k != key);
    }
    fn add(&mut self, key: (i64, i64, u8), access: u8) {
        match self.get_mut(&key) {
            Some(a) => *a |= access,
            None => self.0.push((key, access)),
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = (&(i64, i64, u8), &u8)> {
        self.0.iter().map(|(k, a)| (k, a))
    }

    /// The same exceptions, in any order (the kernel lists them in the order they were
    /// added, which differs when someone else, such as systemd, wrote them first).
    fn same_set(&self, other: &Exceptions) -> bool {
        let sorted = |e: &Exceptions| {
            let mut v = e.0.clone();
            v.sort_unstable();
            v
        };
        sorted(self) == sorted(other)
    }
}

/// The state of a v1 devices cgroup: a default and the exceptions to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Emulator {
    pub default_allow: bool,
    pub exceptions: Exceptions,
}

impl Emulator {
    /// Deny-all, then every rule in order.
    pub fn from_rules(rules: &[Rule]) -> Result<Emulator, CgroupError> {
        let mut e = Emulator::default();
        for r in rules {
            e.apply(r)?;
        }
        Ok(e)
    }

    pub fn apply(&mut self, r: &Rule) -> Result<(), CgroupError> {
        if r.typ == b'a' {
            *self = Emulator {
                default_allow: r.allow,
                exceptions: Exceptions::default(),
            };
            return Ok(());
        }
        let key = (r.major, r.minor, r.typ);
        if r.allow == self.default_allow {
            // Same as the default: this removes (part of) an exception.
            for partial in [
                (ANY, r.minor, r.typ),
                (r.major, ANY, r.typ),
                (ANY, ANY, r.typ),
            ] {
                let held = self.exceptions.get(&partial).copied().unwrap_or(0);
                if partial != key && held & r.access != 0 {
                    let wildcard = Rule {
                        typ: r.typ,
                        major: partial.0,
                        minor: partial.1,
                        access: held,
                        allow: !r.allow,
                    };
                    return Err(CgroupError::Config(format!(
                        "device rule {:?} cannot punch a hole in the wildcard rule {:?} (not supported by the devices controller)",
                        r.cgroup_string(),
                        wildcard.cgroup_string()
                    )));
                }
            }
            if let Some(a) = self.exceptions.get_mut(&key) {
                *a &= !r.access;
                if *a == 0 {
                    self.exceptions.remove(&key);
                }
            }
        } else {
            self.exceptions.add(key, r.access);
        }
        Ok(())
    }

    /// The exceptions as rules (each with the action opposite to the default).
    pub fn exception_rules(&self) -> impl Iterator<Item = Rule> + '_ {
        self.exceptions
            .iter()
            .map(|(&(major, minor, typ), &access)| Rule {
                typ,
                major,
                minor,
                access,
                allow: !self.default_allow,
            })
    }

    /// Parses `devices.list`, which lists what is allowed ("a *:* rwm" = allow all).
    pub fn from_list(text: &str) -> Result<Emulator, String> {
        let mut e = Emulator::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let bad = || format!("bad devices.list line {line:?}");
            let mut f = line.split_whitespace();
            let (Some(t), Some(nums), Some(acc)) = (f.next(), f.next(), f.next()) else {
                return Err(bad());
            };
            let (ma, mi) = nums.split_once(':').ok_or_else(bad)?;
            let parse = |s: &str| {
                if s == "*" {
                    Ok(ANY)
                } else {
                    s.parse::<i64>().map_err(|_| bad())
                }
            };
            let access = acc.chars().fold(0, |a, c| {
                a | if c == 'r' {
                    ACC_READ
                } else if c == 'w' {
                    ACC_WRITE
                } else {
                    ACC_MKNOD
                }
            });
            let typ = *t.as_bytes().first().ok_or_else(bad)?;
            e.apply(&Rule {
                typ,
                major: parse(ma)?,
                minor: parse(mi)?,
                access,
                allow: true,
            })
            .map_err(|err| err.to_string())?;
        }
        Ok(e)
    }

    /// The fewest writes that turn a cgroup in state `self` into `target`. A disruptive
    /// "a" rule is only written when the default changes, or when the current state is
    /// allow-all (whose deny exceptions `devices.list` cannot show).
    pub fn transition(&self, target: &Emulator) -> Vec<Rule> {
        let mut out = Vec::new();
        let empty = Exceptions::default();
        let old = if self.default_allow || self.default_allow != target.default_allow {
            out.push(Rule {
                typ: b'a',
                major: ANY,
                minor: ANY,
                access: ACC_ALL,
                allow: target.default_allow,
            });
            &empty
        } else {
            &self.exceptions
        };
        for (&(major, minor, typ), &had) in old.iter() {
            let dropped = had
                & !target
                    .exceptions
                    .get(&(major, minor, typ))
                    .copied()
                    .unwrap_or(0);
            if dropped != 0 {
                out.push(Rule {
                    typ,
                    major,
                    minor,
                    access: dropped,
                    allow: target.default_allow,
                });
            }
        }
        for (&(major, minor, typ), &want) in target.exceptions.iter() {
            let gained = want & !old.get(&(major, minor, typ)).copied().unwrap_or(0);
            if gained != 0 {
                out.push(Rule {
                    typ,
                    major,
                    minor,
                    access: gained,
                    allow: !target.default_allow,
                });
            }
        }
        out
    }
}

/// cgroup v1: brings `dir`'s devices cgroup to exactly `rules`, then checks the result.
pub(crate) fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<(), CgroupError> {
    let target = Emulator::from_rules(rules)?;
    let list = fsx::read(dir, "devices.list")?;
    let current = Emulator::from_list(&list).map_err(|what| CgroupError::Parse {
        path: dir.join("devices.list"),
        what,
    })?;
    for r in current.transition(&target) {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        fsx::write(Ver::V1, dir, file, &r.cgroup_string())?;
    }
    // An allow-list can be read back and must match; allow-all lists cannot show denials.
    if !target.default_allow {
        let list = fsx::read(dir, "devices.list")?;
        let now = Emulator::from_list(&list).map_err(|what| CgroupError::Parse {
            path: dir.join("devices.list"),
            what,
        })?;
        if now.default_allow != target.default_allow || !now.exceptions.same_set(&target.exceptions)
        {
            return Err(CgroupError::Rejected(format!(
                "cgroup v1: {} does not match the requested device rules after writing them",
                dir.join("devices.list").display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(typ: u8, major: i64, minor: i64, access: u8, allow: bool) -> Rule {
        Rule {
            typ,
            major,
            minor,
            access,
            allow,
        }
    }

    #[test]
    fn readback_ignores_the_kernels_order() {
        let a = Emulator::from_list("c 1:3 rwm\nc 136:* rw\n").unwrap();
        let b = Emulator::from_list("c 136:* rw\nc 1:3 rwm\n").unwrap();
        assert_ne!(a, b);
        assert!(a.exceptions.same_set(&b.exceptions));
        let c = Emulator::from_list("c 136:* rwm\nc 1:3 rwm\n").unwrap();
        assert!(!a.exceptions.same_set(&c.exceptions));
    }

    #[test]
    fn deny_all_then_allow() {
        let e = Emulator::from_rules(&[
            rule(b'a', ANY, ANY, ACC_ALL, false),
            rule(b'c', 1, 3, ACC_READ | ACC_WRITE, true),
            rule(b'c', 1, 3, ACC_MKNOD, true),
            rule(b'c', ANY, ANY, ACC_MKNOD, true),
        ])
        .unwrap();
        assert!(!e.default_allow);
        assert_eq!(e.exceptions.get(&(1, 3, b'c')), Some(&ACC_ALL));
        // In the order the rules were listed (the spec's "apply entries in the listed order").
        let strings: Vec<String> = e.exception_rules().map(|r| r.cgroup_string()).collect();
        assert_eq!(strings, ["c 1:3 rwm", "c *:* m"]);
    }

    #[test]
    fn refuses_to_punch_holes() {
        let err = Emulator::from_rules(&[
            rule(b'c', ANY, ANY, ACC_READ, true),
            rule(b'c', 1, 3, ACC_READ, false),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("punch a hole"), "{err}");
    }

    #[test]
    fn transitions_are_minimal() {
        let list = "c 1:3 rwm\nc 1:5 rwm\n";
        let current = Emulator::from_list(list).unwrap();
        let target = Emulator::from_rules(&[
            rule(b'c', 1, 3, ACC_ALL, true),
            rule(b'c', 1, 9, ACC_READ, true),
        ])
        .unwrap();
        let t: Vec<String> = current
            .transition(&target)
            .iter()
            .map(|r| format!("{} {}", r.allow, r.cgroup_string()))
            .collect();
        assert_eq!(t, ["false c 1:5 rwm", "true c 1:9 r"]);
        // From allow-all, a deny-all reset comes first.
        let t = Emulator::from_list("a *:* rwm\n")
            .unwrap()
            .transition(&target);
        assert_eq!(t[0], rule(b'a', ANY, ANY, ACC_ALL, false));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn rejects_bad_oci_rules() {
        let bad: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow":true,"type":"p","access":"rwm"}]"#).unwrap();
        assert!(parse_rules(&bad).is_err());
        let bad: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow":true,"type":"c","major":1,"minor":3}]"#).unwrap();
        assert!(parse_rules(&bad)
            .unwrap_err()
            .to_string()
            .contains("cannot be empty"));
        let ok: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow":false,"access":"rwm"}]"#).unwrap();
        assert_eq!(
            parse_rules(&ok).unwrap(),
            [rule(b'a', ANY, ANY, ACC_ALL, false)]
        );
    }
}
