//! Bad input: each gets one clear line naming the problem, a non-zero exit, and leaves no
//! state directory, cgroup or mount behind.

use husk_tests::*;

/// Runs `husk create` expecting failure; returns stderr after checking for leftovers.
fn create_fails(h: &Husk, b: &Bundle, id: &str) -> String {
    let out = h.run(&["create", "--bundle", b.dir.to_str().unwrap(), id]);
    assert!(!out.status.success(), "create {id} unexpectedly succeeded");
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(
        !h.root.join(id).exists(),
        "state directory left behind for {id}"
    );
    assert!(
        cgroup_dirs_named(id).is_empty(),
        "cgroup left behind: {:?}",
        cgroup_dirs_named(id)
    );
    assert!(
        mounts_mentioning(b.dir.to_str().unwrap()).is_empty(),
        "mounts left behind"
    );
    err
}

#[test]
fn broken_json() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |_| {});
    std::fs::write(
        b.dir.join("config.json"),
        "{\"ociVersion\": \"1.0.2\",\n \"root\": ",
    )
    .unwrap();
    let err = create_fails(&h, &b, &unique("json"));
    assert!(
        err.contains("config.json") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn missing_rootfs() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| c["root"]["path"] = json!("nothere"));
    let err = create_fails(&h, &b, &unique("rootfs"));
    assert!(
        err.contains("root.path") && err.contains("nothere"),
        "{err}"
    );
}

#[test]
fn missing_executable() {
    let h = Husk::new();
    let b = Bundle::new(&["nosuchprogram"], |_| {});
    let err = create_fails(&h, &b, &unique("exe"));
    // Podman maps this wording to exit code 127.
    assert!(err.contains("executable file not found in $PATH"), "{err}");
    let b = Bundle::new(&["/bin/nosuch"], |_| {});
    let err = create_fails(&h, &b, &unique("exe"));
    assert!(err.contains("no such file or directory"), "{err}");
}

#[test]
fn failure_in_mount_setup_cleans_up() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/nonexistent/source", "options": ["rbind"]}));
    });
    let err = create_fails(&h, &b, &unique("mnt"));
    assert!(err.contains("/x") && err.contains("no such file"), "{err}");
    // The missing thing is the source: the message names it (as runc's does).
    assert!(err.contains("/nonexistent/source"), "{err}");
}

#[test]
fn duplicate_id() {
    let h = Husk::new();
    let b = Bundle::new(&["sleep", "10"], |_| {});
    let id = unique("dup");
    h.create(&id, &b);
    let out = h.run(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    // The first container is untouched.
    assert_eq!(h.status(&id), "created");
}

#[test]
fn unknown_id_for_every_command() {
    let h = Husk::new();
    for args in [
        vec!["state", "nope"],
        vec!["start", "nope"],
        vec!["kill", "nope", "KILL"],
        vec!["delete", "nope"],
    ] {
        let out = h.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("container does not exist"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // --force on a missing container succeeds, as with runc (clients always call it).
    assert!(h.run(&["delete", "--force", "nope"]).status.success());
}

#[test]
fn bad_ids_and_flags() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |_| {});
    let out = h.run(&["create", "--bundle", b.dir.to_str().unwrap(), "../evil"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid container id"),
        "{}",
        stderr(&out)
    );
    let out = h.run(&["create", "--bogus", "x"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("-bogus"), "{}", stderr(&out));
    let out = h.run(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("frobnicate"));
}

#[test]
fn bad_signal_leaves_container_alone() {
    let h = Husk::new();
    let b = Bundle::new(&["sleep", "10"], |_| {});
    let id = unique("badsig");
    h.create(&id, &b);
    let out = h.run(&["kill", &id, "SIGNOPE"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown signal"), "{}", stderr(&out));
    assert_eq!(h.status(&id), "created");
}

/// Intel RDT is not implemented: a config asking for it is refused, not run without it.
#[test]
fn intel_rdt_is_refused() {
    let h = Husk::new();
    let b = Bundle::new(&["true"], |c| {
        c["linux"]["intelRdt"] = json!({"closID": "husk"});
    });
    let err = create_fails(&h, &b, &unique("rdt"));
    assert!(err.contains("linux.intelRdt"), "{err}");
}
