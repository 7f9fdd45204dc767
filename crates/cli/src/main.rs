//! `husk`: an OCI container runtime with runc's command line.

mod args;
mod commands;
mod logging;

use std::process::ExitCode;

use args::{flag, opt, Flag};
use logging::{Format, Logger};

const GLOBAL: &[Flag] = &[
    opt("root"),
    opt("log"),
    opt("log-format"),
    flag("debug"),
    flag("systemd-cgroup"),
    opt("criu"),
    opt("rootless"),
    flag("help").short("h"),
    flag("version").short("v"),
];

pub struct Globals {
    pub root: Option<std::path::PathBuf>,
    pub systemd_cgroup: bool,
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
        println!(
            "husk version {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            commands::SPEC_VERSION
        );
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
        print!("{}", commands::HELP);
        return if g.has("help") {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    };
    let globals = Globals {
        root: g.value("root").map(Into::into),
        systemd_cgroup: g.has("systemd-cgroup"),
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
