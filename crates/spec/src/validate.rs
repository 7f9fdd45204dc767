//! Validation of a parsed config: what the runtime-spec says MUST hold, following the
//! checks runc 1.1 makes (libcontainer/configs/validate and specconv) where they differ.
//!
//! Syscalls: one stat of the rootfs, one per namespace `path`, plus one of
//! /proc/self/ns/net only when net.* sysctls are combined with a joined network namespace.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{Linux, LinuxDeviceType, LinuxNamespaceType, Spec};

use crate::error::{errno_text, SpecError};
pub(crate) use crate::validate::process::validate_process;
use crate::CONFIG_FILE;

mod netdev;
mod process;
mod sysctl;

/// Validation of a parsed spec (also used by `load_bundle`). `bundle_dir` is needed to
/// resolve `root.path`; errors name `config.json` and the offending field.
pub fn validate(spec: &Spec, bundle_dir: &Path) -> Result<(), SpecError> {
    validate_config(spec, bundle_dir).map(drop)
}

/// Validates `spec` and returns the absolute rootfs path.
pub(crate) fn validate_config(spec: &Spec, bundle_dir: &Path) -> Result<PathBuf, SpecError> {
    let f = CONFIG_FILE;
    check_version(spec.version()).map_err(|msg| SpecError::invalid(f, "ociVersion", msg))?;
    let rootfs = check_root(spec, bundle_dir)?;
    match spec.process() {
        Some(process) => validate_process(process, f, "process.")?,
        None => {
            return Err(SpecError::invalid(
                f,
                "process",
                "required field is missing (husk needs a process to run)",
            ))
        }
    }
    for (i, mount) in spec.mounts().iter().flatten().enumerate() {
        let dest = mount.destination();
        if dest.as_os_str().is_empty() {
            return Err(SpecError::invalid(
                f,
                format!("mounts[{i}].destination"),
                "must not be empty",
            ));
        }
        if !dest.is_absolute() {
            // runc 1.1 accepts this (the runtime-spec now allows it on Linux): the path
            // is taken relative to the container's "/".
            tracing::warn!(
                "config.json: mounts[{i}].destination: {dest:?} is not absolute, using it relative to /"
            );
        }
    }
    let empty;
    let linux = match spec.linux() {
        Some(linux) => linux,
        None => {
            empty = empty_linux();
            &empty
        }
    };
    if linux.intel_rdt().is_some() {
        return Err(SpecError::invalid(
            f,
            "linux.intelRdt",
            "Intel RDT is not supported by husk",
        ));
    }
    let ns = check_namespaces(linux)?;
    check_id_mappings(linux, &ns)?;
    for (field, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if value.as_deref().is_some_and(|v| !v.is_empty()) && !ns.has(LinuxNamespaceType::Uts) {
            return Err(SpecError::invalid(
                f,
                field,
                format!("setting the {field} requires a uts namespace in linux.namespaces"),
            ));
        }
    }
    sysctl::check_sysctls(linux, &ns)?;
    netdev::check_net_devices(linux, &ns)?;
    check_linux_paths(linux, &ns)?;
    check_devices(linux)?;
    check_time_offsets(linux, &ns)?;
    if let Some(prop) = linux.rootfs_propagation() {
        const VALID: [&str; 9] = [
            "",
            "shared",
            "slave",
            "private",
            "unbindable",
            "rshared",
            "rslave",
            "rprivate",
            "runbindable",
        ];
        if !VALID.contains(&prop.as_str()) {
            return Err(SpecError::invalid(
                f,
                "linux.rootfsPropagation",
                format!("{prop:?} is not a valid mount propagation"),
            ));
        }
    }
    check_hooks(spec)?;
    Ok(rootfs)
}

/// Rewrites the spec the way runc interprets it, once it has been validated.
pub(crate) fn normalize(spec: &mut Spec) {
    for mount in spec.mounts_mut().iter_mut().flatten() {
        if !mount.destination().is_absolute() {
            let absolute = Path::new("/").join(mount.destination());
            mount.set_destination(absolute);
        }
    }
    if let Some(linux) = spec.linux_mut() {
        for ns in linux.namespaces_mut().iter_mut().flatten() {
            if ns.path().as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                ns.set_path(None);
            }
        }
    }
}

/// A `linux` object with nothing set (oci-spec's `Default` fills in runc-like values).
fn empty_linux() -> Linux {
    let mut linux = Linux::default();
    linux
        .set_resources(None)
        .set_namespaces(None)
        .set_masked_paths(None)
        .set_readonly_paths(None);
    linux
}

/// `ociVersion` must be a SemVer 2.0.0 version with major version 1.
fn check_version(version: &str) -> Result<(), String> {
    if version.is_empty() {
        return Err("required field is missing or empty".to_owned());
    }
    let invalid = || format!("{version:?} is not a valid semantic version");
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numeric = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let ident =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| numeric(p)) {
        return Err(invalid());
    }
    if let Some(pre) = pre {
        let ok = pre
            .split('.')
            .all(|id| ident(id) && (!id.bytes().all(|b| b.is_ascii_digit()) || numeric(id)));
        if !ok {
            return Err(invalid());
        }
    }
    if build.is_some_and(|b| !b.split('.').all(ident)) {
        return Err(invalid());
    }
    if parts[0] != "1" {
        return Err(format!(
            "version {version:?} is not supported (only 1.x configs are)"
        ));
    }
    Ok(())
}

/// `root` must be present and `root.path` must be an existing directory.
fn check_root(spec: &Spec, bundle_dir: &Path) -> Result<PathBuf, SpecError> {
    let f = CONFIG_FILE;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| SpecError::invalid(f, "root", "required field is missing"))?;
    if root.path().as_os_str().is_empty() {
        return Err(SpecError::invalid(
            f,
            "root.path",
            "required field is missing or empty",
        ));
    }
    let rootfs = clean_join(bundle_dir, root.path());
    let meta = std::fs::metadata(&rootfs).map_err(|e| {
        let msg = match e.kind() {
            io::ErrorKind::NotFound => format!("rootfs {rootfs:?} does not exist"),
            _ => format!("cannot stat rootfs {rootfs:?}: {}", errno_text(&e)),
        };
        SpecError::invalid(f, "root.path", msg)
    })?;
    if !meta.is_dir() {
        return Err(SpecError::invalid(
            f,
            "root.path",
            format!("rootfs {rootfs:?} is not a directory"),
        ));
    }
    Ok(rootfs)
}

/// `base.join(path)` with `.` and `..` resolved lexically (like Go's filepath.Join).
fn clean_join(base: &Path, path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in base.join(path).components() {
        match component {
            Component::ParentDir => {
                if out.parent().is_some() {
                    out.pop();
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

const NS_TYPES: usize = 8;

fn ns_index(typ: LinuxNamespaceType) -> usize {
    match typ {
        LinuxNamespaceType::Mount => 0,
        LinuxNamespaceType::Cgroup => 1,
        LinuxNamespaceType::Uts => 2,
        LinuxNamespaceType::Ipc => 3,
        LinuxNamespaceType::User => 4,
        LinuxNamespaceType::Pid => 5,
        LinuxNamespaceType::Network => 6,
        LinuxNamespaceType::Time => 7,
    }
}

/// The runtime-spec name of a namespace type.
fn ns_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// The namespaces a config asks for: `None` = not listed (shared with the runtime),
/// `Some(None)` = a new one, `Some(Some((dev, ino)))` = joined by path.
struct Namespaces([Option<Option<(u64, u64)>>; NS_TYPES]);

impl Namespaces {
    fn has(&self, typ: LinuxNamespaceType) -> bool {
        self.0[ns_index(typ)].is_some()
    }

    fn is_new(&self, typ: LinuxNamespaceType) -> bool {
        matches!(self.0[ns_index(typ)], Some(None))
    }

    fn joined(&self, typ: LinuxNamespaceType) -> Option<(u64, u64)> {
        self.0[ns_index(typ)].flatten()
    }
}

/// Namespace types must be unique; a `path` must be absolute and exist.
fn check_namespaces(linux: &Linux) -> Result<Namespaces, SpecError> {
    let f = CONFIG_FILE;
    let mut ns = Namespaces([None; NS_TYPES]);
    for (i, entry) in linux.namespaces().iter().flatten().enumerate() {
        let typ = entry.typ();
        if ns.has(typ) {
            return Err(SpecError::invalid(
                f,
                "linux.namespaces",
                format!("namespace type {:?} appears twice", ns_name(typ)),
            ));
        }
        let path = entry
            .path()
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty());
        let joined = match path {
            None => None,
            Some(path) => {
                let field = || format!("linux.namespaces[{i}].path");
                if !path.is_absolute() {
                    let msg = format!("{path:?} is not an absolute path");
                    return Err(SpecError::invalid(f, field(), msg));
                }
                let meta = std::fs::metadata(path).map_err(|e| {
                    let msg = match e.kind() {
                        io::ErrorKind::NotFound => format!("{path:?} does not exist"),
                        _ => format!("cannot stat {path:?}: {}", errno_text(&e)),
                    };
                    SpecError::invalid(f, field(), msg)
                })?;
                Some((meta.dev(), meta.ino()))
            }
        };
        ns.0[ns_index(typ)] = Some(joined);
    }
    Ok(ns)
}

/// A new user namespace needs both mappings; mappings need a user namespace.
fn check_id_mappings(linux: &Linux, ns: &Namespaces) -> Result<(), SpecError> {
    let f = CONFIG_FILE;
    let user = LinuxNamespaceType::User;
    for (field, maps) in [
        ("linux.uidMappings", linux.uid_mappings()),
        ("linux.gidMappings", linux.gid_mappings()),
    ] {
        let maps = maps.as_deref().unwrap_or_default();
        if maps.is_empty() && ns.is_new(user) {
            let msg = "a new user namespace requires at least one mapping";
            return Err(SpecError::invalid(f, field, msg));
        }
        if !maps.is_empty() && !ns.has(user) {
            let msg = "mappings are set but linux.namespaces has no user namespace";
            return Err(SpecError::invalid(f, field, msg));
        }
        if let Some(i) = maps.iter().position(|m| m.size() == 0) {
            let msg = "must be greater than zero";
            return Err(SpecError::invalid(f, format!("{field}[{i}].size"), msg));
        }
    }
    Ok(())
}

/// maskedPaths/readonlyPaths must be absolute and need a mount namespace.
fn check_linux_paths(linux: &Linux, ns: &Namespaces) -> Result<(), SpecError> {
    let f = CONFIG_FILE;
    for (field, paths) in [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ] {
        let paths = paths.as_deref().unwrap_or_default();
        if let Some(i) = paths.iter().position(|p| !p.starts_with('/')) {
            let msg = format!("{:?} is not an absolute path", paths[i]);
            return Err(SpecError::invalid(f, format!("{field}[{i}]"), msg));
        }
        if !paths.is_empty() && !ns.has(LinuxNamespaceType::Mount) {
            let msg = "restricting paths requires a mount namespace in linux.namespaces";
            return Err(SpecError::invalid(f, field, msg));
        }
    }
    Ok(())
}

/// linux.devices: type c/b/u/p and an absolute path; cgroup device rules: type a/b/c
/// and access made of r, w and m.
fn check_devices(linux: &Linux) -> Result<(), SpecError> {
    let f = CONFIG_FILE;
    for (i, dev) in linux.devices().iter().flatten().enumerate() {
        if dev.typ() == LinuxDeviceType::A {
            let msg = "device type \"a\" is not a device node type (use c, b, u or p)";
            return Err(SpecError::invalid(
                f,
                format!("linux.devices[{i}].type"),
                msg,
            ));
        }
        if !dev.path().is_absolute() {
            let msg = format!("{:?} is not an absolute path", dev.path());
            return Err(SpecError::invalid(
                f,
                format!("linux.devices[{i}].path"),
                msg,
            ));
        }
    }
    let rules = linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().as_ref());
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        if let Some(typ @ (LinuxDeviceType::U | LinuxDeviceType::P)) = rule.typ() {
            let msg = format!(
                "device type {:?} is not valid in a cgroup rule (use a, b or c)",
                typ.as_str()
            );
            let field = format!("linux.resources.devices[{i}].type");
            return Err(SpecError::invalid(f, field, msg));
        }
        if let Some(access) = rule.access() {
            if !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
                let msg = format!("access {access:?} may only contain r, w and m");
                let field = format!("linux.resources.devices[{i}].access");
                return Err(SpecError::invalid(f, field, msg));
            }
        }
    }
    Ok(())
}

/// timeOffsets need a new time namespace and only name the offsettable clocks.
fn check_time_offsets(linux: &Linux, ns: &Namespaces) -> Result<(), SpecError> {
    let field = "linux.timeOffsets";
    let Some(offsets) = linux.time_offsets().as_ref().filter(|o| !o.is_empty()) else {
        return Ok(());
    };
    let time = LinuxNamespaceType::Time;
    if !ns.is_new(time) {
        let msg = match ns.has(time) {
            true => "cannot set time offsets when joining an existing time namespace",
            false => "time offsets require a time namespace in linux.namespaces",
        };
        return Err(SpecError::invalid(CONFIG_FILE, field, msg));
    }
    let bad = offsets
        .keys()
        .filter(|k| !matches!(k.as_str(), "monotonic" | "boottime"))
        .min();
    if let Some(clock) = bad {
        let msg = format!("unknown clock {clock:?} (expected monotonic or boottime)");
        return Err(SpecError::invalid(CONFIG_FILE, field, msg));
    }
    Ok(())
}

/// Hook paths must be absolute and timeouts positive.
fn check_hooks(spec: &Spec) -> Result<(), SpecError> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    #[allow(deprecated)] // prestart is deprecated but still honoured by runc
    let lists = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (name, list) in lists {
        for (i, hook) in list.iter().flatten().enumerate() {
            if !hook.path().is_absolute() {
                let msg = format!("{:?} is not an absolute path", hook.path());
                return Err(SpecError::invalid(
                    CONFIG_FILE,
                    format!("hooks.{name}[{i}].path"),
                    msg,
                ));
            }
            if hook.timeout().is_some_and(|t| t <= 0) {
                return Err(SpecError::invalid(
                    CONFIG_FILE,
                    format!("hooks.{name}[{i}].timeout"),
                    "must be greater than zero",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in [
            "1.0.0",
            "1.0.2-dev",
            "1.2.1",
            "1.0.0-rc.1+build.5",
            "1.10.0",
        ] {
            assert_eq!(check_version(ok), Ok(()), "{ok}");
        }
        for bad in ["1.0", "v1.0.0", "1.0.0-", "01.0.0", "1.0.0-01", "1..0", "x"] {
            let msg = check_version(bad).unwrap_err();
            assert!(msg.contains("not a valid semantic version"), "{bad}: {msg}");
        }
        assert!(check_version("2.0.0")
            .unwrap_err()
            .contains("not supported"));
        assert!(check_version("0.5.0")
            .unwrap_err()
            .contains("not supported"));
        assert!(check_version("").unwrap_err().contains("missing"));
    }

    #[test]
    fn clean_join_is_lexical() {
        let base = Path::new("/b/bundle");
        assert_eq!(
            clean_join(base, Path::new("rootfs")),
            Path::new("/b/bundle/rootfs")
        );
        assert_eq!(
            clean_join(base, Path::new("./r/../rootfs/")),
            Path::new("/b/bundle/rootfs")
        );
        assert_eq!(
            clean_join(base, Path::new("/abs/root")),
            Path::new("/abs/root")
        );
        assert_eq!(clean_join(base, Path::new("../../../x")), Path::new("/x"));
    }
}
