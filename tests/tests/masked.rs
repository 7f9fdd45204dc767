//! Many masked paths (Kubernetes masks one directory per CPU): every masked directory is empty
//! and read-only, all of them share one tmpfs, files read as /dev/null, and a path listed twice
//! is masked once.

use husk_tests::*;

const DIRS: usize = 64;

/// A bundle whose rootfs holds /masked/cpuN/thermal_throttle (with a file inside) for N < 64 and
/// a file /masked/secret, all listed in linux.maskedPaths on top of the default ones; the first
/// directory is also listed twice, and /masked/nested/inner is masked before /masked/nested,
/// which then hides the first tmpfs' mount point.
fn bundle(script: &str) -> Bundle {
    let mut masked: Vec<String> = vec!["/masked/nested/inner".into(), "/masked/nested".into()];
    masked.extend((0..DIRS).map(|n| format!("/masked/cpu{n}/thermal_throttle")));
    masked.push("/masked/cpu0/thermal_throttle".into());
    masked.push("/masked/secret".into());
    let b = Bundle::new(&["sh", "-c", script], |c| {
        let list = c["linux"]["maskedPaths"].as_array_mut().unwrap();
        list.extend(masked.iter().map(|p| json!(p)));
    });
    let root = b.dir.join("rootfs/masked");
    for n in 0..DIRS {
        let dir = root.join(format!("cpu{n}/thermal_throttle"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("count"), "42\n").unwrap();
    }
    std::fs::create_dir_all(root.join("nested/inner")).unwrap();
    std::fs::write(root.join("nested/inner/x"), "x\n").unwrap();
    std::fs::write(root.join("secret"), "top secret\n").unwrap();
    b
}

#[test]
fn masked_directories_are_empty_read_only_and_share_one_tmpfs() {
    let script = "for d in /masked/cpu*/thermal_throttle /masked/nested; do \
                    echo \"$(ls -A $d | wc -l) $(touch $d/f 2>&1 >/dev/null | grep -c Read-only)\"; \
                  done; \
                  echo \"secret $(wc -c < /masked/secret)\"; \
                  grep ' /masked/' /proc/self/mountinfo";
    let h = Husk::new();
    let b = bundle(script);
    let out = h.run_container(&unique("masked"), &b);
    let text = stdout(&out);
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    // One "entries read-only-errors" line per directory: empty, and touch fails with EROFS.
    for (n, line) in lines.iter().take(DIRS + 1).enumerate() {
        assert_eq!(
            line.trim(),
            "0 1",
            "masked directory #{n} not empty/read-only:\n{text}"
        );
    }
    assert_eq!(lines[DIRS + 1], "secret 0", "{text}");

    let mounts: Vec<Vec<&str>> = lines[DIRS + 2..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let at = |path: &str| -> Vec<&Vec<&str>> { mounts.iter().filter(|m| m[4] == path).collect() };
    // Each directory masked exactly once (the duplicate too), by a read-only tmpfs ...
    let mut devices = std::collections::BTreeSet::new();
    for n in 0..DIRS {
        let path = format!("/masked/cpu{n}/thermal_throttle");
        let found = at(&path);
        assert_eq!(
            found.len(),
            1,
            "{path} mounted {} times:\n{text}",
            found.len()
        );
        let m = found[0];
        let sep = m.iter().position(|f| *f == "-").unwrap();
        assert_eq!(m[sep + 1], "tmpfs", "{path}: {m:?}");
        assert!(m[5].split(',').any(|o| o == "ro"), "{path} not ro: {m:?}");
        devices.insert(m[2]);
    }
    // ... and all of them are the same tmpfs (one superblock: one major:minor).
    assert_eq!(
        devices.len(),
        1,
        "masked dirs on {devices:?}, want one tmpfs"
    );
    assert_eq!(at("/masked/secret").len(), 1, "{text}");
}
