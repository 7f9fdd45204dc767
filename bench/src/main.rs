//! `make bench`: husk, runc and crun side by side, interleaved, on the same busybox bundle.
//!
//! Usage: `husk-bench HUSK_BINARY BUNDLE_DIR JSON_OUT` as root. BUNDLE_DIR holds a busybox
//! rootfs and a config.json running /bin/true (scripts/mkbundle.sh); its parent directory is
//! used for the derived bundles and scratch files. BENCH_ITERS (default 100) and BENCH_WARMUP
//! (default 5) set the rounds per metric. See bench/README.md for what is measured and how.

mod measure;
mod report;
mod runtime;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{json, Map, Value};

use measure::{Plan, Results, FLOOR, LIFECYCLE};
use report::{Cell, Row, NAMES};
use runtime::Runtime;

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
        "peak RSS: max ru_maxrss from wait4 over the runtime process and the children it reaped"
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

    let bundles = derive_bundles(&bundle, &work)?;
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
    let measured = measure_all(&plan, &bundle, &bundles);
    runtimes.iter().for_each(Runtime::cleanup);
    let _ = fs::remove_dir("/run/husk-bench");
    for dir in &bundles {
        let _ = fs::remove_dir_all(dir);
    }
    for file in runtimes.iter().flat_map(Runtime::scratch_files) {
        let _ = fs::remove_file(file);
    }
    let (results, tiny) = measured?;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    notes.push(format!(
        "{cpus} cpus; load average (1/5/15 min) {load_start} at start, {} at end",
        loadavg()
    ));

    let rows = rows(&runtimes, &results, &tiny);
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

type Measured = (Vec<Results>, Vec<Result<(), String>>);

fn measure_all(plan: &Plan, bundle: &Path, bundles: &[String; 2]) -> Result<Measured, BenchError> {
    let [sleep_bundle, mem_bundle] = bundles;
    let bundle = bundle.to_string_lossy();
    let mut results: Vec<Results> = plan.runtimes.iter().map(|_| Results::default()).collect();
    say("measuring lifecycle (create, start, exit, delete)...");
    plan.rounds(&mut results, &LIFECYCLE, |rt, round| {
        measure::lifecycle(rt, &bundle, &plan.id(rt, "lc", round))
    })?;
    say("measuring run...");
    plan.rounds(&mut results, &["run"], |rt, round| {
        let id = plan.id(rt, "run", round);
        Ok(vec![rt.call(&["run", "--bundle", &bundle, &id])?])
    })?;
    say("measuring exec...");
    measure::exec_rounds(plan, &mut results, sleep_bundle)?;
    say("running /bin/true under a 512 KiB memory limit...");
    let tiny = plan
        .runtimes
        .iter()
        .map(|rt| measure::tiny_memory(rt, mem_bundle, &plan.id(rt, "mem", 0)))
        .collect();
    Ok((results, tiny))
}

/// Writes bundle-sleep (`sleep 1000`) and bundle-mem512k (/bin/true, memory limit 512 KiB)
/// next to `bundle`, sharing its rootfs.
fn derive_bundles(bundle: &Path, work: &Path) -> Result<[String; 2], BenchError> {
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
        edit(&mut cfg);
        let err = |e| BenchError::io(format!("writing bundle {}", dir.display()), e);
        fs::create_dir_all(&dir).map_err(err)?;
        fs::write(dir.join("config.json"), cfg.to_string()).map_err(err)?;
        Ok(dir.to_string_lossy().into_owned())
    };
    Ok([
        write("bundle-sleep", &|c| {
            c["process"]["args"] = json!(["sleep", "1000"])
        })?,
        write("bundle-mem512k", &|c| {
            c["linux"]["resources"]["memory"] = json!({"limit": 524288});
        })?,
    ])
}

fn rows(runtimes: &[Runtime], results: &[Results], tiny: &[Result<(), String>]) -> Vec<Row> {
    let find = |name: &str| runtimes.iter().position(|r| r.name == name);
    let cells = |f: &dyn Fn(usize) -> Cell| -> [Cell; 3] {
        NAMES.map(|name| match find(name) {
            Some(i) => f(i),
            None => Cell::Missing("not installed".into()),
        })
    };
    let time = |key: &'static str, label: &str| Row {
        key,
        label: label.into(),
        ratios: key != "exit-wait" && key != FLOOR,
        cells: cells(&|i| match results[i].errors.get(key) {
            Some(e) => Cell::Missing(e.clone()),
            None => Cell::time(results[i].times.get(key).map_or(&[], Vec::as_slice)),
        }),
    };
    let amount = |key: &'static str, label: &str, f: &dyn Fn(&Runtime) -> Cell| Row {
        key,
        label: label.into(),
        ratios: true,
        cells: cells(&|i| f(&runtimes[i])),
    };
    let main_ops = ["create", "start", "delete", "run"];
    vec![
        time("lifecycle", "lifecycle (create..delete)"),
        time("create", "  create"),
        time("start", "  start"),
        time("exit-wait", "  exit-wait (pidfd)"),
        time("delete", "  delete"),
        time("run", "run"),
        time("exec", "exec (into sleep 1000)"),
        time(FLOOR, "floor (spawn /bin/true)"),
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
            key: "memory_512k",
            label: "512 KiB memory limit".into(),
            ratios: false,
            cells: cells(&|i| Cell::Verdict(tiny[i].clone())),
        },
    ]
}
