//! `husk`: an OCI container runtime with runc's command line.

#![forbid(unsafe_code)]

mod commands;
mod logging;

use std::process::ExitCode;

use husk::args;
use husk::table::GLOBAL;
use logging::{Format, Logger};

pub struct Globals {
    pub root: Option<std::path::PathBuf>,
    pub systemd_cgroup: bool,
    /// `--criu`: the CRIU binary for checkpoint/restore.
    pub criu: Option<String>,
    pub rootless: husk_runtime::Rootless,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "create" || a == "run") {
        // Before husk opens anything: what the caller left open (the init closes it).
        husk_runtime::note_inherited_fds();
    }
    // Global flags come before the command name.
    let split = argv
        .iter()
        .position(|a| !a.starts_with('-') && !is_global_value(&argv, a))
        .unwrap_or(argv.len());
    let (global_args, rest) = argv.split_at(split);
    let g = match args::parse(global_args, GLOBAL, false) {
        Ok(g) => g,
        Err(e) => return usage_error(&e),
    };
    if g.has("version") {
        println!("{}", husk::help::version_lines());
        return ExitCode::SUCCESS;
    }
    let format = match g.value("log-format").unwrap_or("text") {
        "text" => Format::Text,
        "json" => Format::Json,
        other => return usage_error(&format!("invalid log-format: {other}")),
    };
    let logger = match Logger::new(g.value("log"), format, g.has("debug")) {
        Ok(l) => std::sync::Arc::new(l),
        Err(e) => return usage_error(&e),
    };
    let _ = tracing::subscriber::set_global_default(LoggerRef(logger.clone()));
    let Some((cmd, cmd_args)) = rest.split_first() else {
        print!("{}", husk::help::global());
        return if g.has("help") {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    };
    let rootless = g.value("rootless").unwrap_or("auto");
    let Some(rootless) = husk_runtime::Rootless::parse(rootless) else {
        return usage_error(&format!(
            "invalid --rootless value {rootless:?}: use true, false or auto"
        ));
    };
    let globals = Globals {
        root: g.value("root").map(Into::into),
        systemd_cgroup: g.has("systemd-cgroup"),
        criu: g.value("criu").map(Into::into),
        rootless,
    };
    // `husk --help CMD` is `husk help CMD`.
    let help_args;
    let (cmd, cmd_args) = if g.has("help") {
        help_args = rest.to_vec();
        ("help", help_args.as_slice())
    } else {
        (cmd.as_str(), cmd_args)
    };
    match commands::dispatch(cmd, cmd_args, &globals) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let msg = e.to_string();
            if logger.logs_to_file() {
                logger.write(tracing::Level::ERROR, &msg);
            }
            eprintln!("husk: {msg}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// True when `a` is the value of a preceding global flag (`--root /x`).
fn is_global_value(argv: &[String], a: &String) -> bool {
    let i = argv.iter().position(|x| std::ptr::eq(x, a)).unwrap_or(0);
    i > 0 && {
        let prev = argv[i - 1].trim_start_matches('-');
        !prev.contains('=') && GLOBAL.iter().any(|f| f.takes_value && f.name == prev)
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("husk: {msg}");
    ExitCode::from(1)
}

/// Shares one [`Logger`] between the subscriber and the error path in `main`.
struct LoggerRef(std::sync::Arc<Logger>);

impl tracing::Subscriber for LoggerRef {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        self.0.enabled(m)
    }
    fn new_span(&self, a: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.0.new_span(a)
    }
    fn record(&self, i: &tracing::span::Id, r: &tracing::span::Record<'_>) {
        self.0.record(i, r)
    }
    fn record_follows_from(&self, a: &tracing::span::Id, b: &tracing::span::Id) {
        self.0.record_follows_from(a, b)
    }
    fn event(&self, e: &tracing::Event<'_>) {
        self.0.event(e)
    }
    fn enter(&self, i: &tracing::span::Id) {
        self.0.enter(i)
    }
    fn exit(&self, i: &tracing::span::Id) {
        self.0.exit(i)
    }
}
