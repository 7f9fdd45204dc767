//! Shared helpers for husk's integration tests: real busybox bundles, a private state root per
//! test, and checks that nothing is left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub use serde_json::{json, Value};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The husk binary under test: `$HUSK`, else the husk built beside this test executable (cargo
/// puts test executables in `<profile dir>/deps/`, binaries in `<profile dir>/`).
pub fn husk_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HUSK") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("path of the running test executable");
    let beside = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile_dir| profile_dir.join("husk"));
    match beside {
        Some(p) if p.exists() => p,
        _ => panic!(
            "husk binary not found beside {}: build it (cargo build) or set HUSK",
            exe.display()
        ),
    }
}

/// A unique name for this test run: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// A scratch directory under /var/tmp (not /tmp: the v2 VM lane hides the host's /tmp).
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new("/var/tmp/husk-tests").join(unique(name));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Writes a busybox rootfs (static busybox plus applet links, /etc/passwd, /etc/group).
pub fn busybox_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is not installed");
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
    }
    for d in ["etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    )
    .unwrap();
}

/// A bundle directory with a busybox rootfs and a config.json.
pub struct Bundle {
    pub dir: PathBuf,
}

impl Bundle {
    /// `husk spec` output with `args` and terminal off, then `edit` applied.
    pub fn new(args: &[&str], edit: impl FnOnce(&mut Value)) -> Bundle {
        let dir = scratch("bundle");
        busybox_rootfs(&dir.join("rootfs"));
        let out = Command::new(husk_bin())
            .args(["spec", "--bundle"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "husk spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cfg: Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        cfg["process"]["terminal"] = json!(false);
        cfg["process"]["args"] = json!(args);
        edit(&mut cfg);
        let b = Bundle { dir };
        b.write_config(&cfg);
        b
    }

    pub fn write_config(&self, cfg: &Value) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(cfg).unwrap(),
        )
        .unwrap();
    }

    pub fn config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("config.json")).unwrap()).unwrap()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// husk with a private `--root`; deletes its containers when dropped.
pub struct Husk {
    pub root: PathBuf,
}

impl Default for Husk {
    fn default() -> Self {
        Self::new()
    }
}

impl Husk {
    pub fn new() -> Husk {
        Husk {
            root: Path::new("/run/husk-tests").join(unique("root")),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(husk_bin());
        c.arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Runs husk and returns its output (stdout/stderr captured).
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("spawn husk")
    }

    /// Runs husk and panics with its stderr unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "husk {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `husk state ID` parsed.
    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state JSON")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Creates `id` from `bundle`, asserting success. The container inherits stdio, so it gets
    /// files in the bundle (`stdout`, `stderr`) rather than pipes a test would wait on.
    pub fn create(&self, id: &str, bundle: &Bundle) {
        self.create_with(id, bundle, &[]);
    }

    pub fn create_with(&self, id: &str, bundle: &Bundle, extra: &[&str]) {
        let out = std::fs::File::create(bundle.dir.join("stdout")).unwrap();
        let err = std::fs::File::create(bundle.dir.join("stderr")).unwrap();
        let mut args = vec!["create", "--bundle", bundle.dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(id);
        let status = self
            .command(&args)
            .stdout(out)
            .stderr(err)
            .status()
            .expect("spawn husk");
        let msg = std::fs::read_to_string(bundle.dir.join("stderr")).unwrap_or_default();
        assert!(
            status.success(),
            "husk create {id} failed ({status}): {msg}"
        );
    }

    /// What the created container wrote to its stdout so far.
    pub fn container_stdout(bundle: &Bundle) -> String {
        std::fs::read_to_string(bundle.dir.join("stdout")).unwrap_or_default()
    }

    /// `husk run` in the foreground, capturing the container's output.
    pub fn run_container(&self, id: &str, bundle: &Bundle) -> Output {
        self.run(&["run", "--bundle", bundle.dir.to_str().unwrap(), id])
    }

    /// `husk run` in the foreground started through `wrapper` (e.g. `taskset -c 0`), stdin
    /// from /dev/null; panics if the wrapper itself cannot be started.
    pub fn run_container_under(&self, wrapper: &[&str], id: &str, bundle: &Bundle) -> Output {
        Command::new(wrapper[0])
            .args(&wrapper[1..])
            .arg(husk_bin())
            .arg("--root")
            .arg(&self.root)
            .args(["run", "--bundle", bundle.dir.to_str().unwrap(), id])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", wrapper[0]))
    }

    /// Waits (up to 10 s) until `id` exists and reports `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        for _ in 0..1000 {
            let out = self.run(&["state", id]);
            let now: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if out.status.success() && now["status"] == status {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("container {id} never became {status}: {}", self.status(id));
    }
}

impl Drop for Husk {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.run(&["delete", "--force", &id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// All cgroup directories named `name` anywhere under /sys/fs/cgroup (leftover check).
pub fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if e.file_name() == name {
                    found.push(e.path());
                }
                stack.push(e.path());
            }
        }
    }
    found
}

/// Mount points whose path mentions `needle` in this mount namespace.
pub fn mounts_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A local user for tests that run husk as non-root: created (with a home and its own group)
/// when missing, idempotent across runs. Returns its uid and gid.
pub fn ensure_user(name: &str) -> (u32, u32) {
    let id = |flag: &str| -> Option<u32> {
        Command::new("id")
            .args([flag, name])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
    };
    if id("-u").is_none() {
        let st = Command::new("useradd")
            .args(["-m", "-U", "-s", "/bin/sh", name])
            .status()
            .expect("useradd");
        // Another test binary may have made it meanwhile.
        assert!(st.success() || id("-u").is_some(), "useradd {name} failed");
    }
    (
        id("-u").expect("uid of the test user"),
        id("-g").expect("gid of the test user"),
    )
}

/// `strace` running husk (`--root` of `h`) so that husk is SIGKILLed at its rename of
/// container `id`'s new state file: a create killed after all its work, just before it
/// publishes the container. The caller adds husk's arguments.
pub fn husk_killed_before_publish(h: &Husk, id: &str) -> Command {
    let tmp = h.root.join(id).join(".state.json.tmp");
    let mut cmd = Command::new("strace");
    cmd.args(["-qq", "-o", "/dev/null", "-P"])
        .arg(&tmp)
        .args(["-e", "trace=rename,renameat,renameat2"])
        .args([
            "-e",
            "inject=rename,renameat,renameat2:signal=SIGKILL:when=1",
        ])
        .arg(husk_bin())
        .arg("--root")
        .arg(&h.root);
    cmd
}
