//! The measured operations and the interleaved rounds that drive them.

use std::collections::BTreeMap;
use std::fs;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::runtime::Runtime;
use crate::{say, BenchError, INTERRUPTED};

/// Samples and failures of one runtime, by metric name.
#[derive(Default)]
pub struct Results {
    pub times: BTreeMap<&'static str, Vec<Duration>>,
    pub errors: BTreeMap<&'static str, String>,
}

/// fork+exec+wait4 of /bin/true through a runtime's spawn path.
pub const FLOOR: &str = "floor";

/// The lifecycle metric and its phases, in the order [`lifecycle`] returns them.
pub const LIFECYCLE: [&str; 5] = ["lifecycle", "create", "start", "exit-wait", "delete"];

pub struct Plan<'a> {
    pub runtimes: &'a [Runtime],
    pub warmup: usize,
    /// Idle time before each measured operation, so that no runtime starts in kernel state
    /// (a still-active cgroup rcu_sync, see bench/README.md) left warm by the one before it.
    pub gap: Duration,
    pub iters: usize,
    /// Distinguishes this run's container ids from stale ones.
    pub tag: u32,
}

impl Plan<'_> {
    pub fn id(&self, rt: &Runtime, what: &str, round: usize) -> String {
        format!("hb-{}-{}-{what}{round}", rt.name, self.tag)
    }

    /// `warmup + iters` rounds; each round runs `op` once per runtime, in order (A B C A B C).
    /// Before each `op`, after the idle gap, a `/bin/true` through the runtime's spawn path is
    /// timed as the "floor" metric. A runtime whose `op` fails is dropped from these metrics,
    /// with the error recorded.
    pub fn rounds(
        &self,
        results: &mut [Results],
        names: &[&'static str],
        mut op: impl FnMut(&Runtime, usize) -> Result<Vec<Duration>, BenchError>,
    ) -> Result<(), BenchError> {
        for round in 0..self.warmup + self.iters {
            for (rt, res) in self.runtimes.iter().zip(results.iter_mut()) {
                if INTERRUPTED.load(Ordering::Relaxed) {
                    return Err(BenchError::Interrupted);
                }
                if res.errors.contains_key(names[0]) {
                    continue;
                }
                std::thread::sleep(self.gap);
                let floor = rt.spawn_true()?;
                match op(rt, round) {
                    Ok(samples) if round >= self.warmup => {
                        res.times.entry(FLOOR).or_default().push(floor);
                        for (name, d) in names.iter().zip(samples) {
                            res.times.entry(name).or_default().push(d);
                        }
                    }
                    Ok(_) => {}
                    Err(_) if INTERRUPTED.load(Ordering::Relaxed) => {
                        return Err(BenchError::Interrupted)
                    }
                    Err(e) => {
                        say(&format!(
                            "{}: {} failed, dropped from it: {e}",
                            rt.name, names[0]
                        ));
                        for name in names {
                            res.errors.insert(name, e.to_string());
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// create -> start -> wait for exit -> delete. Exit is observed on a pidfd of the container's
/// init (from --pid-file, opened while the init waits for `start`), polled right after `start`
/// returns. Returns [total, create, start, exit-wait, delete]; the total is the sum of the four
/// phases, so reading the pid file and pidfd_open are not counted.
pub fn lifecycle(rt: &Runtime, bundle: &str, id: &str) -> Result<Vec<Duration>, BenchError> {
    let pid_file = rt.pid_file.to_string_lossy();
    let _ = fs::remove_file(&rt.pid_file);
    let create = rt.call(&["create", "--bundle", bundle, "--pid-file", &pid_file, id])?;
    let started = start_and_wait(rt, id);
    let (start, exit) = started.inspect_err(|_| rt.force_delete(id))?;
    let delete = rt.call(&["delete", id])?;
    Ok(vec![
        create + start + exit + delete,
        create,
        start,
        exit,
        delete,
    ])
}

fn start_and_wait(rt: &Runtime, id: &str) -> Result<(Duration, Duration), BenchError> {
    let text = fs::read_to_string(&rt.pid_file)
        .map_err(|e| BenchError::io(format!("{} {id}: reading the pid file", rt.name), e))?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| BenchError::Setup(format!("{} {id}: pid file holds {text:?}", rt.name)))?;
    let sys = |what: &str, e: husk_sys::Errno| {
        BenchError::io(format!("{} {id}: {what} {pid}", rt.name), e.to_io())
    };
    let pidfd = husk_sys::proc::pidfd_open(pid).map_err(|e| sys("pidfd_open", e))?;
    let start = rt.call(&["start", id])?;
    let t = Instant::now();
    if !husk_sys::proc::pidfd_wait_exit(&pidfd, 10_000).map_err(|e| sys("polling pidfd", e))? {
        return Err(BenchError::Setup(format!(
            "{} {id}: the container did not exit within 10 s of start",
            rt.name
        )));
    }
    Ok((start, t.elapsed()))
}

/// `exec ID /bin/true` into a running `sleep 1000` container, one per runtime.
pub fn exec_rounds(
    plan: &Plan,
    results: &mut [Results],
    sleep_bundle: &str,
) -> Result<(), BenchError> {
    let ids: Vec<String> = plan
        .runtimes
        .iter()
        .map(|rt| plan.id(rt, "exec", 0))
        .collect();
    for ((rt, res), id) in plan.runtimes.iter().zip(results.iter_mut()).zip(&ids) {
        let up = rt
            .call(&["create", "--bundle", sleep_bundle, id])
            .and_then(|_| rt.call(&["start", id]));
        if let Err(e) = up {
            say(&format!(
                "{}: exec container {id} did not start: {e}",
                rt.name
            ));
            res.errors.insert("exec", e.to_string());
        }
    }
    let outcome = plan.rounds(results, &["exec"], |rt, _| {
        let id = plan.id(rt, "exec", 0);
        Ok(vec![rt.call(&["exec", &id, "/bin/true"])?])
    });
    for (rt, id) in plan.runtimes.iter().zip(&ids) {
        rt.force_delete(id);
    }
    outcome
}

/// Runs /bin/true under a 512 KiB memory limit: Ok, or the runtime's error line.
pub fn tiny_memory(rt: &Runtime, bundle: &str, id: &str) -> Result<(), String> {
    rt.call(&["run", "--bundle", bundle, id])
        .map(drop)
        .map_err(|e| {
            rt.force_delete(id);
            e.to_string()
        })
}
