//! Pieces shared by the v1 and v2 writers: runc's v1 -> v2 value conversions, hugetlb and
//! rdma limits, and enabling v2 controllers on ancestors.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{LinuxHugepageLimit, LinuxRdma};
use tracing::debug;

use crate::error::CgroupError;
use crate::fsx::{self, Ver};

/// runc's cpu.shares [2, 262144] -> cpu.weight [1, 10000] mapping; 0 stays "unset".
pub(crate) fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// `pids.max` for a `pids.limit`, as runc >= 1.2: negative is "max", and 0, which the kernel
/// would take as "no process at all" and systemd cannot express, is 1.
pub(crate) fn pids_max(limit: i64) -> String {
    match limit {
        l if l < 0 => "max".to_string(),
        0 => "1".to_string(),
        l => l.to_string(),
    }
}

/// runc's blkio.weight [10, 1000] -> io.weight [1, 10000] mapping; 0 stays "unset".
pub(crate) fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let weight = u64::from(weight.clamp(10, 1000));
    1 + (weight - 10) * 9999 / 990
}

/// OCI `memory.swap` is memory+swap (v1's memsw); v2's memory.swap.max is swap alone.
/// Returns the v2 value (-1 = "max", 0 = unset) or why the pair is invalid (runc's rules).
pub(crate) fn swap_to_v2(swap: i64, memory: i64) -> Result<i64, CgroupError> {
    let bad = |why: String| Err(CgroupError::Config(why));
    match (swap, memory) {
        (0, -1) => Ok(-1),
        (-1, _) | (0, _) => Ok(swap),
        (_, -1) => Ok(swap),
        (_, 0) => bad("unable to set swap limit without memory limit".into()),
        (_, m) if m < 0 => bad(format!("invalid memory value: {m}")),
        (s, m) if s < m => bad(format!(
            "memory+swap limit ({s}) should be >= memory limit ({m})"
        )),
        (s, m) => Ok(s - m),
    }
}

/// Writes `value`; when the kernel says EINVAL and `can_defer`, returns true so the caller
/// retries after a related value (e.g. the CFS quota) has been written.
pub(crate) fn write_or_defer(
    ver: Ver,
    dir: &Path,
    file: &str,
    value: &str,
    can_defer: bool,
) -> Result<bool, CgroupError> {
    match fsx::write_raw(dir, file, value) {
        Ok(()) => Ok(false),
        Err(e) if can_defer && e.raw_os_error() == Some(libc::EINVAL) => Ok(true),
        Err(e) => Err(fsx::write_err(ver, dir, file, value, &e)),
    }
}

fn valid_page_size(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB")
}

/// Hugepage limits; the reservation limit (`rsvd`) is set to the same value where the kernel
/// has it, so reserved-but-unfaulted pages count too.
pub(crate) fn hugetlb(
    ver: Ver,
    dir: &Path,
    limits: &[LinuxHugepageLimit],
) -> Result<(), CgroupError> {
    for l in limits {
        let size = l.page_size();
        if !valid_page_size(size) {
            return Err(CgroupError::Config(format!(
                "invalid hugepage size {size:?} (expected e.g. \"2MB\")"
            )));
        }
        if l.limit() < 0 {
            return Err(CgroupError::Config(format!(
                "invalid hugepage limit {} for {size}",
                l.limit()
            )));
        }
        let value = l.limit().to_string();
        let (main, rsvd) = match ver {
            Ver::V1 => (
                format!("hugetlb.{size}.limit_in_bytes"),
                format!("hugetlb.{size}.rsvd.limit_in_bytes"),
            ),
            Ver::V2 => (
                format!("hugetlb.{size}.max"),
                format!("hugetlb.{size}.rsvd.max"),
            ),
        };
        fsx::write(ver, dir, &main, &value)?;
        if fsx::exists(dir, &rsvd) {
            fsx::write(ver, dir, &rsvd, &value)?;
        }
    }
    Ok(())
}

/// RDMA limits, one `rdma.max` line per device.
pub(crate) fn rdma(
    ver: Ver,
    dir: &Path,
    limits: &HashMap<String, LinuxRdma>,
) -> Result<(), CgroupError> {
    let mut devices: Vec<_> = limits.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in devices {
        let mut line = dev.clone();
        if let Some(h) = l.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        fsx::write(ver, dir, "rdma.max", &line)?;
    }
    Ok(())
}

/// Enables `controllers` in `cgroup.subtree_control` of every ancestor of `leaf` from the
/// hierarchy root `mount` down, so `leaf` gets their files. Failures are left for the
/// following writes to report (a missing file then names the controller).
pub(crate) fn enable_controllers(mount: &Path, leaf: &Path, controllers: &[&str]) {
    if controllers.is_empty() {
        return;
    }
    let all = controllers
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    let Ok(rel) = leaf.strip_prefix(mount) else {
        return;
    };
    let mut dir = mount.to_path_buf();
    for comp in rel.components() {
        if fsx::write_raw(&dir, "cgroup.subtree_control", &all).is_err() {
            for c in controllers {
                if let Err(e) = fsx::write_raw(&dir, "cgroup.subtree_control", &format!("+{c}")) {
                    debug!(dir = %dir.display(), controller = c, "cannot enable controller: {e}");
                }
            }
        }
        dir.push(comp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(swap_to_v2(0, -1).unwrap(), -1);
        assert_eq!(swap_to_v2(-1, 100).unwrap(), -1);
        assert_eq!(swap_to_v2(300, 100).unwrap(), 200);
        assert_eq!(swap_to_v2(100, 100).unwrap(), 0);
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(50, 0).is_err());
        assert!(
            valid_page_size("2MB")
                && valid_page_size("1GB")
                && !valid_page_size("2M")
                && !valid_page_size("MB")
        );
    }
}
