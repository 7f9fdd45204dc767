//! The one table of husk's command line: every command, its arguments and flags, with the
//! text shown by `--help` and written into the man pages and shell completions. The parser
//! (`args.rs`) reads the same entries, so a flag cannot be accepted without being documented.
//! Meanings follow runc's (the contract); the words are husk's own.

use crate::args::{flag, opt, Flag, Kind};

/// A command of `husk`.
#[derive(Debug)]
pub struct Command {
    pub name: &'static str,
    /// Other names (`ls` for `list`).
    pub aliases: &'static [&'static str],
    /// The positional arguments as shown in the usage line.
    pub args: &'static str,
    /// One line, for the command list.
    pub summary: &'static str,
    /// A paragraph, for the command's own help and man page.
    pub about: &'static str,
    pub flags: &'static [Flag],
    /// Everything after the first positional argument is positional (`exec ID CMD -x`).
    pub stop_at_positional: bool,
    /// Its arguments start with a container id (completions offer `husk list -q`).
    pub takes_id: bool,
}

const SIGNALS: &[&str] = &[
    "TERM", "KILL", "INT", "HUP", "QUIT", "USR1", "USR2", "STOP", "CONT", "WINCH",
];

pub const HELP_FLAG: Flag = flag("help").short("h").help("show this help and exit");

/// Flags given before the command name.
pub const GLOBAL: &[Flag] = &[
    opt("root")
        .kind(Kind::Dir)
        .default("/run/husk")
        .help("directory holding the state of containers (one subdirectory per id); use the same one for every command on a container"),
    opt("log")
        .kind(Kind::File)
        .default("stderr")
        .help("append log messages to this file instead of standard error; with a file, errors are written there too"),
    opt("log-format")
        .kind(Kind::Word(&["text", "json"]))
        .default("text")
        .help("format of log messages: text, or json (one object per line with level, msg and time, as runc writes and containerd and Podman read)"),
    flag("debug").help("log debug messages too"),
    flag("systemd-cgroup").help(
        "manage cgroups through systemd: cgroupsPath is then slice:prefix:name (for example system.slice:husk:ID)",
    ),
    opt("rootless")
        .kind(Kind::Word(&["true", "false", "auto"]))
        .default("auto")
        .help("rootless mode: true, false, or auto (rootless when not root, or root only in a user namespace); a rootless husk runs a container without a cgroup when it may not make one and the spec sets no limits"),
    opt("criu")
        .kind(Kind::File)
        .default("criu")
        .help("the CRIU binary that checkpoint and restore run (a name is looked up in PATH)"),
    HELP_FLAG,
    flag("version").short("v").help("print husk's version and the runtime-spec version it implements"),
];

const BUNDLE: Flag = opt("bundle")
    .short("b")
    .kind(Kind::Dir)
    .default("current directory")
    .help("bundle directory: holds config.json and, usually, the root filesystem");
const CONSOLE_SOCKET: Flag = opt("console-socket").kind(Kind::File).help(
    "path of a Unix socket: with process.terminal true, the pseudo-terminal's master end is sent there (SCM_RIGHTS) instead of being kept by husk",
);
const PIDFD_SOCKET: Flag = opt("pidfd-socket").kind(Kind::File).help(
    "path of a Unix socket: a pidfd of the container's process is sent there (SCM_RIGHTS) once it is started, as runc >= 1.2",
);
const PID_FILE: Flag = opt("pid-file")
    .kind(Kind::File)
    .help("write the host pid of the container's process to this file");
const PRESERVE_FDS: Flag = opt("preserve-fds")
    .default("0")
    .help("pass this many extra file descriptors, from fd 3 on, to the process (besides stdio and LISTEN_FDS)");

const CREATE_FLAGS: &[Flag] = &[
    BUNDLE,
    CONSOLE_SOCKET,
    PIDFD_SOCKET,
    PID_FILE,
    flag("no-pivot").help(
        "enter the root filesystem with MS_MOVE and chroot instead of pivot_root (for a rootfs on a ramdisk)",
    ),
    flag("no-new-keyring")
        .help("keep the caller's session keyring instead of giving the container a new one"),
    PRESERVE_FDS,
    HELP_FLAG,
];

const RUN_FLAGS: &[Flag] = &[
    BUNDLE,
    CONSOLE_SOCKET,
    PIDFD_SOCKET,
    PID_FILE,
    flag("detach")
        .short("d")
        .help("return once the process is started; the container keeps running and stays until deleted"),
    flag("keep").help(
        "keep the stopped container instead of deleting it, for state and delete (not with --detach)",
    ),
    flag("no-subreaper").help(
        "do not make husk a child subreaper while it waits in the foreground (refused for an init that is husk's grandchild)",
    ),
    flag("no-pivot").help(
        "enter the root filesystem with MS_MOVE and chroot instead of pivot_root (for a rootfs on a ramdisk)",
    ),
    flag("no-new-keyring")
        .help("keep the caller's session keyring instead of giving the container a new one"),
    PRESERVE_FDS,
    HELP_FLAG,
];

const EXEC_FLAGS: &[Flag] = &[
    opt("process")
        .short("p")
        .kind(Kind::File)
        .help("read the process to run from this JSON file (the spec's process object); other process flags then do not apply"),
    flag("detach")
        .short("d")
        .help("return once the process is started, without waiting for it"),
    PID_FILE,
    CONSOLE_SOCKET,
    PIDFD_SOCKET,
    flag("tty").short("t").help("give the process a pseudo-terminal"),
    opt("cwd").kind(Kind::Dir).help(
        "working directory of the process, inside the container (default: the container's process.cwd)",
    ),
    opt("env")
        .short("e")
        .help("set an environment variable, KEY=VALUE; repeatable; added to the container's process.env"),
    opt("user")
        .short("u")
        .help("uid[:gid] to run as, numeric (default: the container's process.user)"),
    opt("additional-gids")
        .short("g")
        .help("an additional group id; repeatable"),
    opt("cap")
        .short("c")
        .help("add a capability (CAP_NAME) to the process's sets; repeatable"),
    flag("no-new-privs").help("set no_new_privs for the process"),
    opt("apparmor").help("AppArmor profile to run the process under"),
    opt("process-label").help("SELinux label to run the process under"),
    PRESERVE_FDS,
    flag("ignore-paused").help("run the process even if the container is paused (it starts frozen)"),
    opt("cgroup").help(
        "run the process in this sub-cgroup of the container: PATH for every controller, or CONTROLLER[,CONTROLLER]:PATH; repeatable",
    ),
    HELP_FLAG,
];

const UPDATE_FLAGS: &[Flag] = &[
    opt("resources")
        .short("r")
        .kind(Kind::File)
        .help("read the new limits from this JSON file (the spec's linux.resources object), - for standard input; other flags override its values"),
    opt("blkio-weight").help("relative block I/O weight, 10 to 1000"),
    opt("cpu-burst").help("CPU CFS burst in microseconds: quota a period may borrow from earlier idle ones"),
    opt("cpu-period").help("CPU CFS period in microseconds"),
    opt("cpu-quota").help("CPU CFS quota in microseconds per period (-1: no limit)"),
    opt("cpu-rt-period").help("realtime scheduling period in microseconds"),
    opt("cpu-rt-runtime").help("realtime scheduling runtime in microseconds per period"),
    opt("cpu-share").help("relative CPU shares"),
    opt("cpuset-cpus").help("CPUs the container may use (0-3,7)"),
    opt("cpuset-mems").help("memory nodes the container may use (0-1)"),
    opt("kernel-memory").help("kernel memory limit in bytes, with an optional k, m, g suffix (cgroup v1)"),
    opt("kernel-memory-tcp").help("kernel TCP buffer limit in bytes, with an optional k, m, g suffix (cgroup v1)"),
    opt("memory").help("memory limit in bytes, with an optional k, m, g suffix (-1: no limit)"),
    opt("memory-reservation").help("memory soft limit in bytes, with an optional k, m, g suffix"),
    opt("memory-swap").help("memory plus swap limit in bytes, with an optional k, m, g suffix (-1: no limit)"),
    opt("pids-limit").help("maximum number of processes (-1: no limit)"),
    opt("l3-cache-schema").help("Intel RDT L3 cache schema (not supported by husk: refused)"),
    opt("mem-bw-schema").help("Intel RDT memory bandwidth schema (not supported by husk: refused)"),
    HELP_FLAG,
];

const IMAGE_PATH: Flag = opt("image-path")
    .kind(Kind::Dir)
    .default("./checkpoint")
    .help("directory of the CRIU image files (written by checkpoint, read by restore)");
const WORK_PATH: Flag = opt("work-path")
    .kind(Kind::Dir)
    .default("the image path")
    .help("directory for CRIU's log files (dump.log, restore.log) and work files");
const CRIU_COMMON: [Flag; 9] = [
    flag("tcp-established").help("save or restore established TCP connections"),
    flag("ext-unix-sk").help("allow external (outside the container) Unix sockets"),
    flag("shell-job").help("allow a shell job: a process attached to the caller's terminal session"),
    flag("file-locks").help("save or restore file locks"),
    opt("manage-cgroups-mode")
        .kind(Kind::Word(&["soft", "full", "strict", "ignore"]))
        .default("soft")
        .help("how CRIU handles the container's cgroups: soft, full, strict or ignore"),
    opt("empty-ns")
        .help("a namespace CRIU must not save or restore, only create empty: network (the only one supported)"),
    flag("auto-dedup").help("free image pages already written to a parent image (incremental dumps)"),
    flag("lazy-pages").help("restore memory pages on demand (userfaultfd) instead of at once"),
    HELP_FLAG,
];
const CHECKPOINT_FLAGS: &[Flag] = &[
    IMAGE_PATH,
    WORK_PATH,
    opt("parent-path").help("path of the previous (pre-dump) image, relative to --image-path"),
    flag("leave-running").help("leave the container running after the checkpoint"),
    flag("pre-dump").help("save memory only, and leave the container running (for an iterative migration)"),
    opt("page-server").help("ADDRESS:PORT of a CRIU page server to send the memory pages to"),
    opt("status-fd").help("with --lazy-pages: a descriptor on which husk writes a byte when the lazy-pages server is ready"),
    flag("tcp-skip-in-flight").help("skip TCP connections still being established"),
    flag("link-remap").help("allow CRIU to link-remap files that were deleted but are still open"),
    CRIU_COMMON[0],
    CRIU_COMMON[1],
    CRIU_COMMON[2],
    CRIU_COMMON[3],
    CRIU_COMMON[4],
    CRIU_COMMON[5],
    CRIU_COMMON[6],
    CRIU_COMMON[7],
    CRIU_COMMON[8],
];
const RESTORE_FLAGS: &[Flag] = &[
    IMAGE_PATH,
    WORK_PATH,
    BUNDLE,
    flag("detach")
        .short("d")
        .help("return once the container is restored, instead of waiting for its process"),
    PID_FILE,
    CONSOLE_SOCKET,
    flag("no-subreaper")
        .help("do not make husk a child subreaper while it waits in the foreground"),
    flag("no-pivot").help(
        "accepted like runc's and without effect: CRIU rebuilds the container's mounts itself",
    ),
    CRIU_COMMON[0],
    CRIU_COMMON[1],
    CRIU_COMMON[2],
    CRIU_COMMON[3],
    CRIU_COMMON[4],
    CRIU_COMMON[5],
    CRIU_COMMON[6],
    CRIU_COMMON[7],
    CRIU_COMMON[8],
];

/// Every command, in the order `husk --help` lists them.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "create",
        aliases: &[],
        args: "<container-id>",
        summary: "create a container",
        about: "Creates the container described by the bundle's config.json: namespaces, cgroups, mounts and the init process, which waits. Run the user's process with `husk start`. The id must be unique under --root.",
        flags: CREATE_FLAGS,
        stop_at_positional: false,
        takes_id: true,
    },
    Command {
        name: "start",
        aliases: &[],
        args: "<container-id>",
        summary: "start the user process of a created container",
        about: "Runs the process of config.json in a container that `husk create` made. Fails if the container is not in the created state.",
        flags: &[HELP_FLAG],
        stop_at_positional: false,
        takes_id: true,
    },
    Command {
        name: "run",
        aliases: &[],
        args: "<container-id>",
        summary: "create and start a container",
        about: "Creates the container and starts its process at once. In the foreground (the default) husk forwards signals to the process, waits for it, deletes the container and exits with its exit status (128+N when killed by signal N).",
        flags: RUN_FLAGS,
        stop_at_positional: false,
        takes_id: true,
    },
    Command {
        name: "state",
        aliases: &[],
        args: "<container-id>",
        summary: "output the state of a container",
        about: "Prints the container's state as the runtime-spec defines it (JSON): ociVersion, id, status (created, running, paused, stopped), pid, bundle and annotations.",
        flags: &[HELP_FLAG],
        stop_at_positional: false,
        takes_id: true,
    },
    Command {
        name: "list",
        aliases: &["ls"],
        args: "",
        summary: "list containers",
        about: "Lists the containers under --root.",
        flags: &[
            opt("format")
                .short("f")
                .kind(Kind::Word(&["table", "json"]))
                .default("table")
                .help("table, or json (an array of states with owner and creation time)"),
            flag("quiet").short("q").help("print the container ids only"),
            HELP_FLAG,
        ],
        stop_at_positional: false,
        takes_id: false,
    },
    Command {
        name: "exec",
        aliases: &[],
        args: "<container-id> <command> [args...]",
        summary: "run a new process inside a running container",
        about: "Runs a process in the namespaces, cgroup and security settings of a running container. Without --detach husk waits and exits with the process's exit status; husk's own failures exit 255.",
        flags: EXEC_FLAGS,
        stop_at_positional: true,
        takes_id: true,
    },
    Command {
        name: "kill",
        aliases: &[],
        args: "<container-id> [signal]",
        summary: "send a signal to the container's init process",
        about: "Sends a signal (a name such as KILL or SIGKILL, or a number; default TERM) to the container's init process.",
        flags: &[
            flag("all")
                .short("a")
                .help("send the signal to every process of the container, not only the init"),
            HELP_FLAG,
        ],
        stop_at_positional: false,
        takes_id: true,
    },
    Command {
        name: "ps",
        aliases: &[],
        args: "<container-id> [ps options]",
        summary: "list the processes of a container",
        about: "Runs ps(1) with the given options (default -ef) and keeps the lines of the container's processes, or prints their pids as JSON.",
        flags: &[
            opt("format")
                .short("f")
                .kind(Kind::Word(&["table", "json"]))
                .default("table")
                .help("table (ps output), or json (an array of host pids)"),
            HELP_FLAG,
        ],
        stop_at_positional: true,
        takes_id: true,
    },
    Command {
        name: "pause",
        aliases: &[],
        args: "<container-id>",
        summary: "freeze every process of a container",
        about: "Suspends all processes of the container with the cgroup freezer.",
        flags: &[HELP_FLAG],
        stop_at_positional: false,
        takes_id: true,
    },
    Command {
        name: "resume",
        aliases: &[],
        args: "<container-id>",
        summary: "thaw a paused container",
        about: "Resumes the processes that `husk pause` froze.",
        flags: &[HELP_FLAG],
        stop_at_positional: false,
        takes_id: true,
    },
    Command {
        name: "update",
        aliases: &[],
        args: "<container-id>",
        summary: "change a running container's resource limits",
        about: "Changes the cgroup limits of a running container. Only the limits named are changed; the rest stay.",
        flags: UPDATE_FLAGS,
        stop_at_positional: false,
        takes_id: true,
    },
    Command {
        name: "events",
        aliases: &[],
        args: "<container-id>",
        summary: "print resource usage and OOM events of a container",
        about: "Prints, one JSON object per line, the container's resource usage every --interval and an event when it is OOM-killed, until the container stops.",
        flags: &[
            flag("stats").help("print the resource usage once and exit"),
            opt("interval")
                .default("5s")
                .help("time between two usage reports (a duration: 500ms, 5s, 1m)"),
            HELP_FLAG,
        ],
        stop_at_positional: false,
        takes_id: true,
    },
    Command {
        name: "features",
        aliases: &[],
        args: "",
        summary: "print what husk and this host support (JSON)",
        about: "Prints the runtime-spec features document: the spec versions, hooks, mount options, namespaces, capabilities, cgroup, seccomp and LSM support of this husk on this host.",
        flags: &[HELP_FLAG],
        stop_at_positional: false,
        takes_id: false,
    },
    Command {
        name: "delete",
        aliases: &["rm"],
        args: "<container-id>...",
        summary: "delete a container and everything it holds",
        about: "Removes a stopped container: its cgroups, mounts, state and the poststop hooks' work. A created or running container is refused unless --force is given (the runtime-spec forbids deleting a container that is not stopped).",
        flags: &[
            flag("force")
                .short("f")
                .help("kill the container's processes (SIGKILL) first, whatever its state"),
            HELP_FLAG,
        ],
        stop_at_positional: false,
        takes_id: true,
    },
    Command {
        name: "checkpoint",
        aliases: &[],
        args: "<container-id>",
        summary: "checkpoint a running container (CRIU)",
        about: "Saves the state of a running container's processes into an image directory with CRIU (`criu swrk`), then stops the container unless --leave-running or --pre-dump is given. The host must pass `criu check`.",
        flags: CHECKPOINT_FLAGS,
        stop_at_positional: false,
        takes_id: true,
    },
    Command {
        name: "restore",
        aliases: &[],
        args: "<container-id>",
        summary: "restore a container from a checkpoint (CRIU)",
        about: "Creates a container from the bundle and brings back the processes saved by `husk checkpoint` with CRIU: same cgroups and limits, mounts and console. In the foreground (the default) husk waits for the process, deletes the container and exits with its status, as `run` does.",
        flags: RESTORE_FLAGS,
        stop_at_positional: false,
        takes_id: true,
    },
    Command {
        name: "spec",
        aliases: &[],
        args: "",
        summary: "write a default config.json",
        about: "Writes a starting config.json (runs sh in ./rootfs with a terminal) into the bundle directory; refuses to overwrite one.",
        flags: &[
            BUNDLE,
            flag("rootless").help("write a spec for a container run without privileges (user namespace with the caller's ids mapped)"),
            HELP_FLAG,
        ],
        stop_at_positional: false,
        takes_id: false,
    },
    Command {
        name: "help",
        aliases: &["h"],
        args: "[command]",
        summary: "show the list of commands, or one command's help",
        about: "Without an argument, lists the commands and global options; with a command name, shows that command's help.",
        flags: &[],
        stop_at_positional: false,
        takes_id: false,
    },
];

/// The command named `name` (or one of its aliases).
pub fn command(name: &str) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|c| c.name == name || c.aliases.contains(&name))
}

/// The flags of command `name`; empty for an unknown one.
pub fn flags(name: &str) -> &'static [Flag] {
    command(name).map_or(&[], |c| c.flags)
}

/// Signal names offered by completions for `kill`.
pub fn signals() -> &'static [&'static str] {
    SIGNALS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_documented_and_unique() {
        for c in COMMANDS {
            assert!(!c.summary.is_empty() && !c.about.is_empty(), "{}", c.name);
            let mut seen = Vec::new();
            for f in c.flags.iter().chain(GLOBAL) {
                assert!(!f.help.is_empty(), "{} --{} has no help", c.name, f.name);
            }
            for f in c.flags {
                for n in std::iter::once(f.name).chain(f.short) {
                    assert!(!seen.contains(&n), "{}: -{n} twice", c.name);
                    seen.push(n);
                }
            }
            let help = crate::help::command(c);
            for f in c.flags.iter().filter(|f| !f.hidden) {
                assert!(
                    help.contains(&format!("--{}", f.name)),
                    "{} --{}",
                    c.name,
                    f.name
                );
            }
        }
        let global = crate::help::global();
        for c in COMMANDS {
            assert!(global.contains(c.summary), "{}", c.name);
        }
        for f in GLOBAL {
            assert_eq!(
                global.contains(&format!("--{}", f.name)),
                !f.hidden,
                "--{}",
                f.name
            );
        }
    }

    #[test]
    fn hidden_flags_are_in_the_man_page() {
        let man = crate::docs::man_main().replace("\\-", "-");
        for f in GLOBAL.iter().filter(|f| f.hidden) {
            assert!(man.contains(&format!("--{}", f.name)), "--{}", f.name);
        }
    }
}
