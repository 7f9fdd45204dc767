//! `linux.netDevices` (runtime-spec 1.2): host interfaces moved into the container.
//!
//! At create, once the init is in its network namespace (the parent's step between the
//! init's mounts and the prestart/createRuntime hooks), each named host interface is set
//! down, moved into that namespace under its `name` (one rtnetlink request, so the rename and
//! the move happen together), given back its permanent global addresses (noted before; the
//! kernel drops them on the move) and set up — as runc does.
//!
//! Where the devices go back: a network namespace joined by path belongs to whoever made it,
//! and the devices stay in it (as runc). A namespace of the container's own would die with the
//! container's last process, and with it every virtual device moved in (a veth pair, a
//! macvlan): husk keeps that namespace alive with a bind of it in the state directory until
//! `delete`, which moves each device back to husk's namespace, down and under its host name
//! (runc ≥ 1.3 leaves them to the kernel: README, "Differences from runc"). A create that fails
//! after the move moves them back too.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use husk_sys::netlink::{Link, Route};
use husk_sys::Errno;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

use crate::error::InitError;
use crate::{Result, RuntimeError};

/// The bind of the container's own network namespace, in its state directory.
pub(crate) const NETNS_FILE: &str = "netns";

/// One device: its name on the host and in the container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Device {
    pub host: String,
    pub inside: String,
}

/// The config's devices, sorted by host name (the order they are moved in).
pub(crate) fn devices(spec: &Spec) -> Vec<Device> {
    let mut out: Vec<Device> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.net_devices().as_ref())
        .into_iter()
        .flatten()
        .map(|(host, d)| Device {
            host: host.clone(),
            inside: d
                .name()
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| host.clone()),
        })
        .collect();
    out.sort_by(|a, b| a.host.cmp(&b.host));
    out
}

/// The container makes its own network namespace (listed without a path).
pub(crate) fn own_netns(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_none())
}

/// Devices moved into a network namespace, which `netns` keeps alive.
pub(crate) struct Moved {
    netns: OwnedFd,
    devices: Vec<Device>,
}

fn step(what: String) -> impl FnOnce(Errno) -> RuntimeError {
    InitError::step(format!("linux.netDevices: {what}"))
}

/// Moves `devices` into the network namespace of process `pid`. On a failure the devices
/// already moved are moved back before the error is returned.
pub(crate) fn move_in(pid: i32, devices: &[Device]) -> Result<Moved> {
    let path = format!("/proc/{pid}/ns/net");
    let netns: OwnedFd = std::fs::File::open(&path)
        .map_err(RuntimeError::io(format!("linux.netDevices: open {path}")))?
        .into();
    let host = Route::open().map_err(step("open a netlink socket".into()))?;
    let inside = Route::open_in(netns.as_fd()).map_err(step(
        "open a netlink socket in the container's network namespace".into(),
    ))?;
    let mut moved = Moved {
        netns,
        devices: Vec::new(),
    };
    for dev in devices {
        if let Err(e) = move_one(&host, &inside, &moved.netns, dev) {
            if let Err(back) = moved.move_back() {
                tracing::warn!("{back}");
            }
            return Err(e);
        }
        moved.devices.push(dev.clone());
    }
    Ok(moved)
}

fn move_one(host: &Route, inside: &Route, netns: &OwnedFd, dev: &Device) -> Result<()> {
    let name = &dev.host;
    let link = host
        .link(name)
        .map_err(step(format!("find host device {name}")))?;
    // Listed before the link goes down: that drops its IPv6 addresses (keep_addr_on_down=0).
    let addresses = host
        .addresses(link.index)
        .map_err(step(format!("list the addresses of {name}")))?;
    host.set_up(link.index, false)
        .map_err(step(format!("set {name} down")))?;
    let into = if dev.inside == *name {
        String::new()
    } else {
        format!(" as {}", dev.inside)
    };
    host.move_to(link.index, &dev.inside, netns.as_fd())
        .map_err(step(format!(
            "move {name} into the container's network namespace{into}"
        )))?;
    let Link { index, .. } = inside
        .link(&dev.inside)
        .map_err(step(format!("find {} in the container", dev.inside)))?;
    // As runc: only configured addresses of global scope keep their meaning in there.
    for a in addresses.iter().filter(|a| a.is_permanent_global()) {
        inside.add_address(index, a).map_err(step(format!(
            "add address {} to {} in the container",
            a.text(),
            dev.inside
        )))?;
    }
    inside
        .set_up(index, true)
        .map_err(step(format!("set {} up in the container", dev.inside)))
}

impl Moved {
    /// Moves every device back into husk's network namespace, down and under its host name.
    /// All are tried; the first failure is returned.
    pub fn move_back(&self) -> Result<()> {
        move_back(self.netns.as_fd(), &self.devices)
    }
}

fn move_back(netns: std::os::fd::BorrowedFd<'_>, devices: &[Device]) -> Result<()> {
    let own: OwnedFd = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(RuntimeError::io(
            "linux.netDevices: open /proc/thread-self/ns/net",
        ))?
        .into();
    let inside = Route::open_in(netns).map_err(step(
        "open a netlink socket in the container's network namespace".into(),
    ))?;
    let mut first = Ok(());
    for dev in devices {
        let back = || -> Result<()> {
            let (inside_name, host) = (&dev.inside, &dev.host);
            let why = format!("to move it back to the host as {host}");
            let link = inside
                .link(inside_name)
                .map_err(step(format!("find {inside_name} in the container, {why}")))?;
            inside
                .set_up(link.index, false)
                .map_err(step(format!("set {inside_name} down, {why}")))?;
            inside
                .move_to(link.index, host, own.as_fd())
                .map_err(step(format!(
                    "move {inside_name} back to the host as {host}"
                )))
        };
        if let Err(e) = back() {
            if first.is_ok() {
                first = Err(e);
            }
        }
    }
    first
}

/// Keeps the network namespace of process `pid` alive until [`release`]: binds it onto
/// `path` (in the state directory).
pub(crate) fn hold(path: &Path, pid: i32) -> Result<()> {
    let what = || {
        format!(
            "linux.netDevices: keep the network namespace at {}",
            path.display()
        )
    };
    std::fs::File::create(path).map_err(RuntimeError::io(what()))?;
    let source = cpath(Path::new(&format!("/proc/{pid}/ns/net")))?;
    let target = cpath(path)?;
    husk_sys::mount::mount(Some(&source), &target, None, libc::MS_BIND, None)
        .map_err(InitError::step(what()))
}

/// A container's held network namespace at `path`: moves `devices` back to husk's namespace
/// (a failure is a warning: the namespace goes anyway), then drops the bind. Nothing to do
/// when nothing is held.
pub(crate) fn release(path: &Path, devices: &[Device]) {
    let Ok(ns) = std::fs::File::open(path) else {
        return;
    };
    if let Err(e) = move_back(ns.as_fd(), devices) {
        tracing::warn!("{e}");
    }
    drop(ns);
    if let Ok(c) = cpath(path) {
        // Not mounted (a create killed between the file and the bind): nothing to detach.
        let _ = husk_sys::mount::umount2(&c, libc::MNT_DETACH);
    }
    let _ = std::fs::remove_file(path);
}

fn cpath(p: &Path) -> Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| RuntimeError::Usage(format!("path {} has a NUL byte", p.display())))
}
