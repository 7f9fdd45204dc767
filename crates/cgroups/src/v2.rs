//! Writing `linux.resources` into a cgroup v2 directory, converting v1-shaped values the way
//! runc does. Settings v2 has no equivalent for are ignored with a warning, as runc does.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use tracing::warn;

use crate::common::{self, blkio_weight_to_io_weight, cpu_shares_to_weight, swap_to_v2};
use crate::devices::{self, ebpf, Emulator};
use crate::error::CgroupError;
use crate::fsx::{self, Ver};

const V2: Ver = Ver::V2;

/// What `apply_v2` is doing: filling a cgroup it just created, or updating a live one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Create,
    Update,
}

/// Checks that need no file system access, so `create` can fail before making anything.
pub(crate) fn validate(r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(m) = r.memory() {
        swap_to_v2(m.swap().unwrap_or(0), m.limit().unwrap_or(0))?;
    }
    for key in r.unified().iter().flat_map(|u| u.keys()) {
        if key.contains('/') || key.is_empty() || key == "." || key == ".." {
            return Err(CgroupError::Config(format!(
                "unified resource {key:?} must be a file name (no slashes)"
            )));
        }
        if !key.contains('.') {
            return Err(CgroupError::Config(format!(
                "unified resource {key:?} must be in the form CONTROLLER.PARAMETER"
            )));
        }
    }
    Ok(())
}

/// numToStr of runc: 0 = unset (None), -1 = "max".
fn limit_str(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".into()),
        v => Some(v.to_string()),
    }
}

/// Writes `r` into `dir`; the caller has already run [`validate`].
pub(crate) fn apply_v2(dir: &Path, r: &LinuxResources, phase: Phase) -> Result<(), CgroupError> {
    if let Some(p) = r.pids() {
        let v = crate::common::pids_max(p.limit());
        fsx::write(V2, dir, "pids.max", &v)?;
    }
    if let Some(m) = r.memory() {
        memory(dir, m, phase)?;
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(rules) = r.devices() {
        let emu = Emulator::from_rules(&devices::parse_rules(rules)?)?;
        ebpf::install(dir, &emu, phase == Phase::Create)?;
    }
    if let Some(c) = r.cpu() {
        for (file, value) in [("cpuset.cpus", c.cpus()), ("cpuset.mems", c.mems())] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                fsx::write(V2, dir, file, v)?;
            }
        }
    }
    if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
        common::hugetlb(V2, dir, limits)?;
    }
    if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
        common::rdma(V2, dir, rdma)?;
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            warn!(
                "linux.resources.network is ignored: cgroup v2 has no net_cls/net_prio controllers"
            );
        }
    }
    if let Some(unified) = r.unified() {
        let mut keys: Vec<_> = unified.iter().collect();
        keys.sort();
        for (key, value) in keys {
            fsx::write_raw(dir, key, value).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    let controller = key.split('.').next().unwrap_or(key);
                    CgroupError::Unsupported(format!(
                        "unified resource {key:?} can't be set: no such file in {} (controller {controller:?} not available)",
                        dir.display()
                    ))
                } else {
                    fsx::write_err(V2, dir, key, value, &e)
                }
            })?;
        }
    }
    Ok(())
}

fn memory(dir: &Path, m: &LinuxMemory, phase: Phase) -> Result<(), CgroupError> {
    for (set, what) in [
        (m.kernel().is_some(), "kernel"),
        (m.kernel_tcp().is_some(), "kernelTCP"),
        (m.swappiness().is_some_and(|s| s != u64::MAX), "swappiness"),
        (m.disable_oom_killer() == Some(true), "disableOOMKiller"),
    ] {
        if set {
            warn!("linux.resources.memory.{what} is ignored on cgroup v2");
        }
    }
    let limit = m.limit().unwrap_or(0);
    let swap_oci = m.swap().unwrap_or(0);
    let reservation = m.reservation().unwrap_or(0);
    if limit == 0 && swap_oci == 0 && reservation == 0 {
        return Ok(());
    }
    // memory.checkBeforeUpdate: refuse to set a limit below what the container uses now.
    if phase == Phase::Update && m.check_before_update() == Some(true) && limit > 0 {
        if let Ok(usage) = fsx::read_u64(dir, "memory.current") {
            if usage >= limit as u64 {
                return Err(CgroupError::Rejected(format!(
                    "rejecting memory limit {limit} below current usage {usage}"
                )));
            }
        }
    }
    let swap = swap_to_v2(swap_oci, limit)?;
    // swap == memory means "no swap": write 0 rather than leave it unset.
    let swap_str = limit_str(swap).or_else(|| (swap == 0 && swap_oci > 0).then(|| "0".to_string()));
    if let Some(s) = swap_str {
        match fsx::write_raw(dir, "memory.swap.max", &s) {
            Ok(()) => {}
            // No swap accounting: "max" and "0" are what we have anyway.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && (s == "max" || s == "0") => {}
            Err(e) => return Err(fsx::write_err(V2, dir, "memory.swap.max", &s, &e)),
        }
    }
    if let Some(v) = limit_str(limit) {
        fsx::write(V2, dir, "memory.max", &v)?;
    }
    if let Some(v) = limit_str(reservation) {
        fsx::write(V2, dir, "memory.low", &v)?;
    }
    Ok(())
}

fn io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        // BFQ takes the v1 value as is; otherwise io.weight with runc's conversion.
        match fsx::write_raw(dir, "io.bfq.weight", &w.to_string()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fsx::write(
                    V2,
                    dir,
                    "io.weight",
                    &blkio_weight_to_io_weight(w).to_string(),
                )?;
            }
            Err(e) => return Err(fsx::write_err(V2, dir, "io.bfq.weight", &w.to_string(), &e)),
        }
    }
    if b.leaf_weight().is_some() {
        warn!("linux.resources.blockIO.leafWeight is ignored on cgroup v2");
    }
    for d in b.weight_device().as_deref().unwrap_or_default() {
        if let Some(w) = d.weight() {
            if fsx::exists(dir, "io.bfq.weight") {
                fsx::write(
                    V2,
                    dir,
                    "io.bfq.weight",
                    &format!("{}:{} {w}", d.major(), d.minor()),
                )?;
            } else {
                warn!(
                    major = d.major(),
                    minor = d.minor(),
                    "blockIO.weightDevice is ignored: it needs the BFQ scheduler on cgroup v2"
                );
            }
        }
    }
    for (key, list) in [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ] {
        for t in list.as_deref().unwrap_or_default() {
            fsx::write(
                V2,
                dir,
                "io.max",
                &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if c.realtime_period().is_some_and(|v| v != 0) || c.realtime_runtime().is_some_and(|v| v != 0) {
        warn!("linux.resources.cpu.realtimePeriod/realtimeRuntime are ignored: cgroup v2 has no RT group scheduling");
    }
    if let Some(idle) = c.idle() {
        fsx::write(V2, dir, "cpu.idle", &idle.to_string())?;
    }
    let weight = cpu_shares_to_weight(c.shares().unwrap_or(0));
    if weight != 0 {
        fsx::write(V2, dir, "cpu.weight", &weight.to_string())?;
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    let sets_max = quota != 0 || period != 0;
    let burst = c.burst().map(|b| b.to_string());
    let burst_later = match &burst {
        Some(b) => common::write_or_defer(V2, dir, "cpu.max.burst", b, sets_max)?,
        None => false,
    };
    if sets_max {
        let q = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_string()
        };
        let p = if period == 0 { 100_000 } else { period };
        fsx::write(V2, dir, "cpu.max", &format!("{q} {p}"))?;
        if let (true, Some(b)) = (burst_later, &burst) {
            fsx::write(V2, dir, "cpu.max.burst", b)?;
        }
    }
    Ok(())
}
