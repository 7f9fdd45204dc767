//! `restore` through CRIU: a new container record (same or new id) from a bundle and a
//! checkpoint. husk makes the state directory and the cgroup (with the spec's limits), puts
//! `criu swrk` in that cgroup so the restored tasks land there, binds the rootfs at a private
//! mount point for CRIU's root, maps the external mounts and namespaces back to host paths,
//! hands the pty master to the console socket (or relays it in the foreground), and records
//! the restored init as the container's process.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use husk_criu::{Criu, ReqType};
use husk_state::{ContainerDir, Status};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::checkpoint::{
    cgroup_view_of, clean_dest, criu_ns, ext_ns_key, external_mounts, is_bind, namespaces,
    CriuDirs, CriuFlags, DESCRIPTORS, STDIO_EXTERNAL,
};
use crate::error::InitError;
use crate::record::Record;
use crate::relay::Relay;
use crate::{Result, Runtime, RuntimeError};

/// Where the rootfs is bound for CRIU, in the state directory (runc's name).
const CRIU_ROOT: &str = "criu-root";

/// The `restore` flags.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub criu: CriuFlags,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_subreaper: bool,
    /// Accepted as runc does: CRIU rebuilds the mount table and enters the root itself, so
    /// there is no pivot_root of husk's to avoid.
    pub no_pivot: bool,
}

/// Undoes a half-restored container.
struct Undo {
    dir: Option<ContainerDir>,
    cgroup: Option<husk_cgroups::Manager>,
    /// The rootfs bound at `<state dir>/criu-root` for CRIU.
    root: Option<PathBuf>,
}

impl Undo {
    fn unmount_root(&mut self) {
        if let Some(root) = self.root.take() {
            crate::create::unbind_rootfs(&root);
            let _ = std::fs::remove_dir(&root);
        }
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        self.unmount_root();
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.kill_all(libc::SIGKILL);
            if let Err(e) = cg.destroy() {
                tracing::warn!("cleanup: remove cgroup: {e}");
            }
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.remove() {
                tracing::warn!("cleanup: {e}");
            }
        }
    }
}

/// What CRIU's notifications hand back during a restore.
#[derive(Default)]
struct Restored {
    pid: Option<i32>,
    /// The pty master, when husk relays the terminal itself.
    master: Option<OwnedFd>,
}

impl Runtime {
    /// Returns husk's exit code: 0 detached, else the restored process's.
    pub fn restore(&self, o: &RestoreOptions) -> Result<i32> {
        self.restore_container(o).map_err(|e| e.in_container(&o.id))
    }

    fn restore_container(&self, o: &RestoreOptions) -> Result<i32> {
        let id = o.id.as_str();
        husk_state::validate_id(id)?;
        let criu = Criu::new(o.criu.criu.as_deref());
        criu.check().map_err(RuntimeError::Criu)?;
        let bundle = husk_spec::load_bundle(&o.bundle)?;
        let spec = &bundle.spec;
        let terminal = spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        if terminal && o.console_socket.is_none() && o.detach {
            return Err(RuntimeError::Usage(
                "cannot allocate tty if husk will detach without setting console socket".into(),
            ));
        }
        if !terminal && o.console_socket.is_some() {
            return Err(RuntimeError::Usage(
                "cannot use console socket if husk will not detach or allocate tty".into(),
            ));
        }
        let descriptors = load_descriptors(&o.criu.image_path)?;
        let dirs = CriuDirs::open(&o.criu, false)?;
        let console = o
            .console_socket
            .as_ref()
            .map(|p| {
                UnixStream::connect(p).map_err(RuntimeError::io(format!(
                    "connect to console socket {}",
                    p.display()
                )))
            })
            .transpose()?;

        let mut undo = Undo {
            dir: Some(self.store.create(id)?),
            cgroup: None,
            root: None,
        };
        let cgroup = self.restore_cgroup(id, spec)?;
        undo.cgroup = Some(cgroup.clone());
        let dir = undo.dir.as_ref().expect("just set");
        let root = dir.file(CRIU_ROOT);
        bind_root(&bundle.rootfs, &root)?;
        undo.root = Some(root.clone());
        prepare_mountpoints(spec, &bundle.rootfs);

        let mut opts = dirs.base_opts(&o.criu, spec, "restore.log");
        opts.evasive_devices = true;
        opts.rst_sibling = true;
        opts.root = Some(root.display().to_string());
        let ns_files = map_outside(
            &mut opts,
            spec,
            &bundle.dir,
            &cgroup,
            &o.criu.image_path,
            &descriptors,
        )?;

        let set = crate::run::signal_set();
        if !o.detach {
            husk_sys::signals::block(&set);
            if !o.no_subreaper {
                if let Err(e) = husk_sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0) {
                    tracing::debug!("cannot become a child subreaper: {e}");
                }
            }
        }
        let mut record = Record {
            id: id.to_string(),
            pid: 0,
            pid_start: 0,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: husk_state::rfc3339_now(),
            annotations: spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            cgroup: Some(cgroup.clone()),
            pid_ns: namespaces(spec).any(|(t, _)| t == LinuxNamespaceType::Pid),
            mount_ns: namespaces(spec).any(|(t, _)| t == LinuxNamespaceType::Mount),
            spec: spec.clone(),
        };

        let mut fds = dirs.fds();
        fds.extend(ns_files.iter().map(|f| f.as_fd()));
        let mut session = criu.start(&fds, true).map_err(RuntimeError::Criu)?;
        cgroup
            .add_process(session.pid())
            .map_err(RuntimeError::Cgroup)?;
        opts.cg_root = cgroup_roots(session.pid())?;
        let mut got = Restored::default();
        let res = session.run(ReqType::Restore, &opts, &mut |script, pid, fd| {
            on_notify(&record, console.as_ref(), &mut got, script, pid, fd)
        });
        session.finish();
        let resp = res.map_err(|e| dirs.error("restore.log", e))?;
        undo.unmount_root();
        let pid = resp
            .restored_pid
            .filter(|p| *p > 0)
            .or(got.pid)
            .ok_or_else(|| InitError::Reported("criu restored no process".into()))?;
        record.pid = pid;
        record.pid_start = husk_sys::proc::start_time(pid)
            .ok_or_else(|| RuntimeError::from(InitError::Vanished(pid)))?;
        let dir = undo.dir.as_ref().expect("present");
        dir.save(&record)?;
        if let Some(pid_file) = &o.pid_file {
            crate::create::write_pid_file(pid_file, pid)?;
        }
        undo.cgroup = None;
        drop(undo.dir.take());
        if o.detach {
            return Ok(0);
        }
        let mut relay = got.master.take().map(Relay::new);
        let status = crate::run::wait_forwarding(pid, &set, relay.as_mut())?;
        drop(relay);
        // Like a foreground run: the container goes once its process has exited.
        let dir = self.store.open(id, husk_state::Lock::Exclusive)?;
        if let Err(e) = self.destroy(dir, &record) {
            tracing::warn!("container {id}: cleanup after restore: {e}");
        }
        Ok(crate::run::exit_code(status))
    }

    fn restore_cgroup(&self, id: &str, spec: &Spec) -> Result<husk_cgroups::Manager> {
        let cg_err = RuntimeError::Cgroup;
        let cg_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.display().to_string());
        let layout = husk_cgroups::detect().map_err(cg_err)?;
        if self.systemd_cgroup {
            // CRIU restores the processes into the cgroup itself: the unit would have to be
            // made around a pid that does not exist yet.
            return Err(RuntimeError::Usage(
                "restore with --systemd-cgroup is not supported by husk (use the cgroupfs driver)"
                    .into(),
            ));
        }
        let cgroup =
            husk_cgroups::Manager::new(&layout, id, cg_path.as_deref(), None).map_err(cg_err)?;
        cgroup
            .create(crate::devices::effective_resources(spec).as_ref())
            .map_err(cg_err)?;
        Ok(cgroup)
    }
}

/// Maps what lies outside the container back to this host: external mounts to their sources
/// (the new cgroup for the cgroup bind), joined namespaces (external net/pid as inherited
/// descriptors, returned so they stay open), and the old stdio pipes and outside files to
/// husk's own stdio (runc's convention, which containerd and conmon rely on).
fn map_outside(
    opts: &mut husk_criu::Opts,
    spec: &Spec,
    bundle_dir: &Path,
    cgroup: &husk_cgroups::Manager,
    images: &Path,
    descriptors: &[String],
) -> Result<Vec<File>> {
    let view = cgroup_view_of(spec, Some(cgroup));
    for (dest, src) in external_mounts(spec, bundle_dir, &view) {
        opts.ext_mnt.push((dest, src.display().to_string()));
    }
    let mut ns_files: Vec<File> = Vec::new();
    for (t, path) in namespaces(spec) {
        let Some(path) = path else { continue };
        match criu_ns(t) {
            None => {
                return Err(RuntimeError::Usage(format!(
                    "restore: cannot join an existing {t:?} namespace ({}) with CRIU",
                    path.display()
                )))
            }
            Some((name, true)) => {
                let f = File::open(&path).map_err(RuntimeError::io(format!(
                    "open {name} namespace {}",
                    path.display()
                )))?;
                opts.inherit_fd.push((ext_ns_key(name), f.as_raw_fd()));
                ns_files.push(f);
            }
            Some((name, false)) => opts.join_ns.push((name.into(), path.display().to_string())),
        }
    }
    for (i, d) in descriptors.iter().enumerate() {
        if d.contains("pipe:") {
            opts.inherit_fd.push((d.clone(), i as i32));
        }
    }
    // Files outside the container (husk's stdio-external.json) likewise.
    let external: Vec<Option<String>> = std::fs::read(images.join(STDIO_EXTERNAL))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default();
    for (i, key) in external.into_iter().enumerate() {
        if let Some(key) = key {
            opts.inherit_fd.push((key, i as i32));
        }
    }
    Ok(ns_files)
}

/// Answers one CRIU notification of a restore.
fn on_notify(
    record: &Record,
    console: Option<&UnixStream>,
    got: &mut Restored,
    script: &str,
    pid: i32,
    fd: Option<OwnedFd>,
) -> std::result::Result<(), String> {
    match script {
        "setup-namespaces" => {
            // The namespaces exist, the process does not run yet: prestart and createRuntime.
            let hooks = record.spec.hooks().as_ref();
            let mut st = record.oci_state(Status::Creating);
            st.pid = pid;
            let state = serde_json::to_vec(&st).unwrap_or_default();
            #[allow(deprecated)]
            let prestart = hooks.and_then(|h| h.prestart().as_ref());
            crate::hooks::run_all("prestart", prestart, &state).map_err(|e| e.to_string())?;
            let create_runtime = hooks.and_then(|h| h.create_runtime().as_ref());
            crate::hooks::run_all("createRuntime", create_runtime, &state)
                .map_err(|e| e.to_string())?;
        }
        "post-restore" => got.pid = Some(pid),
        "orphan-pts-master" => {
            let master = fd.ok_or("criu sent no pty master")?;
            match console {
                Some(sock) => husk_sys::send_fd(sock, &master)
                    .map_err(|e| format!("send the pty master to the console socket: {e}"))?,
                None => got.master = Some(master),
            }
        }
        _ => {}
    }
    Ok(())
}

fn load_descriptors(images: &Path) -> Result<Vec<String>> {
    let path = images.join(DESCRIPTORS);
    let data = std::fs::read(&path).map_err(RuntimeError::io(format!(
        "image path {}: read {DESCRIPTORS} (not a husk or runc checkpoint?)",
        images.display()
    )))?;
    serde_json::from_slice(&data)
        .map_err(|e| RuntimeError::Usage(format!("{}: {e}", path.display())))
}

/// A restore killed while `criu-root` was bound leaves it in the state directory, which has
/// no state.json yet: `delete --force` detaches it before removing the directory, so that
/// removal never walks into the bundle's rootfs.
pub(crate) fn detach_leftover_root(state_dir: &Path) {
    let root = state_dir.join(CRIU_ROOT);
    if let Ok(c) = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()) {
        let _ = husk_sys::mount::umount2(&c, libc::MNT_DETACH);
    }
    let _ = std::fs::remove_dir(&root);
}

/// CRIU needs its root to be a mount point whose parent is not overmounted: a bind of the
/// rootfs in the state directory (runc's `criu-root`).
fn bind_root(rootfs: &Path, root: &Path) -> Result<()> {
    std::fs::create_dir(root).map_err(RuntimeError::io(format!("create {}", root.display())))?;
    let c = |p: &Path| {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| RuntimeError::Usage(format!("path {} has a NUL byte", p.display())))
    };
    let (src, dst) = (c(rootfs)?, c(root)?);
    husk_sys::mount::mount(Some(&src), &dst, None, libc::MS_BIND | libc::MS_REC, None).map_err(
        |e| {
            let _ = std::fs::remove_dir(root);
            RuntimeError::Io {
                what: format!("bind rootfs {} at {}", rootfs.display(), root.display()),
                source: e.to_io(),
            }
        },
    )
}

/// Like create, make the mount points the spec needs in the rootfs (a new bundle may lack
/// them), except under tmpfs mounts, whose contents CRIU restores. Never through a symlink.
fn prepare_mountpoints(spec: &Spec, rootfs: &Path) {
    let mounts: Vec<_> = spec.mounts().iter().flatten().collect();
    let tmpfs: Vec<String> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| clean_dest(m.destination()))
        .collect();
    for m in mounts {
        let dest = clean_dest(m.destination());
        if tmpfs.iter().any(|t| dest.starts_with(&format!("{t}/"))) {
            continue;
        }
        let file = is_bind(m)
            && m.source()
                .as_ref()
                .is_some_and(|s| std::fs::metadata(s).is_ok_and(|md| !md.is_dir()));
        if let Err(e) = make_mountpoint(rootfs, &dest, file) {
            tracing::debug!("restore: mount point {dest}: {e}");
        }
    }
}

fn make_mountpoint(rootfs: &Path, dest: &str, file: bool) -> std::io::Result<()> {
    let mut p = rootfs.to_path_buf();
    let parts: Vec<&str> = dest.split('/').filter(|s| !s.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        p.push(part);
        match std::fs::symlink_metadata(&p) {
            Ok(md) if md.file_type().is_symlink() => {
                return Err(std::io::Error::other("a symlink on the way"))
            }
            Ok(_) => continue,
            Err(_) if file && i + 1 == parts.len() => {
                File::create(&p)?;
            }
            Err(_) => std::fs::create_dir(&p)?,
        }
    }
    Ok(())
}

/// `/proc/PID/cgroup` of criu swrk, which husk just put in the container's cgroup, as CRIU's
/// cgroup roots: the restored tasks go there.
fn cgroup_roots(pid: i32) -> Result<Vec<(Option<String>, String)>> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).map_err(RuntimeError::io(format!("read {path}")))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrl, p) = (it.next()?, it.next()?, it.next()?);
            Some(((!ctrl.is_empty()).then(|| ctrl.to_string()), p.to_string()))
        })
        .collect())
}
