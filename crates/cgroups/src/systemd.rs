//! The systemd driver (`--systemd-cgroup`): the container's cgroup is a transient scope (or
//! slice) that systemd creates around the init's pid, with the resource settings systemd
//! understands as unit properties; everything is then written through cgroupfs as well
//! (runc does the same), by the writers the cgroupfs driver uses. Only this file talks to
//! systemd, and only when the driver is in use.

use std::path::{Path, PathBuf};

use husk_systemd::{
    cpuset_mask, prop_u64, Instance, Property, Systemd, SystemdError, UnitPlace, Value,
};
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::common::{blkio_weight_to_io_weight, cpu_shares_to_weight, swap_to_v2};
use crate::error::CgroupError;
use crate::layout::{self, Layout};

/// How a container's cgroup is managed; recorded with the [`crate::Manager`] in the state
/// file so every later command uses the same driver.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// husk makes and removes the directories itself (runc's "cgroupfs").
    #[default]
    Fs,
    /// systemd owns the unit; husk writes resource files inside it.
    Systemd {
        unit: String,
        slice: String,
        /// The unit belongs to the user's manager (rootless), not the system's.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        user: bool,
        /// `org.systemd.property.*` annotations (only needed while creating).
        #[serde(default, skip_serializing)]
        annotations: Vec<(String, String)>,
    },
}

impl Driver {
    pub(crate) fn is_fs(&self) -> bool {
        *self == Driver::Fs
    }

    /// The manager a systemd driver's unit belongs to.
    pub(crate) fn instance(&self) -> Instance {
        match self {
            Driver::Systemd { user: true, .. } => Instance::User,
            _ => Instance::System,
        }
    }
}

pub(crate) fn err(e: SystemdError) -> CgroupError {
    CgroupError::Systemd(e.to_string())
}

/// Where a unit's cgroup is on this host: the [`crate::Mode`], the directories keyed like
/// [`crate::Manager`]'s paths, and the v2 mount (v2 and hybrid hosts).
pub(crate) type UnitPaths = (
    crate::Mode,
    std::collections::BTreeMap<String, PathBuf>,
    Option<PathBuf>,
);

/// The unit and its cgroup directories for `cgroups_path` on this host. A user's manager is
/// asked where its own cgroup is (its slices live below it), as runc does.
pub(crate) fn resolve(
    layout: &Layout,
    id: &str,
    cgroups_path: Option<&str>,
    instance: Instance,
) -> Result<(UnitPlace, UnitPaths), CgroupError> {
    if !Path::new("/run/systemd/system").exists() {
        return Err(CgroupError::Systemd(
            "systemd is not running on this host (no /run/systemd/system)".into(),
        ));
    }
    let (default_slice, base) = match instance {
        Instance::System => ("system.slice", String::new()),
        Instance::User if !matches!(layout, Layout::Unified { .. }) => {
            // runc's legacy driver refuses this too: a user's manager delegates nothing on v1.
            return Err(CgroupError::Systemd(
                "rootless: the systemd driver needs a cgroup v2 host (this one mounts cgroup v1)"
                    .into(),
            ));
        }
        Instance::User => (
            "user.slice",
            connect(instance)?.manager_cgroup().map_err(err)?,
        ),
    };
    let place = husk_systemd::place(id, cgroups_path, default_slice).map_err(err)?;
    let cgroup = format!("{}{}", base.trim_end_matches('/'), place.cgroup);
    Ok((place, unit_paths(layout, &cgroup)))
}

/// The directories of the unit whose cgroup is `cgroup` ("/system.slice/x.scope"). On v2
/// the one directory systemd makes. On v1 and hybrid hosts, as runc's legacy driver: the
/// same path in every v1 hierarchy (systemd makes it in the hierarchies it manages; husk
/// makes the others, cpuset, freezer, net_cls, ..., and joins the init there), and on
/// hybrid hosts the unit's directory in the v2 hierarchy, which systemd makes too.
pub(crate) fn unit_paths(layout: &Layout, cgroup: &str) -> UnitPaths {
    let mut paths = std::collections::BTreeMap::new();
    for h in layout.hierarchies() {
        let dir = layout::join(&h.mount, cgroup);
        for c in &h.controllers {
            paths.insert(c.clone(), dir.clone());
        }
    }
    match layout {
        Layout::V1 { .. } => (crate::Mode::V1, paths, None),
        Layout::Hybrid { unified, .. } => {
            paths.insert(String::new(), layout::join(&unified.mount, cgroup));
            (crate::Mode::Hybrid, paths, Some(unified.mount.clone()))
        }
        Layout::Unified { mount } => {
            paths.insert(String::new(), layout::join(mount, cgroup));
            (crate::Mode::Unified, paths, Some(mount.clone()))
        }
    }
}

/// The properties of a new unit: placement, delegation, the init's pid, accounting, the
/// resources, then the annotations (which may override any of them). `v1`: the host mounts
/// cgroup v1 (legacy or hybrid), where systemd has the older properties.
pub(crate) fn unit_properties(
    unit: &str,
    slice: &str,
    pid: i32,
    resources: Option<&LinuxResources>,
    annotations: &[(String, String)],
    v1: bool,
) -> Result<Vec<Property>, CgroupError> {
    let mut p: Vec<Property> = vec![(
        "Description".into(),
        Value::Str(format!("husk container {unit}")),
    )];
    if unit.ends_with(".slice") {
        p.push(("Wants".into(), Value::Str(slice.into())));
    } else {
        p.push(("Slice".into(), Value::Str(slice.into())));
        p.push(("Delegate".into(), Value::Bool(true)));
    }
    let pid = u32::try_from(pid).map_err(|_| CgroupError::Config(format!("bad pid {pid}")))?;
    p.push((
        "PIDs".into(),
        Value::Array("u".into(), vec![Value::U32(pid)]),
    ));
    let io = if v1 { "BlockIO" } else { "IO" };
    for a in ["Memory", "CPU", io, "Tasks"] {
        p.push((format!("{a}Accounting"), Value::Bool(true)));
    }
    p.push(("DefaultDependencies".into(), Value::Bool(false)));
    if let Some(r) = resources {
        p.extend(resource_properties(r, v1)?);
    }
    p.extend(
        husk_systemd::from_annotations(annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(err)?,
    );
    Ok(p)
}

/// `linux.resources` as the unit properties systemd understands, with runc's conversions:
/// on cgroup v2, or with `v1` the legacy ones ([`v1_resource_properties`]). Only settings
/// present are returned (`update` sends just those).
pub(crate) fn resource_properties(
    r: &LinuxResources,
    v1: bool,
) -> Result<Vec<Property>, CgroupError> {
    let mut p = if v1 {
        v1_resource_properties(r)
    } else {
        v2_resource_properties(r)?
    };
    if let Some(pids) = r.pids() {
        if pids.limit() > 0 || pids.limit() == -1 {
            p.push(prop_u64("TasksMax", pids.limit() as u64));
        }
    }
    if let Some(rules) = r.devices() {
        let proc_devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
        p.extend(crate::systemd_devices::properties(rules, &proc_devices)?);
    }
    Ok(p)
}

/// The cgroup v2 properties of [`resource_properties`] that differ from v1's.
fn v2_resource_properties(r: &LinuxResources) -> Result<Vec<Property>, CgroupError> {
    let mut p = Vec::new();
    if let Some(m) = r.memory() {
        let limit = m.limit().unwrap_or(0);
        if limit != 0 {
            p.push(prop_u64("MemoryMax", limit as u64));
        }
        if let Some(low) = m.reservation().filter(|&v| v != 0) {
            p.push(prop_u64("MemoryLow", low as u64));
        }
        let swap = swap_to_v2(m.swap().unwrap_or(0), limit)?;
        if swap != 0 {
            p.push(prop_u64("MemorySwapMax", swap as u64));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            p.push(prop_u64("CPUWeight", cpu_shares_to_weight(s)));
        }
        cpu_quota(&mut p, c.quota().unwrap_or(0), c.period().unwrap_or(0));
        for (name, list) in [("AllowedCPUs", c.cpus()), ("AllowedMemoryNodes", c.mems())] {
            if let Some(l) = list.as_deref().filter(|l| !l.is_empty()) {
                p.push((name.into(), cpuset_mask(l).map_err(err)?));
            }
        }
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()) {
        if w != 0 {
            p.push(prop_u64("IOWeight", blkio_weight_to_io_weight(w)));
        }
    }
    if let Some(u) = r.unified() {
        unified_properties(&mut p, u)?;
    }
    Ok(p)
}

/// The properties systemd has for cgroup v1 hierarchies, as runc's legacy driver sets them
/// (with TasksMax and the device rules of [`resource_properties`]): MemoryLimit, CPUShares,
/// the CPU quota, BlockIOWeight. The rest (cpuset, swap, reservation, ...) is written by husk
/// through cgroupfs only.
fn v1_resource_properties(r: &LinuxResources) -> Vec<Property> {
    let mut p = Vec::new();
    if let Some(limit) = r.memory().as_ref().and_then(|m| m.limit()) {
        if limit != 0 {
            p.push(prop_u64("MemoryLimit", limit as u64));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            p.push(prop_u64("CPUShares", s));
        }
        cpu_quota(&mut p, c.quota().unwrap_or(0), c.period().unwrap_or(0));
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()) {
        if w != 0 {
            p.push(prop_u64("BlockIOWeight", u64::from(w)));
        }
    }
    p
}

/// runc's `addCpuQuota`: the quota per second of CPU, rounded up to whole percents because
/// systemd stores CPUQuota in percent.
fn cpu_quota(p: &mut Vec<Property>, quota: i64, period: u64) {
    if period != 0 {
        p.push(prop_u64("CPUQuotaPeriodUSec", period));
    }
    if quota != 0 || period != 0 {
        let mut per_sec = u64::MAX;
        if quota > 0 {
            let period = if period == 0 { 100_000 } else { period };
            per_sec = (quota as u64).saturating_mul(1_000_000) / period;
            if per_sec % 10_000 != 0 {
                per_sec = (per_sec / 10_000 + 1) * 10_000;
            }
        }
        p.push(prop_u64("CPUQuotaPerSecUSec", per_sec));
    }
}

/// The `unified` keys systemd has properties for.
fn unified_properties(
    p: &mut Vec<Property>,
    u: &std::collections::HashMap<String, String>,
) -> Result<(), CgroupError> {
    let mut keys: Vec<_> = u.iter().collect();
    keys.sort();
    for (key, value) in keys {
        let name = match key.as_str() {
            "memory.high" => "MemoryHigh",
            "memory.max" => "MemoryMax",
            "memory.low" => "MemoryLow",
            "memory.min" => "MemoryMin",
            "memory.swap.max" => "MemorySwapMax",
            "pids.max" => "TasksMax",
            "cpu.weight" => "CPUWeight",
            _ => continue,
        };
        let v = value.trim();
        let n = if v == "max" {
            u64::MAX
        } else {
            v.parse().map_err(|_| {
                CgroupError::Config(format!("unified resource {key:?}: bad value {value:?}"))
            })?
        };
        p.push(prop_u64(name, n));
    }
    Ok(())
}

pub(crate) fn connect(instance: Instance) -> Result<Systemd, CgroupError> {
    Systemd::connect(instance).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder};

    #[test]
    fn resources_become_runc_properties() {
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(1 << 30)
                    .swap(2i64 << 30)
                    .reservation(1 << 20)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(1024u64)
                    .quota(12_345i64)
                    .period(100_000u64)
                    .cpus("0-1")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let p = resource_properties(&r, false).unwrap();
        let get = |n: &str| p.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Value::U64(1 << 30)));
        assert_eq!(get("MemorySwapMax"), Some(Value::U64(1 << 30)));
        assert_eq!(get("MemoryLow"), Some(Value::U64(1 << 20)));
        assert_eq!(get("CPUWeight"), Some(Value::U64(39)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::U64(130_000)));
        assert_eq!(get("CPUQuotaPeriodUSec"), Some(Value::U64(100_000)));
        assert_eq!(
            get("AllowedCPUs"),
            Some(Value::Array("y".into(), vec![Value::Byte(3)]))
        );
        let unlimited = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(-1).build().unwrap())
            .cpu(LinuxCpuBuilder::default().quota(-1i64).build().unwrap())
            .build()
            .unwrap();
        let p = resource_properties(&unlimited, false).unwrap();
        assert!(p.contains(&prop_u64("MemoryMax", u64::MAX)));
        assert!(p.contains(&prop_u64("CPUQuotaPerSecUSec", u64::MAX)));
    }

    fn h(controllers: &[&str], mount: &str) -> crate::Hierarchy {
        crate::Hierarchy {
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
            mount: mount.into(),
            // The unit's path never depends on husk's own cgroup.
            own: "/user.slice/session-1.scope".into(),
        }
    }

    #[test]
    fn v1_and_hybrid_units_span_every_hierarchy() {
        let v1 = vec![
            h(&["cpu", "cpuacct"], "/sys/fs/cgroup/cpu,cpuacct"),
            h(&["cpuset"], "/sys/fs/cgroup/cpuset"),
            h(&["memory"], "/sys/fs/cgroup/memory"),
            h(&["name=systemd"], "/sys/fs/cgroup/systemd"),
        ];
        let unit = "/system.slice/husk-a.slice/husk-x.scope";
        let hybrid = Layout::Hybrid {
            hierarchies: v1.clone(),
            unified: h(&[], "/sys/fs/cgroup/unified"),
        };
        let (mode, paths, mount) = unit_paths(&hybrid, unit);
        assert_eq!(mode, crate::Mode::Hybrid);
        assert_eq!(mount.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        let at = |k: &str| paths[k].to_str().unwrap().to_string();
        assert_eq!(at("cpu"), format!("/sys/fs/cgroup/cpu,cpuacct{unit}"));
        assert_eq!(at("cpuacct"), at("cpu"));
        // Not managed by systemd: husk makes it at the same place.
        assert_eq!(at("cpuset"), format!("/sys/fs/cgroup/cpuset{unit}"));
        assert_eq!(at("memory"), format!("/sys/fs/cgroup/memory{unit}"));
        assert_eq!(at("name=systemd"), format!("/sys/fs/cgroup/systemd{unit}"));
        assert_eq!(at(""), format!("/sys/fs/cgroup/unified{unit}"));
        assert_eq!(paths.len(), 6);
        let (mode, paths, mount) = unit_paths(&Layout::V1 { hierarchies: v1 }, unit);
        assert_eq!((mode, mount), (crate::Mode::V1, None));
        assert!(!paths.contains_key(""));
        assert_eq!(paths.len(), 5);
        let v2 = Layout::Unified {
            mount: "/sys/fs/cgroup".into(),
        };
        let (mode, paths, _) = unit_paths(&v2, "/x.scope");
        assert_eq!(mode, crate::Mode::Unified);
        assert_eq!(
            paths.into_iter().collect::<Vec<_>>(),
            [(String::new(), PathBuf::from("/sys/fs/cgroup/x.scope"))]
        );
    }

    #[test]
    fn v1_units_get_the_legacy_properties() {
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(1 << 30)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(512u64)
                    .quota(50_000i64)
                    .cpus("0")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let p = unit_properties("p-x.scope", "system.slice", 42, Some(&r), &[], true).unwrap();
        assert!(p.contains(&prop_u64("MemoryLimit", 1 << 30)));
        assert!(p.contains(&prop_u64("CPUShares", 512)));
        assert!(p.contains(&prop_u64("CPUQuotaPerSecUSec", 500_000)));
        assert!(p.contains(&("BlockIOAccounting".into(), Value::Bool(true))));
        for v2_only in ["MemoryMax", "CPUWeight", "AllowedCPUs", "IOAccounting"] {
            assert!(p.iter().all(|(k, _)| k != v2_only), "{v2_only} on v1");
        }
    }

    #[test]
    fn driver_is_recorded_in_the_state_file() {
        let m = crate::Manager {
            mode: crate::Mode::Unified,
            paths: [(
                String::new(),
                "/sys/fs/cgroup/system.slice/p-x.scope".into(),
            )]
            .into(),
            unified_mount: Some("/sys/fs/cgroup".into()),
            driver: Driver::Systemd {
                unit: "p-x.scope".into(),
                slice: "system.slice".into(),
                user: false,
                annotations: vec![("org.systemd.property.A".into(), "1".into())],
            },
        };
        let json = serde_json::to_string(&m).unwrap();
        assert!(
            json.contains(r#""driver":{"systemd":{"unit":"p-x.scope""#),
            "{json}"
        );
        assert!(!json.contains("annotations"), "{json}");
        let back: crate::Manager = serde_json::from_str(&json).unwrap();
        assert!(back.made_around_pid());
        // State files of cgroupfs containers carry no driver and read back as cgroupfs.
        let fs = json.split(r#","driver""#).next().unwrap().to_string() + "}";
        let back: crate::Manager = serde_json::from_str(&fs).unwrap();
        assert_eq!(back.driver(), &Driver::Fs);
    }

    #[test]
    fn scope_properties_carry_pid_and_annotations() {
        let ann = vec![(
            "org.systemd.property.TimeoutStopSec".to_string(),
            "3".to_string(),
        )];
        let p = unit_properties("p-x.scope", "system.slice", 42, None, &ann, false).unwrap();
        assert!(p.contains(&("Delegate".into(), Value::Bool(true))));
        assert!(p.contains(&(
            "PIDs".into(),
            Value::Array("u".into(), vec![Value::U32(42)])
        )));
        assert_eq!(p.last(), Some(&prop_u64("TimeoutStopUSec", 3_000_000)));
        let bad = vec![("org.systemd.property.x".to_string(), "1".to_string())];
        assert!(unit_properties("p-x.scope", "system.slice", 42, None, &bad, false).is_err());
    }
}
