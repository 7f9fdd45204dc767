//! The crate's error type: one line per failure, naming the unit, method or socket.

/// Everything that can go wrong talking to systemd.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    /// No usable bus socket (systemd not running, not root, no session bus).
    #[error("cannot connect to systemd over D-Bus ({path}): {err}")]
    NoBus { path: String, err: std::io::Error },
    /// The socket was reached but refused our authentication.
    #[error("D-Bus authentication with {path} failed: {what}")]
    Auth { path: String, what: String },
    /// Reading or writing the socket failed mid-conversation.
    #[error("D-Bus I/O on {path}: {err}")]
    Io { path: String, err: std::io::Error },
    /// systemd did not answer a call in time.
    #[error("systemd did not answer {method} for unit {unit} within {secs}s")]
    NoAnswer {
        method: &'static str,
        unit: String,
        secs: u64,
    },
    /// The peer sent something this client does not understand.
    #[error("D-Bus protocol error: {0}")]
    Protocol(String),
    /// systemd answered a call with an error (e.g. `org.freedesktop.systemd1.UnitExists`).
    #[error("systemd {method} {unit}: {message} ({name})")]
    Call {
        method: &'static str,
        unit: String,
        name: String,
        message: String,
    },
    /// The job systemd queued for the unit ended with something other than "done".
    #[error("systemd job for unit {unit} {result}")]
    JobFailed { unit: String, result: String },
    /// systemd did not report the job's end in time.
    #[error("timed out after {secs}s waiting for systemd to {what} unit {unit}")]
    Timeout {
        what: &'static str,
        unit: String,
        secs: u64,
    },
    /// A cgroupsPath, slice, unit name or property given by the user is malformed.
    #[error("{0}")]
    Config(String),
}

impl SystemdError {
    /// The D-Bus error name when systemd refused a call.
    pub fn dbus_name(&self) -> Option<&str> {
        match self {
            SystemdError::Call { name, .. } => Some(name),
            _ => None,
        }
    }
}
