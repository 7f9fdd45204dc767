//! Bundles written from scratch: a busybox rootfs and a minimal runtime-spec 1.0 config.json
//! (no runtime's `spec` command is used, so any runtime can be tested on equal terms).

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::runtime::Io;

/// Where every bundle's scratch directory is bind-mounted (read-write) in the container.
pub const SCRATCH: &str = "/scratch";

/// The busybox binary and its applet names, copied once into the work directory and hard
/// linked into every rootfs.
pub struct Busybox {
    pub binary: PathBuf,
    pub applets: Vec<String>,
}

impl Busybox {
    /// Copies `source` to `work/busybox` and lists its applets. It must be statically linked:
    /// the rootfs has no libraries.
    pub fn prepare(source: &Path, work: &Path) -> Result<Busybox, String> {
        let bytes =
            fs::read(source).map_err(|e| format!("reading busybox {}: {e}", source.display()))?;
        if has_interpreter(&bytes) {
            return Err(format!(
                "{} is dynamically linked; the rootfs needs a static busybox (busybox-static)",
                source.display()
            ));
        }
        let binary = work.join("busybox");
        fs::write(&binary, &bytes).map_err(|e| format!("writing {}: {e}", binary.display()))?;
        fs::set_permissions(&binary, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", binary.display()))?;
        let out = std::process::Command::new(&binary)
            .arg("--list")
            .output()
            .map_err(|e| format!("running {} --list: {e}", binary.display()))?;
        let applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
            .map(String::from)
            .collect();
        if !out.status.success() || applets.is_empty() {
            return Err(format!("{} --list gave no applets", binary.display()));
        }
        Ok(Busybox { binary, applets })
    }
}

/// Whether an ELF64 file has a PT_INTERP program header (needs a dynamic loader).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) || elf.get(4) != Some(&2) {
        return false;
    }
    let (Some(phoff), Some(entsize), Some(num)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..usize::from(num)).any(|i| {
        let at = phoff as usize + i * usize::from(entsize);
        elf.get(at..at + 4) == Some(3u32.to_le_bytes().as_slice())
    })
}

/// One check's bundle: `base/bundle` (config.json + rootfs), `base/scratch` (bind-mounted at
/// /scratch) and the container's stdio files `base/stdin|stdout|stderr`.
pub struct Bundle {
    pub base: PathBuf,
    pub dir: PathBuf,
    pub scratch: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn create(base: &Path, busybox: &Busybox) -> io::Result<Bundle> {
        let dir = base.join("bundle");
        let scratch = base.join("scratch");
        let rootfs = dir.join("rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "root", "scratch"] {
            fs::create_dir_all(rootfs.join(d))?;
        }
        fs::create_dir_all(&scratch)?;
        fs::create_dir_all(rootfs.join("tmp"))?;
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))?;
        let bin = rootfs.join("bin/busybox");
        if fs::hard_link(&busybox.binary, &bin).is_err() {
            fs::copy(&busybox.binary, &bin)?;
        }
        for applet in &busybox.applets {
            symlink("busybox", rootfs.join("bin").join(applet))?;
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nconf:x:1000:1000:conf:/:/bin/sh\n\
             nobody:x:65534:65534:nobody:/:/bin/false\n",
        )?;
        fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\ntty:x:5:\nconf:x:1000:\nconf2:x:1001:\nnogroup:x:65534:\n",
        )?;
        fs::write(base.join("stdin"), "")?;
        let config = default_config(&scratch);
        Ok(Bundle {
            base: base.to_path_buf(),
            dir,
            scratch,
            config,
        })
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The process runs `sh -c SCRIPT`.
    pub fn sh(&mut self, script: &str) {
        self.config["process"]["args"] = json!(["sh", "-c", script]);
    }

    pub fn save(&self) -> io::Result<()> {
        let text = serde_json::to_string_pretty(&self.config).map_err(io::Error::other)?;
        fs::write(self.dir.join("config.json"), text)
    }

    pub fn stdio(&self) -> Io {
        Io {
            stdin: Some(self.base.join("stdin")),
            stdout: Some(self.base.join("stdout")),
            stderr: Some(self.base.join("stderr")),
            cwd: None,
        }
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(self.base.join("stdout")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.base.join("stderr")).unwrap_or_default()
    }

    /// A file in the scratch directory, as seen from the host.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    /// Appends a mount entry.
    pub fn mount(&mut self, mount: Value) {
        if let Some(list) = self.config["mounts"].as_array_mut() {
            list.push(mount);
        }
    }

    /// Replaces the `type` entry of `linux.namespaces` (adding it if absent); `None` removes
    /// it, so the container inherits the runtime's namespace of that type.
    pub fn namespace(&mut self, ty: &str, entry: Option<Value>) {
        if let Some(list) = self.config["linux"]["namespaces"].as_array_mut() {
            list.retain(|n| n["type"] != ty);
            list.extend(entry);
        }
    }
}

/// A minimal valid runtime-spec 1.0 config: busybox `true` as root in new pid, mount, ipc,
/// uts and network namespaces, the default filesystems, and the scratch bind mount.
fn default_config(scratch: &Path) -> Value {
    let caps = json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_AUDIT_WRITE"
    ]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["true"],
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps
            }
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "conformance",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": SCRATCH, "type": "none", "source": scratch,
              "options": ["rbind", "rw"] }
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" }, { "type": "mount" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "network" }
            ]
        }
    })
}
