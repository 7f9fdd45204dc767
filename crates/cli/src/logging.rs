//! runc-compatible logging: `--log FILE --log-format text|json`. containerd and Podman read
//! the last `"level":"error"` line of the JSON log to report why a command failed.

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub struct Logger {
    max: Level,
    format: Format,
    /// `None`: stderr.
    file: Option<Mutex<File>>,
}

impl Logger {
    pub fn new(path: Option<&str>, format: Format, debug: bool) -> Result<Logger, String> {
        let file = match path {
            Some(p) if !p.is_empty() => Some(Mutex::new(
                File::options()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("open log file {p}: {e}"))?,
            )),
            _ => None,
        };
        Ok(Logger {
            max: if debug { Level::DEBUG } else { Level::WARN },
            format,
            file,
        })
    }

    pub fn logs_to_file(&self) -> bool {
        self.file.is_some()
    }

    /// Formats and writes one line.
    pub fn write(&self, level: Level, msg: &str) {
        let level = level.as_str().to_ascii_lowercase();
        let time = husk_state::rfc3339_seconds();
        let quoted = serde_json::to_string(msg).unwrap_or_default();
        let line = match self.format {
            Format::Json => {
                format!("{{\"level\":\"{level}\",\"msg\":{quoted},\"time\":\"{time}\"}}\n")
            }
            Format::Text => format!("time=\"{time}\" level={level} msg={quoted}\n"),
        };
        match &self.file {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }
}

struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl Subscriber for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        *m.level() <= self.max
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut m = Message(String::new());
        e.record(&mut m);
        self.write(*e.metadata().level(), &m.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
