//! The commands, with runc's names, flags and output formats.

mod cgroup;
mod checkpoint;
mod exec;
mod list;
mod spec;

use std::path::{Path, PathBuf};

use husk_runtime::{CreateOptions, Runtime, RuntimeError};

use husk::args::{self, Parsed};
use husk::table;

use crate::Globals;

/// A command's failure and the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    /// `--help` was given: print this command's help and exit 0.
    #[error("help requested")]
    Help(&'static table::Command),
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

pub(crate) type Result<T> = std::result::Result<T, CliError>;

/// Parses a command's arguments against its flags in the table; `--help` (`-h`) anywhere
/// among the flags asks for the command's help instead.
pub(crate) fn parse(cmd: &str, argv: &[String]) -> Result<Parsed> {
    let Some(c) = table::command(cmd) else {
        return Err(CliError::Usage(format!(
            "no such command: {cmd:?} (see husk --help)"
        )));
    };
    let p = args::parse(argv, c.flags, c.stop_at_positional)
        .map_err(|e| CliError::Usage(format!("{cmd}: {e}")))?;
    if p.has("help") {
        return Err(CliError::Help(c));
    }
    Ok(p)
}

/// Exactly `n` positional arguments.
pub(crate) fn positional<'a>(cmd: &str, p: &'a Parsed, names: &[&str]) -> Result<&'a [String]> {
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
    match run(cmd, argv, g) {
        Err(CliError::Help(c)) => {
            print!("{}", husk::help::command(c));
            Ok(0)
        }
        other => other,
    }
}

fn run(cmd: &str, argv: &[String], g: &Globals) -> Result<u8> {
    let rt = || Runtime::new(g.root.as_deref(), g.systemd_cgroup).with_rootless(g.rootless);
    match cmd {
        "create" => {
            let opts = create_options(cmd, argv)?.0;
            rt().create(&opts)?;
            Ok(0)
        }
        "run" => {
            let (opts, p) = create_options(cmd, argv)?;
            if p.has("keep") && p.has("detach") {
                return Err(CliError::Usage(
                    "run: --keep and --detach cannot be used together (a detached container stays until deleted anyway)".into(),
                ));
            }
            let flags = husk_runtime::RunFlags {
                detach: p.has("detach"),
                keep: p.has("keep"),
                no_subreaper: p.has("no-subreaper"),
            };
            let code = rt().run(&opts, flags)?;
            Ok(code.clamp(0, 255) as u8)
        }
        "start" => {
            let p = parse(cmd, argv)?;
            let id = &positional(cmd, &p, &["container-id"])?[0];
            rt().start(id)?;
            Ok(0)
        }
        "state" => {
            let p = parse(cmd, argv)?;
            let id = &positional(cmd, &p, &["container-id"])?[0];
            let s = rt().state(id)?;
            println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            Ok(0)
        }
        "list" | "ls" => list::list(argv, &rt(), g.root.is_some()),
        "kill" => {
            let p = parse(cmd, argv)?;
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
            let p = parse(cmd, argv)?;
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
        "exec" => exec::exec(argv, &rt()).map_err(|e| match e {
            // runc exits 255 when exec itself fails (not the process).
            CliError::Runtime(e) => CliError::Exec(e),
            other => other,
        }),
        "spec" => spec::spec(argv),
        "features" => features(argv),
        "checkpoint" => checkpoint::checkpoint(argv, &rt(), g.criu.as_deref()),
        "restore" => checkpoint::restore(argv, &rt(), g.criu.as_deref()),
        "pause" | "resume" | "ps" | "update" | "events" => cgroup::dispatch(cmd, argv, &rt()),
        "help" | "h" => {
            let p = parse(cmd, argv)?;
            match p.positional.first() {
                None => print!("{}", husk::help::global()),
                Some(name) => match table::command(name) {
                    Some(c) => print!("{}", husk::help::command(c)),
                    None => {
                        return Err(CliError::Usage(format!(
                            "no such command: {name:?} (see husk --help)"
                        )))
                    }
                },
            }
            Ok(0)
        }
        other => Err(CliError::Usage(format!(
            "no such command: {other:?} (see husk --help)"
        ))),
    }
}

fn create_options(cmd: &str, argv: &[String]) -> Result<(CreateOptions, Parsed)> {
    let p = parse(cmd, argv)?;
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
        pidfd_socket: p.value("pidfd-socket").map(absolute),
        no_pivot: p.has("no-pivot"),
        no_new_keyring: p.has("no-new-keyring"),
        preserve_fds,
    };
    Ok((opts, p))
}

/// `husk features`: prints the document the runtime builds.
fn features(argv: &[String]) -> Result<u8> {
    parse("features", argv)?;
    let doc = husk_runtime::features();
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(0)
}

pub(crate) fn absolute(p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}
