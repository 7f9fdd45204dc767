//! `husk exec`: a real member of a running container.

use husk_tests::*;

fn running(h: &Husk, edit: impl FnOnce(&mut Value)) -> (Bundle, String) {
    let b = Bundle::new(&["sleep", "1000"], edit);
    let id = unique("exec");
    h.create(&id, &b);
    h.ok(&["start", &id]);
    (b, id)
}

#[test]
fn exec_joins_the_container() {
    let h = Husk::new();
    let (_b, id) = running(&h, |c| c["hostname"] = json!("box"));
    let out = h.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "hostname; echo $$; cat /proc/1/cmdline | tr '\\0' ' '; echo; pwd; ls /",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "box");
    assert_ne!(lines[1], "1", "exec'd process must not be pid 1");
    assert!(
        lines[1].parse::<u32>().unwrap() < 100,
        "not in the container's pid namespace: {}",
        lines[1]
    );
    assert_eq!(lines[2].trim(), "sleep 1000");
    assert_eq!(lines[3], "/");
    assert!(text.contains("bin") && !text.contains("husk-tests"));
}

#[test]
fn exec_exit_code_env_cwd_and_user() {
    let h = Husk::new();
    let (_b, id) = running(&h, |_| {});
    let out = h.run(&[
        "exec",
        "--env",
        "X=42",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1000",
        &id,
        "sh",
        "-c",
        "echo $X; pwd; id -u; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "42\n/tmp\n1000\n");
}

#[test]
fn exec_process_is_in_the_container_cgroup_and_visible_in_its_pid_namespace() {
    let h = Husk::new();
    let (_b, id) = running(&h, |_| {});
    let init = h.state(&id)["pid"].as_i64().unwrap();
    let out = h.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/self/cgroup; ls /proc | grep -c '^[0-9]'",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let init_cg = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    let text = stdout(&out);
    // Same memory cgroup line as the init (cgroup v1 host) or same v2 line.
    let memory = |s: &str| {
        s.lines()
            .find(|l| l.contains(":memory:") || l.starts_with("0::"))
            .map(str::to_string)
    };
    assert_eq!(memory(&text), memory(&init_cg), "{text}");
}

#[test]
fn exec_detached_with_pid_file() {
    let h = Husk::new();
    let (b, id) = running(&h, |_| {});
    let pidfile = b.dir.join("exec.pid");
    let out = h
        .command(&[
            "exec",
            "--detach",
            "--pid-file",
            pidfile.to_str().unwrap(),
            &id,
            "sleep",
            "30",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(out.success());
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
}

#[test]
fn exec_process_file() {
    let h = Husk::new();
    let (b, id) = running(&h, |_| {});
    let mut p = b.config()["process"].clone();
    p["args"] = json!(["sh", "-c", "echo from-file"]);
    let file = b.dir.join("process.json");
    std::fs::write(&file, serde_json::to_vec(&p).unwrap()).unwrap();
    let out = h.run(&["exec", "--process", file.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from-file\n");
}

#[test]
fn exec_failures() {
    let h = Husk::new();
    let (_b, id) = running(&h, |_| {});
    let out = h.run(&["exec", &id, "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    // The container is unharmed.
    assert_eq!(h.status(&id), "running");
    h.ok(&["kill", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    let out = h.run(&["exec", &id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("stopped"), "{}", stderr(&out));
    let out = h.run(&["exec", "nope", "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("does not exist"));
}

#[test]
fn exec_into_a_sub_cgroup() {
    let h = Husk::new();
    let (_b, id) = running(&h, |_| {});
    let init = h.state(&id)["pid"].as_i64().unwrap();
    // Make a sub-cgroup "worker" next to the init's cgroup in every hierarchy.
    let init_cg = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    let mut made = Vec::new();
    for line in init_cg.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let mount = if ctrl.is_empty() {
            if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                "/sys/fs/cgroup".to_string()
            } else {
                "/sys/fs/cgroup/unified".to_string()
            }
        } else {
            format!("/sys/fs/cgroup/{}", ctrl.trim_start_matches("name="))
        };
        let dir = std::path::Path::new(&mount)
            .join(path.trim_start_matches('/'))
            .join("worker");
        if std::fs::create_dir(&dir).is_ok() {
            // A new v1 cpuset cgroup has no CPUs or memory nodes until given its parent's.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = std::fs::read_to_string(dir.parent().unwrap().join(f)) {
                    let _ = std::fs::write(dir.join(f), v);
                }
            }
            made.push(dir);
        }
    }
    let out = h.run(&[
        "exec",
        "--cgroup",
        "worker",
        &id,
        "cat",
        "/proc/self/cgroup",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).lines().all(|l| l.ends_with("/worker")),
        "{}",
        stdout(&out)
    );
    let bad = h.run(&["exec", "--cgroup", "nosuch", &id, "true"]);
    assert!(
        !bad.status.success() && stderr(&bad).contains("no such file or directory"),
        "{}",
        stderr(&bad)
    );
    h.ok(&["delete", "--force", &id]);
    for d in made {
        let _ = std::fs::remove_dir(d);
    }
}

/// A bad `exec --cwd` is blamed on the flag, not on config.json.
#[test]
fn exec_cwd_failure_names_the_flag() {
    let h = Husk::new();
    let (_b, id) = running(&h, |_| {});
    let out = h.run(&["exec", "--cwd", "/no/such/dir", &id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    let err = stderr(&out);
    assert!(
        err.contains("/no/such/dir") && err.contains("--cwd"),
        "{err}"
    );
    assert!(!err.contains("config.json"), "{err}");
    h.ok(&["delete", "--force", &id]);
}

/// exec racing with a kill of the container: it runs, is killed with the container, or says the
/// container stopped;
/// never a bare `no such process` from the namespace join.
#[test]
fn exec_racing_a_kill_says_the_container_stopped() {
    let h = Husk::new();
    for _ in 0..15 {
        let (_b, id) = running(&h, |_| {});
        let mut kill = h
            .command(&["kill", &id, "KILL"])
            .spawn()
            .expect("spawn kill");
        let out = h.run(&["exec", &id, "true"]);
        let _ = kill.wait();
        let err = stderr(&out);
        match out.status.code() {
            // It ran, or it was killed with the container's pid namespace.
            Some(0) | Some(137) => assert!(err.is_empty(), "{err}"),
            _ => assert!(err.contains("stopped"), "exec after a kill: {err}"),
        }
        h.ok(&["delete", "--force", &id]);
    }
}
