//! Arbitrary bytes as a container's `state.json` (first byte even) or `footprint.json` (odd),
//! read back through `husk state` and `husk list` (`husk_runtime::Runtime::state`/`list`),
//! the paths every client polls. The state root is a per-process directory on tmpfs.
//!
//! Besides "no panic": errors are one line, and `list` never hides the container (a damaged
//! record shows as status `unknown`). `delete` is not fuzzed: it acts on the cgroups,
//! processes and mounts a record names.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use husk_runtime::Runtime;
use libfuzzer_sys::fuzz_target;

const SCRATCH: &str = "/dev/shm";
const PREFIX: &str = "husk-fuzz-state-";
const ID: &str = "fuzzed";

fn root_dir() -> PathBuf {
    Path::new(SCRATCH).join(format!("{PREFIX}{}", std::process::id()))
}

extern "C" fn remove_root() {
    let _ = std::fs::remove_dir_all(root_dir());
}

fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        if let Ok(entries) = std::fs::read_dir(SCRATCH) {
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
                    continue;
                };
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let root = root_dir();
        std::fs::create_dir_all(root.join(ID)).expect("create the fuzz state root");
        // SAFETY: registers a plain extern "C" function with no captured state.
        unsafe { libc::atexit(remove_root) };
        root
    })
}

fn one_line(what: &str, msg: &str) {
    assert!(!msg.contains(['\n', '\r']), "{what}: error is not one line: {msg:?}");
}

fuzz_target!(|data: &[u8]| {
    let root = root();
    let dir = root.join(ID);
    let (file, other) = match data.first() {
        Some(b) if b % 2 == 1 => ("footprint.json", "state.json"),
        _ => ("state.json", "footprint.json"),
    };
    let _ = std::fs::remove_file(dir.join(other));
    std::fs::write(dir.join(file), data.get(1..).unwrap_or_default()).expect("write record");

    let rt = Runtime::new(Some(root), false);
    match rt.state(ID) {
        Ok(s) => assert_eq!(s.id, ID),
        Err(e) => one_line("state", &e.to_string()),
    }
    match rt.list() {
        Ok(list) => {
            if file == "state.json" {
                assert!(
                    list.iter().any(|s| s.id == ID),
                    "list hides a container whose state.json exists"
                );
            }
        }
        Err(e) => one_line("list", &e.to_string()),
    }
});
