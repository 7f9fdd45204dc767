//! Statistics from cgroup v1 hierarchies (same files and fallbacks as runc's fs driver).

use std::path::Path;

use super::{hugepage_sizes, read_keyed, BlkioEntry, Hugetlb, MemoryEntry, Stats};
use crate::error::CgroupError;
use crate::fsx;
use crate::Manager;

pub(super) fn collect(m: &Manager, s: &mut Stats) -> Result<(), CgroupError> {
    if let Some(dir) = m.path_for("cpuacct") {
        cpuacct(dir, s)?;
    }
    if let Some(dir) = m.path_for("cpu") {
        let st = read_keyed(dir, "cpu.stat")?;
        let t = &mut s.cpu.throttling;
        t.periods = st.get("nr_periods").copied().unwrap_or(0);
        t.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
        t.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(dir) = m.path_for("cpuset") {
        cpuset(dir, s)?;
    }
    if let Some(dir) = m.path_for("memory") {
        memory(dir, s)?;
    }
    if let Some(dir) = m.path_for("pids") {
        s.pids.current = fsx::read_u64(dir, "pids.current")?;
        // "max" means no limit, which runc reports as 0.
        s.pids.limit = fsx::read_u64(dir, "pids.max")?;
        if s.pids.limit == u64::MAX {
            s.pids.limit = 0;
        }
    }
    if let Some(dir) = m.path_for("blkio") {
        blkio(dir, s)?;
    }
    if let Some(dir) = m.path_for("hugetlb") {
        for size in hugepage_sizes() {
            let usage = fsx::read_u64_opt(dir, &format!("hugetlb.{size}.usage_in_bytes"))?;
            let Some(usage) = usage else { continue };
            let max = fsx::read_u64(dir, &format!("hugetlb.{size}.max_usage_in_bytes"))?;
            let failcnt = fsx::read_u64(dir, &format!("hugetlb.{size}.failcnt"))?;
            s.hugetlb.insert(
                size,
                Hugetlb {
                    usage,
                    max,
                    failcnt,
                },
            );
        }
    }
    Ok(())
}

fn cpuacct(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    let u = &mut s.cpu.usage;
    u.total = fsx::read_u64(dir, "cpuacct.usage")?;
    let st = read_keyed(dir, "cpuacct.stat")?;
    u.user = st.get("user").copied().unwrap_or(0) * (1_000_000_000 / USER_HZ);
    u.kernel = st.get("system").copied().unwrap_or(0) * (1_000_000_000 / USER_HZ);
    if let Some(text) = fsx::read_opt(dir, "cpuacct.usage_percpu")? {
        u.percpu = text
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
    }
    // "cpu user system" header, then one line per CPU, in nanoseconds.
    if let Some(text) = fsx::read_opt(dir, "cpuacct.usage_all")? {
        for line in text.lines().skip(1) {
            let f: Vec<u64> = line
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            if let [_, user, system] = f[..] {
                u.percpu_user.push(user);
                u.percpu_kernel.push(system);
            }
        }
    }
    Ok(())
}

/// cpuacct.stat counts USER_HZ ticks, which Linux fixes at 100 for user space (runc
/// hard-codes it too).
const USER_HZ: u64 = 100;

/// "0-2,4" -> [0, 1, 2, 4].
fn parse_list(s: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>().ok()),
        }
    }
    out
}

fn cpuset(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    let c = &mut s.cpuset;
    c.cpus = parse_list(&fsx::read(dir, "cpuset.cpus")?);
    c.mems = parse_list(&fsx::read(dir, "cpuset.mems")?);
    let num =
        |file: &str| -> Result<u64, CgroupError> { Ok(fsx::read_u64_opt(dir, file)?.unwrap_or(0)) };
    c.cpu_exclusive = num("cpuset.cpu_exclusive")?;
    c.mem_hardwall = num("cpuset.mem_hardwall")?;
    c.mem_exclusive = num("cpuset.mem_exclusive")?;
    c.memory_migrate = num("cpuset.memory_migrate")?;
    c.memory_spread_page = num("cpuset.memory_spread_page")?;
    c.memory_spread_slab = num("cpuset.memory_spread_slab")?;
    c.memory_pressure = num("cpuset.memory_pressure")?;
    c.sched_load_balance = num("cpuset.sched_load_balance")?;
    if let Some(level) = fsx::read_opt(dir, "cpuset.sched_relax_domain_level")? {
        c.sched_relax_domain_level = level.trim().parse().unwrap_or(0);
    }
    Ok(())
}

/// usage/max_usage/failcnt/limit of "memory", "memory.memsw", "memory.kmem", ...; the
/// optional ones (swap, kernel) are zero when the kernel lacks them.
fn memory_entry(dir: &Path, prefix: &str, required: bool) -> Result<MemoryEntry, CgroupError> {
    let usage = fsx::read_u64_opt(dir, &format!("{prefix}.usage_in_bytes"))?;
    let Some(usage) = usage else {
        if required {
            return Err(fsx::missing(
                fsx::Ver::V1,
                dir,
                &format!("{prefix}.usage_in_bytes"),
            ));
        }
        return Ok(MemoryEntry::default());
    };
    Ok(MemoryEntry {
        usage,
        max: fsx::read_u64(dir, &format!("{prefix}.max_usage_in_bytes"))?,
        failcnt: fsx::read_u64(dir, &format!("{prefix}.failcnt"))?,
        limit: fsx::read_u64(dir, &format!("{prefix}.limit_in_bytes"))?,
    })
}

fn memory(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    let m = &mut s.memory;
    m.raw = read_keyed(dir, "memory.stat")?;
    m.cache = m.raw.get("cache").copied().unwrap_or(0);
    m.usage = memory_entry(dir, "memory", true)?;
    m.swap = memory_entry(dir, "memory.memsw", false)?;
    m.kernel = memory_entry(dir, "memory.kmem", false)?;
    m.kernel_tcp = memory_entry(dir, "memory.kmem.tcp", false)?;
    Ok(())
}

/// Lines "8:0 Read 4096", "8:0 4096" or "Total 4096" (skipped).
fn blkio_entries(dir: &Path, file: &str) -> Result<Option<Vec<BlkioEntry>>, CgroupError> {
    let Some(text) = fsx::read_opt(dir, file)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split([' ', ':']).filter(|x| !x.is_empty()).collect();
        let (major, minor, op, value) = match f[..] {
            [ma, mi, op, v] => (ma, mi, op, v),
            [ma, mi, v] => (ma, mi, "", v),
            _ => continue,
        };
        let parse = |x: &str| {
            x.parse::<u64>().map_err(|_| CgroupError::Parse {
                path: dir.join(file),
                what: format!("bad line {line:?}"),
            })
        };
        out.push(BlkioEntry {
            major: parse(major)?,
            minor: parse(minor)?,
            op: op.to_string(),
            value: parse(value)?,
        });
    }
    Ok(if out.is_empty() { None } else { Some(out) })
}

fn blkio(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    // Scheduler-specific files first (BFQ with debug stats, BFQ, CFQ), then the throttling
    // layer's, which always exist. The first group whose first file has entries wins.
    let b = &mut s.blkio;
    let groups: [&[&str]; 5] = [
        &[
            "blkio.bfq.sectors_recursive",
            "blkio.bfq.io_service_time_recursive",
            "blkio.bfq.io_wait_time_recursive",
            "blkio.bfq.io_merged_recursive",
            "blkio.bfq.io_queued_recursive",
            "blkio.bfq.time_recursive",
            "blkio.bfq.io_serviced_recursive",
            "blkio.bfq.io_service_bytes_recursive",
        ],
        &[
            "blkio.bfq.io_serviced_recursive",
            "blkio.bfq.io_service_bytes_recursive",
        ],
        &[
            "blkio.sectors_recursive",
            "blkio.io_service_time_recursive",
            "blkio.io_wait_time_recursive",
            "blkio.io_merged_recursive",
            "blkio.io_queued_recursive",
            "blkio.time_recursive",
            "blkio.io_serviced_recursive",
            "blkio.io_service_bytes_recursive",
        ],
        &[
            "blkio.throttle.io_serviced_recursive",
            "blkio.throttle.io_service_bytes_recursive",
        ],
        &[
            "blkio.throttle.io_serviced",
            "blkio.throttle.io_service_bytes",
        ],
    ];
    for group in groups {
        if blkio_entries(dir, group[0])?.is_none() {
            continue;
        }
        for file in group {
            let entries = blkio_entries(dir, file)?.unwrap_or_default();
            let kind = file
                .trim_start_matches("blkio.")
                .trim_start_matches("bfq.")
                .trim_start_matches("throttle.");
            let slot = match kind.trim_end_matches("_recursive") {
                "sectors" => &mut b.sectors_recursive,
                "io_service_time" => &mut b.io_service_time_recursive,
                "io_wait_time" => &mut b.io_wait_time_recursive,
                "io_merged" => &mut b.io_merged_recursive,
                "io_queued" => &mut b.io_queued_recursive,
                "time" => &mut b.io_time_recursive,
                "io_serviced" => &mut b.io_serviced_recursive,
                _ => &mut b.io_service_bytes_recursive,
            };
            *slot = entries;
        }
        break;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_list;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_list("0-2,4\n"), [0, 1, 2, 4]);
        assert_eq!(parse_list(""), [] as [u16; 0]);
    }
}
