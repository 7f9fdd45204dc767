//! `--help` text, rendered from the table (`table.rs`) in runc's layout.

use std::fmt::Write;

use crate::args::Flag;
use crate::table::{Command, COMMANDS, GLOBAL};

pub const ABOUT: &str = "an OCI container runtime";

/// What `husk --help` and `husk help` print.
pub fn global() -> String {
    let mut s = format!(
        "NAME:\n   husk - {ABOUT}\n\nUSAGE:\n   husk [global options] command [command options] [arguments...]\n\nVERSION:\n   {}\n\nCOMMANDS:\n",
        version_lines().replace('\n', "\n   ")
    );
    let width = COMMANDS.iter().map(|c| names(c).len()).max().unwrap_or(0);
    for c in COMMANDS {
        let _ = writeln!(s, "   {:width$}  {}", names(c), c.summary);
    }
    s.push_str("\nGLOBAL OPTIONS:\n");
    s.push_str(&options(GLOBAL));
    s.push_str("\nRun `husk help COMMAND` (or `husk COMMAND --help`) for a command's options.\n");
    s
}

/// What `husk CMD --help` and `husk help CMD` print.
pub fn command(c: &Command) -> String {
    let mut s = format!(
        "NAME:\n   husk {} - {}\n\nUSAGE:\n   {}\n",
        names(c),
        c.summary,
        usage(c)
    );
    let _ = write!(s, "\nDESCRIPTION:\n{}", wrap(c.about, 3, 80));
    if c.flags.iter().any(|f| !f.hidden) {
        s.push_str("\nOPTIONS:\n");
        s.push_str(&options(c.flags));
    }
    s
}

/// `husk create [command options] <container-id>`
pub fn usage(c: &Command) -> String {
    let mut u = format!("husk {}", c.name);
    if !c.flags.is_empty() {
        u.push_str(" [command options]");
    }
    if !c.args.is_empty() {
        u.push(' ');
        u.push_str(c.args);
    }
    u
}

/// `husk --version`.
pub fn version_lines() -> String {
    format!(
        "husk version {}\nspec: {}",
        env!("CARGO_PKG_VERSION"),
        husk_spec::SPEC_VERSION
    )
}

fn names(c: &Command) -> String {
    let mut n = c.name.to_string();
    for a in c.aliases {
        n.push_str(", ");
        n.push_str(a);
    }
    n
}

/// `--bundle value, -b value`
pub fn flag_names(f: &Flag) -> String {
    let value = if f.takes_value { " value" } else { "" };
    match f.short {
        Some(s) => format!("--{}{value}, -{s}{value}", f.name),
        None => format!("--{}{value}", f.name),
    }
}

/// The help of a flag with its default: `... (default: text)`.
pub fn flag_help(f: &Flag) -> String {
    match f.default {
        Some(d) => format!("{} (default: {d})", f.help),
        None => f.help.to_string(),
    }
}

fn options(flags: &[Flag]) -> String {
    let shown: Vec<&Flag> = flags.iter().filter(|f| !f.hidden).collect();
    let width = shown.iter().map(|f| flag_names(f).len()).max().unwrap_or(0);
    let mut s = String::new();
    for f in shown {
        let names = flag_names(f);
        let text = wrap(&flag_help(f), 3 + width + 2, 100);
        let _ = write!(s, "   {names:width$}  {}", text.trim_start());
    }
    s
}

/// `text` wrapped to `cols` columns, every line indented by `indent` spaces, ending in '\n'.
pub fn wrap(text: &str, indent: usize, cols: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > cols {
            let _ = writeln!(out, "{:indent$}{line}", "");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    let _ = writeln!(out, "{:indent$}{line}", "");
    out
}
