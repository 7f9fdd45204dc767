//! `checkpoint` through CRIU (crates/criu), with runc's flags and semantics: the container's
//! bind mounts, cgroup mounts and devices are described to CRIU as external mounts, joined
//! network and pid namespaces as external namespaces, its cgroup is frozen through the cgroup
//! freezer, and the container is removed after a final dump unless `--leave-running`.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use husk_criu::{CgMode, Criu, Features, Opts, ReqType};
use husk_state::{Lock, Status};
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use crate::record::Record;
use crate::{Result, Runtime, RuntimeError};

/// The CRIU flags `checkpoint` and `restore` share.
#[derive(Debug, Clone, Default)]
pub struct CriuFlags {
    /// The global `--criu` (default `criu` from `$PATH`).
    pub criu: Option<String>,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<CgMode>,
    /// CLONE_NEW* bits of namespaces made empty (network always, as in runc).
    pub empty_ns: u32,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
}

/// The `checkpoint` flags.
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    pub criu: CriuFlags,
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub pre_dump: bool,
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    /// `(address, port)`.
    pub page_server: Option<(String, i32)>,
    pub status_fd: Option<RawFd>,
}

/// Descriptor targets of the init's stdio, saved beside the images (runc's file name), so a
/// restore can hand in new pipes for the old ones.
pub(crate) const DESCRIPTORS: &str = "descriptors.json";
/// husk's addition: CRIU keys of stdio files outside the container, by descriptor number.
pub(crate) const STDIO_EXTERNAL: &str = "stdio-external.json";

/// The open image and work directories and the options every CRIU request starts from.
pub(crate) struct CriuDirs {
    pub images: File,
    pub work: Option<File>,
    /// Where CRIU writes its log.
    pub log_dir: PathBuf,
}

impl CriuDirs {
    pub fn open(flags: &CriuFlags, create_images: bool) -> Result<CriuDirs> {
        let img = &flags.image_path;
        if create_images {
            std::fs::create_dir_all(img).map_err(RuntimeError::io(format!(
                "create image path {}",
                img.display()
            )))?;
        }
        let images = File::open(img).map_err(RuntimeError::io(format!(
            "open image path {}",
            img.display()
        )))?;
        let mut log_dir = img.clone();
        let work = match &flags.work_path {
            Some(w) => {
                std::fs::create_dir_all(w).map_err(RuntimeError::io(format!(
                    "create work path {}",
                    w.display()
                )))?;
                log_dir = w.clone();
                Some(
                    File::open(w)
                        .map_err(RuntimeError::io(format!("open work path {}", w.display())))?,
                )
            }
            None => None,
        };
        Ok(CriuDirs {
            images,
            work,
            log_dir,
        })
    }

    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut v = vec![self.images.as_fd()];
        v.extend(self.work.as_ref().map(|w| w.as_fd()));
        v
    }

    /// Options common to dump and restore (runc's choices: log level 4, CRIU manages the
    /// cgroups, notifications on, orphaned pty masters allowed).
    pub fn base_opts(&self, flags: &CriuFlags, spec: &Spec, log_file: &str) -> Opts {
        Opts {
            images_dir_fd: self.images.as_raw_fd(),
            work_dir_fd: self.work.as_ref().map(|w| w.as_raw_fd()),
            log_level: Some(4),
            log_file: Some(log_file.into()),
            manage_cgroups: true,
            manage_cgroups_mode: Some(flags.manage_cgroups_mode.unwrap_or(CgMode::Default)),
            notify_scripts: true,
            shell_job: flags.shell_job,
            tcp_established: flags.tcp_established,
            ext_unix_sk: flags.ext_unix_sk,
            file_locks: flags.file_locks,
            empty_ns: Some(flags.empty_ns),
            orphan_pts_master: true,
            auto_dedup: flags.auto_dedup,
            lazy_pages: flags.lazy_pages,
            config_file: criu_config_file(spec),
            ..Opts::default()
        }
    }

    /// A CRIU error with the first errors of its log file.
    pub fn error(&self, log_file: &str, e: husk_criu::CriuError) -> RuntimeError {
        let log = self.log_dir.join(log_file);
        let source = match e {
            husk_criu::CriuError::Failed { op, msg } => husk_criu::CriuError::Failed {
                op,
                msg: match husk_criu::log_errors(&log) {
                    Some(errs) => format!("{msg}; {}: {errs}", log.display()),
                    None => format!("{msg}; see {}", log.display()),
                },
            },
            other => other,
        };
        RuntimeError::Criu(source)
    }
}

/// Like runc: the `org.criu.config` annotation names a CRIU configuration file (empty: none),
/// else /etc/criu/runc.conf is read when it exists, so one file serves both runtimes.
fn criu_config_file(spec: &Spec) -> Option<String> {
    match spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get("org.criu.config"))
    {
        Some(f) if f.is_empty() => None,
        Some(f) => Some(f.clone()),
        None => Some("/etc/criu/runc.conf".into()),
    }
}

/// `/a/../b//c` -> `/b/c`, as a path inside the container.
pub(crate) fn clean_dest(dest: &Path) -> String {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in dest.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let mut s = String::new();
    for p in parts {
        s.push('/');
        s.push_str(&p.to_string_lossy());
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

pub(crate) fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

fn has_cgroupns(spec: &Spec) -> bool {
    namespaces(spec).any(|(t, _)| t == LinuxNamespaceType::Cgroup)
}

pub(crate) fn namespaces(
    spec: &Spec,
) -> impl Iterator<Item = (LinuxNamespaceType, Option<PathBuf>)> + '_ {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .map(|n| (n.typ(), n.path().clone()))
}

/// The mounts husk made from the host's filesystems, as `(mountpoint, host source)`: bind
/// mounts, per-hierarchy cgroup binds (no cgroup namespace), and device nodes. `cgroup_dirs`
/// are the container's cgroup directories by hierarchy name ("" on cgroup v2).
pub(crate) fn external_mounts(
    spec: &Spec,
    bundle: &Path,
    cgroup: &husk_rootfs::CgroupView,
) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let dest = clean_dest(m.destination());
        if is_bind(m) {
            let src = m.source().clone().unwrap_or_default();
            out.push((dest, bundle.join(src)));
        } else if matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")) && !has_cgroupns(spec) {
            match cgroup {
                husk_rootfs::CgroupView::V2 { host_dir, .. } => out.push((dest, host_dir.clone())),
                husk_rootfs::CgroupView::V1(dirs) => {
                    for (name, dir) in dirs {
                        out.push((format!("{dest}/{name}"), dir.clone()));
                    }
                }
                husk_rootfs::CgroupView::None => {}
            }
        }
    }
    let devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .map(|d| d.path().clone());
    let defaults =
        ["null", "zero", "full", "random", "urandom", "tty"].map(|d| PathBuf::from("/dev").join(d));
    for p in devices.chain(defaults) {
        let dest = clean_dest(&p);
        if !out.iter().any(|(d, _)| *d == dest) {
            out.push((dest, p));
        }
    }
    out
}

/// CRIU's name of a namespace type, and whether it is handed over as an external namespace
/// (network, pid) rather than joined (`join_ns`).
pub(crate) fn criu_ns(t: LinuxNamespaceType) -> Option<(&'static str, bool)> {
    Some(match t {
        LinuxNamespaceType::Network => ("net", true),
        LinuxNamespaceType::Pid => ("pid", true),
        LinuxNamespaceType::Mount => ("mnt", false),
        LinuxNamespaceType::Ipc => ("ipc", false),
        LinuxNamespaceType::Uts => ("uts", false),
        LinuxNamespaceType::User => ("user", false),
        LinuxNamespaceType::Time => ("time", false),
        LinuxNamespaceType::Cgroup => return None,
    })
}

/// runc's key for an external namespace: `extRootNetNS`, `extRootPidNS`.
pub(crate) fn ext_ns_key(name: &str) -> String {
    let mut c = name.chars();
    let title: String = c
        .next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default();
    format!("extRoot{title}NS")
}

/// `CriuFlags::empty_ns` bit for the network namespace (the only one runc supports).
pub const EMPTY_NS_NETWORK: u32 = libc::CLONE_NEWNET as u32;

impl Runtime {
    pub fn checkpoint(&self, id: &str, o: &CheckpointOptions) -> Result<()> {
        self.checkpoint_container(id, o)
            .map_err(|e| e.in_container(id))
    }

    fn checkpoint_container(&self, id: &str, o: &CheckpointOptions) -> Result<()> {
        let (dir, rec) = self.load(id, Lock::Exclusive)?;
        let status = rec.status(&dir);
        if matches!(status, Status::Created | Status::Stopped) {
            return Err(RuntimeError::Usage(format!(
                "Container cannot be checkpointed in {status} state"
            )));
        }
        let criu = Criu::new(o.criu.criu.as_deref());
        criu.check().map_err(RuntimeError::Criu)?;
        if let Some(parent) = &o.parent_path {
            check_parent(&o.criu.image_path, parent)?;
        }
        let dirs = CriuDirs::open(&o.criu, true)?;
        let opts = self.dump_opts(&rec, o, &dirs)?;
        let kind = if o.pre_dump {
            ReqType::PreDump
        } else {
            ReqType::Dump
        };
        let want = Features {
            mem_track: o.pre_dump,
            lazy_pages: o.criu.lazy_pages,
        };
        if want != Features::default() {
            let have = criu.features(want).map_err(RuntimeError::Criu)?;
            for (name, w, h) in [
                (
                    "memory tracking (--pre-dump)",
                    want.mem_track,
                    have.mem_track,
                ),
                (
                    "lazy pages (--lazy-pages)",
                    want.lazy_pages,
                    have.lazy_pages,
                ),
            ] {
                if w && !h {
                    return Err(RuntimeError::Usage(format!(
                        "checkpoint: criu is missing features: {name}"
                    )));
                }
            }
        }
        let mut opts = opts;
        if !o.pre_dump {
            opts.external
                .extend(save_descriptors(&rec, &o.criu.image_path)?);
        }
        let mut status_fd = o.status_fd;
        let mut session = criu.start(&dirs.fds(), false).map_err(RuntimeError::Criu)?;
        let res = session.run(kind, &opts, &mut |script, _, _| {
            if script == "status-ready" {
                if let Some(fd) = status_fd.take() {
                    signal_status_fd(fd);
                }
            }
            Ok(())
        });
        // A pre-dump leaves criu waiting for the next request: closing the socket ends it.
        session.finish();
        res.map_err(|e| dirs.error("dump.log", e))?;
        if !(o.leave_running || o.pre_dump) {
            self.destroy(dir, &rec)?;
        }
        Ok(())
    }

    fn dump_opts(&self, rec: &Record, o: &CheckpointOptions, dirs: &CriuDirs) -> Result<Opts> {
        let mut opts = dirs.base_opts(&o.criu, &rec.spec, "dump.log");
        opts.pid = Some(rec.pid);
        opts.root = Some(rec.rootfs.display().to_string());
        opts.leave_running = o.leave_running;
        opts.tcp_skip_in_flight = o.tcp_skip_in_flight;
        opts.link_remap = o.link_remap;
        opts.page_server = o.page_server.clone();
        if let Some(parent) = &o.parent_path {
            opts.parent_img = Some(parent.display().to_string());
            opts.track_mem = true;
        }
        if let Some(fd) = o.status_fd {
            check_status_fd(fd)?;
        }
        if let Some(cg) = &rec.cgroup {
            let freezer = cg
                .path_for("freezer")
                .or_else(|| cg.paths().get("").map(PathBuf::as_path));
            opts.freeze_cgroup = freezer.map(|p| p.display().to_string());
        }
        for (t, path) in namespaces(&rec.spec) {
            if let (Some(path), Some((name, true))) = (path, criu_ns(t)) {
                let ino = std::fs::metadata(&path)
                    .map_err(RuntimeError::io(format!("namespace {}", path.display())))?;
                use std::os::unix::fs::MetadataExt;
                opts.external
                    .push(format!("{name}[{}]:{}", ino.ino(), ext_ns_key(name)));
            }
        }
        if !o.pre_dump {
            let view = cgroup_view_of(&rec.spec, rec.cgroup.as_ref());
            for (dest, _) in external_mounts(&rec.spec, &rec.bundle, &view) {
                opts.ext_mnt.push((dest.clone(), dest));
            }
        }
        Ok(opts)
    }
}

/// How husk mounted the container's cgroups (see `create::cgroup_view`).
pub(crate) fn cgroup_view_of(
    spec: &Spec,
    cg: Option<&husk_cgroups::Manager>,
) -> husk_rootfs::CgroupView {
    match cg {
        Some(cg) => crate::create::cgroup_view(cg, has_cgroupns(spec)),
        None => husk_rootfs::CgroupView::None,
    }
}

/// runc: `--parent-path` is relative to the image path and must be a directory there.
fn check_parent(images: &Path, parent: &Path) -> Result<()> {
    if parent.is_absolute() {
        return Err(RuntimeError::Usage("--parent-path must be relative".into()));
    }
    // Lexically, like Go's filepath.Join: the image directory may not exist yet.
    let real = PathBuf::from(clean_dest(&images.join(parent)));
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(RuntimeError::Usage(format!(
            "invalid --parent-path: {}: not a directory",
            real.display()
        ))),
        Err(e) => Err(RuntimeError::Usage(format!(
            "invalid --parent-path: {}: {e}",
            real.display()
        ))),
    }
}

/// Writes descriptors.json (runc's: the init's stdio targets) and, for stdio files on mounts
/// outside the container (a caller's /dev/null or log file), `stdio-external.json` with the
/// CRIU external-file keys it returns: CRIU dumps those as external files, and a restore
/// hands in its own stdio for them, as it does for pipes.
fn save_descriptors(rec: &Record, images: &Path) -> Result<Vec<String>> {
    let own_mounts: Vec<String> = std::fs::read_to_string(format!("/proc/{}/mountinfo", rec.pid))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let mut targets = Vec::new();
    let mut external: Vec<Option<String>> = Vec::new();
    for i in 0..3 {
        let link = format!("/proc/{}/fd/{i}", rec.pid);
        let target = std::fs::read_link(&link)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "/dev/null".into());
        external.push(external_file_key(rec.pid, i, &target, &own_mounts));
        targets.push(target);
    }
    let write = |name: &str, data: Vec<u8>| {
        let path = images.join(name);
        std::fs::write(&path, data).map_err(RuntimeError::io(format!("write {}", path.display())))
    };
    write(
        DESCRIPTORS,
        serde_json::to_vec(&targets).unwrap_or_default(),
    )?;
    write(
        STDIO_EXTERNAL,
        serde_json::to_vec(&external).unwrap_or_default(),
    )?;
    Ok(external.into_iter().flatten().collect())
}

/// CRIU's `file[MNT_ID:INODE]` key (hex) for a stdio file whose mount is not the container's.
fn external_file_key(pid: i32, fd: i32, target: &str, own_mounts: &[String]) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if !target.starts_with('/') {
        return None; // pipe:[..], socket:[..], anon_inode:..
    }
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let mnt_id = info
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))?
        .trim()
        .to_string();
    if own_mounts.contains(&mnt_id) {
        return None;
    }
    let ino = std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
        .ok()?
        .ino();
    Some(format!("file[{:x}:{ino:x}]", mnt_id.parse::<u64>().ok()?))
}

/// `--status-fd` must be an open descriptor of husk's, open for writing.
fn check_status_fd(fd: RawFd) -> Result<()> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        .map_err(|e| RuntimeError::Usage(format!("invalid --status-fd argument {fd}: {e}")))?;
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .unwrap_or(0);
    if flags & libc::O_ACCMODE as u32 == libc::O_RDONLY as u32 {
        return Err(RuntimeError::Usage(format!(
            "invalid --status-fd argument {fd}: not writable"
        )));
    }
    Ok(())
}

/// Lazy pages are ready: write a zero byte to the status descriptor and close it (runc). The
/// caller's descriptor number is reached through /proc/self/fd, which needs no `unsafe`.
fn signal_status_fd(fd: RawFd) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
    {
        let _ = std::io::Write::write_all(&mut f, &[0]);
    }
    husk_sys::close_raw(fd);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_cleaned() {
        assert_eq!(clean_dest(Path::new("/a/../b//c/")), "/b/c");
        assert_eq!(clean_dest(Path::new("data")), "/data");
        assert_eq!(clean_dest(Path::new("/")), "/");
    }

    #[test]
    fn external_namespace_keys_match_runc() {
        assert_eq!(ext_ns_key("net"), "extRootNetNS");
        assert_eq!(ext_ns_key("pid"), "extRootPidNS");
    }
}
