//! runtime.md: State, Lifecycle and the Operations (state, create, start, kill, delete).

use std::thread::sleep;
use std::time::Duration;

use serde_json::json;

use super::{wait_file, Check, Ctx, OrFail, Outcome, Problem};
use crate::runtime::{alive, wait_until, Io, SETTLE};

pub const CHECKS: &[Check] = &[
    Check {
        name: "state",
        spec: "runtime.md State + Query State: state returns ociVersion, id, status, pid \
               (REQUIRED when created/running) and bundle (the absolute path to the bundle); \
               status is created after create, running after start, stopped once the process \
               has exited",
        run: state,
    },
    Check {
        name: "create_does_not_run_process",
        spec: "runtime.md Lifecycle step 2 + Create: the user-specified program MUST NOT be \
               run at create; start MUST run it",
        run: create_does_not_run_process,
    },
    Check {
        name: "create_duplicate_id",
        spec: "runtime.md Create: if the ID is not unique the runtime MUST generate an error \
               and a new container MUST NOT be created; Errors: a failed operation MUST leave \
               the environment as if it were never attempted",
        run: create_duplicate_id,
    },
    Check {
        name: "unknown_id",
        spec: "runtime.md Query State / Start / Kill / Delete: an operation on a container \
               that does not exist MUST generate an error",
        run: unknown_id,
    },
    Check {
        name: "start_running",
        spec: "runtime.md Start: starting a container that is not created MUST have no \
               effect on the container and MUST generate an error (running container)",
        run: start_running,
    },
    Check {
        name: "start_stopped",
        spec: "runtime.md Start: starting a container that is not created MUST have no \
               effect on the container and MUST generate an error (stopped container)",
        run: start_stopped,
    },
    Check {
        name: "kill_default_term",
        spec: "runtime.md Kill: MUST send the specified signal to the container process; \
               runc's command line sends SIGTERM when no signal is given",
        run: kill_default_term,
    },
    Check {
        name: "kill_named_signal",
        spec: "runtime.md Kill: MUST send the specified signal (KILL); once the process is \
               stopped the status MUST be stopped",
        run: kill_named_signal,
    },
    Check {
        name: "kill_stopped",
        spec: "runtime.md Kill: signalling a container that is neither created nor running \
               MUST have no effect on the container and MUST generate an error",
        run: kill_stopped,
    },
    Check {
        name: "delete_stopped",
        spec: "runtime.md Delete: deleting a stopped container MUST delete the resources \
               created at create; the container then no longer exists (state errors)",
        run: delete_stopped,
    },
    Check {
        name: "delete_running",
        spec: "runtime.md Delete: deleting a container that is not stopped MUST have no \
               effect on the container and MUST generate an error (running container)",
        run: delete_running,
    },
    Check {
        name: "delete_created",
        spec: "runtime.md Delete: deleting a container that is not stopped MUST have no \
               effect on the container and MUST generate an error (created container)",
        run: delete_created,
    },
    Check {
        name: "delete_force",
        spec: "runc extension (not in the spec): `delete --force` removes a running \
               container; SKIP when the runtime has no --force",
        run: delete_force,
    },
    Check {
        name: "annotations",
        spec: "runtime.md State: annotations (map) contains the annotations associated \
               with the container (config.md Annotations)",
        run: annotations,
    },
];

/// A process that runs until the scratch file `go` appears.
const WAIT_FOR_GO: &str = "while [ ! -e /scratch/go ]; do sleep 0.05; done";
/// A process that runs until it is killed.
const FOREVER: &str = "while :; do sleep 1; done";

fn state(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("state")?;
    b.sh(WAIT_FOR_GO);
    b.save().or_fail("writing config.json")?;
    let c = ctx.container(&b);
    // A relative --bundle: the state must still report the absolute path.
    let io = Io {
        cwd: Some(b.base.clone()),
        ..b.stdio()
    };
    let out = ctx
        .rt
        .run_with(&["create", "--bundle", "bundle", &c.id], &io);
    ensure!(
        out.ok,
        "create --bundle bundle (relative) failed: {}",
        out.brief()
    );
    let want_bundle = b.dir.canonicalize().or_fail("resolving the bundle path")?;
    let st = c.state()?;
    ensure!(
        st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "ociVersion missing or empty: {st}"
    );
    ensure!(st["id"] == json!(c.id), "id is not {:?}: {st}", c.id);
    ensure!(
        st["status"] == "created",
        "status after create is not created: {st}"
    );
    let pid = c.pid()?;
    ensure!(alive(pid), "pid {pid} from state is not a live process");
    ensure!(
        st["bundle"].as_str() == want_bundle.to_str(),
        "bundle is not the absolute bundle path {}: {st}",
        want_bundle.display()
    );
    c.start()?;
    let st = c.state()?;
    ensure!(
        st["status"] == "running",
        "status after start is not running: {st}"
    );
    ensure!(
        st["pid"] == json!(pid),
        "pid changed from {pid} at start: {st}"
    );
    std::fs::write(b.scratch("go"), "").or_fail("writing the go marker")?;
    c.wait_status("stopped")?;
    let st = c.state()?;
    ensure!(
        st["id"] == json!(c.id) && st["bundle"].as_str() == want_bundle.to_str(),
        "stopped state lost id or bundle: {st}"
    );
    Ok(())
}

fn create_does_not_run_process(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("not-before-start")?;
    b.sh("echo ran > /scratch/ran");
    let c = ctx.container(&b);
    c.create()?;
    sleep(Duration::from_millis(300));
    ensure!(
        !b.scratch("ran").exists(),
        "the process ran before start (marker written after create)"
    );
    c.start()?;
    wait_file(&b.scratch("ran"))
        .map_err(|_| Problem::Fail("the process did not run after start (no marker)".into()))
}

fn create_duplicate_id(ctx: &Ctx) -> Outcome {
    let a = ctx.bundle("dup")?;
    let mut other = ctx.bundle("dup-other")?;
    other.sh("echo ran > /scratch/ran");
    other.save().or_fail("writing config.json")?;
    let c = ctx.container(&a);
    c.create()?;
    let before = c.state()?;
    let pid = c.pid()?;
    let dir = other.dir.to_string_lossy().into_owned();
    let out = ctx
        .rt
        .run_with(&["create", "--bundle", &dir, &c.id], &other.stdio());
    ensure!(!out.ok, "a second create with the id in use succeeded");
    let after = c.state()?;
    ensure!(
        after["status"] == "created" && after["pid"] == json!(pid),
        "the existing container changed: before {before}, after {after}"
    );
    ensure!(
        after["bundle"] == before["bundle"],
        "the existing container's bundle changed: {after}"
    );
    ensure!(alive(pid), "the existing container's process {pid} died");
    Ok(())
}

fn unknown_id(ctx: &Ctx) -> Outcome {
    let id = ctx.id("no-such-container");
    let ops: [&[&str]; 4] = [
        &["state", &id],
        &["start", &id],
        &["kill", &id, "KILL"],
        &["delete", &id],
    ];
    let wrongly_ok: Vec<String> = ops
        .iter()
        .filter(|args| ctx.rt.run(args).ok)
        .map(|args| args[0].to_string())
        .collect();
    ensure!(
        wrongly_ok.is_empty(),
        "succeeded on an unknown id: {}",
        wrongly_ok.join(", ")
    );
    Ok(())
}

fn start_running(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("start-running")?;
    b.sh(FOREVER);
    let c = ctx.container(&b);
    c.create()?;
    c.start()?;
    let pid = c.pid()?;
    let out = ctx.rt.run(&["start", &c.id]);
    ensure!(!out.ok, "start of a running container succeeded");
    let st = c.state()?;
    ensure!(
        st["status"] == "running" && st["pid"] == json!(pid) && alive(pid),
        "the running container was affected: {st}"
    );
    Ok(())
}

fn start_stopped(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("start-stopped")?;
    b.sh("echo run >> /scratch/runs");
    let c = ctx.container(&b);
    c.run_to_exit()?;
    let out = ctx.rt.run(&["start", &c.id]);
    ensure!(!out.ok, "start of a stopped container succeeded");
    let st = c.state()?;
    ensure!(
        st["status"] == "stopped",
        "the stopped container was affected: {st}"
    );
    let runs = std::fs::read_to_string(b.scratch("runs")).unwrap_or_default();
    ensure!(
        runs.lines().count() == 1,
        "the process ran {} times",
        runs.lines().count()
    );
    Ok(())
}

fn kill_default_term(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("kill-term")?;
    b.sh(
        "trap 'echo term > /scratch/term; exit 0' TERM; echo > /scratch/ready; \
         while :; do sleep 0.05; done",
    );
    let c = ctx.container(&b);
    c.create()?;
    c.start()?;
    wait_file(&b.scratch("ready"))?;
    let out = c.kill(None);
    ensure!(out.ok, "kill without a signal failed: {}", out.brief());
    wait_file(&b.scratch("term"))
        .map_err(|_| Problem::Fail("the process's TERM trap never ran".into()))?;
    c.wait_status("stopped")
}

fn kill_named_signal(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("kill-kill")?;
    b.sh(FOREVER);
    let c = ctx.container(&b);
    c.create()?;
    c.start()?;
    let pid = c.pid()?;
    let out = c.kill(Some("KILL"));
    ensure!(out.ok, "kill KILL failed: {}", out.brief());
    c.wait_status("stopped")?;
    ensure!(!alive(pid), "process {pid} still alive after KILL");
    Ok(())
}

fn kill_stopped(ctx: &Ctx) -> Outcome {
    let b = ctx.bundle("kill-stopped")?;
    let c = ctx.container(&b);
    c.run_to_exit()?;
    let out = c.kill(Some("TERM"));
    ensure!(!out.ok, "kill of a stopped container succeeded");
    let st = c.state()?;
    ensure!(
        st["status"] == "stopped",
        "the stopped container was affected: {st}"
    );
    Ok(())
}

fn delete_stopped(ctx: &Ctx) -> Outcome {
    let b = ctx.bundle("delete-stopped")?;
    let c = ctx.container(&b);
    c.run_to_exit()?;
    let out = c.delete(false);
    ensure!(
        out.ok,
        "delete of a stopped container failed: {}",
        out.brief()
    );
    ensure!(
        ctx.rt.state(&c.id).is_err(),
        "state still succeeds after delete"
    );
    Ok(())
}

fn delete_running(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("delete-running")?;
    b.sh(FOREVER);
    let c = ctx.container(&b);
    c.create()?;
    c.start()?;
    let pid = c.pid()?;
    let out = c.delete(false);
    ensure!(!out.ok, "delete of a running container succeeded");
    let st = c.state()?;
    ensure!(
        st["status"] == "running" && alive(pid),
        "the running container was affected: {st}"
    );
    Ok(())
}

fn delete_created(ctx: &Ctx) -> Outcome {
    let b = ctx.bundle("delete-created")?;
    let c = ctx.container(&b);
    c.create()?;
    let pid = c.pid()?;
    let out = c.delete(false);
    let after = match c.state() {
        Ok(st) => st.to_string(),
        Err(_) => "gone".to_string(),
    };
    ensure!(
        !out.ok,
        "delete of a created container succeeded (container now {after})"
    );
    let st = c.state()?;
    ensure!(
        st["status"] == "created" && alive(pid),
        "the created container was affected: {st}"
    );
    Ok(())
}

fn delete_force(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("delete-force")?;
    b.sh(FOREVER);
    let c = ctx.container(&b);
    c.create()?;
    c.start()?;
    let pid = c.pid()?;
    let out = c.delete(true);
    if !out.ok {
        let err = out.stderr.to_lowercase();
        let unknown = ["not defined", "unknown", "unrecognized", "unexpected"];
        if err.contains("force") && unknown.iter().any(|u| err.contains(u)) {
            return Err(Problem::Skip(format!(
                "the runtime has no delete --force ({})",
                out.brief()
            )));
        }
        fail!(
            "delete --force of a running container failed: {}",
            out.brief()
        );
    }
    ensure!(
        ctx.rt.state(&c.id).is_err(),
        "state still succeeds after delete --force"
    );
    ensure!(
        wait_until(SETTLE, || !alive(pid)),
        "process {pid} still alive after delete --force"
    );
    Ok(())
}

fn annotations(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("annotations")?;
    let want = json!({ "com.example.conformance": "yes", "org.example.empty": "" });
    b.config["annotations"] = want.clone();
    let c = ctx.container(&b);
    c.create()?;
    let st = c.state()?;
    let Some(got) = st["annotations"].as_object() else {
        fail!("state has no annotations map: {st}");
    };
    for (k, v) in want.as_object().into_iter().flatten() {
        ensure!(
            got.get(k) == Some(v),
            "annotation {k:?} is {:?}, want {v}",
            got.get(k)
        );
    }
    Ok(())
}
