//! A foreground `run` or `exec -t` without `--console-socket`: husk holds the pty master
//! itself and relays between it and its own stdio, in raw mode, with window size changes.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::error::InitError;
use crate::RuntimeError;

/// Where the pty master goes: to the caller's `--console-socket`, or, for a foreground process
/// with a terminal and no socket, to husk itself through an internal socketpair.
pub(crate) struct Console {
    /// The socket end the child sends the master over.
    pub child_end: Option<OwnedFd>,
    relay_end: Option<UnixStream>,
}

impl Console {
    pub fn new(socket: Option<&Path>, relay: bool) -> Result<Console, RuntimeError> {
        Ok(match socket {
            Some(path) => Console {
                child_end: Some(OwnedFd::from(UnixStream::connect(path).map_err(
                    RuntimeError::io(format!("connect to console socket {}", path.display())),
                )?)),
                relay_end: None,
            },
            None if relay => {
                let (ours, theirs) =
                    UnixStream::pair().map_err(RuntimeError::io("create console socketpair"))?;
                Console {
                    child_end: Some(OwnedFd::from(theirs)),
                    relay_end: Some(ours),
                }
            }
            None => Console {
                child_end: None,
                relay_end: None,
            },
        })
    }

    /// The pty master the child sent, when husk relays the terminal itself.
    pub fn master(&self) -> Result<Option<OwnedFd>, RuntimeError> {
        let Some(sock) = &self.relay_end else {
            return Ok(None);
        };
        husk_sys::recv_fd(sock).map_err(InitError::step("receive the pty master"))
    }
}

/// A foreground process with a terminal needs one on husk's side too, as runc requires:
/// stderr, stdout or stdin, or else the controlling terminal (`/dev/tty`). Without any (a
/// script, CI, `</dev/null` without a session terminal) this fails at once instead of
/// leaving the process waiting on a terminal nobody types into.
pub(crate) fn check_host_console() -> Result<(), RuntimeError> {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() || std::io::stdout().is_terminal() {
        return Ok(());
    }
    if std::io::stdin().is_terminal() {
        return Ok(());
    }
    match std::fs::File::open("/dev/tty") {
        Ok(_) => Ok(()),
        Err(e) => Err(RuntimeError::Usage(format!(
            "process.terminal is true but husk has no terminal (stdin, stdout and stderr are not terminals): open /dev/tty: {}",
            husk_sys::Errno(e.raw_os_error().unwrap_or(libc::EIO))
        ))),
    }
}

/// The pty master and the caller's terminal settings, restored on drop.
pub(crate) struct Relay {
    master: OwnedFd,
    saved: Option<libc::termios>,
    stdin_open: bool,
}

impl Relay {
    pub fn new(master: OwnedFd) -> Relay {
        let saved = husk_sys::tty::make_raw(std::io::stdin());
        husk_sys::tty::copy_size(std::io::stdin(), &master);
        Relay {
            master,
            saved,
            stdin_open: true,
        }
    }

    pub fn master(&self) -> RawFd {
        self.master.as_raw_fd()
    }

    pub fn stdin_open(&self) -> bool {
        self.stdin_open
    }

    /// The caller's window changed size: pass it on (the kernel signals the container).
    pub fn resize(&self) {
        husk_sys::tty::copy_size(std::io::stdin(), &self.master);
    }

    /// Moves what is available from stdin to the container.
    pub fn pump_stdin(&mut self) {
        let mut buf = [0u8; 4096];
        match husk_sys::read(std::io::stdin(), &mut buf) {
            Ok(0) | Err(_) => self.stdin_open = false,
            Ok(n) => {
                let _ = husk_sys::write_all(&self.master, &buf[..n]);
            }
        }
    }

    /// Moves what the container wrote to stdout; false once the pty is closed.
    pub fn pump_stdout(&self) -> bool {
        let mut buf = [0u8; 4096];
        match husk_sys::read(&self.master, &mut buf) {
            Ok(0) | Err(_) => false,
            Ok(n) => husk_sys::write_all(std::io::stdout(), &buf[..n]).is_ok(),
        }
    }

    /// After the process exited: whatever is still buffered in the pty.
    pub fn drain(&self) {
        let _ = husk_sys::set_nonblocking(&self.master);
        while self.pump_stdout() {}
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            husk_sys::tty::restore(std::io::stdin(), saved);
        }
    }
}
