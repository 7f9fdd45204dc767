//! The runtime-spec features document (`husk features`), built from what husk's crates
//! support and what this host has (namespaces, capabilities, cgroup layout, LSMs). The CLI
//! only prints it.

use std::path::Path;

use serde_json::{json, Value};

pub use husk_spec::SPEC_VERSION;

/// Namespace types whose `/proc/self/ns` entry exists on this kernel.
fn namespaces() -> Vec<&'static str> {
    [
        ("cgroup", "cgroup"),
        ("ipc", "ipc"),
        ("mount", "mnt"),
        ("network", "net"),
        ("pid", "pid"),
        ("time", "time"),
        ("user", "user"),
        ("uts", "uts"),
    ]
    .into_iter()
    .filter(|(_, file)| Path::new("/proc/self/ns").join(file).exists())
    .map(|(name, _)| name)
    .collect()
}

fn cgroup() -> Value {
    let layout = husk_cgroups::detect().ok();
    let (v1, v2) = match &layout {
        Some(husk_cgroups::Layout::V1 { .. }) => (true, false),
        Some(husk_cgroups::Layout::Hybrid { .. }) => (true, true),
        Some(husk_cgroups::Layout::Unified { .. }) => (false, true),
        None => (false, false),
    };
    let rdma = layout.as_ref().is_some_and(|l| {
        l.hierarchies()
            .iter()
            .any(|h| h.controllers.iter().any(|c| c == "rdma"))
    }) || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "rdma"));
    json!({"v1": v1, "v2": v2, "systemd": true, "systemdUser": true, "rdma": rdma})
}

/// Where `criu` is on `$PATH`, or "not found" (`criu check` runs at checkpoint time).
fn criu_binary() -> String {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("criu"))
                .find(|p| p.is_file())
        })
        .map_or_else(|| "not found".into(), |p| p.display().to_string())
}

fn lsm_enabled(path: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| s.trim() == "Y" || s.trim() == "1")
}

/// The features document.
pub fn features() -> Value {
    let seccomp = husk_hardening::features::seccomp();
    let mut mount_options: Vec<&str> = husk_rootfs::KNOWN_OPTIONS.to_vec();
    mount_options.sort_unstable();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": namespaces(),
            "capabilities": husk_hardening::features::capabilities(),
            "cgroup": cgroup(),
            "seccomp": {
                "enabled": Path::new("/proc/sys/kernel/seccomp/actions_avail").exists(),
                "actions": seccomp.actions,
                "operators": seccomp.operators,
                "archs": seccomp.archs,
                "knownFlags": seccomp.flags,
                "supportedFlags": seccomp.flags,
            },
            "apparmor": {"enabled": lsm_enabled("/sys/module/apparmor/parameters/enabled")},
            "selinux": {"enabled": Path::new("/sys/fs/selinux/enforce").exists()},
            "intelRdt": {"enabled": false},
            "netDevices": {"enabled": true},
            "mountExtensions": {"idmap": {"enabled": husk_rootfs::idmap::supported()}},
        },
        "annotations": {
            "io.github.husk.version": env!("CARGO_PKG_VERSION"),
            // checkpoint/restore through CRIU; runc's key too, for clients that look for it
            "org.opencontainers.runc.checkpoint.enabled": "true",
            "io.github.husk.checkpoint.enabled": "true",
            "io.github.husk.checkpoint.criu": criu_binary(),
        },
    })
}
