//! `checkpoint` and `restore` (through CRIU), with runc's flags.

use std::path::PathBuf;

use husk_runtime::{
    CgMode, CheckpointOptions, CriuFlags, RestoreOptions, Runtime, EMPTY_NS_NETWORK,
};

use super::{absolute, parse, positional, CliError, Result};
use husk::args::Parsed;

fn criu_flags(cmd: &str, p: &Parsed, criu: Option<&str>) -> Result<CriuFlags> {
    let image_path = match p.value("image-path") {
        Some(v) if !v.is_empty() => absolute(v),
        _ => absolute("checkpoint"),
    };
    let mode = p.value("manage-cgroups-mode").unwrap_or("");
    let manage_cgroups_mode = Some(CgMode::parse(mode).ok_or_else(|| {
        CliError::Usage(format!(
            "{cmd}: invalid --manage-cgroups-mode value {mode:?} (soft, full, strict or ignore)"
        ))
    })?);
    // runc does not manage network devices: the network namespace is always restored empty.
    let mut empty_ns = EMPTY_NS_NETWORK;
    for ns in p.values("empty-ns") {
        match ns.as_str() {
            "network" => empty_ns |= EMPTY_NS_NETWORK,
            other => {
                return Err(CliError::Usage(format!(
                    "{cmd}: --empty-ns: namespace {other:?} is not supported (only network)"
                )))
            }
        }
    }
    Ok(CriuFlags {
        criu: criu.map(str::to_string),
        image_path,
        work_path: p.value("work-path").filter(|v| !v.is_empty()).map(absolute),
        tcp_established: p.has("tcp-established"),
        ext_unix_sk: p.has("ext-unix-sk"),
        shell_job: p.has("shell-job"),
        file_locks: p.has("file-locks"),
        manage_cgroups_mode,
        empty_ns,
        auto_dedup: p.has("auto-dedup"),
        lazy_pages: p.has("lazy-pages"),
    })
}

/// `ADDRESS:PORT` (`[v6]:PORT` too).
fn page_server(v: &str) -> Result<(String, i32)> {
    let bad = || CliError::Usage("Use --page-server ADDRESS:PORT to specify page server".into());
    let (addr, port) = v.rsplit_once(':').ok_or_else(bad)?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if addr.is_empty() || port.is_empty() {
        return Err(bad());
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| CliError::Usage("Invalid port number".into()))?;
    Ok((addr.to_string(), i32::from(port)))
}

pub(super) fn checkpoint(argv: &[String], rt: &Runtime, criu: Option<&str>) -> Result<u8> {
    let cmd = "checkpoint";
    let p = parse(cmd, argv)?;
    let id = &positional(cmd, &p, &["container-id"])?[0];
    let status_fd = match p.value("status-fd") {
        None => None,
        Some(v) => match v.parse::<i32>() {
            Ok(-1) => None,
            Ok(fd) if fd >= 0 => Some(fd),
            _ => {
                return Err(CliError::Usage(format!(
                    "{cmd}: --status-fd: {v:?} is not a descriptor number"
                )))
            }
        },
    };
    let opts = CheckpointOptions {
        criu: criu_flags(cmd, &p, criu)?,
        parent_path: p
            .value("parent-path")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        leave_running: p.has("leave-running"),
        pre_dump: p.has("pre-dump"),
        tcp_skip_in_flight: p.has("tcp-skip-in-flight"),
        link_remap: p.has("link-remap"),
        page_server: p.value("page-server").map(page_server).transpose()?,
        status_fd,
    };
    rt.checkpoint(id, &opts)?;
    Ok(0)
}

pub(super) fn restore(argv: &[String], rt: &Runtime, criu: Option<&str>) -> Result<u8> {
    let cmd = "restore";
    let p = parse(cmd, argv)?;
    let id = positional(cmd, &p, &["container-id"])?[0].clone();
    let opts = RestoreOptions {
        id,
        bundle: absolute(p.value("bundle").unwrap_or(".")),
        criu: criu_flags(cmd, &p, criu)?,
        detach: p.has("detach"),
        pid_file: p.value("pid-file").map(absolute),
        console_socket: p.value("console-socket").map(absolute),
        no_subreaper: p.has("no-subreaper"),
        no_pivot: p.has("no-pivot"),
    };
    let code = rt.restore(&opts)?;
    Ok(code.clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::page_server;

    #[test]
    fn page_server_forms() {
        assert_eq!(page_server("10.0.0.1:27").unwrap(), ("10.0.0.1".into(), 27));
        assert_eq!(page_server("[::1]:27").unwrap(), ("::1".into(), 27));
        assert!(page_server("10.0.0.1").is_err());
        assert!(page_server(":27").is_err());
        assert!(page_server("h:x").is_err());
    }
}
