//! `linux.resources` on real cgroups: each test writes settings, reads the kernel's files
//! back and, where the kernel can show it, checks the limit is enforced. Every test runs on
//! both layouts with that layout's file names (hybrid build host, v2 VM).

mod common;

use common::{res, some_block_device, Proc, TestCg};
use husk_cgroups::CgroupError;
use serde_json::json;

const MB: i64 = 1 << 20;

#[test]
fn memory_limit_is_set_and_oom_kills() {
    let t = TestCg::new("oom");
    // swap == limit: no swap on top of the limit.
    t.m.create(Some(&res(
        json!({"memory": {"limit": 32 * MB, "swap": 32 * MB, "reservation": 16 * MB}}),
    )))
    .unwrap();
    if t.v2() {
        assert_eq!(t.read("", "memory.max"), (32 * MB).to_string());
        assert_eq!(t.read("", "memory.low"), (16 * MB).to_string());
        if t.dir("").join("memory.swap.max").exists() {
            assert_eq!(t.read("", "memory.swap.max"), "0");
        }
    } else {
        assert_eq!(
            t.read("memory", "memory.limit_in_bytes"),
            (32 * MB).to_string()
        );
        assert_eq!(
            t.read("memory", "memory.memsw.limit_in_bytes"),
            (32 * MB).to_string()
        );
        assert_eq!(
            t.read("memory", "memory.soft_limit_in_bytes"),
            (16 * MB).to_string()
        );
    }
    // The shell keeps a 100 MB string in memory: over the limit.
    let mut p = Proc::gated("x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived");
    t.m.add_process(p.pid()).unwrap();
    p.go();
    let (status, out, _) = p.finish(60);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "stdout: {out}"
    );
    let events = if t.v2() {
        t.read("", "memory.events")
    } else {
        t.read("memory", "memory.oom_control")
    };
    let kills: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(kills >= 1, "{events}");
    let s = t.m.stats().unwrap();
    assert_eq!(s.memory.usage.limit, 32 * MB as u64);
    assert!(
        s.memory.usage.max >= 30 * MB as u64,
        "the peak reached the limit: {:?}",
        s.memory.usage
    );
    if t.v2() {
        assert!(
            s.memory.usage.failcnt > 0,
            "memory.events max: {:?}",
            s.memory.usage
        );
    }
}

#[test]
fn memory_swap_semantics_and_updates() {
    let t = TestCg::new("swap");
    t.m.create(Some(&res(
        json!({"memory": {"limit": 64 * MB, "swap": 128 * MB}}),
    )))
    .unwrap();
    if t.v2() {
        // OCI swap is memory+swap; v2's memory.swap.max is swap alone.
        assert_eq!(t.read("", "memory.swap.max"), (64 * MB).to_string());
        t.m.apply(&res(json!({"memory": {"limit": -1}}))).unwrap();
        assert_eq!(t.read("", "memory.max"), "max");
        assert_eq!(
            t.read("", "memory.swap.max"),
            "max",
            "unlimited memory without swap means unlimited swap"
        );
    } else {
        assert_eq!(
            t.read("memory", "memory.memsw.limit_in_bytes"),
            (128 * MB).to_string()
        );
        // Growing the limit above the current memsw needs memsw written first.
        t.m.apply(&res(
            json!({"memory": {"limit": 256 * MB, "swap": 512 * MB}}),
        ))
        .unwrap();
        assert_eq!(
            t.read("memory", "memory.limit_in_bytes"),
            (256 * MB).to_string()
        );
        assert_eq!(
            t.read("memory", "memory.memsw.limit_in_bytes"),
            (512 * MB).to_string()
        );
        t.m.apply(&res(json!({"memory": {"limit": -1}}))).unwrap();
        let unlimited: u64 = t
            .read("memory", "memory.memsw.limit_in_bytes")
            .parse()
            .unwrap();
        assert!(
            unlimited > 1 << 60,
            "memsw follows an unlimited memory limit"
        );
    }
    let err =
        t.m.apply(&res(json!({"memory": {"limit": 64 * MB, "swap": 32 * MB}})))
            .unwrap_err();
    assert!(
        err.to_string().contains("swap") || err.to_string().contains("memsw"),
        "{err}"
    );
}

#[test]
fn lowering_memory_below_usage_is_refused_clearly() {
    let t = TestCg::new("lower");
    t.m.create(Some(&res(json!({"memory": {"limit": 256 * MB}}))))
        .unwrap();
    let mut p = Proc::gated("x=$(head -c 30000000 /dev/zero | tr '\\0' a); echo ready; sleep 100");
    t.m.add_process(p.pid()).unwrap();
    p.go();
    assert_eq!(p.line(), "ready");
    let err =
        t.m.apply(&res(
            json!({"memory": {"limit": 5 * MB, "checkBeforeUpdate": true}}),
        ))
        .unwrap_err();
    let msg = err.to_string();
    if t.v2() {
        assert!(
            msg.starts_with("rejecting memory limit 5242880 below current usage"),
            "{msg}"
        );
    } else {
        assert!(
            msg.starts_with("unable to set memory limit to 5242880 (current usage:"),
            "{msg}"
        );
    }
    assert_eq!(
        t.m.stats().unwrap().memory.usage.limit,
        256 * MB as u64,
        "the old limit stays"
    );
}

#[test]
fn memory_v1_only_knobs() {
    let t = TestCg::new("memknobs");
    let r = res(
        json!({"memory": {"limit": 128 * MB, "kernelTCP": 50 * MB, "swappiness": 10, "disableOOMKiller": true, "kernel": 64 * MB}}),
    );
    t.m.create(Some(&r)).unwrap();
    if t.v2() {
        // runc ignores these on v2 (with a warning here); the limit itself is set.
        assert_eq!(t.read("", "memory.max"), (128 * MB).to_string());
        return;
    }
    assert_eq!(
        t.read("memory", "memory.kmem.tcp.limit_in_bytes"),
        (50 * MB).to_string()
    );
    assert_eq!(t.read("memory", "memory.swappiness"), "10");
    assert!(t
        .read("memory", "memory.oom_control")
        .contains("oom_kill_disable 1"));
    let err =
        t.m.apply(&res(json!({"memory": {"swappiness": 101}})))
            .unwrap_err();
    assert!(matches!(err, CgroupError::Config(_)), "{err}");
}

#[test]
fn cpu_settings_round_trip() {
    let t = TestCg::new("cpu");
    let r = res(
        json!({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 10000, "idle": 0, "cpus": "0", "mems": "0"}}),
    );
    t.m.create(Some(&r)).unwrap();
    if t.v2() {
        assert_eq!(
            t.read("", "cpu.weight"),
            "20",
            "runc: 1 + (512-2)*9999/262142"
        );
        assert_eq!(t.read("", "cpu.max"), "50000 100000");
        assert_eq!(t.read("", "cpu.max.burst"), "10000");
        assert_eq!(t.read("", "cpu.idle"), "0");
        assert_eq!(t.read("", "cpuset.cpus"), "0");
        assert_eq!(t.read("", "cpuset.mems"), "0");
        t.m.apply(&res(json!({"cpu": {"quota": -1}}))).unwrap();
        assert_eq!(t.read("", "cpu.max"), "max 100000");
    } else {
        assert_eq!(t.read("cpu", "cpu.shares"), "512");
        assert_eq!(t.read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(t.read("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(t.read("cpu", "cpu.cfs_burst_us"), "10000");
        assert_eq!(t.read("cpu", "cpu.idle"), "0");
        assert_eq!(t.read("cpuset", "cpuset.cpus"), "0");
        // The burst may not exceed the quota: lower both in one update.
        t.m.apply(&res(
            json!({"cpu": {"quota": 5000, "period": 10000, "burst": 0}}),
        ))
        .unwrap();
        assert_eq!(t.read("cpu", "cpu.cfs_period_us"), "10000");
        assert_eq!(t.read("cpu", "cpu.cfs_quota_us"), "5000");
        t.m.apply(&res(json!({"cpu": {"quota": -1}}))).unwrap();
        assert_eq!(t.read("cpu", "cpu.cfs_quota_us"), "-1");
        let err =
            t.m.apply(&res(json!({"cpu": {"shares": 1000000}})))
                .unwrap_err();
        assert_eq!(err.to_string(), "the maximum allowed cpu-shares is 262144");
    }
    // The quota is enforced: a busy loop gets about half a CPU.
    t.m.apply(&res(json!({"cpu": {"quota": 20000, "period": 100000}})))
        .unwrap();
    let mut p = Proc::gated("while :; do :; done");
    t.m.add_process(p.pid()).unwrap();
    p.go();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let before = common::cpu_ticks(p.pid());
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let used = common::cpu_ticks(p.pid()) - before;
    assert!(used <= 40, "20% quota, but used {used} ticks in 1 s");
    assert!(t.m.stats().unwrap().cpu.throttling.throttled_periods > 0);
}

#[test]
fn realtime_cpu() {
    let t = TestCg::new("rt");
    let r = res(json!({"cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 5000}}));
    if t.v2() {
        // runc ignores RT settings on v2; so do we (with a warning).
        t.m.create(Some(&r)).unwrap();
        assert!(!t.dir("").join("cpu.rt_runtime_us").exists());
        return;
    }
    // RT budget comes from the parent, which the kernel gives none by default.
    let parent = t.dir("cpu").parent().unwrap().to_path_buf();
    std::fs::create_dir(&parent).unwrap();
    std::fs::write(parent.join("cpu.rt_runtime_us"), "10000").unwrap();
    t.m.create(Some(&r)).unwrap();
    assert_eq!(t.read("cpu", "cpu.rt_period_us"), "1000000");
    assert_eq!(t.read("cpu", "cpu.rt_runtime_us"), "5000");
    let err =
        t.m.apply(&res(json!({"cpu": {"realtimeRuntime": 50000}})))
            .unwrap_err();
    assert!(
        err.to_string().contains("cpu.rt_runtime_us"),
        "more than the parent has: {err}"
    );
}

#[test]
fn pids_limit_stops_forks() {
    let t = TestCg::new("pids");
    t.m.create(Some(&res(json!({"pids": {"limit": 5}}))))
        .unwrap();
    let ctrl = if t.v2() { "" } else { "pids" };
    assert_eq!(t.read(ctrl, "pids.max"), "5");
    let mut p =
        Proc::gated("for i in 1 2 3 4 5 6 7 8; do sleep 30 >/dev/null 2>&1 & done; echo done");
    t.m.add_process(p.pid()).unwrap();
    p.go();
    let (status, out, err) = p.finish(30);
    assert!(
        err.contains("fork") || err.contains("Resource temporarily unavailable"),
        "stderr: {err}"
    );
    assert!(!status.success() || out.contains("done"));
    let s = t.m.stats().unwrap();
    assert_eq!(s.pids.limit, 5);
    assert!(s.pids.current <= 5, "{:?}", s.pids);
    assert!(!t.read(ctrl, "pids.events").contains("max 0"));
    t.m.apply(&res(json!({"pids": {"limit": -1}}))).unwrap();
    assert_eq!(t.read(ctrl, "pids.max"), "max");
}

#[test]
fn block_io() {
    let t = TestCg::new("io");
    let Some(dev) = some_block_device() else {
        t.m.create(None).unwrap();
        eprintln!("skip: no block device on this machine");
        return;
    };
    let (major, minor) = dev.split_once(':').unwrap();
    let (major, minor): (i64, i64) = (major.parse().unwrap(), minor.parse().unwrap());
    let throttle = |rate: u64| json!([{"major": major, "minor": minor, "rate": rate}]);
    let r = res(json!({"blockIO": {
        "throttleReadBpsDevice": throttle(1048576), "throttleWriteBpsDevice": throttle(2097152),
        "throttleReadIOPSDevice": throttle(100), "throttleWriteIOPSDevice": throttle(200)}}));
    t.m.create(Some(&r)).unwrap();
    if t.v2() {
        let max = t.read("", "io.max");
        assert!(
            max.contains(&format!(
                "{dev} rbps=1048576 wbps=2097152 riops=100 wiops=200"
            )),
            "io.max: {max}"
        );
    } else {
        assert_eq!(
            t.read("blkio", "blkio.throttle.read_bps_device"),
            format!("{dev} 1048576")
        );
        assert_eq!(
            t.read("blkio", "blkio.throttle.write_bps_device"),
            format!("{dev} 2097152")
        );
        assert_eq!(
            t.read("blkio", "blkio.throttle.read_iops_device"),
            format!("{dev} 100")
        );
        assert_eq!(
            t.read("blkio", "blkio.throttle.write_iops_device"),
            format!("{dev} 200")
        );
    }
    // Weights need a weight-aware scheduler (CFQ/BFQ on v1, BFQ or io.cost on v2).
    let weight = t.m.apply(&res(json!({"blockIO": {"weight": 500}})));
    let v1_file = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| !t.v2() && t.dir("blkio").join(f).exists());
    match (t.v2(), v1_file) {
        (false, Some(file)) => assert_eq!(t.read("blkio", file), "500"),
        (false, None) => {
            let msg = weight.unwrap_err().to_string();
            assert_eq!(
                msg,
                format!(
                    "cgroup v1: blkio.weight not supported by this kernel ({})",
                    t.dir("blkio").display()
                )
            );
        }
        (true, _) if t.dir("").join("io.bfq.weight").exists() => {
            weight.unwrap();
            assert!(t.read("", "io.bfq.weight").starts_with("default 500"));
        }
        (true, _) if t.dir("").join("io.weight").exists() => {
            weight.unwrap();
            assert_eq!(
                t.read("", "io.weight"),
                "default 4950",
                "runc: 1 + (500-10)*9999/990"
            );
        }
        (true, _) => assert!(weight.unwrap_err().to_string().contains("io.weight")),
    }
}

#[test]
fn hugetlb_limits() {
    let t = TestCg::new("huge");
    let r = res(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}));
    t.m.create(Some(&r)).unwrap();
    // v2, or the v2 hierarchy of a hybrid host whose v1 has no hugetlb (like the build host).
    let (ctrl, file, rsvd) = if t.m.path_for("hugetlb").is_some() && !t.v2() {
        (
            "hugetlb",
            "hugetlb.2MB.limit_in_bytes",
            "hugetlb.2MB.rsvd.limit_in_bytes",
        )
    } else {
        ("", "hugetlb.2MB.max", "hugetlb.2MB.rsvd.max")
    };
    let dir = if ctrl.is_empty() {
        t.m.paths()[""].clone()
    } else {
        t.dir(ctrl).to_path_buf()
    };
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read(file), "4194304");
    if dir.join(rsvd).exists() {
        assert_eq!(read(rsvd), "4194304");
    }
    let s = t.m.stats().unwrap();
    assert!(s.hugetlb.contains_key("2MB"), "{:?}", s.hugetlb);
    let err =
        t.m.apply(&res(
            json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]}),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("hugetlb.3MB"), "{err}");
    let err =
        t.m.apply(&res(
            json!({"hugepageLimits": [{"pageSize": "2M", "limit": 0}]}),
        ))
        .unwrap_err();
    assert!(matches!(err, CgroupError::Config(_)), "{err}");
}

#[test]
fn network_classid_and_priorities() {
    let t = TestCg::new("net");
    let r = res(
        json!({"network": {"classID": 1048577, "priorities": [{"name": "lo", "priority": 2}]}}),
    );
    if t.v2() {
        t.m.create(Some(&r)).expect("ignored on v2, like runc");
        return;
    }
    match t.m.path_for("net_cls") {
        Some(_) => {
            t.m.create(Some(&r)).unwrap();
            assert_eq!(t.read("net_cls", "net_cls.classid"), "1048577");
            assert!(t.read("net_prio", "net_prio.ifpriomap").contains("lo 2"));
        }
        None => {
            let err = t.m.create(Some(&r)).unwrap_err();
            assert_eq!(
                err.to_string(),
                "cgroup v1: net_cls controller is not mounted (needed for network.classID)"
            );
            assert!(t.anything_left().is_empty());
        }
    }
}

#[test]
fn rdma_without_devices_is_a_clear_error() {
    let t = TestCg::new("rdma");
    let r = res(json!({"rdma": {"mlx5_husk": {"hcaHandles": 3, "hcaObjects": 10000}}}));
    let err = t.m.create(Some(&r)).unwrap_err();
    let msg = err.to_string();
    if t.v2() || t.m.path_for("rdma").is_some() {
        assert!(
            msg.contains("rdma.max") && msg.contains("mlx5_husk hca_handle=3 hca_object=10000"),
            "{msg}"
        );
    } else {
        assert_eq!(
            msg,
            "cgroup v1: rdma controller is not mounted (needed for linux.resources.rdma)"
        );
    }
    assert!(t.anything_left().is_empty());
}

#[test]
fn unified_keys() {
    let t = TestCg::new("unified");
    let r = res(json!({"unified": {"pids.max": "7", "memory.high": "50000000"}}));
    if !t.v2() {
        let err = t.m.create(Some(&r)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid configuration: cannot use unified on cgroup v1"),
            "{err}"
        );
        assert!(
            t.anything_left().is_empty(),
            "validated before creating anything"
        );
        return;
    }
    t.m.create(Some(&r)).unwrap();
    assert_eq!(t.read("", "pids.max"), "7");
    assert_eq!(
        t.read("", "memory.high"),
        "49999872",
        "rounded down to pages"
    );
    let err =
        t.m.apply(&res(json!({"unified": {"../cgroup.procs": "1"}})))
            .unwrap_err();
    assert!(matches!(err, CgroupError::Config(_)), "{err}");
    let err =
        t.m.apply(&res(json!({"unified": {"nosuch.knob": "1"}})))
            .unwrap_err();
    assert!(err.to_string().contains("can't be set"), "{err}");
}
