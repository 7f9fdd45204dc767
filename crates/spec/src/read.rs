//! Reading a configuration file a user handed us, with limits: it must be a regular file
//! (after symlinks: not a FIFO that would block `create` forever, not `/dev/zero`), and at
//! most [`MAX_CONFIG_BYTES`] long.

use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::SpecError;

/// The largest `config.json` (or `exec --process` file) husk reads: 16 MiB. Configs written
/// by runc, Podman, containerd or Docker are a few KiB; the limit only stops input that would
/// cost memory and time out of proportion (the whole file is parsed into memory).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads `path` whole, refusing anything but a regular file of at most [`MAX_CONFIG_BYTES`].
pub(crate) fn read_config_file(path: &Path) -> Result<Vec<u8>, SpecError> {
    let read_err = |source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bad = |msg: String| read_err(io::Error::other(msg));
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(bad(format!("it is {kind}, not a regular file")));
    }
    let too_big = || {
        bad(format!(
            "it is larger than {} MiB, the most husk reads",
            MAX_CONFIG_BYTES >> 20
        ))
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow while we read: never take more than the limit (plus one byte to tell).
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("husk-spec-read-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn refuses_fifo_device_and_directory_without_blocking() {
        let d = tmp("kinds");
        let fifo = d.join("fifo");
        // mkfifo(1): this crate has no unsafe, not even in tests.
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = read_config_file(&fifo).unwrap_err().to_string();
        assert!(e.contains("a FIFO, not a regular file"), "{e}");
        let zero = d.join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_config_file(&zero).unwrap_err().to_string();
        assert!(e.contains("a device"), "{e}");
        let e = read_config_file(&d).unwrap_err().to_string();
        assert!(e.contains("a directory"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn size_limit() {
        let d = tmp("size");
        let f = d.join("config.json");
        std::fs::write(&f, b"{}").unwrap();
        assert_eq!(read_config_file(&f).unwrap(), b"{}");
        let file = std::fs::File::create(&f).unwrap();
        file.set_len(MAX_CONFIG_BYTES + 1).unwrap();
        let e = read_config_file(&f).unwrap_err().to_string();
        assert!(e.contains("larger than 16 MiB"), "{e}");
        assert!(!e.contains('\n'));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
