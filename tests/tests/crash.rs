//! Crash consistency (issue 11, items 1-3): whatever kills husk, and whatever happens to
//! `state.json`, `delete --force ID` finds and removes everything the container made:
//! processes, cgroups in every hierarchy, mounts, the state directory.
//!
//! The kill loop runs `create`, `start`, `delete` and `run` under strace and SIGKILLs husk at
//! each of its system calls that changes something (`HUSK_SOAK=1`: at every system call), then
//! checks that `delete --force` leaves nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use husk_tests::*;

/// The environment variable that marks every process of one test container (husk's own
/// environment reaches the init, the process env reaches the container's program).
const TAG: &str = "HUSK_CRASH_TAG";

fn tagged_bundle(args: &[&str], tag: &str, edit: impl FnOnce(&mut Value)) -> Bundle {
    Bundle::new(args, |c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!(format!("{TAG}={tag}")));
        edit(c)
    })
}

/// Live (non-zombie) processes whose environment carries `TAG=tag`.
fn tagged_processes(tag: &str) -> Vec<i32> {
    let needle = format!("{TAG}={tag}\0");
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if env.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            if state != Some("Z") {
                found.push(pid);
            }
        }
    }
    found
}

/// Asserts that nothing of container `id` (tagged `tag`, bundle `b`) is left, allowing an
/// orphaned init a moment to finish exiting.
fn assert_clean(h: &Husk, id: &str, tag: &str, b: &Bundle, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let procs = loop {
        let p = tagged_processes(tag);
        if p.is_empty() || Instant::now() > deadline {
            break p;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(procs.is_empty(), "{what}: processes left: {procs:?}");
    assert!(!h.root.join(id).exists(), "{what}: state directory left");
    let cgroups = cgroup_dirs_named(id);
    assert!(cgroups.is_empty(), "{what}: cgroups left: {cgroups:?}");
    let mounts = mounts_mentioning(b.dir.to_str().unwrap());
    assert!(mounts.is_empty(), "{what}: mounts left: {mounts:?}");
}

fn spawn_husk(h: &Husk, tag: &str, args: &[&str], out: &Path) -> Child {
    let file = std::fs::File::create(out).unwrap();
    h.command(args)
        .env(TAG, tag)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap()
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Items 1 and 2: `create` killed while a createRuntime hook runs. While it runs, `state`
/// and `list` say "creating"; after the kill `delete --force` removes the cgroups, the init
/// and the state directory.
fn killed_during_create_runtime_hook(signal: i32) {
    let h = Husk::new();
    let tag = unique("hook-kill");
    let hook_pid = scratch("hookpid").join("pid");
    let script = format!("echo $$ > {}; exec sleep 60", hook_pid.display());
    let b = tagged_bundle(&["sleep", "100"], &tag, |c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    });
    let id = unique("hook-kill");
    let log = b.dir.join("create.log");
    let mut child = spawn_husk(
        &h,
        &tag,
        &["create", "--bundle", b.dir.to_str().unwrap(), &id],
        &log,
    );
    wait_for(&hook_pid);
    assert_eq!(h.status(&id), "creating");
    let list: Value = serde_json::from_str(&h.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "creating");
    let fp: Value =
        serde_json::from_slice(&std::fs::read(h.root.join(&id).join("footprint.json")).unwrap())
            .unwrap();
    let init = fp["pid"].as_i64().unwrap();
    assert!(init > 0, "footprint has no init pid: {fp}");
    // SAFETY: kill(2) of the husk process this test spawned.
    unsafe { libc::kill(child.id() as i32, signal) };
    child.wait().unwrap();
    assert!(!cgroup_dirs_named(&id).is_empty(), "nothing to clean up?");
    h.ok(&["delete", "--force", &id]);
    assert_clean(&h, &id, &tag, &b, "after delete --force");
    assert!(
        !Path::new(&format!("/proc/{init}/stat")).exists() || tagged_processes(&tag).is_empty()
    );
    let sleeper: i32 = std::fs::read_to_string(&hook_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The hook dies with husk (it would otherwise be left running, unknown to delete --force).
    let gone = (0..50).any(|_| {
        let stat = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
        let dead = stat
            .rsplit_once(") ")
            .is_none_or(|(_, rest)| rest.starts_with('Z'));
        if !dead {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        dead
    });
    // SAFETY: kill(2) of the hook's sleep, started by this test's container config.
    unsafe { libc::kill(sleeper, libc::SIGKILL) };
    assert!(gone, "the createRuntime hook outlived the killed husk");
    let _ = std::fs::remove_dir_all(hook_pid.parent().unwrap());
}

#[test]
fn create_killed_by_sigkill_leaves_nothing_delete_force_misses() {
    killed_during_create_runtime_hook(libc::SIGKILL);
}

#[test]
fn create_killed_by_sigterm_leaves_nothing_delete_force_misses() {
    killed_during_create_runtime_hook(libc::SIGTERM);
}

/// Runs `husk args` under strace, SIGKILLing husk at the `n`th call of `syscall` (of husk
/// itself, not of the processes it starts).
fn husk_killed_at(h: &Husk, tag: &str, args: &[&str], syscall: &str, n: usize, log: &Path) {
    let file = std::fs::File::create(log).unwrap();
    let status = Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:signal=SIGKILL:when={n}"))
        .arg(husk_bin())
        .arg("--root")
        .arg(&h.root)
        .args(args)
        .env(TAG, tag)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .expect("strace (apt-get install strace)");
    let _ = status;
}

/// Item 2: `create` killed after the init waits for `start` but before `state.json` is in
/// place (at the rename that would publish it). The init is not lost: a new `create` of the
/// same id clears it away, and `delete --force` removes the new container.
#[test]
fn create_killed_before_publishing_state_is_cleared_by_create_of_same_id() {
    let h = Husk::new();
    let tag = unique("publish");
    let b = tagged_bundle(&["sleep", "100"], &tag, |_| {});
    let id = unique("publish");
    let log = b.dir.join("strace.log");
    let file = std::fs::File::create(&log).unwrap();
    husk_killed_before_publish(&h, &id)
        .args(["create", "--bundle", b.dir.to_str().unwrap(), &id])
        .env(TAG, &tag)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .unwrap();
    assert!(
        !h.root.join(&id).join("state.json").exists(),
        "kill missed the rename"
    );
    let orphans = tagged_processes(&tag);
    assert_eq!(orphans.len(), 1, "the init waiting for start: {orphans:?}");
    assert_eq!(h.status(&id), "stopped");
    // A new container of the same id: the old init and cgroup go first.
    h.create(&id, &b);
    assert!(
        !tagged_processes(&tag).contains(&orphans[0]),
        "old init survived"
    );
    assert_eq!(h.status(&id), "created");
    h.ok(&["delete", "--force", &id]);
    assert_clean(&h, &id, &tag, &b, "after delete --force");
}

/// Item 3: a truncated `state.json` of a running container: `list` shows it as `unknown`,
/// `state` names the problem, `delete` refuses, `delete --force` removes everything.
#[test]
fn damaged_state_file_is_listed_and_force_deletable() {
    let h = Husk::new();
    let tag = unique("damaged");
    let b = tagged_bundle(&["sleep", "100"], &tag, |_| {});
    let id = unique("damaged");
    h.create(&id, &b);
    h.ok(&["start", &id]);
    assert_eq!(tagged_processes(&tag).len(), 1);
    let state = h.root.join(&id).join("state.json");
    let len = std::fs::metadata(&state).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&state)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    let list: Value = serde_json::from_str(&h.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["id"], id.as_str(), "{list}");
    assert_eq!(list[0]["status"], "unknown", "{list}");
    assert!(h.ok(&["list"]).contains("unknown"));
    let out = h.run(&["state", &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("damaged state file"),
        "{}",
        stderr(&out)
    );
    assert!(!h.run(&["delete", &id]).status.success());
    h.ok(&["delete", "--force", &id]);
    assert_clean(&h, &id, &tag, &b, "after delete --force");
}

/// The system calls at which the kill loop stops husk: those that change something (or
/// every one with HUSK_SOAK=1).
fn kill_points(
    h: &Husk,
    tag: &str,
    args: &[&str],
    prepare: &dyn Fn() -> Option<PathBuf>,
) -> Vec<(String, usize)> {
    let soak = std::env::var_os("HUSK_SOAK").is_some();
    let trace_log = scratch("trace").join("strace.txt");
    prepare();
    let mut cmd = Command::new("strace");
    cmd.args(["-qq", "-o"]).arg(&trace_log);
    if !soak {
        let mut set = "mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,mount,umount2,clone3,clone,bind,connect,listen,flock,kill,pidfd_send_signal,write,socketpair,memfd_create".to_string();
        if args.first() == Some(&"start") {
            // start changes little; its reads are where it waits for the init.
            set.push_str(",read,recvfrom,poll");
        }
        cmd.args(["-e", &format!("trace={set}")]);
    }
    cmd.arg(husk_bin())
        .arg("--root")
        .arg(&h.root)
        .args(args)
        .env(TAG, tag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let text = std::fs::read_to_string(&trace_log).unwrap();
    let _ = std::fs::remove_dir_all(trace_log.parent().unwrap());
    let mut counts = std::collections::HashMap::<String, usize>::new();
    let mut points = Vec::new();
    for line in text.lines() {
        let Some(name) = line
            .split('(')
            .next()
            .filter(|n| !n.is_empty() && !n.contains(' '))
        else {
            continue;
        };
        if matches!(name, "exit_group" | "execve") {
            continue;
        }
        let n = counts.entry(name.to_string()).or_default();
        *n += 1;
        points.push((name.to_string(), *n));
    }
    points
}

/// One command of the lifecycle killed at each of its steps.
fn kill_loop(command: &str) -> usize {
    let h = Husk::new();
    let tag = unique("loop");
    let b = tagged_bundle(&["sleep", "100"], &tag, |_| {});
    let run_b = tagged_bundle(&["true"], &tag, |_| {});
    let bundle = if command == "run" { &run_b } else { &b };
    let bdir = bundle.dir.to_str().unwrap().to_string();
    let mut iteration = 0;
    let id_for = |i: usize| format!("loop-{}-{command}-{i}", std::process::id());
    // Puts container `id` in the state the command expects.
    let prepare = |id: &str| match command {
        "start" => h.create(id, &b),
        "delete" => {
            h.create(id, &b);
            h.ok(&["start", id]);
        }
        _ => {}
    };
    let args_for = |id: &str| -> Vec<String> {
        match command {
            "create" | "run" => vec![command.into(), "--bundle".into(), bdir.clone(), id.into()],
            // A running container: delete --force kills it, waits, removes.
            "delete" => vec![command.into(), "--force".into(), id.into()],
            _ => vec![command.into(), id.into()],
        }
    };
    let probe_id = id_for(9999);
    let probe_args = args_for(&probe_id);
    let probe_args: Vec<&str> = probe_args.iter().map(String::as_str).collect();
    let points = kill_points(&h, &tag, &probe_args, &|| {
        prepare(&probe_id);
        None
    });
    assert!(!points.is_empty(), "{command}: no kill points traced");
    let _ = h.run(&["delete", "--force", &probe_id]);
    assert_clean(&h, &probe_id, &tag, bundle, &format!("{command}: probe"));
    for (syscall, n) in &points {
        iteration += 1;
        let id = id_for(iteration);
        prepare(&id);
        let args = args_for(&id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let log = scratch("killed").join("log");
        husk_killed_at(&h, &tag, &args, syscall, *n, &log);
        let what = format!("{command} killed at {syscall} #{n}");
        let out = h.run(&["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "{what}: delete --force: {}",
            stderr(&out)
        );
        assert_clean(&h, &id, &tag, bundle, &what);
        let _ = std::fs::remove_dir_all(log.parent().unwrap());
    }
    eprintln!(
        "kill loop: {command}: killed at {} steps, nothing left",
        points.len()
    );
    points.len()
}

#[test]
fn kill_loop_create() {
    kill_loop("create");
}

#[test]
fn kill_loop_start() {
    kill_loop("start");
}

#[test]
fn kill_loop_delete() {
    kill_loop("delete");
}

#[test]
fn kill_loop_run() {
    kill_loop("run");
}

/// Concurrent creates of one id: exactly one wins, the others fail cleanly, and the winner
/// is a whole container.
#[test]
fn concurrent_creates_of_one_id_have_one_winner() {
    let h = Husk::new();
    let tag = unique("race");
    let b = tagged_bundle(&["sleep", "100"], &tag, |_| {});
    for round in 0..3 {
        let id = unique("race");
        let children: Vec<Child> = (0..16)
            .map(|i| {
                let log = b.dir.join(format!("race-{round}-{i}.log"));
                spawn_husk(
                    &h,
                    &tag,
                    &["create", "--bundle", b.dir.to_str().unwrap(), &id],
                    &log,
                )
            })
            .collect();
        let wins = children
            .into_iter()
            .map(|mut c| c.wait().unwrap().success())
            .filter(|&ok| ok)
            .count();
        assert_eq!(wins, 1, "round {round}");
        assert_eq!(h.status(&id), "created");
        assert_eq!(tagged_processes(&tag).len(), 1);
        h.ok(&["delete", "--force", &id]);
        assert_clean(&h, &id, &tag, &b, "after the race");
    }
}
