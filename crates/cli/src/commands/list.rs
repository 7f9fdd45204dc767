//! `list`, with runc's table, JSON and quiet forms.

use std::io::Write;
use std::path::Path;

use husk_runtime::{OciState, Runtime};

use super::{parse, CliError, Result};

pub(super) fn list(argv: &[String], rt: &Runtime, explicit_root: bool) -> Result<u8> {
    let p = parse("list", argv)?;
    // Like runc: a missing default root means no containers yet; a missing `--root` is a
    // mistake worth reporting.
    if explicit_root {
        if let Err(e) = std::fs::read_dir(rt.root()) {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
                _ => e.to_string(),
            };
            return Err(CliError::Usage(format!(
                "open {}: {why}",
                rt.root().display()
            )));
        }
    }
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
            // Serialized from the struct, not a `Value` (whose map sorts keys): runc's order.
            let v: Vec<OciState> = states
                .into_iter()
                .map(|mut s| {
                    s.owner.clone_from(&owner);
                    s
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
