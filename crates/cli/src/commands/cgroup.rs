//! `pause`, `resume`, `ps`, `update`, `events`: commands that work through the cgroup.

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use husk_runtime::{Event, Runtime};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use super::{parse, positional, CliError, Result};

pub(super) fn dispatch(cmd: &str, argv: &[String], rt: &Runtime) -> Result<u8> {
    match cmd {
        "pause" | "resume" => {
            let p = parse(cmd, argv)?;
            let id = &positional(cmd, &p, &["container-id"])?[0];
            if cmd == "pause" {
                rt.pause(id)?
            } else {
                rt.resume(id)?
            }
            Ok(0)
        }
        "ps" => ps(argv, rt),
        "update" => update(argv, rt),
        _ => events(argv, rt),
    }
}

fn ps(argv: &[String], rt: &Runtime) -> Result<u8> {
    let p = parse("ps", argv)?;
    let Some((id, ps_args)) = p.positional.split_first() else {
        return Err(CliError::Usage(
            "ps: usage: husk ps [--format table|json] <container-id> [ps options]".into(),
        ));
    };
    let pids = rt.pids(id)?;
    match p.value("format").unwrap_or("table") {
        "json" => {
            println!("{}", serde_json::to_string(&pids).unwrap_or_default());
            Ok(0)
        }
        "table" => {
            let args: Vec<&str> = if ps_args.is_empty() {
                vec!["-ef"]
            } else {
                ps_args.iter().map(String::as_str).collect()
            };
            let out = Command::new("ps")
                .args(&args)
                .output()
                .map_err(|e| CliError::Usage(format!("ps: run ps {}: {e}", args.join(" "))))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let col = header
                .split_whitespace()
                .position(|c| c == "PID")
                .ok_or_else(|| {
                    CliError::Usage("ps: couldn't find PID field in ps output".into())
                })?;
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{header}");
            for line in lines {
                let pid = line
                    .split_whitespace()
                    .nth(col)
                    .and_then(|f| f.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    let _ = writeln!(stdout, "{line}");
                }
            }
            Ok(0)
        }
        other => Err(CliError::Usage(format!(
            "ps: invalid format option {other:?}"
        ))),
    }
}

/// `64m`, `1g`, `512k`, `1024`, `-1` (unlimited) as bytes, like runc's RAMInBytes.
fn bytes(flag: &str, v: &str) -> Result<i64> {
    let bad = || CliError::Usage(format!("update: --{flag}: invalid size {v:?}"));
    if v == "-1" {
        return Ok(-1);
    }
    let lower = v.trim().to_ascii_lowercase();
    let lower = lower.trim_end_matches('b').trim_end_matches('i');
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    Ok((n * mult as f64) as i64)
}

fn number(flag: &str, v: &str) -> Result<i64> {
    v.parse()
        .map_err(|_| CliError::Usage(format!("update: --{flag}: {v:?} is not a number")))
}

fn update(argv: &[String], rt: &Runtime) -> Result<u8> {
    let p = parse("update", argv)?;
    let id = &positional("update", &p, &["container-id"])?[0];
    let mut res: Value = match p.value("resources") {
        Some(src) => {
            let mut text = String::new();
            if src == "-" {
                std::io::stdin().read_to_string(&mut text).map_err(|e| {
                    CliError::Usage(format!("update: read resources from stdin: {e}"))
                })?;
            } else {
                text = std::fs::read_to_string(src)
                    .map_err(|e| CliError::Usage(format!("update: read resources {src}: {e}")))?;
            }
            serde_json::from_str(&text)
                .map_err(|e| CliError::Usage(format!("update: resources: invalid JSON: {e}")))?
        }
        None => json!({}),
    };
    let mut set = |section: &str, key: &str, v: Value| {
        if !res[section].is_object() {
            res[section] = Value::Object(Map::new());
        }
        res[section][key] = v;
    };
    for (flag, section, key, size) in [
        ("memory", "memory", "limit", true),
        ("memory-reservation", "memory", "reservation", true),
        ("memory-swap", "memory", "swap", true),
        ("kernel-memory", "memory", "kernel", true),
        ("kernel-memory-tcp", "memory", "kernelTCP", true),
        ("cpu-share", "cpu", "shares", false),
        ("cpu-quota", "cpu", "quota", false),
        ("cpu-period", "cpu", "period", false),
        ("cpu-burst", "cpu", "burst", false),
        ("cpu-rt-period", "cpu", "realtimePeriod", false),
        ("cpu-rt-runtime", "cpu", "realtimeRuntime", false),
        ("pids-limit", "pids", "limit", false),
        ("blkio-weight", "blockIO", "weight", false),
    ] {
        if let Some(v) = p.value(flag) {
            let n = if size {
                bytes(flag, v)?
            } else {
                number(flag, v)?
            };
            set(section, key, json!(n));
        }
    }
    for (flag, key) in [("cpuset-cpus", "cpus"), ("cpuset-mems", "mems")] {
        if let Some(v) = p.value(flag) {
            set("cpu", key, json!(v));
        }
    }
    if p.value("l3-cache-schema").is_some() || p.value("mem-bw-schema").is_some() {
        return Err(CliError::Usage(
            "update: Intel RDT is not supported by husk".into(),
        ));
    }
    let resources: LinuxResources = serde_json::from_value(res)
        .map_err(|e| CliError::Usage(format!("update: resources: {e}")))?;
    rt.update(id, &resources)?;
    Ok(0)
}

/// A Go duration (`5s`, `100ms`, `1m30s`) as runc's `--interval` takes it.
fn duration(v: &str) -> Result<Duration> {
    let bad = || CliError::Usage(format!("events: --interval: invalid duration {v:?}"));
    let mut total = 0f64;
    let mut rest = v;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..end].parse().map_err(|_| bad())?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    if total <= 0.0 {
        return Err(CliError::Usage(
            "events: --interval must be greater than 0".into(),
        ));
    }
    Ok(Duration::from_secs_f64(total))
}

fn events(argv: &[String], rt: &Runtime) -> Result<u8> {
    let p = parse("events", argv)?;
    let id = &positional("events", &p, &["container-id"])?[0];
    let print = |e: &Event<'_>| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", serde_json::to_string(e).unwrap_or_default());
        let _ = out.flush();
    };
    if p.has("stats") {
        let stats = rt.stats(id)?;
        print(&Event {
            kind: "stats",
            id,
            data: Some(stats),
        });
        return Ok(0);
    }
    let interval = duration(p.value("interval").unwrap_or("5s"))?;
    rt.events(id, interval, print)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(bytes("memory", "64m").unwrap(), 64 << 20);
        assert_eq!(bytes("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(bytes("memory", "1024").unwrap(), 1024);
        assert_eq!(bytes("memory", "-1").unwrap(), -1);
        assert!(bytes("memory", "lots").is_err());
        assert_eq!(duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(duration("5").is_err());
    }
}
