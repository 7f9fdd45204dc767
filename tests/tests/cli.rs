//! husk's command line as a runc user meets it: help for every command and flag, man pages and
//! completions generated from the same table, version strings that agree. The flags below are
//! runc's (the contract), written out here independently of husk's table.

use std::path::PathBuf;
use std::process::Command;

use husk_tests::*;

/// runc's commands (those husk implements) and their flags; `-x` is a short form.
const RUNC: &[(&str, &[&str])] = &[
    (
        "create",
        &[
            "--bundle",
            "-b",
            "--console-socket",
            "--pidfd-socket",
            "--pid-file",
            "--no-pivot",
            "--no-new-keyring",
            "--preserve-fds",
        ],
    ),
    (
        "run",
        &[
            "--bundle",
            "-b",
            "--console-socket",
            "--pidfd-socket",
            "--pid-file",
            "--detach",
            "-d",
            "--keep",
            "--no-subreaper",
            "--no-pivot",
            "--no-new-keyring",
            "--preserve-fds",
        ],
    ),
    ("start", &[]),
    ("state", &[]),
    ("list", &["--format", "-f", "--quiet", "-q"]),
    (
        "exec",
        &[
            "--console-socket",
            "--pidfd-socket",
            "--cwd",
            "--env",
            "-e",
            "--tty",
            "-t",
            "--user",
            "-u",
            "--additional-gids",
            "-g",
            "--process",
            "-p",
            "--detach",
            "-d",
            "--pid-file",
            "--process-label",
            "--apparmor",
            "--no-new-privs",
            "--cap",
            "-c",
            "--preserve-fds",
            "--ignore-paused",
            "--cgroup",
        ],
    ),
    ("kill", &["--all", "-a"]),
    ("ps", &["--format", "-f"]),
    ("pause", &[]),
    ("resume", &[]),
    (
        "update",
        &[
            "--resources",
            "-r",
            "--blkio-weight",
            "--cpu-burst",
            "--cpu-period",
            "--cpu-quota",
            "--cpu-share",
            "--cpu-rt-period",
            "--cpu-rt-runtime",
            "--cpuset-cpus",
            "--cpuset-mems",
            "--kernel-memory",
            "--kernel-memory-tcp",
            "--memory",
            "--memory-reservation",
            "--memory-swap",
            "--pids-limit",
            "--l3-cache-schema",
            "--mem-bw-schema",
        ],
    ),
    ("events", &["--interval", "--stats"]),
    ("features", &[]),
    ("delete", &["--force", "-f"]),
    ("spec", &["--bundle", "-b", "--rootless"]),
    (
        "checkpoint",
        &[
            "--image-path",
            "--work-path",
            "--parent-path",
            "--leave-running",
            "--tcp-established",
            "--tcp-skip-in-flight",
            "--ext-unix-sk",
            "--shell-job",
            "--lazy-pages",
            "--status-fd",
            "--page-server",
            "--file-locks",
            "--pre-dump",
            "--manage-cgroups-mode",
            "--empty-ns",
            "--auto-dedup",
            "--link-remap",
        ],
    ),
    (
        "restore",
        &[
            "--console-socket",
            "--image-path",
            "--work-path",
            "--tcp-established",
            "--ext-unix-sk",
            "--shell-job",
            "--file-locks",
            "--manage-cgroups-mode",
            "--bundle",
            "-b",
            "--detach",
            "-d",
            "--pid-file",
            "--no-subreaper",
            "--no-pivot",
            "--empty-ns",
            "--auto-dedup",
            "--lazy-pages",
        ],
    ),
];
const GLOBAL: &[&str] = &[
    "--root",
    "--log",
    "--log-format",
    "--debug",
    "--systemd-cgroup",
    "--rootless",
    "--criu",
    "--help",
    "-h",
    "--version",
    "-v",
];
/// Accepted, not in `--help`, documented in husk.8.
const HIDDEN_GLOBAL: &[&str] = &[];

fn husk(args: &[&str]) -> std::process::Output {
    Command::new(husk_bin())
        .args(args)
        .output()
        .expect("run husk")
}

/// The man page and completion generator, built beside husk (`cargo build -p husk`).
fn docgen() -> PathBuf {
    let p = husk_bin().with_file_name("husk-docgen");
    assert!(
        p.exists(),
        "{} not found: build it with cargo build -p husk",
        p.display()
    );
    p
}

/// The help line(s) of `flag` in a help text: the flag must start an entry and have words after it.
fn documented(help: &str, flag: &str) -> bool {
    help.lines().any(|l| {
        let t = l.trim_start();
        (t.starts_with(&format!("{flag} "))
            || t.starts_with(&format!("{flag},"))
            || t.contains(&format!(", {flag} ")))
            && t.split("  ").filter(|p| !p.trim().is_empty()).count() >= 2
    })
}

#[test]
fn every_command_has_help_with_every_flag() {
    let global = husk(&["--help"]);
    assert!(global.status.success());
    let global = stdout(&global);
    for f in GLOBAL {
        assert!(
            documented(&global, f),
            "husk --help does not describe {f}:\n{global}"
        );
    }
    for (cmd, flags) in RUNC {
        assert!(
            global.lines().any(|l| l.trim_start().starts_with(cmd)),
            "husk --help does not list {cmd}"
        );
        let long = husk(&[cmd, "--help"]);
        assert!(
            long.status.success(),
            "husk {cmd} --help: {}",
            stderr(&long)
        );
        let text = stdout(&long);
        assert!(text.contains(&format!("husk {cmd}")), "{text}");
        assert!(text.contains("DESCRIPTION"), "{text}");
        for form in [vec![*cmd, "-h"], vec!["help", cmd], vec!["--help", cmd]] {
            let o = husk(&form);
            assert!(o.status.success());
            assert_eq!(
                stdout(&o),
                text,
                "husk {form:?} differs from husk {cmd} --help"
            );
        }
        for f in *flags {
            assert!(
                documented(&text, f),
                "husk {cmd} --help does not describe {f}:\n{text}"
            );
        }
    }
    // Help goes before the arguments are checked: no container id needed.
    let o = husk(&["kill", "--help"]);
    assert!(o.status.success());
    let o = husk(&["help", "nosuchcommand"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nosuchcommand"), "{}", stderr(&o));
}

#[test]
fn defaults_are_shown() {
    let global = stdout(&husk(&["--help"]));
    for want in ["(default: /run/husk)", "(default: text)"] {
        assert!(global.contains(want), "{want} missing:\n{global}");
    }
    let events = stdout(&husk(&["events", "--help"]));
    assert!(events.contains("(default: 5s)"), "{events}");
    let list = stdout(&husk(&["list", "--help"]));
    assert!(list.contains("(default: table)"), "{list}");
}

#[test]
fn man_pages_cover_every_command_and_flag() {
    let dir = scratch("man");
    let o = Command::new(docgen())
        .arg("man")
        .arg(&dir)
        .output()
        .expect("run husk-docgen");
    assert!(o.status.success(), "{}", stderr(&o));
    // roff writes a dash as \-.
    let unroff = |p: PathBuf| {
        std::fs::read_to_string(&p)
            .unwrap_or_default()
            .replace("\\-", "-")
    };
    let main = unroff(dir.join("husk.8"));
    assert!(main.starts_with(".TH HUSK 8"), "{main}");
    for f in GLOBAL.iter().chain(HIDDEN_GLOBAL) {
        assert!(
            main.contains(&format!(".B {f}")) || main.contains(&format!(", {f}")),
            "husk.8 lacks {f}"
        );
    }
    for (cmd, flags) in RUNC {
        let page = unroff(dir.join(format!("husk-{cmd}.8")));
        assert!(
            page.contains(&format!("husk-{cmd} - ")),
            "husk-{cmd}.8 missing or without NAME"
        );
        assert!(
            main.contains(&format!("husk-{cmd}")),
            "husk.8 does not refer to husk-{cmd}(8)"
        );
        for f in *flags {
            assert!(page.contains(f), "husk-{cmd}.8 lacks {f}");
        }
    }
    // man can render it (when man-db is installed).
    if let Ok(o) = Command::new("man")
        .arg("-l")
        .arg(dir.join("husk-run.8"))
        .env("MANPAGER", "cat")
        .output()
    {
        if o.status.success() {
            assert!(stdout(&o).contains("--detach"), "{}", stdout(&o));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_contain_every_command_and_flag() {
    let dir = scratch("completions");
    let o = Command::new(docgen())
        .arg("completions")
        .arg(&dir)
        .output()
        .expect("run husk-docgen");
    assert!(o.status.success(), "{}", stderr(&o));
    for file in ["husk.bash", "_husk", "husk.fish"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for (cmd, flags) in RUNC {
            assert!(text.contains(cmd), "{file} lacks the command {cmd}");
            for f in flags.iter().filter(|f| f.starts_with("--")) {
                let name = &f[2..];
                assert!(
                    text.contains(&format!("--{name}")) || text.contains(&format!("-l {name} ")),
                    "{file} lacks {cmd} {f}"
                );
            }
        }
    }
    // The bash script is valid and completes commands, flags and a command's flags.
    let script = dir.join("husk.bash");
    let complete = |words: &str| -> String {
        let prog = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _husk; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let o = Command::new("bash").arg("-c").arg(&prog).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert!(complete("husk cre").lines().any(|l| l == "create"));
    assert!(complete("husk --root /x ex").lines().any(|l| l == "exec"));
    let exec = complete("husk exec --");
    assert!(exec.lines().any(|l| l == "--cwd"), "{exec}");
    assert!(complete("husk --log-format j").lines().any(|l| l == "json"));
    assert!(complete("husk kill someid K").lines().any(|l| l == "KILL"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--version`'s spec, `spec`'s ociVersion and the ociVersion `state` reports for a container
/// made from that config are one version.
#[test]
fn version_strings_agree() {
    let v = stdout(&husk(&["--version"]));
    let spec_version = v
        .lines()
        .find_map(|l| l.strip_prefix("spec: "))
        .expect("spec: line in --version")
        .to_string();
    let dir = scratch("version");
    let o = husk(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["ociVersion"], spec_version.as_str());
    let features: Value = serde_json::from_str(&stdout(&husk(&["features"]))).unwrap();
    assert_eq!(features["ociVersionMax"], spec_version.as_str());

    // A container from that very config (Bundle::new is `husk spec`'s): state's ociVersion.
    let b = Bundle::new(&["sleep", "10"], |_| {});
    assert_eq!(b.config()["ociVersion"], spec_version.as_str());
    let h = Husk::new();
    let id = unique("version");
    h.create(&id, &b);
    let state = h.state(&id);
    h.run(&["delete", "--force", &id]);
    assert_eq!(state["ociVersion"], spec_version.as_str());
    let _ = std::fs::remove_dir_all(&dir);
}
