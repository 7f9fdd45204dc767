//! Identity, capabilities, rlimits, scheduling and failure reporting in real forked children.

mod common;

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};

use common::{fork_child, linux, process, syscall, Exit};
use husk_hardening::{Failure, Plan, Step, FAILURE_BYTES};

fn pipe() -> (std::fs::File, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid two-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just returned by pipe2 and are owned by nobody else.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

/// The value of a "Name:\tvalue" line of /proc/PID/status output.
fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

#[test]
fn non_root_user_keeps_ambient_capabilities_across_exec() {
    let proc_json = r#"{"user":{"uid":1000,"gid":1000,"additionalGids":[10],"umask":23},"cwd":"/",
        "capabilities":{"bounding":["CAP_NET_BIND_SERVICE"],"effective":["CAP_NET_BIND_SERVICE"],
            "inheritable":["CAP_NET_BIND_SERVICE"],"permitted":["CAP_NET_BIND_SERVICE"],"ambient":["CAP_NET_BIND_SERVICE"]},
        "rlimits":[{"type":"RLIMIT_NOFILE","soft":123,"hard":456}]}"#;
    let plan = Plan::new(&process(proc_json), None).expect("plan");
    let sh = c"/bin/sh";
    let script = CString::new(
        "grep Cap /proc/self/status; id; echo nofile $(ulimit -n) $(ulimit -Hn); umask",
    )
    .unwrap();
    let argv = [
        sh.as_ptr(),
        c"-c".as_ptr(),
        script.as_ptr(),
        std::ptr::null(),
    ];
    let envp = [c"PATH=/usr/bin:/bin".as_ptr(), std::ptr::null()];
    let (mut out, w) = pipe();
    let exit = fork_child(|| {
        if plan.apply_rlimits().is_err() {
            return 100;
        }
        if plan.finalize_identity().is_err() {
            return 101;
        }
        if husk_sys::dup2(&w, 1).is_err() {
            return 102;
        }
        husk_sys::execve(sh, &argv, &envp);
        103
    });
    drop(w);
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    assert_eq!(exit, Exit::Code(0), "{text}");
    for set in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(field(&text, set), "0000000000000400", "{set} in\n{text}");
    }
    let id = text
        .lines()
        .find(|l| l.starts_with("uid="))
        .expect("id output");
    // "uid=1000(name) gid=1000(name) groups=1000(name),10(uucp)", names only when known.
    let ids = |key: &str| -> Vec<String> {
        let part = id
            .split_whitespace()
            .find_map(|p| p.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in {id}"));
        part.split(',')
            .map(|g| g.split('(').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("uid="), ["1000"], "{id}");
    assert_eq!(ids("gid="), ["1000"], "{id}");
    let groups = ids("groups=");
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    assert!(groups.contains(&"10"), "{id}");
    assert!(
        groups.iter().all(|g| *g == "10" || *g == "1000"),
        "no other groups: {id}"
    );
    assert_eq!(field(&text, "nofile"), "123 456");
    assert_eq!(text.lines().last(), Some("0027"));
}

#[test]
fn root_without_capabilities_section_has_none() {
    let plan = Plan::new(&process(r#"{"user":{"uid":0,"gid":0},"cwd":"/"}"#), None).unwrap();
    let exit = fork_child(|| {
        if plan.finalize_identity().is_err() {
            return 100;
        }
        // CAP_SYS_ADMIN is gone: unshare(CLONE_NEWUTS) needs it even as uid 0.
        if syscall(
            libc::SYS_unshare,
            [libc::CLONE_NEWUTS as u64, 0, 0, 0, 0, 0],
        ) != -(libc::EPERM as i64)
        {
            return 1;
        }
        // capget: the effective, permitted and inheritable sets are all empty.
        let mut header = [0x2008_0522u32, 0]; // _LINUX_CAPABILITY_VERSION_3, this thread
        let mut data = [u32::MAX; 6];
        let hp = header.as_mut_ptr() as u64;
        let dp = data.as_mut_ptr() as u64;
        if syscall(libc::SYS_capget, [hp, dp, 0, 0, 0, 0]) != 0 || data != [0; 6] {
            return 2;
        }
        // CAP_CHOWN is out of the bounding set.
        // SAFETY: PR_CAPBSET_READ with scalar arguments.
        if unsafe { libc::prctl(libc::PR_CAPBSET_READ, 0, 0, 0, 0) } != 0 {
            return 3;
        }
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

/// Runs `step` in a child that reports its failure over a pipe, like the runtime does.
fn child_failure(plan: &Plan, step: impl Fn(&Plan) -> Result<(), Failure>) -> Option<Failure> {
    let (mut r, w) = pipe();
    let exit = fork_child(|| match step(plan) {
        Ok(()) => 0,
        Err(f) => {
            let _ = husk_sys::write_all(&w, &f.to_bytes());
            1
        }
    });
    drop(w);
    let mut buf = [0u8; FAILURE_BYTES];
    match exit {
        Exit::Code(0) => None,
        Exit::Code(1) => {
            r.read_exact(&mut buf).unwrap();
            Some(Failure::from_bytes(&buf).expect("a known step"))
        }
        other => panic!("child ended with {other:?}"),
    }
}

#[test]
fn failures_name_the_step_and_item() {
    // Ambient capabilities that are not also inheritable are skipped (as runc does with its
    // own default spec), not an error.
    let plan = Plan::new(
        &process(
            r#"{"user":{"uid":1000,"gid":1000},"cwd":"/","capabilities":{
                "bounding":["CAP_NET_BIND_SERVICE"],"permitted":["CAP_NET_BIND_SERVICE"],"ambient":["CAP_NET_BIND_SERVICE"]}}"#,
        ),
        None,
    )
    .unwrap();
    assert_eq!(child_failure(&plan, Plan::finalize_identity), None);

    // soft > hard
    let plan = Plan::new(
        &process(
            r#"{"user":{"uid":0,"gid":0},"cwd":"/","rlimits":[
                {"type":"RLIMIT_CORE","soft":0,"hard":0},{"type":"RLIMIT_NOFILE","soft":2048,"hard":1024}]}"#,
        ),
        None,
    )
    .unwrap();
    let f = child_failure(&plan, Plan::apply_rlimits).expect("setrlimit fails");
    assert_eq!((f.step, f.index), (Step::Rlimit, 1));
    assert_eq!(
        f.describe(&plan),
        "setrlimit RLIMIT_NOFILE: invalid argument"
    );

    // A non-root user cannot switch to another uid once its capabilities are gone.
    let plan = Plan::new(
        &process(r#"{"user":{"uid":1000,"gid":1000},"cwd":"/"}"#),
        None,
    )
    .unwrap();
    let f = child_failure(&plan, |p| {
        p.finalize_identity()?;
        p.finalize_identity()
    })
    .expect("second switch fails");
    assert_eq!(
        f.step,
        Step::Bounding,
        "dropping the bounding set needs CAP_SETPCAP"
    );
    assert_eq!(
        f.describe(&plan),
        "drop CAP_CHOWN from the capability bounding set: operation not permitted"
    );
}

#[test]
fn scheduling_and_personality() {
    let plan = Plan::new(
        &process(
            r#"{"user":{"uid":0,"gid":0},"cwd":"/","ioPriority":{"class":"IOPRIO_CLASS_IDLE","priority":0},
                "scheduler":{"policy":"SCHED_BATCH","nice":5}}"#,
        ),
        Some(&linux(r#"{"personality":{"domain":"LINUX32"}}"#)),
    )
    .unwrap();
    let exit = fork_child(|| {
        if plan.apply_scheduling().is_err() {
            return 100;
        }
        if syscall(libc::SYS_ioprio_get, [1, 0, 0, 0, 0, 0]) != 3 << 13 {
            return 1;
        }
        if syscall(libc::SYS_sched_getscheduler, [0; 6]) != libc::SCHED_BATCH as i64 {
            return 2;
        }
        // getpriority(2) returns 20 - nice.
        if syscall(
            libc::SYS_getpriority,
            [libc::PRIO_PROCESS as u64, 0, 0, 0, 0, 0],
        ) != 15
        {
            return 3;
        }
        if syscall(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]) != 0x0008 {
            return 4;
        }
        0
    });
    assert_eq!(exit, Exit::Code(0));

    // SCHED_FIFO needs CAP_SYS_NICE or an RLIMIT_RTPRIO: as a non-root user it fails.
    let plan = Plan::new(
        &process(r#"{"user":{"uid":1000,"gid":1000},"cwd":"/","scheduler":{"policy":"SCHED_FIFO","priority":10}}"#),
        None,
    )
    .unwrap();
    let f = child_failure(&plan, |p| {
        p.finalize_identity()?;
        p.apply_scheduling()
    })
    .expect("sched_setattr fails");
    assert_eq!(
        f.describe(&plan),
        "sched_setattr SCHED_FIFO: operation not permitted"
    );
}
