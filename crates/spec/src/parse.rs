//! JSON parsing with field-naming error messages.
//!
//! The success path is a single `serde_json::from_slice`. Only when that fails is the
//! input parsed again, with `serde_path_to_error` tracking where in the document the
//! failure happened, so the message can name the field instead of repeating serde's
//! (sometimes cryptic) text, e.g. oci-spec's "no variant for CAP_FOO (converted to FOO)".

use serde::de::DeserializeOwned;
use serde_json::error::Category;
use serde_json::Value;
use serde_path_to_error::Segment;

use crate::error::SpecError;

/// Parses `bytes` as a `T`; `file` names the document in error messages.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8], file: &str) -> Result<T, SpecError> {
    serde_json::from_slice(bytes).map_err(|err| describe::<T>(bytes, file, &err))
}

/// Turns a failed parse into a one-line error naming the offending field.
fn describe<T: DeserializeOwned>(bytes: &[u8], file: &str, err: &serde_json::Error) -> SpecError {
    if matches!(
        err.classify(),
        Category::Syntax | Category::Eof | Category::Io
    ) {
        return SpecError::Json {
            file: file.to_owned(),
            line: err.line(),
            column: err.column(),
            msg: bare_message(err),
        };
    }
    // serde would read a top-level array as the struct's fields in order: say what is wrong.
    let value = serde_json::from_slice::<Value>(bytes).ok();
    if let Some(found) = value.as_ref().and_then(|v| match v {
        Value::Object(_) => None,
        Value::Array(_) => Some("an array"),
        Value::String(_) => Some("a string"),
        Value::Number(_) => Some("a number"),
        Value::Bool(_) => Some("a boolean"),
        Value::Null => Some("null"),
    }) {
        let msg = format!("expected a JSON object, found {found}");
        return SpecError::invalid(file, "(top level)", msg);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let (line, column, msg, described) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(tracked) => {
            let segments: Vec<&Segment> = tracked.path().iter().collect();
            let msg = bare_message(tracked.inner());
            let described = field_error(value.as_ref(), file, &segments, &msg);
            (
                tracked.inner().line(),
                tracked.inner().column(),
                msg,
                described,
            )
        }
        // Not reproduced by the second parse (cannot happen for a deterministic
        // Deserialize impl): fall back to the first error.
        Ok(_) => (err.line(), err.column(), bare_message(err), None),
    };
    // Errors about the top-level object itself (e.g. a duplicate member) have no field
    // path: name serde's position instead.
    described
        .unwrap_or_else(|| SpecError::invalid(file, format!("line {line} column {column}"), msg))
}

/// Builds the error for a data error at `segments` (`None` if there is no field to name).
fn field_error(
    value: Option<&Value>,
    file: &str,
    segments: &[&Segment],
    msg: &str,
) -> Option<SpecError> {
    if let Some(name) = msg
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let field = match segments {
            [] => name.to_owned(),
            _ => format!("{}.{name}", format_path(segments)),
        };
        return Some(SpecError::invalid(file, field, "required field is missing"));
    }
    if segments.is_empty() {
        return None;
    }
    if let Some((field, what)) = enum_field(segments) {
        // The offending string, looked up in the generic parse of the document.
        let found = value
            .and_then(|v| v.pointer(&json_pointer(segments)))
            .and_then(Value::as_str);
        if let Some(found) = found {
            let msg = format!("unknown {what} {found:?}");
            return Some(SpecError::invalid(file, field, msg));
        }
    }
    Some(SpecError::invalid(file, format_path(segments), msg))
}

/// Recognizes the enum-valued fields whose serde errors are unhelpful and returns the
/// field name to report plus what kind of value it holds.
fn enum_field(segments: &[&Segment]) -> Option<(String, &'static str)> {
    let keys: Vec<Option<&str>> = segments
        .iter()
        .map(|s| match s {
            Segment::Map { key } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    let n = keys.len();
    let last_is_index = matches!(segments.last(), Some(Segment::Seq { .. }));
    // <...>capabilities.<set>[i]: report the set, as the index of a set is meaningless.
    if n >= 3 && last_is_index && keys[n - 3] == Some("capabilities") {
        return Some((format_path(&segments[..n - 1]), "capability"));
    }
    // <...>rlimits[i].type, linux.namespaces[i].type, linux.devices[i].type, ...
    if n >= 3 && keys[n - 1] == Some("type") && matches!(segments[n - 2], Segment::Seq { .. }) {
        let what = match keys[n - 3] {
            Some("rlimits") => "rlimit type",
            Some("namespaces") => "namespace type",
            Some("devices") => "device type",
            _ => return None,
        };
        return Some((format_path(segments), what));
    }
    None
}

/// `process.rlimits[0].type` style rendering of a path.
fn format_path(segments: &[&Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&one_line(key));
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// RFC 6901 pointer to the value at `segments`.
fn json_pointer(segments: &[&Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        out.push('/');
        match segment {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// serde_json's message without its " at line L column C" suffix. Data errors quote the
/// document (an unknown field name or enum variant), so control characters are escaped.
fn bare_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    one_line(text.strip_suffix(&suffix).unwrap_or(&text))
}

/// `text` with control characters escaped (`\n`, `\u{1b}`, ...), for messages that quote
/// keys or strings of the document and must stay on one line.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{Process, Spec};

    use super::*;

    fn message<T: DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        parse::<T>(json.as_bytes(), "f.json")
            .unwrap_err()
            .to_string()
    }

    // Found by fuzz/fuzz_targets/spec_config.rs: serde's "unknown variant" text quoted a
    // newline raw when the rest of the document was not valid JSON.
    #[test]
    fn quoted_document_text_stays_on_one_line() {
        let msg = message::<Process>(r##"{"rlimits":[{"type":"\n""##);
        assert_eq!(
            msg.lines().count(),
            1,
            "unknown variant in a truncated document: {msg}"
        );
        assert!(msg.contains(r"unknown variant `\n`"), "{msg}");

        let msg = message::<Spec>(r#"{"annotations":{"a\nb":1}}"#);
        assert_eq!(msg.lines().count(), 1, "key in the field path: {msg}");
        assert!(
            msg.starts_with(r"f.json: annotations.a\nb: invalid type"),
            "{msg}"
        );
    }
}
