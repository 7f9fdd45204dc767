//! PASS/FAIL lines, one per check, as the e2e suites print them.

use std::sync::atomic::{AtomicUsize, Ordering};

static FAILED: AtomicUsize = AtomicUsize::new(0);

/// Prints the check's result; the reason is flattened to one line.
pub fn check(name: &str, r: Result<(), String>) -> bool {
    match r {
        Ok(()) => {
            println!("PASS {name}");
            true
        }
        Err(why) => {
            FAILED.fetch_add(1, Ordering::Relaxed);
            let why: String = why.split_whitespace().collect::<Vec<_>>().join(" ");
            let why: String = why.chars().take(400).collect();
            println!("FAIL {name}: {why}");
            false
        }
    }
}

/// The process exit code: 1 if any check failed.
pub fn exit_code() -> i32 {
    i32::from(FAILED.load(Ordering::Relaxed) > 0)
}

/// `Err(why)` unless `cond`.
pub fn ensure(cond: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(why())
    }
}
