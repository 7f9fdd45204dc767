//! Statistics from a cgroup v2 directory, mapped onto the v1-shaped runc fields the way runc
//! does (microseconds to nanoseconds, swap reported as memory+swap, io.stat as blkio).

use std::path::Path;

use super::{hugepage_sizes, read_keyed, BlkioEntry, Hugetlb, Stats};
use crate::error::CgroupError;
use crate::fsx;

pub(super) fn collect(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    let cpu = read_keyed(dir, "cpu.stat")?;
    let get = |k: &str| cpu.get(k).copied().unwrap_or(0);
    s.cpu.usage.total = get("usage_usec") * 1000;
    s.cpu.usage.user = get("user_usec") * 1000;
    s.cpu.usage.kernel = get("system_usec") * 1000;
    s.cpu.throttling.periods = get("nr_periods");
    s.cpu.throttling.throttled_periods = get("nr_throttled");
    s.cpu.throttling.throttled_time = get("throttled_usec") * 1000;

    if let Some(current) = fsx::read_u64_opt(dir, "pids.current")? {
        s.pids.current = current;
        s.pids.limit = fsx::read_u64(dir, "pids.max")?;
        if s.pids.limit == u64::MAX {
            s.pids.limit = 0;
        }
    }

    if let Some(usage) = fsx::read_u64_opt(dir, "memory.current")? {
        let m = &mut s.memory;
        m.raw = read_keyed(dir, "memory.stat")?;
        m.cache = m.raw.get("file").copied().unwrap_or(0);
        m.usage.usage = usage;
        m.usage.limit = fsx::read_u64(dir, "memory.max")?;
        m.usage.max = fsx::read_u64_opt(dir, "memory.peak")?.unwrap_or(0);
        m.usage.failcnt = read_keyed(dir, "memory.events")?
            .get("max")
            .copied()
            .unwrap_or(0);
        // v1 reported memory+swap; keep that meaning.
        if let Some(swap) = fsx::read_u64_opt(dir, "memory.swap.current")? {
            let limit = fsx::read_u64(dir, "memory.swap.max")?;
            m.swap.usage = swap + usage;
            m.swap.limit = if limit == u64::MAX {
                limit
            } else {
                limit.saturating_add(m.usage.limit)
            };
            m.swap.max = fsx::read_u64_opt(dir, "memory.swap.peak")?.map_or(0, |p| p + m.usage.max);
        }
    }

    if let Some(text) = fsx::read_opt(dir, "io.stat")? {
        io_stat(&text, s);
    }
    hugetlb(dir, s)
}

/// "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device.
fn io_stat(text: &str, s: &mut Stats) {
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        for kv in fields {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (op, table) = match k {
                "rbytes" => ("Read", &mut s.blkio.io_service_bytes_recursive),
                "wbytes" => ("Write", &mut s.blkio.io_service_bytes_recursive),
                "rios" => ("Read", &mut s.blkio.io_serviced_recursive),
                "wios" => ("Write", &mut s.blkio.io_serviced_recursive),
                _ => continue,
            };
            table.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
}

/// Per page size: current usage and how often the limit was hit (v2 has no max usage).
pub(super) fn hugetlb(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    for size in hugepage_sizes() {
        let Some(usage) = fsx::read_u64_opt(dir, &format!("hugetlb.{size}.current"))? else {
            continue;
        };
        let failcnt = read_keyed(dir, &format!("hugetlb.{size}.events"))?
            .get("max")
            .copied()
            .unwrap_or(0);
        s.hugetlb.insert(
            size,
            Hugetlb {
                usage,
                max: 0,
                failcnt,
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_stat_maps_to_blkio() {
        let mut s = Stats::default();
        io_stat(
            "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
            &mut s,
        );
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(s.blkio.io_service_bytes_recursive[1].op, "Write");
        assert_eq!(s.blkio.io_service_bytes_recursive[1].value, 8192);
        assert_eq!(s.blkio.io_serviced_recursive[0].value, 1);
    }
}
