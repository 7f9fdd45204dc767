//! Compiler tests: build filters from spec JSON and run them in the test interpreter.

use libc::sock_filter;
use oci_spec::runtime::LinuxSeccomp;

use super::arch::{Abi, Host, X32_SYSCALL_BIT};
use super::bpf::{exec, run};
use super::rules::*;
use super::{compile, Filter};
use crate::HardeningError;

const X86_64: u32 = 0xc000_003e;
const I386: u32 = 0x4000_0003;
const AARCH64: u32 = 0xc000_00b7;
const ARM: u32 = 0x4000_0028;
const ERRNO_EPERM: u32 = RET_ERRNO | 1;
const DOCKER: &str = include_str!("../../tests/fixtures/docker-default.json");

fn spec(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap()
}

fn filter(json: &str, host: Host) -> Filter {
    Filter::for_host(&spec(json), host).unwrap()
}

fn error(json: &str) -> String {
    match Filter::for_host(&spec(json), Host::X86_64) {
        Ok(_) => panic!("{json} compiled"),
        Err(e) => e.to_string(),
    }
}

fn nr(abi: Abi, name: &str) -> u32 {
    abi.syscall(name).unwrap()
}

/// Every jump of the program lands inside it and the program ends in a return.
fn check_structure(p: &[sock_filter]) {
    assert!(p.len() <= 4096);
    for (pc, ins) in p.iter().enumerate() {
        let class = ins.code & 0x07;
        if class as u32 == libc::BPF_JMP {
            let targets: Vec<usize> = if ins.code as u32 == libc::BPF_JMP | libc::BPF_JA {
                vec![pc + 1 + ins.k as usize]
            } else {
                vec![pc + 1 + ins.jt as usize, pc + 1 + ins.jf as usize]
            };
            assert!(
                targets.iter().all(|&t| t < p.len()),
                "jump at {pc} leaves the program"
            );
        }
    }
    assert_eq!(p.last().unwrap().code as u32, libc::BPF_RET | libc::BPF_K);
}

#[test]
fn actions_errno_and_default() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":77},
            {"names":["getpid"],"action":"SCMP_ACT_ERRNO"},
            {"names":["gettid"],"action":"SCMP_ACT_KILL"},
            {"names":["getuid"],"action":"SCMP_ACT_KILL_PROCESS"},
            {"names":["getgid"],"action":"SCMP_ACT_TRAP"},
            {"names":["geteuid"],"action":"SCMP_ACT_TRACE","errnoRet":5},
            {"names":["getegid"],"action":"SCMP_ACT_LOG"},
            {"names":["getpgrp"],"action":"SCMP_ACT_NOTIFY"},
            {"names":["getsid"],"action":"SCMP_ACT_KILL_THREAD"},
            {"names":["no_such_syscall","sync"],"action":"SCMP_ACT_ERRNO","errnoRet":3}]}"#,
        Host::X86_64,
    );
    let p = &f.program;
    check_structure(p);
    let at = |name: &str| run(p, nr(Abi::X86_64, name), X86_64, [0; 6]);
    assert_eq!(at("getppid"), RET_ERRNO | 77);
    assert_eq!(at("getpid"), ERRNO_EPERM, "errnoRet defaults to EPERM");
    assert_eq!(at("gettid"), RET_KILL_THREAD);
    assert_eq!(at("getuid"), RET_KILL_PROCESS);
    assert_eq!(at("getgid"), RET_TRAP);
    assert_eq!(at("geteuid"), RET_TRACE | 5);
    assert_eq!(at("getegid"), RET_LOG);
    assert_eq!(at("getpgrp"), RET_USER_NOTIF);
    assert_eq!(at("getsid"), RET_KILL_THREAD);
    assert_eq!(
        at("sync"),
        RET_ERRNO | 3,
        "unknown names are skipped, the rest of the rule applies"
    );
    assert_eq!(at("read"), RET_ALLOW);
    assert_eq!(
        run(p, 5000, X86_64, [0; 6]),
        RET_ALLOW,
        "no -ENOSYS stub under an allow default"
    );
    assert_eq!(run(p, 20, AARCH64, [0; 6]), RET_KILL_THREAD, "foreign arch");
    assert_eq!(
        run(p, X32_SYSCALL_BIT | 39, X86_64, [0; 6]),
        RET_KILL_THREAD,
        "x32 not listed"
    );
    assert_eq!(f.flags, FLAG_NEW_LISTENER);
}

/// Reference semantics of one condition on a full 64-bit argument.
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

const OPS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// Arguments around the interesting edges of `v`: both halves +-1 and the 32-bit borders.
fn probes(v: u64) -> Vec<u64> {
    let mut out = vec![
        0,
        1,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        u64::MAX,
        0xffff_ffff_0000_0000,
    ];
    for d in [0u64, 1, 1 << 32] {
        out.extend([v.wrapping_add(d), v.wrapping_sub(d)]);
    }
    out.extend([
        v & 0xffff_ffff,
        v & !0xffff_ffff,
        v ^ 0x8000_0000,
        v ^ (1 << 63),
    ]);
    out
}

#[test]
fn every_operator_on_64_bit_and_32_bit_arguments() {
    let values: [(u64, u64); 5] = [
        (0x1_0000_0005, 0),
        (0xffff_ffff, 0),
        (0x8000_0000_0000_0000, 0),
        (0xffff_0000_0000_ffff, 0x1234_0000_0000_0042),
        (0x7e02_0000, 0),
    ];
    for op in OPS {
        for (value, value_two) in values {
            let (v, v2) = if op == "SCMP_CMP_MASKED_EQ" {
                (value, value_two & value)
            } else {
                (value, 0)
            };
            let json = format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"syscalls":[
                    {{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":9,
                      "args":[{{"index":3,"op":"{op}","value":{v},"valueTwo":{v2}}}]}}]}}"#
            );
            let p = filter(&json, Host::X86_64).program;
            check_structure(&p);
            for arg in probes(v) {
                let mut args = [0u64; 6];
                args[3] = arg;
                let want = if holds(op, arg, v, v2) {
                    RET_ERRNO | 9
                } else {
                    RET_ALLOW
                };
                assert_eq!(
                    run(&p, 110, X86_64, args),
                    want,
                    "x86_64 {op} arg {arg:#x} value {v:#x}/{v2:#x}"
                );
                // i386 arguments are 32 bits: only the low halves take part.
                let want32 = holds(op, arg & 0xffff_ffff, v & 0xffff_ffff, v2 & 0xffff_ffff);
                let want32 = if want32 { RET_ERRNO | 9 } else { RET_ALLOW };
                assert_eq!(
                    run(&p, 64, I386, args),
                    want32,
                    "i386 {op} arg {arg:#x} value {v:#x}"
                );
            }
        }
    }
}

#[test]
fn conditions_and_rules_combine_like_runc() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["getppid"],"action":"SCMP_ACT_ALLOW",
             "args":[{"index":0,"op":"SCMP_CMP_EQ","value":1},{"index":1,"op":"SCMP_CMP_GT","value":10}]},
            {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":20,
             "args":[{"index":2,"op":"SCMP_CMP_EQ","value":7}]},
            {"names":["getppid"],"action":"SCMP_ACT_TRAP"},
            {"names":["getppid"],"action":"SCMP_ACT_KILL"},
            {"names":["getpid"],"action":"SCMP_ACT_ALLOW",
             "args":[{"index":0,"op":"SCMP_CMP_EQ","value":1},{"index":0,"op":"SCMP_CMP_EQ","value":2}]}]}"#,
        Host::X86_64,
    );
    let p = &f.program;
    let getppid = |a: [u64; 3]| run(p, 110, X86_64, [a[0], a[1], a[2], 0, 0, 0]);
    assert_eq!(
        getppid([1, 11, 0]),
        RET_ALLOW,
        "both conditions of a rule hold"
    );
    assert_eq!(
        getppid([1, 10, 0]),
        RET_TRAP,
        "one fails: the unconditional rule decides"
    );
    assert_eq!(
        getppid([2, 11, 7]),
        RET_ERRNO | 20,
        "the second rule matches"
    );
    assert_eq!(getppid([1, 11, 7]), RET_ALLOW, "rules are tried in order");
    let getpid = |a: u64| run(p, 39, X86_64, [a, 0, 0, 0, 0, 0]);
    assert_eq!(
        getpid(1),
        RET_ALLOW,
        "conditions on the same argument are alternatives"
    );
    assert_eq!(getpid(2), RET_ALLOW);
    assert_eq!(getpid(3), ERRNO_EPERM);
    assert_eq!(
        run(p, 5000, X86_64, [0; 6]),
        RET_ERRNO | libc::ENOSYS as u32,
        "newer than the profile"
    );
}

#[test]
fn redundant_rules_are_dropped() {
    let s = spec(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ERRNO"},
            {"names":["write"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"op":"SCMP_CMP_EQ","value":1}]},
            {"names":["write"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let prof = build(&s, Host::X86_64).unwrap();
    let x86 = &prof.abis[0];
    assert_eq!(x86.abi, Abi::X86_64);
    assert!(!x86.syscalls.contains_key(&0), "same action as the default");
    let write = &x86.syscalls[&1];
    assert!(
        write.rules.is_empty(),
        "a conditional allow before an unconditional allow is useless"
    );
    assert_eq!(write.fallback, RET_ALLOW);
    assert_eq!(
        x86.enosys_above,
        Some(1),
        "the stub still counts every named syscall"
    );
}

#[test]
fn unconditional_allow_never_reads_arguments() {
    // So the kernel's seccomp action cache can serve these syscalls without running the filter.
    let p = filter(DOCKER, Host::X86_64).program;
    let (action, read_args) = exec(&p, nr(Abi::X86_64, "read"), X86_64, [0; 6]);
    assert_eq!((action, read_args), (RET_ALLOW, false));
    let (action, read_args) = exec(&p, nr(Abi::X86_64, "personality"), X86_64, [0; 6]);
    assert_eq!((action, read_args), (RET_ALLOW, true));
}

#[test]
fn docker_default_profile() {
    let f = filter(DOCKER, Host::X86_64);
    let p = &f.program;
    check_structure(p);
    // Runs of allowed syscalls share ranges: three ABIs fit in well under 1024 instructions.
    assert!(p.len() < 1024, "{} instructions", p.len());
    assert_eq!(f.flags, 0);
    let x = |name: &str, args: [u64; 6]| run(p, nr(Abi::X86_64, name), X86_64, args);
    let s = spec(DOCKER);
    for name in s.syscalls().as_ref().unwrap()[0].names() {
        if let Some(n) = Abi::X86_64.syscall(name) {
            assert_eq!(run(p, n, X86_64, [0; 6]), RET_ALLOW, "{name}");
        }
        if let Some(n) = Abi::I386.syscall(name) {
            assert_eq!(run(p, n, I386, [0; 6]), RET_ALLOW, "i386 {name}");
        }
        if let Some(n) = Abi::X32.syscall(name) {
            assert_eq!(run(p, n, X86_64, [0; 6]), RET_ALLOW, "x32 {name}");
        }
    }
    assert_eq!(x("mount", [0; 6]), ERRNO_EPERM);
    assert_eq!(x("unshare", [0; 6]), ERRNO_EPERM);
    assert_eq!(x("clone3", [0; 6]), RET_ERRNO | 38);
    assert_eq!(x("clone", [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        x("clone", [libc::CLONE_NEWNS as u64 | 17, 0, 0, 0, 0, 0]),
        ERRNO_EPERM
    );
    assert_eq!(x("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(x("personality", [0x0040_0000, 0, 0, 0, 0, 0]), ERRNO_EPERM);
    assert_eq!(
        x("socket", [libc::AF_INET as u64, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(x("socket", [40, 0, 0, 0, 0, 0]), ERRNO_EPERM, "AF_VSOCK");
    assert_eq!(x("arch_prctl", [0; 6]), RET_ALLOW);
    assert_eq!(
        run(p, 3000, X86_64, [0; 6]),
        RET_ERRNO | libc::ENOSYS as u32
    );
    assert_eq!(
        run(p, X32_SYSCALL_BIT | 3000, X86_64, [0; 6]),
        RET_ERRNO | libc::ENOSYS as u32
    );
    assert_eq!(run(p, nr(Abi::I386, "mount"), I386, [0; 6]), ERRNO_EPERM);
    assert_eq!(run(p, 63, AARCH64, [0; 6]), RET_KILL_THREAD);

    // The same profile on an arm64 host: its x86 architectures cannot occur there and only
    // the native AArch64 rules are compiled.
    let a = filter(DOCKER, Host::AARCH64).program;
    check_structure(&a);
    assert_eq!(
        run(&a, nr(Abi::Aarch64, "read"), AARCH64, [0; 6]),
        RET_ALLOW
    );
    assert_eq!(
        run(&a, nr(Abi::Aarch64, "mount"), AARCH64, [0; 6]),
        ERRNO_EPERM
    );
    assert_eq!(
        run(&a, nr(Abi::Aarch64, "clone3"), AARCH64, [0; 6]),
        RET_ERRNO | 38
    );
    assert_eq!(run(&a, nr(Abi::Arm, "read"), ARM, [0; 6]), RET_KILL_THREAD);
    assert_eq!(run(&a, 0, X86_64, [0; 6]), RET_KILL_THREAD);
}

#[test]
fn arm_compat_on_arm64() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_AARCH64","SCMP_ARCH_ARM","SCMP_ARCH_MIPS"],
            "syscalls":[{"names":["read","set_tls","open"],"action":"SCMP_ACT_ALLOW"}]}"#,
        Host::AARCH64,
    );
    let p = &f.program;
    assert_eq!(run(p, 63, AARCH64, [0; 6]), RET_ALLOW);
    assert_eq!(run(p, 3, ARM, [0; 6]), RET_ALLOW);
    assert_eq!(run(p, 5, ARM, [0; 6]), RET_ALLOW, "arm open(2)");
    assert_eq!(
        run(p, 0x0f_0005, ARM, [0; 6]),
        RET_ALLOW,
        "__ARM_NR_set_tls"
    );
    assert_eq!(run(p, 4, ARM, [0; 6]), ERRNO_EPERM);
}

#[test]
fn long_profiles_keep_jumps_in_range() {
    // 200 syscalls, each with a three-condition rule and a fallback: bodies of ~15
    // instructions push most branches of the search tree beyond 255 instructions.
    let names: Vec<&str> = super::syscalls_x86_64::SYSCALLS
        .iter()
        .take(200)
        .map(|(n, _)| *n)
        .collect();
    let rules: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                r#"{{"names":["{n}"],"action":"SCMP_ACT_ERRNO","errnoRet":{e},"args":[
                    {{"index":0,"op":"SCMP_CMP_EQ","value":{i}}},{{"index":1,"op":"SCMP_CMP_GT","value":4294967296}},
                    {{"index":2,"op":"SCMP_CMP_MASKED_EQ","value":255,"valueTwo":1}}]}},
                   {{"names":["{n}"],"action":"SCMP_ACT_LOG"}}"#,
                e = i + 1
            )
        })
        .collect();
    let json = format!(
        r#"{{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[{}]}}"#,
        rules.join(",")
    );
    let p = filter(&json, Host::X86_64).program;
    check_structure(&p);
    assert!(p.len() > 2500, "{}", p.len());
    assert!(
        p.iter()
            .filter(|i| i.code as u32 == libc::BPF_JMP | libc::BPF_JA)
            .count()
            > 5
    );
    for (i, n) in names.iter().enumerate() {
        let nr = nr(Abi::X86_64, n);
        let hit = [i as u64, 1 << 33, 0x101, 0, 0, 0];
        assert_eq!(run(&p, nr, X86_64, hit), RET_ERRNO | (i as u32 + 1), "{n}");
        let miss = [i as u64, 1 << 33, 0x102, 0, 0, 0];
        assert_eq!(run(&p, nr, X86_64, miss), RET_LOG, "{n}");
    }
    assert_eq!(
        run(&p, nr(Abi::X86_64, "write"), X86_64, [0; 6]),
        RET_KILL_PROCESS
    );
}

#[test]
fn too_long_a_filter_is_an_error() {
    let names: Vec<&str> = super::syscalls_x86_64::SYSCALLS
        .iter()
        .take(380)
        .map(|(n, _)| *n)
        .collect();
    let args: Vec<String> = (0..6)
        .map(|i| format!(r#"{{"index":{i},"op":"SCMP_CMP_LE","value":4294967297}}"#))
        .collect();
    let json = format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":{:?},"action":"SCMP_ACT_ERRNO","args":[{}]}}]}}"#,
        names,
        args.join(",")
    );
    match Filter::for_host(&spec(&json), Host::X86_64) {
        Err(HardeningError::FilterTooLong(n)) => assert!(n > 4096),
        other => panic!(
            "expected FilterTooLong, got {:?}",
            other.map(|f| f.program.len())
        ),
    }
}

#[test]
fn flags() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
        Host::X86_64,
    );
    assert_eq!(
        f.flags,
        FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW,
        "WAIT_KILLABLE_RECV needs a listener"
    );
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        Host::X86_64,
    );
    assert!(f.notify());
    assert_eq!(
        f.flags,
        FLAG_TSYNC | FLAG_TSYNC_ESRCH | FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV
    );
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}"#,
        Host::X86_64,
    );
    assert!(!f.notify());
    assert_eq!(f.flags, 0);
}

#[test]
fn invalid_profiles() {
    let e = error(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#);
    assert_eq!(
        e,
        "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"
    );
    let e = error(r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":3}"#);
    assert_eq!(
        e,
        "linux.seccomp.defaultAction: errnoRet is not supported with SCMP_ACT_ALLOW"
    );
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL","errnoRet":1}]}"#,
    );
    assert_eq!(
        e,
        "linux.seccomp.syscalls[0].action: errnoRet is not supported with SCMP_ACT_KILL"
    );
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO",
            "args":[{"index":6,"op":"SCMP_CMP_EQ","value":1}]}]}"#,
    );
    assert_eq!(
        e,
        "linux.seccomp.syscalls[0].args[0].index: 6 is out of range (0-5)"
    );
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    assert_eq!(
        e,
        "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for the write syscall"
    );
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[""],"action":"SCMP_ACT_KILL"}]}"#,
    );
    assert_eq!(e, "linux.seccomp.syscalls[0].names[0]: empty syscall name");
    let e = error(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000}"#);
    assert_eq!(
        e,
        "linux.seccomp.defaultAction: errnoRet 70000 does not fit in 16 bits"
    );
}

#[test]
fn enosys_stub_follows_runc() {
    let no_stub = [
        r#"{"defaultAction":"SCMP_ACT_LOG","syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL"}]}"#,
        r#"{"defaultAction":"SCMP_ACT_TRACE","syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL"}]}"#,
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    ];
    for json in no_stub {
        let prof = build(&spec(json), Host::X86_64).unwrap();
        assert_eq!(prof.abis[0].enosys_above, None, "{json}");
    }
    let json = r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[{"names":["read","getppid"],"action":"SCMP_ACT_ALLOW"}]}"#;
    let p = filter(json, Host::X86_64).program;
    assert_eq!(run(&p, 110, X86_64, [0; 6]), RET_ALLOW);
    assert_eq!(run(&p, 109, X86_64, [0; 6]), RET_KILL_PROCESS);
    assert_eq!(
        run(&p, 111, X86_64, [0; 6]),
        RET_ERRNO | libc::ENOSYS as u32
    );
}

/// What the rule sets say a syscall gets, evaluated directly (no BPF).
fn reference(p: &Profile, abi: Abi, nr: u32, args: [u64; 6]) -> u32 {
    let r = p.abis.iter().find(|r| r.abi == abi).unwrap();
    let mask = if abi.is_32bit() {
        0xffff_ffff
    } else {
        u64::MAX
    };
    let holds = |c: &Cond| {
        let (a, v) = (args[c.arg as usize] & mask, c.value & mask);
        match c.op {
            Op::Ne => a != v,
            Op::Lt => a < v,
            Op::Le => a <= v,
            Op::Eq => a == v,
            Op::Ge => a >= v,
            Op::Gt => a > v,
            Op::MaskedEq { mask: m } => a & m & mask == v,
        }
    };
    match r.syscalls.get(&nr) {
        Some(sc) => sc
            .rules
            .iter()
            .find(|rule| rule.conds.iter().all(holds))
            .map_or(sc.fallback, |rule| rule.action),
        None if r.enosys_above.is_some_and(|max| nr > max) => RET_ERRNO | libc::ENOSYS as u32,
        None => p.default,
    }
}

#[test]
fn compiled_filter_matches_the_rules_for_every_number() {
    let samples: [[u64; 6]; 4] = [
        [0; 6],
        [0xffff_ffff, 8, 0, 0, 0, 0],
        [libc::CLONE_NEWNS as u64, 1, 2, 3, 4, 5],
        [40, 0, 0, 0, 0, 0],
    ];
    for (json, host) in [(DOCKER, Host::X86_64), (DOCKER, Host::AARCH64)] {
        let prof = build(&spec(json), host).unwrap();
        let prog = compile::compile(&prof).unwrap();
        for r in &prof.abis {
            let base = if r.abi == Abi::X32 {
                X32_SYSCALL_BIT
            } else {
                0
            };
            for n in (0..1100)
                .map(|n| base + n)
                .chain([base + 0xf_0005, u32::MAX])
            {
                if r.abi == Abi::X86_64 && n >= X32_SYSCALL_BIT {
                    continue;
                }
                for args in samples {
                    let got = run(&prog, n, r.abi.audit_arch(), args);
                    assert_eq!(
                        got,
                        reference(&prof, r.abi, n, args),
                        "{:?} nr {n:#x} args {args:x?}",
                        r.abi
                    );
                }
            }
        }
    }
}
