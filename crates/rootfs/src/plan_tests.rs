//! The spec → [`RootfsPlan`] conversion without a kernel: mount order and kinds, option
//! parsing, cgroup views, devices, masked and readonly paths, and errors on bad input. Each
//! test runs in microseconds, so a behaviour change fails here before any container starts.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::plan::{MountKind, MountOp};
use crate::{CgroupView, PlanOptions, RootfsPlan};
use husk_sys::mount::{MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

fn spec(v: Value) -> Spec {
    let mut base = json!({"ociVersion": "1.2.0", "root": {"path": "rootfs"}});
    if let (Some(b), Some(o)) = (base.as_object_mut(), v.as_object()) {
        b.extend(o.clone());
    }
    serde_json::from_value(base).expect("test spec parses")
}

fn opts() -> PlanOptions {
    PlanOptions {
        no_pivot: false,
        new_userns: false,
        host_mount_ns: false,
        cgroups: CgroupView::None,
    }
}

/// The crate's directory stands in for the bundle: it has a file (Cargo.toml) and a
/// directory (src) to bind.
fn bundle() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn plan_with(v: Value, o: &PlanOptions) -> Result<RootfsPlan, String> {
    RootfsPlan::new(&spec(v), Path::new("/b/rootfs"), &bundle(), o).map_err(|e| e.to_string())
}

fn plan(v: Value) -> RootfsPlan {
    plan_with(v, &opts()).expect("plan")
}

fn dests(p: &RootfsPlan) -> Vec<&str> {
    p.mounts.iter().map(|m| m.dest.to_str().unwrap()).collect()
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn only(p: &RootfsPlan) -> &MountOp {
    assert_eq!(p.mounts.len(), 1, "{:?}", p.mounts);
    &p.mounts[0]
}

#[test]
fn mounts_keep_the_spec_order_with_relative_destinations() {
    let p = plan(json!({"mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
        {"destination": "//sys/", "type": "sysfs", "source": "sysfs"},
    ]}));
    assert_eq!(dests(&p), ["proc", "dev", "dev/pts", "sys/"]);
    let idx: Vec<u32> = p.mounts.iter().map(|m| m.spec_index).collect();
    assert_eq!(idx, [0, 1, 2, 3]);
    assert_eq!(p.mount_names, ["/proc", "/dev", "/dev/pts", "//sys/"]);
}

#[test]
fn filesystem_mount_flags_and_data() {
    let p = plan(
        json!({"mounts": [{"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}]}),
    );
    let m = only(&p);
    assert_eq!(m.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
    match &m.kind {
        MountKind::Fs {
            source,
            fstype,
            data,
            bind_on_eperm,
            ..
        } => {
            assert_eq!(source.as_deref(), Some(c"tmpfs"));
            assert_eq!(fstype.as_c_str(), c"tmpfs");
            assert_eq!(data.as_deref(), Some(c"mode=755,size=65536k"));
            assert!(bind_on_eperm.is_none());
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn a_mount_without_type_is_none_and_may_have_no_source() {
    let p = plan(json!({"mounts": [{"destination": "/x"}]}));
    match &only(&p).kind {
        MountKind::Fs { source, fstype, .. } => {
            assert!(source.is_none());
            assert_eq!(fstype.as_c_str(), c"none");
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn propagation_options_go_to_the_mount() {
    let p = plan(json!({"mounts": [{"destination": "/m", "type": "tmpfs",
        "options": ["rshared"]}]}));
    assert_eq!(only(&p).propagation, libc::MS_SHARED | libc::MS_REC);
}

#[test]
fn bind_mount_attributes_and_recursion() {
    let p = plan(json!({"mounts": [
        {"destination": "/a", "source": "/", "options": ["rbind", "ro", "nosuid"]},
        {"destination": "/b", "type": "bind", "source": "/", "options": ["rw"]},
    ]}));
    match &p.mounts[0].kind {
        MountKind::Bind {
            source,
            recursive,
            set,
            clr,
            ..
        } => {
            assert_eq!(source.as_c_str(), c"/");
            assert!(recursive);
            assert_eq!(*set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
            assert_eq!(*clr & MOUNT_ATTR_RDONLY, 0);
        }
        k => panic!("{k:?}"),
    }
    match &p.mounts[1].kind {
        MountKind::Bind {
            recursive,
            set,
            clr,
            ..
        } => {
            assert!(!recursive, "type bind without rbind is not recursive");
            assert_eq!(*set & MOUNT_ATTR_RDONLY, 0);
            assert_eq!(*clr & MOUNT_ATTR_RDONLY, MOUNT_ATTR_RDONLY, "rw clears ro");
        }
        k => panic!("{k:?}"),
    }
    // Bind mounts carry their flags as attributes, not as mount(2) flags.
    assert_eq!(p.mounts[0].flags, 0);
}

#[test]
fn relative_bind_sources_are_in_the_bundle_and_files_are_told_apart() {
    let p = plan(json!({"mounts": [
        {"destination": "/etc/x", "source": "Cargo.toml", "options": ["bind"]},
        {"destination": "/d", "source": "src", "options": ["bind"]},
        {"destination": "/gone", "source": "/nonexistent-husk-test", "options": ["bind"]},
    ]}));
    let source = |m: &MountOp| match &m.kind {
        MountKind::Bind { source, .. } => source.clone(),
        k => panic!("{k:?}"),
    };
    let want = bundle().join("Cargo.toml");
    assert_eq!(source(&p.mounts[0]), c(want.to_str().unwrap()));
    assert!(p.mounts[0].file);
    assert!(!p.mounts[1].file, "a directory");
    assert!(
        !p.mounts[2].file,
        "a missing source is not taken for a file"
    );
}

#[test]
fn a_bind_without_source_is_refused() {
    let e = plan_with(
        json!({"mounts": [
            {"destination": "/proc", "type": "proc"},
            {"destination": "/x", "options": ["bind"]},
        ]}),
        &opts(),
    )
    .unwrap_err();
    assert_eq!(e, "mounts[1].source: a bind mount needs a source");
}

#[test]
fn a_nul_byte_names_the_mount() {
    let e = plan_with(
        json!({"mounts": [{"destination": "/x\u{0}y", "type": "tmpfs"}]}),
        &opts(),
    )
    .unwrap_err();
    assert_eq!(e, "mounts[0]: contains a NUL byte");
}

#[test]
fn sysfs_in_a_new_user_namespace_falls_back_to_a_bind() {
    let sysfs = json!({"mounts": [{"destination": "/sys", "type": "sysfs", "source": "sysfs",
        "options": ["nosuid", "ro"]}]});
    let mut o = opts();
    assert!(matches!(
        only(&plan_with(sysfs.clone(), &o).unwrap()).kind,
        MountKind::Fs {
            bind_on_eperm: None,
            ..
        }
    ));
    o.new_userns = true;
    match &only(&plan_with(sysfs, &o).unwrap()).kind {
        MountKind::Fs {
            bind_on_eperm: Some((src, set)),
            ..
        } => {
            assert_eq!(src.as_c_str(), c"/sys");
            assert_eq!(*set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn cgroup_mounts_without_cgroup_information_are_skipped() {
    let p = plan(json!({"mounts": [
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"},
        {"destination": "/tmp", "type": "tmpfs"},
    ]}));
    assert_eq!(dests(&p), ["tmp"]);
    assert_eq!(p.mounts[0].spec_index, 1);
}

#[test]
fn cgroup_v2_is_a_bind_or_a_fresh_mount_in_a_cgroup_namespace() {
    let v = json!({"mounts": [{"destination": "/sys/fs/cgroup", "type": "cgroup2",
        "source": "cgroup", "options": ["ro"]}]});
    let mut o = opts();
    o.cgroups = CgroupView::V2 {
        host_dir: "/sys/fs/cgroup/c1".into(),
        cgroupns: false,
    };
    match &only(&plan_with(v.clone(), &o).unwrap()).kind {
        MountKind::Bind { source, set, .. } => {
            assert_eq!(source.as_c_str(), c"/sys/fs/cgroup/c1");
            assert_eq!(*set, MOUNT_ATTR_RDONLY);
        }
        k => panic!("{k:?}"),
    }
    o.cgroups = CgroupView::V2 {
        host_dir: "/sys/fs/cgroup/c1".into(),
        cgroupns: true,
    };
    let p = plan_with(v, &o).unwrap();
    match &only(&p).kind {
        MountKind::Fs { fstype, .. } => assert_eq!(fstype.as_c_str(), c"cgroup2"),
        k => panic!("{k:?}"),
    }
    assert_eq!(only(&p).flags, libc::MS_RDONLY);
}

#[test]
fn cgroup_v1_is_a_tmpfs_with_one_bind_per_hierarchy_then_read_only() {
    let mut o = opts();
    o.cgroups = CgroupView::V1(vec![
        ("cpu,cpuacct".into(), "/sys/fs/cgroup/cpu,cpuacct/c1".into()),
        ("memory".into(), "/sys/fs/cgroup/memory/c1".into()),
    ]);
    let p = plan_with(
        json!({"mounts": [{"destination": "/sys/fs/cgroup", "type": "cgroup",
            "options": ["ro", "nosuid"]}]}),
        &o,
    )
    .unwrap();
    assert_eq!(
        dests(&p),
        [
            "sys/fs/cgroup",
            "sys/fs/cgroup/cpu,cpuacct",
            "sys/fs/cgroup/memory",
            "sys/fs/cgroup"
        ]
    );
    assert!(
        matches!(&p.mounts[0].kind, MountKind::Fs { fstype, .. } if fstype.as_c_str() == c"tmpfs")
    );
    assert_eq!(
        p.mounts[0].flags & libc::MS_RDONLY,
        0,
        "the tmpfs stays writable until the binds are in"
    );
    assert!(matches!(p.mounts[1].kind, MountKind::Bind { .. }));
    assert!(matches!(p.mounts[3].kind, MountKind::SetAttr { set } if set & MOUNT_ATTR_RDONLY != 0));
    // Without attributes to set, no final SetAttr.
    let rw = plan_with(
        json!({"mounts": [{"destination": "/sys/fs/cgroup", "type": "cgroup"}]}),
        &o,
    )
    .unwrap();
    assert_eq!(rw.mounts.len(), 3);
}

#[test]
fn root_propagation_defaults_to_rslave_and_rejects_unknown_values() {
    assert_eq!(
        plan(json!({})).root_propagation,
        libc::MS_SLAVE | libc::MS_REC
    );
    let p = plan(json!({"linux": {"rootfsPropagation": "private"}}));
    assert_eq!(p.root_propagation, libc::MS_PRIVATE);
    let e = plan_with(json!({"linux": {"rootfsPropagation": "sideways"}}), &opts()).unwrap_err();
    assert_eq!(
        e,
        "linux.rootfsPropagation: unknown propagation \"sideways\""
    );
}

#[test]
fn default_devices_are_made_unless_the_spec_lists_them() {
    let p = plan(json!({}));
    assert!(p.setup_dev);
    let names: Vec<&str> = p.devices.iter().map(|d| d.name.to_str().unwrap()).collect();
    assert_eq!(names, ["null", "zero", "full", "random", "urandom", "tty"]);
    let null = &p.devices[0];
    assert_eq!(null.dir.as_c_str(), c"dev");
    assert_eq!(null.mode, libc::S_IFCHR | 0o666);
    assert_eq!(null.dev, libc::makedev(1, 3));

    let p = plan(json!({"linux": {"devices": [
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 5},
    ]}}));
    assert_eq!(
        p.devices.len(),
        6,
        "the spec's /dev/null replaces the default one"
    );
    let null = p.devices.last().unwrap();
    assert_eq!((null.mode, null.uid), (libc::S_IFCHR | 0o600, 5));
}

#[test]
fn spec_devices_by_type_with_directories_and_mode_bits() {
    let p = plan(json!({"linux": {"devices": [
        {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o170666u32},
        {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0},
        {"path": "/dev/fifo", "type": "p", "major": 0, "minor": 0, "gid": 7},
        {"path": "/dev/u", "type": "u", "major": 1, "minor": 1},
    ]}}));
    let d = &p.devices[6..];
    assert_eq!(d[0].dir.as_c_str(), c"dev/net");
    assert_eq!(d[0].name.as_c_str(), c"tun");
    assert_eq!(d[0].host.as_c_str(), c"/dev/net/tun");
    assert_eq!(
        d[0].mode,
        libc::S_IFCHR | 0o666,
        "type bits of fileMode are dropped"
    );
    assert_eq!(d[1].mode, libc::S_IFBLK | 0o666);
    assert_eq!((d[2].mode, d[2].gid), (libc::S_IFIFO | 0o666, 7));
    assert_eq!(
        d[3].mode & libc::S_IFMT,
        libc::S_IFCHR,
        "u is a character device"
    );
}

#[test]
fn device_type_a_is_refused() {
    let e = plan_with(
        json!({"linux": {"devices": [{"path": "/dev/x", "type": "a", "major": 1, "minor": 1}]}}),
        &opts(),
    )
    .unwrap_err();
    assert_eq!(e, "linux.devices[0].type: \"a\" is not a device node type");
}

#[test]
fn a_bound_dev_means_no_device_nodes() {
    let p = plan(json!({"mounts": [{"destination": "/dev", "source": "/dev",
        "options": ["rbind"]}], "linux": {"devices": [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}}));
    assert!(!p.setup_dev);
    assert!(p.devices.is_empty());
    // A tmpfs at /dev is not a bound /dev.
    assert!(plan(json!({"mounts": [{"destination": "/dev", "type": "tmpfs"}]})).setup_dev);
}

#[test]
fn masked_and_readonly_paths_are_carried_in_order() {
    let p = plan(json!({"linux": {
        "maskedPaths": ["/proc/kcore", "/proc/keys"],
        "readonlyPaths": ["/proc/sys", "/proc/bus"],
    }}));
    assert_eq!(p.masked, [c("/proc/kcore"), c("/proc/keys")]);
    assert_eq!(p.readonly, [c("/proc/sys"), c("/proc/bus")]);
    let e = plan_with(json!({"linux": {"maskedPaths": ["/a\u{0}"]}}), &opts()).unwrap_err();
    assert_eq!(e, "linux.maskedPaths: contains a NUL byte");
}

#[test]
fn a_path_masked_twice_is_masked_once() {
    let p = plan(json!({"linux": {
        "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/acpi", "/proc/kcore", "/sys/x"],
    }}));
    assert_eq!(p.masked, [c("/proc/acpi"), c("/proc/kcore"), c("/sys/x")]);
}

#[test]
fn options_that_are_not_from_the_spec_are_carried() {
    let o = PlanOptions {
        no_pivot: true,
        new_userns: true,
        host_mount_ns: true,
        cgroups: CgroupView::None,
    };
    let p = plan_with(json!({"root": {"path": "rootfs", "readonly": true}}), &o).unwrap();
    assert!(p.no_pivot && p.bind_devices && p.host_mount_ns && p.readonly_root);
    assert_eq!(p.rootfs.as_c_str(), c"/b/rootfs");
    let p = plan(json!({}));
    assert!(!p.no_pivot && !p.bind_devices && !p.host_mount_ns && !p.readonly_root);
}
