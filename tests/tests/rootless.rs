//! Rootless husk (issue 12): husk run by a non-root user the test creates (`huskrl`, with
//! subordinate ids 1200000-1265535), with `husk spec --rootless`, state under
//! $XDG_RUNTIME_DIR/husk, no cgroup (none is delegated on this host), multi-range id maps
//! through newuidmap/newgidmap, and errors that say what the user lacks.

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
        let id = |flag: &str| {
            Command::new("id")
                .args([flag, USER])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        };
        if id("-u").is_none() {
            let st = Command::new("useradd")
                .args(["-m", "-U", "-s", "/bin/sh", USER])
                .status()
                .expect("useradd");
            assert!(st.success() || id("-u").is_some(), "useradd {USER} failed");
        }
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
        TestUser {
            uid: id("-u").unwrap(),
            gid: id("-g").unwrap(),
        }
    })
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
        std::fs::copy(husk_bin(), &husk).unwrap();
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
        let u = user();
        let mut c = Command::new("setpriv");
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
