//! A blocking D-Bus connection over a unix socket: EXTERNAL authentication, method calls
//! matched to their replies by serial, and signals queued until someone asks for them
//! (systemd may send a job's `JobRemoved` before the reply that names the job).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::error::SystemdError;
use crate::wire::{Reader, Value, Writer};

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;
/// How long systemd may take to answer a call (it answers at once unless it is very busy,
/// e.g. right after boot under emulation).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Silence after which a call is nudged (see [`Bus::wait_readable`]).
const NUDGE_AFTER: Duration = Duration::from_secs(1);

/// A received message: its type, the header fields husk looks at, and its decoded body.
#[derive(Debug)]
pub struct Message {
    pub kind: u8,
    pub reply_serial: Option<u32>,
    pub error_name: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub body: Vec<Value>,
}

/// One connection to systemd: a direct one to its private socket (root), or one through a
/// bus daemon (which needs `Hello` first and match rules for signals).
pub struct Bus {
    sock: BufReader<UnixStream>,
    path: String,
    serial: u32,
    through_daemon: bool,
    signals: VecDeque<Message>,
    /// How long a call may wait for its answer.
    pub call_timeout: Duration,
}

pub struct Call<'a> {
    pub dest: Option<&'a str>,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    pub args: &'a [Value],
}

impl Bus {
    /// Connects to the unix socket at `path` and authenticates as this process's uid.
    pub fn connect(path: &str, through_daemon: bool) -> Result<Bus, SystemdError> {
        let sock = UnixStream::connect(path).map_err(|err| SystemdError::NoBus {
            path: path.into(),
            err,
        })?;
        let _ = sock.set_read_timeout(Some(CALL_TIMEOUT));
        let mut bus = Bus {
            sock: BufReader::new(sock),
            path: path.into(),
            serial: 0,
            through_daemon,
            signals: VecDeque::new(),
            call_timeout: CALL_TIMEOUT,
        };
        bus.auth()?;
        if through_daemon {
            bus.call(&Call {
                dest: Some("org.freedesktop.DBus"),
                path: "/org/freedesktop/DBus",
                interface: "org.freedesktop.DBus",
                member: "Hello",
                args: &[],
            })?;
        }
        Ok(bus)
    }

    pub fn through_daemon(&self) -> bool {
        self.through_daemon
    }

    fn io(&self) -> impl Fn(std::io::Error) -> SystemdError + '_ {
        |err| SystemdError::Io {
            path: self.path.clone(),
            err,
        }
    }

    fn auth(&mut self) -> Result<(), SystemdError> {
        let uid = host_uid();
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        let hello = format!("\0AUTH EXTERNAL {hex}\r\n");
        self.sock
            .get_mut()
            .write_all(hello.as_bytes())
            .map_err(self.io())?;
        let mut line = String::new();
        self.sock.read_line(&mut line).map_err(self.io())?;
        if !line.starts_with("OK ") {
            return Err(SystemdError::Auth {
                path: self.path.clone(),
                what: format!("server said {:?}", line.trim_end()),
            });
        }
        self.sock
            .get_mut()
            .write_all(b"BEGIN\r\n")
            .map_err(self.io())
    }

    /// Calls a method and waits for its reply; an error reply becomes `Err` with systemd's
    /// error name and message. Signals that arrive meanwhile are kept for [`Bus::next_signal`].
    pub fn call(&mut self, c: &Call<'_>) -> Result<Vec<Value>, SystemdError> {
        self.serial += 1;
        let serial = self.serial;
        let msg = marshal(serial, c);
        self.sock.get_mut().write_all(&msg).map_err(self.io())?;
        let deadline = Instant::now() + self.call_timeout;
        loop {
            self.wait_readable(deadline)?;
            let m = self.read_message()?;
            match (m.kind, m.reply_serial) {
                (METHOD_RETURN, Some(s)) if s == serial => return Ok(m.body),
                (ERROR, Some(s)) if s == serial => {
                    let message = m
                        .body
                        .first()
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    return Err(SystemdError::Call {
                        method: "",
                        unit: String::new(),
                        name: m.error_name.unwrap_or_default(),
                        message,
                    });
                }
                (SIGNAL, _) => self.signals.push_back(m),
                _ => {}
            }
        }
    }

    /// Waits until a message has started to arrive (nothing is consumed, so a timeout loses
    /// no bytes). Every second of silence sends a `Peer.Ping`: systemd (seen with 252) can
    /// leave a call that arrived together with the authentication's BEGIN unprocessed until
    /// more data comes in; the ping makes it look again. Its answer is skipped as unmatched.
    fn wait_readable(&mut self, deadline: Instant) -> Result<(), SystemdError> {
        while self.sock.buffer().is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SystemdError::NoAnswer {
                    method: "",
                    unit: String::new(),
                    secs: self.call_timeout.as_secs(),
                });
            }
            let _ = self
                .sock
                .get_ref()
                .set_read_timeout(Some(left.min(NUDGE_AFTER)));
            match self.sock.fill_buf() {
                Ok([]) => {
                    return Err(SystemdError::Io {
                        path: self.path.clone(),
                        err: std::io::ErrorKind::UnexpectedEof.into(),
                    })
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    self.serial += 1;
                    let ping = marshal(
                        self.serial,
                        &Call {
                            dest: Some("org.freedesktop.systemd1"),
                            path: "/org/freedesktop/systemd1",
                            interface: "org.freedesktop.DBus.Peer",
                            member: "Ping",
                            args: &[],
                        },
                    );
                    self.sock.get_mut().write_all(&ping).map_err(self.io())?;
                }
                Err(err) => {
                    return Err(SystemdError::Io {
                        path: self.path.clone(),
                        err,
                    })
                }
            }
        }
        // The rest of the message follows at once.
        let _ = self.sock.get_ref().set_read_timeout(Some(CALL_TIMEOUT));
        Ok(())
    }

    /// The next signal (queued or newly read) before `deadline`; `None` when it passed.
    pub fn next_signal(&mut self, deadline: Instant) -> Result<Option<Message>, SystemdError> {
        if let Some(m) = self.signals.pop_front() {
            return Ok(Some(m));
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let _ = self.sock.get_ref().set_read_timeout(Some(left));
            match self.read_message() {
                Ok(m) if m.kind == SIGNAL => return Ok(Some(m)),
                Ok(_) => {}
                Err(SystemdError::Io { err, .. })
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn read_message(&mut self) -> Result<Message, SystemdError> {
        let mut fixed = [0u8; 16];
        self.sock.read_exact(&mut fixed).map_err(self.io())?;
        if fixed[0] != b'l' {
            return Err(SystemdError::Protocol(
                "big-endian messages are not supported".into(),
            ));
        }
        let body_len = u32::from_le_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]) as usize;
        let fields_len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]) as usize;
        let header_end = (16 + fields_len).div_ceil(8) * 8;
        let total = header_end + body_len;
        if total > 64 << 20 {
            return Err(SystemdError::Protocol(format!("message of {total} bytes")));
        }
        let mut buf = vec![0u8; total];
        buf[..16].copy_from_slice(&fixed);
        self.sock.read_exact(&mut buf[16..]).map_err(self.io())?;
        let mut r = Reader::new(&buf, 12);
        let Value::Array(_, fields) = r.value("a(yv)")? else {
            return Err(SystemdError::Protocol("bad header".into()));
        };
        let mut m = Message {
            kind: fixed[1],
            reply_serial: None,
            error_name: None,
            interface: None,
            member: None,
            body: Vec::new(),
        };
        let mut sig = String::new();
        for f in fields {
            let Value::Struct(kv) = f else { continue };
            let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (kv.first(), kv.get(1)) else {
                continue;
            };
            let s = v.as_str().map(str::to_string);
            match code {
                2 => m.interface = s,
                3 => m.member = s,
                4 => m.error_name = s,
                5 => m.reply_serial = v.as_u32(),
                8 => sig = s.unwrap_or_default(),
                _ => {}
            }
        }
        let mut r = Reader::new(&buf, header_end);
        m.body = r.values(&sig)?;
        Ok(m)
    }
}

/// The uid the peer sees in SO_PEERCRED: our effective uid (owner of /proc/self) as the
/// initial user namespace knows it (husk may run in a user namespace: rootless Podman).
pub fn host_uid() -> u32 {
    let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    outside_uid(&map, uid).unwrap_or(uid)
}

/// `uid` mapped through a `uid_map` text ("inside outside count" lines).
fn outside_uid(map: &str, uid: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        let [inside, outside, count] = f[..] else {
            return None;
        };
        let off = u64::from(uid).checked_sub(inside).filter(|&o| o < count)?;
        u32::try_from(outside + off).ok()
    })
}

/// A method call message with serial `serial`.
fn marshal(serial: u32, c: &Call<'_>) -> Vec<u8> {
    let sig: String = c.args.iter().map(Value::signature).collect();
    let field =
        |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]);
    let mut fields = vec![
        field(1, Value::ObjectPath(c.path.into())),
        field(2, Value::Str(c.interface.into())),
        field(3, Value::Str(c.member.into())),
    ];
    if let Some(d) = c.dest {
        fields.push(field(6, Value::Str(d.into())));
    }
    if !sig.is_empty() {
        fields.push(field(8, Value::Signature(sig)));
    }
    let mut body = Writer::default();
    for a in c.args {
        body.value(a);
    }
    let mut w = Writer::default();
    w.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    w.buf
        .extend_from_slice(&(body.buf.len() as u32).to_le_bytes());
    w.buf.extend_from_slice(&serial.to_le_bytes());
    w.value(&Value::Array("(yv)".into(), fields));
    w.pad(8);
    w.buf.extend_from_slice(&body.buf);
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_map_to_the_host() {
        assert_eq!(outside_uid("0 1000 1\n1 100000 65536\n", 0), Some(1000));
        assert_eq!(outside_uid("0 1000 1\n1 100000 65536\n", 5), Some(100004));
        assert_eq!(outside_uid("0 0 4294967295\n", 7), Some(7));
        assert_eq!(outside_uid("0 1000 1\n", 3), None);
    }

    #[test]
    fn call_header_is_padded_and_parsable() {
        let msg = marshal(
            7,
            &Call {
                dest: Some("org.freedesktop.systemd1"),
                path: "/org/freedesktop/systemd1",
                interface: "org.freedesktop.systemd1.Manager",
                member: "StopUnit",
                args: &[Value::Str("a.scope".into()), Value::Str("replace".into())],
            },
        );
        let fields_len = u32::from_le_bytes(msg[12..16].try_into().unwrap()) as usize;
        let header_end = (16 + fields_len).div_ceil(8) * 8;
        let body_len = u32::from_le_bytes(msg[4..8].try_into().unwrap()) as usize;
        assert_eq!(msg.len(), header_end + body_len);
        let mut r = Reader::new(&msg, header_end);
        assert_eq!(
            r.values("ss").unwrap(),
            vec![Value::Str("a.scope".into()), Value::Str("replace".into())]
        );
    }
}
