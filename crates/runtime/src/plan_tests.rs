//! The spec → process and namespace plan conversion without starting anything: which
//! namespaces are made by clone3, joined by the parent, joined or unshared by the child;
//! id maps and time offsets; the program lookup, argv/env, sysctls and hooks; errors on bad
//! input. (Joins open `/proc/self/ns/*`, which every test host has.)

use oci_spec::runtime::{Hook, Spec};
use serde_json::{json, Value};

use crate::namespaces::Namespaces;
use crate::plan::{sysctls, ChildHook, Exe, ProcessPlan, DEFAULT_PATH};

fn spec(linux: Value) -> Spec {
    serde_json::from_value(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "linux": linux,
    }))
    .expect("test spec parses")
}

fn ns(list: Value) -> Namespaces {
    ns_v(list, true).expect("plan")
}

fn ns_v(list: Value, cgroup_via_clone: bool) -> Result<Namespaces, String> {
    Namespaces::plan(&spec(json!({ "namespaces": list })), cgroup_via_clone)
        .map_err(|e| e.to_string())
}

fn flags(v: &[libc::c_int]) -> u64 {
    v.iter().fold(0, |a, f| a | *f as u64)
}

fn join_flags(j: &[crate::namespaces::Join]) -> Vec<libc::c_int> {
    j.iter().map(|j| j.flag).collect()
}

#[test]
fn new_namespaces_are_made_by_clone3() {
    let n = ns(json!([
        {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
    ]));
    assert_eq!(
        n.clone_flags,
        flags(&[
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWNS
        ])
    );
    assert!(n.pid_ns && n.new_uts && !n.new_user && !n.fork_again && !n.joined_user);
    assert!(n.parent_joins.is_empty() && n.child_joins.is_empty());
    assert_eq!(n.child_unshare, 0);
    assert!(n.has_mount_ns());
    assert!(!n.has_cgroup_ns());
}

#[test]
fn no_namespaces_means_the_hosts() {
    let n = ns(json!([]));
    assert_eq!(n.clone_flags, 0);
    assert!(!n.pid_ns && !n.has_mount_ns());
}

#[test]
fn a_new_user_namespace_is_made_by_clone3_with_its_maps() {
    let n = Namespaces::plan(
        &spec(json!({
            "namespaces": [{"type": "user"}, {"type": "mount"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 1},
                            {"containerID": 1, "hostID": 200001, "size": 9}],
        })),
        true,
    )
    .unwrap();
    assert!(n.new_user);
    assert_eq!(
        n.clone_flags,
        flags(&[libc::CLONE_NEWUSER, libc::CLONE_NEWNS])
    );
    assert_eq!(n.uid_map, "0 100000 65536\n");
    assert_eq!(n.gid_map, "0 200000 1\n1 200001 9\n");
}

#[test]
fn a_cgroup_namespace_is_made_at_clone_only_when_born_in_the_cgroup() {
    let v2 = ns_v(json!([{"type": "cgroup"}]), true).unwrap();
    assert_eq!(v2.clone_flags, libc::CLONE_NEWCGROUP as u64);
    assert_eq!(v2.child_unshare, 0);
    let v1 = ns_v(json!([{"type": "cgroup"}]), false).unwrap();
    assert_eq!(v1.clone_flags, 0);
    assert_eq!(v1.child_unshare, libc::CLONE_NEWCGROUP);
    assert!(v2.has_cgroup_ns() && v1.has_cgroup_ns());
}

#[test]
fn namespaces_by_path_are_joined_by_the_parent_except_mount() {
    let n = ns(json!([
        {"type": "network", "path": "/proc/self/ns/net"},
        {"type": "ipc", "path": "/proc/self/ns/ipc"},
        {"type": "mount", "path": "/proc/self/ns/mnt"},
        {"type": "pid", "path": "/proc/self/ns/pid"},
    ]));
    assert_eq!(n.clone_flags, 0);
    assert_eq!(
        join_flags(&n.parent_joins),
        [libc::CLONE_NEWNET, libc::CLONE_NEWIPC, libc::CLONE_NEWPID]
    );
    assert_eq!(join_flags(&n.child_joins), [libc::CLONE_NEWNS]);
    assert!(n.pid_ns, "a joined pid namespace is the container's own");
    assert!(n.has_mount_ns(), "a joined mount namespace counts");
}

#[test]
fn an_empty_path_means_a_new_namespace() {
    let n = ns(json!([{"type": "network", "path": ""}]));
    assert_eq!(n.clone_flags, libc::CLONE_NEWNET as u64);
    assert!(n.parent_joins.is_empty());
}

#[test]
fn a_missing_namespace_path_is_named() {
    let e = ns_v(
        json!([{"type": "network", "path": "/nonexistent-husk/ns"}]),
        true,
    )
    .err()
    .unwrap();
    assert!(
        e.starts_with("open net namespace /nonexistent-husk/ns: "),
        "{e}"
    );
}

#[test]
fn joining_a_user_namespace_moves_everything_into_the_child() {
    let n = ns(json!([
        {"type": "user", "path": "/proc/self/ns/user"},
        {"type": "network", "path": "/proc/self/ns/net"},
        {"type": "pid", "path": "/proc/self/ns/pid"},
        {"type": "mount", "path": "/proc/self/ns/mnt"},
        {"type": "uts"},
        {"type": "ipc"},
    ]));
    assert!(n.joined_user && !n.new_user);
    assert_eq!(
        n.clone_flags, 0,
        "nothing is made before the user namespace is joined"
    );
    assert_eq!(
        join_flags(&n.child_joins),
        [libc::CLONE_NEWUSER, libc::CLONE_NEWNET, libc::CLONE_NEWNS],
        "the user namespace first"
    );
    assert_eq!(join_flags(&n.parent_joins), [libc::CLONE_NEWPID]);
    assert_eq!(n.child_unshare, libc::CLONE_NEWUTS | libc::CLONE_NEWIPC);
    assert!(!n.fork_again, "no new pid or time namespace");
}

#[test]
fn a_new_pid_namespace_under_a_joined_user_namespace_forks_again() {
    let n = ns(json!([
        {"type": "user", "path": "/proc/self/ns/user"},
        {"type": "pid"},
    ]));
    assert_eq!(n.child_unshare, libc::CLONE_NEWPID);
    assert!(n.fork_again && n.pid_ns);
}

#[test]
fn a_new_time_namespace_gets_its_offsets() {
    let linux = json!({
        "namespaces": [{"type": "time"}],
        "timeOffsets": {"monotonic": {"secs": 7, "nanosecs": 3}},
    });
    let n = Namespaces::plan(&spec(linux), true).unwrap();
    assert_eq!(n.time_offsets.as_deref(), Some("monotonic 7 3\n"));
    assert_eq!(n.clone_flags, 0, "made by the parent's unshare, not clone3");
    assert!(!n.fork_again);
    let joined = ns(json!([
        {"type": "user", "path": "/proc/self/ns/user"}, {"type": "time"}
    ]));
    assert_eq!(joined.child_unshare, libc::CLONE_NEWTIME);
    assert!(joined.fork_again);
}

#[test]
fn the_program_is_looked_up_like_execvp() {
    let env = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let e = Exe::new("/bin/sh", &env(&["PATH=/x"])).unwrap();
    assert!(e.search.is_empty(), "a path with a slash is used as is");
    let e = Exe::new("./run", &[]).unwrap();
    assert!(e.search.is_empty());
    let e = Exe::new("sh", &env(&["PATH=/a:/b", "HOME=/", "PATH=/c::/d"])).unwrap();
    let dirs: Vec<&str> = e.search.iter().map(|d| d.to_str().unwrap()).collect();
    assert_eq!(
        dirs,
        ["/c", ".", "/d"],
        "the last PATH wins; an empty entry is ."
    );
    let e = Exe::new("sh", &env(&["HOME=/"])).unwrap();
    assert_eq!(e.search.len(), DEFAULT_PATH.split(':').count());
    assert_eq!(e.arg0.to_str().unwrap(), "sh");
}

#[test]
fn process_plan_argv_env_and_terminal() {
    let p: oci_spec::runtime::Process = serde_json::from_value(json!({
        "args": ["sh", "-c", "true"], "env": ["A=1", "PATH=/bin"], "cwd": "/w",
        "terminal": true, "consoleSize": {"height": 24, "width": 80},
        "user": {"uid": 0, "gid": 0},
    }))
    .unwrap();
    let plan = ProcessPlan::new(&p, None).unwrap();
    let strs = |ptrs: &[*const libc::c_char]| -> Vec<String> {
        ptrs.iter()
            .take_while(|p| !p.is_null())
            .map(|&p| {
                // SAFETY: CArray's pointers point into its own NUL-terminated strings.
                unsafe { std::ffi::CStr::from_ptr(p) }
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    };
    assert_eq!(strs(plan.argv.as_ptrs()), ["sh", "-c", "true"]);
    assert_eq!(strs(plan.envp.as_ptrs()), ["A=1", "PATH=/bin"]);
    assert!(plan.argv.as_ptrs().last().unwrap().is_null());
    assert_eq!(plan.cwd.to_str().unwrap(), "/w");
    assert!(plan.terminal);
    assert_eq!(plan.console_size, Some((24, 80)));
    // The trampoline's argv: two slots for the child, then the program's argv and NULL.
    assert_eq!(plan.trampoline_argv.borrow().len(), 2 + 3 + 1);
}

#[test]
fn process_plan_errors_name_the_field() {
    let err = |v: Value| {
        let p: oci_spec::runtime::Process = serde_json::from_value(v).unwrap();
        ProcessPlan::new(&p, None).err().map(|e| e.to_string())
    };
    assert_eq!(
        err(json!({"args": [], "cwd": "/", "user": {"uid": 0, "gid": 0}})).as_deref(),
        Some("config.json: process.args: must not be empty")
    );
    assert_eq!(
        err(json!({"cwd": "/", "user": {"uid": 0, "gid": 0}})).as_deref(),
        Some("config.json: process.args: must not be empty")
    );
    assert_eq!(
        err(json!({"args": ["a\u{0}"], "cwd": "/", "user": {"uid": 0, "gid": 0}})).as_deref(),
        Some("config.json: process.args: contains a NUL byte")
    );
    assert_eq!(
        err(json!({"args": ["a"], "env": ["X=\u{0}"], "cwd": "/",
            "user": {"uid": 0, "gid": 0}}))
        .as_deref(),
        Some("config.json: process.env: contains a NUL byte")
    );
}

#[test]
fn sysctls_become_proc_sys_paths_and_bad_names_are_refused() {
    let with = |m: Value| sysctls(&spec(json!({ "sysctl": m })));
    let s = with(json!({"net.ipv4.ip_forward": "1"})).unwrap();
    assert_eq!(s[0].path.to_str().unwrap(), "/proc/sys/net/ipv4/ip_forward");
    assert_eq!(s[0].value.to_str().unwrap(), "1");
    assert!(sysctls(&spec(json!({}))).unwrap().is_empty());
    for bad in ["net/ipv4", "net..ipv4", ".net", "net."] {
        let e = with(json!({ bad: "1" })).err().unwrap().to_string();
        assert_eq!(
            e,
            format!("config.json: linux.sysctl[{bad:?}]: not a sysctl name")
        );
    }
}

#[test]
fn hooks_for_the_child_default_argv_and_timeout() {
    let hook: Hook = serde_json::from_value(json!({"path": "/bin/h", "timeout": 3})).unwrap();
    let h = ChildHook::new(&hook, "hooks.createContainer[0]").unwrap();
    assert_eq!(h.path.to_str().unwrap(), "/bin/h");
    assert_eq!(h.argv.as_ptrs().len(), 2, "argv defaults to the path");
    assert!(
        h.envp.is_none(),
        "without env, the hook gets the process env (as runc)"
    );
    assert_eq!(h.timeout_ms, 3000);
    let hook: Hook = serde_json::from_value(json!({"path": "/bin/h", "args": ["h", "x"],
        "env": ["A=\u{0}"]}))
    .unwrap();
    let e = ChildHook::new(&hook, "hooks.startContainer[2]")
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        "config.json: hooks.startContainer[2]: contains a NUL byte"
    );
    let hook: Hook = serde_json::from_value(json!({"path": "/bin/h"})).unwrap();
    assert_eq!(
        ChildHook::new(&hook, "h").unwrap().timeout_ms,
        -1,
        "no timeout"
    );
}
