//! The commands, with runc's names, flags and output formats.

use std::io::Write;
use std::path::{Path, PathBuf};

use husk_runtime::{CreateOptions, OciState, Runtime, RuntimeError};

use crate::args::{self, flag, opt, Flag, Parsed};
use crate::Globals;

pub const SPEC_VERSION: &str = "1.2.0";

pub const HELP: &str = "husk - an OCI container runtime

usage: husk [global options] command [command options] [arguments...]

commands:
   create   create a container
   start    start the user process of a created container
   run      create and start a container
   state    output the state of a container
   list     list containers
   exec     run a new process inside a running container
   kill     send a signal to the container's init process
   delete   delete a container and everything it holds
   spec     write a default config.json

global options:
   --root value        state directory (default: /run/husk)
   --log value         log file (default: stderr)
   --log-format value  text or json (default: text)
   --debug             log debug messages
   --systemd-cgroup    use the systemd cgroup driver (cgroupsPath slice:prefix:name)
";

/// A command's failure and the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Exec(RuntimeError),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Exec(_) => 255,
            _ => 1,
        }
    }
}

type Result<T> = std::result::Result<T, CliError>;

fn parse(cmd: &str, argv: &[String], flags: &[Flag], stop: bool) -> Result<Parsed> {
    args::parse(argv, flags, stop).map_err(|e| CliError::Usage(format!("{cmd}: {e}")))
}

/// Exactly `n` positional arguments.
fn positional<'a>(cmd: &str, p: &'a Parsed, names: &[&str]) -> Result<&'a [String]> {
    if p.positional.len() != names.len() {
        let want = names
            .iter()
            .map(|n| format!("<{n}>"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(CliError::Usage(format!(
            "{cmd}: expected {want}, got {} argument(s); usage: husk {cmd} [options] {want}",
            p.positional.len()
        )));
    }
    Ok(&p.positional)
}

pub fn dispatch(cmd: &str, argv: &[String], g: &Globals) -> Result<u8> {
    let rt = || Runtime::new(g.root.as_deref(), g.systemd_cgroup);
    match cmd {
        "create" => {
            let opts = create_options(cmd, argv, &[])?.0;
            rt().create(&opts)?;
            Ok(0)
        }
        "run" => {
            let (opts, p) = create_options(
                cmd,
                argv,
                &[
                    flag("detach").short("d"),
                    flag("keep"),
                    flag("no-subreaper"),
                ],
            )?;
            let code = rt().run(&opts, p.has("detach"))?;
            Ok(code.clamp(0, 255) as u8)
        }
        "start" => {
            let p = parse(cmd, argv, &[], false)?;
            let id = &positional(cmd, &p, &["container-id"])?[0];
            rt().start(id)?;
            Ok(0)
        }
        "state" => {
            let p = parse(cmd, argv, &[], false)?;
            let id = &positional(cmd, &p, &["container-id"])?[0];
            let s = rt().state(id)?;
            println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            Ok(0)
        }
        "list" | "ls" => list(argv, &rt()),
        "kill" => {
            let p = parse(cmd, argv, &[flag("all").short("a")], false)?;
            let (id, sig) = match p.positional.as_slice() {
                [id] => (id, "TERM"),
                [id, sig] => (id, sig.as_str()),
                _ => {
                    return Err(CliError::Usage(
                        "kill: usage: husk kill [--all] <container-id> [signal]".into(),
                    ))
                }
            };
            let signal = husk_runtime::parse_signal(sig)
                .ok_or_else(|| CliError::Usage(format!("unknown signal {sig:?}")))?;
            rt().kill(id, signal, p.has("all"))?;
            Ok(0)
        }
        "delete" | "rm" => {
            let p = parse(cmd, argv, &[flag("force").short("f")], false)?;
            if p.positional.is_empty() {
                return Err(CliError::Usage(
                    "delete: usage: husk delete [--force] <container-id>...".into(),
                ));
            }
            let rt = rt();
            let mut failed = None;
            for id in &p.positional {
                if let Err(e) = rt.delete(id, p.has("force")) {
                    failed = Some(e);
                }
            }
            failed.map_or(Ok(0), |e| Err(e.into()))
        }
        "exec" => exec(argv, &rt()).map_err(|e| match e {
            // runc exits 255 when exec itself fails (not the process).
            CliError::Runtime(e) => CliError::Exec(e),
            other => other,
        }),
        "spec" => spec(argv),
        "help" => {
            print!("{HELP}");
            Ok(0)
        }
        other => Err(CliError::Usage(format!(
            "no such command: {other:?} (see husk --help)"
        ))),
    }
}

fn exec(argv: &[String], rt: &Runtime) -> Result<u8> {
    let flags = [
        opt("process").short("p"),
        flag("detach").short("d"),
        opt("pid-file"),
        opt("console-socket"),
        flag("tty").short("t"),
        opt("cwd"),
        opt("env").short("e"),
        opt("user").short("u"),
        opt("additional-gids").short("g"),
        opt("cap").short("c"),
        flag("no-new-privs"),
        opt("apparmor"),
        opt("process-label"),
        opt("preserve-fds"),
        flag("ignore-paused"),
        opt("cgroup"),
    ];
    let p = parse("exec", argv, &flags, true)?;
    let Some((id, args)) = p.positional.split_first() else {
        return Err(CliError::Usage(
            "exec: usage: husk exec [options] <container-id> <command> [args...]".into(),
        ));
    };
    let number = |flag: &str, v: &str| {
        v.parse::<u32>()
            .map_err(|_| CliError::Usage(format!("exec: --{flag}: {v:?} is not a number")))
    };
    let opts = husk_runtime::ExecOptions {
        id: id.clone(),
        process: p.value("process").map(absolute),
        args: args.to_vec(),
        detach: p.has("detach"),
        pid_file: p.value("pid-file").map(absolute),
        console_socket: p.value("console-socket").map(absolute),
        tty: p.has("tty"),
        cwd: p.value("cwd").map(str::to_string),
        env: p.values("env").to_vec(),
        user: p.value("user").map(str::to_string),
        additional_gids: p
            .values("additional-gids")
            .iter()
            .map(|g| number("additional-gids", g))
            .collect::<Result<_>>()?,
        caps: p.values("cap").to_vec(),
        no_new_privs: p.has("no-new-privs"),
        apparmor: p.value("apparmor").map(str::to_string),
        process_label: p.value("process-label").map(str::to_string),
        preserve_fds: p
            .value("preserve-fds")
            .map(|v| number("preserve-fds", v))
            .transpose()?
            .unwrap_or(0),
        ignore_paused: p.has("ignore-paused"),
    };
    if p.value("cgroup").is_some() {
        return Err(CliError::Usage(
            "exec: --cgroup is not supported yet".into(),
        ));
    }
    let code = rt.exec(&opts)?;
    Ok(code.clamp(0, 255) as u8)
}

fn create_options(cmd: &str, argv: &[String], extra: &[Flag]) -> Result<(CreateOptions, Parsed)> {
    let mut flags = vec![
        opt("bundle").short("b"),
        opt("console-socket"),
        opt("pid-file"),
        flag("no-pivot"),
        flag("no-new-keyring"),
        opt("preserve-fds"),
    ];
    flags.extend_from_slice(extra);
    let p = parse(cmd, argv, &flags, false)?;
    let id = positional(cmd, &p, &["container-id"])?[0].clone();
    let preserve_fds = match p.value("preserve-fds") {
        None => 0,
        Some(v) => v.parse().map_err(|_| {
            CliError::Usage(format!("{cmd}: --preserve-fds: {v:?} is not a number"))
        })?,
    };
    let opts = CreateOptions {
        id,
        bundle: PathBuf::from(p.value("bundle").unwrap_or(".")),
        pid_file: p.value("pid-file").map(absolute),
        console_socket: p.value("console-socket").map(absolute),
        no_pivot: p.has("no-pivot"),
        no_new_keyring: p.has("no-new-keyring"),
        preserve_fds,
    };
    Ok((opts, p))
}

fn absolute(p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

fn list(argv: &[String], rt: &Runtime) -> Result<u8> {
    let p = parse(
        "list",
        argv,
        &[opt("format").short("f"), flag("quiet").short("q")],
        false,
    )?;
    let states = rt.list()?;
    let owner = owner_name(rt.root());
    let mut out = std::io::stdout().lock();
    if p.has("quiet") {
        for s in &states {
            let _ = writeln!(out, "{}", s.id);
        }
        return Ok(0);
    }
    match p.value("format").unwrap_or("table") {
        "json" => {
            let v: Vec<serde_json::Value> = states
                .iter()
                .map(|s| {
                    let mut v = serde_json::to_value(s).unwrap_or_default();
                    v["owner"] = owner.clone().into();
                    v
                })
                .collect();
            let _ = writeln!(out, "{}", serde_json::to_string(&v).unwrap_or_default());
        }
        "table" => {
            let _ = out.write_all(table(&states, &owner).as_bytes());
        }
        other => {
            return Err(CliError::Usage(format!(
                "list: invalid format option {other:?}"
            )))
        }
    }
    Ok(0)
}

/// runc's tabwriter layout: columns padded to max(12, widest + 3), the last one not padded.
fn table(states: &[OciState], owner: &str) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(String::from)
        .to_vec()];
    for s in states {
        rows.push(vec![
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            owner.to_string(),
        ]);
    }
    let cols = rows[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
                .saturating_add(3)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in &rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

/// The user owning the state root, as runc's `list` shows it.
fn owner_name(root: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(root).map(|m| m.uid()).unwrap_or(0);
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|pw| {
            pw.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

fn spec(argv: &[String]) -> Result<u8> {
    let p = parse(
        "spec",
        argv,
        &[opt("bundle").short("b"), flag("rootless")],
        false,
    )?;
    let dir = PathBuf::from(p.value("bundle").unwrap_or("."));
    let path = dir.join("config.json");
    if path.exists() {
        return Err(CliError::Usage(format!(
            "File {} exists. Remove it first",
            path.display()
        )));
    }
    let mut v = serde_json::to_value(husk_spec::default_spec(p.has("rootless")))
        .map_err(|e| CliError::Usage(format!("spec: {e}")))?;
    // Capability sets are unordered in memory; write them sorted so the file is stable.
    if let Some(caps) = v
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        for list in caps.values_mut() {
            if let Some(a) = list.as_array_mut() {
                a.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
            }
        }
    }
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut buf,
        serde_json::ser::PrettyFormatter::with_indent(b"\t"),
    );
    serde::Serialize::serialize(&v, &mut ser).map_err(|e| CliError::Usage(format!("spec: {e}")))?;
    buf.push(b'\n');
    std::fs::write(&path, buf)
        .map_err(|e| CliError::Usage(format!("write {}: {e}", path.display())))?;
    Ok(0)
}
