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
