//! Hostile input (issue 11, items 4-12): hooks that flood their output, config files that
//! are not files or are huge, over-long ids, device and mount policy bypasses, `--no-pivot`,
//! startContainer hooks and seccomp, frozen or shared cgroups, descriptors leaking into the
//! waiting init. Each test fails on the code before the fix.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use husk_tests::*;

/// Runs husk under `timeout 30`: a hang fails the test instead of stalling the suite. Its
/// stderr goes through a file (a created init inherits it and would hold a pipe open).
fn bounded(h: &Husk, args: &[&str]) -> Output {
    let dir = scratch("bounded");
    let err_path = dir.join("stderr");
    let err = std::fs::File::create(&err_path).unwrap();
    let status = Command::new("timeout")
        .args(["-s", "KILL", "30"])
        .arg(husk_bin())
        .arg("--root")
        .arg(&h.root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .status()
        .expect("spawn timeout/husk");
    let stderr = std::fs::read(&err_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    Output {
        status,
        stdout: Vec::new(),
        stderr,
    }
}

fn assert_nothing_left(h: &Husk, id: &str) {
    assert!(!h.root.join(id).exists(), "state directory of {id} left");
    assert!(cgroup_dirs_named(id).is_empty(), "cgroups of {id} left");
}

/// Item 4: a hook writing far more than a pipe holds (64 KiB) on stdout and stderr, then
/// failing: create fails promptly, with a bounded tail of the output in one line.
#[test]
fn hook_output_over_64k_neither_deadlocks_nor_floods_the_error() {
    let h = Husk::new();
    let flood = "head -c 300000 /dev/zero | tr '\\0' o; head -c 300000 /dev/zero | tr '\\0' e >&2; echo tail-marker >&2; exit 3";
    let b = Bundle::new(&["true"], |c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", flood]}]});
    });
    let id = unique("flood");
    let out = bounded(&h, &["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}", &err[..err.len().min(500)]);
    assert!(
        err.contains("tail-marker"),
        "{}",
        &err[..err.len().min(500)]
    );
    assert!(err.len() < 16 << 10, "error message is {} bytes", err.len());
    assert_eq!(err.trim_end().lines().count(), 1);
    assert_nothing_left(&h, &id);

    // The same flood from a hook that succeeds: the container is created.
    let ok = "head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2";
    let b2 = Bundle::new(&["true"], |c| {
        c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", ok]}]});
    });
    let id2 = unique("flood-ok");
    let out = bounded(&h, &["create", "--bundle", b2.dir.to_str().unwrap(), &id2]);
    assert!(out.status.success(), "{}", stderr(&out));
    h.ok(&["delete", "--force", &id2]);
}

fn create_fails(h: &Husk, b: &Bundle, want: &str) {
    let id = unique("cfg");
    let out = bounded(h, &["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(want), "want {want:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_nothing_left(h, &id);
}

/// Item 5: config.json must be a regular file of at most 16 MiB.
#[test]
fn config_json_must_be_a_regular_file_of_bounded_size() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |_| {});
    let cfg = b.dir.join("config.json");
    let good = std::fs::read(&cfg).unwrap();

    std::fs::remove_file(&cfg).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &cfg).unwrap();
    create_fails(&h, &b, "a device, not a regular file");

    std::fs::remove_file(&cfg).unwrap();
    let status = Command::new("mkfifo").arg(&cfg).status().unwrap();
    assert!(status.success());
    create_fails(&h, &b, "a FIFO, not a regular file");

    // Valid JSON, padded with whitespace past the limit.
    std::fs::remove_file(&cfg).unwrap();
    let mut big = good.clone();
    big.resize(big.len() + (16 << 20), b' ');
    std::fs::write(&cfg, &big).unwrap();
    create_fails(&h, &b, "larger than 16 MiB");

    std::fs::write(&cfg, &good).unwrap();
    let id = unique("cfg-ok");
    h.create(&id, &b);
    h.ok(&["delete", "--force", &id]);
}

/// Item 5: state.json keeps what later commands read, not the whole config.
#[test]
fn state_json_stays_small_for_a_large_config() {
    let h = Husk::new();
    let b = Bundle::new(&["sleep", "10"], |c| {
        let long = format!("/nonexistent/{}", "m".repeat(200));
        let masked: Vec<Value> = (0..4000).map(|i| json!(format!("{long}{i}"))).collect();
        c["linux"]["maskedPaths"] = json!(masked);
    });
    let cfg_len = std::fs::metadata(b.dir.join("config.json")).unwrap().len();
    assert!(cfg_len > 800_000, "config is {cfg_len} bytes");
    let id = unique("small");
    h.create(&id, &b);
    let state_len = std::fs::metadata(h.root.join(&id).join("state.json"))
        .unwrap()
        .len();
    assert!(state_len < 32 << 10, "state.json is {state_len} bytes");
    h.ok(&["start", &id]);
    h.ok(&["exec", &id, "true"]);
    assert_eq!(h.status(&id), "running");
    h.ok(&["delete", "--force", &id]);
}

/// Item 6: an id must fit in a file name (255 bytes), checked before anything is made; a
/// 255-byte id works through the whole lifecycle.
#[test]
fn id_length_is_checked_up_front() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |_| {});
    for len in [256, 1024] {
        let id = "i".repeat(len);
        let out = bounded(&h, &["create", "--bundle", b.dir.to_str().unwrap(), &id]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("longer than 255 bytes"), "{err}");
        assert!(!h.root.join(&id).exists());
    }
    let id = format!("{}-{}", std::process::id(), "l".repeat(260));
    let id = &id[..255];
    h.create(id, &b);
    h.ok(&["start", id]);
    h.wait_status(id, "stopped");
    h.ok(&["delete", id]);
    assert_nothing_left(&h, id);
}

/// Item 7: a device listed in `linux.devices` is created, but the cgroup policy is the spec's
/// `resources.devices`: with deny-all, /dev/kmsg (c 1:11) cannot be opened.
#[test]
fn linux_devices_do_not_override_a_device_deny() {
    let h = Husk::new();
    let b = Bundle::new(
        &["sh", "-c", "ls -l /dev/kmsg && (echo husk-test > /dev/kmsg && echo kmsg-write-ok) 2>&1; cat /dev/null && echo null-ok"],
        |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o644}]);
        },
    );
    let out = h.run_container(&unique("kmsg"), &b);
    let all = stdout(&out) + &stderr(&out);
    assert!(all.contains("/dev/kmsg"), "device not created: {all}");
    assert!(!all.contains("kmsg-write-ok"), "{all}");
    assert!(all.contains("not permitted"), "{all}");
    assert!(all.contains("null-ok"), "{all}");
}

/// Item 8: procfs or sysfs where the rootfs has a symlink is refused, whatever the link
/// points at; nothing is left behind.
#[test]
fn special_filesystems_refuse_symlinked_mount_points() {
    let h = Husk::new();
    for (dir, target) in [("proc", "etc"), ("sys", "/tmp")] {
        let b = Bundle::new(&["true"], |_| {});
        let link = b.dir.join("rootfs").join(dir);
        std::fs::remove_dir(&link).unwrap();
        std::os::unix::fs::symlink(target, &link).unwrap();
        create_fails(&h, &b, "must be mounted on ordinary directory");
        assert!(mounts_mentioning(b.dir.to_str().unwrap()).is_empty());
    }
}

/// Item 9: with --no-pivot the host's procfs is no longer visible in the container's mount
/// namespace, so a new user + pid namespace cannot mount a fresh procfs.
#[test]
fn no_pivot_hides_the_host_procfs() {
    let h = Husk::new();
    let script = "unshare -U -r -m -p -f true && echo userns-ok; unshare -U -r -m -p -f mount -t proc proc /proc && echo proc-mounted; true";
    let b = Bundle::new(&["sh", "-c", script], |c| {
        for set in ["bounding", "effective", "permitted"] {
            let caps = c["process"]["capabilities"][set].as_array_mut().unwrap();
            // Mapping root in a new user namespace takes CAP_SETFCAP (Linux 5.12+).
            for cap in ["CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETFCAP"] {
                caps.push(json!(cap));
            }
        }
    });
    let out = h.run(&[
        "run",
        "--no-pivot",
        "--bundle",
        b.dir.to_str().unwrap(),
        &unique("nopivot"),
    ]);
    let all = stdout(&out) + &stderr(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("userns-ok"),
        "user namespaces unusable here: {all}"
    );
    assert!(!all.contains("proc-mounted"), "{all}");
}

/// Item 10: a startContainer hook runs under the container's seccomp filter and, having no
/// `env` of its own, with the process's environment.
#[test]
fn start_container_hook_runs_under_seccomp_with_the_process_env() {
    let log = scratch("sc-hook");
    let h = Husk::new();
    let hook = "(mkdir /tmp/hook-dir 2>/dev/null && echo mkdir-ok || echo mkdir-denied; echo \"var=$HUSK_HOOK_VAR\") > /hooklog/out";
    let b = Bundle::new(&["true"], |c| {
        c["process"]["noNewPrivileges"] = json!(true);
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("HUSK_HOOK_VAR=from-process"));
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/hooklog", "type": "bind", "source": log.to_str().unwrap(), "options": ["rbind"]}));
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
        c["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]});
    });
    let out = h.run_container(&unique("schook"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = std::fs::read_to_string(log.join("out")).unwrap();
    assert!(got.contains("mkdir-denied"), "{got}");
    assert!(got.contains("var=from-process"), "{got}");
    let _ = std::fs::remove_dir_all(&log);
}

/// A cgroup directory `name` in every mounted hierarchy husk uses (v1 controllers and the
/// cgroup2 mount), made by the test.
fn make_cgroup(name: &str) -> Vec<std::path::PathBuf> {
    let mut made = Vec::new();
    for ctrl in ["freezer", "unified"] {
        let dir = Path::new("/sys/fs/cgroup").join(ctrl).join(name);
        if dir.parent().unwrap().is_dir() && std::fs::create_dir(&dir).is_ok() {
            made.push(dir);
        }
    }
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let dir = Path::new("/sys/fs/cgroup").join(name);
        if std::fs::create_dir(&dir).is_ok() {
            made.push(dir);
        }
    }
    made
}

/// Item 11: a frozen target cgroup is refused at once (it used to hang create forever).
#[test]
fn frozen_target_cgroup_is_refused() {
    let name = unique("husk-crash-frozen");
    let dirs = make_cgroup(&name);
    let mut froze = false;
    for d in &dirs {
        froze |= std::fs::write(d.join("freezer.state"), "FROZEN").is_ok();
        froze |= std::fs::write(d.join("cgroup.freeze"), "1").is_ok();
    }
    assert!(froze, "no freezer on this host: {dirs:?}");
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!("/{name}"));
    });
    let id = unique("frozen");
    let out = bounded(&h, &["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    let err = stderr(&out);
    for d in &dirs {
        let _ = std::fs::write(d.join("freezer.state"), "THAWED");
        let _ = std::fs::write(d.join("cgroup.freeze"), "0");
    }
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is frozen"), "{err}");
    assert!(!h.root.join(&id).exists());
    for d in dirs.iter().rev() {
        std::fs::remove_dir(d).unwrap();
    }
    assert!(cgroup_dirs_named(&name).is_empty());
}

/// Item 11: a second container cannot join a cgroup that holds another container's
/// processes, and its failure leaves the first one intact.
#[test]
fn joining_a_populated_cgroup_is_refused() {
    let name = unique("husk-crash-shared");
    let h = Husk::new();
    let b = Bundle::new(&["sleep", "30"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!("/{name}"));
    });
    let first = unique("first");
    h.create(&first, &b);
    let second = unique("second");
    let out = bounded(
        &h,
        &["create", "--bundle", b.dir.to_str().unwrap(), &second],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("container's cgroup is not empty"), "{err}");
    assert!(!h.root.join(&second).exists());
    assert_eq!(h.status(&first), "created");
    assert!(!cgroup_dirs_named(&name).is_empty());
    h.ok(&["start", &first]);
    h.ok(&["delete", "--force", &first]);
    assert!(cgroup_dirs_named(&name).is_empty());
}

/// Item 12: between create and start, the init holds nothing of the host: not a descriptor
/// the caller left open (fd 9 here), not a cgroup directory.
#[test]
fn waiting_init_holds_no_host_descriptors() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |_| {});
    let secret = b.dir.join("caller-secret");
    std::fs::write(&secret, "host data").unwrap();
    let id = unique("fds");
    let script = format!(
        "exec 9<{secret} 6<{secret}; exec {husk} --root {root} create --bundle {bundle} {id}",
        secret = secret.display(),
        husk = husk_bin().display(),
        root = h.root.display(),
        bundle = b.dir.display(),
    );
    let err_path = b.dir.join("create-stderr");
    let status = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .status()
        .unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "{err}");
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    let mut held = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let fd: i32 = e.file_name().to_str().unwrap().parse().unwrap();
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        let t = target.to_string_lossy().into_owned();
        if fd > 2 && !t.starts_with("socket:") && !t.starts_with("/memfd:husk") {
            held.push(format!("{fd} -> {t}"));
        }
    }
    assert!(held.is_empty(), "init {pid} holds {held:?}");
    // The preserved range still works: --preserve-fds passes fd 3 on.
    h.ok(&["delete", "--force", &id]);
}
