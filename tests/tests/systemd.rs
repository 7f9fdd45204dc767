//! The systemd cgroup driver (`--systemd-cgroup`) under a real systemd: containers become
//! transient scopes in the slice their `cgroupsPath` names, with their resources as unit
//! properties and files; update, pause, ps, exec, kill --all and delete work through them;
//! failures leave no unit behind. Needs systemd as PID 1: the systemd VM lane
//! (tests/vm/systemd) runs it on cgroup v2 (`make systemd-vm`) and on the hybrid layout
//! (`make systemd-vm-v1`, where the unit spans every v1 hierarchy); elsewhere every test says
//! it is skipped and why.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use husk_tests::*;

/// Why this host cannot run these tests, if it cannot.
fn skip_reason() -> Option<&'static str> {
    if !Path::new("/run/systemd/system").exists() {
        Some("systemd is not PID 1 here (run by tests/vm/systemd/run.sh)")
    } else {
        None
    }
}

/// The host mounts cgroup v1 hierarchies (legacy or hybrid layout).
fn v1() -> bool {
    !Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

macro_rules! need_systemd {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// `systemctl show -p NAME --value UNIT`.
fn show(unit: &str, prop: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", "-p", prop, "--value", unit])
        .output()
        .expect("systemctl");
    stdout(&out).trim().to_string()
}

fn unit_loaded(unit: &str) -> bool {
    show(unit, "LoadState") == "loaded"
}

/// A weight for block I/O can be set: always on v2 (io.weight); on v1 only with BFQ's
/// blkio.weight (the VM's kernel has none, and husk refuses a setting it cannot write).
fn has_blkio_weight() -> bool {
    !v1() || Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
}

/// The unit's cgroup directory: on v2 its only one, on v1 the one in `controller`'s
/// hierarchy (`cpu` and `cpuacct` are systemd's links to `cpu,cpuacct`).
fn unit_dir(controller: &str, slices: &str, unit: &str) -> PathBuf {
    let root = Path::new("/sys/fs/cgroup");
    let root = if v1() {
        root.join(controller)
    } else {
        root.to_path_buf()
    };
    root.join(slices).join(unit)
}

/// Where the unit could have a directory: every hierarchy (on v1 also those husk makes the
/// unit's directory in itself: cpuset, freezer, net_cls, ...).
fn unit_dirs(slices: &str, unit: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if !v1() {
        return vec![root.join(slices).join(unit)];
    }
    std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path().join(slices).join(unit))
        .collect()
}

fn assert_no_dirs(slices: &str, unit: &str) {
    for d in unit_dirs(slices, unit) {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

fn sd(h: &Husk, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--systemd-cgroup"];
    all.extend_from_slice(args);
    h.run(&all)
}

fn sd_ok(h: &Husk, args: &[&str]) -> String {
    let out = sd(h, args);
    assert!(out.status.success(), "husk {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Creates `id` with the systemd driver. The container's stdio goes to files in the bundle
/// (a pipe would be held open by its init); returns success and husk's stderr.
fn sd_create(h: &Husk, id: &str, b: &Bundle) -> (bool, String) {
    let out = std::fs::File::create(b.dir.join("stdout")).unwrap();
    let err = std::fs::File::create(b.dir.join("stderr")).unwrap();
    let status = h
        .command(&[
            "--systemd-cgroup",
            "create",
            "--bundle",
            b.dir.to_str().unwrap(),
            id,
        ])
        .stdout(out)
        .stderr(err)
        .status()
        .expect("spawn husk");
    let msg = std::fs::read_to_string(b.dir.join("stderr")).unwrap_or_default();
    (status.success(), msg)
}

#[test]
fn scope_in_nested_slice_with_resources() {
    need_systemd!();
    let h = Husk::new();
    let id = unique("sdres");
    let b = Bundle::new(&["sleep", "1000"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!("husktest-nested.slice:husk:{id}"));
        c["linux"]["resources"]["memory"] =
            json!({"limit": 64 << 20, "reservation": 8 << 20, "swap": 96 << 20});
        c["linux"]["resources"]["pids"] = json!({"limit": 50});
        c["linux"]["resources"]["cpu"] =
            json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"});
        if has_blkio_weight() {
            c["linux"]["resources"]["blockIO"] = json!({"weight": 500});
        }
        if !v1() {
            c["linux"]["resources"]["unified"] = json!({"memory.high": "50331648"});
        }
    });
    let (ok, err) = sd_create(&h, &id, &b);
    assert!(ok, "create: {err}");
    let unit = format!("husk-{id}.scope");
    let slices = "husktest.slice/husktest-nested.slice";
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(show(&unit, "Slice"), "husktest-nested.slice");
    assert_eq!(show(&unit, "Delegate"), "yes");
    assert_eq!(show(&unit, "TasksMax"), "50");
    assert_eq!(show(&unit, "CPUQuotaPerSecUSec"), "500ms");
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    if v1() {
        // systemd's legacy properties, then the files in every hierarchy, those systemd made
        // and those husk made (cpuset) alike; the init is in all of them.
        assert_eq!(show(&unit, "MemoryLimit"), (64u64 << 20).to_string());
        assert_eq!(show(&unit, "CPUShares"), "512");
        if has_blkio_weight() {
            assert_eq!(show(&unit, "BlockIOWeight"), "500");
        }
        let file = |c: &str, f: &str| read(&unit_dir(c, slices, &unit), f);
        assert_eq!(
            file("memory", "memory.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
        assert_eq!(
            file("memory", "memory.soft_limit_in_bytes"),
            (8u64 << 20).to_string()
        );
        assert_eq!(file("pids", "pids.max"), "50");
        assert_eq!(file("cpu", "cpu.shares"), "512");
        assert_eq!(file("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(file("cpuset", "cpuset.cpus"), "0");
        for line in own.lines() {
            assert!(
                line.ends_with(&format!("/{slices}/{unit}")),
                "init not in the unit: {own}"
            );
        }
    } else {
        assert_eq!(show(&unit, "MemoryMax"), (64u64 << 20).to_string());
        assert_eq!(show(&unit, "MemoryLow"), (8u64 << 20).to_string());
        assert_eq!(show(&unit, "MemoryHigh"), (48u64 << 20).to_string());
        assert_eq!(show(&unit, "MemorySwapMax"), (32u64 << 20).to_string());
        assert_eq!(show(&unit, "CPUWeight"), "20");
        assert_eq!(show(&unit, "AllowedCPUs"), "0");
        if has_blkio_weight() {
            assert_eq!(show(&unit, "IOWeight"), "4950");
        }
        let dir = unit_dir("", slices, &unit);
        assert_eq!(read(&dir, "memory.max"), (64u64 << 20).to_string());
        assert_eq!(read(&dir, "pids.max"), "50");
        assert_eq!(read(&dir, "cpu.max"), "50000 100000");
        assert_eq!(own.trim(), format!("0::/{slices}/{unit}"));
    }
    sd_ok(&h, &["delete", "--force", &id]);
    assert!(!unit_loaded(&unit), "unit left after delete");
    assert_no_dirs(slices, &unit);
}

#[test]
fn lifecycle_update_pause_exec_kill_delete() {
    need_systemd!();
    let h = Husk::new();
    let id = unique("sdlife");
    let b = Bundle::new(&["sleep", "1000"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!(":husktest:{id}"));
        c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
    });
    let (ok, err) = sd_create(&h, &id, &b);
    assert!(ok, "create: {err}");
    let unit = format!("husktest-{id}.scope");
    let dir = unit_dir("memory", "system.slice", &unit);
    assert!(dir.is_dir(), "{} missing", dir.display());
    h.ok(&["start", &id]);
    h.ok(&["update", "--memory", "128M", "--pids-limit", "77", &id]);
    let (limit_prop, limit_file) = if v1() {
        ("MemoryLimit", "memory.limit_in_bytes")
    } else {
        ("MemoryMax", "memory.max")
    };
    assert_eq!(show(&unit, limit_prop), (128u64 << 20).to_string());
    assert_eq!(show(&unit, "TasksMax"), "77");
    assert_eq!(read(&dir, limit_file), (128u64 << 20).to_string());
    h.ok(&["pause", &id]);
    assert_eq!(h.status(&id), "paused");
    if v1() {
        let freezer = unit_dir("freezer", "system.slice", &unit);
        assert_eq!(read(&freezer, "freezer.state"), "FROZEN");
    } else {
        assert_eq!(read(&dir, "cgroup.freeze"), "1");
    }
    h.ok(&["resume", &id]);
    assert_eq!(h.status(&id), "running");
    let out = h.ok(&["exec", &id, "cat", "/proc/self/cgroup"]);
    // The container's own cgroup namespace shows "/", the host's the unit's path.
    let inside = format!("/system.slice/{unit}");
    let want = if v1() { ":memory:" } else { "0::" };
    let line = out.lines().find(|l| l.contains(want)).unwrap_or_default();
    assert!(
        line.ends_with(":/") || line.ends_with(&inside),
        "exec'd process not in the container's cgroup: {out}"
    );
    let ps = h.ok(&["ps", "--format", "json", &id]);
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    assert!(ps.contains(&pid.to_string()), "ps: {ps}");
    let stats: Value = serde_json::from_str(&h.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(stats["type"], "stats");
    let limit = stats["data"]["memory"]["usage"]["limit"].as_u64();
    assert_eq!(limit, Some(128 << 20), "events --stats: {stats}");
    h.ok(&["kill", "--all", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    h.ok(&["delete", &id]);
    assert!(!unit_loaded(&unit), "unit left after delete");
    assert_no_dirs("system.slice", &unit);
}

#[test]
fn annotations_become_unit_properties() {
    need_systemd!();
    let h = Husk::new();
    let id = unique("sdann");
    let b = Bundle::new(&["sleep", "1000"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!("system.slice:husktest:{id}"));
        c["annotations"] = json!({
            "org.systemd.property.TimeoutStopSec": "7",
            "org.systemd.property.CollectMode": "'inactive-or-failed'",
        });
    });
    let (ok, err) = sd_create(&h, &id, &b);
    assert!(ok, "create: {err}");
    let unit = format!("husktest-{id}.scope");
    assert_eq!(show(&unit, "TimeoutStopUSec"), "7s");
    assert_eq!(show(&unit, "CollectMode"), "inactive-or-failed");
    sd_ok(&h, &["delete", "--force", &id]);
    assert!(!unit_loaded(&unit));
}

#[test]
fn failures_leave_no_unit() {
    need_systemd!();
    let h = Husk::new();
    // 1. The init fails after systemd made the scope (a bind mount of a missing source).
    let id = unique("sdfail");
    let unit = format!("husktest-{id}.scope");
    let b = Bundle::new(&["true"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!(":husktest:{id}"));
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/missing", "type": "bind", "source": "/nonexistent-husk", "options": ["bind"]
        }));
    });
    let (ok, _) = sd_create(&h, &id, &b);
    assert!(!ok, "create with a bad mount succeeded");
    assert!(!unit_loaded(&unit), "unit left after failed create");
    assert_no_dirs("system.slice", &unit);
    // 2. A malformed annotation: one line, nothing made.
    let id2 = unique("sdbad");
    let b = Bundle::new(&["true"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!(":husktest:{id2}"));
        c["annotations"] = json!({"org.systemd.property.TimeoutStopSec": "'soon'"});
    });
    let (ok, err) = sd_create(&h, &id2, &b);
    assert!(!ok);
    assert!(err.contains("org.systemd.property.TimeoutStopSec"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!unit_loaded(&format!("husktest-{id2}.scope")));
    // 3. A property systemd refuses: its error in one line, no unit.
    let id3 = unique("sdref");
    let b = Bundle::new(&["true"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!(":husktest:{id3}"));
        c["annotations"] = json!({"org.systemd.property.NoSuchHuskProperty": "uint64 1"});
    });
    let (ok, err) = sd_create(&h, &id3, &b);
    assert!(!ok, "systemd accepted an unknown property");
    assert!(
        err.contains("StartTransientUnit") && err.contains("NoSuchHuskProperty"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!unit_loaded(&format!("husktest-{id3}.scope")));
    // 3. A bad cgroupsPath.
    let b = Bundle::new(&["true"], |c| {
        c["linux"]["cgroupsPath"] = json!("/not/systemd/form");
    });
    let (ok, err) = sd_create(&h, &unique("sdpath"), &b);
    assert!(!ok);
    assert!(err.contains("slice:prefix:name"), "{err}");
    // 4. The unit exists already (another container's): refused, the other one untouched.
    let first = unique("sdone");
    let path = format!(":husktest:shared-{first}");
    let b1 = Bundle::new(&["sleep", "1000"], |c| {
        c["linux"]["cgroupsPath"] = json!(path.clone());
    });
    let (ok, err) = sd_create(&h, &first, &b1);
    assert!(ok, "create: {err}");
    let b2 = Bundle::new(&["sleep", "1000"], |c| {
        c["linux"]["cgroupsPath"] = json!(path.clone());
    });
    let (ok, err) = sd_create(&h, &unique("sdtwo"), &b2);
    assert!(!ok, "second container in the same unit");
    assert!(err.contains("already exists"), "{err}");
    let unit = format!("husktest-shared-{first}.scope");
    assert_eq!(
        show(&unit, "ActiveState"),
        "active",
        "first container's unit was stopped"
    );
    sd_ok(&h, &["delete", "--force", &first]);
    assert!(!unit_loaded(&unit));
}

/// Where systemd is not running the flag fails in one line and leaves nothing behind.
#[test]
fn without_systemd_one_clear_line() {
    if Path::new("/run/systemd/system").exists() {
        eprintln!("skipped: systemd is running here");
        return;
    }
    let h = Husk::new();
    let id = unique("nosd");
    let b = Bundle::new(&["true"], |_| {});
    let (ok, err) = sd_create(&h, &id, &b);
    assert!(!ok);
    assert!(err.contains("systemd is not running"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!h.root.join(&id).exists(), "state left behind");
}

/// The device rules become the unit's DevicePolicy/DeviceAllow (runc's names: a device by
/// number, a group from /proc/devices for a wildcard minor); husk's own filter still applies.
#[test]
fn devices_become_device_allow() {
    need_systemd!();
    let h = Husk::new();
    let id = unique("sddev");
    let b = Bundle::new(&["sleep", "1000"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!(":husktest:{id}"));
        c["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
        ]);
    });
    let (ok, err) = sd_create(&h, &id, &b);
    assert!(ok, "create: {err}");
    let unit = format!("husktest-{id}.scope");
    assert_eq!(show(&unit, "DevicePolicy"), "strict");
    let allow = show(&unit, "DeviceAllow");
    assert!(allow.contains("/dev/char/1:3 rw"), "DeviceAllow: {allow}");
    assert!(allow.contains("char-pts rwm"), "DeviceAllow: {allow}");
    h.ok(&["start", &id]);
    h.ok(&["exec", &id, "sh", "-c", "echo x > /dev/null"]);
    sd_ok(&h, &["delete", "--force", &id]);
    assert!(!unit_loaded(&unit));
}

/// husk killed by SIGKILL after systemd made the unit, before `state.json` exists: the
/// footprint names the unit, so `delete --force` stops it.
#[test]
fn delete_force_after_killed_create_stops_the_unit() {
    need_systemd!();
    let h = Husk::new();
    let id = unique("sdkill");
    let b = Bundle::new(&["sleep", "1000"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!(":husktest:{id}"));
    });
    husk_killed_before_publish(&h, &id)
        .args(["--systemd-cgroup", "create", "--bundle"])
        .arg(&b.dir)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("strace");
    assert!(
        !h.root.join(&id).join("state.json").exists(),
        "kill missed the rename"
    );
    let unit = format!("husktest-{id}.scope");
    assert_eq!(show(&unit, "ActiveState"), "active", "no unit to clean up");
    sd_ok(&h, &["delete", "--force", &id]);
    assert!(!unit_loaded(&unit), "unit left after delete --force");
    assert!(!h.root.join(&id).exists(), "state left");
}

const SD_USER: &str = "husksd";

/// The non-root user of the rootless test (created once): uid and gid.
fn sd_user() -> (u32, u32) {
    ensure_user(SD_USER)
}

/// husk as the user, from the cgroup v2 directory `cgroup` (the user's manager may only move
/// the init out of a cgroup below the one it owns), with XDG_RUNTIME_DIR `xdg` when given.
/// Returns success and husk's stderr (through a file: a pipe would stay open in the init).
fn as_user(dir: &Path, cgroup: &Path, xdg: Option<&Path>, args: &[&str]) -> (bool, String) {
    let (uid, gid) = sd_user();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "echo $$ >{}/cgroup.procs && exec \"$@\"",
            cgroup.display()
        ))
        .args(["sh", "timeout", "60", "setpriv"])
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .args([
            "--clear-groups",
            "env",
            "-i",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        ])
        .arg(format!("HOME=/home/{SD_USER}"));
    if let Some(x) = xdg {
        c.arg(format!("XDG_RUNTIME_DIR={}", x.display()));
    }
    c.arg(dir.join("husk"))
        .arg("--root")
        .arg(dir.join("state"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("husk.err")).unwrap());
    let st = c.status().expect("setpriv (util-linux)");
    let err = std::fs::read_to_string(dir.join("husk.err")).unwrap_or_default();
    (st.success(), err)
}

/// Rootless with --systemd-cgroup: the user's own manager (systemd --user) makes the scope
/// below its cgroup (`user.slice` by default), with the limits; without a session bus, one
/// line saying so and nothing left.
#[test]
fn rootless_uses_the_users_manager() {
    need_systemd!();
    if v1() {
        eprintln!("skipped: rootless --systemd-cgroup needs cgroup v2 (refused on v1, as runc)");
        return;
    }
    let (uid, gid) = sd_user();
    // user-runtime-dir@ asks logind's settings over the system bus: the VM starts no bus.
    let st = Command::new("systemctl")
        .args(["start", "dbus.socket", "dbus.service"])
        .status()
        .expect("systemctl");
    assert!(st.success(), "systemctl start dbus failed");
    let st = Command::new("timeout")
        .args(["60", "systemctl", "start", &format!("user@{uid}.service")])
        .status()
        .expect("systemctl");
    if !st.success() {
        let log = Command::new("sh")
            .arg("-c")
            .arg(format!("systemctl status --no-pager user-runtime-dir@{uid}.service user@{uid}.service user-{uid}.slice 2>&1; journalctl -b --no-pager 2>&1 | tail -n 30"))
            .output()
            .unwrap();
        panic!(
            "systemctl start user@{uid}.service failed: {}",
            stdout(&log)
        );
    }
    let manager = PathBuf::from(format!(
        "/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service"
    ));
    let from = manager.join("init.scope");
    let dir = scratch("sdrootless");
    busybox_rootfs(&dir.join("rootfs"));
    std::fs::copy(husk_bin(), dir.join("husk")).unwrap();
    let id = unique("sdrl");
    let out = Command::new(husk_bin())
        .args(["spec", "--rootless"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "spec --rootless: {}", stderr(&out));
    let mut cfg: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(["sleep", "1000"]);
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    cfg["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 30}});
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(&dir)
        .status()
        .unwrap();
    let create = ["--systemd-cgroup", "create", "--bundle", ".", &id];
    // No session bus: one line naming it, no state.
    let (ok, err) = as_user(&dir, &from, None, &create);
    assert!(!ok, "create without a session bus succeeded");
    assert!(err.contains("session bus"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!dir.join("state").join(&id).exists(), "state left");
    // The user's manager: a scope in user.slice below it, with the limits.
    let xdg = PathBuf::from(format!("/run/user/{uid}"));
    let (ok, err) = as_user(&dir, &from, Some(&xdg), &create);
    assert!(ok, "rootless create: {err}");
    let scope = manager.join(format!("user.slice/husk-{id}.scope"));
    assert_eq!(read(&scope, "memory.max"), (64u64 << 20).to_string());
    assert_eq!(read(&scope, "pids.max"), "30");
    let procs = read(&scope, "cgroup.procs");
    assert_eq!(procs.lines().count(), 1, "the init in the scope: {procs}");
    let (ok, err) = as_user(&dir, &from, Some(&xdg), &["delete", "--force", &id]);
    assert!(ok, "rootless delete: {err}");
    assert!(!scope.exists(), "scope left after delete");
    let _ = Command::new("systemctl")
        .args(["stop", &format!("user@{uid}.service")])
        .status();
}
