//! Hooks: order, where they run, what they read on stdin, and failure semantics.

use husk_tests::*;

/// A host hook that appends its name to `order` and saves its stdin as `<name>.json`.
fn host_hook(log: &std::path::Path, name: &str) -> Value {
    let script = format!(
        "cat > {dir}/{name}.json; echo {name} >> {dir}/order",
        dir = log.display()
    );
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

/// A hook run inside the container after pivot_root: it writes to the bind-mounted /hooklog.
fn container_hook(name: &str) -> Value {
    let script = format!("cat > /hooklog/{name}.json; echo {name} >> /hooklog/order");
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

#[test]
fn all_hooks_run_in_order_with_state_on_stdin() {
    let log = scratch("hooks");
    let h = Husk::new();
    let b = Bundle::new(
        &["sh", "-c", "sleep 0.3; echo main >> /hooklog/order"],
        |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/hooklog", "type": "bind", "source": log.to_str().unwrap(), "options": ["rbind"]}));
            c["hooks"] = json!({
                "prestart": [host_hook(&log, "prestart")],
                "createRuntime": [host_hook(&log, "createRuntime")],
                // Before pivot_root: host paths still resolve.
                "createContainer": [host_hook(&log, "createContainer")],
                "startContainer": [container_hook("startContainer")],
                "poststart": [host_hook(&log, "poststart")],
                "poststop": [host_hook(&log, "poststop")],
            });
        },
    );
    let id = unique("hooks");
    h.create(&id, &b);
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    h.ok(&["start", &id]);
    h.wait_status(&id, "stopped");
    h.ok(&["delete", &id]);
    let order = std::fs::read_to_string(log.join("order")).unwrap();
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "main",
            "poststop"
        ],
        "{order}"
    );
    for (name, status) in [
        ("prestart", "created"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let st: Value =
            serde_json::from_slice(&std::fs::read(log.join(format!("{name}.json"))).unwrap())
                .unwrap_or_else(|e| panic!("{name} stdin is not state JSON: {e}"));
        assert_eq!(st["id"], id.as_str(), "{name}");
        assert_eq!(st["status"], status, "{name}");
        assert_eq!(st["bundle"], b.dir.to_str().unwrap(), "{name}");
        if name != "poststop" {
            assert_eq!(st["pid"].as_i64().unwrap(), pid, "{name}");
        }
    }
    let _ = std::fs::remove_dir_all(&log);
}

#[test]
fn failing_create_runtime_hook_aborts_and_cleans_up() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 7"]}]});
    });
    let id = unique("badhook");
    let out = h.run(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("createRuntime hook #0") && err.contains("nope"),
        "{err}"
    );
    assert!(!h.root.join(&id).exists(), "state left behind");
    assert!(cgroup_dirs_named(&id).is_empty(), "cgroup left behind");
}

#[test]
fn failing_poststart_hook_only_warns() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        c["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    });
    let out = h.run_container(&unique("poststart"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("poststart hook #0"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn hook_timeout_is_enforced() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        c["hooks"] =
            json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    });
    let start = std::time::Instant::now();
    let out = h.run_container(&unique("timeout"), &b);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

/// runc: createContainer hooks start in the container's root filesystem (before pivot_root).
#[test]
fn create_container_hook_runs_in_the_rootfs() {
    let log = scratch("hooks");
    let h = Husk::new();
    let script = format!("pwd > {}/cwd", log.display());
    let b = Bundle::new(&["true"], |c| {
        c["hooks"] =
            json!({"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    });
    let out = h.run_container(&unique("cchook"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    let cwd = std::fs::read_to_string(log.join("cwd")).unwrap();
    assert_eq!(cwd.trim(), b.dir.join("rootfs").to_str().unwrap());
    let _ = std::fs::remove_dir_all(&log);
}

/// A failing startContainer hook is reported with its exit status, in runc's words.
#[test]
fn failing_start_container_hook_reports_its_exit_status() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        c["hooks"] =
            json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]});
    });
    let want = "error running startContainer hook #0: exit status 3";
    let out = h.run_container(&unique("schook"), &b);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(want), "run: {}", stderr(&out));
    let id = unique("schook");
    h.create(&id, &b);
    let out = h.run(&["start", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(want), "start: {}", stderr(&out));
}

#[test]
fn hook_errors_use_runcs_wording() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        c["hooks"] = json!({"prestart": [{"path": "/bin/true"}, {"path": "/bin/false"}]});
    });
    let out = h.run_container(&unique("hookword"), &b);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("error running prestart hook #1: exit status 1"),
        "{}",
        stderr(&out)
    );
}
