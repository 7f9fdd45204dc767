//! Container-escape classes that have hit runc, each attacked from inside a real container.

use husk_tests::*;

fn sha(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// CVE-2019-5736: a program that resolves to /proc/self/exe must never run husk's binary inside
/// the container (from there it could be reopened for writing once husk exits).
#[test]
fn proc_self_exe_never_runs_the_husk_binary() {
    let before = sha(&husk_bin());
    let h = Husk::new();
    let b = Bundle::new(&["/bin/evil", "--version"], |_| {});
    std::os::unix::fs::symlink("/proc/self/exe", b.dir.join("rootfs/bin/evil")).unwrap();
    let out = h.run_container(&unique("cve5736"), &b);
    assert!(
        !stdout(&out).contains("husk version"),
        "the husk binary ran inside the container: {}",
        stdout(&out)
    );
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));

    // The same through `husk exec`, and a #!/proc/self/exe script.
    let b = Bundle::new(&["sleep", "100"], |_| {});
    std::os::unix::fs::symlink("/proc/self/exe", b.dir.join("rootfs/bin/evil")).unwrap();
    std::fs::write(
        b.dir.join("rootfs/bin/evil.sh"),
        "#!/proc/self/exe --version\n",
    )
    .unwrap();
    std::fs::set_permissions(
        b.dir.join("rootfs/bin/evil.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let id = unique("cve5736");
    h.create(&id, &b);
    h.ok(&["start", &id]);
    let out = h.run(&["exec", &id, "/bin/evil", "--version"]);
    assert!(
        !stdout(&out).contains("husk version"),
        "exec ran husk inside: {}",
        stdout(&out)
    );
    let out = h.command(&["exec", &id, "/bin/evil.sh"]).output().unwrap();
    assert!(
        !stdout(&out).contains("husk version") && !stderr(&out).contains("no such command"),
        "script ran husk inside"
    );
    assert_eq!(sha(&husk_bin()), before, "husk binary changed");
}

/// The init is not dumpable until it execs the user's program: other processes in the
/// container cannot read its /proc entries (exe, fds, memory) while it is still husk.
#[test]
fn init_is_not_dumpable_before_exec() {
    let h = Husk::new();
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let id = unique("dump");
    h.create(&id, &b);
    let out = h.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "readlink /proc/1/exe || echo denied",
    ]);
    assert!(
        stdout(&out).contains("denied") && !stdout(&out).contains("husk"),
        "{}",
        stdout(&out)
    );
    h.ok(&["start", &id]);
    let out = h.run(&["exec", &id, "sh", "-c", "readlink /proc/1/exe"]);
    assert!(
        stdout(&out).contains("busybox"),
        "after exec the init is an ordinary process: {}",
        stdout(&out)
    );
}

/// CVE-2024-21626: no husk descriptor is reachable, and a cwd through /proc/self/fd cannot
/// land on a host directory.
#[test]
fn cwd_through_leaked_descriptors_never_reaches_the_host() {
    let h = Husk::new();
    for n in 3..12 {
        let b = Bundle::new(&["sh", "-c", "pwd -P; ls"], |c| {
            c["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"))
        });
        let out = h.run_container(&unique("fdcwd"), &b);
        if out.status.success() {
            let text = stdout(&out);
            assert!(
                !text.contains("husk")
                    && !text.contains("state.json")
                    && !text.contains("cgroup.procs"),
                "cwd fd {n} reached the host: {text}"
            );
        }
    }
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let id = unique("fdcwd");
    h.create(&id, &b);
    h.ok(&["start", &id]);
    for n in 3..12 {
        let out = h.run(&[
            "exec",
            "--cwd",
            &format!("/proc/self/fd/{n}"),
            &id,
            "sh",
            "-c",
            "pwd -P; ls",
        ]);
        if out.status.success() {
            let text = stdout(&out);
            assert!(
                !text.contains("state.json") && !text.contains("cgroup.procs"),
                "exec cwd fd {n} reached the host: {text}"
            );
        }
    }
}

/// CVE-2021-30465 and friends: a mount destination that is a symlink in the image is
/// resolved inside the rootfs, never on the host.
#[test]
fn symlinked_mount_destination_stays_in_the_rootfs() {
    let victim = scratch("victim");
    let h = Husk::new();
    let b = Bundle::new(
        &["sh", "-c", "echo inside > /evil/marker && cat /evil/marker"],
        |c| {
            c["root"]["readonly"] = json!(false);
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}));
        },
    );
    std::os::unix::fs::symlink(&victim, b.dir.join("rootfs/evil")).unwrap();
    let out = h.run_container(&unique("symlink"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !victim.join("marker").exists(),
        "the mount went to the host directory"
    );
    assert!(mounts_mentioning(victim.to_str().unwrap()).is_empty());
    // It landed at the same path *inside* the rootfs instead.
    assert!(b
        .dir
        .join("rootfs")
        .join(victim.strip_prefix("/").unwrap())
        .is_dir());
    let _ = std::fs::remove_dir_all(&victim);
}

/// Masked and read-only paths cannot be undone from inside (no CAP_SYS_ADMIN by default).
#[test]
fn masked_and_readonly_paths_cannot_be_undone() {
    let h = Husk::new();
    let b = Bundle::new(&["sh", "-c", "umount /proc/timer_list 2>&1; mount -o remount,rw /proc/sys 2>&1; \
                                       mount --bind /dev/zero /proc/timer_list 2>&1; wc -c < /proc/timer_list; \
                                       echo 1 > /proc/sys/kernel/domainname 2>&1 || echo still-ro"], |_| {});
    let out = h.run_container(&unique("mask"), &b);
    let text = stdout(&out);
    assert!(text.lines().any(|l| l.trim() == "0"), "mask undone: {text}");
    assert!(text.contains("still-ro"), "{text}");
}
