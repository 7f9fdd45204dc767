//! Many containers at once: N containers created and started in parallel, N parallel execs
//! into them, and an exec probe load (one `exec /bin/true` per container per period, as a
//! kubelet's exec probes) with the mount table watched while it runs.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::measure::Results;
use crate::runtime::{command, Runtime};
use crate::{say, BenchError, INTERRUPTED};

/// The batch sizes, and the result keys of each: create+start per container, the batch's wall
/// time, exec per container, the exec batch's wall time.
pub const BATCHES: [(usize, [&str; 4]); 2] = [
    (10, ["c10", "c10-wall", "e10", "e10-wall"]),
    (50, ["c50", "c50-wall", "e50", "e50-wall"]),
];

/// Result keys of the probe load: each exec, and /bin/true spawned on the same schedule.
pub const PROBE: [&str; 2] = ["probe-exec", "probe-floor"];

/// Runs `f(slot)` for every slot on its own thread, all at once; the results in slot order.
fn parallel<T: Send>(
    slots: usize,
    f: impl Fn(usize) -> Result<T, BenchError> + Sync,
) -> Vec<Result<T, BenchError>> {
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..slots).map(|i| s.spawn(move || f(i))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(BenchError::Setup("a bench thread panicked".into())))
            })
            .collect()
    })
}

/// `delete --force` of every id, all at once; failures ignored (cleanup).
fn delete_all(rt: &Runtime, ids: &[String]) {
    parallel(ids.len(), |i| {
        rt.call_slot(&["delete", "--force", &ids[i]], i)
    });
    rt.remove_slot_files(ids.len() + 1);
}

/// `create` + `start` of a `sleep 1000` container per id, all at once. Returns each
/// container's create+start time and the batch's wall time.
pub fn start_batch(
    rt: &Runtime,
    bundle: &str,
    ids: &[String],
) -> Result<(Vec<Duration>, Duration), BenchError> {
    let t = Instant::now();
    let up = parallel(ids.len(), |i| {
        let create = rt.call_slot(&["create", "--bundle", bundle, &ids[i]], i)?;
        Ok(create + rt.call_slot(&["start", &ids[i]], i)?)
    });
    let wall = t.elapsed();
    up.into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map(|v| (v, wall))
}

/// One concurrency round of one runtime for a batch of `ids.len()` containers: the batch
/// started at once, then one `exec /bin/true` into each at once, then everything deleted
/// (not timed). Samples go to `res` under `keys` (see [`BATCHES`]) when `keep`.
pub fn batch_round(
    rt: &Runtime,
    bundle: &str,
    ids: &[String],
    keys: [&'static str; 4],
    res: &mut Results,
    keep: bool,
) -> Result<(), BenchError> {
    let outcome = (|| {
        let (up, wall) = start_batch(rt, bundle, ids)?;
        let t = Instant::now();
        let execs = parallel(ids.len(), |i| {
            rt.call_slot(&["exec", &ids[i], "/bin/true"], i)
        });
        let exec_wall = t.elapsed();
        let execs = execs.into_iter().collect::<Result<Vec<_>, _>>()?;
        if keep {
            let [c, cw, e, ew] = keys;
            res.times.entry(c).or_default().extend(up);
            res.times.entry(cw).or_default().push(wall);
            res.times.entry(e).or_default().extend(execs);
            res.times.entry(ew).or_default().push(exec_wall);
        }
        Ok(())
    })();
    delete_all(rt, ids);
    outcome
}

/// The mount table a runtime's processes see (the host's, or crun's private namespace), as
/// seen through a `sleep` process spawned like the runtime: lines of its mountinfo, and how
/// many change notifications (poll POLLPRI on mountinfo) arrived while watched.
pub struct MountWatch {
    child: Child,
    path: String,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct MountStats {
    pub before: usize,
    pub during_min: usize,
    pub during_max: usize,
    pub after: usize,
    pub changes: u64,
}

impl MountWatch {
    pub fn new(rt: &Runtime) -> Result<MountWatch, BenchError> {
        let child = command(Path::new("/bin/sleep"), rt.mntns_fd())
            .arg("100000")
            .spawn()
            .map_err(|e| BenchError::io(format!("{}: spawning the mount watcher", rt.name), e))?;
        let path = format!("/proc/{}/mountinfo", child.id());
        Ok(MountWatch { child, path })
    }

    pub fn count(&self) -> usize {
        fs::read_to_string(&self.path).map_or(0, |t| t.lines().count())
    }

    /// Watches until `stop`: (min, max) line count seen at each change, and the changes.
    pub fn watch(&self, stop: &AtomicBool) -> (usize, usize, u64) {
        let Ok(mut file) = File::open(&self.path) else {
            return (0, 0, 0);
        };
        let mut sink = Vec::new();
        let _ = file.read_to_end(&mut sink);
        let n = self.count();
        let (mut min, mut max, mut changes) = (n, n, 0);
        while !stop.load(Ordering::Relaxed) {
            let mut pfd = libc::pollfd {
                fd: file.as_raw_fd(),
                events: libc::POLLPRI,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the duration of the call.
            let r = unsafe { libc::poll(&mut pfd, 1, 20) };
            if r > 0 && pfd.revents & (libc::POLLPRI | libc::POLLERR) != 0 {
                changes += 1;
                let n = self.count();
                min = min.min(n);
                max = max.max(n);
            }
        }
        (min, max, changes)
    }
}

impl Drop for MountWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The exec probe load for one runtime: `ids.len()` `sleep 1000` containers, each probed with
/// `exec ID /bin/true` every `period` for `duration` (a probe that overruns its period starts the
/// next one at once, as a kubelet's ticker would), plus /bin/true spawned on the same schedule
/// from one more thread (the spawn floor under the same load). Mount table watched throughout.
pub fn probe_load(
    rt: &Runtime,
    bundle: &str,
    ids: &[String],
    period: Duration,
    duration: Duration,
    res: &mut Results,
) -> Result<MountStats, BenchError> {
    let outcome = (|| {
        start_batch(rt, bundle, ids)?;
        let watch = MountWatch::new(rt)?;
        std::thread::sleep(Duration::from_millis(100));
        let before = watch.count();
        let stop = AtomicBool::new(false);
        let samples = Mutex::new((Vec::new(), Vec::new()));
        let slots = ids.len() + 1;
        let (watched, probes) = std::thread::scope(|s| {
            let watcher = s.spawn(|| watch.watch(&stop));
            let probes = parallel(slots, |i| {
                let start = Instant::now();
                let mut next = start;
                let mut mine = Vec::new();
                while start.elapsed() < duration && !INTERRUPTED.load(Ordering::Relaxed) {
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    mine.push(match ids.get(i) {
                        Some(id) => rt.call_slot(&["exec", id, "/bin/true"], i)?,
                        None => rt.spawn_true()?,
                    });
                    next = (next + period).max(Instant::now());
                }
                let mut all = samples.lock().unwrap_or_else(|e| e.into_inner());
                match i < ids.len() {
                    true => all.0.extend(mine),
                    false => all.1.extend(mine),
                }
                Ok(())
            });
            stop.store(true, Ordering::Relaxed);
            (watcher.join().unwrap_or_default(), probes)
        });
        probes.into_iter().collect::<Result<Vec<_>, _>>()?;
        let after = watch.count();
        let (execs, floor) = samples.into_inner().unwrap_or_else(|e| e.into_inner());
        res.times.entry(PROBE[0]).or_default().extend(execs);
        res.times.entry(PROBE[1]).or_default().extend(floor);
        let (during_min, during_max, changes) = watched;
        Ok(MountStats {
            before,
            during_min,
            during_max,
            after,
            changes,
        })
    })();
    delete_all(rt, ids);
    if let Err(e) = &outcome {
        say(&format!("{}: probe load failed: {e}", rt.name));
    }
    outcome
}
