//! Validation of a process object (`config.json`'s `process`, or `exec --process`).

use oci_spec::runtime::{LinuxSchedulerPolicy, Process};

use crate::error::SpecError;

/// Validates `process`; fields are reported as `<prefix><field>` (`prefix` is
/// `"process."` inside config.json and empty for a standalone process file).
pub(crate) fn validate_process(
    process: &Process,
    file: &str,
    prefix: &str,
) -> Result<(), SpecError> {
    let err = |field: &str, msg: String| SpecError::invalid(file, format!("{prefix}{field}"), msg);

    if process.args().as_ref().map_or(true, Vec::is_empty) {
        return Err(err("args", "must not be empty".to_owned()));
    }
    let cwd = process.cwd();
    if cwd.as_os_str().is_empty() {
        return Err(err("cwd", "must not be empty".to_owned()));
    }
    if !cwd.is_absolute() {
        return Err(err("cwd", format!("{cwd:?} is not an absolute path")));
    }
    for (i, var) in process.env().iter().flatten().enumerate() {
        let problem = match var.split_once('=') {
            None => "is not of the form KEY=value",
            Some(("", _)) => "has an empty variable name",
            Some(_) if var.contains('\0') => "contains a NUL byte",
            Some(_) => continue,
        };
        return Err(err(&format!("env[{i}]"), format!("{var:?} {problem}")));
    }
    let mut seen = 0u32;
    for (i, rlimit) in process.rlimits().iter().flatten().enumerate() {
        let bit = 1u32 << (rlimit.typ() as u32);
        if seen & bit != 0 {
            let msg = format!("rlimit type {} appears twice", rlimit.typ());
            return Err(err("rlimits", msg));
        }
        seen |= bit;
        if rlimit.soft() > rlimit.hard() {
            let msg = format!(
                "soft limit {} of {} exceeds the hard limit {}",
                rlimit.soft(),
                rlimit.typ(),
                rlimit.hard()
            );
            return Err(err(&format!("rlimits[{i}]"), msg));
        }
    }
    if let Some(umask) = process.user().umask() {
        if umask > 0o777 {
            return Err(err(
                "user.umask",
                format!("{umask:#o} is not a valid umask"),
            ));
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            let msg = format!("{adj} is outside the range -1000..1000");
            return Err(err("oomScoreAdj", msg));
        }
    }
    if let Some(prio) = process.io_priority() {
        if !(0..=7).contains(&prio.priority()) {
            let msg = format!("{} is outside the range 0..7", prio.priority());
            return Err(err("ioPriority.priority", msg));
        }
    }
    if let Some(sched) = process.scheduler() {
        let policy = *sched.policy();
        if let Some(nice) = *sched.nice() {
            if !(-20..=19).contains(&nice) {
                let msg = format!("{nice} is outside the range -20..19");
                return Err(err("scheduler.nice", msg));
            }
        }
        let realtime = matches!(
            policy,
            LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
        );
        if sched.priority().is_some_and(|p| p != 0) && !realtime {
            let msg = format!("only valid with SCHED_FIFO or SCHED_RR, not {policy}");
            return Err(err("scheduler.priority", msg));
        }
        let deadline = [sched.runtime(), sched.deadline(), sched.period()];
        if policy != LinuxSchedulerPolicy::SchedDeadline
            && deadline.iter().any(|v| v.is_some_and(|v| v != 0))
        {
            let msg = format!(
                "runtime, deadline and period are only valid with SCHED_DEADLINE, not {policy}"
            );
            return Err(err("scheduler", msg));
        }
    }
    Ok(())
}
