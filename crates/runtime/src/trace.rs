//! Phase timing for one container start: `HUSK_TRACE=1` (or `--debug`) prints how long each
//! setup phase took, so users can see where their start time goes. The init reports its own
//! phases with [`ToParent::Mark`](crate::protocol::ToParent::Mark) messages (only when tracing: the
//! plan says so), timed on the same monotonic clock.

husk_sys::step_enum! {
    /// The init's setup phases, in order; each ends with a mark.
    /// - Clone: the kernel's clone3 (new namespaces, mount table copy) until the init runs.
    /// - Cgroups: descriptors closed, v1 cgroups joined.
    /// - Namespaces: waiting for the parent's id maps, namespaces joined or unshared,
    ///   keyring, hostname.
    /// - Mounts: the rootfs mounts, devices and links, under the old root.
    /// - Hooks: prestart/createRuntime (in the parent) and createContainer (only with hooks).
    /// - PivotRoot: pivot_root (or chroot).
    /// - Finish: console, sysctls, masked and readonly paths, propagation, read-only root.
    /// - Security: LSM label, rlimits, scheduler, cwd, no_new_privs, seccomp, capabilities
    ///   and user, program lookup.
    pub(crate) enum InitPhase {
        Clone,
        Cgroups,
        Namespaces,
        Mounts,
        Hooks,
        PivotRoot,
        Finish,
        Security,
    }
}

impl InitPhase {
    fn name(self) -> &'static str {
        match self {
            InitPhase::Clone => "clone",
            InitPhase::Cgroups => "cgroups",
            InitPhase::Namespaces => "namespaces",
            InitPhase::Mounts => "mounts",
            InitPhase::Hooks => "hooks",
            InitPhase::PivotRoot => "pivot-root",
            InitPhase::Finish => "finish",
            InitPhase::Security => "security",
        }
    }
}

pub(crate) struct Phases {
    start: u64,
    last: u64,
    marks: Vec<(&'static str, u64)>,
    /// The init's phases (name, µs) and where the next one starts.
    init_marks: Vec<(&'static str, u64)>,
    init_last: u64,
    enabled: bool,
}

impl Phases {
    pub fn new() -> Phases {
        let now = husk_sys::monotonic_ns();
        let enabled = std::env::var_os("HUSK_TRACE").is_some_and(|v| !v.is_empty() && v != "0")
            || tracing::enabled!(tracing::Level::DEBUG);
        Phases {
            start: now,
            last: now,
            marks: Vec::new(),
            init_marks: Vec::new(),
            init_last: now,
            enabled,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Ends the phase called `name`.
    pub fn mark(&mut self, name: &'static str) {
        if self.enabled {
            let now = husk_sys::monotonic_ns();
            self.marks.push((name, (now - self.last) / 1000));
            self.last = now;
        }
    }

    /// The init is about to be cloned: its first phase starts now.
    pub fn init_begins(&mut self) {
        if self.enabled {
            self.init_last = husk_sys::monotonic_ns();
        }
    }

    /// The init says its phase `phase` ended at `ns`.
    pub fn init_mark(&mut self, phase: u16, ns: u64) {
        if let Some(phase) = InitPhase::from_u16(phase) {
            let us = ns.saturating_sub(self.init_last) / 1000;
            self.init_marks.push((phase.name(), us));
            self.init_last = self.init_last.max(ns);
        }
    }

    /// Prints the phases (to stderr with HUSK_TRACE, to the debug log with --debug); the
    /// init's own phases follow in parentheses, timed from the clone.
    pub fn report(&self, what: &str, id: &str) {
        if !self.enabled {
            return;
        }
        let total = (self.last - self.start) / 1000;
        let us = |list: &[(&str, u64)]| -> Vec<String> {
            list.iter().map(|(n, us)| format!("{n}={us}us")).collect()
        };
        let mut line = format!("{what} {id}: {} total={total}us", us(&self.marks).join(" "));
        if !self.init_marks.is_empty() {
            line.push_str(&format!(" (init: {})", us(&self.init_marks).join(" ")));
        }
        if std::env::var_os("HUSK_TRACE").is_some() {
            eprintln!("husk-trace: {line}");
        } else {
            tracing::debug!("{line}");
        }
    }
}
