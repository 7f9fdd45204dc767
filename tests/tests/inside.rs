//! What a process sees from inside a real container: pid, hostname, mounts, /dev, masked and
//! readonly paths, rlimits, user, capabilities, umask, oom_score_adj, sysctls, fds.

use husk_tests::*;

/// Runs `script` with `sh -c` in a fresh container and returns (exit code, stdout, stderr).
fn inside(script: &str, edit: impl FnOnce(&mut Value)) -> (i32, String, String) {
    let h = Husk::new();
    let b = Bundle::new(&["sh", "-c", script], edit);
    let out = h.run_container(&unique("in"), &b);
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

fn ok_inside(script: &str, edit: impl FnOnce(&mut Value)) -> String {
    let (code, out, err) = inside(script, edit);
    assert_eq!(code, 0, "script failed: {err}\nstdout: {out}");
    out
}

fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn init_is_pid_1_with_its_hostname_env_and_cwd() {
    let out = ok_inside("echo $$; hostname; echo $FOO; pwd", |c| {
        c["hostname"] = json!("husky");
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("FOO=bar"));
        c["process"]["cwd"] = json!("/tmp");
    });
    assert_eq!(out, "1\nhusky\nbar\n/tmp\n");
}

#[test]
fn missing_cwd_is_created() {
    let out = ok_inside("pwd", |c| {
        c["process"]["cwd"] = json!("/work/dir");
        c["root"]["readonly"] = json!(false);
    });
    assert_eq!(out, "/work/dir\n");
}

#[test]
fn standard_mounts_are_in_place() {
    let out = ok_inside("cat /proc/self/mountinfo", |_| {});
    let mount = |dest: &str| {
        out.lines()
            .find(|l| l.split(' ').nth(4) == Some(dest))
            .unwrap_or_else(|| panic!("no mount at {dest}:\n{out}"))
            .to_string()
    };
    assert!(mount("/proc").contains(" - proc "));
    assert!(mount("/dev").contains(" - tmpfs "));
    assert!(mount("/dev/pts").contains(" - devpts "));
    assert!(mount("/dev/shm").contains(" - tmpfs "));
    assert!(mount("/dev/mqueue").contains(" - mqueue "));
    let sys = mount("/sys");
    assert!(
        sys.contains(" - sysfs ") && sys.split(' ').nth(5).unwrap().starts_with("ro"),
        "{sys}"
    );
    // Only the container's tree: no mount point names a host path.
    assert!(
        out.lines()
            .all(|l| !l.split(' ').nth(4).unwrap_or("").contains("husk-tests")),
        "host paths visible:\n{out}"
    );
    // The cgroup tree is read-only, as the spec's options say.
    assert!(
        mount("/sys/fs/cgroup")
            .split(' ')
            .nth(5)
            .unwrap()
            .starts_with("ro"),
        "{out}"
    );
}

#[test]
fn dev_has_the_default_devices_and_links() {
    let out = ok_inside(
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
         for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done; echo x > /dev/null && echo null-ok",
        |_| {},
    );
    for line in [
        "/dev/null character special file 1:3 666",
        "/dev/zero character special file 1:5 666",
        "/dev/full character special file 1:7 666",
        "/dev/random character special file 1:8 666",
        "/dev/urandom character special file 1:9 666",
        "/dev/tty character special file 5:0 666",
        "pts/ptmx",
        "/proc/self/fd",
        "/proc/self/fd/0",
        "/proc/self/fd/1",
        "/proc/self/fd/2",
        "null-ok",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing {line:?} in:\n{out}"
        );
    }
}

#[test]
fn spec_devices_are_created() {
    let out = ok_inside("stat -c '%n %F %t:%T %a %u:%g' /dev/fuse", |c| {
        c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o620, "uid": 0, "gid": 5}]);
    });
    assert_eq!(out, "/dev/fuse character special file a:e5 620 0:5\n");
}

#[test]
fn masked_and_readonly_paths_hold() {
    let out = ok_inside(
        "wc -c < /proc/timer_list; ls /proc/acpi | wc -l; ls /sys/firmware | wc -l; \
         (echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo writable || echo ro; \
         grep ' /proc/sys ' /proc/self/mountinfo | cut -d' ' -f6",
        |_| {},
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "/proc/timer_list not masked: {out}");
    assert_eq!(lines[1].trim(), "0", "/proc/acpi not masked");
    assert_eq!(lines[2].trim(), "0", "/sys/firmware not masked");
    assert_eq!(lines[3], "ro");
    assert!(lines[4].starts_with("ro"), "/proc/sys not read-only: {out}");
}

#[test]
fn rlimits_are_applied() {
    let out = ok_inside("grep 'Max open files' /proc/self/limits; ulimit -n", |c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 777, "hard": 888}]);
    });
    let mut lines = out.lines();
    let limits: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&limits[3..5], &["777", "888"], "{out}");
    assert_eq!(lines.next(), Some("777"));
}

#[test]
fn user_groups_and_umask() {
    let out = ok_inside(
        "cat /proc/self/status; umask; touch /tmp/f; stat -c '%u:%g %a' /tmp/f",
        |c| {
            c["process"]["user"] =
                json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027});
            c["root"]["readonly"] = json!(false);
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}));
        },
    );
    assert_eq!(status_field(&out, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out, "Gid"), "1001\t1001\t1001\t1001");
    assert_eq!(status_field(&out, "Groups"), "10 20");
    assert!(out.contains("\n0027\n"), "{out}");
    assert!(out.ends_with("1000:1001 640\n"), "{out}");
}

#[test]
fn capabilities_all_five_sets() {
    let out = ok_inside("cat /proc/self/status", |c| {
        let caps = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        c["process"]["capabilities"] = json!({
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": ["CAP_NET_BIND_SERVICE"], "ambient": ["CAP_NET_BIND_SERVICE"],
        });
    });
    // CHOWN=0, KILL=5, NET_BIND_SERVICE=10
    assert_eq!(status_field(&out, "CapBnd"), "0000000000000421");
    assert_eq!(status_field(&out, "CapPrm"), "0000000000000421");
    assert_eq!(status_field(&out, "CapEff"), "0000000000000421");
    assert_eq!(status_field(&out, "CapInh"), "0000000000000400");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000400");
}

#[test]
fn non_root_user_keeps_ambient_capabilities() {
    let out = ok_inside("cat /proc/self/status", |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        let caps = json!(["CAP_NET_BIND_SERVICE"]);
        c["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps});
    });
    assert_eq!(status_field(&out, "CapEff"), "0000000000000400");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000400");
}

#[test]
fn oom_score_adj_and_no_new_privs() {
    let out = ok_inside(
        "cat /proc/self/oom_score_adj; grep NoNewPrivs /proc/self/status",
        |c| {
            c["process"]["oomScoreAdj"] = json!(123);
            c["process"]["noNewPrivileges"] = json!(true);
        },
    );
    assert_eq!(out, "123\nNoNewPrivs:\t1\n");
}

#[test]
fn sysctls_are_written_in_the_container_namespaces() {
    let out = ok_inside(
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
        |c| {
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
        },
    );
    assert_eq!(out, "1\n1234\n");
    // ... and not on the host.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni")
            .unwrap()
            .trim(),
        "1234"
    );
}

#[test]
fn readonly_root_and_bind_mounts() {
    let host = scratch("bind");
    std::fs::write(host.join("hello"), "from host\n").unwrap();
    let out = ok_inside("cat /data/hello; (touch /data/x) 2>/dev/null && echo rw-data || echo ro-data; (touch /x) 2>/dev/null && echo rw-root || echo ro-root", |c| {
        c["root"]["readonly"] = json!(true);
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": host.to_str().unwrap(), "options": ["rbind", "ro"]}));
    });
    assert_eq!(out, "from host\nro-data\nro-root\n");
    let _ = std::fs::remove_dir_all(&host);
}

#[test]
fn no_husk_descriptor_reaches_the_container() {
    let out = ok_inside("ls /proc/self/fd", |_| {});
    let fds: Vec<&str> = out.split_whitespace().collect();
    // ls itself holds one descriptor for the directory it lists.
    assert!(
        fds.len() <= 4 && fds.starts_with(&["0", "1", "2"]),
        "leaked fds: {fds:?}"
    );
}

#[test]
fn preserved_fds_are_passed_through() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let h = Husk::new();
    let b = Bundle::new(&["sh", "-c", "cat <&3"], |_| {});
    let data = scratch("fd").join("data");
    std::fs::write(&data, "through fd 3\n").unwrap();
    let file = std::fs::File::open(&data).unwrap();
    let raw = file.as_raw_fd();
    let mut cmd = h.command(&[
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        b.dir.to_str().unwrap(),
        &unique("fds"),
    ]);
    // SAFETY: dup2 between fork and exec only touches the child's descriptor table.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec: clear it explicitly.
            if libc::dup2(raw, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "through fd 3\n");
}

#[test]
fn user_namespace_with_mappings() {
    let out = ok_inside(
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/x && stat -c %u /tmp/x",
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            c["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
            // sysfs cannot be mounted in a user namespace that does not own the network namespace
            // of the host... it does own the new one here.
        },
    );
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        &fields[..6],
        &["0", "200000", "65536", "0", "200000", "65536"],
        "{out}"
    );
    assert_eq!(fields[6], "0");
    assert_eq!(fields[7], "0");
}

#[test]
fn time_namespace_offsets() {
    let out = ok_inside("cut -d. -f1 /proc/uptime", |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400000, "nanosecs": 0}});
    });
    assert!(
        out.trim().parse::<u64>().unwrap() >= 86_400_000,
        "uptime {out}"
    );
}

#[test]
fn no_pivot_runs_too() {
    let h = Husk::new();
    let b = Bundle::new(&["sh", "-c", "echo $$"], |_| {});
    let out = h.run(&[
        "run",
        "--no-pivot",
        "--bundle",
        b.dir.to_str().unwrap(),
        &unique("nopivot"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1\n");
}

#[test]
fn no_mount_namespace_leaves_no_host_mounts() {
    let h = Husk::new();
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "cat /proc/self/status | grep -c Pid; ls /dev/null",
        ],
        |c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "mount");
            // Masking and read-only paths need a mount namespace of the container's own.
            c["linux"]["maskedPaths"] = json!([]);
            c["linux"]["readonlyPaths"] = json!([]);
        },
    );
    let rootfs = b.dir.join("rootfs");
    let out = h.run_container(&unique("nomnt"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("/dev/null"));
    assert!(
        mounts_mentioning(rootfs.to_str().unwrap()).is_empty(),
        "mounts left on the host: {:?}",
        mounts_mentioning(rootfs.to_str().unwrap())
    );
}

#[test]
fn rootfs_propagation_modes() {
    for mode in [
        "shared",
        "rshared",
        "slave",
        "private",
        "unbindable",
        "runbindable",
    ] {
        let out = ok_inside("awk '$5 == \"/\"' /proc/self/mountinfo", |c| {
            c["linux"]["rootfsPropagation"] = json!(mode)
        });
        let fields = out.split(" - ").next().unwrap_or_default().to_string();
        match mode {
            "shared" | "rshared" => assert!(fields.contains("shared:"), "{mode}: {out}"),
            "unbindable" | "runbindable" => assert!(fields.contains("unbindable"), "{mode}: {out}"),
            "private" => assert!(
                !fields.contains("shared:") && !fields.contains("master:"),
                "{mode}: {out}"
            ),
            // slave of the host's `/`: "master:" when the host's is shared (not in every sandbox).
            _ => assert!(!fields.contains("shared:"), "{mode}: {out}"),
        }
    }
}

#[test]
fn seccomp_profile_blocks_with_the_requested_errno() {
    // getcwd gets ENOENT (2); husk's own setup must not trip over the profile.
    let (code, out, err) = inside("realpath .; echo pwd-exit=$?", |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2}]
        });
    });
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("pwd-exit=1") || err.contains("No such file"),
        "getcwd was not blocked: {out} {err}"
    );
}

#[test]
fn proc_and_sys_in_a_user_namespace_without_its_own_network() {
    // The host's network namespace is not owned by the container's user namespace, so sysfs
    // cannot be mounted: /sys comes from a read-only recursive bind instead; /proc is the
    // container's own.
    let out = ok_inside("echo $$; ls /sys/class >/dev/null && echo sys-ok; grep ' /sys ' /proc/self/mountinfo | cut -d' ' -f6", |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "{out}");
    assert_eq!(lines[1], "sys-ok", "{out}");
    assert!(lines[2].starts_with("ro"), "/sys not read-only: {out}");
}

#[test]
fn joined_user_namespace_with_a_new_pid_namespace() {
    // A user namespace made by someone else (as a Podman pod's infra container does), joined by
    // path, with new pid and other namespaces made inside it.
    let mut holder = std::process::Command::new("unshare")
        .args(["--user", "sleep", "60"])
        .spawn()
        .expect("unshare from util-linux");
    std::thread::sleep(std::time::Duration::from_millis(200));
    for map in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{}/{map}", holder.id()), "0 400000 65536\n").unwrap();
    }
    let userns = format!("/proc/{}/ns/user", holder.id());
    let (code, out, err) = inside("echo $$; cat /proc/self/uid_map; id -u", |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user", "path": userns}));
    });
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(code, 0, "{err}");
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields, ["1", "0", "400000", "65536", "0"], "{out}");
}

#[test]
fn tmpcopyup_tmpfs_starts_with_the_image_content() {
    // What Podman asks for with --read-only and --tmpfs.
    let b_edit = |c: &mut Value| {
        c["root"]["readonly"] = json!(true);
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/run", "type": "tmpfs", "source": "tmpfs",
            "options": ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup", "mode=755"]
        }));
    };
    let h = Husk::new();
    let b = Bundle::new(&["sh", "-c", "ls -a /run; cat /run/sub/file; ls -l /run/link | cut -d'>' -f2; touch /run/new && echo writable; awk '$5 == \"/run\"' /proc/self/mountinfo"], b_edit);
    let run = b.dir.join("rootfs/run");
    std::fs::create_dir_all(run.join("sub")).unwrap();
    std::fs::write(run.join("sub/file"), "from the image\n").unwrap();
    std::fs::write(run.join("keep"), "").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", run.join("link")).unwrap();
    let out = h.run_container(&unique("copyup"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "keep",
        "sub",
        "from the image",
        " /etc/passwd",
        "writable",
        " - tmpfs ",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // The image itself is untouched.
    assert!(!run.join("new").exists());
}
