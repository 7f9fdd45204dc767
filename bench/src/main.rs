//! `make bench`: husk, runc and crun side by side, interleaved, on the same busybox bundle.
//!
//! Usage: `husk-bench HUSK_BINARY BUNDLE_DIR JSON_OUT` as root. BUNDLE_DIR holds a busybox
//! rootfs and a config.json running /bin/true (scripts/mkbundle.sh); its parent directory is
//! used for the derived bundles and scratch files. BENCH_ITERS (default 100) and BENCH_WARMUP
//! (default 5) set the rounds per metric. See bench/README.md for what is measured and how.

mod measure;
mod report;
mod runtime;
mod scale;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{json, Map, Value};

use measure::{Plan, Results, FLOOR, LIFECYCLE};
use report::{Cell, Row, Tail, NAMES};
use runtime::Runtime;
use scale::{MountStats, BATCHES, PROBE};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: {status}: {detail}")]
    Failed {
        what: String,
        status: String,
        detail: String,
    },
    #[error("{0}")]
    Setup(String),
    #[error("interrupted; containers and state cleaned up")]
    Interrupted,
}

impl BenchError {
    pub fn io(what: String, source: std::io::Error) -> BenchError {
        BenchError::Io { what, source }
    }
}

/// Progress and warnings on stderr. Never panics like eprintln! does on a closed pipe, which
/// (with panic=abort) would skip the cleanup.
pub fn say(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Set by SIGINT/SIGTERM/SIGHUP; the rounds stop and the driver cleans up.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

const CRUN_NOTE: &str = "crun runs in a private mount namespace where the cgroup2 mount at \
/sys/fs/cgroup/unified is replaced by an empty tmpfs (crun 1.8.1 refuses this hybrid cgroup host \
otherwise); the driver made it once at start and setns()es into it in crun's forked child just \
before exec, so crun's times include no unshare/nsenter process";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env_count(name: &str, default: usize) -> Result<usize, BenchError> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| BenchError::Setup(format!("{name}={v:?} is not a number"))),
        Err(_) => Ok(default),
    }
}

fn run() -> Result<(), BenchError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [husk, bundle, json_out] = args.as_slice() else {
        return Err(BenchError::Setup(
            "usage: husk-bench HUSK_BINARY BUNDLE_DIR JSON_OUT".into(),
        ));
    };
    if fs::metadata("/proc/self").map_or(true, |m| m.uid() != 0) {
        return Err(BenchError::Setup("must run as root".into()));
    }
    let iters = env_count("BENCH_ITERS", 100)?.max(1);
    let warmup = env_count("BENCH_WARMUP", 5)?;
    let gap_ms = env_count("BENCH_GAP_MS", 50)?;
    let scale = Scale {
        rounds: env_count("BENCH_CONC_ROUNDS", 3)?,
        probe_secs: env_count("BENCH_PROBE_SECS", 10)?,
        probe_containers: env_count("BENCH_PROBE_CONTAINERS", 20)?,
        probe_period_ms: env_count("BENCH_PROBE_PERIOD_MS", 100)?.max(1),
    };
    let bundle =
        fs::canonicalize(bundle).map_err(|e| BenchError::io(format!("bundle {bundle}"), e))?;
    let work = bundle.parent().unwrap_or(Path::new("/")).to_path_buf();
    let husk = fs::canonicalize(husk).map_err(|e| BenchError::io(format!("husk {husk}"), e))?;
    // Absolute now: entering and leaving crun's mount namespace resets the cwd to /.
    let json_out = std::path::absolute(json_out)
        .map_err(|e| BenchError::io(format!("JSON output path {json_out}"), e))?;

    // First, while the process is still single-threaded (unshare(CLONE_NEWNS) requires it).
    let crun_bin = runtime::find("crun");
    let mut crun_ns = match crun_bin {
        Some(_) => runtime::crun_mount_ns()?,
        None => None,
    };
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }

    let mut notes = vec![
        "times: wall clock from fork to wait4 of each runtime process, in ms".to_string(),
        "lifecycle = create + start + exit-wait + delete; exit-wait polls a pidfd of the \
         container's init (pid from --pid-file) from the moment start returns"
            .to_string(),
        "floor: fork+exec+wait4 of /bin/true through the same spawn path (crun's: with its \
         setns), sampled before every operation; every number includes it"
            .to_string(),
        "peak RSS: max ru_maxrss from wait4 over the runtime process and the children it reaped, \
         one-at-a-time commands only (in the batches the driver's threads set a floor)"
            .to_string(),
        "husk runs with its default cgroupfs driver here; the systemd driver's cost (run time, \
         peak RSS, binary size with and without --systemd-cgroup) needs systemd as PID 1: \
         `make bench-systemd` (bench/README.md)"
            .to_string(),
    ];
    let mut runtimes = vec![Runtime::new("husk", husk, &work, None)?];
    for (name, bin) in [("runc", runtime::find("runc")), ("crun", crun_bin)] {
        let Some(bin) = bin else {
            println!("{name}: not installed (looked in $PATH and the sbin directories); skipped");
            continue;
        };
        let ns = if name == "crun" { crun_ns.take() } else { None };
        if name == "crun" && ns.is_some() {
            notes.push(CRUN_NOTE.into());
        }
        runtimes.push(Runtime::new(name, bin, &work, ns)?);
    }
    for rt in &runtimes {
        println!("{}: {} ({})", rt.name, rt.bin.display(), rt.version);
    }

    let netns = NetnsHolder::new()?;
    let bundles = derive_bundles(&bundle, &work, &netns.path)?;
    let load_start = loadavg();
    // State left by an interrupted earlier run would otherwise collide.
    runtimes.iter().for_each(Runtime::cleanup);
    let plan = Plan {
        runtimes: &runtimes,
        warmup,
        gap: Duration::from_millis(gap_ms as u64),
        iters,
        tag: std::process::id(),
    };
    let measured = measure_all(&plan, &scale, &bundles);
    drop(netns);
    runtimes.iter().for_each(Runtime::cleanup);
    let _ = fs::remove_dir("/run/husk-bench");
    for dir in bundles.dirs() {
        let _ = fs::remove_dir_all(dir);
    }
    for file in runtimes.iter().flat_map(Runtime::scratch_files) {
        let _ = fs::remove_file(file);
    }
    let measured = measured?;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    notes.push(format!(
        "{cpus} cpus; load average (1/5/15 min) {load_start} at start, {} at end",
        loadavg()
    ));

    notes.push(format!(
        "concurrency: {} rounds per batch size, runtimes interleaved, a fresh `sleep 1000` \
         container per slot; create+start and exec rows show p50 / p99 and their ratios compare \
         p99; batch wall rows show median / p90 of the rounds",
        scale.rounds
    ));
    notes.push(format!(
        "probe load: {} `sleep 1000` containers per runtime, one `exec ID /bin/true` per \
         container every {} ms for {} s (BENCH_PROBE_SECS), one runtime at a time; the floor \
         row spawns /bin/true on the same schedule during the load; mounts = lines of \
         mountinfo in the runtime's mount namespace before / min-max during / after, changes = \
         POLLPRI notifications on it (other processes on the host mounting count too)",
        scale.probe_containers, scale.probe_period_ms, scale.probe_secs
    ));
    let rows = rows(&runtimes, &measured, gap_ms);
    println!();
    for note in &notes {
        println!("note: {note}");
    }
    let order: Vec<&str> = runtimes.iter().map(|r| r.name).collect();
    println!(
        "note: {iters} iterations per metric per runtime after {warmup} warmup rounds, \
         interleaved ({}), {gap_ms} ms idle before each",
        order.join(" ")
    );
    println!(
        "note: times are median / p90 in ms; ratios compare medians (RSS, sizes: values); \
         exit-wait has none: it is ~0 for a runtime whose start returns after /bin/true exited"
    );
    println!();
    report::print_table(&rows);

    let mut header = Map::new();
    header.insert("iterations".into(), json!(iters));
    header.insert("warmup".into(), json!(warmup));
    header.insert("gap_ms".into(), json!(gap_ms));
    header.insert("notes".into(), json!(notes));
    let mut rts = Map::new();
    for name in NAMES {
        let v = match runtimes.iter().find(|r| r.name == name) {
            Some(rt) => json!({"path": rt.bin, "version": rt.version}),
            None => json!({"missing": "not installed"}),
        };
        rts.insert(name.into(), v);
    }
    header.insert("runtimes".into(), Value::Object(rts));
    let text = serde_json::to_string_pretty(&report::to_json(header, &rows))
        .map_err(|e| BenchError::Setup(format!("encoding the JSON report: {e}")))?;
    fs::write(&json_out, text + "\n")
        .map_err(|e| BenchError::io(format!("writing {}", json_out.display()), e))?;
    println!("\nwrote {}", json_out.display());
    Ok(())
}

fn loadavg() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The concurrency and probe-load settings.
struct Scale {
    rounds: usize,
    probe_secs: usize,
    probe_containers: usize,
    probe_period_ms: usize,
}

/// Everything measured, by section.
struct Measured {
    /// Single-container rows with the idle gap, and back to back.
    idle: Vec<Results>,
    b2b: Vec<Results>,
    /// create of the default bundle, with 64 masked dirs, joining an existing netns.
    variants: Vec<Results>,
    /// [`BATCHES`] and [`PROBE`] keys.
    scale: Vec<Results>,
    mounts: Vec<Option<MountStats>>,
    tiny: Vec<Result<(), String>>,
}

/// Keys of the variant rows: create of the default bundle, of bundle-masked64, of bundle-netns.
/// The `ociVersion` of every bundle the driver writes: one that runc 1.1, crun 1.8 and husk all
/// accept (`husk spec` writes 1.2.0, which crun 1.8.1 rejects).
const OCI_VERSION: &str = "1.0.2";

const VARIANTS: [&str; 3] = ["create-default", "create-masked64", "create-joinnet"];

fn single(plan: &Plan, bundle: &str, sleep_bundle: &str) -> Result<Vec<Results>, BenchError> {
    let mut results: Vec<Results> = plan.runtimes.iter().map(|_| Results::default()).collect();
    say(&format!(
        "measuring lifecycle (create, start, exit, delete), {} ms gap...",
        plan.gap.as_millis()
    ));
    plan.rounds(&mut results, &LIFECYCLE, |rt, round| {
        measure::lifecycle(rt, bundle, &plan.id(rt, "lc", round))
    })?;
    say("measuring run...");
    plan.rounds(&mut results, &["run"], |rt, round| {
        let id = plan.id(rt, "run", round);
        Ok(vec![rt.call(&["run", "--bundle", bundle, &id])?])
    })?;
    say("measuring exec...");
    measure::exec_rounds(plan, &mut results, sleep_bundle)?;
    Ok(results)
}

fn measure_all(plan: &Plan, scale: &Scale, bundles: &Bundles) -> Result<Measured, BenchError> {
    let bundle = &bundles.truth;
    let idle = single(plan, bundle, &bundles.sleep)?;
    let b2b_plan = Plan {
        gap: Duration::ZERO,
        tag: plan.tag + 1,
        ..*plan
    };
    say("back to back (no gap):");
    let b2b = single(&b2b_plan, bundle, &bundles.sleep)?;

    say("measuring create: default, 64 masked dirs, joining an existing netns...");
    let mut variants: Vec<Results> = plan.runtimes.iter().map(|_| Results::default()).collect();
    plan.rounds(&mut variants, &VARIANTS, |rt, round| {
        let mut out = Vec::new();
        for (i, b) in [bundle, &bundles.masked, &bundles.netns].iter().enumerate() {
            if i > 0 {
                std::thread::sleep(plan.gap);
            }
            let id = plan.id(rt, &format!("v{i}-"), round);
            out.push(measure::lifecycle(rt, b, &id)?[1]);
        }
        Ok(out)
    })?;

    let mut scaled: Vec<Results> = plan.runtimes.iter().map(|_| Results::default()).collect();
    for (n, keys) in BATCHES {
        say(&format!(
            "measuring {n} containers at once (create+start, exec)..."
        ));
        for round in 0..scale.rounds + 1 {
            for (rt, res) in plan.runtimes.iter().zip(scaled.iter_mut()) {
                if INTERRUPTED.load(Ordering::Relaxed) {
                    return Err(BenchError::Interrupted);
                }
                if res.errors.contains_key(keys[0]) {
                    continue;
                }
                std::thread::sleep(plan.gap);
                let ids: Vec<String> = (0..n)
                    .map(|i| plan.id(rt, &format!("c{n}r{round}-"), i))
                    .collect();
                // Round 0 is a warmup.
                let keep = round > 0;
                if let Err(e) = scale::batch_round(rt, &bundles.sleep, &ids, keys, res, keep) {
                    say(&format!(
                        "{}: batch of {n} failed, dropped from it: {e}",
                        rt.name
                    ));
                    for key in keys {
                        res.errors.insert(key, e.to_string());
                    }
                }
            }
        }
    }
    let mut mounts = Vec::new();
    for (rt, res) in plan.runtimes.iter().zip(scaled.iter_mut()) {
        if INTERRUPTED.load(Ordering::Relaxed) {
            return Err(BenchError::Interrupted);
        }
        say(&format!(
            "{}: exec probe load, {} containers, every {} ms for {} s...",
            rt.name, scale.probe_containers, scale.probe_period_ms, scale.probe_secs
        ));
        let ids: Vec<String> = (0..scale.probe_containers)
            .map(|i| plan.id(rt, "probe", i))
            .collect();
        let period = Duration::from_millis(scale.probe_period_ms as u64);
        let duration = Duration::from_secs(scale.probe_secs as u64);
        match scale::probe_load(rt, &bundles.sleep, &ids, period, duration, res) {
            Ok(m) => mounts.push(Some(m)),
            Err(e) => {
                for key in PROBE {
                    res.errors.insert(key, e.to_string());
                }
                mounts.push(None);
            }
        }
    }

    say("running /bin/true under a 512 KiB memory limit...");
    let tiny = plan
        .runtimes
        .iter()
        .map(|rt| measure::tiny_memory(rt, &bundles.mem, &plan.id(rt, "mem", 0)))
        .collect();
    Ok(Measured {
        idle,
        b2b,
        variants,
        scale: scaled,
        mounts,
        tiny,
    })
}

/// A process in a network namespace of its own, for the bundle that joins an existing netns
/// (as a pod's containers join the sandbox's); killed when dropped.
struct NetnsHolder {
    child: std::process::Child,
    path: String,
}

impl NetnsHolder {
    fn new() -> Result<NetnsHolder, BenchError> {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new("/bin/sleep");
        cmd.arg("100000").stdin(std::process::Stdio::null());
        // SAFETY: the hook only makes the unshare(2) system call between fork and exec.
        unsafe {
            cmd.pre_exec(|| husk_sys::unshare(libc::CLONE_NEWNET).map_err(husk_sys::Errno::to_io))
        };
        let child = cmd
            .spawn()
            .map_err(|e| BenchError::io("spawning sleep in a new netns".into(), e))?;
        let path = format!("/proc/{}/ns/net", child.id());
        Ok(NetnsHolder { child, path })
    }
}

impl Drop for NetnsHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Bundles {
    truth: String,
    sleep: String,
    mem: String,
    masked: String,
    netns: String,
}

impl Bundles {
    fn dirs(&self) -> [&String; 5] {
        [
            &self.truth,
            &self.sleep,
            &self.mem,
            &self.masked,
            &self.netns,
        ]
    }
}

/// Writes bundle-true (the bundle's own /bin/true), bundle-sleep (`sleep 1000`), bundle-mem512k (/bin/true, memory limit 512 KiB),
/// bundle-masked64 (/bin/true, 64 more masked directories, /hb-masked/cpuN/thermal_throttle,
/// made in the rootfs, as Kubernetes masks one per CPU) and bundle-netns (/bin/true joining
/// the network namespace at `netns`) next to `bundle`, sharing its rootfs.
fn derive_bundles(bundle: &Path, work: &Path, netns: &str) -> Result<Bundles, BenchError> {
    let config = bundle.join("config.json");
    let text = fs::read_to_string(&config)
        .map_err(|e| BenchError::io(format!("reading {}", config.display()), e))?;
    let base: Value = serde_json::from_str(&text)
        .map_err(|e| BenchError::Setup(format!("{}: {e}", config.display())))?;
    let rootfs = bundle.join("rootfs");
    let write = |name: &str, edit: &dyn Fn(&mut Value)| -> Result<String, BenchError> {
        let dir = work.join(name);
        let mut cfg = base.clone();
        cfg["root"]["path"] = json!(rootfs);
        cfg["process"]["terminal"] = json!(false);
        // crun 1.8.1 refuses "1.2.0" ("unknown version specified"); all three take 1.0.2.
        cfg["ociVersion"] = json!(OCI_VERSION);
        edit(&mut cfg);
        let err = |e| BenchError::io(format!("writing bundle {}", dir.display()), e);
        fs::create_dir_all(&dir).map_err(err)?;
        fs::write(dir.join("config.json"), cfg.to_string()).map_err(err)?;
        Ok(dir.to_string_lossy().into_owned())
    };
    let masked: Vec<String> = (0..64)
        .map(|n| format!("/hb-masked/cpu{n}/thermal_throttle"))
        .collect();
    for p in &masked {
        let dir = rootfs.join(p.trim_start_matches('/'));
        fs::create_dir_all(&dir)
            .map_err(|e| BenchError::io(format!("creating {}", dir.display()), e))?;
    }
    Ok(Bundles {
        truth: write("bundle-true", &|_| {})?,
        sleep: write("bundle-sleep", &|c| {
            c["process"]["args"] = json!(["sleep", "1000"])
        })?,
        mem: write("bundle-mem512k", &|c| {
            c["linux"]["resources"]["memory"] = json!({"limit": 524288});
        })?,
        masked: write("bundle-masked64", &|c| {
            if let Some(list) = c["linux"]["maskedPaths"].as_array_mut() {
                list.extend(masked.iter().map(|p| json!(p)));
            }
        })?,
        netns: write("bundle-netns", &|c| {
            if let Some(list) = c["linux"]["namespaces"].as_array_mut() {
                list.retain(|ns| ns["type"] != "network");
                list.push(json!({"type": "network", "path": netns}));
            }
        })?,
    })
}

fn rows(runtimes: &[Runtime], m: &Measured, gap_ms: usize) -> Vec<Row> {
    let find = |name: &str| runtimes.iter().position(|r| r.name == name);
    let cells = |f: &dyn Fn(usize) -> Cell| -> [Cell; 3] {
        NAMES.map(|name| match find(name) {
            Some(i) => f(i),
            None => Cell::Missing("not installed".into()),
        })
    };
    let time_cell = |results: &[Results], i: usize, key: &str| match results[i].errors.get(key) {
        Some(e) => Cell::Missing(e.clone()),
        None => Cell::time(results[i].times.get(key).map_or(&[], Vec::as_slice)),
    };
    let time = |results: &[Results], key: &'static str, suffix: &str, label: &str, tail| Row {
        key: format!("{key}{suffix}"),
        label: label.into(),
        ratios: !key.starts_with("exit-wait") && key != FLOOR && key != PROBE[1],
        tail,
        cells: cells(&|i| time_cell(results, i, key)),
    };
    let heading = |label: String| Row {
        key: String::new(),
        label,
        ratios: false,
        tail: Tail::P90,
        cells: [0, 1, 2].map(|_| Cell::Text(String::new())),
    };
    let text = |key: &str, label: &str, f: &dyn Fn(usize) -> String| Row {
        key: key.into(),
        label: label.into(),
        ratios: false,
        tail: Tail::P90,
        cells: cells(&|i| Cell::Text(f(i))),
    };
    let amount = |key: &str, label: &str, f: &dyn Fn(&Runtime) -> Cell| Row {
        key: key.into(),
        label: label.into(),
        ratios: true,
        tail: Tail::P90,
        cells: cells(&|i| f(&runtimes[i])),
    };
    let single = [
        ("lifecycle", "lifecycle (create..delete)"),
        ("create", "  create"),
        ("start", "  start"),
        ("exit-wait", "  exit-wait (pidfd)"),
        ("delete", "  delete"),
        ("run", "run"),
        ("exec", "exec (into sleep 1000)"),
        (FLOOR, "floor (spawn /bin/true)"),
    ];
    let mut rows = vec![heading(format!("-- after idle ({gap_ms} ms gap)"))];
    for (key, label) in single {
        rows.push(time(&m.idle, key, "", label, Tail::P90));
    }
    rows.push(heading("-- back to back (no gap)".into()));
    for (key, label) in single {
        rows.push(time(&m.b2b, key, "@b2b", label, Tail::P90));
    }
    let median = |i: usize, key: &str| {
        m.variants[i]
            .times
            .get(key)
            .filter(|v| !v.is_empty())
            .map(|v| match Cell::time(v) {
                Cell::Time { median, .. } => median,
                _ => 0.0,
            })
    };
    let versus = |i: usize, key: &str, f: &dyn Fn(f64, f64) -> String| match (
        median(i, VARIANTS[0]),
        median(i, key),
    ) {
        (Some(a), Some(b)) => f(a, b),
        _ => "-".into(),
    };
    rows.push(heading(format!("-- create by config ({gap_ms} ms gap)")));
    rows.push(time(
        &m.variants,
        VARIANTS[0],
        "",
        "create (default config)",
        Tail::P90,
    ));
    rows.push(time(
        &m.variants,
        VARIANTS[1],
        "",
        "create (+64 masked dirs)",
        Tail::P90,
    ));
    rows.push(text("masked64_added", "  added by 64 masked dirs", &|i| {
        versus(i, VARIANTS[1], &|a, b| {
            format!("{:+.1}%", (b / a - 1.0) * 100.0)
        })
    }));
    rows.push(time(
        &m.variants,
        VARIANTS[2],
        "",
        "create (join existing netns)",
        Tail::P90,
    ));
    rows.push(text("joinnet_saved", "  saved vs a new netns", &|i| {
        versus(i, VARIANTS[2], &|a, b| format!("{:.2} ms", a - b))
    }));
    for (n, [c, cw, e, ew]) in BATCHES {
        rows.push(heading(format!(
            "-- {n} at once ({gap_ms} ms gap between batches)"
        )));
        rows.push(time(&m.scale, c, "", "create+start (p50 / p99)", Tail::P99));
        rows.push(time(&m.scale, cw, "", "  batch wall", Tail::P90));
        rows.push(time(&m.scale, e, "", "exec (p50 / p99)", Tail::P99));
        rows.push(time(&m.scale, ew, "", "  batch wall", Tail::P90));
    }
    rows.push(heading("-- exec probe load".into()));
    rows.push(time(
        &m.scale,
        PROBE[0],
        "",
        "probe exec (p50 / p99)",
        Tail::P99,
    ));
    rows.push(time(
        &m.scale,
        PROBE[1],
        "",
        "floor during load (p50 / p99)",
        Tail::P99,
    ));
    let mount_text = |i: usize, f: &dyn Fn(&MountStats) -> String| {
        m.mounts
            .get(i)
            .copied()
            .flatten()
            .map_or("-".into(), |s| f(&s))
    };
    rows.push(text("probe_mounts", "mounts before/during/after", &|i| {
        mount_text(i, &|s| {
            let during = match s.during_min == s.during_max {
                true => s.during_min.to_string(),
                false => format!("{}-{}", s.during_min, s.during_max),
            };
            format!("{}/{during}/{}", s.before, s.after)
        })
    }));
    rows.push(text(
        "probe_mount_changes",
        "mountinfo changes during",
        &|i| mount_text(i, &|s| s.changes.to_string()),
    ));
    let main_ops = ["create", "start", "delete", "run"];
    rows.push(heading("--".into()));
    rows.extend([
        amount("peak_rss_kib", "peak RSS MiB (create..run)", &|rt| {
            Cell::mib(rt.peak_rss(&main_ops), 1024)
        }),
        amount("peak_rss_exec_kib", "peak RSS MiB (exec)", &|rt| {
            Cell::mib(rt.peak_rss(&["exec"]), 1024)
        }),
        amount("binary_bytes", "binary size MiB", &|rt| {
            Cell::mib(runtime::binary_sizes(&rt.bin).0, 1 << 20)
        }),
        amount(
            "binary_with_libs_bytes",
            "binary + shared libs MiB",
            &|rt| Cell::mib(runtime::binary_sizes(&rt.bin).1, 1 << 20),
        ),
        Row {
            key: "memory_512k".into(),
            label: "512 KiB memory limit".into(),
            ratios: false,
            tail: Tail::P90,
            cells: cells(&|i| Cell::Verdict(m.tiny[i].clone())),
        },
    ]);
    rows
}
