//! Resource usage, serialized exactly like the `data` of runc's `events --stats` output
//! (runc 1.1 `types.Stats`), including Go's `omitempty` behaviour.

mod v1;
mod v2;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::CgroupError;
use crate::{Manager, Mode};

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    pub network_interfaces: Option<Vec<NetworkInterface>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Hugetlb {
    #[serde(default, skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct BlkioEntry {
    #[serde(default, skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(default, skip_serializing_if = "zero")]
    pub value: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "ioQueueRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Pids {
    #[serde(default, skip_serializing_if = "zero")]
    pub current: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

/// CPU time in nanoseconds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuUsage {
    #[serde(default, skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuSet {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Intel RDT statistics; filled by the runtime when it manages resctrl (never by this crate).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct IntelRdt {}

/// Per-interface counters of networks the runtime configured itself (runc field names).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInterface {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

impl Manager {
    /// Current resource usage of the container.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        match self.mode {
            Mode::Unified => {
                if let Some(dir) = self.path_for("") {
                    v2::collect(dir, &mut s)?;
                }
            }
            _ => {
                v1::collect(self, &mut s)?;
                // Hybrid hosts whose hugetlb lives in the v2 hierarchy only.
                if self.path_for("hugetlb").is_none() {
                    if let Some(dir) = self.paths.get("") {
                        v2::hugetlb(dir, &mut s)?;
                    }
                }
            }
        }
        Ok(s)
    }
}

/// Page sizes the host supports, as cgroup file names spell them ("2MB", "1GB").
pub(crate) fn hugepage_sizes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut sizes: Vec<(u64, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let label = if kb % (1 << 20) == 0 {
                format!("{}GB", kb >> 20)
            } else if kb % (1 << 10) == 0 {
                format!("{}MB", kb >> 10)
            } else {
                format!("{kb}KB")
            };
            Some((kb, label))
        })
        .collect();
    sizes.sort();
    sizes.into_iter().map(|(_, l)| l).collect()
}

/// "key value" lines (memory.stat, cpu.stat) into a map; unparsable lines are skipped.
pub(crate) fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), crate::fsx::parse_u64(v)?))
        })
        .collect()
}

/// Reads a flat-keyed file; an absent file is an empty map.
pub(crate) fn read_keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>, CgroupError> {
    Ok(crate::fsx::read_opt(dir, file)?
        .map(|t| flat_keyed(&t))
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stats_serialize_like_runc() {
        let json = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
                "cpuset": {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0, "memory_migrate": 0,
                           "memory_spread_page": 0, "memory_spread_slab": 0, "memory_pressure": 0,
                           "sched_load_balance": 0, "sched_relax_domain_level": 0},
                "memory": {"usage": {"limit": 0, "failcnt": 0}, "swap": {"limit": 0, "failcnt": 0},
                           "kernel": {"limit": 0, "failcnt": 0}, "kernelTCP": {"limit": 0, "failcnt": 0}},
                "pids": {},
                "blkio": {},
                "hugetlb": {},
                "intel_rdt": {},
                "network_interfaces": null
            })
        );
    }
}
