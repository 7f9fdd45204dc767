//! husk's systemd client, used only by the `--systemd-cgroup` driver: a small blocking D-Bus
//! connection to systemd's manager (no bus library, no threads), the transient-unit calls the
//! driver needs, runc's `slice:prefix:name` naming rules, and unit properties from
//! `org.systemd.property.*` annotations.
#![forbid(unsafe_code)]

mod bus;
mod error;
mod props;
mod unit;
mod wire;

use std::time::{Duration, Instant};

pub use error::SystemdError;
pub use props::{from_annotations, parse_gvariant, ANNOTATION_PREFIX};
pub use unit::{expand_slice, place, UnitPlace};
pub use wire::Value;

use bus::{Bus, Call};

/// Connects to `direct` (a manager's private socket, no bus daemon) when it exists, else to
/// the bus daemon at `bus`.
fn connect_first(direct: &str, bus: &str) -> Result<Bus, SystemdError> {
    match Bus::connect(direct, false) {
        Ok(b) => Ok(b),
        Err(SystemdError::NoBus { .. }) if !std::path::Path::new(direct).exists() => {
            Bus::connect(bus, true)
        }
        Err(e) => Err(e),
    }
}

/// The socket path of a `unix:path=...` D-Bus address (the first one of a list).
fn unix_path(address: &str) -> Option<String> {
    address
        .split(';')
        .next()?
        .strip_prefix("unix:")?
        .split(',')
        .find_map(|kv| kv.strip_prefix("path="))
        .map(str::to_string)
}

/// The user manager's private socket and the session bus, where they would be.
fn user_sockets() -> (Option<String>, Option<String>) {
    let runtime = std::env::var("XDG_RUNTIME_DIR")
        .ok()
        .filter(|d| !d.is_empty());
    let private = runtime.as_ref().map(|d| format!("{d}/systemd/private"));
    let session = std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .ok()
        .and_then(|a| unix_path(&a))
        .or_else(|| runtime.map(|d| format!("{d}/bus")));
    (private, session)
}

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a unit job may take (runc waits 30 s too).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// How long StopUnit may take to answer (see [`Systemd::stop`]).
pub const STOP_ANSWER: Duration = Duration::from_secs(10);

/// A unit property: name and value.
pub type Property = (String, Value);

/// Which systemd manager a container's units belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instance {
    /// The system's manager (PID 1): husk runs as root.
    System,
    /// The calling user's manager (`systemd --user`), reached over the session bus:
    /// rootless husk, as runc.
    User,
}

/// A connection to one systemd manager.
pub struct Systemd {
    bus: Bus,
}

impl Systemd {
    /// Connects to `instance`'s manager. The system's: its private socket when it exists
    /// (no bus daemon needed), else the system bus. The user's: its private socket under
    /// `$XDG_RUNTIME_DIR`, else the session bus (`DBUS_SESSION_BUS_ADDRESS`, or
    /// `$XDG_RUNTIME_DIR/bus`); none of them is one clear error.
    pub fn connect(instance: Instance) -> Result<Systemd, SystemdError> {
        let bus = match instance {
            Instance::System => {
                if bus::host_uid() != 0 {
                    return Err(SystemdError::Config(
                        "the system's systemd manages units for root only (rootless husk uses \
                         the user's systemd: --rootless)"
                            .into(),
                    ));
                }
                let system = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
                    .ok()
                    .and_then(|a| unix_path(&a))
                    .unwrap_or_else(|| "/run/dbus/system_bus_socket".into());
                connect_first("/run/systemd/private", &system)?
            }
            Instance::User => {
                let (private, session) = user_sockets();
                let exists = |p: &Option<String>| {
                    p.as_deref()
                        .is_some_and(|p| std::path::Path::new(p).exists())
                };
                if !exists(&private) && !exists(&session) {
                    return Err(SystemdError::Config(format!(
                        "rootless --systemd-cgroup needs the user's systemd (systemd --user) on \
                         the session bus, and there is none: {} (log in, or `loginctl \
                         enable-linger USER`, and set XDG_RUNTIME_DIR)",
                        session.map_or_else(
                            || "neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set".into(),
                            |s| format!("{s} does not exist")
                        )
                    )));
                }
                match (private, session) {
                    (Some(p), Some(s)) => connect_first(&p, &s)?,
                    (Some(p), None) => Bus::connect(&p, false)?,
                    (None, Some(s)) => Bus::connect(&s, true)?,
                    (None, None) => unreachable!("checked above"),
                }
            }
        };
        let mut sd = Systemd { bus };
        if sd.bus.through_daemon() {
            sd.call("Subscribe", "", &[])?;
            sd.bus.call(&Call {
                dest: Some("org.freedesktop.DBus"),
                path: "/org/freedesktop/DBus",
                interface: "org.freedesktop.DBus",
                member: "AddMatch",
                args: &[Value::Str(
                    "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'".into(),
                )],
            })?;
        }
        Ok(sd)
    }

    /// The manager's own cgroup (`ControlGroup`): where a user manager's slices live, e.g.
    /// `/user.slice/user-1000.slice/user@1000.service`.
    pub fn manager_cgroup(&mut self) -> Result<String, SystemdError> {
        let reply = self.bus.call(&Call {
            dest: Some(DEST),
            path: PATH,
            interface: "org.freedesktop.DBus.Properties",
            member: "Get",
            args: &[
                Value::Str(MANAGER.into()),
                Value::Str("ControlGroup".into()),
            ],
        })?;
        match reply.first() {
            Some(Value::Variant(v)) => v.as_str().map(str::to_string),
            _ => None,
        }
        .ok_or_else(|| SystemdError::Protocol("ControlGroup is not a string".into()))
    }

    fn call(
        &mut self,
        method: &'static str,
        unit: &str,
        args: &[Value],
    ) -> Result<Vec<Value>, SystemdError> {
        self.bus
            .call(&Call {
                dest: Some(DEST),
                path: PATH,
                interface: MANAGER,
                member: method,
                args,
            })
            .map_err(|e| match e {
                SystemdError::Call { name, message, .. } => SystemdError::Call {
                    method,
                    unit: unit.to_string(),
                    name,
                    message,
                },
                SystemdError::NoAnswer { secs, .. } => SystemdError::NoAnswer {
                    method,
                    unit: unit.to_string(),
                    secs,
                },
                e => e,
            })
    }

    /// Starts transient unit `unit` with `props` and waits for its job to finish. A unit of
    /// that name left over in the failed state is reset and the start tried once more.
    pub fn start_transient(&mut self, unit: &str, props: &[Property]) -> Result<(), SystemdError> {
        let args = [
            Value::Str(unit.into()),
            Value::Str("replace".into()),
            prop_array(props),
            Value::Array("(sa(sv))".into(), Vec::new()),
        ];
        let reply = match self.call("StartTransientUnit", unit, &args) {
            Err(e) if e.dbus_name() == Some("org.freedesktop.systemd1.UnitExists") => {
                let _ = self.reset_failed(unit);
                self.call("StartTransientUnit", unit, &args)
                    .map_err(|e| match e.dbus_name() {
                        Some("org.freedesktop.systemd1.UnitExists") => {
                            SystemdError::Config(format!("systemd unit {unit} already exists"))
                        }
                        _ => e,
                    })?
            }
            r => r?,
        };
        let result = self.wait_job(&reply, unit, "start")?;
        if result != "done" {
            let _ = self.reset_failed(unit);
            return Err(SystemdError::JobFailed {
                unit: unit.into(),
                result: format!("ended with result {result:?}"),
            });
        }
        Ok(())
    }

    /// Stops `unit` and waits for it; a unit that no longer exists is fine. Then clears a
    /// failed state so the name is free again.
    ///
    /// A failed unit is reset first, so systemd collects it at once (and StopUnit on a
    /// failed unit has been seen to hang with systemd 252: systemd issue 32312). StopUnit
    /// gets [`STOP_ANSWER`] to answer; the caller decides whether a silent systemd matters.
    pub fn stop(&mut self, unit: &str) -> Result<(), SystemdError> {
        let _ = self.reset_failed(unit);
        let args = [Value::Str(unit.into()), Value::Str("replace".into())];
        let saved = std::mem::replace(&mut self.bus.call_timeout, STOP_ANSWER);
        let answer = self.call("StopUnit", unit, &args);
        self.bus.call_timeout = saved;
        match answer {
            Ok(reply) => {
                let result = self.wait_job(&reply, unit, "stop")?;
                if result != "done" && result != "skipped" {
                    tracing::debug!(unit, result, "stop job");
                }
            }
            Err(e) if e.dbus_name() == Some("org.freedesktop.systemd1.NoSuchUnit") => {}
            Err(e) => return Err(e),
        }
        let _ = self.reset_failed(unit);
        Ok(())
    }

    /// Changes properties of the running `unit` (runtime only, like runc).
    pub fn set_properties(&mut self, unit: &str, props: &[Property]) -> Result<(), SystemdError> {
        if props.is_empty() {
            return Ok(());
        }
        let args = [
            Value::Str(unit.into()),
            Value::Bool(true),
            prop_array(props),
        ];
        self.call("SetUnitProperties", unit, &args).map(drop)
    }

    fn reset_failed(&mut self, unit: &str) -> Result<(), SystemdError> {
        self.call("ResetFailedUnit", unit, &[Value::Str(unit.into())])
            .map(drop)
    }

    /// Waits for the `JobRemoved` signal of the job in `reply`; returns its result.
    fn wait_job(
        &mut self,
        reply: &[Value],
        unit: &str,
        what: &'static str,
    ) -> Result<String, SystemdError> {
        let job = reply
            .first()
            .and_then(Value::as_str)
            .ok_or_else(|| SystemdError::Protocol("job reply without an object path".into()))?
            .to_string();
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let Some(sig) = self.bus.next_signal(deadline)? else {
                return Err(SystemdError::Timeout {
                    what,
                    unit: unit.into(),
                    secs: JOB_TIMEOUT.as_secs(),
                });
            };
            if sig.member.as_deref() != Some("JobRemoved") {
                continue;
            }
            if let [_, Value::ObjectPath(path), _, Value::Str(result)] = &sig.body[..] {
                if *path == job {
                    return Ok(result.clone());
                }
            }
        }
    }
}

fn prop_array(props: &[Property]) -> Value {
    Value::Array(
        "(sv)".into(),
        props
            .iter()
            .map(|(k, v)| {
                Value::Struct(vec![
                    Value::Str(k.clone()),
                    Value::Variant(Box::new(v.clone())),
                ])
            })
            .collect(),
    )
}

/// A `u64` property (most resource properties are `t`).
pub fn prop_u64(name: &str, v: u64) -> Property {
    (name.into(), Value::U64(v))
}

/// A bit mask of CPUs or memory nodes as systemd's `AllowedCPUs`/`AllowedMemoryNodes`
/// expect it (`ay`, bit N of byte N/8), from a cpuset list such as "0-3,7".
pub fn cpuset_mask(list: &str) -> Result<Value, SystemdError> {
    let bad = || SystemdError::Config(format!("invalid cpuset list {list:?}"));
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>(), b.parse::<usize>()),
            None => (part.parse::<usize>(), part.parse::<usize>()),
        };
        let (lo, hi) = (lo.map_err(|_| bad())?, hi.map_err(|_| bad())?);
        if lo > hi || hi >= 8192 {
            return Err(bad());
        }
        for n in lo..=hi {
            if bytes.len() <= n / 8 {
                bytes.resize(n / 8 + 1, 0);
            }
            bytes[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(Value::Array(
        "y".into(),
        bytes.into_iter().map(Value::Byte).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuset_masks() {
        let bytes = |v: Value| match v {
            Value::Array(_, items) => items
                .into_iter()
                .map(|i| match i {
                    Value::Byte(b) => b,
                    _ => panic!(),
                })
                .collect::<Vec<u8>>(),
            _ => panic!(),
        };
        assert_eq!(bytes(cpuset_mask("0-3,7").unwrap()), vec![0x8f]);
        assert_eq!(bytes(cpuset_mask("9").unwrap()), vec![0, 2]);
        assert!(cpuset_mask("3-1").is_err());
        assert!(cpuset_mask("x").is_err());
    }

    #[test]
    fn bus_addresses() {
        assert_eq!(
            unix_path("unix:path=/run/user/1000/bus,guid=abc").as_deref(),
            Some("/run/user/1000/bus")
        );
        assert_eq!(
            unix_path("unix:path=/a;unix:path=/b").as_deref(),
            Some("/a")
        );
        assert_eq!(unix_path("unix:abstract=/tmp/x"), None);
        assert_eq!(unix_path("tcp:host=x"), None);
    }
}
