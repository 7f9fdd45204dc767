//! Host cgroup layout detection, cheap enough for every invocation: one `statfs` of
//! `/sys/fs/cgroup`, and on v1/hybrid hosts one read of `/proc/self/cgroup` (a few hundred
//! bytes) plus one `statfs` per hierarchy. `/proc/self/mountinfo` is never parsed.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tracing::debug;

use crate::error::{io_err, CgroupError};
use crate::sys;

/// Where cgroup file systems are mounted (the path runc and systemd use).
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One mounted cgroup hierarchy and this process's cgroup in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Controllers bound to it, as `/proc/self/cgroup` lists them ("cpu", "cpuacct",
    /// "name=systemd"); empty for the v2 hierarchy.
    pub controllers: Vec<String>,
    /// Its mount point, e.g. `/sys/fs/cgroup/cpu,cpuacct`.
    pub mount: PathBuf,
    /// This process's cgroup inside it, e.g. `/user.slice`.
    pub own: String,
}

/// The host's cgroup layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies.
    V1 { hierarchies: Vec<Hierarchy> },
    /// v1 hierarchies plus a v2 hierarchy (normally at `/sys/fs/cgroup/unified`).
    Hybrid {
        hierarchies: Vec<Hierarchy>,
        unified: Hierarchy,
    },
    /// cgroup v2 only, mounted at `mount`.
    Unified { mount: PathBuf },
}

impl Layout {
    /// The v1 hierarchies (empty on a v2 host).
    pub fn hierarchies(&self) -> &[Hierarchy] {
        match self {
            Layout::V1 { hierarchies } | Layout::Hybrid { hierarchies, .. } => hierarchies,
            Layout::Unified { .. } => &[],
        }
    }
}

fn magic(path: &Path) -> Option<i64> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    sys::fs_magic(&c).ok()
}

/// Detects the layout of this host (see the module docs for the cost).
pub fn detect() -> Result<Layout, CgroupError> {
    let root = Path::new(CGROUP_ROOT);
    let c = CString::new(CGROUP_ROOT).map_err(|_| CgroupError::Layout("bad root path".into()))?;
    match sys::fs_magic(&c) {
        Ok(sys::CGROUP2_SUPER_MAGIC) => {
            return Ok(Layout::Unified {
                mount: root.to_path_buf(),
            })
        }
        Ok(_) => {}
        Err(e) => return Err(CgroupError::Layout(format!("statfs {CGROUP_ROOT}: {e}"))),
    }
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| io_err("read", "/proc/self/cgroup", &e))?;
    from_proc_cgroup(&text, root, magic)
}

/// Builds a v1/hybrid layout from the text of `/proc/self/cgroup`; `magic` reports the file
/// system type of a candidate mount point (None when it does not exist).
pub(crate) fn from_proc_cgroup(
    text: &str,
    root: &Path,
    magic: impl Fn(&Path) -> Option<i64>,
) -> Result<Layout, CgroupError> {
    let mut hierarchies = Vec::new();
    let mut unified = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(own)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            let mount = root.join("unified");
            if magic(&mount) == Some(sys::CGROUP2_SUPER_MAGIC) {
                unified = Some(Hierarchy {
                    controllers: Vec::new(),
                    mount,
                    own: own.to_string(),
                });
            }
            continue;
        }
        let controllers: Vec<String> = ctrls.split(',').map(str::to_string).collect();
        // Co-mounted controllers live at ".../cpu,cpuacct" (often with "cpu" and "cpuacct"
        // symlinks); a single controller at ".../memory"; named hierarchies without "name=".
        let mut candidates = Vec::with_capacity(controllers.len() + 1);
        if controllers.len() > 1 {
            candidates.push(root.join(ctrls));
        }
        candidates.extend(
            controllers
                .iter()
                .map(|c| root.join(c.strip_prefix("name=").unwrap_or(c))),
        );
        match candidates
            .into_iter()
            .find(|p| magic(p) == Some(sys::CGROUP_SUPER_MAGIC))
        {
            Some(mount) => hierarchies.push(Hierarchy {
                controllers,
                mount,
                own: own.to_string(),
            }),
            None => debug!(
                controllers = ctrls,
                "cgroup v1 hierarchy is not mounted under {}",
                root.display()
            ),
        }
    }
    if hierarchies.is_empty() {
        return Err(CgroupError::Layout(format!(
            "no cgroup hierarchy is mounted under {}",
            root.display()
        )));
    }
    Ok(match unified {
        Some(unified) => Layout::Hybrid {
            hierarchies,
            unified,
        },
        None => Layout::V1 { hierarchies },
    })
}

/// Cleans a `cgroupsPath` lexically like runc's `CleanPath`: "." and ".." are resolved
/// without ever climbing above the start, so a relative path stays below its base.
/// Returns the cleaned components and whether the path was absolute.
pub(crate) fn clean(path: &str) -> (Vec<&str>, bool) {
    let mut out: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    (out, path.starts_with('/'))
}

/// `base` joined with an absolute cgroup path such as "/a/b" (no "." or "..").
pub(crate) fn join(base: &Path, cgroup: &str) -> PathBuf {
    let rel = cgroup.trim_start_matches('/');
    if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

/// The parent of a cgroup path ("/a/b" -> "/a", "/" -> "/").
pub(crate) fn parent_cgroup(cgroup: &str) -> &str {
    match cgroup.trim_end_matches('/').rfind('/') {
        Some(0) | None => "/",
        Some(i) => &cgroup[..i],
    }
}

/// This process's cgroup v2 path from `/proc/self/cgroup` (the "0::" line).
pub(crate) fn own_v2_cgroup() -> Result<String, CgroupError> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| io_err("read", "/proc/self/cgroup", &e))?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
        .ok_or_else(|| CgroupError::Layout("no cgroup v2 entry in /proc/self/cgroup".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_never_escapes() {
        assert_eq!(clean("/a/../../b/./c/"), (vec!["b", "c"], true));
        assert_eq!(clean("../x"), (vec!["x"], false));
        assert_eq!(clean("a//b"), (vec!["a", "b"], false));
        assert_eq!(clean("/"), (vec![], true));
    }

    #[test]
    fn parent_of_cgroup_paths() {
        assert_eq!(parent_cgroup("/a/b"), "/a");
        assert_eq!(parent_cgroup("/a"), "/");
        assert_eq!(parent_cgroup("/"), "/");
        assert_eq!(
            join(Path::new("/sys/fs/cgroup"), "/"),
            Path::new("/sys/fs/cgroup")
        );
    }

    #[test]
    fn co_mounted_and_named_hierarchies() {
        let text = "12:cpu,cpuacct:/user.slice\n11:name=systemd:/init.scope\n10:memory:/\n9:net_cls:/\n0::/init.scope\n";
        let root = Path::new("/sys/fs/cgroup");
        let mounted = |p: &Path| match p.to_str().unwrap() {
            "/sys/fs/cgroup/cpu,cpuacct" | "/sys/fs/cgroup/systemd" | "/sys/fs/cgroup/memory" => {
                Some(sys::CGROUP_SUPER_MAGIC)
            }
            "/sys/fs/cgroup/unified" => Some(sys::CGROUP2_SUPER_MAGIC),
            _ => None,
        };
        let Layout::Hybrid {
            hierarchies,
            unified,
        } = from_proc_cgroup(text, root, mounted).unwrap()
        else {
            panic!("expected a hybrid layout")
        };
        assert_eq!(
            hierarchies.len(),
            3,
            "net_cls is not mounted and must be skipped"
        );
        assert_eq!(hierarchies[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(
            hierarchies[0].mount,
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(hierarchies[0].own, "/user.slice");
        assert_eq!(hierarchies[1].mount, Path::new("/sys/fs/cgroup/systemd"));
        assert_eq!(unified.own, "/init.scope");
        // Same host without the unified mount is plain v1.
        let v1 = from_proc_cgroup(text, root, |p| {
            mounted(p).filter(|&m| m != sys::CGROUP2_SUPER_MAGIC)
        })
        .unwrap();
        assert!(matches!(v1, Layout::V1 { .. }));
    }
}
