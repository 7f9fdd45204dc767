//! Resource limits as a container sees them, and the commands that work through its cgroup
//! (`pause`, `resume`, `ps`, `update`, `events`, `kill --all`). Runs on cgroup v1 (this host)
//! and cgroup v2 (the VM lane in tests/vm).

use husk_tests::*;

fn unified() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The file holding `v1` (cgroup v1, under its controller) or `v2` inside the container.
fn limit_file(controller: &str, v1: &str, v2: &str) -> String {
    if unified() {
        format!("/sys/fs/cgroup/{v2}")
    } else {
        format!("/sys/fs/cgroup/{controller}/{v1}")
    }
}

fn started(h: &Husk, args: &[&str], edit: impl FnOnce(&mut Value)) -> (Bundle, String) {
    let b = Bundle::new(args, edit);
    let id = unique("cg");
    h.create(&id, &b);
    h.ok(&["start", &id]);
    (b, id)
}

#[test]
fn limits_are_visible_inside() {
    let h = Husk::new();
    let mem = limit_file("memory", "memory.limit_in_bytes", "memory.max");
    let pids = limit_file("pids", "pids.max", "pids.max");
    let b = Bundle::new(&["sh", "-c", &format!("cat {mem} {pids}")], |c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
        c["linux"]["resources"]["pids"] = json!({"limit": 50});
    });
    let out = h.run_container(&unique("lim"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\n50\n", 64 << 20));
}

#[test]
fn memory_limit_oom_kills() {
    let h = Husk::new();
    // Holding 100 MB in a shell variable inside a 32 MB cgroup.
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "echo started; x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
        ],
        |c| {
            c["linux"]["resources"]["memory"] = json!({"limit": 32 << 20, "swap": 32 << 20});
        },
    );
    let id = unique("oom");
    let out = h.run_container(&id, &b);
    assert!(
        stdout(&out).starts_with("started"),
        "never ran: {}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("survived"), "not OOM-killed");
    // The shell holding the memory is the init: killed by SIGKILL.
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
}

#[test]
fn pids_limit_stops_forks() {
    let h = Husk::new();
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; wait; echo done",
        ],
        |c| {
            c["linux"]["resources"]["pids"] = json!({"limit": 4});
        },
    );
    let out = h.run_container(&unique("pids"), &b);
    assert!(
        stderr(&out).contains("fork")
            || stderr(&out).contains("Resource temporarily unavailable")
            || stderr(&out).contains("can't"),
        "forks were not limited: {}",
        stderr(&out)
    );
}

/// /dev/kmsg (c 1:11) is not among the devices every container may use: the spec's deny-all
/// rule applies to it unless the spec allows it.
fn kmsg_read(allow: bool) -> String {
    let h = Husk::new();
    let b = Bundle::new(&["sh", "-c", "mknod /dev/kmsg c 1 11 && dd if=/dev/kmsg of=/dev/null bs=4096 count=1 2>&1 && echo read-ok"], |c| {
        for set in ["bounding", "effective", "permitted"] {
            let caps = c["process"]["capabilities"][set].as_array_mut().unwrap();
            caps.push(json!("CAP_MKNOD"));
            caps.push(json!("CAP_SYSLOG"));
        }
        if allow {
            let rules = c["linux"]["resources"]["devices"].as_array_mut().unwrap();
            rules.push(json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}));
        }
    });
    let out = h.run_container(&unique("dev"), &b);
    stdout(&out) + &stderr(&out)
}

#[test]
fn device_rules_are_enforced() {
    let denied = kmsg_read(false);
    assert!(
        !denied.contains("read-ok") && denied.contains("not permitted"),
        "{denied}"
    );
    let allowed = kmsg_read(true);
    assert!(allowed.contains("read-ok"), "{allowed}");
}

#[test]
fn pause_resume_and_freezer_state() {
    let h = Husk::new();
    let (_b, id) = started(&h, &["sleep", "100"], |_| {});
    h.ok(&["pause", &id]);
    assert_eq!(h.status(&id), "paused");
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        st.lines()
            .any(|l| l.starts_with("State:")
                && (l.contains("D") || l.contains("T") || l.contains("S"))),
        "{st}"
    );
    let again = h.run(&["pause", &id]);
    assert!(!again.status.success());
    h.ok(&["resume", &id]);
    assert_eq!(h.status(&id), "running");
    let out = h.run(&["resume", &id]);
    assert!(stderr(&out).contains("not paused"), "{}", stderr(&out));
    // Deleting a paused container with --force works (it is thawed to die).
    h.ok(&["pause", &id]);
    h.ok(&["delete", "--force", &id]);
    assert!(cgroup_dirs_named(&id).is_empty());
}

#[test]
fn ps_lists_the_container_processes() {
    let h = Husk::new();
    let (_b, id) = started(&h, &["sh", "-c", "sleep 100 & sleep 100 & wait"], |_| {});
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pids: Vec<i64> = serde_json::from_str(&h.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(pids.len(), 3, "{pids:?}");
    let init = h.state(&id)["pid"].as_i64().unwrap();
    assert!(pids.contains(&init));
    let table = h.ok(&["ps", &id]);
    assert!(table.lines().next().unwrap().contains("PID"));
    assert_eq!(table.lines().count(), 4, "{table}");
}

#[test]
fn update_changes_live_limits() {
    let h = Husk::new();
    let (_b, id) = started(&h, &["sleep", "100"], |c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 100});
    });
    h.ok(&["update", "--pids-limit", "42", "--memory", "96m", &id]);
    let mut child = h
        .command(&["update", "--resources", "-", &id])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"cpu": {"shares": 512}}"#)
        .unwrap();
    assert!(child.wait().unwrap().success());
    let out = h.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        &format!(
            "cat {} {}",
            limit_file("pids", "pids.max", "pids.max"),
            limit_file("memory", "memory.limit_in_bytes", "memory.max")
        ),
    ]);
    assert_eq!(out, format!("42\n{}\n", 96 << 20));
    // The state remembers the update.
    let cfg = serde_json::from_slice::<Value>(
        &std::fs::read(h.root.join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["spec"]["linux"]["resources"]["pids"]["limit"], 42);
}

#[test]
fn events_stats_report_moving_numbers() {
    let h = Husk::new();
    let (_b, id) = started(&h, &["sh", "-c", "while true; do :; done"], |_| {});
    let first: Value = serde_json::from_str(&h.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(first["type"], "stats");
    assert_eq!(first["id"], id.as_str());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second: Value = serde_json::from_str(&h.ok(&["events", "--stats", &id])).unwrap();
    let cpu = |v: &Value| v["data"]["cpu"]["usage"]["total"].as_u64().unwrap_or(0);
    assert!(
        cpu(&second) > cpu(&first),
        "cpu usage did not move: {first} {second}"
    );
    assert!(
        second["data"]["memory"]["usage"]["usage"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    assert_eq!(second["data"]["pids"]["current"], 1);
}

#[test]
fn kill_all_reaches_every_process() {
    let h = Husk::new();
    let (_b, id) = started(&h, &["sh", "-c", "sleep 100 & sleep 100 & wait"], |_| {});
    std::thread::sleep(std::time::Duration::from_millis(200));
    h.ok(&["kill", "--all", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    assert_eq!(h.ok(&["ps", "--format", "json", &id]).trim(), "[]");
}

#[test]
fn relative_and_absolute_cgroups_paths_and_no_leftovers() {
    let h = Husk::new();
    let abs = format!("/husk-test-abs/{}", unique("p"));
    let (_b, id) = started(&h, &["sleep", "100"], |c| {
        c["linux"]["cgroupsPath"] = json!(abs)
    });
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&abs), "{cg}");
    h.ok(&["delete", "--force", &id]);
    let leaf = abs.rsplit('/').next().unwrap();
    assert!(
        cgroup_dirs_named(leaf).is_empty(),
        "left: {:?}",
        cgroup_dirs_named(leaf)
    );
}

#[test]
fn failed_create_leaves_no_cgroup() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        c["linux"]["resources"]["cpu"] = json!({"cpus": "9999"})
    });
    let id = unique("badcpu");
    let out = h.run(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cpus") || stderr(&out).contains("cpuset"),
        "{}",
        stderr(&out)
    );
    assert!(cgroup_dirs_named(&id).is_empty());
    assert!(!h.root.join(&id).exists());
}

/// runc >= 1.2: `pids.limit` 0 is pids.max 1 (not "unlimited", not "no process"), and -1 (in
/// a config or `update --pids-limit -1`) is "max".
#[test]
fn pids_limit_zero_is_one_and_negative_is_max() {
    let h = Husk::new();
    let pids = limit_file("pids", "pids.max", "pids.max");
    let b = Bundle::new(&["cat", &pids], |c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 0});
    });
    let out = h.run_container(&unique("pids0"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1\n");

    let (_b, id) = started(&h, &["sleep", "100"], |c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 10});
    });
    h.ok(&["update", "--pids-limit", "-1", &id]);
    let out = h.run(&["exec", &id, "cat", &pids]);
    assert_eq!(stdout(&out), "max\n", "{}", stderr(&out));
}

#[test]
fn update_cpu_burst() {
    let h = Husk::new();
    let burst = limit_file("cpu", "cpu.cfs_burst_us", "cpu.max.burst");
    let (_b, id) = started(&h, &["sleep", "100"], |c| {
        c["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000});
    });
    h.ok(&["update", "--cpu-burst", "20000", &id]);
    let out = h.run(&["exec", &id, "cat", &burst]);
    assert_eq!(stdout(&out), "20000\n", "{}", stderr(&out));
}

/// cgroup v1 RT group scheduling: a period below the current runtime is only accepted once the
/// runtime is lowered, so `update` must write them in that order.
#[test]
fn update_rt_period_below_the_current_runtime() {
    if unified() {
        eprintln!("skipped: cgroup v2 has no RT group scheduling (cpu.rt_period_us)");
        return;
    }
    let h = Husk::new();
    let (_b, id) = started(&h, &["sleep", "100"], |c| {
        c["linux"]["resources"]["cpu"] =
            json!({"realtimePeriod": 1000000, "realtimeRuntime": 10000});
    });
    h.ok(&[
        "update",
        "--cpu-rt-period",
        "5000",
        "--cpu-rt-runtime",
        "1000",
        &id,
    ]);
    let out = h.run(&[
        "exec",
        &id,
        "cat",
        "/sys/fs/cgroup/cpu/cpu.rt_period_us",
        "/sys/fs/cgroup/cpu/cpu.rt_runtime_us",
    ]);
    assert_eq!(stdout(&out), "5000\n1000\n", "{}", stderr(&out));
}

/// runc's refusal, word for word, of `unified` resources on a cgroup v1 host.
#[test]
fn unified_on_v1_is_refused_with_runcs_words() {
    if unified() {
        eprintln!("skipped: this host has cgroup v2, where unified applies");
        return;
    }
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        c["linux"]["resources"]["unified"] = json!({"pids.max": "7"});
    });
    let out = h.run_container(&unique("unif"), &b);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid configuration: cannot use unified on cgroup v1"),
        "{}",
        stderr(&out)
    );
}

/// v1 cpuset: an intermediate directory that exists with empty cpuset.cpus/mems (made by
/// someone else) is filled from its parent, as runc does, instead of failing the join.
#[test]
fn v1_cpuset_intermediate_dirs_are_filled_from_the_parent() {
    if unified() {
        eprintln!("skipped: cgroup v2 has no v1 cpuset hierarchy");
        return;
    }
    let name = unique("parity-cpuset");
    let mid = std::path::Path::new("/sys/fs/cgroup/cpuset").join(&name);
    std::fs::create_dir(&mid).unwrap();
    assert_eq!(
        std::fs::read_to_string(mid.join("cpuset.cpus"))
            .unwrap()
            .trim(),
        ""
    );
    let h = Husk::new();
    let b = Bundle::new(&["cat", "/proc/self/status"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!("/{name}/ctr"));
    });
    let out = h.run_container(&unique("cpuset"), &b);
    let _ = std::fs::remove_dir(mid.join("ctr"));
    let filled = std::fs::read_to_string(mid.join("cpuset.cpus")).unwrap();
    let _ = std::fs::remove_dir(&mid);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!filled.trim().is_empty());
}
