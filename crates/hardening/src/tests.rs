//! Plan building and failure messages (no child processes).

use oci_spec::runtime::{Linux, Process};

use super::*;
use husk_sys::Errno;

fn process(json: &str) -> Process {
    serde_json::from_str(json).unwrap()
}

fn plan(json: &str) -> Result<Plan, HardeningError> {
    Plan::new(&process(json), None)
}

const USER: &str = r#""user":{"uid":1000,"gid":100,"additionalGids":[10,20]},"cwd":"/""#;

#[test]
fn plan_from_a_full_process() {
    let p = plan(&format!(
        r#"{{{USER},"noNewPrivileges":true,"rlimits":[{{"type":"RLIMIT_NOFILE","soft":10,"hard":20}},
            {{"type":"RLIMIT_NPROC","soft":1,"hard":2}}],
            "capabilities":{{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}}}}"#
    ))
    .unwrap();
    assert!(p.no_new_privs());
    assert!(!p.has_seccomp() && !p.seccomp_notify());
    assert_eq!(p.rlimits.len(), 2);
    assert_eq!(
        (p.rlimits[1].resource, p.rlimits[1].soft, p.rlimits[1].hard),
        (libc::RLIMIT_NPROC, 1, 2)
    );
    assert_eq!(p.identity.groups, vec![10, 20]);
    assert_eq!(p.identity.umask, 0o022, "runc's default umask");
    assert_eq!(p.caps.effective, 1 << 5);
    assert_eq!(p.caps.inheritable, 0);
    assert_eq!(p.caps.drop_bounding & (1 << 5), 0);
    assert_ne!(p.caps.drop_bounding & 1, 0);
}

#[test]
fn invalid_fields_are_named() {
    let e = plan(&format!(
        r#"{{{USER},"rlimits":[{{"type":"RLIMIT_NOFILE","soft":1,"hard":1}},{{"type":"RLIMIT_NOFILE","soft":2,"hard":2}}]}}"#
    ));
    assert_eq!(
        e.err().unwrap().to_string(),
        "process.rlimits[1].type: duplicate rlimit \"RLIMIT_NOFILE\""
    );

    let e = plan(&format!(
        r#"{{{USER},"ioPriority":{{"class":"IOPRIO_CLASS_RT","priority":9}}}}"#
    ));
    assert_eq!(
        e.err().unwrap().to_string(),
        "process.ioPriority.priority: 9 is out of range (0-7)"
    );

    let linux: Linux =
        serde_json::from_str(r#"{"personality":{"domain":"LINUX","flags":["ADDR_NO_RANDOMIZE"]}}"#)
            .unwrap();
    let e = Plan::new(&process(&format!("{{{USER}}}")), Some(&linux));
    assert_eq!(
        e.err().unwrap().to_string(),
        "linux.personality.flags: no flags are supported"
    );

    let linux: Linux =
        serde_json::from_str(r#"{"seccomp":{"defaultAction":"SCMP_ACT_NOTIFY"}}"#).unwrap();
    let e = Plan::new(&process(&format!("{{{USER}}}")), Some(&linux));
    assert!(e
        .err()
        .unwrap()
        .to_string()
        .starts_with("linux.seccomp.defaultAction: "));
}

#[test]
fn lsm_labels_need_the_lsm() {
    let apparmor =
        std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"));
    match plan(&format!(r#"{{{USER},"apparmorProfile":"husk-test"}}"#)) {
        Ok(p) => {
            assert!(apparmor, "AppArmor is off, yet a profile was accepted");
            assert_eq!(p.labels.apparmor_profile.as_deref(), Some("husk-test"));
        }
        Err(e) => {
            assert!(!apparmor, "{e}");
            assert_eq!(
                e.to_string(),
                "process.apparmorProfile: profile \"husk-test\" is set but AppArmor is not enabled on this host"
            );
        }
    }
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    let r = plan(&format!(
        r#"{{{USER},"selinuxLabel":"system_u:system_r:container_t:s0"}}"#
    ));
    assert_eq!(r.is_ok(), selinux);
    // Empty strings mean "not set", and a plan without labels applies nothing.
    let p = plan(&format!(
        r#"{{{USER},"apparmorProfile":"","selinuxLabel":""}}"#
    ))
    .unwrap();
    assert_eq!(p.apply_lsm_exec_label(), Ok(()));
}

#[test]
fn describe_every_step() {
    let linux: Linux = serde_json::from_str(r#"{"personality":{"domain":"LINUX32"}}"#).unwrap();
    let p = Plan::new(
        &process(&format!(
            r#"{{{USER},"rlimits":[{{"type":"RLIMIT_CORE","soft":0,"hard":0}}],
                "capabilities":{{"effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN","CAP_KILL"]}},
                "ioPriority":{{"class":"IOPRIO_CLASS_BE","priority":4}},"scheduler":{{"policy":"SCHED_IDLE"}}}}"#
        )),
        Some(&linux),
    )
    .unwrap();
    let eperm = Errno(libc::EPERM);
    let msg = |step, index| Failure::new(step, index, eperm).describe(&p);
    assert_eq!(
        msg(Step::Rlimit, 0),
        "setrlimit RLIMIT_CORE: operation not permitted"
    );
    assert_eq!(
        msg(Step::Rlimit, 7),
        "setrlimit (rlimit #7): operation not permitted"
    );
    assert_eq!(
        msg(Step::NoNewPrivs, 0),
        "prctl(PR_SET_NO_NEW_PRIVS): operation not permitted"
    );
    assert_eq!(
        msg(Step::Bounding, 21),
        "drop CAP_SYS_ADMIN from the capability bounding set: operation not permitted"
    );
    assert_eq!(
        msg(Step::KeepCaps, 1),
        "prctl(PR_SET_KEEPCAPS, 1): operation not permitted"
    );
    assert_eq!(
        msg(Step::Setgroups, 0),
        "setgroups [10, 20]: operation not permitted"
    );
    assert_eq!(
        msg(Step::Setgid, 0),
        "setresgid 100: operation not permitted"
    );
    assert_eq!(
        msg(Step::Setuid, 0),
        "setresuid 1000: operation not permitted"
    );
    assert_eq!(
        msg(Step::Capset, 0),
        "capset (effective 0x1, permitted 0x21, inheritable 0x0): operation not permitted"
    );
    assert_eq!(
        msg(Step::Ambient, AMBIENT_CLEAR_ALL),
        "clear the ambient capability set: operation not permitted"
    );
    assert_eq!(
        msg(Step::Ambient, 12),
        "raise ambient capability CAP_NET_ADMIN: operation not permitted"
    );
    assert_eq!(
        msg(Step::Seccomp, 0),
        "load the seccomp filter: operation not permitted"
    );
    assert_eq!(
        msg(Step::Lsm, lsm::APPARMOR),
        "set AppArmor exec profile \"\": operation not permitted"
    );
    assert_eq!(
        msg(Step::Lsm, lsm::SELINUX),
        "set SELinux exec label \"\": operation not permitted"
    );
    assert_eq!(
        msg(Step::IoPriority, 0),
        "ioprio_set IOPRIO_CLASS_BE 4: operation not permitted"
    );
    assert_eq!(
        msg(Step::Scheduler, 0),
        "sched_setattr SCHED_IDLE: operation not permitted"
    );
    assert_eq!(
        msg(Step::Personality, 0),
        "personality LINUX32: operation not permitted"
    );
    let eacces = Failure::new(Step::Lsm, lsm::APPARMOR, Errno(libc::EACCES)).describe(&p);
    assert!(eacces.ends_with(": permission denied"), "{eacces}");
}
