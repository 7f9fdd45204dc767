//! JSON parsing with field-naming error messages.
//!
//! Parsing is a single `serde_json::from_slice`. When it fails with a data error, the
//! position serde_json reports is located in the raw document (`locate`), so the message
//! can name the field instead of repeating serde's (sometimes cryptic) text, e.g.
//! oci-spec's "no variant for CAP_FOO (converted to FOO)".

use oci_spec::runtime::Capability;
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use serde_json::Value;

use crate::error::SpecError;
use crate::locate::{offset_of, path_at, Seg};

/// Parses `bytes` as a `T`; `file` names the document in error messages.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8], file: &str) -> Result<T, SpecError> {
    serde_json::from_slice(bytes).map_err(|err| describe(bytes, file, &err))
}

/// Turns a failed parse into a one-line error naming the offending field.
fn describe(bytes: &[u8], file: &str, err: &serde_json::Error) -> SpecError {
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
    let (line, column) = (err.line(), err.column());
    let segments = path_at(bytes, offset_of(bytes, line, column));
    let msg = bare_message(err);
    let described = field_error(value.as_ref(), file, &segments, &msg);
    // Errors about the top-level object itself (e.g. a duplicate member) have no field
    // path: name serde's position instead.
    described
        .unwrap_or_else(|| SpecError::invalid(file, format!("line {line} column {column}"), msg))
}

/// Builds the error for a data error at `segments` (`None` if there is no field to name).
fn field_error(
    value: Option<&Value>,
    file: &str,
    segments: &[Seg],
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
    if let Some((field, what, found)) = enum_field(value, segments) {
        let msg = format!("unknown {what} {found:?}");
        return Some(SpecError::invalid(file, field, msg));
    }
    Some(SpecError::invalid(file, format_path(segments), msg))
}

/// Recognizes the enum-valued fields whose serde errors are unhelpful and returns the field
/// name to report, what kind of value it holds and the offending string (looked up in the
/// generic parse of the document).
fn enum_field<'v>(
    value: Option<&'v Value>,
    segments: &[Seg],
) -> Option<(String, &'static str, &'v str)> {
    let key = |i: usize| match segments.get(i) {
        Some(Seg::Key(k)) => Some(k.as_str()),
        _ => None,
    };
    let at = |path: &[Seg]| value.and_then(|v| v.pointer(&json_pointer(path)));
    let n = segments.len();
    let last_is_index = matches!(segments.last(), Some(Seg::Index(_)));
    // <...>capabilities.<set>, or an element of it: report the set, as the index of a set is
    // meaningless. oci-spec rejects a name after reading it, so serde_json places the error
    // past the set or at the next element: the name is the first one that is not a capability.
    let set = if n >= 2 && key(n - 2) == Some("capabilities") && !last_is_index {
        Some(segments)
    } else if n >= 3 && last_is_index && key(n - 3) == Some("capabilities") {
        Some(&segments[..n - 1])
    } else {
        None
    };
    if let Some(set) = set {
        let unknown = |name: &&str| {
            serde_json::from_value::<Capability>(Value::String((*name).to_owned())).is_err()
        };
        let mut names = at(set)?.as_array()?.iter().filter_map(Value::as_str);
        return Some((format_path(set), "capability", names.find(unknown)?));
    }
    // <...>rlimits[i].type, linux.namespaces[i].type, linux.devices[i].type, ...
    if n >= 3 && key(n - 1) == Some("type") && matches!(segments[n - 2], Seg::Index(_)) {
        let what = match key(n - 3) {
            Some("rlimits") => "rlimit type",
            Some("namespaces") => "namespace type",
            Some("devices") => "device type",
            _ => return None,
        };
        return Some((format_path(segments), what, at(segments)?.as_str()?));
    }
    None
}

/// `process.rlimits[0].type` style rendering of a path.
fn format_path(segments: &[Seg]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Seg::Index(index) => out.push_str(&format!("[{index}]")),
            Seg::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&one_line(key));
            }
        }
    }
    out
}

/// RFC 6901 pointer to the value at `segments`.
fn json_pointer(segments: &[Seg]) -> String {
    let mut out = String::new();
    for segment in segments {
        out.push('/');
        match segment {
            Seg::Index(index) => out.push_str(&index.to_string()),
            Seg::Key(key) => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
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
