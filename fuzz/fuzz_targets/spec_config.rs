//! Arbitrary bytes as a bundle's config.json, through husk-spec's parse + validate +
//! normalize path (`husk_spec::parse_config`, what `load_bundle` runs after reading the
//! file), and as an `exec --process` JSON file (`husk_spec::load_process`).
//!
//! Besides "no panic", checks what callers rely on: errors are one line, an accepted config
//! has an absolute rootfs, absolute mount destinations and no empty namespace paths, and an
//! accepted config still validates after a serialize/parse round trip.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use husk_spec::{parse_config, SpecError};
use libfuzzer_sys::fuzz_target;

/// A per-process bundle on tmpfs: `<dir>/rootfs/` (so `root.path: "rootfs"` validates)
/// and `<dir>/process.json` (the process file; also a non-directory for `root.path`).
struct Bundle {
    dir: PathBuf,
    process: PathBuf,
}

const SCRATCH: &str = "/dev/shm";
const PREFIX: &str = "husk-fuzz-spec-";

fn bundle_dir() -> PathBuf {
    Path::new(SCRATCH).join(format!("{PREFIX}{}", std::process::id()))
}

/// Removes bundles left by runs that were interrupted (libFuzzer skips atexit handlers on
/// SIGINT/SIGTERM and crashes) and whose process is gone.
fn remove_stale_bundles() {
    let Ok(entries) = std::fs::read_dir(SCRATCH) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

extern "C" fn remove_bundle() {
    let _ = std::fs::remove_dir_all(bundle_dir());
}

fn bundle() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        remove_stale_bundles();
        let dir = bundle_dir();
        std::fs::create_dir_all(dir.join("rootfs"))
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        // SAFETY: registers a plain extern "C" function with no captured state.
        unsafe { libc::atexit(remove_bundle) };
        let process = dir.join("process.json");
        Bundle { dir, process }
    })
}

fn assert_one_line(what: &str, err: &SpecError) {
    let msg = err.to_string();
    assert!(
        !msg.contains(['\n', '\r']),
        "{what}: error message is not one line: {msg:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let b = bundle();

    match parse_config(data, &b.dir) {
        Ok((spec, rootfs)) => {
            assert!(rootfs.is_absolute(), "rootfs {rootfs:?} is not absolute");
            assert!(
                spec.process().is_some(),
                "accepted a config without process"
            );
            for m in spec.mounts().iter().flatten() {
                assert!(
                    m.destination().is_absolute(),
                    "normalized mount destination {:?} is not absolute",
                    m.destination()
                );
            }
            let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
            for ns in namespaces.into_iter().flatten() {
                assert!(
                    ns.path().as_ref().is_none_or(|p| !p.as_os_str().is_empty()),
                    "normalized namespace path is empty"
                );
            }
            // What was accepted (and normalized) must be accepted again, to the same spec.
            let again = serde_json::to_vec(&spec).expect("serializing an accepted spec");
            match parse_config(&again, &b.dir) {
                Ok((spec2, rootfs2)) => {
                    assert_eq!(rootfs, rootfs2, "round trip changed the rootfs");
                    assert_eq!(spec, spec2, "round trip changed the spec");
                }
                Err(e) => panic!("round trip of an accepted config fails: {e}"),
            }
        }
        Err(e) => assert_one_line("config.json", &e),
    }

    if std::fs::write(&b.process, data).is_ok() {
        match husk_spec::load_process(&b.process) {
            Ok(p) => {
                assert!(p.args().as_ref().is_some_and(|a| !a.is_empty()));
                assert!(p.cwd().is_absolute(), "cwd {:?} is not absolute", p.cwd());
            }
            Err(e) => assert_one_line("process.json", &e),
        }
    }
});
