//! Device access rules enforced by the kernel: the v1 devices controller on v1/hybrid hosts,
//! the eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE, attached with BPF_F_ALLOW_MULTI) on v2.
//! A process inside the cgroup tries each access and reports what the kernel allowed.

mod common;

use common::{res, Proc, TestCg};
use serde_json::json;

/// Runs the probe script inside the container's cgroup and returns its report lines.
fn probe(t: &TestCg) -> Vec<String> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("husk-devprobe-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let script = format!(
        "head -c1 /dev/zero >/dev/null 2>&1 && echo zero-read || echo zero-read-denied
         (echo x > /dev/zero) 2>/dev/null && echo zero-write || echo zero-write-denied
         head -c1 /dev/urandom >/dev/null 2>&1 && echo urandom-read || echo urandom-read-denied
         echo x > /dev/null && echo null-write
         mknod {d}/u c 1 9 2>/dev/null && echo mknod || echo mknod-denied",
        d = dir.display()
    );
    let mut p = Proc::gated(&script);
    t.m.add_process(p.pid()).unwrap();
    p.go();
    let (status, out, err) = p.finish(20);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(status.success(), "probe failed: {out} {err}");
    out.lines().map(str::to_string).collect()
}

#[test]
fn device_rules_are_enforced_and_updated() {
    let t = TestCg::new("devices");
    let base = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"},
    ]);
    t.m.create(Some(&res(json!({"devices": base})))).unwrap();
    if !t.v2() {
        assert_eq!(t.read("devices", "devices.list"), "c 1:3 rwm\nc 1:5 r");
    }
    assert_eq!(
        probe(&t),
        [
            "zero-read",
            "zero-write-denied",
            "urandom-read-denied",
            "null-write",
            "mknod-denied"
        ]
    );

    // An update replaces the rules; on v2 the old program must be detached, or it would
    // still deny /dev/urandom (every attached program has to allow an access).
    let mut more = base.as_array().unwrap().clone();
    more.push(json!({"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rm"}));
    more.push(json!({"allow": true, "type": "c", "major": 1, "minor": 5, "access": "w"}));
    t.m.apply(&res(json!({"devices": more}))).unwrap();
    if !t.v2() {
        assert_eq!(
            t.read("devices", "devices.list"),
            "c 1:3 rwm\nc 1:5 rw\nc 1:9 rm"
        );
    }
    assert_eq!(
        probe(&t),
        [
            "zero-read",
            "zero-write",
            "urandom-read",
            "null-write",
            "mknod"
        ]
    );

    // Deny-list mode: everything but /dev/zero.
    t.m.apply(&res(json!({"devices": [{"allow": true, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "rwm"}]})))
        .unwrap();
    if !t.v2() {
        assert_eq!(
            t.read("devices", "devices.list"),
            "a *:* rwm",
            "v1 shows allow-all lists as this"
        );
    }
    assert_eq!(
        probe(&t),
        [
            "zero-read-denied",
            "zero-write-denied",
            "urandom-read",
            "null-write",
            "mknod"
        ]
    );
}

#[test]
fn wildcard_rules() {
    let t = TestCg::new("wild");
    // mknod of any char device, full access to major 1 except through the later deny.
    let rules = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "access": "m"},
        {"allow": true, "type": "c", "major": 1, "access": "rw"},
    ]);
    t.m.create(Some(&res(json!({"devices": rules})))).unwrap();
    assert_eq!(
        probe(&t),
        [
            "zero-read",
            "zero-write",
            "urandom-read",
            "null-write",
            "mknod"
        ]
    );
    // Removing one device from a wildcard allow cannot be expressed; refuse it up front.
    let hole = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "access": "rw"},
        {"allow": false, "type": "c", "major": 1, "minor": 9, "access": "r"},
    ]);
    let err = t.m.apply(&res(json!({"devices": hole}))).unwrap_err();
    assert!(err.to_string().contains("punch a hole"), "{err}");
}

#[test]
fn bad_rules_fail_before_creating_anything() {
    let t = TestCg::new("badrules");
    let err =
        t.m.create(Some(&res(
            json!({"devices": [{"allow": true, "type": "c", "major": 1, "minor": 3}]}),
        )))
        .unwrap_err();
    assert!(err.to_string().contains("access"), "{err}");
    assert!(t.anything_left().is_empty());
}
