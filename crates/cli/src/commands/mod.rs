//! The commands, with runc's names, flags and output formats.

mod cgroup;
mod checkpoint;
mod exec;
mod features;
mod list;
mod spec;

use std::path::{Path, PathBuf};

use husk_runtime::{CreateOptions, Runtime, RuntimeError};

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
   ps       list the processes of a container
   pause    freeze every process of a container
   resume   thaw a paused container
   update   change a running container's resource limits
   events   print resource usage and OOM events of a container
   features print what husk and this host support (JSON)
   checkpoint  checkpoint a running container (CRIU)
   restore  restore a container from a checkpoint (CRIU)
   delete   delete a container and everything it holds
   spec     write a default config.json

global options:
   --root value        state directory (default: /run/husk)
   --log value         log file (default: stderr)
   --log-format value  text or json (default: text)
   --debug             log debug messages
   --systemd-cgroup    use the systemd cgroup driver (cgroupsPath slice:prefix:name)
   --criu value        path to the criu binary for checkpoint/restore (default: criu)
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

pub(crate) type Result<T> = std::result::Result<T, CliError>;

pub(crate) fn parse(cmd: &str, argv: &[String], flags: &[Flag], stop: bool) -> Result<Parsed> {
    args::parse(argv, flags, stop).map_err(|e| CliError::Usage(format!("{cmd}: {e}")))
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

/// One usage line per command, for `husk COMMAND --help`.
const USAGE: &[(&str, &str)] = &[
    ("create", "husk create [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring] [--preserve-fds N] <container-id>"),
    ("run", "husk run [--bundle DIR] [--pid-file F] [--console-socket S] [--detach] [--no-pivot] [--no-new-keyring] [--preserve-fds N] <container-id>"),
    ("start", "husk start <container-id>"),
    ("state", "husk state <container-id>"),
    ("list", "husk list [--format table|json] [--quiet]"),
    ("kill", "husk kill [--all] <container-id> [signal]"),
    ("delete", "husk delete [--force] <container-id>..."),
    ("exec", "husk exec [--process F] [--detach] [--pid-file F] [--tty] [--console-socket S] [--cwd D] [--env K=V]... [--user U[:G]] [--additional-gids G]... [--cap C]... [--no-new-privs] [--apparmor P] [--process-label L] [--preserve-fds N] [--ignore-paused] <container-id> [command args...]"),
    ("ps", "husk ps [--format table|json] <container-id> [ps options]"),
    ("pause", "husk pause <container-id>"),
    ("resume", "husk resume <container-id>"),
    ("update", "husk update [--resources FILE|-] [--memory N] [--memory-swap N] [--memory-reservation N] [--kernel-memory N] [--kernel-memory-tcp N] [--cpu-shares N] [--cpu-quota N] [--cpu-period N] [--cpu-rt-period N] [--cpu-rt-runtime N] [--cpuset-cpus L] [--cpuset-mems L] [--pids-limit N] [--blkio-weight N] <container-id>"),
    ("events", "husk events [--stats] [--interval 5s] <container-id>"),
    ("features", "husk features"),
    ("checkpoint", "husk checkpoint [--image-path DIR] [--work-path DIR] [--parent-path REL] [--leave-running] [--pre-dump] [--tcp-established] [--tcp-skip-in-flight] [--ext-unix-sk] [--shell-job] [--file-locks] [--link-remap] [--manage-cgroups-mode soft|full|strict|ignore] [--empty-ns network] [--auto-dedup] [--page-server ADDR:PORT] [--lazy-pages] [--status-fd N] <container-id>"),
    ("restore", "husk restore [--image-path DIR] [--work-path DIR] [--bundle DIR] [--detach] [--pid-file F] [--console-socket S] [--no-subreaper] [--no-pivot (no effect: CRIU rebuilds the mounts)] [--tcp-established] [--ext-unix-sk] [--shell-job] [--file-locks] [--manage-cgroups-mode soft|full|strict|ignore] [--empty-ns network] [--auto-dedup] [--lazy-pages] <container-id>"),
    ("spec", "husk spec [--bundle DIR] [--rootless]"),
];

pub fn dispatch(cmd: &str, argv: &[String], g: &Globals) -> Result<u8> {
    if argv
        .first()
        .is_some_and(|a| a == "--help" || a == "-h" || a == "-help")
    {
        let name = if cmd == "ls" {
            "list"
        } else if cmd == "rm" {
            "delete"
        } else {
            cmd
        };
        if let Some((_, usage)) = USAGE.iter().find(|(c, _)| *c == name) {
            println!("usage: {usage}");
            return Ok(0);
        }
    }
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
        "list" | "ls" => list::list(argv, &rt()),
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
        "exec" => exec::exec(argv, &rt()).map_err(|e| match e {
            // runc exits 255 when exec itself fails (not the process).
            CliError::Runtime(e) => CliError::Exec(e),
            other => other,
        }),
        "spec" => spec::spec(argv),
        "features" => features::features(argv),
        "checkpoint" => checkpoint::checkpoint(argv, &rt(), g.criu.as_deref()),
        "restore" => checkpoint::restore(argv, &rt(), g.criu.as_deref()),
        "pause" | "resume" | "ps" | "update" | "events" => cgroup::dispatch(cmd, argv, &rt()),
        "help" => {
            print!("{HELP}");
            Ok(0)
        }
        other => Err(CliError::Usage(format!(
            "no such command: {other:?} (see husk --help)"
        ))),
    }
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
