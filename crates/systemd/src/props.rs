//! Unit properties from `org.systemd.property.NAME` annotations, checked as runc checks
//! them: NAME is an ASCII letter-or-digit word starting with an upper-case letter; the value
//! is GVariant text (`uint64 123`, `@t 5`, `true`, `'text'`, `[1, 2]`); a `...Sec` name
//! (lower-case letter before "Sec") becomes `...USec` with its number of seconds in µs.

use crate::error::SystemdError;
use crate::wire::Value;

pub const ANNOTATION_PREFIX: &str = "org.systemd.property.";

/// The properties the annotations ask for, in key order.
pub fn from_annotations<'a>(
    annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<(String, Value)>, SystemdError> {
    let mut out = Vec::new();
    for (key, text) in annotations {
        let Some(name) = key.strip_prefix(ANNOTATION_PREFIX) else {
            continue;
        };
        check_name(name)
            .map_err(|why| SystemdError::Config(format!("annotation {key}: name {why}")))?;
        let bad_value = |why: String| {
            SystemdError::Config(format!("annotation {key}={text}: value parse error: {why}"))
        };
        let mut value = parse_gvariant(text).map_err(bad_value)?;
        let mut name = name.to_string();
        if let Some(base) = name.strip_suffix("Sec") {
            if base.ends_with(|c: char| c.is_ascii_lowercase()) {
                let usec = sec_to_usec(&value).map_err(bad_value)?;
                name = format!("{base}USec");
                value = Value::U64(usec);
            }
        }
        out.push((name, value));
    }
    Ok(out)
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.len() < 3 {
        return Err("is too short");
    }
    if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
        return Err("must start with A-Z");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("contains a non-alphanumeric character");
    }
    Ok(())
}

fn sec_to_usec(v: &Value) -> Result<u64, String> {
    const M: u64 = 1_000_000;
    let neg = || "negative number of seconds".to_string();
    Ok(match *v {
        Value::Byte(n) => u64::from(n) * M,
        Value::U16(n) => u64::from(n) * M,
        Value::U32(n) => u64::from(n) * M,
        Value::U64(n) => n.saturating_mul(M),
        Value::I16(n) => u64::try_from(n).map_err(|_| neg())? * M,
        Value::I32(n) => u64::try_from(n).map_err(|_| neg())? * M,
        Value::I64(n) => u64::try_from(n).map_err(|_| neg())?.saturating_mul(M),
        Value::Double(d) if d >= 0.0 => (d * M as f64).round() as u64,
        Value::Double(_) => return Err(neg()),
        _ => return Err("not a number (the value of a ...Sec property)".into()),
    })
}

/// Parses the GVariant text forms systemd properties use: numbers (int32 unless typed with
/// a keyword such as `uint64` or `@t`; double with a '.' or exponent), booleans, strings in
/// single or double quotes, and arrays of those.
pub fn parse_gvariant(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.trim(),
        pos: 0,
    };
    let v = p.value(None)?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(format!("unexpected {:?}", &p.s[p.pos..]));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

const KEYWORDS: [(&str, &str); 12] = [
    ("boolean", "b"),
    ("byte", "y"),
    ("int16", "n"),
    ("uint16", "q"),
    ("int32", "i"),
    ("uint32", "u"),
    ("handle", "h"),
    ("int64", "x"),
    ("uint64", "t"),
    ("double", "d"),
    ("objectpath", "o"),
    ("string", "s"),
];

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn ws(&mut self) {
        self.pos += self.rest().len() - self.rest().trim_start().len();
    }

    fn word(&mut self) -> &str {
        let rest = self.rest();
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "+-._".contains(c)))
            .unwrap_or(rest.len());
        let w = &self.s[self.pos..self.pos + n];
        self.pos += n;
        w
    }

    /// One value, of type `want` when the context fixed it.
    fn value(&mut self, want: Option<&str>) -> Result<Value, String> {
        self.ws();
        if let Some(r) = self.rest().strip_prefix('@') {
            let n = r.find(char::is_whitespace).unwrap_or(r.len());
            let ty = r[..n].to_string();
            self.pos += 1 + n;
            return self.value(Some(&ty));
        }
        for (kw, ty) in KEYWORDS {
            if let Some(r) = self.rest().strip_prefix(kw) {
                if r.starts_with(char::is_whitespace) {
                    self.pos += kw.len();
                    return self.value(Some(ty));
                }
            }
        }
        match self.rest().chars().next() {
            Some('[') => self.array(want),
            Some(q @ ('\'' | '"')) => {
                let body = &self.rest()[1..];
                let end = body.find(q).ok_or("unterminated string")?;
                let s = body[..end].to_string();
                self.pos += end + 2;
                match want {
                    None | Some("s") => Ok(Value::Str(s)),
                    Some("o") => Ok(Value::ObjectPath(s)),
                    Some(t) => Err(format!("a string where type {t} was expected")),
                }
            }
            Some(_) => {
                let w = self.word().to_string();
                scalar(&w, want)
            }
            None => Err("missing value".into()),
        }
    }

    fn array(&mut self, want: Option<&str>) -> Result<Value, String> {
        self.pos += 1;
        let mut elem = match want {
            Some(t) => Some(
                t.strip_prefix('a')
                    .ok_or_else(|| format!("an array where type {t} was expected"))?
                    .to_string(),
            ),
            None => None,
        };
        let mut items = Vec::new();
        loop {
            self.ws();
            if let Some(r) = self.rest().strip_prefix(']') {
                let _ = r;
                self.pos += 1;
                break;
            }
            if !items.is_empty() {
                if !self.rest().starts_with(',') {
                    return Err("expected ',' or ']' in array".into());
                }
                self.pos += 1;
            }
            let v = self.value(elem.as_deref())?;
            elem.get_or_insert_with(|| v.signature());
            items.push(v);
        }
        let elem = elem.ok_or("an empty array needs a type, e.g. @as []")?;
        Ok(Value::Array(elem, items))
    }
}

fn scalar(w: &str, want: Option<&str>) -> Result<Value, String> {
    let bad = || format!("{w:?} is not a valid {}", want.unwrap_or("value"));
    if w == "true" || w == "false" {
        return match want {
            None | Some("b") => Ok(Value::Bool(w == "true")),
            _ => Err(bad()),
        };
    }
    let float = w.contains(['.', 'e', 'E']) && !w.starts_with("0x");
    let ty = want.unwrap_or(if float { "d" } else { "i" });
    let int = || -> Result<i128, String> {
        match w.strip_prefix("0x") {
            Some(h) => i128::from_str_radix(h, 16).map_err(|_| bad()),
            None => w.parse::<i128>().map_err(|_| bad()),
        }
    };
    let v = match ty {
        "d" => return w.parse::<f64>().map(Value::Double).map_err(|_| bad()),
        "y" => Value::Byte(u8::try_from(int()?).map_err(|_| bad())?),
        "n" => Value::I16(i16::try_from(int()?).map_err(|_| bad())?),
        "q" => Value::U16(u16::try_from(int()?).map_err(|_| bad())?),
        "i" => Value::I32(i32::try_from(int()?).map_err(|_| bad())?),
        "u" | "h" => Value::U32(u32::try_from(int()?).map_err(|_| bad())?),
        "x" => Value::I64(i64::try_from(int()?).map_err(|_| bad())?),
        "t" => Value::U64(u64::try_from(int()?).map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gvariant_forms() {
        assert_eq!(parse_gvariant("uint64 123").unwrap(), Value::U64(123));
        assert_eq!(parse_gvariant("@t 5").unwrap(), Value::U64(5));
        assert_eq!(parse_gvariant("42").unwrap(), Value::I32(42));
        assert_eq!(parse_gvariant("1.5").unwrap(), Value::Double(1.5));
        assert_eq!(parse_gvariant("true").unwrap(), Value::Bool(true));
        assert_eq!(
            parse_gvariant("'inactive-or-failed'").unwrap(),
            Value::Str("inactive-or-failed".into())
        );
        assert_eq!(
            parse_gvariant("['a', \"b\"]").unwrap(),
            Value::Array(
                "s".into(),
                vec![Value::Str("a".into()), Value::Str("b".into())]
            )
        );
        assert_eq!(
            parse_gvariant("@as []").unwrap(),
            Value::Array("s".into(), vec![])
        );
        for bad in [
            "",
            "uint64 -1",
            "'open",
            "[1, 'a']",
            "[]",
            "byte 300",
            "x y",
        ] {
            assert!(parse_gvariant(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn annotations_checked_like_runc() {
        let got = from_annotations([
            ("org.systemd.property.TimeoutStopSec", "2"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("org.systemd.property.TimeoutStopUSec", "uint64 5"),
            ("other", "x"),
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("TimeoutStopUSec".into(), Value::U64(2_000_000)),
                (
                    "CollectMode".into(),
                    Value::Str("inactive-or-failed".into())
                ),
                ("TimeoutStopUSec".into(), Value::U64(5)),
            ]
        );
        for (k, v) in [
            ("org.systemd.property.lower", "1"),
            ("org.systemd.property.Ab", "1"),
            ("org.systemd.property.Bad-Name", "1"),
            ("org.systemd.property.TimeoutStopSec", "'x'"),
            ("org.systemd.property.Foo", "nonsense value"),
        ] {
            let e = from_annotations([(k, v)]).unwrap_err().to_string();
            assert!(e.contains(k), "{e}");
        }
    }
}
