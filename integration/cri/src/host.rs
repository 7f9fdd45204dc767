//! What the checks look at on the host: cgroup v1 files, processes, mounts, namespaces.

use std::path::{Path, PathBuf};

const CGROUP: &str = "/sys/fs/cgroup";
/// The v1 hierarchies a kubelet's cgroupfs driver makes pod cgroups in.
const CONTROLLERS: &[&str] = &[
    "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids",
];

pub fn write_file(p: &Path, s: &str) -> Result<(), String> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    }
    std::fs::write(p, s).map_err(|e| format!("write {}: {e}", p.display()))
}

/// The file's content, trimmed ("" when unreadable).
pub fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `/sys/fs/cgroup/<ctrl><cgroup>` for a cgroup path like `/parent/id`.
pub fn cgroup(ctrl: &str, path: &str) -> PathBuf {
    PathBuf::from(format!("{CGROUP}/{ctrl}{path}"))
}

/// The controllers this host has as v1 hierarchies.
fn controllers() -> impl Iterator<Item = &'static str> {
    CONTROLLERS
        .iter()
        .copied()
        .filter(|c| Path::new(CGROUP).join(c).is_dir())
}

/// Makes the pod cgroup in every v1 hierarchy, like the kubelet's pod container manager does
/// before RunPodSandbox (cpuset levels get their parent's cpus and mems, as libcontainer's
/// cgroupfs manager gives them).
pub fn make_pod_cgroup(path: &str) -> Result<(), String> {
    for ctrl in controllers() {
        let mut dir = PathBuf::from(CGROUP).join(ctrl);
        for part in path.split('/').filter(|s| !s.is_empty()) {
            let parent = dir.clone();
            dir.push(part);
            if dir.is_dir() {
                continue;
            }
            std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
            if ctrl == "cpuset" {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let v = read(parent.join(f));
                    std::fs::write(dir.join(f), v)
                        .map_err(|e| format!("write {}/{f}: {e}", dir.display()))?;
                }
            }
        }
    }
    Ok(())
}

/// Removes the pod cgroup (the kubelet does after RemovePodSandbox); fails if it is not empty.
pub fn remove_pod_cgroup(path: &str) -> Result<(), String> {
    let mut errs = Vec::new();
    for ctrl in controllers() {
        let dir = cgroup(ctrl, path);
        if dir.is_dir() {
            let subs: Vec<String> = std::fs::read_dir(&dir)
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.path().is_dir())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            if let Err(e) = std::fs::remove_dir(&dir) {
                errs.push(format!("rmdir {}: {e} (children: {subs:?})", dir.display()));
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: u64) -> bool {
    let stat = read(format!("/proc/{pid}/stat"));
    match stat.rsplit_once(") ") {
        Some((_, rest)) => !rest.starts_with('Z') && !rest.starts_with('X'),
        None => false,
    }
}

/// Mount points whose mountinfo line mentions `needle` (an id or a path).
pub fn mounts_with(needle: &str) -> Vec<String> {
    read("/proc/self/mountinfo")
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .collect()
}

/// The namespace link (`net:[4026531840]`) of a process.
pub fn ns(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// The runtime's `list -q` under a state root: the container ids it still has.
pub fn runtime_list(binary: &Path, root: &Path) -> Result<Vec<String>, String> {
    let out = std::process::Command::new(binary)
        .arg("--root")
        .arg(root)
        .args(["list", "-q"])
        .output()
        .map_err(|e| format!("{} list: {e}", binary.display()))?;
    if !out.status.success() && root.exists() {
        return Err(format!(
            "{} --root {} list -q: {}",
            binary.display(),
            root.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect())
}

/// The runtime's `state ID` status field ("running", "stopped", ...).
pub fn runtime_status(binary: &Path, root: &Path, id: &str) -> Result<String, String> {
    let out = std::process::Command::new(binary)
        .arg("--root")
        .arg(root)
        .args(["state", id])
        .output()
        .map_err(|e| format!("{} state: {e}", binary.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        format!(
            "{} --root {} state {id}: {}",
            binary.display(),
            root.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    Ok(v["status"].as_str().unwrap_or_default().to_string())
}
