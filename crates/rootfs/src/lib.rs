//! The container's filesystem view: mounts, devices, pivot_root, masked and readonly paths.
//!
//! [`RootfsPlan::new`] runs in the parent and does all parsing and allocation.
//! [`RootfsPlan::prepare`], [`RootfsPlan::enter`] and [`RootfsPlan::finalize`] run in the cloned
//! child, inside the new mount namespace, and only make system calls.

#![forbid(unsafe_code)]

mod apply;
mod copyup;
pub mod idmap;
mod nopivot;
mod options;
mod plan;
mod walk;

#[cfg(test)]
mod plan_tests;

pub use apply::Prepared;
pub use options::{propagation_of, Options, KNOWN_OPTIONS};
pub use plan::{CgroupView, PlanOptions, RootfsPlan};

use husk_sys::Errno;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{0}")]
    Invalid(String),
}

husk_sys::step_enum! {
    /// Which part of the rootfs setup failed in the child.
    pub enum Step {
        RootPropagation,
        BindRootfs,
        OpenRootfs,
        Mountpoint,
        Mount,
        Propagation,
        Device,
        DevSymlink,
        PivotRoot,
        Mask,
        ReadonlyPath,
        ReadonlyRoot,
        SymlinkMountpoint,
    }
}

/// A child-side failure: the step, the item it concerned, and the errno. `Copy`, no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub step: Step,
    pub index: u32,
    pub errno: Errno,
}

pub(crate) fn fail(step: Step, index: u32) -> impl Fn(Errno) -> Failure + Copy {
    move |errno| Failure { step, index, errno }
}

impl RootfsPlan {
    /// A one-line description of a child-side failure, naming the mount, device or path.
    pub fn describe(&self, f: &Failure) -> String {
        let i = f.index as usize;
        let mount = || {
            self.mounts
                .get(i)
                .map(|m| {
                    let name = self
                        .mount_names
                        .get(m.spec_index as usize)
                        .map_or("?", String::as_str);
                    let at = m.dest.to_string_lossy();
                    // The spec's destination, and where it resolved to when that differs.
                    let dest = if name.trim_start_matches('/') == at {
                        name.to_string()
                    } else {
                        format!("{name}, at /{at}")
                    };
                    match &m.kind {
                        // A missing source is the usual failure of a bind: name it (as runc).
                        plan::MountKind::Bind { source, .. } => format!(
                            "mounts[{}] (bind {} to {dest})",
                            m.spec_index,
                            source.to_string_lossy()
                        ),
                        _ => format!("mounts[{}] ({dest})", m.spec_index),
                    }
                })
                .unwrap_or_else(|| format!("mount #{i}"))
        };
        let nth = |v: &Vec<std::ffi::CString>| {
            v.get(i)
                .map_or_else(|| "?".into(), |p| p.to_string_lossy().into_owned())
        };
        let what = match f.step {
            Step::RootPropagation => {
                "set propagation of / in the container's mount namespace".to_string()
            }
            Step::BindRootfs => format!("bind-mount rootfs {}", self.rootfs.to_string_lossy()),
            Step::OpenRootfs => format!("open rootfs {}", self.rootfs.to_string_lossy()),
            Step::Mountpoint => format!("create mount point for {}", mount()),
            Step::Mount => format!("mount {}", mount()),
            Step::Propagation => format!("set propagation of {}", mount()),
            Step::Device => self.devices.get(i).map_or_else(
                || "create device".to_string(),
                |d| format!("create device {}", d.host.to_string_lossy()),
            ),
            Step::DevSymlink => "create /dev symlinks".to_string(),
            Step::PivotRoot => {
                if self.no_pivot {
                    format!(
                        "move rootfs {} to / and chroot",
                        self.rootfs.to_string_lossy()
                    )
                } else {
                    format!("pivot_root to {}", self.rootfs.to_string_lossy())
                }
            }
            Step::Mask => format!("mask path {}", nth(&self.masked)),
            Step::ReadonlyPath => format!("make path {} read-only", nth(&self.readonly)),
            Step::ReadonlyRoot => "remount / read-only".to_string(),
            // runc's wording ("must be mounted on ordinary directory").
            Step::SymlinkMountpoint => {
                return format!(
                    "{}: filesystem must be mounted on ordinary directory, not on a symlink",
                    mount()
                )
            }
        };
        format!("{what}: {}", f.errno)
    }
}
