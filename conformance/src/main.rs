//! husk-conformance: OCI runtime-spec conformance checks for any runtime with runc's command
//! line (husk, runc, crun).
//!
//! ```text
//! husk-conformance --runtime PATH [--root DIR] [--busybox PATH] [--keep] [--list] [CHECK...]
//! ```
//!
//! Every check prints one line, `PASS name`, `FAIL name: reason` or `SKIP name: reason`, and
//! the run ends with `N passed, N failed` (`, N skipped` when any were). The exit code is 1
//! when a check failed (or the run was interrupted), 2 when the suite could not run. Must run as root. CHECK selects checks
//! by name or by name prefix up to an underscore (`hooks` selects every `hooks_*`).

mod bundle;
mod checks;
mod runtime;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bundle::Busybox;
use checks::{Check, Ctx, Problem};
use runtime::Runtime;

const USAGE: &str = "usage: husk-conformance --runtime PATH [--root DIR] [--busybox PATH] \
                     [--keep] [--list] [CHECK...]";

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Set by SIGINT/SIGTERM: waits stop early, the current check cleans up, the rest are skipped.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

struct Args {
    runtime: PathBuf,
    root: Option<PathBuf>,
    busybox: Option<PathBuf>,
    keep: bool,
    list: bool,
    names: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut runtime = None;
    let mut parsed = Args {
        runtime: PathBuf::new(),
        root: None,
        busybox: None,
        keep: false,
        list: false,
        names: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--runtime" => runtime = Some(PathBuf::from(value("--runtime")?)),
            "--root" => parsed.root = Some(PathBuf::from(value("--root")?)),
            "--busybox" => parsed.busybox = Some(PathBuf::from(value("--busybox")?)),
            "--keep" => parsed.keep = true,
            "--list" => parsed.list = true,
            "-h" | "--help" => return Err(String::new()),
            f if f.starts_with('-') => return Err(format!("unknown option {f}")),
            _ => parsed.names.push(arg),
        }
    }
    match runtime {
        Some(r) => parsed.runtime = r,
        None if parsed.list => {}
        None => return Err("--runtime is required".into()),
    }
    Ok(parsed)
}

/// The checks named on the command line (all when none are), in suite order.
fn select(all: Vec<&'static Check>, names: &[String]) -> Result<Vec<&'static Check>, String> {
    let matches = |c: &Check, n: &str| c.name == n || c.name.starts_with(&format!("{n}_"));
    if let Some(unknown) = names.iter().find(|n| !all.iter().any(|c| matches(c, n))) {
        return Err(format!("no check is called {unknown:?} (see --list)"));
    }
    Ok(all
        .into_iter()
        .filter(|c| names.is_empty() || names.iter().any(|n| matches(c, n)))
        .collect())
}

/// An absolute path for a program given by path or found in PATH.
fn locate(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return fs::canonicalize(program).ok();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("husk-conformance: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let selected = match select(checks::all(), &args.names) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("husk-conformance: {e}");
            return ExitCode::from(2);
        }
    };
    if args.list {
        for c in selected {
            say(&format!("{:<30} {}", c.name, c.spec));
        }
        return ExitCode::SUCCESS;
    }
    match run(&args, &selected) {
        Ok(failed) if failed => ExitCode::from(1),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("husk-conformance: {e}");
            ExitCode::from(2)
        }
    }
}

/// Sets up the work directory, runs the checks and prints the results; true if any failed
/// (or the run was interrupted).
fn run(args: &Args, selected: &[&'static Check]) -> Result<bool, String> {
    // SAFETY: getuid has no preconditions and cannot fail.
    if unsafe { libc::getuid() } != 0 {
        return Err("must run as root (containers are created for real)".into());
    }
    let bin = locate(&args.runtime)
        .ok_or_else(|| format!("runtime {} not found", args.runtime.display()))?;
    let busybox_src = match &args.busybox {
        Some(p) => p.clone(),
        None => locate(Path::new("busybox")).ok_or("no busybox found; install busybox-static")?,
    };
    let work = std::env::temp_dir().join(format!("husk-conformance-{}", std::process::id()));
    fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    // Searchable by the mapped ids of the user-namespace check.
    fs::set_permissions(&work, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", work.display()))?;
    let result = run_in(args, selected, bin, &busybox_src, &work);
    if args.keep {
        say(&format!("# kept {}", work.display()));
    } else {
        let _ = fs::remove_dir_all(&work);
    }
    result
}

fn run_in(
    args: &Args,
    selected: &[&'static Check],
    bin: PathBuf,
    busybox_src: &Path,
    work: &Path,
) -> Result<bool, String> {
    let busybox = Busybox::prepare(busybox_src, work)?;
    let root = match &args.root {
        Some(r) => std::path::absolute(r).map_err(|e| format!("--root {}: {e}", r.display()))?,
        None => work.join("state"),
    };
    fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
    let logs = work.join("logs");
    fs::create_dir_all(&logs).map_err(|e| format!("creating {}: {e}", logs.display()))?;
    let ctx = Ctx::new(
        Runtime::new(bin, root.clone(), logs),
        work.to_path_buf(),
        busybox,
    );

    let version = std::process::Command::new(ctx.rt.bin())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let version = version
        .lines()
        .next()
        .unwrap_or("version unknown")
        .to_string();
    say(&format!(
        "# {} ({version}), root {}",
        ctx.rt.bin().display(),
        root.display()
    ));
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }

    let started = Instant::now();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for check in selected {
        if interrupted() {
            skipped += 1;
            say(&format!("SKIP {}: interrupted", check.name));
            continue;
        }
        match (check.run)(&ctx) {
            Ok(()) => {
                passed += 1;
                say(&format!("PASS {}", check.name));
            }
            Err(Problem::Fail(reason)) => {
                failed += 1;
                say(&format!("FAIL {}: {reason}", check.name));
            }
            Err(Problem::Skip(reason)) => {
                skipped += 1;
                say(&format!("SKIP {}: {reason}", check.name));
            }
        }
    }
    say(&format!(
        "# {} checks in {:.1}s",
        selected.len(),
        started.elapsed().as_secs_f64()
    ));
    let skipped_note = if skipped > 0 {
        format!(", {skipped} skipped")
    } else {
        String::new()
    };
    say(&format!("{passed} passed, {failed} failed{skipped_note}"));
    Ok(failed > 0 || interrupted())
}
