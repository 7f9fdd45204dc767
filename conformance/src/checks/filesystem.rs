//! config.md Root and Mounts; config-linux.md Default Filesystems, Devices, Default Devices,
//! Masked Paths and Readonly Paths; runtime-linux.md Dev symbolic links.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use serde_json::json;

use super::{lines, Check, Ctx, OrFail, Outcome};

pub const CHECKS: &[Check] = &[
    Check {
        name: "mounts_order",
        spec: "config.md Mounts: the runtime MUST mount entries in the listed order (two \
               binds on one destination: the last wins; a bind inside an earlier tmpfs)",
        run: mounts_order,
    },
    Check {
        name: "mounts_default_fs",
        spec: "config-linux.md Default Filesystems: /proc proc, /sys sysfs, /dev/pts devpts, \
               /dev/shm tmpfs (and the configured /dev tmpfs) are mounted with those types",
        run: mounts_default_fs,
    },
    Check {
        name: "mounts_bind_ro",
        spec: "config.md Linux mount options: bind (MUST) and ro (MUST): a read-only bind \
               mount reads the source and refuses writes",
        run: mounts_bind_ro,
    },
    Check {
        name: "devices_default",
        spec: "config-linux.md Default Devices: the runtime MUST supply /dev/null, zero, full, \
               random, urandom, tty (character devices 1:3, 1:5, 1:7, 1:8, 1:9, 5:0) and \
               /dev/ptmx (a bind mount or symlink of /dev/pts/ptmx)",
        run: devices_default,
    },
    Check {
        name: "dev_symlinks",
        spec: "runtime-linux.md Dev symbolic links: runtimes MUST create /dev/fd -> \
               /proc/self/fd and /dev/stdin, stdout, stderr -> /proc/self/fd/0, 1, 2",
        run: dev_symlinks,
    },
    Check {
        name: "devices_config",
        spec: "config-linux.md Devices: the listed devices MUST be available in the container \
               with their type, major:minor, fileMode, uid and gid",
        run: devices_config,
    },
    Check {
        name: "masked_paths",
        spec: "config-linux.md Masked Paths: the runtime masks over the paths so that they \
               cannot be read (a file reads empty, a directory lists empty)",
        run: masked_paths,
    },
    Check {
        name: "readonly_paths",
        spec: "config-linux.md Readonly Paths: the paths are set read-only inside the \
               container (writes fail, the mount is ro)",
        run: readonly_paths,
    },
    Check {
        name: "root_readonly",
        spec: "config.md Root: if readonly is true the root filesystem MUST be read-only \
               inside the container",
        run: root_readonly,
    },
];

fn bind(source: &Path, destination: &str, extra: &[&str]) -> serde_json::Value {
    let mut options = vec!["bind"];
    options.extend(extra);
    json!({ "destination": destination, "type": "none", "source": source, "options": options })
}

/// A host directory in the check's base holding one file, for bind mounts.
fn host_dir(base: &Path, name: &str, file: &str) -> Result<std::path::PathBuf, super::Problem> {
    let dir = base.join(name);
    fs::create_dir_all(&dir).or_fail(&format!("creating {}", dir.display()))?;
    fs::write(dir.join(file), file).or_fail("writing a bind source file")?;
    Ok(dir)
}

fn mounts_order(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("mounts-order")?;
    let first = host_dir(&b.base, "first", "first")?;
    let second = host_dir(&b.base, "second", "second")?;
    for d in ["order", "nest"] {
        fs::create_dir_all(b.rootfs().join(d)).or_fail("creating a mount point")?;
    }
    b.mount(bind(&first, "/order", &[]));
    b.mount(bind(&second, "/order", &[]));
    b.mount(json!({ "destination": "/nest", "type": "tmpfs", "source": "tmpfs" }));
    b.mount(bind(&first, "/nest/inner", &[]));
    b.sh("ls /order; echo --; ls /nest/inner");
    let out = ctx.output(&b)?;
    ensure!(
        lines(&out) == ["second", "--", "first"],
        "/order holds {:?} (want second, then -- and /nest/inner's first)",
        lines(&out)
    );
    Ok(())
}

/// mount point -> filesystem type from /proc/self/mounts text (the last mount wins).
fn mount_types(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().skip(1);
            Some((f.next()?, f.next()?))
        })
        .collect()
}

fn mounts_default_fs(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("mounts-default")?;
    b.config["process"]["args"] = json!(["cat", "/proc/self/mounts"]);
    let out = ctx.output(&b)?;
    let types = mount_types(&out);
    for (path, want) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
    ] {
        let got = types.get(path).copied().unwrap_or("<not mounted>");
        ensure!(got == want, "{path} is {got}, want {want}");
    }
    Ok(())
}

fn mounts_bind_ro(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("mounts-bind-ro")?;
    let src = host_dir(&b.base, "rodata", "keep")?;
    fs::create_dir_all(b.rootfs().join("rodata")).or_fail("creating a mount point")?;
    b.mount(bind(&src, "/rodata", &["ro"]));
    b.sh("cat /rodata/keep; echo; touch /rodata/new 2>/dev/null && echo wrote");
    let out = ctx.output(&b)?;
    ensure!(
        lines(&out) == ["keep"],
        "the ro bind mount printed {:?} (want the source file's text, and no write)",
        lines(&out)
    );
    ensure!(
        !src.join("new").exists(),
        "a file was created through the ro bind mount"
    );
    Ok(())
}

/// `stat` output: NAME KIND MAJOR:MINOR (hex) for each path, or the link target.
const DESCRIBE: &str =
    "for p in \"$@\"; do if [ -L \"$p\" ]; then echo \"$p link $(readlink \"$p\")\"; \
                        elif [ -e \"$p\" ]; then stat -c '%n %F %t:%T %a %u %g' \"$p\"; \
                        else echo \"$p missing\"; fi; done";

/// Runs DESCRIBE over `paths` in the bundle's container; returns path -> the rest of its line.
fn describe(
    ctx: &Ctx,
    b: &mut crate::bundle::Bundle,
    paths: &[&str],
) -> Result<HashMap<String, String>, super::Problem> {
    let mut args = vec!["sh", "-c", DESCRIBE, "describe"];
    args.extend(paths);
    b.config["process"]["args"] = json!(args);
    let out = ctx.output(b)?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(p, rest)| (p.to_string(), rest.to_string()))
        .collect())
}

fn devices_default(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("devices-default")?;
    let want = [
        ("/dev/null", "1:3"),
        ("/dev/zero", "1:5"),
        ("/dev/full", "1:7"),
        ("/dev/random", "1:8"),
        ("/dev/urandom", "1:9"),
        ("/dev/tty", "5:0"),
    ];
    let mut paths: Vec<&str> = want.iter().map(|(p, _)| *p).collect();
    paths.push("/dev/ptmx");
    let got = describe(ctx, &mut b, &paths)?;
    for (path, numbers) in want {
        let line = got.get(path).map(String::as_str).unwrap_or("<no output>");
        ensure!(
            line.starts_with(&format!("character special file {numbers} ")),
            "{path} is {line:?}, want character special file {numbers}"
        );
    }
    let ptmx = got
        .get("/dev/ptmx")
        .map(String::as_str)
        .unwrap_or("<no output>");
    let ok = ["link pts/ptmx", "link /dev/pts/ptmx"].contains(&ptmx)
        || ptmx.starts_with("character special file 5:2 ");
    ensure!(
        ok,
        "/dev/ptmx is {ptmx:?}, want a symlink to pts/ptmx or a bind of it (5:2)"
    );
    Ok(())
}

fn dev_symlinks(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("dev-symlinks")?;
    let want = [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ];
    let paths: Vec<&str> = want.iter().map(|(p, _)| *p).collect();
    let got = describe(ctx, &mut b, &paths)?;
    for (path, target) in want {
        let line = got.get(path).map(String::as_str).unwrap_or("<no output>");
        ensure!(
            line == format!("link {target}"),
            "{path} is {line:?}, want a symlink to {target}"
        );
    }
    Ok(())
}

fn devices_config(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("devices-config")?;
    b.config["linux"]["devices"] = json!([
        { "path": "/dev/conf-char", "type": "c", "major": 1, "minor": 3,
          "fileMode": 0o640, "uid": 1000, "gid": 5 },
        { "path": "/dev/conf-block", "type": "b", "major": 7, "minor": 200,
          "fileMode": 0o600, "uid": 0, "gid": 0 }
    ]);
    let got = describe(ctx, &mut b, &["/dev/conf-char", "/dev/conf-block"])?;
    for (path, want) in [
        ("/dev/conf-char", "character special file 1:3 640 1000 5"),
        ("/dev/conf-block", "block special file 7:c8 600 0 0"),
    ] {
        let line = got.get(path).map(String::as_str).unwrap_or("<no output>");
        ensure!(
            line == want,
            "{path} is {line:?}, want {want:?} (type, major:minor in hex, mode, uid, gid)"
        );
    }
    Ok(())
}

fn masked_paths(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("masked")?;
    let root = b.rootfs();
    fs::create_dir_all(root.join("masked-dir")).or_fail("creating /masked-dir")?;
    fs::write(root.join("masked-dir/secret"), "secret").or_fail("writing a secret")?;
    fs::write(root.join("masked-file"), "secret").or_fail("writing a secret")?;
    b.config["linux"]["maskedPaths"] = json!(["/masked-dir", "/masked-file"]);
    b.sh("echo \"file[$(cat /masked-file)]\"; echo \"dir[$(ls -A /masked-dir)]\"");
    let out = ctx.output(&b)?;
    ensure!(
        lines(&out) == ["file[]", "dir[]"],
        "masked paths read {:?}, want an empty file and an empty directory",
        lines(&out)
    );
    Ok(())
}

/// The per-mount options of `mountpoint` in /proc/self/mountinfo text (the last mount wins).
fn mount_options<'a>(mountinfo: &'a str, mountpoint: &str) -> Option<&'a str> {
    mountinfo.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(4) == Some(&mountpoint)).then(|| f.get(5).copied())?
    })
}

fn readonly_paths(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("readonly")?;
    fs::create_dir_all(b.rootfs().join("ro-dir")).or_fail("creating /ro-dir")?;
    b.config["linux"]["readonlyPaths"] = json!(["/ro-dir", "/proc/sys"]);
    b.sh(
        "touch /ro-dir/x 2>/dev/null && echo wrote-ro-dir; touch /tmp/x && echo wrote-tmp; \
         echo -- ; cat /proc/self/mountinfo",
    );
    let out = ctx.output(&b)?;
    let (writes, mountinfo) = out.split_once("--\n").unwrap_or((&out, ""));
    ensure!(
        lines(writes) == ["wrote-tmp"],
        "writes that succeeded: {:?} (want only the control, wrote-tmp)",
        lines(writes)
    );
    for path in ["/ro-dir", "/proc/sys"] {
        let opts = mount_options(mountinfo, path);
        ensure!(
            opts.is_some_and(|o| o.split(',').any(|x| x == "ro")),
            "{path} is not a read-only mount (options {opts:?})"
        );
    }
    Ok(())
}

fn root_readonly(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle("root-readonly")?;
    b.config["root"]["readonly"] = json!(true);
    b.sh("touch /newfile 2>/dev/null && echo wrote-root; touch /dev/shm/x && echo wrote-shm");
    let out = ctx.output(&b)?;
    ensure!(
        lines(&out) == ["wrote-shm"],
        "writes that succeeded: {:?} (want only the control, wrote-shm)",
        lines(&out)
    );
    ensure!(
        !b.rootfs().join("newfile").exists(),
        "a file was created in the read-only rootfs"
    );
    Ok(())
}
