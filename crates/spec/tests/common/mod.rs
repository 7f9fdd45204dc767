//! Shared helpers: temporary bundles built from runc's default config.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use husk_spec::SpecError;
use serde_json::Value;

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("husk-spec-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir.canonicalize().unwrap())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `runc spec` output (runc 1.1.5), as saved in tests/fixtures.
pub fn runc_config() -> Value {
    serde_json::from_str(include_str!("../fixtures/runc-spec.json")).unwrap()
}

/// `runc spec --rootless` output (runc 1.1.5, run as root), as saved in tests/fixtures.
pub fn runc_rootless_config() -> Value {
    serde_json::from_str(include_str!("../fixtures/runc-spec-rootless.json")).unwrap()
}

/// A bundle with a `rootfs` directory and `config` as config.json.
pub fn bundle_with(config: &Value) -> TempDir {
    let bundle = TempDir::new();
    std::fs::create_dir(bundle.path().join("rootfs")).unwrap();
    write_config(&bundle, &serde_json::to_vec_pretty(config).unwrap());
    bundle
}

pub fn write_config(bundle: &TempDir, bytes: &[u8]) {
    std::fs::write(bundle.path().join("config.json"), bytes).unwrap();
}

/// Loads a bundle made from `config`, expecting failure.
pub fn load_err(config: &Value) -> SpecError {
    let bundle = bundle_with(config);
    match husk_spec::load_bundle(bundle.path()) {
        Ok(_) => panic!("config unexpectedly valid: {config}"),
        Err(err) => err,
    }
}

/// Asserts `err` is about config.json's `field` and its message contains `msg`.
pub fn assert_invalid(err: &SpecError, field: &str, msg: &str) {
    match err {
        SpecError::Invalid {
            file,
            field: f,
            msg: m,
        } => {
            assert_eq!(file, "config.json", "{err}");
            assert_eq!(f, field, "{err}");
            assert!(m.contains(msg), "{err:?} does not contain {msg:?}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        other => panic!("expected an invalid-field error for {field}, got {other:?}"),
    }
}

/// Mutable access to a nested member, creating objects on the way.
pub fn at<'a>(config: &'a mut Value, pointer: &str) -> &'a mut Value {
    let mut value = config;
    for key in pointer.split('/').filter(|k| !k.is_empty()) {
        value = match value {
            Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
            other => {
                if !other.is_object() {
                    *other = Value::Object(Default::default());
                }
                other
                    .as_object_mut()
                    .unwrap()
                    .entry(key.to_owned())
                    .or_insert(Value::Null)
            }
        };
    }
    value
}
