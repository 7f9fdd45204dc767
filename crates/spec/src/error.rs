//! The crate's error type: every message is one line naming the file and the field.

use std::io;
use std::path::PathBuf;

#[derive(thiserror::Error, Debug)]
pub enum SpecError {
    /// The bundle directory could not be resolved to an absolute path.
    #[error("cannot resolve bundle directory {}: {}", .path.display(), errno_text(.source))]
    Bundle {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A configuration file could not be read.
    #[error("cannot read {}: {}", .path.display(), errno_text(.source))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not well-formed JSON.
    #[error("{file}: invalid JSON at line {line} column {column}: {msg}")]
    Json {
        file: String,
        line: usize,
        column: usize,
        msg: String,
    },
    /// A field has a value the runtime cannot accept. `field` is a path such as
    /// `mounts[2].destination` or `process.capabilities.bounding`.
    #[error("{file}: {field}: {msg}")]
    Invalid {
        file: String,
        field: String,
        msg: String,
    },
}

impl SpecError {
    pub(crate) fn invalid(file: &str, field: impl Into<String>, msg: impl Into<String>) -> Self {
        SpecError::Invalid {
            file: file.to_owned(),
            field: field.into(),
            msg: msg.into(),
        }
    }
}

/// `io::Error` text without std's " (os error N)" suffix: "No such file or directory".
pub(crate) fn errno_text(err: &io::Error) -> String {
    let text = err.to_string();
    match (err.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => text[..at].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_text_strips_os_error_suffix() {
        let err = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(errno_text(&err), "No such file or directory");
        let custom = io::Error::other("boom (os error 5)");
        assert_eq!(errno_text(&custom), "boom (os error 5)");
    }

    #[test]
    fn read_error_is_one_line_with_path() {
        let err = SpecError::Read {
            path: PathBuf::from("/b/config.json"),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(
            err.to_string(),
            "cannot read /b/config.json: No such file or directory"
        );
    }
}
