//! `exec`: run a new process in a running container.

use husk_runtime::Runtime;

use super::{absolute, parse, CliError, Result};

pub(super) fn exec(argv: &[String], rt: &Runtime) -> Result<u8> {
    let p = parse("exec", argv)?;
    let Some((id, args)) = p.positional.split_first() else {
        return Err(CliError::Usage(
            "exec: usage: husk exec [options] <container-id> <command> [args...]".into(),
        ));
    };
    let number = |flag: &str, v: &str| {
        v.parse::<u32>()
            .map_err(|_| CliError::Usage(format!("exec: --{flag}: {v:?} is not a number")))
    };
    let opts = husk_runtime::ExecOptions {
        id: id.clone(),
        process: p.value("process").map(absolute),
        args: args.to_vec(),
        detach: p.has("detach"),
        pid_file: p.value("pid-file").map(absolute),
        console_socket: p.value("console-socket").map(absolute),
        pidfd_socket: p.value("pidfd-socket").map(absolute),
        tty: p.has("tty"),
        cwd: p.value("cwd").map(str::to_string),
        env: p.values("env").to_vec(),
        user: p.value("user").map(str::to_string),
        additional_gids: p
            .values("additional-gids")
            .iter()
            .map(|g| number("additional-gids", g))
            .collect::<Result<_>>()?,
        caps: p.values("cap").to_vec(),
        no_new_privs: p.has("no-new-privs"),
        apparmor: p.value("apparmor").map(str::to_string),
        process_label: p.value("process-label").map(str::to_string),
        preserve_fds: p
            .value("preserve-fds")
            .map(|v| number("preserve-fds", v))
            .transpose()?
            .unwrap_or(0),
        ignore_paused: p.has("ignore-paused"),
        cgroups: p.values("cgroup").to_vec(),
    };
    let code = rt.exec(&opts)?;
    Ok(code.clamp(0, 255) as u8)
}
