//! Seccomp filters compiled by husk, loaded into real forked processes.

mod common;

use std::os::fd::AsRawFd;

use common::{fork_child, linux, process, syscall, Exit};
use husk_hardening::Plan;

const NNP: &str = r#"{"user":{"uid":0,"gid":0},"cwd":"/","noNewPrivileges":true}"#;

fn plan(seccomp: &str) -> Plan {
    Plan::new(
        &process(NNP),
        Some(&linux(&format!(r#"{{"seccomp":{seccomp}}}"#))),
    )
    .expect("plan")
}

/// Child prologue: no_new_privs, then the filter. Exit codes 100/101 mean the setup failed.
fn install(plan: &Plan) -> Result<(), i32> {
    plan.set_no_new_privs().map_err(|_| 100)?;
    plan.install_seccomp().map_err(|_| 101)?;
    Ok(())
}

#[test]
fn blocked_syscall_returns_the_profile_errno() {
    let p = plan(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":77},
            {"names":["getpgrp"],"action":"SCMP_ACT_ERRNO"},
            {"names":["getsid"],"action":"SCMP_ACT_TRACE"},
            {"names":["gettid"],"action":"SCMP_ACT_LOG"}]}"#,
    );
    assert!(p.has_seccomp() && p.no_new_privs() && !p.seccomp_notify());
    let exit = fork_child(|| {
        if let Err(code) = install(&p) {
            return code;
        }
        if syscall(libc::SYS_getppid, [0; 6]) != -77 {
            return 1;
        }
        if syscall(libc::SYS_getpgrp, [0; 6]) != -(libc::EPERM as i64) {
            return 2; // errnoRet defaults to EPERM
        }
        if syscall(libc::SYS_getsid, [0; 6]) != -(libc::ENOSYS as i64) {
            return 3; // SCMP_ACT_TRACE without a tracer: the kernel answers ENOSYS
        }
        if syscall(libc::SYS_gettid, [0; 6]) <= 0 || syscall(libc::SYS_getpid, [0; 6]) <= 0 {
            return 4; // LOG and the default action allow
        }
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn kill_and_trap_actions_end_the_process_with_sigsys() {
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
    ] {
        let p = plan(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getppid"],"action":"{action}"}}]}}"#
        ));
        let exit = fork_child(|| {
            if let Err(code) = install(&p) {
                return code;
            }
            syscall(libc::SYS_getppid, [0; 6]);
            7 // not killed
        });
        assert_eq!(exit, Exit::Signal(libc::SIGSYS), "{action}");
    }
}

#[test]
fn default_kill_with_allow_list() {
    let p = plan(
        r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[
            {"names":["exit_group","exit","getppid"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(
        fork_child(
            || if install(&p).is_ok() && syscall(libc::SYS_getppid, [0; 6]) > 0 {
                5
            } else {
                6
            }
        ),
        Exit::Code(5)
    );
    let p = plan(
        r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[{"names":["exit_group"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let exit = fork_child(|| {
        if install(&p).is_err() {
            return 100;
        }
        syscall(libc::SYS_getuid, [0; 6]);
        0
    });
    assert_eq!(exit, Exit::Signal(libc::SIGSYS));
}

#[test]
fn personality_is_blocked_only_for_one_argument() {
    let p = plan(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ERRNO",
            "errnoRet":33,"args":[{"index":0,"op":"SCMP_CMP_EQ","value":4294967295}]}]}"#,
    );
    let exit = fork_child(|| {
        if let Err(code) = install(&p) {
            return code;
        }
        if syscall(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]) != -33 {
            return 1;
        }
        if syscall(libc::SYS_personality, [0; 6]) < 0 {
            return 2; // PER_LINUX is allowed
        }
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

/// Reference semantics of a condition on a 64-bit argument.
fn holds(op: &str, arg: u64, value: u64, value_two: u64) -> bool {
    match op {
        "SCMP_CMP_NE" => arg != value,
        "SCMP_CMP_LT" => arg < value,
        "SCMP_CMP_LE" => arg <= value,
        "SCMP_CMP_EQ" => arg == value,
        "SCMP_CMP_GE" => arg >= value,
        "SCMP_CMP_GT" => arg > value,
        "SCMP_CMP_MASKED_EQ" => arg & value == value_two,
        _ => unreachable!(),
    }
}

#[test]
fn every_operator_compares_full_64_bit_arguments() {
    // getppid ignores its arguments, so any value can be passed and seen by the filter.
    let ops = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    let cases: [(u64, u64); 2] = [
        (0x1_0000_0005, 0),
        (0xffff_0000_0000_ff00, 0x1234_0000_0000_0f00),
    ];
    for op in ops {
        for (value, value_two) in cases {
            let value_two = value_two & value;
            let p = plan(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getppid"],"action":"SCMP_ACT_ERRNO",
                    "errnoRet":99,"args":[{{"index":2,"op":"{op}","value":{value},"valueTwo":{value_two}}}]}}]}}"#
            ));
            let probes: Vec<u64> = vec![
                0,
                5,
                0xffff_ffff,
                0x1_0000_0000,
                0x1_0000_0004,
                0x1_0000_0005,
                0x1_0000_0006,
                0x2_0000_0000,
                0x0_0000_0005,
                value,
                value_two,
                value_two | 0x1,
                value_two ^ (1 << 60),
                u64::MAX,
            ];
            let expect: Vec<bool> = probes
                .iter()
                .map(|a| holds(op, *a, value, value_two))
                .collect();
            let exit = fork_child(|| {
                if let Err(code) = install(&p) {
                    return code;
                }
                for (i, (arg, blocked)) in probes.iter().zip(&expect).enumerate() {
                    let r = syscall(libc::SYS_getppid, [0, 0, *arg, 0, 0, 0]);
                    if (r == -99) != *blocked {
                        return 1 + i as i32;
                    }
                }
                0
            });
            assert_eq!(
                exit,
                Exit::Code(0),
                "{op} value {value:#x}/{value_two:#x}: code is 1 + the failing probe"
            );
        }
    }
}

#[test]
fn several_conditions_and_rules() {
    // Conditions of a rule AND; rules for one syscall OR.
    let p = plan(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":11,
             "args":[{"index":0,"op":"SCMP_CMP_EQ","value":1},{"index":1,"op":"SCMP_CMP_MASKED_EQ","value":240,"valueTwo":32}]},
            {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":12,"args":[{"index":5,"op":"SCMP_CMP_GE","value":1000}]}]}"#,
    );
    let exit = fork_child(|| {
        if let Err(code) = install(&p) {
            return code;
        }
        let checks: [([u64; 6], i64); 5] = [
            ([1, 0x2f, 0, 0, 0, 0], -11),
            ([1, 0x4f, 0, 0, 0, 0], 1),
            ([2, 0x2f, 0, 0, 0, 0], 1),
            ([2, 0x2f, 0, 0, 0, 1000], -12),
            ([1, 0x2f, 0, 0, 0, 1000], -11),
        ];
        for (i, (args, want)) in checks.iter().enumerate() {
            let r = syscall(libc::SYS_getppid, *args);
            if (*want < 0 && r != *want) || (*want > 0 && r <= 0) {
                return 1 + i as i32;
            }
        }
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_syscalls_need_the_x32_architecture() {
    const X32_GETPID: libc::c_long = 0x4000_0000 | 39;
    let p = plan(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    let exit = fork_child(|| {
        if install(&p).is_err() {
            return 100;
        }
        syscall(X32_GETPID, [0; 6]);
        0
    });
    assert_eq!(
        exit,
        Exit::Signal(libc::SIGSYS),
        "x32 calls are a bad architecture unless listed"
    );

    let p = plan(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X32"],
            "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":55}]}"#,
    );
    let exit = fork_child(|| {
        if install(&p).is_err() {
            return 100;
        }
        if syscall(X32_GETPID, [0; 6]) != -55 {
            return 1;
        }
        if syscall(libc::SYS_getpid, [0; 6]) != -55 {
            return 2;
        }
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn docker_default_profile_runs_a_program() {
    let profile = include_str!("fixtures/docker-default.json");
    let p = plan(profile);
    let path = c"/bin/true";
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    let exit = fork_child(|| {
        if let Err(code) = install(&p) {
            return code;
        }
        if syscall(libc::SYS_unshare, [libc::CLONE_NEWNS as u64, 0, 0, 0, 0, 0])
            != -(libc::EPERM as i64)
        {
            return 1;
        }
        if syscall(libc::SYS_clone3, [0; 6]) != -(libc::ENOSYS as i64) {
            return 2; // errnoRet 38 in the profile, so glibc falls back to clone
        }
        if syscall(1000, [0; 6]) != -(libc::ENOSYS as i64) {
            return 3; // newer than every syscall in the profile
        }
        if syscall(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]) < 0 {
            return 4;
        }
        if syscall(libc::SYS_socket, [40, libc::SOCK_STREAM as u64, 0, 0, 0, 0])
            != -(libc::EPERM as i64)
        {
            return 5; // AF_VSOCK
        }
        husk_sys::execve(path, &argv, &envp);
        6
    });
    assert_eq!(exit, Exit::Code(0));
}

#[repr(C)]
struct SeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

#[repr(C)]
struct SeccompNotif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

#[repr(C)]
struct SeccompNotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const SECCOMP_IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const SECCOMP_IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101;

#[test]
fn notify_hands_out_a_listener_the_agent_can_answer() {
    let p = plan(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    assert!(p.seccomp_notify());
    let mut socks = [0; 2];
    // SAFETY: socks is a valid two-element array.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            socks.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0);
    let (agent, child_end) = (socks[0], socks[1]);

    // SAFETY: the child only makes system calls and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = (|| {
            if p.set_no_new_privs().is_err() {
                return 100;
            }
            let Ok(Some(listener)) = p.install_seccomp() else {
                return 101;
            };
            // SAFETY: child_end is open in this process until it exits.
            let sock = unsafe { std::os::fd::BorrowedFd::borrow_raw(child_end) };
            if husk_sys::send_fd(sock, &listener).is_err() {
                return 102;
            }
            drop(listener);
            // The agent answers getppid for us.
            if syscall(libc::SYS_getppid, [0; 6]) != 4242 {
                return 1;
            }
            0
        })();
        husk_sys::exit_now(code);
    }
    // SAFETY: closing our copy of the child's end, so a dead child means EOF below.
    unsafe { libc::close(child_end) };
    // SAFETY: agent stays open until it is closed below.
    let listener = husk_sys::recv_fd(unsafe { std::os::fd::BorrowedFd::borrow_raw(agent) })
        .expect("recv_fd")
        .expect("the child sends a listener fd");
    // SAFETY: closing our end of the socket pair.
    unsafe { libc::close(agent) };

    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    assert_eq!(
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 10_000) },
        1,
        "no notification within 10s"
    );
    // SAFETY: SECCOMP_IOCTL_NOTIF_RECV fills a zeroed seccomp_notif.
    let mut req: SeccompNotif = unsafe { std::mem::zeroed() };
    assert_eq!(
        // SAFETY: req is a seccomp_notif of the size the ioctl number encodes.
        unsafe { libc::ioctl(listener.as_raw_fd(), SECCOMP_IOCTL_NOTIF_RECV, &mut req) },
        0
    );
    assert_eq!(req.data.nr as libc::c_long, libc::SYS_getppid);
    assert_eq!(req.pid as i32, pid);
    let resp = SeccompNotifResp {
        id: req.id,
        val: 4242,
        error: 0,
        flags: 0,
    };
    assert_eq!(
        // SAFETY: resp is a seccomp_notif_resp of the size the ioctl number encodes.
        unsafe { libc::ioctl(listener.as_raw_fd(), SECCOMP_IOCTL_NOTIF_SEND, &resp) },
        0
    );
    assert_eq!(common::wait(pid), Exit::Code(0));
}
