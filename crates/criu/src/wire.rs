//! The few pieces of the protobuf wire format CRIU's RPC needs: varints and length-delimited
//! fields to encode a request, and a field iterator to decode a response (unknown fields are
//! skipped, as protobuf requires).

/// Wire types.
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

#[derive(Default)]
pub(crate) struct Enc(pub Vec<u8>);

impl Enc {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }
    /// int32/enum (negative values are sign-extended to 10 bytes, as protobuf does).
    pub fn int32(&mut self, field: u32, v: i32) {
        self.key(field, VARINT);
        self.varint(i64::from(v) as u64);
    }
    pub fn uint32(&mut self, field: u32, v: u32) {
        self.key(field, VARINT);
        self.varint(u64::from(v));
    }
    pub fn bool(&mut self, field: u32, v: bool) {
        self.key(field, VARINT);
        self.varint(u64::from(v));
    }
    pub fn bytes(&mut self, field: u32, v: &[u8]) {
        self.key(field, LEN);
        self.varint(v.len() as u64);
        self.0.extend_from_slice(v);
    }
    pub fn string(&mut self, field: u32, v: &str) {
        self.bytes(field, v.as_bytes());
    }
    /// A nested message, encoded by `f`.
    pub fn message(&mut self, field: u32, f: impl FnOnce(&mut Enc)) {
        let mut inner = Enc::default();
        f(&mut inner);
        self.bytes(field, &inner.0);
    }
}

/// One decoded field.
#[derive(Debug, PartialEq)]
pub(crate) enum Val<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

impl<'a> Val<'a> {
    pub fn int(&self) -> Option<i64> {
        match self {
            Val::Varint(v) => Some(*v as i64),
            Val::Bytes(_) => None,
        }
    }
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Val::Bytes(b) => Some(b),
            Val::Varint(_) => None,
        }
    }
}

/// Iterates over `(field number, value)`; `Err` on malformed input.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
}

pub(crate) fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf }
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.buf.split_first().ok_or("truncated varint")?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long")
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.buf.len() < n {
            return Err("truncated field");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn next_field(&mut self) -> Result<(u32, Option<Val<'a>>), &'static str> {
        let key = self.varint()?;
        let field = (key >> 3) as u32;
        let val = match (key & 7) as u8 {
            VARINT => Some(Val::Varint(self.varint()?)),
            LEN => {
                let n = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
                Some(Val::Bytes(self.take(n)?))
            }
            I64 => self.take(8).map(|_| None)?,
            I32 => self.take(4).map(|_| None)?,
            _ => return Err("unsupported wire type"),
        };
        Ok((field, val))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Val<'a>), &'static str>;
    fn next(&mut self) -> Option<Self::Item> {
        while !self.buf.is_empty() {
            match self.next_field() {
                Ok((f, Some(v))) => return Some(Ok((f, v))),
                Ok((_, None)) => continue,
                Err(e) => {
                    self.buf = &[];
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut e = Enc::default();
        e.int32(1, 150);
        e.int32(2, -1);
        e.string(3, "hi");
        e.message(4, |m| m.bool(1, true));
        // 150 is the protobuf documentation's example: 08 96 01
        assert_eq!(&e.0[..3], &[0x08, 0x96, 0x01]);
        let got: Vec<_> = fields(&e.0).collect::<Result<_, _>>().unwrap();
        assert_eq!(got[0], (1, Val::Varint(150)));
        assert_eq!(got[1].1.int().map(|v| v as i32), Some(-1));
        assert_eq!(got[2], (3, Val::Bytes(b"hi")));
        let inner: Vec<_> = fields(got[3].1.bytes().unwrap())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(inner, vec![(1, Val::Varint(1))]);
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(fields(&[0x0a, 0x05, b'a']).any(|r| r.is_err()));
        assert!(fields(&[0x80]).any(|r| r.is_err()));
    }
}
