//! config.md Process: args, env, cwd, user, rlimits, and the Linux process properties
//! (capabilities, noNewPrivileges, oomScoreAdj), and stdio without a terminal.

use std::fs;

use serde_json::json;

use super::{lines, Check, Ctx, OrFail, Outcome};

pub const CHECKS: &[Check] = &[
    Check {
        name: "process_args",
        spec: "config.md Process: args has execvp argv semantics; the first entry is the \
               file, every entry is passed verbatim (spaces, empty strings, globs)",
        run: process_args,
    },
    Check {
        name: "process_env",
        spec: "config.md Process: env has the semantics of environ; every entry reaches the \
               process unchanged",
        run: process_env,
    },
    Check {
        name: "process_cwd",
        spec: "config.md Process: cwd is the working directory that will be set for the \
               executable",
        run: process_cwd,
    },
    Check {
        name: "process_cwd_missing",
        spec: "config.md Process cwd + runtime.md Create: the spec does not say a cwd missing \
               from the rootfs is created; it either becomes the working directory or, if the \
               runtime cannot apply it, create (or start) MUST generate an error",
        run: process_cwd_missing,
    },
    Check {
        name: "process_user",
        spec: "config.md POSIX-platform User: uid, gid and additionalGids in the container \
               namespace are those of the process (real, effective, saved, fs)",
        run: process_user,
    },
    Check {
        name: "process_rlimits",
        spec: "config.md POSIX process rlimits: getrlimit on each type MUST succeed; \
               rlim_cur MUST match soft and rlim_max MUST match hard",
        run: process_rlimits,
    },
    Check {
        name: "process_no_new_privileges",
        spec: "config.md Linux Process: noNewPrivileges true prevents the process from \
               gaining privileges (no_new_privs set)",
        run: process_no_new_privileges,
    },
    Check {
        name: "process_oom_score_adj",
        spec: "config.md Linux Process: if oomScoreAdj is set the runtime MUST set \
               oom_score_adj to it; if it is not set the runtime MUST NOT change it",
        run: process_oom_score_adj,
    },
    Check {
        name: "process_capabilities",
        spec: "config.md Linux Process capabilities: the bounding, effective, permitted, \
               inheritable and ambient sets are those kept for the process (non-root user, \
               so the kernel keeps permitted/effective to the ambient set at exec)",
        run: process_capabilities,
    },
    Check {
        name: "process_stdio",
        spec: "config.md Process terminal (false: no pseudoterminal); runtime-linux.md File \
               descriptors: stdin, stdout and stderr are kept open for the application",
        run: process_stdio,
    },
];

fn process_args(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("args")?;
    b.config["process"]["args"] = json!([
        "sh",
        "-c",
        "printf '%s\\n' \"$0\" \"$@\"",
        "argv0",
        "one  two",
        "",
        "*"
    ]);
    let out = ctx.output(&b)?;
    let want = "argv0\none  two\n\n*\n";
    ensure!(out == want, "the process printed {out:?}, want {want:?}");
    Ok(())
}

fn process_env(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("env")?;
    let env = [
        "PATH=/bin",
        "CONF_SPACES=a b  c",
        "CONF_EMPTY=",
        "CONF_EQUALS=x=y",
    ];
    b.config["process"]["env"] = json!(env);
    b.config["process"]["args"] = json!(["env"]);
    let out = ctx.output(&b)?;
    let got: Vec<&str> = out.lines().collect();
    for want in env {
        ensure!(
            got.contains(&want),
            "{want:?} missing from the environment {got:?}"
        );
    }
    Ok(())
}

fn process_cwd(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("cwd")?;
    b.config["process"]["cwd"] = json!("/etc");
    b.config["process"]["args"] = json!(["pwd"]);
    let out = ctx.output(&b)?;
    ensure!(
        out.trim() == "/etc",
        "pwd printed {:?}, want /etc",
        out.trim()
    );
    Ok(())
}

fn process_cwd_missing(ctx: &Ctx) -> Outcome {
    // The control: the same process with a cwd that exists must run, so that an error below
    // is about the cwd and not a runtime that cannot run anything.
    let mut control = ctx.bundle("cwd-control")?;
    control.config["process"]["args"] = json!(["pwd"]);
    ctx.output(&control)?;
    let mut b = ctx.bundle("cwd-missing")?;
    let cwd = "/conformance/missing";
    b.config["process"]["cwd"] = json!(cwd);
    b.config["process"]["args"] = json!(["pwd"]);
    let c = ctx.container(&b);
    // An error at create or start is conformant: the runtime could not apply cwd.
    if !c.try_create().ok || !ctx.rt.run(&["start", &c.id]).ok {
        return Ok(());
    }
    c.wait_status("stopped")?;
    let out = b.stdout();
    ensure!(
        out.trim() == cwd,
        "start succeeded but the process ran in {:?}, not {cwd}",
        out.trim()
    );
    Ok(())
}

/// The whitespace-separated values of a `Key:` line of /proc/self/status (or limits) output.
fn field<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|rest| rest.split_whitespace().collect())
        .unwrap_or_default()
}

fn process_user(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("user")?;
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [5, 1001] });
    b.config["process"]["args"] = json!(["cat", "/proc/self/status"]);
    let out = ctx.output(&b)?;
    let uid = field(&out, "Uid:");
    let gid = field(&out, "Gid:");
    ensure!(
        uid.len() == 4 && uid.iter().all(|u| *u == "1000"),
        "Uid (real, effective, saved, fs) is {uid:?}, want 1000"
    );
    ensure!(
        gid.len() == 4 && gid.iter().all(|g| *g == "1000"),
        "Gid (real, effective, saved, fs) is {gid:?}, want 1000"
    );
    let groups = field(&out, "Groups:");
    ensure!(
        groups.contains(&"5") && groups.contains(&"1001"),
        "supplementary groups are {groups:?}, want 5 and 1001"
    );
    ensure!(
        groups.iter().all(|g| ["5", "1001", "1000"].contains(g)),
        "supplementary groups {groups:?} hold groups that were not asked for"
    );
    Ok(())
}

fn process_rlimits(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("rlimits")?;
    b.config["process"]["rlimits"] = json!([
        { "type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024 },
        { "type": "RLIMIT_CORE", "soft": 4096, "hard": 8192 }
    ]);
    b.config["process"]["args"] = json!(["cat", "/proc/self/limits"]);
    let out = ctx.output(&b)?;
    for (key, soft, hard) in [
        ("Max open files", "512", "1024"),
        ("Max core file size", "4096", "8192"),
    ] {
        let got = field(&out, key);
        ensure!(
            got.first() == Some(&soft) && got.get(1) == Some(&hard),
            "{key}: soft/hard are {got:?}, want {soft} {hard}"
        );
    }
    Ok(())
}

fn process_no_new_privileges(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("nnp")?;
    b.config["process"]["noNewPrivileges"] = json!(true);
    b.config["process"]["args"] = json!(["cat", "/proc/self/status"]);
    let out = ctx.output(&b)?;
    let nnp = field(&out, "NoNewPrivs:");
    ensure!(nnp == ["1"], "NoNewPrivs is {nnp:?}, want 1");
    Ok(())
}

fn process_oom_score_adj(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("oom-set")?;
    b.config["process"]["oomScoreAdj"] = json!(123);
    b.config["process"]["args"] = json!(["cat", "/proc/self/oom_score_adj"]);
    let out = ctx.output(&b)?;
    ensure!(
        out.trim() == "123",
        "oom_score_adj is {:?} with oomScoreAdj 123",
        out.trim()
    );
    // Unset: the process keeps the value the runtime was started with (ours).
    let ours =
        fs::read_to_string("/proc/self/oom_score_adj").or_fail("reading our oom_score_adj")?;
    let mut b = ctx.bundle("oom-unset")?;
    b.config["process"]["args"] = json!(["cat", "/proc/self/oom_score_adj"]);
    let out = ctx.output(&b)?;
    ensure!(
        out.trim() == ours.trim(),
        "oom_score_adj is {:?} with oomScoreAdj unset; the runtime's caller has {:?}",
        out.trim(),
        ours.trim()
    );
    Ok(())
}

fn process_capabilities(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("capabilities")?;
    let kept = json!(["CAP_CHOWN", "CAP_KILL"]);
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": kept, "permitted": kept, "inheritable": kept, "ambient": kept,
    });
    b.config["process"]["args"] = json!(["cat", "/proc/self/status"]);
    let out = ctx.output(&b)?;
    // CAP_CHOWN is bit 0, CAP_KILL bit 5, CAP_NET_BIND_SERVICE bit 10.
    for (key, want) in [
        ("CapBnd:", 0x421u64),
        ("CapPrm:", 0x21),
        ("CapEff:", 0x21),
        ("CapInh:", 0x21),
        ("CapAmb:", 0x21),
    ] {
        let got = field(&out, key);
        let value = got.first().and_then(|h| u64::from_str_radix(h, 16).ok());
        ensure!(value == Some(want), "{key} is {got:?}, want {want:016x}");
    }
    Ok(())
}

fn process_stdio(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("stdio")?;
    fs::write(b.base.join("stdin"), "from stdin\n").or_fail("writing the stdin file")?;
    b.sh("cat; echo to stderr >&2");
    let out = ctx.output(&b)?;
    ensure!(
        out == "from stdin\n",
        "stdin did not come through to stdout: {out:?}"
    );
    let err = b.stderr();
    ensure!(
        lines(&err).contains(&"to stderr"),
        "stderr did not come through: {err:?}"
    );
    Ok(())
}
