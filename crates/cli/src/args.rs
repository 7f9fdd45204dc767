//! A small command-line parser with runc's (Go `flag` / urfave-cli) conventions: `--name`,
//! `-name`, `-n`, `--name=value`, `--name value`, booleans as `--name` or `--name=false`, and
//! `--` to end the flags.

use std::collections::HashMap;

/// One flag: how it is parsed and how it is documented (help, man pages, completions are all
/// generated from these, see `table.rs`).
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    /// Canonical name, without dashes.
    pub name: &'static str,
    pub short: Option<&'static str>,
    pub takes_value: bool,
    /// What the value is, for completions.
    pub kind: Kind,
    /// The default as shown in help (`None`: no default worth showing).
    pub default: Option<&'static str>,
    pub help: &'static str,
    /// Accepted but left out of `--help` (documented in the man page's COMPATIBILITY section).
    pub hidden: bool,
}

/// The kind of a flag's value, for shell completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    None,
    File,
    Dir,
    /// One of a fixed set of words.
    Word(&'static [&'static str]),
    /// Anything else (a number, a size, a name).
    Text,
}

pub const fn flag(name: &'static str) -> Flag {
    Flag {
        name,
        short: None,
        takes_value: false,
        kind: Kind::None,
        default: None,
        help: "",
        hidden: false,
    }
}
pub const fn opt(name: &'static str) -> Flag {
    Flag {
        takes_value: true,
        kind: Kind::Text,
        ..flag(name)
    }
}
impl Flag {
    pub const fn short(mut self, s: &'static str) -> Flag {
        self.short = Some(s);
        self
    }
    pub const fn help(mut self, h: &'static str) -> Flag {
        self.help = h;
        self
    }
    pub const fn default(mut self, d: &'static str) -> Flag {
        self.default = Some(d);
        self
    }
    pub const fn kind(mut self, k: Kind) -> Flag {
        self.kind = k;
        self
    }
    pub const fn hidden(mut self) -> Flag {
        self.hidden = true;
        self
    }
}

#[derive(Default, Debug)]
pub struct Parsed {
    values: HashMap<&'static str, Vec<String>>,
    pub positional: Vec<String>,
}

impl Parsed {
    pub fn has(&self, name: &str) -> bool {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .is_some_and(|v| v != "false")
    }
    /// Every value of a repeatable flag (`-e A=1 -e B=2`).
    pub fn values(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }
}

/// Parses `args` against `flags`. With `stop_at_positional`, everything after the first
/// positional argument is positional too (for `exec ID CMD ARGS...`).
pub fn parse(args: &[String], flags: &[Flag], stop_at_positional: bool) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut it = args.iter().peekable();
    while let Some(arg) = it.next() {
        if arg == "--" {
            out.positional.extend(it.by_ref().cloned());
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            out.positional.push(arg.clone());
            if stop_at_positional {
                out.positional.extend(it.by_ref().cloned());
                break;
            }
            continue;
        }
        let body = arg.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let f = flags
            .iter()
            .find(|f| f.name == name || f.short == Some(name))
            .ok_or_else(|| format!("flag provided but not defined: -{name}"))?;
        let value = if f.takes_value {
            match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("flag needs an argument: -{name}"))?,
            }
        } else {
            match inline.as_deref() {
                None | Some("true") | Some("1") => "true".to_string(),
                Some("false") | Some("0") => "false".to_string(),
                Some(v) => return Err(format!("invalid boolean value {v:?} for -{name}")),
            }
        };
        out.values.entry(f.name).or_default().push(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const FLAGS: &[Flag] = &[
        opt("bundle").short("b"),
        flag("detach").short("d"),
        opt("pid-file"),
        opt("env").short("e"),
    ];

    #[test]
    fn runc_forms() {
        let p = parse(
            &s(&["--bundle=/b", "-d", "--pid-file", "/p", "id"]),
            FLAGS,
            false,
        )
        .unwrap();
        assert_eq!(p.value("bundle"), Some("/b"));
        assert!(p.has("detach"));
        assert_eq!(p.value("pid-file"), Some("/p"));
        assert_eq!(p.positional, vec!["id"]);
        let p = parse(&s(&["-bundle", "/x", "id", "--detach=false"]), FLAGS, false).unwrap();
        assert_eq!(p.value("bundle"), Some("/x"));
        assert!(!p.has("detach"));
    }

    #[test]
    fn exec_style_stops_at_first_positional() {
        let p = parse(
            &s(&["-e", "A=1", "-e", "B=2", "id", "sh", "-c", "x"]),
            FLAGS,
            true,
        )
        .unwrap();
        assert_eq!(p.values("env"), &["A=1".to_string(), "B=2".to_string()]);
        assert_eq!(p.positional, vec!["id", "sh", "-c", "x"]);
    }

    #[test]
    fn errors_name_the_flag() {
        assert!(parse(&s(&["--nope"]), FLAGS, false)
            .unwrap_err()
            .contains("-nope"));
        assert!(parse(&s(&["--bundle"]), FLAGS, false)
            .unwrap_err()
            .contains("-bundle"));
    }
}
