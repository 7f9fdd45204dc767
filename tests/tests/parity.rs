//! Behaviours runc's users depend on (issue 18): each test pins one of them.

use husk_tests::*;

fn running(h: &Husk, args: &[&str], edit: impl FnOnce(&mut Value)) -> (Bundle, String) {
    let b = Bundle::new(args, edit);
    let id = unique("parity");
    h.create(&id, &b);
    h.ok(&["start", &id]);
    (b, id)
}

#[test]
fn kill_with_signal_zero_probes_a_live_container() {
    let h = Husk::new();
    let (_b, id) = running(&h, &["sleep", "100"], |_| {});
    h.ok(&["kill", &id, "0"]);
    assert_eq!(
        h.status(&id),
        "running",
        "signal 0 must not harm the container"
    );
    h.ok(&["kill", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    let out = h.run(&["kill", &id, "0"]);
    assert!(
        !out.status.success(),
        "signal 0 to a stopped container must fail"
    );
}

#[test]
fn sigkill_in_the_host_pid_namespace_kills_every_process() {
    let h = Husk::new();
    let (_b, id) = running(&h, &["sh", "-c", "sleep 1000 & wait"], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    let init = h.state(&id)["pid"].as_i64().unwrap() as i32;
    let mut child = 0;
    for _ in 0..500 {
        let kids = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"));
        if let Some(n) = kids
            .ok()
            .and_then(|k| k.split_whitespace().next()?.parse().ok())
        {
            child = n;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        child > 0,
        "the container never started its background sleep"
    );
    // Kill the init alone first: its child lives on, re-parented.
    // SAFETY: kill(2) on a pid of a test container.
    unsafe { libc::kill(init, libc::SIGKILL) };
    h.wait_status(&id, "stopped");
    assert!(std::path::Path::new(&format!("/proc/{child}")).exists());
    h.ok(&["kill", &id, "KILL"]);
    for _ in 0..500 {
        let gone = std::fs::read_to_string(format!("/proc/{child}/stat"))
            .map_or(true, |s| s.contains(") Z "));
        if gone {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("kill KILL left the container's process {child} alive");
}

/// The keys of `runc list --format json`, in runc's order.
const RUNC_KEYS: [&str; 9] = [
    "ociVersion",
    "id",
    "pid",
    "status",
    "bundle",
    "rootfs",
    "created",
    "annotations",
    "owner",
];

#[test]
fn list_json_uses_runcs_key_order() {
    let h = Husk::new();
    let (_b, _id) = running(&h, &["sleep", "100"], |c| {
        c["annotations"] = json!({"org.example": "x"});
    });
    let out = h.ok(&["list", "--format", "json"]);
    let keys: Vec<&str> = out
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|k| RUNC_KEYS.contains(k))
        .collect();
    assert_eq!(keys, RUNC_KEYS, "{out}");
}

#[test]
fn list_with_a_missing_root_fails() {
    let h = Husk::new();
    let out = h.run(&["list"]);
    assert!(!out.status.success(), "list of a missing --root succeeded");
    assert!(
        stderr(&out).contains("no such file or directory")
            || stderr(&out).contains("No such file or directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exec_process_file_without_user_runs_as_root() {
    let h = Husk::new();
    let (b, id) = running(&h, &["sleep", "100"], |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    let file = b.dir.join("process.json");
    std::fs::write(
        &file,
        r#"{"args": ["sh", "-c", "id -u; id -g"], "cwd": "/", "env": ["PATH=/bin"]}"#,
    )
    .unwrap();
    let out = h.run(&["exec", "--process", file.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "0\n0\n");
}

#[test]
fn exec_cgroup_slash_is_the_containers_own_cgroup() {
    let h = Husk::new();
    let (_b, id) = running(&h, &["sleep", "100"], |_| {});
    let out = h.run(&[
        "exec",
        "--cgroup",
        "/",
        &id,
        "sh",
        "-c",
        "cat /proc/1/cgroup; echo --; cat /proc/self/cgroup",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let (init, me) = text.split_once("--\n").unwrap();
    assert_eq!(
        init, me,
        "exec --cgroup / must put the process in the init's cgroups"
    );
}

/// Bad `exec --cgroup` paths fail in runc's words, which its users match: "bad sub cgroup
/// path" for a path that leaves the container's cgroup, "unknown controller", and " adding pid
/// ... to cgroups ... no such file or directory" for a sub-cgroup that does not exist.
#[test]
fn exec_cgroup_errors_use_runcs_words() {
    let h = Husk::new();
    let (_b, id) = running(&h, &["sleep", "100"], |_| {});
    let fails = |cgroup: &str, want: &[&str]| {
        let out = h.run(&["exec", "--cgroup", cgroup, &id, "true"]);
        assert!(!out.status.success(), "--cgroup {cgroup} succeeded");
        let err = stderr(&out);
        for w in want {
            assert!(err.contains(w), "--cgroup {cgroup}: want {w:?} in {err}");
        }
        let named = format!("container {id}");
        assert_eq!(
            err.matches(named.as_str()).count(),
            1,
            "id named once: {err}"
        );
    };
    fails("..", &["bad sub cgroup path: .."]);
    fails("../sibling", &["bad sub cgroup path: ../sibling"]);
    fails("cpu:../sibling", &["bad sub cgroup path: ../sibling"]);
    fails("whaaat:/", &["unknown controller whaaat"]);
    fails(
        "nonexistent",
        &[" adding pid ", " to cgroups", "no such file or directory"],
    );
    // A path that goes down and back up stays inside: the container's own cgroup.
    h.ok(&["exec", "--cgroup", "a/..", &id, "true"]);
}

/// A script whose interpreter is missing: execve fails in the trampoline, after start.
fn bundle_with_broken_script(args: &[&str]) -> Bundle {
    let b = Bundle::new(args, |_| {});
    let script = b.dir.join("rootfs/run.sh");
    std::fs::write(&script, "#!/nonexistent/interpreter\necho hi\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    b
}

#[test]
fn execve_failure_is_reported_by_run_start_and_exec() {
    let want = "exec /run.sh: no such file or directory";
    let h = Husk::new();
    let b = bundle_with_broken_script(&["/run.sh"]);
    let out = h.run_container(&unique("parity"), &b);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(want), "run: {}", stderr(&out));

    let id = unique("parity");
    h.create(&id, &b);
    let out = h.run(&["start", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(want), "start: {}", stderr(&out));
    h.ok(&["delete", "--force", &id]);

    let (_b2, id) = running(&h, &["sleep", "100"], |_| {});
    std::fs::copy(b.dir.join("rootfs/run.sh"), _b2.dir.join("rootfs/run.sh")).unwrap();
    let out = h.run(&["exec", &id, "/run.sh"]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    assert!(stderr(&out).contains(want), "exec: {}", stderr(&out));
}

#[test]
fn home_comes_from_the_containers_passwd() {
    let h = Husk::new();
    let passwd = "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n";
    let run_as = |uid: u32, env: &[&str]| {
        let b = Bundle::new(&["sh", "-c", "echo \"[$HOME]\""], |c| {
            c["process"]["user"] = json!({"uid": uid, "gid": uid});
            let e = c["process"]["env"].as_array_mut().unwrap();
            e.extend(env.iter().map(|s| json!(s)));
        });
        std::fs::write(b.dir.join("rootfs/etc/passwd"), passwd).unwrap();
        let out = h.run_container(&unique("parity"), &b);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(run_as(0, &[]), "[/root]\n");
    assert_eq!(run_as(1000, &["HOME="]), "[/home/u]\n");
    assert_eq!(run_as(4242, &[]), "[/]\n");
    assert_eq!(run_as(1000, &["HOME=/mine"]), "[/mine]\n");

    // exec: the exec'd process's own uid.
    let (b, id) = running(&h, &["sleep", "100"], |_| {});
    std::fs::write(b.dir.join("rootfs/etc/passwd"), passwd).unwrap();
    let out = h.run(&[
        "exec",
        "--user",
        "1000",
        &id,
        "sh",
        "-c",
        "echo \"[$HOME]\"",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "[/home/u]\n");
}

#[test]
fn unknown_capabilities_are_a_warning() {
    let h = Husk::new();
    let b = Bundle::new(&["sh", "-c", "grep CapBnd /proc/self/status"], |c| {
        c["process"]["capabilities"]["bounding"] = json!(["CAP_FOO", "CAP_KILL"]);
    });
    let out = h.run_container(&unique("parity"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ignoring unknown or unavailable capabilities")
            && stderr(&out).contains("CAP_FOO"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "CapBnd:\t0000000000000020\n");
}

#[test]
fn exec_cap_raises_ambient_when_inheritable_allows() {
    let h = Husk::new();
    let (_b, id) = running(&h, &["sleep", "100"], |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"]["inheritable"] = json!(["CAP_NET_RAW"]);
        c["process"]["capabilities"]["ambient"] = json!([]);
        for set in ["bounding", "permitted"] {
            let s = c["process"]["capabilities"][set].as_array_mut().unwrap();
            s.push(json!("CAP_NET_RAW"));
        }
    });
    let amb = |cap: &str| {
        let out = h.run(&[
            "exec",
            "--cap",
            cap,
            &id,
            "grep",
            "CapAmb",
            "/proc/self/status",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        (stdout(&out), stderr(&out))
    };
    let (out, _) = amb("CAP_NET_RAW");
    assert_eq!(out, "CapAmb:\t0000000000002000\n");
    let (out, err) = amb("CAP_SYS_TIME");
    assert_eq!(out, "CapAmb:\t0000000000000000\n");
    assert!(
        err.contains("can't raise ambient capability CAP_SYS_TIME"),
        "{err}"
    );
}

#[test]
fn scheduler_flags_by_the_specs_names() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        c["process"]["scheduler"] =
            json!({"policy": "SCHED_BATCH", "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
    });
    let out = h.run_container(&unique("parity"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn run_keep_keeps_the_stopped_container() {
    let h = Husk::new();
    let b = Bundle::new(&["sh", "-c", "exit 4"], |_| {});
    let id = unique("parity");
    let out = h.run(&["run", "--keep", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(h.status(&id), "stopped");
    h.ok(&["delete", &id]);
    assert!(!h.root.join(&id).exists());
    assert!(cgroup_dirs_named(&id).is_empty(), "cgroup left behind");
    // Without --keep the container is gone after run.
    let id = unique("parity");
    let out = h.run(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(4));
    assert!(!h.run(&["state", &id]).status.success());
}

/// The mount options of `dest` as the container's mountinfo shows them.
fn mount_opts_inside(h: &Husk, extra: Vec<Value>, dest: &str) -> String {
    let b = Bundle::new(&["cat", "/proc/self/mountinfo"], |c| {
        c["mounts"].as_array_mut().unwrap().extend(extra);
    });
    let out = h.run_container(&unique("parity"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(dest))
        .unwrap_or_else(|| panic!("{dest} not mounted: {}", stdout(&out)))
        .to_string()
}

#[test]
fn recursive_atime_and_nosymfollow_mount_options() {
    let h = Husk::new();
    let src = scratch("bindsrc");
    let line = mount_opts_inside(
        &h,
        vec![
            json!({"destination": "/data", "type": "bind", "source": src.to_str().unwrap(),
                    "options": ["rbind", "rnoatime", "rnosymfollow"]}),
        ],
        "/data",
    );
    assert!(
        line.contains("noatime") && line.contains("nosymfollow"),
        "{line}"
    );
    let line = mount_opts_inside(
        &h,
        vec![
            json!({"destination": "/data", "type": "bind", "source": src.to_str().unwrap(),
                    "options": ["rbind", "rstrictatime"]}),
        ],
        "/data",
    );
    assert!(
        !line.contains("relatime") && !line.contains("noatime"),
        "{line}"
    );
    let line = mount_opts_inside(
        &h,
        vec![
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosymfollow"]}),
        ],
        "/scratch",
    );
    assert!(line.contains("nosymfollow"), "{line}");
    let _ = std::fs::remove_dir_all(&src);
}

#[test]
fn tmpfs_without_mode_inherits_the_mount_points_mode() {
    let h = Husk::new();
    let b = Bundle::new(&["stat", "-c", "%a", "/srv", "/opt"], |c| {
        c["mounts"].as_array_mut().unwrap().extend([
            json!({"destination": "/srv", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}),
            json!({"destination": "/opt", "type": "tmpfs", "source": "tmpfs", "options": ["mode=750"]}),
        ]);
    });
    use std::os::unix::fs::PermissionsExt;
    for d in ["srv", "opt"] {
        let p = b.dir.join("rootfs").join(d);
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o710)).unwrap();
    }
    let out = h.run_container(&unique("parity"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "710\n750\n");
}

/// Receives one descriptor on a fresh socket at `path` (in a thread).
fn pidfd_receiver(path: &std::path::Path) -> std::thread::JoinHandle<std::os::fd::OwnedFd> {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        husk_sys::recv_fd(&conn)
            .unwrap()
            .expect("a pidfd over SCM_RIGHTS")
    })
}

/// The pid a pidfd refers to (its fdinfo's `Pid:` line).
fn pid_of_pidfd(fd: &std::os::fd::OwnedFd) -> i64 {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("not a pidfd: {info}"))
}

#[test]
fn pidfd_socket_on_create_and_exec() {
    let h = Husk::new();
    let dir = scratch("pidfd");
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let id = unique("parity");
    let sock = dir.join("create.sock");
    let got = pidfd_receiver(&sock);
    h.create_with(&id, &b, &["--pidfd-socket", sock.to_str().unwrap()]);
    let fd = got.join().unwrap();
    assert_eq!(pid_of_pidfd(&fd), h.state(&id)["pid"].as_i64().unwrap());
    h.ok(&["start", &id]);

    let sock = dir.join("exec.sock");
    let got = pidfd_receiver(&sock);
    let pid_file = dir.join("exec.pid");
    h.ok(&[
        "exec",
        "--detach",
        "--pidfd-socket",
        sock.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        // Not holding the test's output pipe open.
        "exec sleep 50 </dev/null >/dev/null 2>&1",
    ]);
    let fd = got.join().unwrap();
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(pid_of_pidfd(&fd), pid);
    let _ = std::fs::remove_dir_all(&dir);
}

fn cpus_allowed(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// runc >= 1.2: a container's process starts with its cgroup's CPUs, not husk's `taskset`;
/// `exec` applies process.execCPUAffinity.
#[test]
fn cpu_affinity_comes_from_the_cgroup_and_exec_cpu_affinity() {
    let ours = cpus_allowed(&std::fs::read_to_string("/proc/self/status").unwrap());
    if ours == "0" {
        eprintln!("skipped: one CPU only, no affinity to narrow");
        return;
    }
    let h = Husk::new();
    let b = Bundle::new(&["cat", "/proc/self/status"], |_| {});
    let id = unique("parity");
    let out = h.run_container_under(&["taskset", "-c", "0"], &id, &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        cpus_allowed(&stdout(&out)),
        ours,
        "the caller's taskset leaked in"
    );

    let (b, id) = running(&h, &["sleep", "100"], |_| {});
    let file = b.dir.join("process.json");
    std::fs::write(
        &file,
        r#"{"args": ["cat", "/proc/self/status"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "execCPUAffinity": {"initial": "0", "final": "1"}}"#,
    )
    .unwrap();
    let out = h.run(&["exec", "--process", file.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(cpus_allowed(&stdout(&out)), "1");
}

#[test]
fn memory_policy_is_applied_and_checked() {
    let h = Husk::new();
    let run = |policy: Value| {
        let b = Bundle::new(&["cat", "/proc/self/numa_maps"], |c| {
            c["linux"]["memoryPolicy"] = policy;
        });
        h.run_container(&unique("parity"), &b)
    };
    let out = run(json!({"mode": "MPOL_BIND", "nodes": "0"}));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(" bind:0 "), "{}", stdout(&out));
    for bad in [
        json!({"mode": "MPOL_BIND"}),
        json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
        json!({"mode": "MPOL_INTERLEAVE", "nodes": "0",
               "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
        // A node this machine does not have: the kernel refuses it.
        json!({"mode": "MPOL_BIND", "nodes": "1000"}),
    ] {
        let out = run(bad.clone());
        assert!(!out.status.success(), "{bad} was accepted");
        assert!(
            stderr(&out).contains("invalid memory policy"),
            "{bad}: {}",
            stderr(&out)
        );
    }
}

/// A bind destination through a dangling symlink (absolute, so it would point at the host) is
/// created inside the rootfs, where the symlink points when resolved in the root.
#[test]
fn bind_destination_through_a_dangling_symlink_is_made_in_the_rootfs() {
    let h = Husk::new();
    let src = scratch("bindsrc");
    std::fs::write(src.join("f"), "through the link\n").unwrap();
    let host_target = format!("/nonexistent-{}", unique("parity"));
    let b = Bundle::new(&["cat", "/linkf", "/linkd/f"], |c| {
        c["mounts"].as_array_mut().unwrap().extend([
            json!({"destination": "/linkf", "type": "bind",
                   "source": src.join("f").to_str().unwrap(), "options": ["rbind"]}),
            json!({"destination": "/linkd", "type": "bind",
                   "source": src.to_str().unwrap(), "options": ["rbind"]}),
        ]);
    });
    let rootfs = b.dir.join("rootfs");
    std::os::unix::fs::symlink(format!("{host_target}/file"), rootfs.join("linkf")).unwrap();
    std::os::unix::fs::symlink(format!("{host_target}/dir"), rootfs.join("linkd")).unwrap();
    let out = h.run_container(&unique("parity"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "through the link\nthrough the link\n");
    assert!(
        !std::path::Path::new(&host_target).exists(),
        "made on the host"
    );
    assert!(rootfs.join(&host_target[1..]).join("file").is_file());
    let _ = std::fs::remove_dir_all(&src);
}

/// A read-only /dev: its sub-mounts and device nodes are made first, then it turns read-only
/// (as runc), instead of "read-only file system" for /dev/pts's mount point.
#[test]
fn read_only_dev_with_later_submounts() {
    let h = Husk::new();
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "ls /dev/pts/ptmx /dev/null >/dev/null && ! touch /dev/x 2>/dev/null && echo ok",
        ],
        |c| {
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/dev" {
                    m["options"].as_array_mut().unwrap().push(json!("ro"));
                }
            }
        },
    );
    let out = h.run_container(&unique("parity"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ok\n");
}

/// A bind source inside the rootfs under an earlier mount of the same config is found when
/// that mount is made (here: a file that only exists in what the earlier mount brought).
#[test]
fn bind_source_under_an_earlier_mount() {
    let h = Husk::new();
    let src = scratch("bindsrc");
    std::fs::write(src.join("f"), "from the earlier mount\n").unwrap();
    let b = Bundle::new(&["cat", "/b"], |_| {});
    let inner = b.dir.join("rootfs/a/f");
    let mut cfg = b.config();
    cfg["mounts"].as_array_mut().unwrap().extend([
        json!({"destination": "/a", "type": "bind", "source": src.to_str().unwrap(), "options": ["rbind"]}),
        json!({"destination": "/b", "type": "bind", "source": inner.to_str().unwrap(), "options": ["rbind"]}),
    ]);
    b.write_config(&cfg);
    let out = h.run_container(&unique("parity"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from the earlier mount\n");
    let _ = std::fs::remove_dir_all(&src);
}

/// runc >= 1.2's bind rules: flags the config does not name keep the source mount's (nosuid,
/// nodev, noatime here); flags it names apply.
#[test]
fn bind_mount_keeps_the_sources_unnamed_flags() {
    let h = Husk::new();
    let src = scratch("lockedsrc");
    let s = src.to_str().unwrap();
    let mnt = |args: &[&str]| {
        let st = std::process::Command::new("mount")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "mount {args:?}");
    };
    mnt(&["--bind", s, s]);
    mnt(&["-o", "remount,bind,nosuid,nodev,noatime", s]);
    let line = mount_opts_inside(
        &h,
        vec![
            json!({"destination": "/data", "type": "bind", "source": s, "options": ["bind", "ro"]}),
        ],
        "/data",
    );
    let opts = line.split(' ').nth(5).unwrap_or_default().to_string();
    let _ = std::process::Command::new("umount").arg(s).status();
    let _ = std::fs::remove_dir_all(&src);
    for want in ["ro", "nosuid", "nodev", "noatime"] {
        assert!(opts.split(',').any(|o| o == want), "{want} missing: {line}");
    }
}

/// Recursive attributes on a filesystem mount (not a bind) are applied too, as runc does,
/// not parsed and dropped.
#[test]
fn recursive_attributes_on_a_tmpfs() {
    let h = Husk::new();
    let line = mount_opts_inside(
        &h,
        vec![
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                    "options": ["rro", "rnoatime"]}),
        ],
        "/scratch",
    );
    let opts = line.split(' ').nth(5).unwrap_or_default().to_string();
    assert!(
        opts.split(',').any(|o| o == "ro") && opts.split(',').any(|o| o == "noatime"),
        "{line}"
    );
}

/// `run --no-subreaper` (runc's flag) is honoured: a process orphaned inside a container that
/// shares the host's pid namespace is adopted by husk when it is a subreaper (the default, as
/// runc), and not with the flag.
#[test]
fn run_no_subreaper_leaves_orphans_to_the_hosts_reaper() {
    let script = "orphan=$( (sleep 30 >/dev/null 2>&1 & echo $!) ); \
        ppid=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$orphan/status); \
        kill $orphan; \
        if [ \"$ppid\" = \"$PPID\" ]; then echo adopted-by-husk; else echo adopted-by-$ppid; fi";
    let host_pids = |c: &mut Value| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    };
    let h = Husk::new();
    let b = Bundle::new(&["sh", "-c", script], host_pids);
    let dir = b.dir.to_str().unwrap();
    let out = h.run(&["run", "--bundle", dir, &unique("parity")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "adopted-by-husk");
    let out = h.run(&["run", "--no-subreaper", "--bundle", dir, &unique("parity")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("adopted-by-") && text.trim() != "adopted-by-husk",
        "{text}"
    );
}

/// An init that is husk's grandchild (a new pid namespace inside a joined user namespace) can
/// be waited for only by a subreaper: `run --no-subreaper` refuses it before anything is made.
#[test]
fn run_no_subreaper_refuses_an_init_that_is_a_grandchild() {
    let mut holder = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "sleep", "60"])
        .spawn()
        .expect("unshare (util-linux)");
    let pid = holder.id();
    // unshare has made the namespace once its exec of sleep shows in /proc.
    for _ in 0..500 {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "sleep" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}));
    });
    let id = unique("parity");
    let dir = b.dir.to_str().unwrap();
    let out = h.run(&["run", "--no-subreaper", "--bundle", dir, &id]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--no-subreaper") && err.contains("grandchild"),
        "{err}"
    );
    assert!(!h.root.join(&id).exists(), "nothing left behind");
}
