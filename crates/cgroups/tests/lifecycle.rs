//! Creating, joining, freezing, signalling and removing real cgroups (run as root, on
//! whatever layout the machine has: the hybrid build host or the v2 VM).

mod common;

use std::time::Duration;

use common::{cgroup_of, cpu_ticks, res, wait_until, Proc, TestCg};
use husk_cgroups::{detect, CgroupError, Layout, Manager, Mode};

#[test]
fn layout_matches_the_mounts() {
    let layout = detect().unwrap();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let has = |fs: &str, at: &str| {
        mounts
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(at) && l.split(' ').nth(2) == Some(fs))
    };
    match &layout {
        Layout::Unified { mount } => {
            assert!(has("cgroup2", "/sys/fs/cgroup"));
            assert_eq!(mount.to_str(), Some("/sys/fs/cgroup"));
        }
        Layout::Hybrid {
            hierarchies,
            unified,
        } => {
            assert!(has("cgroup2", "/sys/fs/cgroup/unified"));
            assert_eq!(unified.mount.to_str(), Some("/sys/fs/cgroup/unified"));
            for h in hierarchies {
                assert!(
                    has("cgroup", h.mount.to_str().unwrap()),
                    "{} is not a cgroup mount",
                    h.mount.display()
                );
            }
            assert!(hierarchies
                .iter()
                .any(|h| h.controllers.iter().any(|c| c == "memory")));
        }
        Layout::V1 { hierarchies } => assert!(!hierarchies.is_empty()),
    }
}

#[test]
fn paths_resolve_like_runc_without_touching_anything() {
    let layout = detect().unwrap();
    let abs = Manager::new(&layout, "c1", Some("/husk-resolve/../a/./c1"), None).unwrap();
    let rel = Manager::new(&layout, "c1", Some("../../x/c1"), None).unwrap();
    let default = Manager::new(&layout, "c1", None, None).unwrap();
    let empty = Manager::new(&layout, "c1", Some(""), None).unwrap();
    assert_eq!(default, empty, "an empty cgroupsPath is the same as none");
    match &layout {
        Layout::Unified { .. } => {
            assert_eq!(abs.paths().len(), 1);
            assert_eq!(
                abs.path_for("memory").unwrap().to_str(),
                Some("/sys/fs/cgroup/a/c1")
            );
            // Relative paths go below the parent of our own cgroup ("/" in the VM).
            let own = cgroup_of(std::process::id() as i32, "");
            let parent = std::path::Path::new(&own)
                .parent()
                .map(|p| p.to_str().unwrap().to_string())
                .unwrap_or_default();
            let want = format!("/sys/fs/cgroup{}/x/c1", parent.trim_end_matches('/'));
            assert_eq!(rel.path_for("").unwrap().to_str(), Some(want.as_str()));
        }
        _ => {
            for (ctrl, dir) in abs.paths() {
                assert!(dir.ends_with("a/c1"), "{ctrl}: {}", dir.display());
            }
            assert!(abs.paths().contains_key("devices") && abs.paths().contains_key("memory"));
            // Relative: below our own cgroup in each hierarchy.
            let own = cgroup_of(std::process::id() as i32, "memory");
            let want = format!("/sys/fs/cgroup/memory{}/x/c1", own.trim_end_matches('/'));
            assert_eq!(
                rel.path_for("memory").unwrap().to_str(),
                Some(want.as_str())
            );
            assert!(default.path_for("memory").unwrap().ends_with("c1"));
        }
    }
    for m in [&abs, &rel, &default] {
        for dir in m.paths().values() {
            assert!(!dir.exists(), "new() must not create {}", dir.display());
        }
    }
    let err = Manager::new(
        &layout,
        "c1",
        Some("system.slice:husk:c1"),
        Some(husk_cgroups::SystemdInstance::System),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("systemd cgroup driver: systemd is not running on this host"),
        "{err}"
    );
    let err = Manager::new(&layout, "c1", Some("/"), None).unwrap_err();
    assert!(matches!(err, CgroupError::Config(_)), "{err}");
}

#[test]
fn manager_survives_a_state_file_round_trip() {
    let t = TestCg::new("serde");
    let json = serde_json::to_string(&t.m).unwrap();
    let back: Manager = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t.m);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["paths"].is_object(), "{json}");
}

#[test]
fn create_join_and_destroy() {
    let t = TestCg::new("life");
    t.m.create(None).unwrap();
    for dir in t.m.paths().values() {
        assert!(dir.is_dir(), "{} missing", dir.display());
    }
    let mut p = Proc::gated("sleep 100");
    t.m.add_process(p.pid()).unwrap();
    let leaf = format!("{}/life", t.parent);
    if t.v2() {
        assert_eq!(cgroup_of(p.pid(), ""), leaf);
    } else {
        for ctrl in ["memory", "devices", "pids", "freezer"] {
            assert_eq!(cgroup_of(p.pid(), ctrl), leaf, "{ctrl}");
        }
        if t.m.mode() == Mode::Hybrid {
            assert_eq!(
                cgroup_of(p.pid(), ""),
                leaf,
                "hybrid hosts join the v2 hierarchy too, like runc"
            );
        }
    }
    p.go();
    wait_until("sleep to start", 5, || t.m.pids().unwrap().len() == 2);
    assert!(t.m.pids().unwrap().contains(&p.pid()));
    // Busy while the processes live; destroy retries briefly, then reports it.
    assert!(
        t.m.destroy().is_err(),
        "a populated cgroup cannot be removed"
    );
    t.m.kill_all(libc::SIGKILL).unwrap();
    let (status, _, _) = p.finish(10);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    t.m.destroy().unwrap();
    for dir in t.m.paths().values() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    t.m.destroy().expect("destroying twice is fine");
}

#[test]
fn failed_create_leaves_nothing() {
    let t = TestCg::new("fail");
    let err =
        t.m.create(Some(&res(serde_json::json!({"cpu": {"cpus": "4000"}}))))
            .unwrap_err();
    assert!(err.to_string().contains("cpuset.cpus"), "{err}");
    assert_eq!(
        t.anything_left(),
        Vec::<std::path::PathBuf>::new(),
        "create must remove what it made"
    );
    // Also when the failure comes after other controllers were already set.
    let (bad, want) = if t.v2() {
        (
            serde_json::json!({"memory": {"limit": 67108864}, "pids": {"limit": 10}, "cpu": {"quota": 1000, "period": 100}}),
            "cpu.max",
        )
    } else {
        (
            serde_json::json!({"memory": {"limit": 67108864}, "pids": {"limit": 10}, "cpu": {"shares": 1}}),
            "the minimum allowed cpu-shares is 2",
        )
    };
    let err = t.m.create(Some(&res(bad))).unwrap_err();
    assert!(err.to_string().contains(want), "{err}");
    assert!(
        t.anything_left().is_empty(),
        "left: {:?}",
        t.anything_left()
    );
}

/// How husk places a new process: born in the cgroup2 directory (CLONE_INTO_CGROUP, on v2 and
/// on the cgroup2 part of hybrid hosts), and joining the v1 hierarchies itself through their
/// `tasks` files as its first act.
#[test]
fn clone_into_cgroup_and_self_join() {
    let t = TestCg::new("clone");
    t.m.create(None).unwrap();
    let into = t.m.clone_into_fd().map(|fd| fd.unwrap());
    assert_eq!(
        into.is_some(),
        t.m.mode() != husk_cgroups::Mode::V1,
        "cgroup2 directories offer CLONE_INTO_CGROUP"
    );
    let tasks: Vec<std::ffi::CString> =
        t.m.self_join_files()
            .iter()
            .map(|p| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap())
            .collect();
    assert_eq!(
        tasks.is_empty(),
        t.v2(),
        "v1 hierarchies are joined through tasks files"
    );
    let path = std::ffi::CString::new("/bin/sleep").unwrap();
    let arg0 = std::ffi::CString::new("sleep").unwrap();
    let arg1 = std::ffi::CString::new("100").unwrap();
    let argv = [arg0.as_ptr(), arg1.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: the child only writes to files, calls execve and _exit: async-signal-safe.
    let forked =
        unsafe { husk_sys::clone::clone3(0, into.as_ref().map(std::os::fd::AsFd::as_fd)) }.unwrap();
    let pid = match forked {
        husk_sys::clone::Forked::Child => {
            for f in &tasks {
                if husk_sys::write_file_at(husk_sys::CWD, f, b"0").is_err() {
                    husk_sys::exit_now(126);
                }
            }
            husk_sys::execve(&path, &argv, &envp);
            husk_sys::exit_now(127)
        }
        husk_sys::clone::Forked::Parent { pid } => pid,
    };
    // Wait until the child has exec'd (and so joined everything).
    for _ in 0..200 {
        if std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            == "sleep"
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if into.is_some() {
        assert_eq!(
            cgroup_of(pid, ""),
            format!("{}/clone", t.parent),
            "born inside the cgroup2 directory"
        );
    }
    assert_eq!(t.m.pids().unwrap(), [pid], "in every hierarchy");
    t.m.kill_all(libc::SIGKILL).unwrap();
    let mut status = 0;
    // SAFETY: plain waitpid on our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
}

#[test]
fn freeze_stops_the_processes_and_thaw_resumes_them() {
    let t = TestCg::new("freeze");
    t.m.create(None).unwrap();
    let mut p = Proc::gated("while :; do :; done");
    t.m.add_process(p.pid()).unwrap();
    p.go();
    assert!(!t.m.is_frozen().unwrap());
    std::thread::sleep(Duration::from_millis(100));
    t.m.freeze().unwrap();
    assert!(t.m.is_frozen().unwrap());
    if t.v2() {
        assert!(t.read("", "cgroup.events").contains("frozen 1"));
    } else {
        assert_eq!(t.read("freezer", "freezer.state"), "FROZEN");
    }
    let before = cpu_ticks(p.pid());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(p.pid()), before, "a frozen process must not run");
    t.m.freeze().expect("freezing twice is fine");
    t.m.thaw().unwrap();
    assert!(!t.m.is_frozen().unwrap());
    wait_until("the thawed loop to use CPU again", 10, || {
        cpu_ticks(p.pid()) > before
    });
}

#[test]
fn pids_are_listed_recursively_and_kill_all_reaches_them() {
    let t = TestCg::new("kill");
    t.m.create(None).unwrap();
    let mut p = Proc::gated("sleep 100 & sleep 100 & echo started; wait");
    t.m.add_process(p.pid()).unwrap();
    p.go();
    assert_eq!(p.line(), "started");
    wait_until("three processes", 5, || t.m.pids().unwrap().len() == 3);
    // Move one sleep into a sub-cgroup of the container (as a nested runtime would).
    let victim = *t.m.pids().unwrap().iter().find(|&&x| x != p.pid()).unwrap();
    let sub_dir = |ctrl: &str| t.dir(ctrl).join("sub");
    let ctrls: Vec<&str> = if t.v2() {
        vec![""]
    } else {
        vec!["devices", "memory", "pids", "freezer"]
    };
    for c in &ctrls {
        std::fs::create_dir(sub_dir(c)).unwrap();
        std::fs::write(sub_dir(c).join("cgroup.procs"), victim.to_string()).unwrap();
    }
    let mut pids = t.m.pids().unwrap();
    pids.sort();
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(pids.contains(&victim) && pids.contains(&p.pid()));
    // SIGTERM goes through freeze/signal/thaw on every layout.
    t.m.kill_all(libc::SIGTERM).unwrap();
    let (status, _, _) = p.finish(10);
    assert!(!status.success());
    wait_until("every process to exit", 10, || {
        t.m.pids().unwrap().is_empty()
    });
    assert!(!t.m.is_frozen().unwrap(), "kill_all must thaw again");
    t.m.destroy().unwrap();
    for c in &ctrls {
        assert!(!sub_dir(c).exists(), "destroy removes sub-cgroups too");
    }
}

#[test]
fn sigkill_kills_everything() {
    let t = TestCg::new("sigkill");
    t.m.create(None).unwrap();
    let mut p = Proc::gated("for i in 1 2 3 4; do sleep 100 & done; echo started; wait");
    t.m.add_process(p.pid()).unwrap();
    p.go();
    assert_eq!(p.line(), "started");
    wait_until("five processes", 5, || t.m.pids().unwrap().len() == 5);
    t.m.kill_all(libc::SIGKILL).unwrap();
    let (status, _, _) = p.finish(10);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    wait_until("every process to exit", 10, || {
        t.m.pids().unwrap().is_empty()
    });
}

#[test]
fn stats_report_real_usage() {
    let t = TestCg::new("stats");
    t.m.create(Some(&res(
        serde_json::json!({"memory": {"limit": 268435456}, "pids": {"limit": 50}}),
    )))
    .unwrap();
    let mut p =
        Proc::gated("x=$(head -c 4000000 /dev/zero | tr '\\0' a); echo ready; while :; do :; done");
    t.m.add_process(p.pid()).unwrap();
    p.go();
    assert_eq!(p.line(), "ready");
    std::thread::sleep(Duration::from_millis(400));
    // Frozen, the spinning shell stops charging CPU time, so the per-CPU counters (read from
    // another file than the total) add up to the total exactly.
    t.m.freeze().unwrap();
    let s = t.m.stats().unwrap();
    t.m.thaw().unwrap();
    assert!(
        s.cpu.usage.total > 50_000_000,
        "burned at least 50ms: {:?}",
        s.cpu.usage
    );
    assert!(
        s.cpu.usage.user + s.cpu.usage.kernel > 0,
        "{:?}",
        s.cpu.usage
    );
    assert_eq!(s.memory.usage.limit, 268_435_456);
    assert!(
        s.memory.usage.usage > 4_000_000,
        "the shell holds a 4 MB string: {:?}",
        s.memory.usage
    );
    assert!(!s.memory.raw.is_empty());
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 50);
    if !t.v2() {
        assert!(!s.cpu.usage.percpu.is_empty());
        assert_eq!(
            s.cpu.usage.percpu.iter().sum::<u64>(),
            s.cpu.usage.total,
            "{:?}",
            s.cpu.usage
        );
        assert!(!s.cpuset.cpus.is_empty());
    }
    let json = serde_json::to_value(&s).unwrap();
    for key in [
        "cpu",
        "cpuset",
        "memory",
        "pids",
        "blkio",
        "hugetlb",
        "intel_rdt",
        "network_interfaces",
    ] {
        assert!(json.get(key).is_some(), "{key} missing in {json}");
    }
    assert_eq!(json["memory"]["usage"]["limit"], 268_435_456);
}
