//! The default configuration written by `runc spec` (runc 1.1.5).

use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Capability, Linux, LinuxCapabilities, LinuxDeviceCgroup, LinuxIdMapping,
    LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType, LinuxResources, Mount,
    PosixRlimitBuilder, PosixRlimitType, Process, Root, Spec, User,
};

/// The runtime-spec version husk implements: `husk --version`, `husk spec`'s ociVersion and
/// `features`' ociVersionMax all print this one constant.
pub const SPEC_VERSION: &str = "1.2.0";

const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A runc-equivalent default config (what `runc spec` / `runc spec --rootless` write).
///
/// In rootless mode the single uid/gid mapping maps container root to the caller's
/// effective uid/gid, as runc does. Note that oci-spec stores capability lists as sets,
/// so their serialized order is not runc's.
pub fn default_spec(rootless: bool) -> Spec {
    let mut spec = Spec::default();
    spec.set_version(SPEC_VERSION.to_owned())
        .set_process(Some(default_process()))
        .set_root(Some(default_root()))
        .set_hostname(Some("runc".to_owned()))
        .set_domainname(None)
        .set_annotations(None)
        .set_hooks(None)
        .set_mounts(Some(default_mounts(rootless)))
        .set_linux(Some(default_linux(rootless)));
    spec
}

fn default_root() -> Root {
    let mut root = Root::default();
    root.set_path(PathBuf::from("rootfs"))
        .set_readonly(Some(true));
    root
}

fn default_process() -> Process {
    let caps: Capabilities = [
        Capability::AuditWrite,
        Capability::Kill,
        Capability::NetBindService,
    ]
    .into_iter()
    .collect();
    let mut capabilities = LinuxCapabilities::default();
    capabilities
        .set_bounding(Some(caps.clone()))
        .set_effective(Some(caps.clone()))
        .set_inheritable(None)
        .set_permitted(Some(caps.clone()))
        .set_ambient(Some(caps));

    // The builders only fail for missing fields without defaults; these have none.
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(1024u64)
        .soft(1024u64)
        .build()
        .expect("PosixRlimit has defaults for all fields");

    let mut user = User::default();
    user.set_uid(0).set_gid(0);

    let mut process = Process::default();
    process
        .set_terminal(Some(true))
        .set_user(user)
        .set_args(Some(vec!["sh".to_owned()]))
        .set_env(Some(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            "TERM=xterm".to_owned(),
        ]))
        .set_cwd(PathBuf::from("/"))
        .set_capabilities(Some(capabilities))
        .set_rlimits(Some(vec![nofile]))
        .set_no_new_privileges(Some(true))
        .set_apparmor_profile(None)
        .set_selinux_label(None)
        .set_oom_score_adj(None);
    process
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut mount = Mount::default();
    mount
        .set_destination(PathBuf::from(destination))
        .set_typ(Some(typ.to_owned()))
        .set_source(Some(PathBuf::from(source)))
        .set_options(match options {
            [] => None,
            _ => Some(options.iter().map(|o| (*o).to_owned()).collect()),
        });
    mount
}

fn default_mounts(rootless: bool) -> Vec<Mount> {
    // Rootless: no gid=5 on devpts (the group may be unmapped) and a bind of the host's
    // /sys, as sysfs cannot be mounted without owning the network namespace.
    let devpts: &[&str] = match rootless {
        false => &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ],
        true => &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ],
    };
    let sys = match rootless {
        false => mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        true => mount(
            "/sys",
            "none",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        ),
    };
    vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount("/dev/pts", "devpts", "devpts", devpts),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        sys,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

fn default_linux(rootless: bool) -> Linux {
    let types: &[LinuxNamespaceType] = match rootless {
        false => &[
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
        ],
        true => &[
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::User,
        ],
    };
    let namespaces = types
        .iter()
        .map(|typ| {
            let mut ns = LinuxNamespace::default();
            ns.set_typ(*typ).set_path(None);
            ns
        })
        .collect();

    let mut linux = Linux::default();
    linux
        .set_namespaces(Some(namespaces))
        .set_masked_paths(Some(MASKED_PATHS.map(str::to_owned).to_vec()))
        .set_readonly_paths(Some(READONLY_PATHS.map(str::to_owned).to_vec()))
        .set_sysctl(None)
        .set_devices(None)
        .set_uid_mappings(None)
        .set_gid_mappings(None)
        .set_resources(None);
    if rootless {
        let (uid, gid) = effective_ids();
        linux
            .set_uid_mappings(Some(vec![root_mapping(uid)]))
            .set_gid_mappings(Some(vec![root_mapping(gid)]));
    } else {
        // Deny access to all devices; the runtime adds rules for the default devices.
        let mut deny_all = LinuxDeviceCgroup::default();
        deny_all
            .set_allow(false)
            .set_typ(None)
            .set_access(Some("rwm".to_owned()));
        let mut resources = LinuxResources::default();
        resources.set_devices(Some(vec![deny_all]));
        linux.set_resources(Some(resources));
    }
    linux
}

/// Maps container id 0 to `host_id`, one id wide.
fn root_mapping(host_id: u32) -> LinuxIdMapping {
    LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(host_id)
        .size(1u32)
        .build()
        .expect("LinuxIdMapping has defaults for all fields")
}

/// The caller's effective uid and gid.
fn effective_ids() -> (u32, u32) {
    (husk_sys::geteuid(), husk_sys::getegid())
}
