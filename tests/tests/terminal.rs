//! Terminals: `--console-socket` (how Podman's conmon and containerd's shim get the pty master)
//! and husk's own relay for a foreground `run`/`exec -t`.

use std::io::Read;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixListener;

use husk_tests::*;

/// Receives the pty master sent over the console socket and reads everything from it.
fn console_receiver(sock: &std::path::Path) -> std::thread::JoinHandle<String> {
    let listener = UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let fd = husk_sys::recv_fd(&conn)
            .unwrap()
            .expect("pty master over SCM_RIGHTS");
        // SAFETY: the descriptor was just received and is owned here.
        let mut master =
            unsafe { std::fs::File::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the container side of the pty is closed.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    })
}

/// Creates and starts a `terminal: true` container running `args` (with `edit` applied to its
/// config) and returns what it wrote to the pty master that came over `--console-socket`.
fn console_output(args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let dir = scratch("console");
    let sock = dir.join("console.sock");
    let reader = console_receiver(&sock);
    let h = Husk::new();
    let b = Bundle::new(args, |c| {
        c["process"]["terminal"] = json!(true);
        edit(c);
    });
    let id = unique("tty");
    h.ok(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    h.ok(&["start", &id]);
    let text = reader.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    text
}

#[test]
fn console_socket_receives_the_pty_master() {
    let text = console_output(&["sh", "-c", "tty; stty size; echo on-the-pty"], |c| {
        c["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    });
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("33 111"), "consoleSize not applied: {text}");
    assert!(text.contains("on-the-pty"), "{text}");
}

#[test]
fn terminal_without_console_socket_when_detached_is_refused() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| c["process"]["terminal"] = json!(true));
    let out = h.run(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        &unique("notty"),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("console socket"), "{}", stderr(&out));
}

/// `script` gives husk a real terminal, as a person at a shell would.
fn under_a_tty(h: &Husk, args: &str) -> String {
    let cmd = format!(
        "{} --root {} {args}",
        husk_bin().display(),
        h.root.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script(1) from bsdutils");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[test]
fn foreground_run_relays_the_terminal() {
    let h = Husk::new();
    let b = Bundle::new(&["sh", "-c", "tty; echo relayed; exit 5"], |c| {
        c["process"]["terminal"] = json!(true)
    });
    let out = under_a_tty(
        &h,
        &format!(
            "run --bundle {} {}; echo rc=$?",
            b.dir.display(),
            unique("relay")
        ),
    );
    assert!(
        out.contains("/dev/pts/0") && out.contains("relayed"),
        "{out}"
    );
    assert!(out.contains("rc=5"), "{out}");
}

#[test]
fn exec_tty_relays_the_terminal() {
    let h = Husk::new();
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let id = unique("exectty");
    h.create(&id, &b);
    h.ok(&["start", &id]);
    let out = under_a_tty(&h, &format!("exec -t {id} sh -c 'tty; echo via-exec'"));
    assert!(
        out.contains("/dev/pts/") && out.contains("via-exec"),
        "{out}"
    );
}

/// As runc: the process's user owns its terminal (the group stays tty), and ONLCR is off, so
/// lines end in `\n`, not `\r\n`.
#[test]
fn console_is_owned_by_the_process_user_without_onlcr() {
    let text = console_output(&["sh", "-c", "stat -c %u:%g $(tty); echo a; echo b"], |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    assert_eq!(text, "1000:5\na\nb\n");
}

/// `run` of a terminal bundle with no terminal on husk's side (no tty on stdio, no controlling
/// terminal) fails at once, as runc does, instead of hanging.
#[test]
fn foreground_terminal_run_without_a_terminal_fails_at_once() {
    let h = Husk::new();
    let b = Bundle::new(&["sh"], |c| c["process"]["terminal"] = json!(true));
    let id = unique("notty");
    // timeout(1): the old behaviour was to hang.
    let out = h.run_container_under(&["timeout", "20", "setsid", "--wait"], &id, &b);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/dev/tty"), "{}", stderr(&out));
    assert!(
        h.run(&["state", &id]).status.code() != Some(0),
        "container left behind"
    );
}
