//! husk-spec: loading, validating and generating OCI runtime configurations.
//!
//! The types are oci-spec's; this crate adds the bundle loader used on every container
//! start (one read, one parse, a handful of stats), runc-compatible validation with
//! one-line errors naming the file and the field, and the `runc spec` default config.

#![forbid(unsafe_code)]

mod default;
mod error;
mod locate;
mod parse;
mod read;
mod validate;

use std::path::{Path, PathBuf};

pub use default::{default_spec, SPEC_VERSION};
pub use error::SpecError;
pub use oci_spec::runtime::Spec;
pub use read::MAX_CONFIG_BYTES;
pub use validate::validate;

/// Name under which config errors are reported.
const CONFIG_FILE: &str = "config.json";

/// A loaded bundle: absolute bundle dir (canonicalized), the parsed spec, absolute rootfs path.
#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

/// Reads `<bundle>/config.json`, parses it with oci-spec and validates it.
///
/// `bundle` may be relative (it is resolved against the current directory). After
/// validation the spec is normalized the way runc interprets it: relative mount
/// destinations become absolute (relative to the container's `/`) and namespace
/// entries with an empty `path` mean "create a new namespace" (`path` is `None`).
pub fn load_bundle(bundle: &Path) -> Result<Bundle, SpecError> {
    let dir = std::fs::canonicalize(bundle).map_err(|source| SpecError::Bundle {
        path: bundle.to_path_buf(),
        source,
    })?;
    let config = dir.join(CONFIG_FILE);
    let bytes = read::read_config_file(&config)?;
    let (spec, rootfs) = parse_config(&bytes, &dir)?;
    tracing::debug!(bundle = %dir.display(), rootfs = %rootfs.display(), "loaded bundle");
    Ok(Bundle { dir, spec, rootfs })
}

/// What [`load_bundle`] does with the bytes of `config.json`: parses, validates (which
/// stats the rootfs, resolved against `bundle_dir`, and namespace paths) and normalizes
/// them. Returns the spec and the absolute rootfs path.
pub fn parse_config(bytes: &[u8], bundle_dir: &Path) -> Result<(Spec, PathBuf), SpecError> {
    let mut spec: Spec = parse_lenient(bytes, CONFIG_FILE, "/process/capabilities", false)?;
    let rootfs = validate::validate_config(&spec, bundle_dir)?;
    validate::normalize(&mut spec);
    Ok((spec, rootfs))
}

/// What runc accepts and oci-spec's types do not, made acceptable: the spec's scheduler flag
/// names (see [`oci_spec_flag_name`]), capability names nobody
/// knows are dropped with runc's warning (runc >= 1.2; the runtime-spec says unknown
/// capabilities must not fail), and, in a process file (`process` = None), a missing `user`
/// is 0:0. `caps` is the JSON pointer of the capabilities object. `None` when nothing
/// changed (the parse error stands). Only called after a failed parse: no cost otherwise.
fn repaired(bytes: &[u8], caps: &str, process_file: bool) -> Option<Vec<u8>> {
    use serde_json::Value;
    let mut v: Value = serde_json::from_slice(bytes).ok()?;
    let mut changed = false;
    if process_file {
        let obj = v.as_object_mut()?;
        if !obj.contains_key("user") {
            obj.insert("user".into(), serde_json::json!({"uid": 0, "gid": 0}));
            changed = true;
        }
    }
    let flags = caps.replace("capabilities", "scheduler/flags");
    if let Some(flags) = v.pointer_mut(&flags).and_then(Value::as_array_mut) {
        for f in flags.iter_mut() {
            if let Some(ours) = f.as_str().and_then(oci_spec_flag_name) {
                *f = Value::String(ours.to_owned());
                changed = true;
            }
        }
    }
    if let Some(sets) = v.pointer_mut(caps).and_then(Value::as_object_mut) {
        let mut unknown: Vec<String> = Vec::new();
        for set in sets.values_mut().filter_map(Value::as_array_mut) {
            set.retain(|name| {
                let known =
                    serde_json::from_value::<oci_spec::runtime::Capability>(name.clone()).is_ok();
                if !known {
                    if let Some(n) = name.as_str().filter(|n| !unknown.iter().any(|u| u == n)) {
                        unknown.push(n.to_owned());
                    }
                }
                known || !name.is_string()
            });
        }
        if !unknown.is_empty() {
            tracing::warn!("ignoring unknown or unavailable capabilities: {unknown:?}");
            changed = true;
        }
    }
    changed.then(|| serde_json::to_vec(&v).ok()).flatten()
}

/// The runtime-spec's scheduler flag names that oci-spec 0.10 spells otherwise (its serde
/// rename turns `SchedResetOnFork` into `SCHED_RESET_ON_FORK` and `SchedFlagDLOverrun` into
/// `SCHED_FLAG_D_L_OVERRUN`): the name oci-spec reads for the spec's name.
fn oci_spec_flag_name(spec_name: &str) -> Option<&'static str> {
    match spec_name {
        "SCHED_FLAG_RESET_ON_FORK" => Some("SCHED_RESET_ON_FORK"),
        "SCHED_FLAG_DL_OVERRUN" => Some("SCHED_FLAG_D_L_OVERRUN"),
        _ => None,
    }
}

/// Parses `bytes`; on failure, retries once with [`repaired`] input.
fn parse_lenient<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    file: &str,
    caps: &str,
    process_file: bool,
) -> Result<T, SpecError> {
    parse::parse(bytes, file).or_else(|e| match repaired(bytes, caps, process_file) {
        Some(fixed) => parse::parse(&fixed, file).map_err(|_| e),
        None => Err(e),
    })
}

/// Parses a process JSON (as given to `runc exec --process FILE`), validated like
/// `spec.process`. Errors name `path` as the file and the field relative to the process.
pub fn load_process(path: &Path) -> Result<oci_spec::runtime::Process, SpecError> {
    let bytes = read::read_config_file(path)?;
    let file = path.display().to_string();
    let process = parse_lenient(&bytes, &file, "/capabilities", true)?;
    validate::validate_process(&process, &file, "")?;
    Ok(process)
}
