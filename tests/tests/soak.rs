//! The leak soak (`make soak`; skipped unless HUSK_SOAK=1): 1,000 containers (HUSK_SOAK_N)
//! through create, start, exit, delete, and 50 concurrent creates of one id in 10 rounds,
//! with counts of state directories, cgroups, mounts, processes and descriptors before and
//! after. The closing lines print the counts. (`make soak` also runs tests/crash.rs with
//! HUSK_SOAK=1: the kill loop at every system call.)

use std::path::Path;
use std::process::{Child, Stdio};

use husk_tests::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    state_dirs: usize,
    cgroups: usize,
    mounts: usize,
    processes: usize,
    /// Descriptors open system-wide (first field of /proc/sys/fs/file-nr).
    fds: usize,
}

fn count_dirs(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                n += 1;
                stack.push(e.path());
            }
        }
    }
    n
}

fn counts(root: &Path) -> Counts {
    Counts {
        state_dirs: std::fs::read_dir(root).map_or(0, |d| d.count()),
        cgroups: count_dirs(Path::new("/sys/fs/cgroup")),
        mounts: std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .count(),
        processes: std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .count(),
        fds: std::fs::read_to_string("/proc/sys/fs/file-nr")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    }
}

fn soak_enabled(what: &str) -> bool {
    let on = std::env::var_os("HUSK_SOAK").is_some();
    if !on {
        eprintln!("soak: {what}: skipped (set HUSK_SOAK=1, or run `make soak`)");
    }
    on
}

/// Leaks are judged on what belongs to the soak (its prefix, its bundle, its root); the
/// host-wide counts are printed too, but other work on the machine moves them.
#[test]
fn thousand_containers_leak_nothing() {
    if !soak_enabled("1,000-container leak soak") {
        return;
    }
    let n: usize = std::env::var("HUSK_SOAK_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let h = Husk::new();
    let b = Bundle::new(&["true"], |_| {});
    let prefix = format!("soak-{}", std::process::id());
    std::fs::create_dir_all(&h.root).unwrap();
    let before = counts(&h.root);
    let start = std::time::Instant::now();
    for i in 0..n {
        let id = format!("{prefix}-{i}");
        h.create(&id, &b);
        h.ok(&["start", &id]);
        h.wait_status(&id, "stopped");
        h.ok(&["delete", &id]);
    }
    let took = start.elapsed();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let after = counts(&h.root);
    let own_cgroups = (0..n)
        .filter(|i| !cgroup_dirs_named(&format!("{prefix}-{i}")).is_empty())
        .count();
    let own_mounts = mounts_mentioning(b.dir.to_str().unwrap()).len();
    eprintln!(
        "soak: {n} containers in {:.1} s ({:.1} ms each)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / n as f64
    );
    eprintln!("soak: before: {before:?}");
    eprintln!("soak: after:  {after:?}");
    eprintln!(
        "soak: left by the soak: state dirs {}, cgroups {own_cgroups}, mounts {own_mounts}",
        after.state_dirs
    );
    assert_eq!(after.state_dirs, 0);
    assert_eq!(own_cgroups, 0);
    assert_eq!(own_mounts, 0);
}

#[test]
fn fifty_concurrent_creates_of_one_id() {
    if !soak_enabled("concurrent same-id creates") {
        return;
    }
    let h = Husk::new();
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let rounds = 10;
    let mut winners = Vec::new();
    for round in 0..rounds {
        let id = unique("soak-race");
        let children: Vec<Child> = (0..50)
            .map(|_| {
                h.command(&["create", "--bundle", b.dir.to_str().unwrap(), &id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let wins = children
            .into_iter()
            .filter_map(|mut c| c.wait().ok())
            .filter(|s| s.success())
            .count();
        winners.push(wins);
        assert_eq!(h.status(&id), "created", "round {round}");
        h.ok(&["delete", "--force", &id]);
        assert!(cgroup_dirs_named(&id).is_empty());
        assert!(!h.root.join(&id).exists());
    }
    eprintln!(
        "soak: 50 concurrent creates of one id, {rounds} rounds: winners per round {winners:?}"
    );
    assert!(winners.iter().all(|&w| w == 1));
}
