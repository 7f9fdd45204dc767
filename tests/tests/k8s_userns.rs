//! A Kubernetes pod with `hostUsers: false` (issue 12), at the runtime's level. Debian's
//! containerd 1.6 has no CRI user-namespace support, so these tests write the configs that
//! Kubernetes >= 1.33 with containerd 2 hands the runtime for such a pod:
//! - the sandbox (pause): a new user namespace mapping 65536 ids at a high host offset, new
//!   network, ipc, uts, pid and mount namespaces (containerd 2 lets the runtime make the pod's
//!   network namespace, so that the pod's user namespace owns it);
//! - an app container: the sandbox's network, ipc, uts and user namespaces by path
//!   (`/proc/PID/ns/...`, containerd's `WithPodNamespaces`), with the pod's mappings repeated
//!   in `linux.uidMappings`/`gidMappings` (containerd's `WithUserNamespace`: runc accepts them
//!   when they match the joined namespace, refuses them otherwise);
//! - the pod's volumes as binds with options `rbind`, `rprivate`, `rw`/`ro`/`rro` and the pod's
//!   mappings as mount-level `uidMappings`/`gidMappings` (containerd's `WithMounts`, copying
//!   the kubelet's CRI mount mappings).

use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use husk_tests::*;

/// The pod's host offset: a multiple of 65536, far above the host's own ids (the kubelet
/// hands each pod such a block).
const POD_BASE: u32 = 65536 * 30_000;

fn pod_mappings() -> Value {
    json!([{"containerID": 0, "hostID": POD_BASE, "size": 65536}])
}

/// The sandbox: pause (here `sleep`) as 65535, read-only root, no new privileges, a new user
/// namespace with the pod's mappings and the pod's other namespaces.
fn sandbox_bundle() -> Bundle {
    Bundle::new(&["sleep", "600"], |c| {
        c["hostname"] = json!("k8s-pod");
        c["root"]["readonly"] = json!(true);
        c["process"]["user"] = json!({"uid": 65535, "gid": 65535});
        c["process"]["noNewPrivileges"] = json!(true);
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        for t in ["user", "network"] {
            if !ns.iter().any(|n| n["type"] == t) {
                ns.push(json!({ "type": t }));
            }
        }
        c["linux"]["uidMappings"] = pod_mappings();
        c["linux"]["gidMappings"] = pod_mappings();
    })
}

/// The pod's volumes on the host: `data` (rw) holding `owned0` (0:0), `owned1000`
/// (1000:1000) and `u1000/` (1000:1000); `config` (ro) holding `cfg`; `hosts`, the kubelet's
/// /etc/hosts file.
struct PodDirs {
    dir: PathBuf,
}

impl PodDirs {
    fn new() -> PodDirs {
        let dir = scratch("k8s-pod");
        let data = dir.join("data");
        std::fs::create_dir_all(data.join("u1000")).unwrap();
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::write(data.join("owned0"), "").unwrap();
        std::fs::write(data.join("owned1000"), "").unwrap();
        for p in ["owned1000", "u1000"] {
            chown(data.join(p), Some(1000), Some(1000)).unwrap();
        }
        std::fs::write(dir.join("config/cfg"), "from-configmap\n").unwrap();
        std::fs::write(dir.join("hosts"), "127.0.0.1 localhost k8s-pod\n").unwrap();
        PodDirs { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }
}

impl Drop for PodDirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A volume as containerd 2's `WithMounts` writes it for a pod with a user namespace.
fn volume(src: &Path, dst: &str, ro: bool) -> Value {
    json!({
        "destination": dst, "type": "bind", "source": src,
        "options": ["rbind", "rprivate", if ro { "ro" } else { "rw" }],
        "uidMappings": pod_mappings(),
        "gidMappings": pod_mappings(),
    })
}

/// An app container of the pod whose sandbox's init is `pid`: the sandbox's network, ipc,
/// uts and user namespaces by path, its own pid and mount namespaces, the pod's mappings,
/// CAP_NET_ADMIN added (namespaced capabilities are what `hostUsers: false` gives a pod),
/// and `edit` for the mounts.
fn app_bundle(pid: i32, edit: impl FnOnce(&mut Value)) -> Bundle {
    let b = Bundle::new(&["sleep", "600"], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        for n in ns.iter_mut() {
            let file = match n["type"].as_str().unwrap() {
                "network" => "net",
                "ipc" => "ipc",
                "uts" => "uts",
                _ => continue,
            };
            n["path"] = json!(format!("/proc/{pid}/ns/{file}"));
        }
        ns.push(json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}));
        c["linux"]["uidMappings"] = pod_mappings();
        c["linux"]["gidMappings"] = pod_mappings();
        c.as_object_mut().unwrap().remove("hostname");
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_NET_ADMIN"));
        }
        edit(c);
    });
    // Mount points in the host-owned rootfs, which the pod's root may not create.
    for d in ["data", "config", "config-rro", "plain"] {
        std::fs::create_dir_all(b.dir.join("rootfs").join(d)).unwrap();
    }
    std::fs::write(b.dir.join("rootfs/etc/hosts"), "").unwrap();
    b
}

fn start(h: &Husk, b: &Bundle, prefix: &str) -> (String, i32) {
    let id = unique(prefix);
    h.create(&id, b);
    h.ok(&["start", &id]);
    let pid = h.state(&id)["pid"].as_i64().unwrap() as i32;
    (id, pid)
}

fn ns_link(pid: i32, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn user_namespaced_pod_joins_the_sandbox_and_sees_its_volumes_idmapped() {
    let h = Husk::new();
    let sb = sandbox_bundle();
    let (_sb_id, sb_pid) = start(&h, &sb, "k8s-sandbox");
    let dirs = PodDirs::new();
    let app = app_bundle(sb_pid, |c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(volume(&dirs.path("data"), "/data", false));
        m.push(volume(&dirs.path("config"), "/config", true));
        m.push(volume(&dirs.path("hosts"), "/etc/hosts", false));
        // containerd's TreatRoMountsAsRro (Kubernetes' recursiveReadOnly): rro for a
        // read-only directory volume.
        let mut rro = volume(&dirs.path("config"), "/config-rro", true);
        rro["options"][2] = json!("rro");
        m.push(rro);
        // The control: the same volume without mappings shows the overflow ids.
        m.push(json!({
            "destination": "/plain", "type": "bind", "source": dirs.path("data"),
            "options": ["rbind", "rprivate", "rw"],
        }));
    });
    let (app_id, app_pid) = start(&h, &app, "k8s-app");

    // The pod's user namespace and the sandbox's network, ipc and uts namespaces.
    for ns in ["user", "net", "ipc", "uts"] {
        assert_eq!(ns_link(app_pid, ns), ns_link(sb_pid, ns), "{ns} namespace");
    }
    assert_ne!(ns_link(app_pid, "pid"), ns_link(sb_pid, "pid"));
    let script = "cat /proc/self/uid_map /proc/self/gid_map; hostname; \
        stat -c %u:%g /data /data/owned0 /data/owned1000 /config/cfg /etc/hosts /plain/owned0; \
        cat /config/cfg /etc/hosts; touch /data/by-root && echo wrote; \
        touch /config/x 2>/dev/null || echo ro-refused; \
        stat -c %u:%g /config-rro/cfg; touch /config-rro/x 2>/dev/null || echo rro-refused; \
        ip link set lo up && ip -o link show lo | grep -o '<[^>]*>'";
    let out = h.ok(&["exec", &app_id, "sh", "-c", script]);
    let maps: Vec<Vec<&str>> = out
        .lines()
        .take(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let base = POD_BASE.to_string();
    assert_eq!(
        maps,
        [["0", &base, "65536"], ["0", &base, "65536"]],
        "{out}"
    );
    let rest: Vec<&str> = out.lines().skip(2).collect();
    let want = [
        "k8s-pod",
        "0:0",
        "0:0",
        "1000:1000",
        "0:0",
        "0:0",
        "65534:65534",
        "from-configmap",
        "127.0.0.1 localhost k8s-pod",
        "wrote",
        "ro-refused",
        "0:0",
        "rro-refused",
        "<LOOPBACK,UP,LOWER_UP>",
    ];
    assert_eq!(rest, want, "{out}");

    // A non-root user of the pod writes through the idmapped volume too.
    let out = h.ok(&[
        "exec",
        "--user",
        "1000:1000",
        &app_id,
        "sh",
        "-c",
        "id -u; touch /data/u1000/by-1000 && echo wrote",
    ]);
    assert_eq!(out, "1000\nwrote\n");

    // What the pod wrote lands with the host's ids, not the pod's (POD_BASE + n).
    let owner = |p: &str| {
        let md = std::fs::metadata(dirs.path(p)).unwrap();
        (md.uid(), md.gid())
    };
    assert_eq!(owner("data/by-root"), (0, 0));
    assert_eq!(owner("data/u1000/by-1000"), (1000, 1000));
    assert!(
        !dirs.path("config/x").exists(),
        "the read-only volume took a write"
    );
}

#[test]
fn pod_mappings_that_differ_from_the_joined_user_namespace_are_refused() {
    // runc: a user namespace path with mappings is accepted only when they match it.
    let h = Husk::new();
    let sb = sandbox_bundle();
    let (_sb_id, sb_pid) = start(&h, &sb, "k8s-sandbox");
    let app = app_bundle(sb_pid, |c| {
        c["linux"]["uidMappings"] =
            json!([{"containerID": 0, "hostID": POD_BASE + 65536, "size": 65536}]);
    });
    let id = unique("k8s-app-bad");
    // stdio to a file: a container wrongly made would hold a pipe open.
    let log = app.dir.join("create.log");
    let file = std::fs::File::create(&log).unwrap();
    let st = h
        .command(&["create", "--bundle", app.dir.to_str().unwrap(), &id])
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .unwrap();
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(!st.success(), "accepted: {err}");
    assert!(
        err.contains(
            "user namespaces enabled, but both namespace path and non-matching mapping specified"
        ),
        "{err}"
    );
    assert!(!h.root.join(&id).exists(), "state directory left");
    assert!(cgroup_dirs_named(&id).is_empty(), "cgroup left");
}

#[test]
fn a_volume_the_pod_may_not_reach_unmapped_is_still_mounted() {
    // The kubelet's volume directories are root's, 0700 above them on the host: the bind
    // source is opened as the host's root before the app's init enters the pod's user
    // namespace, whose root could not reach it.
    let h = Husk::new();
    let sb = sandbox_bundle();
    let (_sb_id, sb_pid) = start(&h, &sb, "k8s-sandbox");
    let dirs = PodDirs::new();
    std::fs::set_permissions(&dirs.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let app = app_bundle(sb_pid, |c| {
        c["process"]["args"] = json!(["stat", "-c", "%u:%g", "/config/cfg"]);
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(volume(&dirs.path("config"), "/config", true));
    });
    let out = h.run_container(&unique("k8s-app"), &app);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "0:0\n");
}
