//! Capabilities: names and numbers, the five sets as masks (built in the parent), and the
//! child-side bounding-set drop, capset(2) and ambient raise.

use std::sync::OnceLock;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};
use tracing::{debug, warn};

use crate::failure::{Failure, Step, AMBIENT_CLEAR_ALL};
use crate::sys;

/// Capability names indexed by number (CAP_CHOWN = 0 ... CAP_CHECKPOINT_RESTORE = 40).
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The highest capability number husk knows.
const LAST_KNOWN: u32 = NAMES.len() as u32 - 1;

/// The kernel capability number of `cap`.
pub(crate) fn number(cap: Capability) -> u32 {
    use Capability::*;
    match cap {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// "CAP_..." for a capability number (or "capability N" beyond what husk knows).
pub(crate) fn name(number: u32) -> String {
    NAMES
        .get(number as usize)
        .map_or_else(|| format!("capability {number}"), |n| (*n).to_string())
}

/// Names of the capabilities the running kernel knows.
pub(crate) fn known_names() -> Vec<String> {
    let last = kernel_last_cap().min(LAST_KNOWN) as usize;
    NAMES.iter().take(last + 1).map(|n| n.to_string()).collect()
}

/// `/proc/sys/kernel/cap_last_cap`, read once per process (husk's own list if unreadable).
fn kernel_last_cap() -> u32 {
    static LAST: OnceLock<u32> = OnceLock::new();
    *LAST.get_or_init(|| {
        match std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .map(|s| s.trim().parse::<u32>())
        {
            Ok(Ok(n)) => n,
            other => {
                debug!(
                    "cannot read /proc/sys/kernel/cap_last_cap ({other:?}); assuming {LAST_KNOWN}"
                );
                LAST_KNOWN
            }
        }
    })
}

/// The five capability sets as masks, plus the bounding-set bits to drop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CapSets {
    /// Capabilities the kernel knows that are not in the bounding set.
    pub drop_bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapSets {
    /// Builds the masks; an absent section or set means "none" (like runc). Capabilities
    /// above the running kernel's `cap_last_cap` are skipped with a debug log.
    pub fn new(caps: Option<&LinuxCapabilities>) -> CapSets {
        Self::with_last_cap(caps, kernel_last_cap().min(LAST_KNOWN))
    }

    fn with_last_cap(caps: Option<&LinuxCapabilities>, last_cap: u32) -> CapSets {
        let unavailable = std::cell::RefCell::new(Vec::new());
        let mask = |set: Option<&Capabilities>| -> u64 {
            let mut m = 0u64;
            for cap in set.into_iter().flatten() {
                let n = number(*cap);
                if n > last_cap {
                    let mut u = unavailable.borrow_mut();
                    if !u.contains(&n) {
                        u.push(n);
                    }
                } else {
                    m |= 1 << n;
                }
            }
            m
        };
        let known = if last_cap >= 63 {
            u64::MAX
        } else {
            (1u64 << (last_cap + 1)) - 1
        };
        let c = caps;
        let permitted = mask(c.and_then(|c| c.permitted().as_ref()));
        let inheritable = mask(c.and_then(|c| c.inheritable().as_ref()));
        let requested = mask(c.and_then(|c| c.ambient().as_ref()));
        let bounding = mask(c.and_then(|c| c.bounding().as_ref()));
        let effective = mask(c.and_then(|c| c.effective().as_ref()));
        // The kernel only lets a capability into the ambient set when it is both permitted and
        // inheritable. runc's own default spec asks for ambient capabilities without
        // inheritable ones and runs with none: do the same rather than fail.
        let ambient = requested & permitted & inheritable;
        for cap in bits(requested & !ambient) {
            debug!(
                "ambient capability {cap} skipped: not in both the permitted and inheritable sets"
            );
        }
        let mut unavailable = unavailable.into_inner();
        if !unavailable.is_empty() {
            // runc's warning (the runtime-spec: capabilities the kernel lacks are ignored).
            unavailable.sort_unstable();
            let names: Vec<String> = unavailable.into_iter().map(name).collect();
            warn!("ignoring unknown or unavailable capabilities: {names:?}");
        }
        CapSets {
            drop_bounding: known & !bounding,
            effective,
            permitted,
            inheritable,
            ambient,
        }
    }

    /// Child: PR_CAPBSET_DROP for every capability not in the bounding set.
    pub fn drop_bounding(&self) -> Result<(), Failure> {
        for cap in bits(self.drop_bounding) {
            husk_sys::prctl(libc::PR_CAPBSET_DROP, cap.into(), 0)
                .map_err(|e| Failure::new(Step::Bounding, cap, e))?;
        }
        Ok(())
    }

    /// Child: capset(effective, permitted, inheritable).
    pub fn capset(&self) -> Result<(), Failure> {
        sys::capset(self.effective, self.permitted, self.inheritable)
            .map_err(|e| Failure::new(Step::Capset, 0, e))
    }

    /// Child: clears the ambient set, then raises each ambient capability.
    pub fn set_ambient(&self) -> Result<(), Failure> {
        let ambient = libc::PR_CAP_AMBIENT;
        husk_sys::prctl(ambient, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0)
            .map_err(|e| Failure::new(Step::Ambient, AMBIENT_CLEAR_ALL, e))?;
        for cap in bits(self.ambient) {
            husk_sys::prctl(
                ambient,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap.into(),
            )
            .map_err(|e| Failure::new(Step::Ambient, cap, e))?;
        }
        Ok(())
    }
}

/// The set bit numbers of `mask`, lowest first.
fn bits(mask: u64) -> impl Iterator<Item = u32> {
    (0..64).filter(move |b| mask & (1 << b) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capability_has_its_kernel_number() {
        // The name table and the enum mapping agree, checked through serde's names.
        for (n, cap_name) in NAMES.iter().enumerate() {
            let cap: Capability = serde_json::from_str(&format!("\"{cap_name}\"")).unwrap();
            assert_eq!(number(cap), n as u32, "{cap_name}");
            assert_eq!(name(n as u32), *cap_name);
        }
        assert_eq!(name(63), "capability 63");
    }

    #[test]
    fn masks_and_unknown_caps() {
        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_NET_BIND_SERVICE","CAP_CHECKPOINT_RESTORE"],
                "effective":["CAP_NET_BIND_SERVICE"],"permitted":["CAP_NET_BIND_SERVICE","CAP_BPF"],
                "ambient":["NET_BIND_SERVICE"]}"#,
        )
        .unwrap();
        // A kernel that only knows capabilities up to CAP_AUDIT_READ (37).
        let m = CapSets::with_last_cap(Some(&caps), 37);
        assert_eq!(m.effective, 1 << 10);
        assert_eq!(
            m.permitted,
            1 << 10,
            "CAP_BPF (39) is skipped on this kernel"
        );
        assert_eq!(m.inheritable, 0, "an absent set is empty");
        assert_eq!(m.ambient, 0, "ambient needs inheritable too");
        assert_eq!(m.drop_bounding, ((1u64 << 38) - 1) & !(1 | 1 << 10));

        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"permitted":["CAP_NET_BIND_SERVICE","CAP_KILL"],"inheritable":["CAP_NET_BIND_SERVICE"],
                "ambient":["CAP_NET_BIND_SERVICE","CAP_KILL"]}"#,
        )
        .unwrap();
        let m = CapSets::with_last_cap(Some(&caps), 40);
        assert_eq!(bits(m.ambient).collect::<Vec<_>>(), vec![10]);

        let none = CapSets::with_last_cap(None, 40);
        assert_eq!(none.drop_bounding, (1u64 << 41) - 1);
        assert_eq!((none.effective, none.permitted, none.ambient), (0, 0, 0));
    }
}
