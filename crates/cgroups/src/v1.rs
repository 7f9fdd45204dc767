//! Writing `linux.resources` into cgroup v1 hierarchies, with runc's file names, value
//! conversions and write orderings. Only settings present in the spec are written.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxResources};
use tracing::warn;

use crate::devices;
use crate::error::CgroupError;
use crate::fsx::{self, Ver};
use crate::{common, Manager};

const V1: Ver = Ver::V1;

impl Manager {
    /// The directory of a v1 controller, or an error naming the setting that needs it.
    fn v1_dir(&self, controller: &str, setting: &str) -> Result<&Path, CgroupError> {
        self.path_for(controller).ok_or_else(|| {
            CgroupError::Unsupported(format!(
                "cgroup v1: {controller} controller is not mounted (needed for {setting})"
            ))
        })
    }

    /// Applies `r` on a v1 or hybrid host. `created` lists the directories `create` just made
    /// (parents first); empty for an update.
    pub(crate) fn apply_v1(
        &self,
        r: &LinuxResources,
        created: &[PathBuf],
    ) -> Result<(), CgroupError> {
        self.cpuset_v1(r, created)?;
        if let Some(rules) = r.devices() {
            devices::apply_v1(
                self.v1_dir("devices", "linux.resources.devices")?,
                &devices::parse_rules(rules)?,
            )?;
        }
        if let Some(m) = r.memory() {
            self.memory_v1(m)?;
        }
        if let Some(c) = r.cpu() {
            self.cpu_v1(c)?;
        }
        if let Some(p) = r.pids() {
            let v = crate::common::pids_max(p.limit());
            fsx::write(V1, self.v1_dir("pids", "pids.limit")?, "pids.max", &v)?;
        }
        if let Some(b) = r.block_io() {
            self.blkio_v1(b)?;
        }
        if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
            match self.path_for("hugetlb") {
                Some(dir) => common::hugetlb(V1, dir, limits)?,
                // Hybrid hosts may offer hugetlb only in the v2 hierarchy (like this project's
                // build hosts); use it there rather than fail.
                None => match (&self.unified_mount, self.paths.get("")) {
                    (Some(mount), Some(dir)) => {
                        common::enable_controllers(mount, dir, &["hugetlb"]);
                        common::hugetlb(Ver::V2, dir, limits)?
                    }
                    _ => self.v1_dir("hugetlb", "hugepageLimits").map(drop)?,
                },
            }
        }
        if let Some(n) = r.network() {
            self.network_v1(n)?;
        }
        if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            common::rdma(V1, self.v1_dir("rdma", "linux.resources.rdma")?, rdma)?;
        }
        Ok(())
    }

    /// A new cpuset cgroup starts with empty cpus/mems and accepts no tasks. As runc, every
    /// directory from the hierarchy's root down to the leaf whose cpus/mems are empty gets its
    /// parent's, whether husk made it or found it so (an intermediate directory someone else
    /// created), unless the spec sets them for the leaf.
    fn cpuset_v1(&self, r: &LinuxResources, _created: &[PathBuf]) -> Result<(), CgroupError> {
        let cpu = r.cpu().as_ref();
        let cpus = cpu
            .and_then(|c| c.cpus().as_deref())
            .filter(|s| !s.is_empty());
        let mems = cpu
            .and_then(|c| c.mems().as_deref())
            .filter(|s| !s.is_empty());
        let leaf = match self.path_for("cpuset") {
            Some(leaf) => leaf,
            None if cpus.is_none() && mems.is_none() => return Ok(()),
            None => return self.v1_dir("cpuset", "cpu.cpus/cpu.mems").map(drop),
        };
        let mut chain: Vec<&Path> = leaf
            .ancestors()
            .take_while(|d| d.join("cpuset.cpus").exists())
            .collect();
        chain.reverse();
        for dir in chain.iter().skip(1) {
            let Some(parent) = dir.parent() else { continue };
            for (file, wanted) in [("cpuset.cpus", cpus), ("cpuset.mems", mems)] {
                if *dir == leaf && wanted.is_some() {
                    continue;
                }
                if !fsx::read(dir, file)?.trim().is_empty() {
                    continue;
                }
                let value = fsx::read(parent, file)?;
                if !value.trim().is_empty() {
                    fsx::write(V1, dir, file, value.trim())?;
                }
            }
        }
        for (file, value) in [("cpuset.cpus", cpus), ("cpuset.mems", mems)] {
            if let Some(v) = value {
                fsx::write(V1, leaf, file, v)?;
            }
        }
        Ok(())
    }

    fn memory_v1(&self, m: &LinuxMemory) -> Result<(), CgroupError> {
        let limit = m.limit().unwrap_or(0);
        let mut swap = m.swap().unwrap_or(0);
        let wants_memory = limit != 0
            || swap != 0
            || m.reservation().is_some_and(|v| v != 0)
            || m.kernel_tcp().is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer() == Some(true);
        if !wants_memory {
            if m.kernel().is_some() {
                warn!("linux.resources.memory.kernel is ignored (kernel memory limits are deprecated)");
            }
            return Ok(());
        }
        let dir = self.v1_dir("memory", "linux.resources.memory")?;
        // Unlimited memory without an explicit swap setting means unlimited swap too.
        if limit == -1 && swap == 0 && fsx::exists(dir, "memory.memsw.limit_in_bytes") {
            swap = -1;
        }
        // memsw must stay >= memory, so the order depends on whether the limit grows.
        let swap_first = limit != 0 && swap != 0 && {
            let current = fsx::read_u64(dir, "memory.limit_in_bytes")?;
            swap == -1 || current < swap as u64
        };
        if swap_first {
            set_swap_v1(dir, swap)?;
            set_memory_v1(dir, limit)?;
        } else {
            set_memory_v1(dir, limit)?;
            set_swap_v1(dir, swap)?;
        }
        if m.kernel().is_some() {
            warn!("linux.resources.memory.kernel is ignored (kernel memory limits are deprecated)");
        }
        if let Some(v) = m.kernel_tcp() {
            if fsx::exists(dir, "memory.kmem.tcp.limit_in_bytes") {
                fsx::write(V1, dir, "memory.kmem.tcp.limit_in_bytes", &v.to_string())?;
            } else {
                warn!("linux.resources.memory.kernelTCP is ignored: memory.kmem.tcp.limit_in_bytes is not supported by this kernel");
            }
        }
        if let Some(v) = m.reservation().filter(|&v| v != 0) {
            fsx::write(V1, dir, "memory.soft_limit_in_bytes", &v.to_string())?;
        }
        if m.disable_oom_killer() == Some(true) {
            fsx::write(V1, dir, "memory.oom_control", "1")?;
        }
        match m.swappiness() {
            // -1 (as u64) means "keep the default".
            None | Some(u64::MAX) => {}
            Some(v) if v <= 100 => fsx::write(V1, dir, "memory.swappiness", &v.to_string())?,
            Some(v) => {
                return Err(CgroupError::Config(format!(
                    "invalid memory swappiness {v}: the valid range is 0-100"
                )))
            }
        }
        Ok(())
    }

    fn cpu_v1(&self, c: &LinuxCpu) -> Result<(), CgroupError> {
        let shares = c.shares().filter(|&v| v != 0);
        let period = c.period().filter(|&v| v != 0);
        let quota = c.quota().filter(|&v| v != 0);
        let rt_period = c.realtime_period().filter(|&v| v != 0);
        let rt_runtime = c.realtime_runtime().filter(|&v| v != 0);
        if shares.is_none()
            && period.is_none()
            && quota.is_none()
            && c.burst().is_none()
            && rt_period.is_none()
            && rt_runtime.is_none()
            && c.idle().is_none()
        {
            return Ok(());
        }
        let dir = self.v1_dir("cpu", "linux.resources.cpu")?;
        if let Some(shares) = shares {
            fsx::write(V1, dir, "cpu.shares", &shares.to_string())?;
            // The kernel clamps silently; report it like runc.
            let got = fsx::read_u64(dir, "cpu.shares")?;
            if shares > got {
                return Err(CgroupError::Rejected(format!(
                    "the maximum allowed cpu-shares is {got}"
                )));
            } else if shares < got {
                return Err(CgroupError::Rejected(format!(
                    "the minimum allowed cpu-shares is {got}"
                )));
            }
        }
        // A period below the current one can be refused (EINVAL) until the quota is lowered
        // too; retry it after the quota, as can a burst above the current quota.
        let period_str = period.map(|p| p.to_string());
        let period_later = match &period_str {
            Some(p) => common::write_or_defer(V1, dir, "cpu.cfs_period_us", p, quota.is_some())?,
            None => false,
        };
        let burst_str = c.burst().map(|b| b.to_string());
        let burst_later = match &burst_str {
            Some(b) => common::write_or_defer(V1, dir, "cpu.cfs_burst_us", b, quota.is_some())?,
            None => false,
        };
        if let Some(q) = quota {
            fsx::write(V1, dir, "cpu.cfs_quota_us", &q.to_string())?;
            if let (true, Some(p)) = (period_later, &period_str) {
                fsx::write(V1, dir, "cpu.cfs_period_us", p)?;
            }
            if let (true, Some(b)) = (burst_later, &burst_str) {
                fsx::write(V1, dir, "cpu.cfs_burst_us", b)?;
            }
        }
        // The kernel refuses a period below the current runtime (EINVAL) until the runtime is
        // lowered: then write the runtime first and the period after it, as runc does.
        let rt_period_str = rt_period.map(|p| p.to_string());
        let rt_period_later = match &rt_period_str {
            Some(p) => {
                common::write_or_defer(V1, dir, "cpu.rt_period_us", p, rt_runtime.is_some())?
            }
            None => false,
        };
        if let Some(v) = rt_runtime {
            fsx::write(V1, dir, "cpu.rt_runtime_us", &v.to_string())?;
            if let (true, Some(p)) = (rt_period_later, &rt_period_str) {
                fsx::write(V1, dir, "cpu.rt_period_us", p)?;
            }
        }
        if let Some(v) = c.idle() {
            fsx::write(V1, dir, "cpu.idle", &v.to_string())?;
        }
        Ok(())
    }

    fn blkio_v1(&self, b: &LinuxBlockIo) -> Result<(), CgroupError> {
        let throttles = [
            (
                "blkio.throttle.read_bps_device",
                b.throttle_read_bps_device(),
            ),
            (
                "blkio.throttle.write_bps_device",
                b.throttle_write_bps_device(),
            ),
            (
                "blkio.throttle.read_iops_device",
                b.throttle_read_iops_device(),
            ),
            (
                "blkio.throttle.write_iops_device",
                b.throttle_write_iops_device(),
            ),
        ];
        let weight = b.weight().filter(|&w| w != 0);
        let leaf = b.leaf_weight().filter(|&w| w != 0);
        let devs = b.weight_device().as_deref().unwrap_or_default();
        if weight.is_none()
            && leaf.is_none()
            && devs.is_empty()
            && throttles
                .iter()
                .all(|(_, l)| l.as_ref().map_or(true, Vec::is_empty))
        {
            return Ok(());
        }
        let dir = self.v1_dir("blkio", "linux.resources.blockIO")?;
        // CFQ kernels have blkio.weight; BFQ ones blkio.bfq.weight.
        let (weight_file, device_file) =
            if !fsx::exists(dir, "blkio.weight") && fsx::exists(dir, "blkio.bfq.weight") {
                ("blkio.bfq.weight", "blkio.bfq.weight_device")
            } else {
                ("blkio.weight", "blkio.weight_device")
            };
        if let Some(w) = weight {
            fsx::write(V1, dir, weight_file, &w.to_string())?;
        }
        if let Some(w) = leaf {
            fsx::write(V1, dir, "blkio.leaf_weight", &w.to_string())?;
        }
        for d in devs {
            if let Some(w) = d.weight() {
                fsx::write(
                    V1,
                    dir,
                    device_file,
                    &format!("{}:{} {w}", d.major(), d.minor()),
                )?;
            }
            if let Some(w) = d.leaf_weight() {
                fsx::write(
                    V1,
                    dir,
                    "blkio.leaf_weight_device",
                    &format!("{}:{} {w}", d.major(), d.minor()),
                )?;
            }
        }
        for (file, list) in throttles {
            for t in list.as_deref().unwrap_or_default() {
                fsx::write(
                    V1,
                    dir,
                    file,
                    &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                )?;
            }
        }
        Ok(())
    }

    fn network_v1(&self, n: &LinuxNetwork) -> Result<(), CgroupError> {
        if let Some(id) = n.class_id().filter(|&id| id != 0) {
            fsx::write(
                V1,
                self.v1_dir("net_cls", "network.classID")?,
                "net_cls.classid",
                &id.to_string(),
            )?;
        }
        if let Some(prios) = n.priorities().as_ref().filter(|p| !p.is_empty()) {
            let dir = self.v1_dir("net_prio", "network.priorities")?;
            for p in prios {
                fsx::write(
                    V1,
                    dir,
                    "net_prio.ifpriomap",
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
        Ok(())
    }
}

fn set_memory_v1(dir: &Path, limit: i64) -> Result<(), CgroupError> {
    if limit == 0 {
        return Ok(());
    }
    let value = limit.to_string();
    match fsx::write_raw(dir, "memory.limit_in_bytes", &value) {
        Ok(()) => Ok(()),
        // EBUSY: the new limit is below the current usage.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            let usage = fsx::read_u64(dir, "memory.usage_in_bytes")?;
            let peak = fsx::read_u64(dir, "memory.max_usage_in_bytes")?;
            Err(CgroupError::Rejected(format!("unable to set memory limit to {limit} (current usage: {usage}, peak usage: {peak})")))
        }
        Err(e) => Err(fsx::write_err(V1, dir, "memory.limit_in_bytes", &value, &e)),
    }
}

fn set_swap_v1(dir: &Path, swap: i64) -> Result<(), CgroupError> {
    if swap == 0 {
        return Ok(());
    }
    fsx::write(V1, dir, "memory.memsw.limit_in_bytes", &swap.to_string())
}
