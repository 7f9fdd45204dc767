//! Timing wrapper for `bench/cri-breakdown.sh`. A copy of it stands in for a program the CRI
//! path runs (the runtimes, containerd's shim, the CNI plugins) as `DIR/bin/NAME` or
//! `DIR/cni/NAME`, next to a link `NAME.real` to the real program. It runs the real program with
//! the same arguments, stdio and environment, waits for it (only for it: a container's init
//! outlives `create`), and appends one line to `DIR/calls.log`:
//! `TAG START_NS END_NS EXIT cpu=CPU_US ARGS...` (wall clock; TAG is NAME, or `cni-NAME`).
//! It exits with the real program's status.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{exit, Command};
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// User + system CPU of the waited-for children, in µs.
fn children_cpu_us() -> i64 {
    // SAFETY: getrusage fills the zeroed struct it is given and keeps no pointer to it.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let us = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    us(ru.ru_utime) + us(ru.ru_stime)
}

fn main() {
    let me = std::fs::read_link("/proc/self/exe").unwrap_or_else(|e| {
        eprintln!("cri-timer: /proc/self/exe: {e}");
        exit(127)
    });
    let name = me
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = me.parent().map(PathBuf::from).unwrap_or_default();
    let tag = match dir.file_name().and_then(|d| d.to_str()) {
        Some("cni") => format!("cni-{name}"),
        _ => name.clone(),
    };
    let mut real = me.clone().into_os_string();
    real.push(".real");
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let t0 = now_ns();
    let status = Command::new(&real).args(&args).status();
    let t1 = now_ns();
    let code = match &status {
        Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        Err(e) => {
            eprintln!("cri-timer: run {}: {e}", PathBuf::from(&real).display());
            127
        }
    };
    let mut line = format!("{tag} {t0} {t1} {code} cpu={}", children_cpu_us());
    for a in &args {
        line.push(' ');
        line.push_str(&a.to_string_lossy());
    }
    line.push('\n');
    let log = dir
        .parent()
        .map(|d| d.join("calls.log"))
        .unwrap_or_default();
    // One write of one line in append mode: lines of concurrent calls do not interleave.
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&log)
    {
        let _ = f.write_all(line.as_bytes());
    }
    exit(code)
}
