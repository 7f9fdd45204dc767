//! User namespaces all the way (issue 12): idmapped mounts (mount-level uidMappings/gidMappings,
//! `idmap`/`ridmap`), multi-range id maps, and what husk refuses.

use std::os::unix::fs::{chown, MetadataExt};
use std::path::Path;

use husk_tests::*;

const BASE: u32 = 500_000;

fn userns(c: &mut Value, base: u32) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": base, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": base, "size": 65536}]);
}

fn push_mount(c: &mut Value, m: Value) {
    c["mounts"].as_array_mut().unwrap().push(m);
}

/// A source directory with `root` (0:0) and `one` (1:1) files.
fn source_dir() -> std::path::PathBuf {
    let src = scratch("idmap-src");
    std::fs::write(src.join("root"), "").unwrap();
    std::fs::write(src.join("one"), "").unwrap();
    chown(src.join("one"), Some(1), Some(1)).unwrap();
    src
}

/// A bind mount of `src` on /vol with `options` and mount-level mappings of `size` ids from
/// container 0 to host `uid`/`gid`.
fn idmapped_bind(src: &Path, options: &[&str], uid: u32, gid: u32, size: u32) -> Value {
    json!({
        "destination": "/vol", "type": "bind", "source": src, "options": options,
        "uidMappings": [{"containerID": 0, "hostID": uid, "size": size}],
        "gidMappings": [{"containerID": 0, "hostID": gid, "size": size}],
    })
}

/// A bundle whose rootfs has the mount points /vol and /scratch (the container's root, mapped
/// to an unprivileged host id, cannot make them in the host-owned rootfs).
fn bundle(args: &[&str], edit: impl FnOnce(&mut Value)) -> Bundle {
    let b = Bundle::new(args, edit);
    for d in ["vol", "scratch"] {
        std::fs::create_dir_all(b.dir.join("rootfs").join(d)).unwrap();
    }
    b
}

fn run(b: &Bundle) -> (bool, String, String) {
    let h = Husk::new();
    let out = h.run_container(&unique("idmap"), b);
    (out.status.success(), stdout(&out), stderr(&out))
}

#[test]
fn idmapped_bind_shows_mapped_owners_and_writes_land_with_host_ids() {
    // What Kubernetes sends for a pod with hostUsers: false: the pod's user namespace, and its
    // volumes idmapped with the same mapping.
    let src = source_dir();
    let script = "stat -c %u:%g /vol/root /vol/one; touch /vol/new && echo wrote";
    let b = bundle(&["sh", "-c", script], |c| {
        userns(c, BASE);
        push_mount(c, idmapped_bind(&src, &["bind"], BASE, BASE, 65536));
    });
    let (ok, out, err) = run(&b);
    assert!(ok, "{err}");
    assert_eq!(out, "0:0\n1:1\nwrote\n");
    let md = std::fs::metadata(src.join("new")).unwrap();
    assert_eq!(
        (md.uid(), md.gid()),
        (0, 0),
        "write did not land with the host's ids"
    );
    let _ = std::fs::remove_dir_all(&src);
}

#[test]
fn without_idmap_the_same_bind_shows_overflow_ids() {
    // The control for the test above: the mapping is what makes the owners visible.
    let src = source_dir();
    let b = bundle(&["stat", "-c", "%u:%g", "/vol/root"], |c| {
        userns(c, BASE);
        push_mount(
            c,
            json!({"destination": "/vol", "type": "bind", "source": src, "options": ["bind"]}),
        );
    });
    let (ok, out, err) = run(&b);
    assert!(ok, "{err}");
    assert_eq!(out, "65534:65534\n");
    let _ = std::fs::remove_dir_all(&src);
}

#[test]
fn idmap_option_alone_uses_the_containers_mapping() {
    let src = source_dir();
    let b = bundle(&["stat", "-c", "%u:%g", "/vol/root", "/vol/one"], |c| {
        userns(c, BASE + 100_000);
        push_mount(
            c,
            json!({"destination": "/vol", "type": "bind", "source": src, "options": ["bind", "idmap"]}),
        );
    });
    let (ok, out, err) = run(&b);
    assert!(ok, "{err}");
    assert_eq!(out, "0:0\n1:1\n");
    let _ = std::fs::remove_dir_all(&src);
}

#[test]
fn idmapped_bind_without_a_user_namespace() {
    // As runc allows: host files owned by 0 show as 1000 through the mount.
    let src = source_dir();
    let b = bundle(&["stat", "-c", "%u:%g", "/vol/root", "/vol/one"], |c| {
        push_mount(c, idmapped_bind(&src, &["bind"], 1000, 2000, 10));
    });
    let (ok, out, err) = run(&b);
    assert!(ok, "{err}");
    assert_eq!(out, "1000:2000\n1001:2001\n");
    let _ = std::fs::remove_dir_all(&src);
}

/// Mounts a tmpfs with a root-owned file at `dir/sub`; unmounted when dropped.
struct SubMount(std::path::PathBuf);

impl SubMount {
    fn new(dir: &Path) -> SubMount {
        let sub = dir.join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(&sub)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::write(sub.join("file"), "").unwrap();
        SubMount(sub)
    }
}

impl Drop for SubMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn rbind_with(option: &str) -> String {
    let src = source_dir();
    let sub = SubMount::new(&src);
    let b = bundle(
        &["stat", "-c", "%u:%g", "/vol/root", "/vol/sub/file"],
        |c| {
            userns(c, BASE);
            push_mount(
                c,
                idmapped_bind(&src, &["rbind", option], BASE, BASE, 65536),
            );
        },
    );
    let (ok, out, err) = run(&b);
    drop(sub);
    let _ = std::fs::remove_dir_all(&src);
    assert!(ok, "{err}");
    out
}

#[test]
fn ridmap_maps_every_mount_of_the_tree() {
    assert_eq!(rbind_with("ridmap"), "0:0\n0:0\n");
}

#[test]
fn idmap_on_an_rbind_maps_only_its_top_mount() {
    assert_eq!(rbind_with("idmap"), "0:0\n65534:65534\n");
}

#[test]
fn idmapped_tmpfs() {
    // A tmpfs made by husk (as the host's root) and idmapped: its root shows as the
    // container's root, who can write to it.
    let b = bundle(
        &[
            "sh",
            "-c",
            "stat -c %u:%g /scratch; touch /scratch/f && echo wrote",
        ],
        |c| {
            userns(c, BASE);
            push_mount(
                c,
                json!({
                    "destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755", "idmap"],
                }),
            );
        },
    );
    let (ok, out, err) = run(&b);
    assert!(ok, "{err}");
    assert_eq!(out, "0:0\nwrote\n");
}

fn refused(edit: impl FnOnce(&mut Value), want: &str) {
    let h = Husk::new();
    let b = bundle(&["true"], edit);
    let id = unique("idmap-bad");
    let out = h.run_container(&id, &b);
    assert!(!out.status.success(), "accepted: {}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains(want), "wanted {want:?} in: {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(!h.run(&["state", &id]).status.success(), "{id} left behind");
}

#[test]
fn idmap_on_a_proc_mount_is_refused() {
    refused(
        |c| {
            userns(c, BASE);
            let m = c["mounts"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|m| m["type"] == "proc")
                .unwrap();
            m["options"] = json!(["idmap"]);
        },
        "id-mapped mounts are only supported for bind mounts and tmpfs",
    );
}

#[test]
fn only_uid_mappings_on_a_mount_is_refused() {
    refused(
        |c| {
            push_mount(
                c,
                json!({
                    "destination": "/vol", "type": "bind", "source": "/etc", "options": ["bind"],
                    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
                }),
            );
        },
        "must have both uidMappings and gidMappings",
    );
}

#[test]
fn overlapping_mount_mappings_are_refused() {
    refused(
        |c| {
            push_mount(
                c,
                json!({
                    "destination": "/vol", "type": "bind", "source": "/etc", "options": ["bind"],
                    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10},
                                    {"containerID": 5, "hostID": 5000, "size": 10}],
                    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
                }),
            );
        },
        "uidMappings[1]: containerID range overlaps uidMappings[0]",
    );
}

#[test]
fn idmap_without_any_mapping_is_refused() {
    refused(
        |c| {
            push_mount(
                c,
                json!({"destination": "/vol", "type": "bind", "source": "/etc", "options": ["bind", "idmap"]}),
            );
        },
        "needs the container's linux.uidMappings",
    );
}

fn idmap_enabled(features: &[u8]) -> Value {
    let f: Value = serde_json::from_slice(features).expect("features JSON");
    f["linux"]["mountExtensions"]["idmap"]["enabled"].clone()
}

#[test]
fn features_reports_idmap_from_the_kernel() {
    let out = std::process::Command::new(husk_bin())
        .arg("features")
        .output()
        .unwrap();
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    // This host's kernel (6.x) idmaps tmpfs and ext4/btrfs/xfs: the probe must say so. It is
    // what containerd 2 reads (with "user" in linux.namespaces) before it lets the kubelet
    // start pods with hostUsers: false on this runtime.
    assert_eq!(idmap_enabled(&out.stdout), json!(true), "{f}");
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&json!("user")));
    let opts = f["mountOptions"].as_array().unwrap();
    assert!(opts.contains(&json!("idmap")) && opts.contains(&json!("ridmap")));
}

#[test]
fn features_idmap_is_false_where_the_kernel_refuses_it() {
    // The probe, not a constant: `husk features` run in a container (as the host's root,
    // with the capabilities the probe needs) says true, and false when seccomp makes mount_setattr(2) fail with
    // ENOSYS, as on a kernel without idmapped mounts.
    // What the probe needs: a user namespace with another id mapped, and mounts.
    let caps = json!([
        "CAP_SYS_ADMIN",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_DAC_OVERRIDE"
    ]);
    let probe = |deny: bool| {
        let b = Bundle::new(&["/husk", "features"], |c| {
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set] = caps.clone();
            }
            push_mount(
                c,
                json!({"destination": "/husk", "type": "bind", "source": husk_bin(), "options": ["bind", "ro"]}),
            );
            if deny {
                c["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["mount_setattr"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}],
                });
            }
        });
        let h = Husk::new();
        let out = h.run_container(&unique("features"), &b);
        assert!(out.status.success(), "{}", stderr(&out));
        idmap_enabled(&out.stdout)
    };
    assert_eq!(probe(false), json!(true), "the control");
    assert_eq!(probe(true), json!(false));
}

#[test]
fn features_idmap_is_false_for_a_non_root_user() {
    // husk refuses idmapped mounts when not root (they need CAP_SYS_ADMIN in the initial user
    // namespace), so `features` run by a user must not offer them.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(husk_bin())
        .arg("features")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(idmap_enabled(&out.stdout), json!(false));
}

#[test]
fn several_mapping_ranges_are_written_and_visible() {
    let b = bundle(&["cat", "/proc/self/uid_map", "/proc/self/gid_map"], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": BASE, "size": 1000},
            {"containerID": 1000, "hostID": BASE + 200_000, "size": 64536},
        ]);
        c["linux"]["gidMappings"] = json!([
            {"containerID": 0, "hostID": BASE, "size": 5},
            {"containerID": 5, "hostID": BASE + 300_000, "size": 1},
            {"containerID": 6, "hostID": BASE + 6, "size": 65530},
        ]);
    });
    let (ok, out, err) = run(&b);
    assert!(ok, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let want = [
        ["0", "500000", "1000"],
        ["1000", "700000", "64536"],
        ["0", "500000", "5"],
        ["5", "800000", "1"],
        ["6", "500006", "65530"],
    ];
    assert_eq!(rows, want, "{out}");
}

#[test]
fn overlapping_container_ranges_are_refused() {
    refused(
        |c| {
            userns(c, BASE);
            c["linux"]["uidMappings"] = json!([
                {"containerID": 0, "hostID": BASE, "size": 1000},
                {"containerID": 999, "hostID": BASE + 5000, "size": 10},
            ]);
        },
        "linux.uidMappings[1]: containerID range overlaps linux.uidMappings[0]",
    );
}

#[test]
fn overlapping_host_ranges_and_empty_ranges_are_refused() {
    refused(
        |c| {
            userns(c, BASE);
            c["linux"]["gidMappings"] = json!([
                {"containerID": 0, "hostID": BASE, "size": 1000},
                {"containerID": 1000, "hostID": BASE + 10, "size": 10},
            ]);
        },
        "linux.gidMappings[1]: hostID range overlaps linux.gidMappings[0]",
    );
    refused(
        |c| {
            userns(c, BASE);
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": BASE, "size": 0}]);
        },
        "linux.uidMappings[0].size: must be greater than zero",
    );
}

#[test]
fn a_new_user_namespace_needs_mappings_and_mappings_need_one_husk_spec_rules() {
    refused(
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
        },
        "linux.uidMappings: a new user namespace requires at least one mapping",
    );
    refused(
        |c| {
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": BASE, "size": 10}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": BASE, "size": 10}]);
        },
        "mappings are set but linux.namespaces has no user namespace",
    );
}

/// A running container with its own user namespace (and network namespace owned by it), as a
/// Kubernetes pod sandbox or a Podman pod's infra container: returns (husk, id, init pid).
fn sandbox(bundle: &Bundle) -> (Husk, String, i32) {
    let h = Husk::new();
    let id = unique("sandbox");
    h.create(&id, bundle);
    h.ok(&["start", &id]);
    let pid = h.state(&id)["pid"].as_i64().unwrap() as i32;
    (h, id, pid)
}

#[test]
fn joining_another_containers_user_and_network_namespaces() {
    let sb = bundle(&["sleep", "60"], |c| userns(c, BASE + 200_000));
    let (_h, _id, pid) = sandbox(&sb);
    // A source only the host's root can reach (0700 parent): opened before the init enters
    // the user namespace, so its mapped root need not reach it.
    let private = scratch("private");
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    std::fs::create_dir_all(private.join("data")).unwrap();
    std::fs::write(private.join("data/hello"), "hi\n").unwrap();
    let script = "cat /proc/self/uid_map; readlink /proc/self/ns/net; echo $$; cat /vol/hello";
    let b = bundle(&["sh", "-c", script], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        // The user namespace listed after the one it owns, as clients do write it.
        ns.push(json!({"type": "network", "path": format!("/proc/{pid}/ns/net")}));
        ns.push(json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}));
        push_mount(
            c,
            json!({"destination": "/vol", "type": "bind", "source": private.join("data"), "options": ["rbind", "ro"]}),
        );
    });
    let (ok, out, err) = run(&b);
    let host_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let _ = std::fs::remove_dir_all(&private);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["0", "700000", "65536"],
        "{out}"
    );
    assert_eq!(lines[1], host_net.to_str().unwrap(), "{out}");
    assert_eq!(lines[2], "1", "{out}");
    assert_eq!(lines[3], "hi", "{out}");
}

#[test]
fn bind_source_only_root_can_reach_in_a_new_user_namespace() {
    let private = scratch("private");
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    std::fs::create_dir_all(private.join("data")).unwrap();
    std::fs::write(private.join("data/hello"), "hi\n").unwrap();
    let b = bundle(&["cat", "/vol/hello"], |c| {
        userns(c, BASE);
        push_mount(
            c,
            json!({"destination": "/vol", "type": "bind", "source": private.join("data"), "options": ["bind"]}),
        );
    });
    let (ok, out, err) = run(&b);
    let _ = std::fs::remove_dir_all(&private);
    assert!(ok, "{err}");
    assert_eq!(out, "hi\n");
}

#[test]
fn joining_user_then_ipc_uts_network_and_pid_of_another_container() {
    let sb = bundle(&["sleep", "60"], |c| {
        userns(c, BASE + 250_000);
        c["hostname"] = json!("sandbox");
    });
    let (_h, _id, pid) = sandbox(&sb);
    let b = bundle(
        &[
            "sh",
            "-c",
            "hostname; readlink /proc/self/ns/ipc; id -u; readlink /proc/self/ns/pid",
        ],
        |c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| !["network", "ipc", "uts", "pid"].contains(&n["type"].as_str().unwrap()));
            ns.insert(
                0,
                json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}),
            );
            for (t, f) in [
                ("ipc", "ipc"),
                ("uts", "uts"),
                ("network", "net"),
                ("pid", "pid"),
            ] {
                ns.push(json!({"type": t, "path": format!("/proc/{pid}/ns/{f}")}));
            }
            c.as_object_mut().unwrap().remove("hostname");
        },
    );
    let h = Husk::new();
    let o = h.run_container(&unique("join"), &b);
    let (ok, out, err) = (o.status.success(), stdout(&o), stderr(&o));
    assert!(ok, "{err}");
    let ipc = std::fs::read_link(format!("/proc/{pid}/ns/ipc")).unwrap();
    let pidns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_eq!(
        out,
        format!("sandbox\n{}\n0\n{}\n", ipc.display(), pidns.display())
    );
}

#[test]
fn idmap_option_in_a_user_namespace_joined_by_path_uses_its_mapping() {
    // As runc: without linux.uidMappings, a joined user namespace's own maps are the
    // container's, and an `idmap` mount follows them.
    let sb = bundle(&["sleep", "60"], |c| userns(c, BASE + 300_000));
    let (_h, _id, pid) = sandbox(&sb);
    let src = source_dir();
    let b = bundle(&["stat", "-c", "%u:%g", "/vol/root", "/vol/one"], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}));
        push_mount(
            c,
            json!({"destination": "/vol", "type": "bind", "source": src, "options": ["bind", "idmap"]}),
        );
    });
    let (ok, out, err) = run(&b);
    let _ = std::fs::remove_dir_all(&src);
    assert!(ok, "{err}");
    assert_eq!(out, "0:0\n1:1\n");
}
