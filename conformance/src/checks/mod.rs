//! The checks, grouped by topic. Each one builds its own bundle, uses containers with ids of
//! its own, and removes them (the `Container` guard) whatever the outcome.

use std::fmt::Display;
use std::fs;
use std::path::{Path, PathBuf};

use crate::bundle::{Bundle, Busybox};
use crate::runtime::{wait_until, Container, Runtime, SETTLE};

/// Why a check did not pass.
#[derive(Debug)]
pub enum Problem {
    Fail(String),
    Skip(String),
}

pub type Outcome = Result<(), Problem>;

macro_rules! fail {
    ($($t:tt)*) => { return Err($crate::checks::Problem::Fail(format!($($t)*))) };
}

macro_rules! ensure {
    ($cond:expr, $($t:tt)*) => { if !$cond { fail!($($t)*) } };
}

mod filesystem;
mod hooks;
mod lifecycle;
mod namespaces;
mod process;

/// One conformance check: a name to select it by, the spec text it checks, and the code.
pub struct Check {
    pub name: &'static str,
    pub spec: &'static str,
    pub run: fn(&Ctx) -> Outcome,
}

pub fn all() -> Vec<&'static Check> {
    lifecycle::CHECKS
        .iter()
        .chain(hooks::CHECKS)
        .chain(process::CHECKS)
        .chain(namespaces::CHECKS)
        .chain(filesystem::CHECKS)
        .collect()
}

/// Turns any error into a failure naming what was being done.
pub trait OrFail<T> {
    fn or_fail(self, what: &str) -> Result<T, Problem>;
}

impl<T, E: Display> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: &str) -> Result<T, Problem> {
        self.map_err(|e| Problem::Fail(format!("{what}: {e}")))
    }
}

/// What every check gets: the runtime and a place to build bundles.
pub struct Ctx {
    pub rt: Runtime,
    work: PathBuf,
    busybox: Busybox,
    tag: String,
}

impl Ctx {
    pub fn new(rt: Runtime, work: PathBuf, busybox: Busybox) -> Ctx {
        let tag = format!("conf{}", std::process::id());
        Ctx {
            rt,
            work,
            busybox,
            tag,
        }
    }

    /// A fresh bundle in `WORK/name` (names are unique per check).
    pub fn bundle(&self, name: &str) -> Result<Bundle, Problem> {
        let base = self.work.join(name);
        let _ = fs::remove_dir_all(&base);
        Bundle::create(&base, &self.busybox).or_fail(&format!("building bundle {name}"))
    }

    /// A container id unique to this run and this bundle.
    pub fn id(&self, name: &str) -> String {
        format!("{}-{name}", self.tag)
    }

    /// The guard for the container of `bundle`, id derived from the bundle's name.
    pub fn container<'a>(&'a self, bundle: &'a Bundle) -> Container<'a> {
        let name = bundle
            .base
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Container::new(&self.rt, self.id(&name), bundle)
    }

    /// Runs the bundle's process to its end and returns what it wrote on stdout.
    pub fn output(&self, bundle: &Bundle) -> Result<String, Problem> {
        let c = self.container(bundle);
        if let Err(Problem::Fail(e)) = c.run_to_exit() {
            let err = bundle.stderr();
            let tail = err.lines().last().unwrap_or("").trim();
            fail!("{e}; container stderr: {tail:?}");
        }
        Ok(bundle.stdout())
    }
}

/// Waits for a file (a marker written by a container process or hook) to exist.
pub fn wait_file(path: &Path) -> Outcome {
    if wait_until(SETTLE, || path.exists()) {
        Ok(())
    } else {
        fail!("{} never appeared", path.display())
    }
}

/// Lines of output as trimmed strings.
pub fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}
