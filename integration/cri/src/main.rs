//! A kubelet-shaped CRI client: it drives containerd's CRI plugin over its unix socket with the
//! calls and configs a kubelet sends, and checks what the runtime behind each RuntimeClass
//! handler did on the host. Modes: `checks` (one PASS/FAIL line per check), `bench` (pod start
//! and ExecSync latency per handler), `cleanup` (stops and removes every pod). See
//! integration/README.md, "CRI".

mod bench;
mod checks;
mod cleanup;
mod cri;
mod host;
mod kube;
mod report;

use std::path::PathBuf;
use std::time::Duration;

/// One RuntimeClass handler of containerd's config, with the runtime binary and the state root
/// (the shim's `Root` option plus the namespace) it uses.
#[derive(Clone, Debug)]
pub struct Handler {
    pub name: String,
    pub binary: PathBuf,
    pub root: PathBuf,
}

/// Where and how the suite runs.
#[derive(Clone, Debug)]
pub struct Env {
    pub socket: PathBuf,
    /// kubelet's root: pod log dirs and volumes are made under it.
    pub work: PathBuf,
    /// kubelet's --cgroup-root: pods go to /<cgroup_root>/kubepods/burstable/pod<uid>.
    pub cgroup_root: String,
    pub image: String,
    pub pause_image: String,
    /// The first three octets of the CNI subnet (a /24).
    pub subnet: String,
    pub timeout: Duration,
    pub handlers: Vec<Handler>,
}

fn usage() -> ! {
    eprintln!(
        "usage: husk-cri-e2e --socket PATH [--work DIR] [--cgroup-root NAME] [--image REF] \
         [--pause-image REF] [--subnet A.B.C] [--timeout SECS] [--handler NAME=BINARY=ROOT]... \
         checks|bench [--rounds N]|cleanup"
    );
    std::process::exit(2)
}

fn parse_handler(s: &str) -> Handler {
    let mut it = s.splitn(3, '=');
    match (it.next(), it.next(), it.next()) {
        (Some(n), Some(b), Some(r)) => Handler {
            name: n.into(),
            binary: b.into(),
            root: r.into(),
        },
        _ => usage(),
    }
}

fn parse_args() -> (Env, String, usize) {
    let mut env = Env {
        socket: PathBuf::new(),
        work: "/var/tmp/husk-cri-pods".into(),
        cgroup_root: "husk-cri".into(),
        image: "localhost/busybox:latest".into(),
        pause_image: String::new(),
        subnet: String::new(),
        timeout: Duration::from_secs(60),
        handlers: Vec::new(),
    };
    let (mut mode, mut rounds) = (String::new(), 10);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--socket" => env.socket = val().into(),
            "--work" => env.work = val().into(),
            "--cgroup-root" => env.cgroup_root = val(),
            "--image" => env.image = val(),
            "--pause-image" => env.pause_image = val(),
            "--subnet" => env.subnet = val(),
            "--timeout" => {
                env.timeout = Duration::from_secs(val().parse().unwrap_or_else(|_| usage()))
            }
            "--handler" => env.handlers.push(parse_handler(&val())),
            "--rounds" => rounds = val().parse().unwrap_or_else(|_| usage()),
            "checks" | "bench" | "cleanup" => mode = a,
            _ => usage(),
        }
    }
    if env.socket.as_os_str().is_empty() || mode.is_empty() {
        usage()
    }
    (env, mode, rounds)
}

fn main() {
    let (env, mode, rounds) = parse_args();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("husk-cri-e2e: tokio runtime: {e}");
            std::process::exit(1)
        }
    };
    let code = rt.block_on(async {
        let cri = match cri::Cri::connect(&env.socket, env.timeout).await {
            Ok(c) => c,
            Err(e) => {
                println!("FAIL CRI connect: {e}");
                return 1;
            }
        };
        match mode.as_str() {
            "checks" => checks::run(&cri, &env).await,
            "bench" => bench::run(&cri, &env, rounds).await,
            _ => cleanup::run(&cri, &env).await,
        }
    });
    std::process::exit(code)
}
