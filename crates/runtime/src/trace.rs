//! Phase timing for one container start: `HUSK_TRACE=1` (or `--debug`) prints how long each
//! setup phase took, so users can see where their start time goes.

use std::time::Instant;

pub(crate) struct Phases {
    start: Instant,
    last: Instant,
    marks: Vec<(&'static str, u128)>,
    enabled: bool,
}

impl Phases {
    pub fn new() -> Phases {
        let now = Instant::now();
        let enabled = std::env::var_os("HUSK_TRACE").is_some_and(|v| !v.is_empty() && v != "0")
            || tracing::enabled!(tracing::Level::DEBUG);
        Phases {
            start: now,
            last: now,
            marks: Vec::new(),
            enabled,
        }
    }

    /// Ends the phase called `name`.
    pub fn mark(&mut self, name: &'static str) {
        if self.enabled {
            let now = Instant::now();
            self.marks.push((name, (now - self.last).as_micros()));
            self.last = now;
        }
    }

    /// Prints the phases (to stderr with HUSK_TRACE, to the debug log with --debug).
    pub fn report(&self, what: &str, id: &str) {
        if !self.enabled {
            return;
        }
        let total = (self.last - self.start).as_micros();
        let parts: Vec<String> = self
            .marks
            .iter()
            .map(|(n, us)| format!("{n}={us}us"))
            .collect();
        let line = format!("{what} {id}: {} total={total}us", parts.join(" "));
        if std::env::var_os("HUSK_TRACE").is_some() {
            eprintln!("husk-trace: {line}");
        } else {
            tracing::debug!("{line}");
        }
    }
}
