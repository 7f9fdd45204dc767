use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{validate_id, Result, StateError};

const STATE_FILE: &str = "state.json";

/// The runtime root: `/run/husk`, or `$XDG_RUNTIME_DIR/husk` when not root (as runc does).
pub struct Store {
    root: PathBuf,
}

/// How a command locks a container while it works on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    /// Readers that must not see a half-made container (`state`, `ps`, `kill`).
    Shared,
    /// Commands that change it (`start`, `delete`, `pause`, `update`).
    Exclusive,
    /// No lock at all (`list`).
    None,
    /// Exclusive, but fail with [`StateError::Busy`] instead of waiting (a live `create` or
    /// command holds it).
    TryExclusive,
}

/// The most husk reads of a record it wrote itself: records are a few KiB, this only stops a
/// damaged or planted file from costing memory.
const MAX_RECORD_BYTES: u64 = 4 << 20;
/// As runc: $XDG_RUNTIME_DIR is for a non-root user, and for root inside a user namespace
/// (rootless Podman runs its runtime so) unless `$USER` says root.
fn honour_xdg_runtime_dir() -> bool {
    if husk_sys::geteuid() != 0 {
        return true;
    }
    let initial = std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
        .unwrap_or(true);
    !initial && std::env::var("USER").map_or(true, |u| u != "root")
}

impl Store {
    pub fn default_root() -> PathBuf {
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(dir) if !dir.is_empty() && honour_xdg_runtime_dir() => {
                Path::new(&dir).join("husk")
            }
            _ => PathBuf::from("/run/husk"),
        }
    }

    /// Opens the root without creating it (commands that only read).
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes a new container directory, failing if the id is taken, and locks it exclusively
    /// for the whole of `create`.
    pub fn create(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .map_err(|source| StateError::Root {
                path: self.root.clone(),
                source,
            })?;
        let path = self.root.join(id);
        // Someone clearing an abandoned directory of this id (see `reap`) may remove ours
        // between mkdir and flock, and make a new one of their own that we then open: the
        // directory we locked is then no longer at `path`, or is theirs. The claim file,
        // made through the locked descriptor, says whose it is.
        for _ in 0..3 {
            self.mkdir_container(id, &path)?;
            let dir = match ContainerDir::open(id, path.clone(), Lock::Exclusive) {
                Ok(dir) => dir,
                Err(StateError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            if dir.is_current() {
                return match dir.claim()? {
                    true => Ok(dir),
                    false => Err(StateError::AlreadyExists { id: id.to_string() }),
                };
            }
        }
        Err(StateError::AlreadyExists { id: id.to_string() })
    }

    fn mkdir_container(&self, id: &str, path: &Path) -> Result<()> {
        match fs::DirBuilder::new().mode(0o711).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::AlreadyExists { id: id.to_string() })
            }
            Err(source) => {
                return Err(StateError::Io {
                    id: id.into(),
                    op: "create",
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
        Ok(())
    }

    /// Opens a container directory whether or not it has a `state.json` (a create in
    /// progress, or one that was killed), taking `lock`.
    pub fn open_dir(&self, id: &str, lock: Lock) -> Result<ContainerDir> {
        validate_id(id).map_err(|_| StateError::NotFound { id: id.to_string() })?;
        ContainerDir::open(id, self.root.join(id), lock)
    }

    /// Opens an existing container, taking `lock`.
    pub fn open(&self, id: &str, lock: Lock) -> Result<ContainerDir> {
        validate_id(id).map_err(|_| StateError::NotFound { id: id.to_string() })?;
        let dir = ContainerDir::open(id, self.root.join(id), lock)?;
        if lock != Lock::None && !dir.path.join(STATE_FILE).exists() {
            // A create that failed or is still running (we would have waited for its lock).
            return Err(StateError::NotFound { id: id.to_string() });
        }
        Ok(dir)
    }

    /// Ids of all containers in the root, sorted (missing root: none).
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StateError::Root {
                    path: self.root.clone(),
                    source,
                })
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// One container's directory, with its lock held for as long as this value lives.
pub struct ContainerDir {
    id: String,
    path: PathBuf,
    dir: File,
}

impl ContainerDir {
    fn open(id: &str, path: PathBuf, lock: Lock) -> Result<ContainerDir> {
        let dir = match File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound { id: id.to_string() })
            }
            Err(source) => {
                return Err(StateError::Io {
                    id: id.into(),
                    op: "open",
                    path,
                    source,
                })
            }
        };
        let op = match lock {
            Lock::Shared => libc::LOCK_SH,
            Lock::Exclusive => libc::LOCK_EX,
            Lock::TryExclusive => libc::LOCK_EX | libc::LOCK_NB,
            Lock::None => 0,
        };
        if op != 0 {
            husk_sys::flock(&dir, op).map_err(|e| match e.0 {
                libc::EWOULDBLOCK => StateError::Busy { id: id.into() },
                _ => StateError::Io {
                    id: id.into(),
                    op: "lock",
                    path: path.clone(),
                    source: e.to_io(),
                },
            })?;
        }
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            dir,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the directory this value holds (and locks) is still the one at its path.
    pub fn is_current(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.dir.metadata(), fs::symlink_metadata(&self.path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        }
    }

    /// Whether another process holds this directory's lock right now (a `create` still
    /// running, or a command working on the container). Only for a holder of no lock.
    pub fn is_locked(&self) -> bool {
        match husk_sys::flock(&self.dir, libc::LOCK_SH | libc::LOCK_NB) {
            Ok(()) => {
                let _ = husk_sys::flock(&self.dir, libc::LOCK_UN);
                false
            }
            Err(e) => e.0 == libc::EWOULDBLOCK,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's descriptor; also the lock, so the container's init must not inherit it.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.dir.as_fd()
    }

    fn io_err(
        &self,
        op: &'static str,
        path: PathBuf,
    ) -> impl FnOnce(std::io::Error) -> StateError + '_ {
        move |source| StateError::Io {
            id: self.id.clone(),
            op,
            path,
            source,
        }
    }

    /// Writes the record to `state.json` atomically (see [`ContainerDir::save_as`]).
    pub fn save<T: Serialize>(&self, record: &T) -> Result<()> {
        self.save_as(STATE_FILE, record)
    }

    /// Reads `state.json` (see [`ContainerDir::load_from`]).
    pub fn load<T: DeserializeOwned>(&self) -> Result<T> {
        self.load_from(STATE_FILE)
    }

    /// Whether `state.json` exists (the container was fully created).
    /// Makes the claim file in this (locked) directory: true for the first process to do
    /// so, false when another `create` already claimed it.
    fn claim(&self) -> Result<bool> {
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
        match husk_sys::openat(&self.dir, c"claim", flags, 0o600) {
            Ok(_) => Ok(true),
            Err(e) if e.0 == libc::EEXIST => Ok(false),
            Err(e) => Err(StateError::Io {
                id: self.id.clone(),
                op: "claim",
                path: self.path.join("claim"),
                source: e.to_io(),
            }),
        }
    }

    pub fn has_state(&self) -> bool {
        self.path.join(STATE_FILE).exists()
    }

    /// Writes a record to the file `name` atomically: a temporary file, fsync-free (tmpfs),
    /// then rename. A kill at any point leaves the old file or the new one, whole.
    pub fn save_as<T: Serialize>(&self, name: &str, record: &T) -> Result<()> {
        let tmp = self.path.join(format!(".{name}.tmp"));
        let data = serde_json::to_vec(record).map_err(|e| StateError::Io {
            id: self.id.clone(),
            op: "encode",
            path: tmp.clone(),
            source: std::io::Error::other(e),
        })?;
        let mut f = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(self.io_err("write", tmp.clone()))?;
        f.write_all(&data)
            .map_err(self.io_err("write", tmp.clone()))?;
        fs::rename(&tmp, self.path.join(name)).map_err(self.io_err("rename", tmp.clone()))
    }

    /// Reads the record in the file `name`: [`StateError::NotFound`] when it is missing,
    /// [`StateError::Corrupt`] when it does not parse (or is implausibly large).
    pub fn load_from<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let path = self.path.join(name);
        let data = match read_capped(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound {
                    id: self.id.clone(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::Other => {
                return Err(StateError::Corrupt {
                    id: self.id.clone(),
                    path,
                    reason: e.to_string(),
                })
            }
            Err(source) => {
                return Err(StateError::Io {
                    id: self.id.clone(),
                    op: "read",
                    path,
                    source,
                })
            }
        };
        serde_json::from_slice(&data).map_err(|e| StateError::Corrupt {
            id: self.id.clone(),
            path,
            reason: one_line(&e.to_string()),
        })
    }

    /// A file inside the container directory.
    pub fn file(&self, name: impl AsRef<OsStr>) -> PathBuf {
        self.path.join(name.as_ref())
    }

    /// A path to bind or connect the socket `name` in this directory. A socket address holds at
    /// most 107 bytes (sun_path); a deep `--root` and a 64-character id (Docker's exec root,
    /// `/run/docker/runtime-runc/moby/<id>`) go past that, so a longer path is reached through
    /// this process's descriptor of the directory: `/proc/self/fd/N/name` (short, and valid
    /// for as long as this value lives).
    pub fn socket_path(&self, name: impl AsRef<OsStr>) -> PathBuf {
        const SUN_PATH_MAX: usize = 107;
        let full = self.file(name.as_ref());
        if full.as_os_str().len() <= SUN_PATH_MAX {
            return full;
        }
        Path::new("/proc/self/fd")
            .join(self.dir.as_raw_fd().to_string())
            .join(name.as_ref())
    }

    /// Removes the directory and everything in it; the lock goes with it.
    pub fn remove(self) -> Result<()> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io {
                id: self.id.clone(),
                op: "remove",
                path: self.path.clone(),
                source,
            }),
        }
    }
}

/// serde quotes the offending text raw: control characters are escaped so that the message
/// stays on one line (found by the `state_json` fuzz target: `"hy\rid"`).
fn one_line(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// Reads at most [`MAX_RECORD_BYTES`] (plus one, to tell a larger file).
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::new();
    File::open(path)?
        .take(MAX_RECORD_BYTES + 1)
        .read_to_end(&mut data)?;
    if data.len() as u64 > MAX_RECORD_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_RECORD_BYTES >> 20
        )));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_root() -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "husk-state-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn create_save_load_remove() {
        let root = tmp_root();
        let store = Store::new(&root);
        let dir = store.create("c1").unwrap();
        dir.save(&serde_json::json!({"pid": 42})).unwrap();
        let v: serde_json::Value = dir.load().unwrap();
        assert_eq!(v["pid"], 42);
        assert!(matches!(
            store.create("c1"),
            Err(StateError::AlreadyExists { .. })
        ));
        assert_eq!(store.ids().unwrap(), vec!["c1".to_string()]);
        dir.remove().unwrap();
        assert!(matches!(
            store.open("c1", Lock::Shared),
            Err(StateError::NotFound { .. })
        ));
        fs::remove_dir_all(&root).unwrap();
    }

    /// A loser of a create race that ends up locking the winner's directory (it opened the
    /// path after the winner made it) must not take it over.
    #[test]
    fn a_claimed_directory_is_not_claimed_again() {
        let root = tmp_root();
        let store = Store::new(&root);
        let winner = store.create("c4").unwrap();
        let loser = ContainerDir::open("c4", root.join("c4"), Lock::None).unwrap();
        assert!(loser.is_current());
        assert!(!loser.claim().unwrap());
        drop(winner);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn damaged_record_error_is_one_line() {
        let root = tmp_root();
        let store = Store::new(&root);
        let dir = store.create("c3").unwrap();
        // A valid JSON string holding a carriage return, as an unknown enum variant: serde
        // quotes it raw in its message.
        fs::write(dir.file(STATE_FILE), br#"{"k": "a\rb"}"#).unwrap();
        #[derive(serde::Deserialize, Debug)]
        enum K {
            V,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct R {
            k: K,
        }
        let _ = K::V;
        let e = dir.load::<R>().unwrap_err().to_string();
        assert!(!e.contains(['\n', '\r']), "{e}");
        assert!(e.contains("unknown variant `a\\rb`"), "{e}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn half_made_container_is_not_found() {
        let root = tmp_root();
        let store = Store::new(&root);
        let dir = store.create("c2").unwrap();
        drop(dir);
        assert!(matches!(
            store.open("c2", Lock::Shared),
            Err(StateError::NotFound { .. })
        ));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn bad_ids_never_touch_the_filesystem() {
        let store = Store::new(Path::new("/nonexistent-husk-root"));
        assert!(matches!(
            store.create("../x"),
            Err(StateError::InvalidId { .. })
        ));
        assert!(matches!(
            store.open("a/b", Lock::Shared),
            Err(StateError::NotFound { .. })
        ));
    }
}
