//! seccomp from the container's point of view: errno actions, and SCMP_ACT_NOTIFY handing the
//! listener to a real agent at `listenerPath`.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

use husk_tests::*;

const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct Resp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

#[test]
fn notify_listener_reaches_the_agent_which_answers() {
    let dir = scratch("agent");
    let sock = dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, fd) = husk_sys::recv_with_fd(&conn, &mut buf).unwrap();
        let state: Value = serde_json::from_slice(&buf[..n]).expect("ContainerProcessState JSON");
        let fd = fd.expect("listener fd attached");
        // Answer one intercepted syscall with ENOSPC.
        let mut req = Notif::default();
        // SAFETY: ioctls with correctly sized seccomp structs on the listener.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut req) };
        assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
        let resp = Resp {
            id: req.id,
            val: 0,
            error: -libc::ENOSPC,
            flags: 0,
        };
        // SAFETY: as above.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp) };
        assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
        (state, req.nr)
    });
    let h = Husk::new();
    let b = Bundle::new(&["sh", "-c", "mkdir /x 2>&1; echo rc=$?"], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock.to_str().unwrap(),
            "listenerMetadata": "from-the-test",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let id = unique("notify");
    let out = h.run_container(&id, &b);
    let (state, nr) = agent.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("No space left on device") && stdout(&out).contains("rc=1"),
        "{}",
        stdout(&out)
    );
    assert!(
        nr == libc::SYS_mkdir as i32 || nr == libc::SYS_mkdirat as i32,
        "intercepted syscall {nr}"
    );
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "from-the-test");
    assert_eq!(state["state"]["id"], id.as_str());
    assert!(state["pid"].as_i64().unwrap() > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn notify_without_listener_path_is_refused_before_anything_exists() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let id = unique("nolistener");
    let out = h.run(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("listenerPath"), "{}", stderr(&out));
    assert!(!h.root.join(&id).exists());
}

/// With no agent listening at `listenerPath`, the create fails in runc's words (clients match
/// "failed to connect with seccomp agent"), naming the path, and leaves nothing behind.
#[test]
fn notify_without_an_agent_fails_in_runcs_words() {
    let dir = scratch("noagent");
    let sock = dir.join("nobody-listens.sock");
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock.to_str().unwrap(),
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let id = unique("noagent");
    let out = h.run_container(&id, &b);
    assert!(!out.status.success());
    let err = stderr(&out);
    let want = "failed to connect with seccomp agent specified in the seccomp profile: ";
    assert!(err.contains(want), "{err}");
    assert!(err.contains(sock.to_str().unwrap()), "{err}");
    assert!(err.contains("no such file or directory"), "{err}");
    assert_eq!(err.matches(id.as_str()).count(), 1, "id named once: {err}");
    assert!(!h.root.join(&id).exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_action_kills() {
    let h = Husk::new();
    let b = Bundle::new(&["sh", "-c", "echo before; mkdir /x; echo after $?"], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]
        });
    });
    let out = h.run_container(&unique("kill"), &b);
    // mkdir (a child of sh) is killed by SIGSYS: sh reports 128 + 31.
    assert_eq!(stdout(&out), "before\nafter 159\n", "{}", stderr(&out));
}
