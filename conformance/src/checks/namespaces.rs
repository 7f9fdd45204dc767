//! config-linux.md Namespaces, User namespace mappings and Sysctl; config.md Hostname and
//! Domainname. Namespaces are compared from outside by their /proc/PID/ns/* links.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

use super::{lines, Check, Ctx, OrFail, Outcome, Problem};
use crate::runtime::{wait_until, SETTLE};

pub const CHECKS: &[Check] = &[
    Check {
        name: "hostname",
        spec: "config.md Hostname: it changes the hostname in the container UTS namespace (a \
               new one here), not the host's",
        run: hostname,
    },
    Check {
        name: "domainname",
        spec: "config.md Domainname (runtime-spec 1.1): it changes the domainname in the \
               container UTS namespace (a new one here), not the host's",
        run: domainname,
    },
    Check {
        name: "ns_pid",
        spec: "config-linux.md Namespaces: with a new pid namespace the container process \
               only sees its own processes; it is pid 1",
        run: ns_pid,
    },
    Check {
        name: "ns_new",
        spec: "config-linux.md Namespaces: without a path the runtime MUST create a new \
               container namespace of that type (pid, network, ipc, uts, mount)",
        run: ns_new,
    },
    Check {
        name: "ns_path",
        spec: "config-linux.md Namespaces path: the runtime MUST place the container process \
               in the namespace associated with that path (a network namespace bind mount)",
        run: ns_path,
    },
    Check {
        name: "ns_inherit",
        spec: "config-linux.md Namespaces: if a namespace type is not in the namespaces array \
               the container MUST inherit the runtime namespace of that type (network)",
        run: ns_inherit,
    },
    Check {
        name: "sysctl",
        spec: "config-linux.md Sysctl: the kernel parameters are modified for the container \
               (net.* in its new network namespace), not for the host",
        run: sysctl,
    },
    Check {
        name: "userns_mappings",
        spec: "config-linux.md User namespace mappings: uidMappings/gidMappings map \
               containerID..+size to hostID..+size (uid_map/gid_map inside, the process's \
               uid outside)",
        run: userns_mappings,
    },
];

const FOREVER: &str = "while :; do sleep 1; done";

fn ns_link(pid: &str, ty: &str) -> Result<String, Problem> {
    let path = format!("/proc/{pid}/ns/{ty}");
    fs::read_link(&path)
        .map(|l| l.to_string_lossy().into_owned())
        .or_fail(&format!("reading {path}"))
}

fn hostname(ctx: &Ctx) -> Outcome {
    uts_name(ctx, "hostname", "conf-host")
}

fn domainname(ctx: &Ctx) -> Outcome {
    uts_name(ctx, "domainname", "conf.example")
}

/// Sets the config property `key` (also the name of its /proc/sys/kernel file) to `value`
/// in a new UTS namespace and reads it back inside and on the host.
fn uts_name(ctx: &Ctx, key: &str, value: &str) -> Outcome {
    let proc_file = format!("/proc/sys/kernel/{key}");
    let host_before = fs::read_to_string(&proc_file).or_fail(&format!("reading {proc_file}"))?;
    let mut b = ctx.bundle(key)?;
    if key == "domainname" {
        // domainname is a runtime-spec 1.1 property.
        b.config["ociVersion"] = json!("1.1.0");
    }
    b.config[key] = json!(value);
    b.config["process"]["args"] = json!(["cat", proc_file]);
    let out = ctx.output(&b)?;
    ensure!(
        out.trim() == value,
        "the {key} inside is {:?}, want {value:?}",
        out.trim()
    );
    let host_after = fs::read_to_string(&proc_file).or_fail(&format!("reading {proc_file}"))?;
    ensure!(
        host_after == host_before,
        "the host's {key} changed to {:?}",
        host_after.trim()
    );
    Ok(())
}

fn ns_pid(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("ns-pid")?;
    b.sh("echo $$; ls /proc | grep -c '^[0-9]'");
    let out = ctx.output(&b)?;
    let got = lines(&out);
    ensure!(
        got.first() == Some(&"1"),
        "the process is pid {got:?}, want 1"
    );
    // The shell and its `ls` and `grep` children: nothing of the host's.
    let seen = got.get(1).and_then(|n| n.parse::<u32>().ok());
    ensure!(
        seen.is_some_and(|n| n <= 3),
        "the container sees {seen:?} processes"
    );
    Ok(())
}

fn ns_new(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("ns-new")?;
    b.sh(FOREVER);
    let c = ctx.container(&b);
    c.create()?;
    c.start()?;
    let pid = c.pid()?.to_string();
    let shared: Vec<&str> = ["pid", "net", "ipc", "uts", "mnt"]
        .into_iter()
        .filter(|ty| ns_link(&pid, ty).ok() == ns_link("self", ty).ok())
        .collect();
    ensure!(
        shared.is_empty(),
        "the container shares the host's {} namespace(s)",
        shared.join(", ")
    );
    Ok(())
}

/// A named network namespace made with `ip netns add`, deleted on drop.
struct NetNs {
    ip: &'static str,
    name: String,
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new(self.ip)
            .args(["netns", "delete", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

fn ns_path(ctx: &Ctx) -> Outcome {
    let Some(ip) = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        return Err(Problem::Skip("no `ip` to make a network namespace".into()));
    };
    let netns = NetNs {
        ip,
        name: ctx.id("netns"),
    };
    let made = Command::new(ip)
        .args(["netns", "add", &netns.name])
        .status()
        .or_fail("running ip netns add")?;
    ensure!(made.success(), "ip netns add {} failed", netns.name);
    let path = format!("/run/netns/{}", netns.name);
    let ino = fs::metadata(&path).or_fail(&format!("stat {path}"))?.ino();

    let mut b = ctx.bundle("ns-path")?;
    b.sh(FOREVER);
    b.namespace("network", Some(json!({ "type": "network", "path": path })));
    let c = ctx.container(&b);
    c.create()?;
    c.start()?;
    let got = ns_link(&c.pid()?.to_string(), "net")?;
    ensure!(
        got == format!("net:[{ino}]"),
        "the container is in {got}, not the namespace of {path} (net:[{ino}])"
    );
    Ok(())
}

fn ns_inherit(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("ns-inherit")?;
    b.sh(FOREVER);
    b.namespace("network", None);
    let c = ctx.container(&b);
    c.create()?;
    c.start()?;
    let got = ns_link(&c.pid()?.to_string(), "net")?;
    let ours = ns_link("self", "net")?;
    ensure!(
        got == ours,
        "the container is in {got}, not the runtime's {ours}"
    );
    Ok(())
}

fn sysctl(ctx: &Ctx) -> Outcome {
    let somaxconn = "/proc/sys/net/core/somaxconn";
    let host_before = fs::read_to_string(somaxconn).or_fail("reading the host's somaxconn")?;
    let mut b = ctx.bundle("sysctl")?;
    b.config["linux"]["sysctl"] =
        json!({ "net.ipv4.ip_forward": "1", "net.core.somaxconn": "1234" });
    b.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/core/somaxconn");
    let out = ctx.output(&b)?;
    ensure!(
        lines(&out) == ["1", "1234"],
        "ip_forward and somaxconn inside are {:?}, want 1, 1234",
        lines(&out)
    );
    let host_after = fs::read_to_string(somaxconn).or_fail("reading the host's somaxconn")?;
    ensure!(
        host_after == host_before,
        "the host's somaxconn changed to {}",
        host_after.trim()
    );
    Ok(())
}

fn userns_mappings(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("userns")?;
    let map = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.namespace("user", Some(json!({ "type": "user" })));
    b.config["linux"]["uidMappings"] = map.clone();
    b.config["linux"]["gidMappings"] = map;
    b.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; exec sleep 600");
    let c = ctx.container(&b);
    c.create()?;
    c.start()?;
    let pid = c.pid()?;
    ensure!(
        wait_until(SETTLE, || lines(&b.stdout()).len() >= 3),
        "the process did not print its maps: {:?} (stderr {:?})",
        b.stdout(),
        b.stderr()
    );
    let out = b.stdout();
    let got = lines(&out);
    let fields = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    ensure!(
        got.len() == 3 && fields(got[0]) == "0 100000 65536" && fields(got[1]) == "0 100000 65536",
        "uid_map/gid_map inside are {got:?}, want 0 100000 65536"
    );
    ensure!(got[2] == "0", "uid inside is {}, want 0", got[2]);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).or_fail("reading its status")?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("?")
        .to_string();
    ensure!(
        uid == "100000",
        "the process's uid on the host is {uid}, want 100000"
    );
    Ok(())
}
