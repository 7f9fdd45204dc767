//! Helpers for the cgroup integration tests. They need root and a real cgroup file system;
//! each test works below its own parent cgroup `/husk-test-<pid>-<n>`, which the guard
//! removes again (with every process the test started).
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use husk_cgroups::{detect, Layout, Manager, Mode};
use oci_spec::runtime::LinuxResources;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// One test cgroup (`/husk-test-<pid>-<n>/<leaf>`) and its clean-up.
pub struct TestCg {
    pub layout: Layout,
    pub m: Manager,
    pub parent: String,
}

impl TestCg {
    pub fn new(leaf: &str) -> TestCg {
        let layout = detect().expect("detect the cgroup layout");
        let parent = format!(
            "/husk-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let m = Manager::new(&layout, "ctr", Some(&format!("{parent}/{leaf}")), None)
            .expect("resolve test cgroup");
        TestCg { layout, m, parent }
    }

    pub fn v2(&self) -> bool {
        self.m.mode() == Mode::Unified
    }

    /// The directory holding `controller`'s files (v1) or the cgroup (v2).
    pub fn dir(&self, controller: &str) -> &Path {
        self.m
            .path_for(controller)
            .unwrap_or_else(|| panic!("no {controller} path in {:?}", self.m.paths()))
    }

    /// Contents of `file` in the directory of `controller`, trimmed.
    pub fn read(&self, controller: &str, file: &str) -> String {
        let p = self.dir(controller).join(file);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
            .trim()
            .to_string()
    }

    /// Whether any directory of this test (leaf or parent) still exists.
    pub fn anything_left(&self) -> Vec<PathBuf> {
        let mut left = Vec::new();
        for p in self.m.paths().values() {
            for d in [p.as_path(), p.parent().unwrap()] {
                if d.exists() && !left.iter().any(|x: &PathBuf| x == d) {
                    left.push(d.to_path_buf());
                }
            }
        }
        left
    }
}

impl Drop for TestCg {
    fn drop(&mut self) {
        let _ = self.m.kill_all(libc::SIGKILL);
        let _ = self.m.thaw();
        let _ = self.m.destroy();
        for p in self.m.paths().values() {
            if let Some(parent) = p.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// `linux.resources` from its OCI JSON form.
pub fn res(json: serde_json::Value) -> LinuxResources {
    serde_json::from_value(json).expect("valid linux.resources JSON")
}

/// A `sh -c SCRIPT` that waits for a line on stdin before running SCRIPT, so the test can
/// move it into a cgroup first. Killed and reaped on drop.
pub struct Proc {
    child: Option<Child>,
    stdout: Option<BufReader<ChildStdout>>,
}

impl Proc {
    pub fn gated(script: &str) -> Proc {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("read _ && {{ {script} ; }}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let stdout = child.stdout.take().map(BufReader::new);
        Proc {
            child: Some(child),
            stdout,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Lets the script run.
    pub fn go(&mut self) {
        let mut stdin = self
            .child
            .as_mut()
            .unwrap()
            .stdin
            .take()
            .expect("not released twice");
        stdin.write_all(b"go\n").unwrap();
    }

    /// Next line the script printed.
    pub fn line(&mut self) -> String {
        let mut l = String::new();
        self.stdout.as_mut().unwrap().read_line(&mut l).unwrap();
        l.trim().to_string()
    }

    /// Waits for the script to end (at most `secs`); returns its status, stdout rest, stderr.
    pub fn finish(&mut self, secs: u64) -> (ExitStatus, String, String) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("process {} did not finish within {secs}s", child.id());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        if let Some(mut s) = self.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut s, &mut out);
        }
        let mut err = String::new();
        if let Some(mut s) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut s, &mut err);
        }
        (status, out, err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// utime + stime of `pid` in clock ticks.
pub fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// The cgroup of `pid` in the hierarchy whose /proc/PID/cgroup line has `controllers`
/// ("" for the v2 line).
pub fn cgroup_of(pid: i32, controllers: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, c, path) = (p.next()?, p.next()?, p.next()?);
            (c == controllers).then(|| path.to_string())
        })
        .unwrap_or_else(|| panic!("no {controllers:?} line in {text}"))
}

/// A block device of this machine ("major:minor"). Machines without one (the v2 VM) get a
/// null_blk device when the module is available.
pub fn some_block_device() -> Option<String> {
    find_block_device().or_else(|| {
        let loaded = Command::new("modprobe")
            .args(["null_blk", "nr_devices=1"])
            .status()
            .is_ok_and(|s| s.success());
        if loaded {
            wait_until("nullb0", 5, || Path::new("/sys/block/nullb0/dev").exists());
        }
        find_block_device()
    })
}

fn find_block_device() -> Option<String> {
    let mut names: Vec<_> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    names.into_iter().find_map(|n| {
        let n = n.to_string_lossy().to_string();
        if n.starts_with("loop") || n.starts_with("ram") {
            return None;
        }
        std::fs::read_to_string(format!("/sys/block/{n}/dev"))
            .ok()
            .map(|s| s.trim().to_string())
    })
}

pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
