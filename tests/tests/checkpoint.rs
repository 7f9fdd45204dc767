//! `checkpoint` / `restore` through CRIU with real containers.
//!
//! CRIU needs a kernel it supports: where `criu check` fails (Debian's criu 3.17 on kernel
//! 6.18) the CRIU tests say so and return, and the clear-error tests run instead; the VM lane
//! (`make criu-vm`, tests/vm/run-criu-tests.sh, Debian's 6.1 kernel) runs them all with
//! HUSK_CRIU_REQUIRED=1, where a CRIU that cannot work is a failure, not a skip.

use std::io::Read;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use husk_tests::*;

/// `Err(why)` when CRIU cannot work here.
fn criu_check() -> Result<(), String> {
    match std::process::Command::new("criu").arg("check").output() {
        Err(e) => Err(format!("criu: {e}")),
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr)
            .lines()
            .find(|l| l.starts_with("Error"))
            .unwrap_or("criu check failed")
            .to_string()),
    }
}

/// A skip reason, written straight to stderr so that libtest's capture does not hide it.
fn skip(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn criu_works(test: &str) -> bool {
    match criu_check() {
        Ok(()) => true,
        Err(why) if std::env::var_os("HUSK_CRIU_REQUIRED").is_some() => {
            panic!("{test}: CRIU cannot work here but HUSK_CRIU_REQUIRED is set: {why}")
        }
        Err(why) => {
            skip(&format!(
                "SKIP {test}: CRIU cannot work on this host ({why}); \
                 it runs in the VM lane (make criu-vm)"
            ));
            false
        }
    }
}

/// A shell counter: writes 1, 2, 3, ... to /data/count, /data being a bind mount of a host
/// scratch directory (an external mount for CRIU).
struct Counter {
    bundle: Bundle,
    data: PathBuf,
}

impl Counter {
    fn new(edit: impl FnOnce(&mut Value)) -> Counter {
        let prefix = "";
        let data = scratch("criu-data");
        let d = data.to_str().unwrap().to_string();
        let script = format!(
            "{prefix}i=0; while :; do i=$((i+1)); echo $i > /data/count.tmp; \
             mv /data/count.tmp /data/count; sleep 0.05; done"
        );
        let bundle = Bundle::new(&["sh", "-c", &script], |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/data", "type": "bind", "source": d,
                "options": ["rbind", "rw"]
            }));
            edit(c)
        });
        Counter { bundle, data }
    }

    fn count(&self) -> u64 {
        std::fs::read_to_string(self.data.join("count"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits (up to 20 s) until the count reaches `n`; returns it.
    fn wait_for(&self, n: u64) -> u64 {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let c = self.count();
            if c >= n {
                return c;
            }
            assert!(Instant::now() < end, "count stuck at {c}, wanted {n}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn bundle_arg(&self) -> &str {
        self.bundle.dir.to_str().unwrap()
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Pipes for a container's stdio, as Podman's conmon and containerd's shim give it (CRIU
/// dumps them as external pipes; `restore` hands in the caller's stdio for them). The test
/// holds the other ends for as long as the value lives.
struct Pipes {
    _ours: Vec<std::os::fd::OwnedFd>,
}

impl Pipes {
    /// Runs `cmd` with fresh stdio pipes; returns them and whether it succeeded, with husk's
    /// own errors read from its --log file.
    fn run(h: &Husk, log: &Path, args: &[&str]) -> (Pipes, bool, String) {
        let (in_r, in_w) = husk_sys::pipe().unwrap();
        let (out_r, out_w) = husk_sys::pipe().unwrap();
        let (err_r, err_w) = husk_sys::pipe().unwrap();
        let _ = std::fs::remove_file(log);
        let mut full = vec!["--log", log.to_str().unwrap()];
        full.extend_from_slice(args);
        let status = h
            .command(&full)
            .stdin(Stdio::from(in_r))
            .stdout(Stdio::from(out_w))
            .stderr(Stdio::from(err_w))
            .status()
            .unwrap();
        let msg = std::fs::read_to_string(log).unwrap_or_default();
        (
            Pipes {
                _ours: vec![in_w, out_r, err_r],
            },
            status.success(),
            msg,
        )
    }
}

/// `husk run -d` with pipes as the container's stdio.
fn run_detached(h: &Husk, id: &str, bundle: &Bundle, extra: &[&str]) -> Pipes {
    let mut args = vec!["run", "-d", "--bundle", bundle.dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(id);
    let (p, ok, msg) = Pipes::run(h, &bundle.dir.join("husk.log"), &args);
    assert!(ok, "run {id}: {msg}");
    p
}

/// `husk restore -d ... ID` with fresh pipes for the restored stdio.
fn restore_detached(h: &Husk, bundle: &Bundle, img: &Path, id: &str, extra: &[&str]) -> Pipes {
    let mut args = vec![
        "restore",
        "-d",
        "--image-path",
        img.to_str().unwrap(),
        "--bundle",
    ];
    args.push(bundle.dir.to_str().unwrap());
    args.extend_from_slice(extra);
    args.push(id);
    let (p, ok, msg) = Pipes::run(h, &bundle.dir.join("husk-restore.log"), &args);
    assert!(ok, "restore {id}: {msg}");
    p
}

fn ok_criu(h: &Husk, args: &[&str]) {
    let out = h
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "husk {args:?}: {}", stderr(&out));
}

fn gone(h: &Husk, id: &str) -> bool {
    !h.run(&["state", id]).status.success()
}

fn init_pid(h: &Husk, id: &str) -> i32 {
    h.state(id)["pid"].as_i64().unwrap() as i32
}

/// The v2 cgroup directory of `pid` (the VM lane is cgroup v2 only).
fn cgroup_dir(pid: i32) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line");
    Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'))
}

/// Nothing of `id` remains: state, cgroup, mounts (criu-root), processes.
fn assert_nothing_left(h: &Husk, id: &str, pids: &[i32]) {
    assert!(gone(h, id), "{id} still has a state");
    assert!(!h.root.join(id).exists(), "state dir of {id} left behind");
    assert_eq!(
        cgroup_dirs_named(id),
        Vec::<PathBuf>::new(),
        "cgroup of {id} left behind"
    );
    assert_eq!(
        mounts_mentioning(id),
        Vec::<String>::new(),
        "mounts of {id} left"
    );
    for p in pids {
        let alive =
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| !s.contains(") Z "));
        assert!(!alive, "process {p} of {id} still alive");
    }
}

#[test]
fn missing_criu_binary_is_one_clear_error() {
    let h = Husk::new();
    let id = unique("criu-missing");
    let bundle = Bundle::new(&["sleep", "30"], |_| {});
    let _io = run_detached(&h, &id, &bundle, &[]);
    let img = scratch("criu-img");
    let img_path = img.join("x");
    let out = h.run(&[
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        img_path.to_str().unwrap(),
        &id,
    ]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("/nonexistent/criu") && err.contains("not found"),
        "{err}"
    );
    assert_eq!(
        h.status(&id),
        "running",
        "a failed checkpoint must not touch the container"
    );
    assert!(
        !img_path.exists(),
        "image path made although CRIU is missing"
    );

    let id2 = unique("criu-missing");
    let out = h.run(&[
        "--criu",
        "/nonexistent/criu",
        "restore",
        "--image-path",
        img_path.to_str().unwrap(),
        "--bundle",
        bundle.dir.to_str().unwrap(),
        "-d",
        &id2,
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    assert!(gone(&h, &id2) && !h.root.join(&id2).exists());
    h.ok(&["delete", "--force", &id]);
    let _ = std::fs::remove_dir_all(img);
}

#[test]
fn failing_criu_check_is_one_clear_error() {
    let why = match criu_check() {
        Ok(()) => {
            skip(
                "SKIP failing_criu_check_is_one_clear_error: `criu check` passes on this \
                 host; the CRIU tests below run instead",
            );
            return;
        }
        Err(why) => why,
    };
    let h = Husk::new();
    let id = unique("criu-check");
    let bundle = Bundle::new(&["sleep", "30"], |_| {});
    let _io = run_detached(&h, &id, &bundle, &[]);
    let img = scratch("criu-img").join("x");
    let out = h.run(&["checkpoint", "--image-path", img.to_str().unwrap(), &id]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    if why.starts_with("criu: ") {
        // no criu binary at all (before `make criu-vm` installs it): that is named instead
        assert!(
            err.contains("not found") && err.contains("install CRIU"),
            "{err}"
        );
    } else {
        assert!(
            err.contains("CRIU cannot work on this host") && err.contains("check` failed"),
            "{err}"
        );
    }
    if why.contains("): ") {
        // CRIU's own reason (without its source location) is named.
        let reason = why.split_once("): ").unwrap().1;
        assert!(err.contains(reason), "{err} lacks {reason}");
    }
    assert_eq!(h.status(&id), "running");
    assert!(!img.exists());
    h.ok(&["delete", "--force", &id]);
}

#[test]
fn counter_continues_after_restore_with_its_cgroup_limits() {
    if !criu_works("counter_continues_after_restore_with_its_cgroup_limits") {
        return;
    }
    let h = Husk::new();
    let id = unique("criu-count");
    let c = Counter::new(|cfg| {
        cfg["linux"]["resources"] = json!({
            "memory": {"limit": 67108864}, "pids": {"limit": 50}
        });
    });
    let _io = run_detached(&h, &id, &c.bundle, &[]);
    let old_pid = init_pid(&h, &id);
    c.wait_for(10);
    let img = scratch("criu-img");
    let img_s = img.join("one");
    let t = Instant::now();
    ok_criu(
        &h,
        &["checkpoint", "--image-path", img_s.to_str().unwrap(), &id],
    );
    eprintln!("checkpoint took {:?}", t.elapsed());
    assert!(
        gone(&h, &id),
        "checkpoint without --leave-running removes the container"
    );
    assert!(img_s.join("descriptors.json").exists());
    let at_dump = c.count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        c.count(),
        at_dump,
        "the counter still runs after the checkpoint"
    );
    assert_nothing_left(&h, &id, &[old_pid]);

    let t = Instant::now();
    let _io2 = restore_detached(&h, &c.bundle, &img_s, &id, &[]);
    eprintln!("restore took {:?}", t.elapsed());
    assert_eq!(h.status(&id), "running");
    let first = c.count();
    assert!(
        first >= at_dump,
        "restarted from scratch: {first} < {at_dump}"
    );
    c.wait_for(at_dump + 5);
    let state = h.state(&id);
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["bundle"], c.bundle_arg());
    let pid = init_pid(&h, &id);
    let cg = cgroup_dir(pid);
    assert!(
        cg.to_string_lossy().contains(&id),
        "restored outside its cgroup: {cg:?}"
    );
    let read = |f: &str| {
        std::fs::read_to_string(cg.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("memory.max"), "67108864");
    assert_eq!(read("pids.max"), "50");
    // every process of the container is in that cgroup
    let procs = read("cgroup.procs");
    assert!(procs.lines().any(|p| p == pid.to_string()), "{procs}");

    h.ok(&["delete", "--force", &id]);
    assert_nothing_left(&h, &id, &[pid]);
    let _ = std::fs::remove_dir_all(img);
}

#[test]
fn leave_running_then_restore_into_a_new_id() {
    if !criu_works("leave_running_then_restore_into_a_new_id") {
        return;
    }
    let h = Husk::new();
    let id = unique("criu-leave");
    let c = Counter::new(|_| {});
    let _io = run_detached(&h, &id, &c.bundle, &[]);
    c.wait_for(5);
    let img = scratch("criu-img");
    ok_criu(
        &h,
        &[
            "checkpoint",
            "--leave-running",
            "--image-path",
            img.to_str().unwrap(),
            &id,
        ],
    );
    assert_eq!(h.status(&id), "running");
    let n = c.count();
    c.wait_for(n + 3);
    h.ok(&["delete", "--force", &id]);
    let stopped_at = c.count();

    let id2 = unique("criu-new");
    let pidfile = img.join("restored.pid");
    let _io2 = restore_detached(
        &h,
        &c.bundle,
        &img,
        &id2,
        &["--pid-file", pidfile.to_str().unwrap()],
    );
    assert_eq!(h.status(&id2), "running");
    let pid = init_pid(&h, &id2);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    assert!(cgroup_dir(pid).to_string_lossy().contains(&id2));
    c.wait_for(stopped_at.min(n) + 3);
    h.ok(&["delete", "--force", &id2]);
    assert_nothing_left(&h, &id2, &[pid]);
    assert_nothing_left(&h, &id, &[]);
    let _ = std::fs::remove_dir_all(img);
}

#[test]
fn pre_dump_then_final_dump() {
    if !criu_works("pre_dump_then_final_dump") {
        return;
    }
    let h = Husk::new();
    let id = unique("criu-pre");
    let c = Counter::new(|_| {});
    let _io = run_detached(&h, &id, &c.bundle, &[]);
    c.wait_for(5);
    let img = scratch("criu-img");
    let pre = img.join("pre");
    let fin = img.join("final");
    ok_criu(
        &h,
        &[
            "checkpoint",
            "--pre-dump",
            "--image-path",
            pre.to_str().unwrap(),
            &id,
        ],
    );
    assert_eq!(
        h.status(&id),
        "running",
        "a pre-dump leaves the container running"
    );
    let n = c.count();
    c.wait_for(n + 3);
    ok_criu(
        &h,
        &[
            "checkpoint",
            "--image-path",
            fin.to_str().unwrap(),
            "--parent-path",
            "../pre",
            &id,
        ],
    );
    assert!(gone(&h, &id));
    assert!(
        fin.join("parent").exists(),
        "the final dump links its parent images"
    );
    let at_dump = c.count();
    let _io2 = restore_detached(&h, &c.bundle, &fin, &id, &[]);
    assert!(c.count() >= at_dump);
    c.wait_for(at_dump + 3);
    h.ok(&["delete", "--force", &id]);
    assert_nothing_left(&h, &id, &[]);
    // a relative --parent-path that is not there is refused before CRIU runs
    let out = h.run(&[
        "checkpoint",
        "--image-path",
        fin.to_str().unwrap(),
        "--parent-path",
        "../nope",
        &id,
    ]);
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(img);
}

/// Accepts one console-socket connection and appends everything the pty master yields.
fn console_reader(sock: &Path) -> Arc<Mutex<String>> {
    let listener = UnixListener::bind(sock).unwrap();
    let text = Arc::new(Mutex::new(String::new()));
    let out = text.clone();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let fd = husk_sys::recv_fd(&conn).unwrap().expect("pty master");
        // SAFETY: the descriptor was just received and is owned here.
        let mut master = unsafe { std::fs::File::from_raw_fd(fd.into_raw_fd()) };
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

fn last_tick(text: &Mutex<String>) -> u64 {
    let t = text.lock().unwrap();
    t.split("tick")
        .filter_map(|s| {
            s.trim_end_matches(|c: char| !c.is_ascii_digit())
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

fn wait_tick(text: &Mutex<String>, n: u64) -> u64 {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let t = last_tick(text);
        if t >= n {
            return t;
        }
        assert!(
            Instant::now() < end,
            "console stuck at tick {t}, wanted {n}: {}",
            text.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tty_container_gets_its_console_back() {
    if !criu_works("tty_container_gets_its_console_back") {
        return;
    }
    let h = Husk::new();
    let id = unique("criu-tty");
    let bundle = Bundle::new(
        &[
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.05; done",
        ],
        |c| c["process"]["terminal"] = json!(true),
    );
    let dir = scratch("criu-tty");
    let sock1 = dir.join("c1.sock");
    let first = console_reader(&sock1);
    let _io = run_detached(
        &h,
        &id,
        &bundle,
        &["--console-socket", sock1.to_str().unwrap()],
    );
    wait_tick(&first, 5);
    let img = dir.join("img");
    ok_criu(
        &h,
        &["checkpoint", "--image-path", img.to_str().unwrap(), &id],
    );
    std::thread::sleep(Duration::from_millis(200));
    let before = last_tick(&first);

    let sock2 = dir.join("c2.sock");
    let second = console_reader(&sock2);
    let _io2 = restore_detached(
        &h,
        &bundle,
        &img,
        &id,
        &["--console-socket", sock2.to_str().unwrap()],
    );
    let after = wait_tick(&second, before + 3);
    assert!(
        after > before,
        "the restored shell writes to the new console"
    );
    assert_eq!(
        last_tick(&first),
        before,
        "the old console gets nothing more"
    );
    // without a console socket a detached restore of a tty container is refused
    h.ok(&["delete", "--force", &id]);
    let out = h.run(&[
        "restore",
        "-d",
        "--image-path",
        img.to_str().unwrap(),
        "--bundle",
        bundle.dir.to_str().unwrap(),
        &id,
    ]);
    assert!(stderr(&out).contains("console socket"), "{}", stderr(&out));
    assert_nothing_left(&h, &id, &[]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn tcp_listen_socket_survives() {
    if !criu_works("tcp_listen_socket_survives") {
        return;
    }
    let h = Husk::new();
    let id = unique("criu-tcp");
    let bundle = Bundle::new(&["httpd", "-f", "-p", "8080", "-h", "/www"], |c| {
        let caps = &mut c["process"]["capabilities"];
        for set in ["bounding", "effective", "permitted"] {
            caps[set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_NET_ADMIN"));
        }
    });
    std::fs::create_dir_all(bundle.dir.join("rootfs/www")).unwrap();
    std::fs::write(
        bundle.dir.join("rootfs/www/index.html"),
        "hello from criu\n",
    )
    .unwrap();
    let _io = run_detached(&h, &id, &bundle, &[]);
    let get = |h: &Husk| {
        h.ok(&["exec", &id, "ip", "link", "set", "lo", "up"]);
        h.run(&[
            "exec",
            &id,
            "wget",
            "-q",
            "-O",
            "-",
            "http://127.0.0.1:8080/",
        ])
    };
    let end = Instant::now() + Duration::from_secs(20);
    while !stdout(&get(&h)).contains("hello") {
        assert!(Instant::now() < end, "httpd never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let img = scratch("criu-img");
    ok_criu(
        &h,
        &["checkpoint", "--image-path", img.to_str().unwrap(), &id],
    );
    let _io2 = restore_detached(&h, &bundle, &img, &id, &[]);
    // The restored listening socket (same process, not a new httpd) answers.
    let tcp = h.ok(&["exec", &id, "cat", "/proc/net/tcp", "/proc/net/tcp6"]);
    assert!(
        tcp.lines()
            .any(|l| l.contains(":1F90 ") && l.contains(" 0A ")),
        "no listener on 8080 after restore: {tcp}"
    );
    let out = get(&h);
    assert!(stdout(&out).contains("hello from criu"), "{}", stderr(&out));
    h.ok(&["delete", "--force", &id]);
    assert_nothing_left(&h, &id, &[]);
    let _ = std::fs::remove_dir_all(img);
}

#[test]
fn page_server_receives_the_memory_pages() {
    if !criu_works("page_server_receives_the_memory_pages") {
        return;
    }
    let h = Husk::new();
    let id = unique("criu-ps");
    let c = Counter::new(|_| {});
    let _io = run_detached(&h, &id, &c.bundle, &[]);
    c.wait_for(5);
    let dir = scratch("criu-ps");
    let (pages, img, work) = (dir.join("pages"), dir.join("img"), dir.join("work"));
    std::fs::create_dir_all(&pages).unwrap();
    let port = 27000 + (std::process::id() % 1000) as u16;
    let mut server = std::process::Command::new("criu")
        .args([
            "page-server",
            "--images-dir",
            pages.to_str().unwrap(),
            "--port",
        ])
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    // Wait for its listening socket without connecting (it serves one connection).
    let needle = format!(":{port:04X} ");
    let end = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .chain(
            std::fs::read_to_string("/proc/net/tcp6")
                .unwrap_or_default()
                .lines(),
        )
        .any(|l| l.contains(&needle) && l.contains(" 0A "))
    {
        assert!(Instant::now() < end, "criu page-server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    ok_criu(
        &h,
        &[
            "checkpoint",
            "--page-server",
            &addr,
            "--image-path",
            img.to_str().unwrap(),
            "--work-path",
            work.to_str().unwrap(),
            &id,
        ],
    );
    let _ = server.wait();
    assert!(
        work.join("dump.log").exists(),
        "--work-path holds CRIU's log"
    );
    let names = |d: &Path| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(
        names(&pages).iter().any(|n| n.starts_with("pages-")),
        "no pages at the page server"
    );
    assert!(
        !names(&img).iter().any(|n| n.starts_with("pages-")),
        "pages written locally"
    );
    for n in names(&img) {
        std::fs::copy(img.join(&n), pages.join(&n)).unwrap();
    }
    let at_dump = c.count();
    let _io2 = restore_detached(&h, &c.bundle, &pages, &id, &[]);
    c.wait_for(at_dump + 3);
    h.ok(&["delete", "--force", &id]);
    assert_nothing_left(&h, &id, &[]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn foreground_restore_waits_for_the_process() {
    if !criu_works("foreground_restore_waits_for_the_process") {
        return;
    }
    let h = Husk::new();
    let id = unique("criu-fg");
    let c = Counter::new(|_| {});
    let _io = run_detached(&h, &id, &c.bundle, &[]);
    c.wait_for(5);
    let img = scratch("criu-img");
    ok_criu(
        &h,
        &["checkpoint", "--image-path", img.to_str().unwrap(), &id],
    );
    let at_dump = c.count();
    let fg = h
        .command(&[
            "restore",
            "--image-path",
            img.to_str().unwrap(),
            "--bundle",
            c.bundle_arg(),
            &id,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.wait_for(at_dump + 3);
    assert_eq!(h.status(&id), "running");
    let pid = init_pid(&h, &id);
    h.ok(&["kill", &id, "KILL"]);
    let out = fg.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    // like a foreground run, the container is removed once its process is gone
    assert_nothing_left(&h, &id, &[pid]);
    let _ = std::fs::remove_dir_all(img);
}

#[test]
fn dev_null_stdio_is_handed_over_as_an_external_file() {
    if !criu_works("dev_null_stdio_is_handed_over_as_an_external_file") {
        return;
    }
    let h = Husk::new();
    let id = unique("criu-null");
    let c = Counter::new(|_| {});
    // `husk run -d ID < /dev/null > /dev/null 2>&1`: the init's stdio is the host's /dev/null,
    // a file on a mount the container does not have.
    let log = c.bundle.dir.join("husk.log");
    let null = |args: &[&str]| {
        let mut full = vec!["--log", log.to_str().unwrap()];
        full.extend_from_slice(args);
        let st = h
            .command(&full)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(
            st.success(),
            "husk {args:?}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    null(&["run", "-d", "--bundle", c.bundle_arg(), &id]);
    c.wait_for(5);
    let img = scratch("criu-img");
    null(&["checkpoint", "--image-path", img.to_str().unwrap(), &id]);
    let ext = std::fs::read_to_string(img.join("stdio-external.json")).unwrap();
    assert!(ext.contains("file["), "{ext}");
    let at_dump = c.count();
    null(&[
        "restore",
        "-d",
        "--image-path",
        img.to_str().unwrap(),
        "--bundle",
        c.bundle_arg(),
        &id,
    ]);
    c.wait_for(at_dump + 3);
    let pid = init_pid(&h, &id);
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap(),
        Path::new("/dev/null")
    );
    h.ok(&["delete", "--force", &id]);
    assert_nothing_left(&h, &id, &[pid]);
    let _ = std::fs::remove_dir_all(img);
}

#[test]
fn lazy_pages_migration_with_status_fd() {
    if !criu_works("lazy_pages_migration_with_status_fd") {
        return;
    }
    let h = Husk::new();
    let id = unique("criu-lazy");
    let c = Counter::new(|_| {});
    let _io = run_detached(&h, &id, &c.bundle, &[]);
    c.wait_for(5);
    let img = scratch("criu-lazy");
    let port = (28000 + std::process::id() % 1000).to_string();
    let addr = format!("127.0.0.1:{port}");
    // husk's stdout is the status descriptor: CRIU's page server is ready when a 0 arrives.
    let mut dump = h
        .command(&[
            "checkpoint",
            "--lazy-pages",
            "--page-server",
            &addr,
            "--status-fd",
            "1",
            "--image-path",
            img.to_str().unwrap(),
            &id,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = dump.stdout.take().unwrap();
    // Whatever fails below, neither the dump (serving pages) nor the lazy-pages daemon may
    // outlive the test.
    let mut dump = KillOnDrop(Some(dump));
    let mut byte = [1u8; 1];
    let n = status.read(&mut byte).unwrap();
    if n == 0 {
        let out = dump.0.take().unwrap().wait_with_output().unwrap();
        panic!(
            "checkpoint --lazy-pages ended without status: {}",
            stderr(&out)
        );
    }
    assert_eq!(byte[0], 0, "the status descriptor gets a zero byte");
    let at_dump = c.count();
    let _lazy = KillOnDrop(Some(
        std::process::Command::new("criu")
            .args([
                "lazy-pages",
                "--page-server",
                "--address",
                "127.0.0.1",
                "--port",
                &port,
            ])
            .arg("--images-dir")
            .arg(&img)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    std::thread::sleep(Duration::from_millis(500));
    let id2 = unique("criu-lazy-new");
    let _io2 = restore_detached(&h, &c.bundle, &img, &id2, &["--lazy-pages"]);
    c.wait_for(at_dump + 3);
    let out = dump.0.take().unwrap().wait_with_output().unwrap();
    assert!(out.status.success(), "lazy checkpoint: {}", stderr(&out));
    assert_nothing_left(&h, &id, &[]);
    h.ok(&["delete", "--force", &id2]);
    assert_nothing_left(&h, &id2, &[]);
    let _ = std::fs::remove_dir_all(img);
}

/// A helper process killed (and reaped) if the test ends before it does.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn only_running_containers_are_checkpointed() {
    let h = Husk::new();
    let id = unique("criu-created");
    let bundle = Bundle::new(&["true"], |_| {});
    h.create(&id, &bundle);
    let img = scratch("criu-img").join("x");
    let out = h.run(&["checkpoint", "--image-path", img.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        "husk: Container cannot be checkpointed in created state"
    );
    assert!(!img.exists());
    h.ok(&["delete", "--force", &id]);
}

#[test]
fn failed_restore_leaves_nothing_behind() {
    if !criu_works("failed_restore_leaves_nothing_behind") {
        return;
    }
    let h = Husk::new();
    let id = unique("criu-bad");
    let bundle = Bundle::new(&["sleep", "30"], |_| {});
    // descriptors.json but no CRIU images: CRIU itself fails
    let img = scratch("criu-img");
    std::fs::write(
        img.join("descriptors.json"),
        r#"["/dev/null","/dev/null","/dev/null"]"#,
    )
    .unwrap();
    let out = h.run(&[
        "restore",
        "-d",
        "--image-path",
        img.to_str().unwrap(),
        "--bundle",
        bundle.dir.to_str().unwrap(),
        &id,
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("criu") && err.contains("restore.log"), "{err}");
    assert_nothing_left(&h, &id, &[]);
    // no checkpoint at all: named before anything is made
    let out = h.run(&[
        "restore",
        "-d",
        "--image-path",
        "/nonexistent/img",
        "--bundle",
        bundle.dir.to_str().unwrap(),
        &id,
    ]);
    assert!(
        stderr(&out).contains("descriptors.json"),
        "{}",
        stderr(&out)
    );
    assert_nothing_left(&h, &id, &[]);
    let _ = std::fs::remove_dir_all(img);
}
