//! Man pages (roff) and shell completions (bash, zsh, fish), generated from the table by the
//! `husk-docgen` tool (`make man`, `make completions`). Not linked into `husk` itself.

use std::fmt::Write;

use crate::args::{Flag, Kind};
use crate::help::{flag_help, flag_names, usage, version_lines, ABOUT};
use crate::table::{signals, Command, COMMANDS, GLOBAL};

/// Roff text: backslashes escaped, and a leading `.` or `'` cannot start a request.
fn roff(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

fn th(name: &str) -> String {
    format!(
        ".TH {} 8 \"\" \"husk {}\" \"System Administration\"\n",
        name.to_uppercase(),
        env!("CARGO_PKG_VERSION")
    )
}

fn flag_items(s: &mut String, flags: &[Flag]) {
    for f in flags {
        let _ = writeln!(
            s,
            ".TP\n.B {}\n{}",
            roff(&flag_names(f)),
            roff(&flag_help(f))
        );
    }
}

/// Hidden flags: accepted, absent from `--help`, documented here.
fn compatibility(s: &mut String, flags: &[Flag]) {
    let hidden: Vec<Flag> = flags.iter().copied().filter(|f| f.hidden).collect();
    if !hidden.is_empty() {
        s.push_str(".SH COMPATIBILITY OPTIONS\nAccepted for runc compatibility, not listed by \\fB\\-\\-help\\fR.\n");
        flag_items(s, &hidden);
    }
}

/// `husk.8`: the commands and global options.
pub fn man_main() -> String {
    let mut s = th("husk");
    let _ = writeln!(
        s,
        ".SH NAME\nhusk \\- {ABOUT}\n.SH SYNOPSIS\n.B husk\n[global options] command [command options] [arguments...]"
    );
    s.push_str(".SH DESCRIPTION\nhusk creates and runs containers from OCI bundles (a directory with config.json and a root filesystem), following the OCI runtime\\-spec. Its commands, flags, exit codes, output and log format are runc's, so that Podman, containerd, Docker and Kubernetes can use it in runc's place.\n");
    let _ = writeln!(
        s,
        ".PP\nThis is {}.",
        roff(&version_lines().replace('\n', ", "))
    );
    s.push_str(".SH COMMANDS\n");
    for c in COMMANDS {
        let _ = writeln!(
            s,
            ".TP\n.B {}\n{} (see \\fBhusk\\-{}\\fR(8))",
            roff(c.name),
            roff(c.summary),
            roff(c.name)
        );
    }
    s.push_str(".SH GLOBAL OPTIONS\nGiven before the command name.\n");
    flag_items(
        &mut s,
        &GLOBAL
            .iter()
            .copied()
            .filter(|f| !f.hidden)
            .collect::<Vec<_>>(),
    );
    compatibility(&mut s, GLOBAL);
    s.push_str(".SH EXIT STATUS\n0 on success, 1 when husk fails; \\fBrun\\fR and \\fBexec\\fR exit with the container process's status (128+N when killed by signal N), and \\fBexec\\fR exits 255 when husk itself fails.\n");
    s.push_str(".SH FILES\n.TP\n.I /run/husk\nthe default state directory (\\fB\\-\\-root\\fR)\n");
    s.push_str(".SH SEE ALSO\n");
    let see: Vec<String> = COMMANDS
        .iter()
        .map(|c| format!("\\fBhusk\\-{}\\fR(8)", roff(c.name)))
        .collect();
    let _ = writeln!(s, "{}, \\fBrunc\\fR(8)", see.join(", "));
    s
}

/// `husk-CMD.8`.
pub fn man_command(c: &Command) -> String {
    let mut s = th(&format!("husk-{}", c.name));
    let _ = writeln!(
        s,
        ".SH NAME\nhusk\\-{} \\- {}\n.SH SYNOPSIS\n{}",
        roff(c.name),
        roff(c.summary),
        roff(&usage(c))
    );
    let _ = writeln!(s, ".SH DESCRIPTION\n{}", roff(c.about));
    if !c.aliases.is_empty() {
        let _ = writeln!(
            s,
            ".PP\nAlso available as: {}.",
            roff(&c.aliases.join(", "))
        );
    }
    let shown: Vec<Flag> = c.flags.iter().copied().filter(|f| !f.hidden).collect();
    if !shown.is_empty() {
        s.push_str(".SH OPTIONS\n");
        flag_items(&mut s, &shown);
    }
    compatibility(&mut s, c.flags);
    s.push_str(".SH SEE ALSO\n\\fBhusk\\fR(8)\n");
    s
}

/// Every man page: (file name, content).
pub fn man_pages() -> Vec<(String, String)> {
    let mut v = vec![("husk.8".to_string(), man_main())];
    for c in COMMANDS {
        v.push((format!("husk-{}.8", c.name), man_command(c)));
    }
    v
}

/// A flag's help cut to its first clause, for completion menus.
fn short_help(f: &Flag) -> String {
    let h = f.help;
    let end = ["; ", ": ", " ("]
        .iter()
        .filter_map(|sep| h.find(sep))
        .min()
        .unwrap_or(h.len());
    h[..end].to_string()
}

fn value_flags(flags: &[Flag]) -> Vec<&Flag> {
    flags.iter().filter(|f| f.takes_value).collect()
}

fn bash_value_case(s: &mut String, flags: &[Flag], indent: &str) {
    for f in value_flags(flags) {
        let mut pats = vec![format!("--{}", f.name), format!("-{}", f.name)];
        if let Some(sh) = f.short {
            pats.push(format!("-{sh}"));
        }
        let action = match f.kind {
            Kind::File => "COMPREPLY=($(compgen -f -- \"$cur\"))".to_string(),
            Kind::Dir => "COMPREPLY=($(compgen -d -- \"$cur\"))".to_string(),
            Kind::Word(w) => format!("COMPREPLY=($(compgen -W '{}' -- \"$cur\"))", w.join(" ")),
            _ => "COMPREPLY=()".to_string(),
        };
        let _ = writeln!(s, "{indent}{}) {action}; return ;;", pats.join("|"));
    }
}

fn dashed(flags: &[Flag]) -> String {
    let mut v = Vec::new();
    for f in flags {
        v.push(format!("--{}", f.name));
        if let Some(sh) = f.short {
            v.push(format!("-{sh}"));
        }
    }
    v.join(" ")
}

/// `husk.bash`: for bash-completion (`/usr/share/bash-completion/completions/husk`).
pub fn bash() -> String {
    let mut s = String::from(
        "# bash completion for husk (generated by husk-docgen from husk's flag table)\n",
    );
    s.push_str("_husk_ids() {\n    local root=\"\" i\n    for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do\n        [ \"${COMP_WORDS[i]}\" = --root ] && root=${COMP_WORDS[i + 1]}\n    done\n    husk ${root:+--root \"$root\"} list -q 2>/dev/null\n}\n");
    s.push_str("_husk() {\n    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]} cmd=\"\" i w npos=0\n");
    let global_values: Vec<String> = value_flags(GLOBAL)
        .iter()
        .map(|f| format!("--{}|-{}", f.name, f.name))
        .collect();
    let _ = writeln!(
        s,
        "    for ((i = 1; i < COMP_CWORD; i++)); do\n        w=${{COMP_WORDS[i]}}\n        if [ -z \"$cmd\" ]; then\n            case $w in\n            {}) ((i++)) ;;\n            -*) ;;\n            *) cmd=$w ;;\n            esac\n        elif [[ $w != -* ]]; then\n            ((npos++))\n        fi\n    done",
        global_values.join("|")
    );
    s.push_str("    case $cmd in\n    \"\")\n        case $prev in\n");
    bash_value_case(&mut s, GLOBAL, "        ");
    let names: Vec<&str> = COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()))
        .collect();
    let _ = writeln!(
        s,
        "        esac\n        if [[ $cur == -* ]]; then\n            COMPREPLY=($(compgen -W '{}' -- \"$cur\"))\n        else\n            COMPREPLY=($(compgen -W '{}' -- \"$cur\"))\n        fi ;;",
        dashed(GLOBAL),
        names.join(" ")
    );
    for c in COMMANDS {
        let mut pats = vec![c.name];
        pats.extend(c.aliases.iter().copied());
        let _ = writeln!(s, "    {})\n        case $prev in", pats.join("|"));
        bash_value_case(&mut s, c.flags, "        ");
        s.push_str("        esac\n");
        let positional = if c.takes_id {
            "[ $npos -eq 0 ] && COMPREPLY=($(compgen -W \"$(_husk_ids)\" -- \"$cur\"))".to_string()
        } else if c.name == "help" {
            format!(
                "COMPREPLY=($(compgen -W '{}' -- \"$cur\"))",
                names.join(" ")
            )
        } else {
            "COMPREPLY=()".to_string()
        };
        let extra = if c.name == "kill" {
            format!(
                "\n            [ $npos -eq 1 ] && COMPREPLY=($(compgen -W '{}' -- \"$cur\"))",
                signals().join(" ")
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "        if [[ $cur == -* ]]; then\n            COMPREPLY=($(compgen -W '{}' -- \"$cur\"))\n        else\n            {positional}{extra}\n        fi ;;",
            dashed(c.flags)
        );
    }
    s.push_str("    esac\n}\ncomplete -F _husk husk\n");
    s
}

/// zsh's `_arguments` spec text: `[`, `]`, `:` and `'` escaped.
fn zsh_escape(t: &str) -> String {
    t.replace('\\', "\\\\")
        .replace('\'', "'\\''")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace(':', "\\:")
}

fn zsh_flags(s: &mut String, flags: &[Flag]) {
    for f in flags {
        let action = match f.kind {
            Kind::None => String::new(),
            Kind::File => ":file:_files".to_string(),
            Kind::Dir => ":directory:_files -/".to_string(),
            Kind::Word(w) => format!(":value:({})", w.join(" ")),
            Kind::Text => ":value: ".to_string(),
        };
        let repeat = if f.takes_value { "*" } else { "" };
        let help = zsh_escape(&short_help(f));
        let _ = writeln!(s, "        '{repeat}--{}[{help}]{action}' \\", f.name);
        if let Some(sh) = f.short {
            let _ = writeln!(s, "        '{repeat}-{sh}[{help}]{action}' \\",);
        }
    }
}

/// `_husk`: for zsh's fpath (`/usr/share/zsh/vendor-completions/_husk`).
pub fn zsh() -> String {
    let mut s = String::from("#compdef husk\n# zsh completion for husk (generated by husk-docgen from husk's flag table)\n\n");
    s.push_str("_husk_ids() {\n    local -a ids\n    ids=(${(f)\"$(husk list -q 2>/dev/null)\"})\n    _describe 'container id' ids\n}\n\n");
    s.push_str("_husk() {\n    local curcontext=$curcontext state line\n    local -a commands\n    commands=(\n");
    for c in COMMANDS {
        for n in std::iter::once(c.name).chain(c.aliases.iter().copied()) {
            let _ = writeln!(s, "        '{}:{}'", n, zsh_escape(c.summary));
        }
    }
    s.push_str("    )\n    _arguments -C \\\n");
    zsh_flags(&mut s, GLOBAL);
    s.push_str("        '1: :->command' \\\n        '*:: :->args'\n    case $state in\n    command) _describe 'command' commands ;;\n    args)\n        case $words[1] in\n");
    for c in COMMANDS {
        let mut pats = vec![c.name];
        pats.extend(c.aliases.iter().copied());
        let _ = writeln!(s, "        {})\n            _arguments \\", pats.join("|"));
        zsh_flags(&mut s, c.flags);
        if c.takes_id {
            s.push_str("        '1:container id:_husk_ids' \\\n");
        }
        if c.name == "kill" {
            let _ = writeln!(s, "        '2:signal:({})' \\", signals().join(" "));
        }
        if c.name == "help" {
            s.push_str("        '1:command:{_describe command commands}' \\\n");
        }
        s.push_str("        '*::argument:_files' ;;\n");
    }
    s.push_str("        esac ;;\n    esac\n}\n\n_husk \"$@\"\n");
    s
}

fn fish_quote(t: &str) -> String {
    format!("'{}'", t.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn fish_flags(s: &mut String, cond: &str, flags: &[Flag]) {
    for f in flags {
        let mut line = format!("complete -c husk -n {} -l {}", fish_quote(cond), f.name);
        if let Some(sh) = f.short {
            let _ = write!(line, " -s {sh}");
        }
        match f.kind {
            Kind::None => {}
            Kind::File => line.push_str(" -r -F"),
            Kind::Dir => line.push_str(" -r -a '(__fish_complete_directories)'"),
            Kind::Word(w) => {
                let _ = write!(line, " -r -f -a {}", fish_quote(&w.join(" ")));
            }
            Kind::Text => line.push_str(" -r -f"),
        }
        let _ = writeln!(s, "{line} -d {}", fish_quote(&short_help(f)));
    }
}

/// `husk.fish`: for fish (`/usr/share/fish/vendor_completions.d/husk.fish`).
pub fn fish() -> String {
    let mut s = String::from("# fish completion for husk (generated by husk-docgen from husk's flag table)\ncomplete -c husk -f\n");
    let all: Vec<&str> = COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()))
        .collect();
    let none = format!("not __fish_seen_subcommand_from {}", all.join(" "));
    fish_flags(&mut s, &none, GLOBAL);
    for c in COMMANDS {
        for n in std::iter::once(c.name).chain(c.aliases.iter().copied()) {
            let _ = writeln!(
                s,
                "complete -c husk -n {} -a {n} -d {}",
                fish_quote(&none),
                fish_quote(c.summary)
            );
        }
    }
    for c in COMMANDS {
        let mut names = vec![c.name];
        names.extend(c.aliases.iter().copied());
        let cond = format!("__fish_seen_subcommand_from {}", names.join(" "));
        fish_flags(&mut s, &cond, c.flags);
        if c.takes_id {
            let _ = writeln!(
                s,
                "complete -c husk -n {} -a '(husk list -q 2>/dev/null)' -d 'container id'",
                fish_quote(&cond)
            );
        }
        if c.name == "kill" {
            let _ = writeln!(
                s,
                "complete -c husk -n {} -a {} -d signal",
                fish_quote(&cond),
                fish_quote(&signals().join(" "))
            );
        }
        if c.name == "help" {
            let _ = writeln!(
                s,
                "complete -c husk -n {} -a {}",
                fish_quote(&cond),
                fish_quote(&all.join(" "))
            );
        }
    }
    s
}
