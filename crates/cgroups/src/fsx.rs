//! Small helpers for reading and writing cgroup files with errors that name the file.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{errno_of, io_err, CgroupError};

/// The hierarchy version a directory belongs to; only changes error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ver {
    V1,
    V2,
}

pub(crate) fn missing(ver: Ver, dir: &Path, file: &str) -> CgroupError {
    CgroupError::Unsupported(match ver {
        Ver::V1 => format!("cgroup v1: {file} not supported by this kernel ({})", dir.display()),
        Ver::V2 => format!(
            "cgroup v2: {file} not available in {} (controller not enabled there or not supported by this kernel)",
            dir.display()
        ),
    })
}

/// Writes `value` to the existing file `dir/file` in one `write(2)`.
pub(crate) fn write_raw(dir: &Path, file: &str, value: &str) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(dir.join(file))?;
    f.write_all(value.as_bytes())
}

/// Writes `value` to `dir/file`; a missing file is reported as unsupported.
pub(crate) fn write(ver: Ver, dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    write_raw(dir, file, value).map_err(|e| write_err(ver, dir, file, value, &e))
}

pub(crate) fn write_err(
    ver: Ver,
    dir: &Path,
    file: &str,
    value: &str,
    e: &std::io::Error,
) -> CgroupError {
    if e.kind() == ErrorKind::NotFound {
        missing(ver, dir, file)
    } else {
        CgroupError::Write {
            path: dir.join(file),
            value: value.to_string(),
            errno: errno_of(e),
        }
    }
}

pub(crate) fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|e| io_err("read", path, &e))
}

/// Like [`read`], but `None` when the file does not exist.
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path, &e)),
    }
}

pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// Parses a cgroup number; "max" (and v1's huge "unlimited" values) read as `u64::MAX`.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    let text = read(dir, file)?;
    parse_u64(&text).ok_or_else(|| CgroupError::Parse {
        path: dir.join(file),
        what: format!("{:?} is not a number", text.trim()),
    })
}

/// `read_u64`, with `None` for a missing file.
pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>, CgroupError> {
    match read_opt(dir, file)? {
        None => Ok(None),
        Some(text) => parse_u64(&text)
            .map(Some)
            .ok_or_else(|| CgroupError::Parse {
                path: dir.join(file),
                what: format!("{:?} is not a number", text.trim()),
            }),
    }
}

/// Value of `key` in a flat-keyed file such as `memory.events` ("key value" lines).
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        if k == key {
            parse_u64(v)
        } else {
            None
        }
    })
}

/// `mkdir -p`, recording every directory this call created (parents first) in `created`.
pub(crate) fn mkdir_p(path: &Path, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => {
            created.push(path.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let parent = path
                .parent()
                .ok_or_else(|| io_err("create cgroup", path, &e))?;
            mkdir_p(parent, created)?;
            match fs::create_dir(path) {
                Ok(()) => {
                    created.push(path.to_path_buf());
                    Ok(())
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(io_err("create cgroup", path, &e)),
            }
        }
        Err(e) => Err(io_err("create cgroup", path, &e)),
    }
}

/// `rmdir`; while the cgroup is busy because its last processes are still exiting it is
/// retried with backoff (about 1 s in total) if `retry`. A directory already gone is fine.
pub(crate) fn rmdir(path: &Path, retry: bool) -> Result<(), CgroupError> {
    let mut delay = Duration::from_millis(1);
    let mut tries = if retry { 10 } else { 0 };
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries > 0 => {
                std::thread::sleep(delay);
                delay *= 2;
                tries -= 1;
            }
            Err(e) => return Err(io_err("remove cgroup", path, &e)),
        }
    }
}

/// Removes `path` and every cgroup below it, deepest first.
pub(crate) fn rmdir_tree(path: &Path, retry: bool) -> Result<(), CgroupError> {
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("list cgroup", path, &e)),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            rmdir_tree(&entry.path(), retry)?;
        }
    }
    rmdir(path, retry)
}

/// Moves `pid` into the cgroup `dir`. EINVAL can mean the task is still being created
/// (TASK_NEW), so it is retried a few times like runc does.
pub(crate) fn add_pid(ver: Ver, dir: &Path, pid: i32) -> Result<(), CgroupError> {
    let value = pid.to_string();
    let mut tries = 0;
    loop {
        match write_raw(dir, "cgroup.procs", &value) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && tries < 5 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(30));
            }
            Err(e) => return Err(write_err(ver, dir, "cgroup.procs", &value, &e)),
        }
    }
}

/// All pids in `dir` and its descendants.
pub(crate) fn all_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let Some(procs) = read_opt(dir, "cgroup.procs")? else {
        return Ok(());
    };
    out.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("list cgroup", dir, &e)),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            all_pids(&entry.path(), out)?;
        }
    }
    Ok(())
}
