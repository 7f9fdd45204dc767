//! `linux.netDevices` (runtime-spec 1.2, issue 18): a host interface moved into the container's
//! network namespace (renamed, with its addresses, up), and back to the host on delete. Each
//! test makes its own veth pair with `ip link add`.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use husk_tests::*;

static N: AtomicU32 = AtomicU32::new(0);

/// A veth pair on the host, deleted when dropped (wherever its end went). Names fit the
/// kernel's 15 bytes: `hk<pid><n>` and its peer `...p`.
struct Veth {
    name: String,
    peer: String,
}

impl Veth {
    fn new() -> Veth {
        let name = format!(
            "hk{}x{}",
            std::process::id() % 1_000_000,
            N.fetch_add(1, Ordering::SeqCst)
        );
        let peer = format!("{name}p");
        ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
        Veth { name, peer }
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.peer])
            .output();
    }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip link show NAME` on the host: its output, or None when there is no such device here.
fn host_link(name: &str) -> Option<String> {
    let out = Command::new("ip")
        .args(["link", "show", name])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn with_devices(devices: Value) -> impl FnOnce(&mut Value) {
    move |c: &mut Value| c["linux"]["netDevices"] = devices
}

#[test]
fn moved_in_renamed_with_its_address_and_back_on_delete() {
    let v = Veth::new();
    ip(&["link", "set", &v.name, "mtu", "1420", "up"]);
    ip(&["addr", "add", "10.231.7.1/24", "dev", &v.name]);
    ip(&["addr", "add", "fd00:231::1/64", "dev", &v.name]);
    // Link-scoped: not taken along (runc's rule: permanent addresses of global scope only).
    ip(&[
        "addr",
        "add",
        "169.254.231.1/16",
        "scope",
        "link",
        "dev",
        &v.name,
    ]);
    let h = Husk::new();
    let b = Bundle::new(
        &["sleep", "100"],
        with_devices(json!({ v.name.as_str(): {"name": "ctr0"} })),
    );
    let id = unique("netdev");
    h.create(&id, &b);
    h.ok(&["start", &id]);
    assert!(host_link(&v.name).is_none(), "{} still on the host", v.name);
    let inside = h.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "ls /sys/class/net; cat /sys/class/net/ctr0/mtu /sys/class/net/ctr0/flags; ip addr show ctr0",
    ]);
    let lines: Vec<&str> = inside.lines().collect();
    assert!(lines.contains(&"ctr0"), "{inside}");
    assert!(!lines.contains(&v.name.as_str()), "{inside}");
    assert!(lines.contains(&"1420"), "mtu kept: {inside}");
    let flags = lines
        .iter()
        .find_map(|l| l.strip_prefix("0x"))
        .and_then(|f| u32::from_str_radix(f, 16).ok())
        .expect("flags");
    assert_eq!(flags & 1, 1, "set up inside: {inside}");
    assert!(
        inside.contains("inet 10.231.7.1/24"),
        "address kept: {inside}"
    );

    // Stopped, the container still holds it (its namespace lives until delete).
    h.ok(&["kill", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    assert!(host_link(&v.name).is_none());
    h.ok(&["delete", &id]);
    let back = host_link(&v.name).expect("back on the host under its own name after delete");
    assert!(back.contains("state DOWN"), "set down: {back}");
    assert!(back.contains("mtu 1420"), "{back}");
    assert!(host_link(&v.peer).is_some(), "the pair survived");
}

/// `run` in the foreground: the device keeps its name when `name` is not given, and is back
/// when run returns (run deletes the container).
#[test]
fn run_keeps_the_name_and_gives_the_device_back() {
    let v = Veth::new();
    let h = Husk::new();
    let b = Bundle::new(
        &["cat", "/proc/net/dev"],
        with_devices(json!({ v.name.as_str(): {} })),
    );
    let out = h.run_container(&unique("netdev"), &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("{}:", v.name)),
        "{}",
        stdout(&out)
    );
    assert!(host_link(&v.name).is_some(), "back on the host after run");
}

/// A namespace joined by path belongs to whoever made it: the device stays there after
/// delete, as runc does.
#[test]
fn a_joined_network_namespace_keeps_the_device() {
    let v = Veth::new();
    let ns = format!("{}ns", v.name);
    ip(&["netns", "add", &ns]);
    let h = Husk::new();
    let path = format!("/var/run/netns/{ns}");
    let b = Bundle::new(&["true"], |c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = json!(path);
            }
        }
        c["linux"]["netDevices"] = json!({ v.name.as_str(): {"name": "eth1"} });
    });
    let out = h.run_container(&unique("netdev"), &b);
    let there = Command::new("ip")
        .args(["-n", &ns, "link", "show", "eth1"])
        .output()
        .unwrap();
    let _ = Command::new("ip").args(["netns", "del", &ns]).output();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(there.status.success(), "eth1 should stay in {ns}");
    assert!(host_link(&v.name).is_none());
}

/// A create that fails after moving a device (the next one does not exist) moves it back and
/// leaves nothing behind; the error names linux.netDevices and the missing device.
#[test]
fn a_failed_create_gives_moved_devices_back() {
    let v = Veth::new();
    let h = Husk::new();
    let b = Bundle::new(
        &["true"],
        with_devices(json!({ v.name.as_str(): {}, "zz-missing0": {} })),
    );
    let id = unique("netdev");
    let out = h.run(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("linux.netDevices") && err.contains("zz-missing0"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(host_link(&v.name).is_some(), "moved back after the failure");
    assert!(!h.root.join(&id).exists(), "nothing left behind");
}

fn refused(edit: impl FnOnce(&mut Value), want: &str) {
    let h = Husk::new();
    let b = Bundle::new(&["true"], edit);
    let id = unique("netdev");
    let out = h.run(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("linux.netDevices") && err.contains(want),
        "want {want:?}: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!h.root.join(&id).exists(), "nothing left behind");
}

#[test]
fn bad_configs_are_refused_naming_the_field() {
    refused(
        |c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "network");
            c["linux"]["netDevices"] = json!({"eth9": {}});
        },
        "requires a network namespace",
    );
    refused(
        |c| {
            for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
                if n["type"] == "network" {
                    n["path"] = json!("/proc/self/ns/net");
                }
            }
            c["linux"]["netDevices"] = json!({"eth9": {}});
        },
        "runtime's own",
    );
    refused(with_devices(json!({"a/b": {}})), "\"a/b\" is not valid");
    refused(
        with_devices(json!({"eth9": {"name": "sixteen_chars_16"}})),
        "longer than 15 bytes",
    );
    refused(
        with_devices(json!({"eth8": {"name": "x0"}, "eth9": {"name": "x0"}})),
        "both be named \"x0\"",
    );
}

#[test]
fn features_reports_net_devices() {
    let h = Husk::new();
    let out: Value = serde_json::from_str(&h.ok(&["features"])).unwrap();
    assert_eq!(out["linux"]["netDevices"]["enabled"], json!(true));
}

/// `create` killed after the move (while a createRuntime hook runs): `delete --force` finds
/// the held namespace through the footprint, gives the device back and leaves no mount.
#[test]
fn delete_force_after_a_killed_create_gives_the_device_back() {
    let v = Veth::new();
    let h = Husk::new();
    let marker = scratch("netdev-hook").join("moved");
    let hook_pid = marker.with_file_name("pid");
    let script = format!(
        "echo $$ > {}; ip link show {} >/dev/null 2>&1 || touch {}; exec sleep 60",
        hook_pid.display(),
        v.name,
        marker.display()
    );
    let b = Bundle::new(&["true"], |c| {
        c["linux"]["netDevices"] = json!({ v.name.as_str(): {"name": "ctr0"} });
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    });
    let id = unique("netdev");
    let mut child = h
        .command(&["create", "--bundle", b.dir.to_str().unwrap(), &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..2000 {
        if marker.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        marker.exists(),
        "the hook never saw the device gone from the host"
    );
    let _ = child.kill();
    let _ = child.wait();
    h.ok(&["delete", "--force", &id]);
    assert!(
        host_link(&v.name).is_some(),
        "back on the host after delete --force"
    );
    assert!(!h.root.join(&id).exists(), "state directory left");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id), "mount left: {mounts}");
    // The hook's sleep (not in the container's cgroup), by the pid it wrote.
    if let Some(pid) = std::fs::read_to_string(&hook_pid)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    {
        // SAFETY: kill(2) of the hook process this test's config started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let _ = std::fs::remove_dir_all(marker.parent().unwrap());
}
