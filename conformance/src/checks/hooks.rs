//! config.md POSIX-platform Hooks and runtime.md Lifecycle (steps 3-13).
//!
//! Every hook is one script that saves the state it gets on stdin to `SCRATCH/NAME.json`,
//! appends NAME to `SCRATCH/order` and exits with the code it is given. The host scripts
//! resolve in the runtime namespace; the startContainer one lives in the rootfs, since its
//! path resolves in the container namespace (after pivot_root).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::{json, Value};

use super::{lines, wait_file, Check, Ctx, OrFail, Outcome, Problem};
use crate::bundle::{Bundle, SCRATCH};

pub const CHECKS: &[Check] = &[
    Check {
        name: "hooks_order",
        spec: "config.md Hooks: hooks MUST be called in the listed order: prestart and then \
               createRuntime, then createContainer, all as part of create (config.md \
               Prestart/CreateRuntime/CreateContainer Hooks); startContainer as part of start \
               before the user process; poststart before start returns; poststop before \
               delete returns (runtime.md Lifecycle steps 3-13)",
        run: hooks_order,
    },
    Check {
        name: "hooks_state",
        spec: "config.md Hooks: the state of the container MUST be passed to hooks over \
               stdin (runtime.md State: ociVersion, id, status, pid, bundle); poststart sees \
               running, poststop sees stopped",
        run: hooks_state,
    },
    Check {
        name: "hooks_poststart_failure",
        spec: "runtime.md Lifecycle step 9: if a poststart hook fails the runtime MUST log a \
               warning, but the remaining hooks and lifecycle continue as if it had succeeded",
        run: hooks_poststart_failure,
    },
    Check {
        name: "hooks_poststop_failure",
        spec: "runtime.md Lifecycle step 13: if a poststop hook fails the runtime MUST log a \
               warning, but the remaining hooks and lifecycle continue as if it had succeeded",
        run: hooks_poststop_failure,
    },
    Check {
        name: "hooks_createruntime_failure",
        spec: "runtime.md Lifecycle step 4: if a createRuntime hook fails the runtime MUST \
               generate an error, stop the container and destroy it (step 12)",
        run: hooks_createruntime_failure,
    },
];

const HOST_PATH: &str = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

/// A bundle with the recording hook script on the host and in the rootfs.
fn hook_bundle(ctx: &Ctx, name: &str) -> Result<Bundle, Problem> {
    let b = ctx.bundle(name)?;
    let script = |dir: &str| {
        format!(
            "#!/bin/sh\ncat > \"{dir}/$1.json\"\necho \"$1\" >> \"{dir}/order\"\nexit \"${{2:-0}}\"\n"
        )
    };
    let host = b.base.join("hook.sh");
    let inside = b.rootfs().join("hook.sh");
    let scratch = b.scratch.to_string_lossy().into_owned();
    for (path, text) in [(&host, script(&scratch)), (&inside, script(SCRATCH))] {
        fs::write(path, text).or_fail("writing a hook script")?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .or_fail("making a hook script executable")?;
    }
    Ok(b)
}

/// A hook entry running the host script (or, `inside`, the rootfs one) as NAME, exiting CODE.
fn hook(b: &Bundle, name: &str, code: u8, inside: bool) -> Value {
    let path = if inside {
        "/hook.sh".to_string()
    } else {
        b.base.join("hook.sh").to_string_lossy().into_owned()
    };
    json!({ "path": path, "args": ["hook.sh", name, code.to_string()], "env": [HOST_PATH] })
}

fn order(b: &Bundle) -> Vec<String> {
    let text = fs::read_to_string(b.scratch("order")).unwrap_or_default();
    lines(&text).into_iter().map(String::from).collect()
}

/// A bundle with one recording hook of every kind; the process notes whether the
/// startContainer hook had run before it, then runs until killed.
fn all_hooks(ctx: &Ctx, name: &str) -> Result<Bundle, Problem> {
    let mut b = hook_bundle(ctx, name)?;
    b.sh(
        "[ -e /scratch/startContainer.json ] && echo yes > /scratch/saw; \
          while :; do sleep 1; done",
    );
    b.config["hooks"] = json!({
        "prestart": [hook(&b, "prestart", 0, false)],
        "createRuntime": [hook(&b, "createRuntime", 0, false)],
        "createContainer": [hook(&b, "createContainer", 0, false)],
        "startContainer": [hook(&b, "startContainer", 0, true)],
        "poststart": [hook(&b, "poststart", 0, false)],
        "poststop": [hook(&b, "poststop", 0, false)],
    });
    Ok(b)
}

/// Goes through create, start, kill, delete; returns the hooks run by the end of each.
fn lifecycle(ctx: &Ctx, b: &Bundle) -> Result<[Vec<String>; 4], Problem> {
    let c = ctx.container(b);
    c.create()?;
    let created = order(b);
    c.start()?;
    let started = order(b);
    wait_file(&b.scratch("saw")).map_err(|_| {
        Problem::Fail(format!(
            "the process did not see the startContainer hook's output (hooks so far: {started:?})"
        ))
    })?;
    let out = c.kill(Some("KILL"));
    ensure!(out.ok, "kill failed: {}", out.brief());
    c.wait_status("stopped")?;
    let stopped = order(b);
    let out = c.delete(false);
    ensure!(out.ok, "delete failed: {}", out.brief());
    Ok([created, started, stopped, order(b)])
}

fn hooks_order(ctx: &Ctx) -> Outcome {
    let b = all_hooks(ctx, "hooks-order")?;
    let got = lifecycle(ctx, &b)?;
    const CREATE: &[&str] = &["prestart", "createRuntime", "createContainer"];
    const START: &[&str] = &[
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
    ];
    const DELETE: &[&str] = &[
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    let wants = [CREATE, START, START, DELETE];
    let phases = ["create", "start", "kill", "delete"];
    for ((phase, got), want) in phases.iter().zip(&got).zip(wants) {
        ensure!(
            got.iter().map(String::as_str).eq(want.iter().copied()),
            "after {phase} the hooks run were {got:?}, want {want:?}"
        );
    }
    Ok(())
}

fn hooks_state(ctx: &Ctx) -> Outcome {
    let b = all_hooks(ctx, "hooks-state")?;
    lifecycle(ctx, &b)?;
    let id = ctx.id("hooks-state");
    let bundle = b.dir.canonicalize().or_fail("resolving the bundle path")?;
    let names = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    for name in names {
        let text = fs::read_to_string(b.scratch(&format!("{name}.json")))
            .or_fail(&format!("the {name} hook's saved stdin"))?;
        let st: Value = serde_json::from_str(&text)
            .or_fail(&format!("the {name} hook's stdin is not JSON ({text:?})"))?;
        ensure!(
            st["ociVersion"].is_string() && st["status"].is_string(),
            "{name}: state lacks ociVersion or status: {st}"
        );
        ensure!(st["id"] == json!(id), "{name}: id is not {id:?}: {st}");
        ensure!(
            st["bundle"].as_str() == bundle.to_str(),
            "{name}: bundle is not {}: {st}",
            bundle.display()
        );
        if name != "poststop" {
            ensure!(
                st["pid"].as_u64().is_some_and(|p| p > 0),
                "{name}: no pid > 0: {st}"
            );
        }
        let want = match name {
            "poststart" => "running",
            "poststop" => "stopped",
            _ => continue,
        };
        ensure!(st["status"] == want, "{name}: status is not {want}: {st}");
    }
    Ok(())
}

fn hooks_poststart_failure(ctx: &Ctx) -> Outcome {
    let mut b = hook_bundle(ctx, "hooks-poststart-fail")?;
    b.sh("while :; do sleep 1; done");
    b.config["hooks"] = json!({
        "poststart": [hook(&b, "failing", 1, false), hook(&b, "next", 0, false)],
    });
    let c = ctx.container(&b);
    c.create()?;
    let out = ctx.rt.run(&["start", &c.id]);
    ensure!(
        out.ok,
        "start failed because of the failing poststart hook: {}",
        out.brief()
    );
    ensure!(
        order(&b) == ["failing", "next"],
        "poststart hooks run: {:?}, want [failing, next]",
        order(&b)
    );
    let st = c.status()?;
    ensure!(st == "running", "status after start is {st}, not running");
    Ok(())
}

fn hooks_poststop_failure(ctx: &Ctx) -> Outcome {
    let mut b = hook_bundle(ctx, "hooks-poststop-fail")?;
    b.config["hooks"] = json!({
        "poststop": [hook(&b, "failing", 1, false), hook(&b, "next", 0, false)],
    });
    let c = ctx.container(&b);
    c.run_to_exit()?;
    let out = c.delete(false);
    ensure!(
        out.ok,
        "delete failed because of the failing poststop hook: {}",
        out.brief()
    );
    ensure!(
        order(&b) == ["failing", "next"],
        "poststop hooks run: {:?}, want [failing, next]",
        order(&b)
    );
    ensure!(
        ctx.rt.state(&c.id).is_err(),
        "the container still exists after delete"
    );
    Ok(())
}

fn hooks_createruntime_failure(ctx: &Ctx) -> Outcome {
    let mut b = hook_bundle(ctx, "hooks-createruntime-fail")?;
    b.config["hooks"] = json!({ "createRuntime": [hook(&b, "failing", 1, false)] });
    let c = ctx.container(&b);
    let out = c.try_create();
    ensure!(
        order(&b) == ["failing"],
        "createRuntime hooks run: {:?}, want [failing]",
        order(&b)
    );
    ensure!(
        !out.ok,
        "create succeeded although a createRuntime hook failed"
    );
    if let Ok(st) = ctx.rt.state(&c.id) {
        fail!("the container was left behind after the failed create: {st}");
    }
    Ok(())
}
