//! Validation rules, one config defect per test; each asserts the field named.

mod common;

use common::{assert_invalid, at, bundle_with, load_err, runc_config, runc_rootless_config};
use husk_spec::{load_bundle, validate};
use serde_json::{json, Value};

fn remove(config: &mut Value, pointer: &str, key: &str) {
    at(config, pointer).as_object_mut().unwrap().remove(key);
}

fn assert_loads(config: &Value) {
    let bundle = bundle_with(config);
    if let Err(err) = load_bundle(bundle.path()) {
        panic!("expected {config} to load: {err}");
    }
}

#[test]
fn runc_defaults_pass() {
    assert_loads(&runc_config());
    assert_loads(&runc_rootless_config());
}

#[test]
fn validate_accepts_default_spec() {
    let bundle = bundle_with(&runc_config());
    validate(&husk_spec::default_spec(false), bundle.path()).unwrap();
    validate(&husk_spec::default_spec(true), bundle.path()).unwrap();
}

#[test]
fn missing_oci_version() {
    let mut config = runc_config();
    remove(&mut config, "", "ociVersion");
    assert_invalid(
        &load_err(&config),
        "ociVersion",
        "required field is missing",
    );
}

#[test]
fn bad_oci_version() {
    let mut config = runc_config();
    *at(&mut config, "/ociVersion") = json!("2.0.0");
    assert_invalid(
        &load_err(&config),
        "ociVersion",
        "\"2.0.0\" is not supported",
    );
    *at(&mut config, "/ociVersion") = json!("1.0");
    assert_invalid(
        &load_err(&config),
        "ociVersion",
        "not a valid semantic version",
    );
    for ok in ["1.0.0", "1.1.0-rc.1", "1.2.0+dev"] {
        *at(&mut config, "/ociVersion") = json!(ok);
        assert_loads(&config);
    }
}

#[test]
fn missing_root() {
    let mut config = runc_config();
    remove(&mut config, "", "root");
    assert_invalid(&load_err(&config), "root", "required field is missing");
    let mut config = runc_config();
    remove(&mut config, "/root", "path");
    assert_invalid(&load_err(&config), "root.path", "missing or empty");
}

#[test]
fn missing_rootfs_dir() {
    let mut config = runc_config();
    *at(&mut config, "/root/path") = json!("nothere");
    let bundle = bundle_with(&config);
    let err = load_bundle(bundle.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "config.json: root.path: rootfs \"{}/nothere\" does not exist",
            bundle.path().display()
        )
    );
}

#[test]
fn rootfs_not_a_directory() {
    let mut config = runc_config();
    *at(&mut config, "/root/path") = json!("config.json");
    assert_invalid(&load_err(&config), "root.path", "is not a directory");
}

#[test]
fn missing_process_and_bad_process_fields() {
    let mut config = runc_config();
    remove(&mut config, "", "process");
    assert_invalid(&load_err(&config), "process", "required field is missing");

    let mut config = runc_config();
    *at(&mut config, "/process/args") = json!([]);
    assert_invalid(&load_err(&config), "process.args", "must not be empty");

    let mut config = runc_config();
    *at(&mut config, "/process/cwd") = json!("home");
    assert_invalid(
        &load_err(&config),
        "process.cwd",
        "\"home\" is not an absolute path",
    );

    let mut config = runc_config();
    *at(&mut config, "/process/env/1") = json!("NOVALUE");
    assert_invalid(
        &load_err(&config),
        "process.env[1]",
        "is not of the form KEY=value",
    );

    let mut config = runc_config();
    *at(&mut config, "/process/user/umask") = json!(0o1022);
    assert_invalid(
        &load_err(&config),
        "process.user.umask",
        "0o1022 is not a valid umask",
    );

    let mut config = runc_config();
    *at(&mut config, "/process/oomScoreAdj") = json!(1001);
    assert_invalid(
        &load_err(&config),
        "process.oomScoreAdj",
        "outside the range",
    );

    let mut config = runc_config();
    *at(&mut config, "/process/scheduler") = json!({"policy": "SCHED_OTHER", "priority": 5});
    assert_invalid(
        &load_err(&config),
        "process.scheduler.priority",
        "SCHED_FIFO",
    );
}

#[test]
fn empty_mount_destination() {
    let mut config = runc_config();
    *at(&mut config, "/mounts/2/destination") = json!("");
    assert_invalid(
        &load_err(&config),
        "mounts[2].destination",
        "must not be empty",
    );
}

#[test]
fn duplicate_namespace() {
    let mut config = runc_config();
    at(&mut config, "/linux/namespaces")
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "pid"}));
    let err = load_err(&config);
    assert_eq!(
        err.to_string(),
        "config.json: linux.namespaces: namespace type \"pid\" appears twice"
    );
}

#[test]
fn namespace_path_must_exist() {
    let mut config = runc_config();
    *at(&mut config, "/linux/namespaces/3/path") = json!("/proc/self/ns/nope");
    assert_invalid(
        &load_err(&config),
        "linux.namespaces[3].path",
        "\"/proc/self/ns/nope\" does not exist",
    );
    *at(&mut config, "/linux/namespaces/3/path") = json!("proc/self/ns/uts");
    assert_invalid(
        &load_err(&config),
        "linux.namespaces[3].path",
        "not an absolute path",
    );
    // Joining an existing namespace is fine, and a uts namespace by path allows a hostname.
    *at(&mut config, "/linux/namespaces/3/path") = json!("/proc/self/ns/uts");
    assert_loads(&config);
}

#[test]
fn bad_rlimits() {
    let mut config = runc_config();
    at(&mut config, "/process/rlimits")
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "RLIMIT_NOFILE", "hard": 10, "soft": 10}));
    assert_invalid(
        &load_err(&config),
        "process.rlimits",
        "rlimit type RLIMIT_NOFILE appears twice",
    );

    let mut config = runc_config();
    *at(&mut config, "/process/rlimits/0/soft") = json!(4096);
    assert_invalid(
        &load_err(&config),
        "process.rlimits[0]",
        "soft limit 4096 of RLIMIT_NOFILE exceeds the hard limit 1024",
    );
}

#[test]
fn user_namespace_without_mappings() {
    let mut config = runc_rootless_config();
    remove(&mut config, "/linux", "uidMappings");
    assert_invalid(
        &load_err(&config),
        "linux.uidMappings",
        "requires at least one mapping",
    );

    let mut config = runc_rootless_config();
    *at(&mut config, "/linux/gidMappings") = json!([]);
    assert_invalid(
        &load_err(&config),
        "linux.gidMappings",
        "requires at least one mapping",
    );

    let mut config = runc_rootless_config();
    *at(&mut config, "/linux/uidMappings/0/size") = json!(0);
    assert_invalid(
        &load_err(&config),
        "linux.uidMappings[0].size",
        "greater than zero",
    );
}

#[test]
fn mappings_without_user_namespace() {
    let mut config = runc_config();
    *at(&mut config, "/linux/uidMappings") = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    assert_invalid(&load_err(&config), "linux.uidMappings", "no user namespace");
}

#[test]
fn hostname_without_uts_namespace() {
    let mut config = runc_config();
    at(&mut config, "/linux/namespaces")
        .as_array_mut()
        .unwrap()
        .retain(|ns| ns["type"] != "uts");
    assert_invalid(&load_err(&config), "hostname", "requires a uts namespace");

    remove(&mut config, "", "hostname");
    *at(&mut config, "/domainname") = json!("example.org");
    assert_invalid(&load_err(&config), "domainname", "requires a uts namespace");

    *at(&mut config, "/domainname") = json!("");
    assert_loads(&config);
}

#[test]
fn net_sysctl_without_network_namespace() {
    let mut config = runc_rootless_config(); // no network namespace
    *at(&mut config, "/linux/sysctl") = json!({"net.core.somaxconn": "256"});
    let err = load_err(&config);
    assert_invalid(
        &err,
        "linux.sysctl",
        "sysctl \"net.core.somaxconn\" requires a network namespace",
    );
}

#[test]
fn net_sysctl_in_host_network_namespace() {
    let mut config = runc_config();
    *at(&mut config, "/linux/namespaces/1/path") = json!("/proc/self/ns/net");
    *at(&mut config, "/linux/sysctl") = json!({"net.ipv4.ip_forward": "1"});
    assert_invalid(
        &load_err(&config),
        "linux.sysctl",
        "host's network namespace",
    );
}

#[test]
fn sysctl_namespace_rules() {
    let mut config = runc_config();
    *at(&mut config, "/linux/sysctl") = json!({
        "net/ipv4/conf/eth0.100/rp_filter": "1",
        "kernel.shmmax": "1000",
        "fs.mqueue.msg_max": "20",
        "kernel.domainname": "example.org",
    });
    assert_loads(&config);

    *at(&mut config, "/linux/sysctl") = json!({"vm.max_map_count": "262144", "zz.other": "1"});
    assert_invalid(
        &load_err(&config),
        "linux.sysctl",
        "\"vm.max_map_count\" is not in a separate",
    );

    *at(&mut config, "/linux/sysctl") = json!({"kernel.hostname": "x"});
    assert_invalid(
        &load_err(&config),
        "linux.sysctl",
        "conflicts with the \"hostname\" field",
    );

    at(&mut config, "/linux/namespaces")
        .as_array_mut()
        .unwrap()
        .retain(|ns| ns["type"] != "ipc");
    *at(&mut config, "/linux/sysctl") = json!({"kernel.msgmax": "8192"});
    assert_invalid(
        &load_err(&config),
        "linux.sysctl",
        "requires an ipc namespace",
    );
}

#[test]
fn masked_and_readonly_paths() {
    let mut config = runc_config();
    *at(&mut config, "/linux/maskedPaths/4") = json!("proc/latency_stats");
    assert_invalid(
        &load_err(&config),
        "linux.maskedPaths[4]",
        "not an absolute path",
    );

    let mut config = runc_config();
    *at(&mut config, "/linux/readonlyPaths/0") = json!("bus");
    assert_invalid(
        &load_err(&config),
        "linux.readonlyPaths[0]",
        "not an absolute path",
    );

    let mut config = runc_config();
    at(&mut config, "/linux/namespaces")
        .as_array_mut()
        .unwrap()
        .retain(|ns| ns["type"] != "mount");
    assert_invalid(
        &load_err(&config),
        "linux.maskedPaths",
        "requires a mount namespace",
    );
}

#[test]
fn devices() {
    let mut config = runc_config();
    *at(&mut config, "/linux/devices") =
        json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
    assert_loads(&config);

    *at(&mut config, "/linux/devices/0/type") = json!("a");
    assert_invalid(
        &load_err(&config),
        "linux.devices[0].type",
        "not a device node type",
    );

    *at(&mut config, "/linux/devices/0/type") = json!("c");
    *at(&mut config, "/linux/devices/0/path") = json!("dev/fuse");
    assert_invalid(
        &load_err(&config),
        "linux.devices[0].path",
        "not an absolute path",
    );

    let mut config = runc_config();
    *at(&mut config, "/linux/resources/devices/0/access") = json!("rwx");
    assert_invalid(
        &load_err(&config),
        "linux.resources.devices[0].access",
        "r, w and m",
    );
}

#[test]
fn time_offsets_need_time_namespace() {
    let mut config = runc_config();
    *at(&mut config, "/linux/timeOffsets") = json!({"monotonic": {"secs": 10}});
    assert_invalid(
        &load_err(&config),
        "linux.timeOffsets",
        "require a time namespace",
    );

    at(&mut config, "/linux/namespaces")
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    assert_loads(&config);

    *at(&mut config, "/linux/timeOffsets") = json!({"realtime": {"secs": 10}});
    assert_invalid(
        &load_err(&config),
        "linux.timeOffsets",
        "unknown clock \"realtime\"",
    );
}

#[test]
fn rootfs_propagation() {
    let mut config = runc_config();
    *at(&mut config, "/linux/rootfsPropagation") = json!("rslave");
    assert_loads(&config);
    *at(&mut config, "/linux/rootfsPropagation") = json!("sideways");
    assert_invalid(
        &load_err(&config),
        "linux.rootfsPropagation",
        "not a valid mount propagation",
    );
}

#[test]
fn hooks() {
    let mut config = runc_config();
    *at(&mut config, "/hooks") = json!({
        "createRuntime": [{"path": "/bin/true"}],
        "poststop": [{"path": "/bin/true", "timeout": 5}],
    });
    assert_loads(&config);

    *at(&mut config, "/hooks/createRuntime/0/path") = json!("true");
    assert_invalid(
        &load_err(&config),
        "hooks.createRuntime[0].path",
        "not an absolute path",
    );

    *at(&mut config, "/hooks/createRuntime/0/path") = json!("/bin/true");
    *at(&mut config, "/hooks/poststop/0/timeout") = json!(0);
    assert_invalid(
        &load_err(&config),
        "hooks.poststop[0].timeout",
        "greater than zero",
    );
}
