//! Rootless husk (issue 12): husk run by a non-root user the test creates (`huskrl`, with
//! subordinate ids 1200000-1265535), with `husk spec --rootless`, state under
//! $XDG_RUNTIME_DIR/husk, no cgroup (none is delegated on this host), multi-range id maps
//! through newuidmap/newgidmap, joining another container's namespaces by path, errors that
//! say what the user lacks, a create that fails or is killed part-way leaving nothing (its
//! footprint records no cgroup); and rootless Podman with husk (and with runc, for the suite).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use husk_tests::*;

const USER: &str = "huskrl";
const SUB: u32 = 1_200_000;

struct TestUser {
    uid: u32,
    gid: u32,
}

/// Creates the test user and its subordinate ranges once (idempotent across runs).
fn user() -> &'static TestUser {
    static U: OnceLock<TestUser> = OnceLock::new();
    U.get_or_init(|| {
        let (uid, gid) = ensure_user(USER);
        let range = format!("{SUB}-{}", SUB + 65535);
        for (file, flag) in [
            ("/etc/subuid", "--add-subuids"),
            ("/etc/subgid", "--add-subgids"),
        ] {
            let has = std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .any(|l| l == format!("{USER}:{SUB}:65536"));
            if !has {
                let st = Command::new("usermod")
                    .args([flag, &range, USER])
                    .status()
                    .unwrap();
                assert!(st.success(), "usermod {flag} {range} {USER}");
            }
        }
        assert!(
            Path::new("/usr/bin/newuidmap").exists(),
            "newuidmap missing: install Debian's uidmap (scripts/deps.sh does)"
        );
        TestUser { uid, gid }
    })
}

/// Copies an executable with cp(1): the copy's write descriptor then lives only in cp. Were
/// it opened here, a child another test thread forks meanwhile would inherit it until its
/// exec, and running the copy in that window fails with ETXTBSY ("Text file busy").
fn copy_executable(from: &Path, to: &Path) {
    let st = Command::new("cp").arg(from).arg(to).status().expect("cp");
    assert!(st.success(), "cp {} {}", from.display(), to.display());
}

/// A bundle (from `husk spec --rootless`, written as the user) and the user's runtime dir.
struct Rootless {
    dir: PathBuf,
    husk: PathBuf,
    xdg: PathBuf,
}

impl Rootless {
    fn new(args: &[&str], edit: impl FnOnce(&mut Value, &TestUser)) -> Rootless {
        let u = user();
        let dir = scratch("rootless");
        busybox_rootfs(&dir.join("rootfs"));
        // The husk under test, where the user can surely run it.
        let husk = dir.join("husk");
        copy_executable(&husk_bin(), &husk);
        let xdg = dir.join("xdg");
        std::fs::create_dir_all(&xdg).unwrap();
        std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
        Command::new("chown")
            .args(["-R", &format!("{}:{}", u.uid, u.gid)])
            .arg(&dir)
            .status()
            .unwrap();
        let r = Rootless { dir, husk, xdg };
        let out = r.husk(&["spec", "--rootless"]);
        assert!(out.status.success(), "spec --rootless: {}", stderr(&out));
        let path = r.dir.join("config.json");
        let mut cfg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        cfg["process"]["terminal"] = json!(false);
        cfg["process"]["args"] = json!(args);
        edit(&mut cfg, u);
        std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
        r
    }

    fn command(&self, args: &[&str]) -> Command {
        self.command_in(None, args)
    }

    /// As the user, started from the cgroup v2 directory `cgroup` when given (a process may
    /// only move a child into a cgroup whose common ancestor with its own it may write to).
    fn command_in(&self, cgroup: Option<&Path>, args: &[&str]) -> Command {
        let u = user();
        let mut c = Command::new("sh");
        let join = match cgroup {
            Some(cg) => format!("echo $$ >{}/cgroup.procs && ", cg.display()),
            None => String::new(),
        };
        c.args(["-c", &format!("{join}exec \"$@\""), "sh", "setpriv"]);
        c.args([
            &format!("--reuid={}", u.uid),
            &format!("--regid={}", u.gid),
            "--clear-groups",
            "env",
            "-i",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            &format!("USER={USER}"),
            &format!("HOME=/home/{USER}"),
        ])
        .arg(format!("XDG_RUNTIME_DIR={}", self.xdg.display()))
        .arg(&self.husk)
        .args(args)
        .current_dir(&self.dir)
        .stdin(Stdio::null());
        c
    }

    fn husk(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("setpriv (util-linux)")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.husk(args);
        assert!(
            out.status.success(),
            "husk {args:?} as {USER}: {}",
            stderr(&out)
        );
        stdout(&out)
    }

    /// `create` with the container's stdio sent to files (nothing for a test to wait on).
    fn create(&self, id: &str) {
        let out = std::fs::File::create(self.dir.join("out")).unwrap();
        let st = self
            .command(&["create", id])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap();
        let msg = std::fs::read_to_string(self.dir.join("out")).unwrap_or_default();
        assert!(st.success(), "create {id} as {USER}: {msg}");
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        let list = self.husk(&["list", "-q"]);
        for id in stdout(&list).lines() {
            let _ = self.husk(&["delete", "--force", id]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn spec_rootless_and_run_as_a_user_without_a_cgroup() {
    let script =
        "id -u; cat /proc/self/uid_map; awk '$5 == \"/sys\" {print $6}' /proc/self/mountinfo";
    let r = Rootless::new(&["sh", "-c", script], |_, _| {});
    let id = unique("rl-run");
    let out = r.husk(&["run", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "{text}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", &user().uid.to_string(), "1"], "{text}");
    assert!(lines[2].starts_with("ro"), "/sys not read-only: {text}");
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "a cgroup was made for {id}"
    );
}

#[test]
fn lifecycle_with_several_ranges_through_newuidmap() {
    let r = Rootless::new(&["sleep", "60"], |c, u| {
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": u.uid, "size": 1},
            {"containerID": 1, "hostID": SUB, "size": 65536},
        ]);
        c["linux"]["gidMappings"] = json!([
            {"containerID": 0, "hostID": u.gid, "size": 1},
            {"containerID": 1, "hostID": SUB, "size": 65536},
        ]);
    });
    let id = unique("rl-life");
    r.create(&id);
    assert!(
        r.xdg.join("husk").join(&id).is_dir(),
        "state not under $XDG_RUNTIME_DIR/husk"
    );
    r.ok(&["start", &id]);
    let out = r.ok(&["exec", &id, "sh", "-c", "cat /proc/self/uid_map; echo $$"]);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["0", &user().uid.to_string(), "1"], "{out}");
    assert_eq!(rows[1], ["1", &SUB.to_string(), "65536"], "{out}");
    assert_ne!(rows[2], ["1"], "exec'd process is the init? {out}");
    let out = r.ok(&["exec", "--user", "1000:1000", &id, "id", "-u"]);
    assert_eq!(out, "1000\n");
    let code = r.husk(&["exec", &id, "sh", "-c", "exit 3"]).status.code();
    assert_eq!(code, Some(3));
    r.ok(&["kill", &id, "KILL"]);
    for _ in 0..200 {
        let st: Value = serde_json::from_str(&r.ok(&["state", &id])).unwrap();
        if st["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    r.ok(&["delete", &id]);
    assert!(!r.xdg.join("husk").join(&id).exists());
}

fn refused(r: &Rootless, want: &str) {
    let id = unique("rl-bad");
    let out = r.husk(&["run", &id]);
    assert!(!out.status.success(), "accepted: {}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains(want), "wanted {want:?} in: {err}");
    assert!(
        !r.husk(&["state", &id]).status.success(),
        "{id} left behind"
    );
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "cgroup of {id} left behind"
    );
}

#[test]
fn limits_without_a_delegated_cgroup_are_refused_saying_so() {
    let r = Rootless::new(&["true"], |c, _| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    });
    refused(
        &r,
        "linux.resources.memory: a rootless container needs a cgroup",
    );
}

#[test]
fn ids_outside_the_users_subordinate_ranges_are_refused_saying_so() {
    let r = Rootless::new(&["true"], |c, u| {
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": u.uid, "size": 1},
            {"containerID": 1, "hostID": 3_000_000, "size": 10},
        ]);
    });
    refused(&r, "must lie in a range that /etc/subuid gives user huskrl");
}

#[test]
fn idmapped_mounts_are_refused_when_rootless() {
    let r = Rootless::new(&["true"], |c, _| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/mnt", "type": "bind", "source": "/etc", "options": ["bind", "idmap"],
        }));
    });
    refused(
        &r,
        "id-mapped mounts are not supported for rootless containers",
    );
}

#[test]
fn rootless_flag_is_honoured() {
    let r = Rootless::new(&["true"], |_, _| {});
    // false: the cgroup is required, and the user may not make one.
    let out = r.husk(&["--rootless", "false", "run", &unique("rl-false")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cgroup"), "{}", stderr(&out));
    let out = r.husk(&["--rootless", "true", "run", &unique("rl-true")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = r.husk(&["--rootless", "maybe", "list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("maybe"), "{}", stderr(&out));
}

/// Rootless Podman (as the test user, vfs storage, no network) with `runtime` (a copy the
/// user can run). Returns the failures, one line each.
fn podman_suite(runtime: &Path) -> Vec<String> {
    let u = user();
    let d = scratch("rl-podman");
    for sub in ["xdg", "home", "vol", "img"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::set_permissions(d.join("xdg"), std::fs::Permissions::from_mode(0o700)).unwrap();
    busybox_rootfs(&d.join("img/rootfs"));
    let tar = d.join("img/rootfs.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(d.join("img/rootfs"))
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap()
        .success());
    let rt = d.join("runtime");
    copy_executable(runtime, &rt);
    std::fs::write(
        d.join("containers.conf"),
        "[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .unwrap();
    Command::new("chown")
        .args(["-R", &format!("{}:{}", u.uid, u.gid)])
        .arg(&d)
        .status()
        .unwrap();
    let podman = |args: &[&str]| -> Output {
        let mut c = Command::new("timeout");
        c.args(["60", "setpriv"])
            .args([
                &format!("--reuid={}", u.uid),
                &format!("--regid={}", u.gid),
                "--init-groups",
                "env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                &format!("USER={USER}"),
                &format!("LOGNAME={USER}"),
            ])
            .arg(format!("HOME={}", d.join("home").display()))
            .arg(format!("XDG_RUNTIME_DIR={}", d.join("xdg").display()))
            .arg(format!(
                "XDG_CONFIG_HOME={}",
                d.join("home/.config").display()
            ))
            .arg(format!(
                "CONTAINERS_CONF={}",
                d.join("containers.conf").display()
            ))
            .args(["podman", "--storage-driver", "vfs", "--root"])
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .args([
                "--cgroup-manager=cgroupfs",
                "--events-backend=file",
                "--runtime",
            ])
            .arg(&rt)
            .args(args)
            .current_dir(&d)
            .stdin(Stdio::null());
        c.output().expect("podman")
    };
    let mut failures = Vec::new();
    let mut check = |what: &str, out: Output, want: &dyn Fn(&str) -> bool| {
        let text = stdout(&out);
        if !out.status.success() || !want(&text) {
            failures.push(format!(
                "{what}: {} {text:?} {}",
                out.status,
                stderr(&out).trim()
            ));
        }
    };
    let img = "localhost/husk-rl-busybox:latest";
    let tar_s = tar.to_str().unwrap();
    check(
        "import",
        podman(&["import", "--change", "CMD [\"sh\"]", tar_s, img]),
        &|_| true,
    );
    check(
        "run",
        podman(&["run", "--rm", "--network", "none", img, "echo", "hi"]),
        &|t| t == "hi\n",
    );
    check(
        "run -d",
        podman(&[
            "run",
            "-d",
            "--name",
            "c1",
            "--network",
            "none",
            img,
            "sleep",
            "100",
        ]),
        &|_| true,
    );
    check(
        "exec",
        podman(&["exec", "c1", "sh", "-c", "echo exec-ok; id -u"]),
        &|t| t == "exec-ok\n0\n",
    );
    check("stop", podman(&["stop", "-t", "1", "c1"]), &|_| true);
    check("rm", podman(&["rm", "c1"]), &|_| true);
    let uid = u.uid.to_string();
    check(
        "--userns=keep-id",
        podman(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--userns=keep-id",
            img,
            "id",
            "-u",
        ]),
        &|t| t.trim() == uid,
    );
    let vol = format!("{}:/data", d.join("vol").display());
    check(
        "volume",
        podman(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &vol,
            img,
            "sh",
            "-c",
            "echo w >/data/f && cat /data/f",
        ]),
        &|t| t == "w\n",
    );
    let owner = std::fs::metadata(d.join("vol/f")).map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    // A pod: its containers join the infra container's namespaces by path (net, ipc, uts,
    // and pid with --pid), which a rootless runtime must do from inside the user namespace.
    let infra = "localhost/husk-rl-infra:latest";
    check(
        "import infra",
        podman(&[
            "import",
            "--change",
            "CMD [\"sleep\", \"1000\"]",
            tar_s,
            infra,
        ]),
        &|_| true,
    );
    check(
        "pod create",
        podman(&[
            "pod",
            "create",
            "--name",
            "p1",
            "--network",
            "none",
            "--hostname",
            "pod1",
            "--infra-image",
            infra,
        ]),
        &|_| true,
    );
    let infra_id = stdout(&podman(&[
        "pod",
        "inspect",
        "-f",
        "{{.InfraContainerID}}",
        "p1",
    ]));
    let pid_of = format!("container:{}", infra_id.trim());
    check(
        "run --pod --pid container:infra",
        podman(&[
            "run",
            "--rm",
            "--pod",
            "p1",
            "--pid",
            &pid_of,
            img,
            "sh",
            "-c",
            "hostname; ps -o comm | grep -c sleep",
        ]),
        &|t| t == "pod1\n1\n",
    );
    if owner.as_ref().ok() != Some(&u.uid) {
        failures.push(format!("volume file owner {owner:?}, want {}", u.uid));
    }
    // Leave nothing running: the pod, the containers, then rootless Podman's pause process.
    let _ = podman(&["pod", "rm", "-af", "-t", "0"]);
    let _ = podman(&["rm", "-af", "-t", "0"]);
    if let Ok(pid) = std::fs::read_to_string(d.join("xdg/libpod/tmp/pause.pid")) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = husk_sys::proc::kill(pid, libc::SIGKILL);
        }
    }
    let _ = Command::new("umount").arg("-R").arg("-l").arg(&d).output();
    let _ = std::fs::remove_dir_all(&d);
    failures
}

#[test]
fn rootless_podman_with_husk_and_with_runc() {
    if Command::new("podman").arg("--version").output().is_err() {
        eprintln!("SKIP rootless Podman: podman is not installed (Debian package podman)");
        return;
    }
    let husk = podman_suite(&husk_bin());
    assert!(
        husk.is_empty(),
        "rootless Podman with husk:\n{}",
        husk.join("\n")
    );
    // The same suite against runc shows the suite itself is right.
    match ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    {
        Some(runc) => {
            let runc = podman_suite(Path::new(runc));
            assert!(
                runc.is_empty(),
                "rootless Podman with runc:\n{}",
                runc.join("\n")
            );
        }
        None => eprintln!("SKIP rootless Podman with runc: runc is not installed"),
    }
}

#[test]
fn joining_another_rootless_containers_namespaces_by_path() {
    let sb = Rootless::new(&["sleep", "60"], |c, _| {
        c["hostname"] = json!("sandbox");
        // `spec --rootless` has no network namespace: give the sandbox one, as Podman does.
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "network"}));
    });
    let sb_id = unique("rl-sb");
    sb.create(&sb_id);
    sb.ok(&["start", &sb_id]);
    let st: Value = serde_json::from_str(&sb.ok(&["state", &sb_id])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let script = "hostname; readlink /proc/self/ns/net; echo $$; ps -o comm | grep -c sleep";
    let r = Rootless::new(&["sh", "-c", script], |c, _| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] == "mount");
        for (t, f) in [
            ("pid", "pid"),
            ("network", "net"),
            ("ipc", "ipc"),
            ("uts", "uts"),
            ("user", "user"),
        ] {
            ns.push(json!({"type": t, "path": format!("/proc/{pid}/ns/{f}")}));
        }
        let linux = c["linux"].as_object_mut().unwrap();
        linux.remove("uidMappings");
        linux.remove("gidMappings");
        c.as_object_mut().unwrap().remove("hostname");
    });
    let out = r.husk(&["run", &unique("rl-join")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("cannot return"), "{}", stderr(&out));
    let net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "sandbox", "{text}");
    assert_eq!(lines[1], net.to_str().unwrap(), "{text}");
    assert_ne!(lines[2], "1", "not in the sandbox's pid namespace: {text}");
    assert_eq!(lines[3], "1", "the sandbox's sleep is not visible: {text}");
}

#[test]
fn joining_the_hosts_network_namespace_when_rootless_is_refused_saying_why() {
    let r = Rootless::new(&["true"], |c, _| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "network", "path": "/proc/self/ns/net"}));
    });
    refused(
        &r,
        "join net namespace given by path in linux.namespaces: operation not permitted",
    );
}

/// A cgroup v2 subtree delegated to the test user (as systemd's Delegate=yes does): the
/// directory and its cgroup.procs, cgroup.threads and cgroup.subtree_control owned by the
/// user, memory and pids enabled for its children. Removed when dropped.
struct Delegated(PathBuf);

impl Delegated {
    fn new() -> Delegated {
        let u = user();
        let dir = Path::new("/sys/fs/cgroup").join(unique("husk-rl-deleg"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::create_dir(dir.join("husk")).unwrap();
        std::fs::write(dir.join("cgroup.subtree_control"), "+memory +pids").unwrap();
        for d in [dir.clone(), dir.join("husk")] {
            for f in [
                "",
                "cgroup.procs",
                "cgroup.threads",
                "cgroup.subtree_control",
            ] {
                std::os::unix::fs::chown(d.join(f), Some(u.uid), Some(u.gid)).unwrap();
            }
        }
        Delegated(dir)
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.0.join("husk"));
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn delegated_cgroup_v2_subtree_is_used_with_its_limits() {
    let v2_only = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some("/sys/fs/cgroup") && l.contains(" - cgroup2 "));
    if !v2_only {
        eprintln!("SKIP delegated cgroup v2 subtree: this host is not cgroup v2-only; the VM lane (make cgroup-v2) runs it");
        return;
    }
    let deleg = Delegated::new();
    let name = deleg.0.file_name().unwrap().to_str().unwrap().to_string();
    // The container's /sys/fs/cgroup is its own cgroup (the spec's cgroup mount).
    let script = "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max";
    let r = Rootless::new(&["sh", "-c", script], |c, _| {
        c["linux"]["cgroupsPath"] = json!(format!("/{name}/c1"));
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 64}});
    });
    let out = r
        .command_in(Some(&deleg.0.join("husk")), &["run", &unique("rl-deleg")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("0::/{name}/c1\n67108864\n64\n"));
    assert!(!deleg.0.join("c1").exists(), "cgroup left behind");
}

/// Live (non-zombie) processes running `exe`.
fn processes_running(exe: &Path) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .as_deref()
            != Some(exe)
        {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            != Some("Z")
        {
            found.push(pid);
        }
    }
    found
}

#[test]
fn rootless_create_failing_after_the_clone_leaves_nothing() {
    // The init cannot make a mount point under a file: create fails in the child, after the
    // clone, the state directory and the footprint (with no cgroup) already made.
    let r = Rootless::new(&["true"], |c, _| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/bin/busybox/sub", "type": "tmpfs", "source": "tmpfs"}));
    });
    let id = unique("rl-fail");
    let out = r.husk(&["create", &id]);
    assert!(!out.status.success(), "accepted: {}", stdout(&out));
    assert!(
        stderr(&out).contains("/bin/busybox/sub"),
        "{}",
        stderr(&out)
    );
    assert!(
        !r.xdg.join("husk").join(&id).exists(),
        "state directory left"
    );
    assert_eq!(processes_running(&r.husk), Vec::<i32>::new(), "init left");
    assert!(cgroup_dirs_named(&id).is_empty(), "cgroup left");
}

#[test]
fn rootless_create_killed_part_way_is_cleared_by_delete_force() {
    let hook_pid = |r: &Rootless| r.dir.join("hook.pid");
    let r = Rootless::new(&["sleep", "60"], |_, _| {});
    let script = format!("echo $$ >{}; exec sleep 60", hook_pid(&r).display());
    let path = r.dir.join("config.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    let id = unique("rl-kill");
    let mut create = r
        .command(&["create", &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while !hook_pid(&r).exists() {
        assert!(waited < 2000, "the createRuntime hook never ran");
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 1;
    }
    let st: Value = serde_json::from_str(&r.ok(&["state", &id])).unwrap();
    assert_eq!(st["status"], "creating", "{st}");
    let state_dir = r.xdg.join("husk").join(&id);
    let fp: Value =
        serde_json::from_slice(&std::fs::read(state_dir.join("footprint.json")).unwrap()).unwrap();
    assert!(fp["cgroup"].is_null(), "footprint records a cgroup: {fp}");
    let init = fp["pid"].as_i64().unwrap();
    assert!(init > 0, "footprint has no init: {fp}");
    assert!(
        processes_running(&r.husk).contains(&(init as i32)),
        "the waiting init {init} is not found by its executable"
    );
    // `create` is husk itself (sh, setpriv and env exec it).
    let _ = husk_sys::proc::kill(create.id() as i32, libc::SIGKILL);
    let _ = create.wait();
    let out = r.husk(&["delete", "--force", &id]);
    let hook: i32 = std::fs::read_to_string(hook_pid(&r))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = husk_sys::proc::kill(hook, libc::SIGKILL);
    assert!(out.status.success(), "delete --force: {}", stderr(&out));
    assert!(!state_dir.exists(), "state directory left");
    assert_eq!(processes_running(&r.husk), Vec::<i32>::new(), "init left");
    assert!(cgroup_dirs_named(&id).is_empty(), "cgroup left");
}
