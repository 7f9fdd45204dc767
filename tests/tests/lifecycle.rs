//! The OCI lifecycle from outside: create, start, state, kill, delete, run.

use std::path::{Path, PathBuf};

use husk_tests::*;

#[test]
fn create_start_kill_delete() {
    let h = Husk::new();
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let id = unique("life");
    h.create(&id, &b);
    let st = h.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.dir.to_str().unwrap());
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // Not started: the user process must not run yet (the init is still husk, not sleep).
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep", "user process ran before start");

    h.ok(&["start", &id]);
    assert_eq!(h.status(&id), "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    // A second start is refused.
    let again = h.run(&["start", &id]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already running"),
        "{}",
        stderr(&again)
    );

    h.ok(&["kill", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    assert_eq!(h.state(&id)["pid"], 0);
    h.ok(&["delete", &id]);
    let gone = h.run(&["state", &id]);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("does not exist"));
    assert!(!h.root.join(&id).exists());
}

#[test]
fn run_returns_exit_code_and_output() {
    let h = Husk::new();
    let b = Bundle::new(&["sh", "-c", "echo hello; exit 3"], |_| {});
    let id = unique("run");
    let out = h.run_container(&id, &b);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");
    // A foreground run removes its container.
    assert!(!h.root.join(&id).exists());
}

#[test]
fn run_killed_by_signal_is_128_plus_signal() {
    let h = Husk::new();
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let id = unique("sig");
    let child = h
        .command(&["run", "--bundle", b.dir.to_str().unwrap(), &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    h.wait_status(&id, "running");
    h.ok(&["kill", &id, "KILL"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
}

#[test]
fn run_forwards_signals_to_the_container() {
    let h = Husk::new();
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "trap 'exit 42' USR1; while true; do sleep 0.05; done",
        ],
        |_| {},
    );
    let id = unique("fwd");
    let child = h
        .command(&["run", "--bundle", b.dir.to_str().unwrap(), &id])
        .spawn()
        .unwrap();
    h.wait_status(&id, "running");
    std::thread::sleep(std::time::Duration::from_millis(200));
    // SAFETY: plain kill(2) to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(42));
}

#[test]
fn kill_accepts_names_and_numbers_and_defaults_to_term() {
    let h = Husk::new();
    // A shell as pid 1 ignores TERM unless it traps it; trap writes a marker.
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "trap 'echo got-term > /tmp/m; exit 0' TERM; while true; do sleep 0.1; done",
        ],
        |_| {},
    );
    let id = unique("kill");
    h.create(&id, &b);
    h.ok(&["start", &id]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    h.ok(&["kill", &id]);
    h.wait_status(&id, "stopped");
    h.ok(&["delete", &id]);

    let id2 = unique("kill");
    h.create(&id2, &b);
    h.ok(&["start", &id2]);
    h.ok(&["kill", &id2, "9"]);
    h.wait_status(&id2, "stopped");
    let bad = h.run(&["kill", &id2, "NOPE"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("unknown signal \"NOPE\""),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn delete_refuses_live_container_unless_forced() {
    let h = Husk::new();
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let id = unique("del");
    h.create(&id, &b);
    h.ok(&["start", &id]);
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    let out = h.run(&["delete", &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not stopped: running"),
        "{}",
        stderr(&out)
    );
    // Spec: no effect on the container.
    assert_eq!(h.status(&id), "running");
    h.ok(&["delete", "--force", &id]);
    assert!(!h.root.join(&id).exists());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/status")).exists() || {
            let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            s.contains("State:\tZ")
        }
    );
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs_named(&id)
    );
}

#[test]
fn created_container_can_be_force_deleted() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |_| {});
    let id = unique("cdel");
    h.create(&id, &b);
    let out = h.run(&["delete", &id]);
    assert!(
        !out.status.success(),
        "delete of a created container must need --force"
    );
    h.ok(&["delete", "-f", &id]);
    assert!(cgroup_dirs_named(&id).is_empty());
}

#[test]
fn pid_file_holds_the_init_pid() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |_| {});
    let id = unique("pidf");
    let pidfile = b.dir.join("init.pid");
    h.create_with(&id, &b, &["--pid-file", pidfile.to_str().unwrap()]);
    let written = std::fs::read_to_string(&pidfile).unwrap();
    assert!(!written.ends_with('\n'), "runc writes no newline");
    assert_eq!(
        written.parse::<i64>().unwrap(),
        h.state(&id)["pid"].as_i64().unwrap()
    );
}

#[test]
fn list_shows_containers_in_table_json_and_quiet_forms() {
    let h = Husk::new();
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let id = unique("list");
    h.create(&id, &b);
    let table = h.ok(&["list"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("ID  "));
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&id) && row.contains("created") && row.contains("root"),
        "{row}"
    );
    let json: Value = serde_json::from_str(&h.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    assert_eq!(json[0]["status"], "created");
    assert_eq!(h.ok(&["list", "-q"]).trim(), id);
}

#[test]
fn start_of_a_stopped_container_fails() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |_| {});
    let id = unique("stopped");
    h.create(&id, &b);
    h.ok(&["kill", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    let out = h.run(&["start", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("stopped"), "{}", stderr(&out));
}

#[test]
fn json_log_carries_the_error_for_clients() {
    let h = Husk::new();
    let log = scratch("log").join("log.json");
    let out = h.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "nope",
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert_eq!(last["msg"], "container does not exist");
    assert!(last["time"].as_str().unwrap().ends_with('Z'));
    let _ = std::fs::remove_dir_all(log.parent().unwrap());
}

/// `HUSK_TRACE=1` prints one line per create with every phase of the parent and, in
/// parentheses, the init's own phases in order, each a number of microseconds.
#[test]
fn trace_prints_every_setup_phase() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |_| {});
    let id = unique("trace");
    let out = h
        .command(&["run", "--bundle", b.dir.to_str().unwrap(), &id])
        .env("HUSK_TRACE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix(&format!("husk-trace: create {id}: ")))
        .unwrap_or_else(|| panic!("no trace line for {id}: {err}"));
    let (parent, init) = line.split_once(" (init: ").expect("init phases");
    let names = |part: &str| -> Vec<String> {
        part.trim_end_matches(')')
            .split(' ')
            .map(|kv| {
                let (name, us) = kv.split_once('=').expect("name=value");
                let us = us.strip_suffix("us").expect("microseconds");
                us.parse::<u64>()
                    .unwrap_or_else(|_| panic!("{kv} in {line}"));
                name.to_string()
            })
            .collect()
    };
    assert_eq!(
        names(parent),
        [
            "spec",
            "state-dir",
            "cgroup",
            "plan",
            "clone",
            "init-setup",
            "record",
            "total"
        ]
    );
    assert_eq!(
        names(init),
        [
            "clone",
            "cgroups",
            "namespaces",
            "mounts",
            "pivot-root",
            "finish",
            "security"
        ]
    );
}

/// Docker's exec root is deep (`/run/docker/runtime-runc/moby`) and its ids are 64 characters:
/// the start socket's path is then longer than a socket address holds (107 bytes). create,
/// state, start and delete must work with a 200-byte `--root` and a 64-character id.
#[test]
fn long_root_and_id_past_sun_path() {
    let base = Path::new("/run/husk-tests").join(unique("longroot"));
    let mut root = base.clone();
    while root.as_os_str().len() < 200 {
        root.push("d".repeat(20));
    }
    let root = PathBuf::from(&root.to_str().unwrap()[..200]);
    let h = Husk { root: root.clone() };
    let b = Bundle::new(&["sh", "-c", "echo long; sleep 100"], |_| {});
    let id = format!("{:0>64}", unique("l").replace('-', ""));
    assert_eq!((root.as_os_str().len(), id.len()), (200, 64));
    h.create(&id, &b);
    assert_eq!(h.status(&id), "created");
    h.ok(&["start", &id]);
    assert_eq!(h.status(&id), "running");
    h.ok(&["kill", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    h.ok(&["delete", &id]);
    assert!(!root.join(&id).exists());
    let _ = std::fs::remove_dir_all(&base);
}
