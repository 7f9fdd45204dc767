//! The D-Bus wire format (little-endian) for the few types systemd's manager API uses:
//! basic types, arrays, structs and variants. Messages are marshalled into one buffer and
//! read back from one; alignment is relative to the buffer start, which is how D-Bus defines
//! it as long as the body starts at an 8-byte boundary (the header is padded to one).

use crate::error::SystemdError;

/// A D-Bus value. Arrays carry their element signature, so an empty one still marshals.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Double(f64),
    Str(String),
    ObjectPath(String),
    Signature(String),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    /// This value's D-Bus type signature.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Double(_) => "d".into(),
            Value::Str(_) => "s".into(),
            Value::ObjectPath(_) => "o".into(),
            Value::Signature(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(v) => Some(*v),
            _ => None,
        }
    }
}

/// Alignment of the type starting with `c`.
fn align_of(c: u8) -> usize {
    match c {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' => 4,
        _ => 8, // x t d ( {
    }
}

/// A growing message buffer.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn pad(&mut self, align: usize) {
        while self.buf.len() % align != 0 {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn sig(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// Appends `v`, aligned for its type.
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I16(n) => self.fixed(2, &n.to_le_bytes()),
            Value::U16(n) => self.fixed(2, &n.to_le_bytes()),
            Value::I32(n) => self.fixed(4, &n.to_le_bytes()),
            Value::U32(n) => self.u32(*n),
            Value::I64(n) => self.fixed(8, &n.to_le_bytes()),
            Value::U64(n) => self.fixed(8, &n.to_le_bytes()),
            Value::Double(d) => self.fixed(8, &d.to_le_bytes()),
            Value::Str(s) | Value::ObjectPath(s) => self.string(s),
            Value::Signature(s) => self.sig(s),
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.pad(align_of(elem.as_bytes().first().copied().unwrap_or(b'y')));
                let start = self.buf.len();
                for item in items {
                    self.value(item);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.value(f);
                }
            }
            Value::Variant(inner) => {
                self.sig(&inner.signature());
                self.value(inner);
            }
        }
    }

    fn fixed(&mut self, align: usize, bytes: &[u8]) {
        self.pad(align);
        self.buf.extend_from_slice(bytes);
    }
}

/// Reads values of a known signature from a message buffer.
pub struct Reader<'a> {
    buf: &'a [u8],
    pub pos: usize,
}

fn short() -> SystemdError {
    SystemdError::Protocol("message truncated".into())
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], pos: usize) -> Reader<'a> {
        Reader { buf, pos }
    }

    pub fn align(&mut self, n: usize) {
        self.pos = self.pos.div_ceil(n) * n;
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SystemdError> {
        let end = self.pos.checked_add(n).ok_or_else(short)?;
        let s = self.buf.get(self.pos..end).ok_or_else(short)?;
        self.pos = end;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], SystemdError> {
        self.align(N);
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn u32(&mut self) -> Result<u32, SystemdError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }

    fn text(&mut self, len: usize) -> Result<String, SystemdError> {
        let bytes = self.take(len + 1)?;
        String::from_utf8(bytes[..len].to_vec())
            .map_err(|_| SystemdError::Protocol("string is not UTF-8".into()))
    }

    /// Reads every complete type of `sig` in turn.
    pub fn values(&mut self, sig: &str) -> Result<Vec<Value>, SystemdError> {
        let mut out = Vec::new();
        let mut rest = sig;
        while !rest.is_empty() {
            let (one, tail) = split_type(rest)?;
            out.push(self.value(one)?);
            rest = tail;
        }
        Ok(out)
    }

    /// Reads one value of the single complete type `sig`.
    pub fn value(&mut self, sig: &str) -> Result<Value, SystemdError> {
        let c = sig.as_bytes()[0];
        Ok(match c {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'n' => Value::I16(i16::from_le_bytes(self.arr()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.arr()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.arr()?)),
            b'u' | b'h' => Value::U32(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.arr()?)),
            b't' => Value::U64(u64::from_le_bytes(self.arr()?)),
            b'd' => Value::Double(f64::from_le_bytes(self.arr()?)),
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.text(len)?;
                if c == b's' {
                    Value::Str(s)
                } else {
                    Value::ObjectPath(s)
                }
            }
            b'g' => {
                let len = self.take(1)?[0] as usize;
                Value::Signature(self.text(len)?)
            }
            b'v' => {
                let len = self.take(1)?[0] as usize;
                let inner = self.text(len)?;
                split_type(&inner)?;
                Value::Variant(Box::new(self.value(&inner)?))
            }
            b'a' => {
                let elem = &sig[1..];
                let len = self.u32()? as usize;
                self.align(align_of(elem.as_bytes()[0]));
                let end = self.pos.checked_add(len).ok_or_else(short)?;
                if end > self.buf.len() {
                    return Err(short());
                }
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(elem)?);
                }
                Value::Array(elem.to_string(), items)
            }
            b'(' | b'{' => {
                self.align(8);
                Value::Struct(self.values(&sig[1..sig.len() - 1])?)
            }
            other => {
                return Err(SystemdError::Protocol(format!(
                    "unsupported type {:?}",
                    other as char
                )))
            }
        })
    }
}

/// Splits the first complete type off a signature: "a(sv)s" -> ("a(sv)", "s").
pub fn split_type(sig: &str) -> Result<(&str, &str), SystemdError> {
    let b = sig.as_bytes();
    let bad = || SystemdError::Protocol(format!("bad signature {sig:?}"));
    let mut i = 0;
    while b.get(i) == Some(&b'a') {
        i += 1;
    }
    match b.get(i).ok_or_else(bad)? {
        b'(' | b'{' => {
            let mut depth = 0;
            loop {
                match b.get(i).ok_or_else(bad)? {
                    b'(' | b'{' => depth += 1,
                    b')' | b'}' => depth -= 1,
                    _ => {}
                }
                i += 1;
                if depth == 0 {
                    break;
                }
            }
        }
        b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b's' | b'o' | b'g'
        | b'v' | b'h' => i += 1,
        _ => return Err(bad()),
    }
    Ok((&sig[..i], &sig[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_nested() {
        let props = Value::Array(
            "(sv)".into(),
            vec![
                Value::Struct(vec![
                    Value::Str("PIDs".into()),
                    Value::Variant(Box::new(Value::Array("u".into(), vec![Value::U32(42)]))),
                ]),
                Value::Struct(vec![
                    Value::Str("MemoryMax".into()),
                    Value::Variant(Box::new(Value::U64(1 << 30))),
                ]),
            ],
        );
        let mut w = Writer::default();
        w.value(&Value::Str("x.scope".into()));
        w.value(&props);
        w.value(&Value::Array("(sa(sv))".into(), vec![]));
        let mut r = Reader::new(&w.buf, 0);
        let got = r.values("sa(sv)a(sa(sv))").unwrap();
        assert_eq!(got[1], props);
        assert_eq!(r.pos, w.buf.len());
    }

    #[test]
    fn signatures_split() {
        assert_eq!(split_type("a(sv)s").unwrap(), ("a(sv)", "s"));
        assert_eq!(split_type("uoss").unwrap(), ("u", "oss"));
        assert!(split_type("(s").is_err());
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut w = Writer::default();
        w.value(&Value::Str("hello".into()));
        let mut r = Reader::new(&w.buf[..6], 0);
        assert!(r.value("s").is_err());
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0x7f], 0);
        assert!(r.value("ay").is_err());
    }
}
