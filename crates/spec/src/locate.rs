//! Which field of a JSON document a byte offset falls in.
//!
//! serde_json reports a data error (a wrong type, an unknown enum variant, a missing field) with
//! the position where it noticed: just past the offending value, or just past the `}` of an
//! object that lacks a field. [`path_at`] walks the raw document and returns the path of the
//! innermost value whose extent contains that position, so the error can name the field.
//!
//! The walk is plain code over bytes, the same for every document type; a second, generic parse
//! that tracks the path would duplicate the whole config deserializer in the binary. It is
//! lenient: it stops quietly at the first byte that is not JSON, and values still open at that
//! point (a truncated document) extend to the end.

/// One step of a path: an object member or an array element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// The byte offset of serde_json's (1-based line, column) position: `column` bytes past the
/// start of the line, which is the number of bytes of that line consumed so far.
pub(crate) fn offset_of(doc: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match doc[start..].iter().position(|&b| b == b'\n') {
            Some(nl) => start += nl + 1,
            None => return doc.len(),
        }
    }
    (start + column).min(doc.len())
}

/// The path of the innermost value of `doc` whose extent `[start, end]` contains `offset`
/// (empty for the top-level value, or when no value contains it).
pub(crate) fn path_at(doc: &[u8], offset: usize) -> Vec<Seg> {
    let mut walk = Walk {
        doc,
        offset,
        open: Vec::new(),
        best: None,
    };
    walk.run();
    // Whatever is still open (a truncated document) reaches to the end.
    while let Some(container) = walk.open.pop() {
        walk.finished(container.seg, container.start, usize::MAX);
    }
    walk.best.map(|(_, path)| path).unwrap_or_default()
}

/// An object or array that has started and not yet ended.
struct Open {
    start: usize,
    /// Its place in its parent (`None` for the top-level value).
    seg: Option<Seg>,
    array: bool,
    /// The index the next element of an array will have.
    next: usize,
}

/// What the walk expects next.
#[derive(Clone, Copy)]
enum Expect {
    Value,
    /// Just after `[`: a value or `]`.
    ValueOrEnd,
    /// Just after `{`: a member name or `}`.
    KeyOrEnd,
    /// After a `,` in an object.
    Key,
    /// `,` or the end of the enclosing container.
    Separator,
}

struct Walk<'a> {
    doc: &'a [u8],
    offset: usize,
    open: Vec<Open>,
    /// Depth and path of the innermost value found so far that contains `offset`.
    best: Option<(usize, Vec<Seg>)>,
}

impl Walk<'_> {
    fn run(&mut self) {
        let doc = self.doc;
        let mut i = 0;
        let mut expect = Expect::Value;
        let mut key: Option<Seg> = None;
        loop {
            while i < doc.len() && doc[i].is_ascii_whitespace() {
                i += 1;
            }
            let Some(&c) = doc.get(i) else { return };
            match expect {
                Expect::ValueOrEnd if c == b']' => i = self.close(i),
                Expect::KeyOrEnd if c == b'}' => i = self.close(i),
                Expect::Value | Expect::ValueOrEnd => {
                    let seg = match self.open.last_mut() {
                        Some(array) if array.array => {
                            array.next += 1;
                            Some(Seg::Index(array.next - 1))
                        }
                        Some(_) => key.take(),
                        None => None,
                    };
                    match c {
                        b'{' | b'[' => {
                            let array = c == b'[';
                            let start = i;
                            self.open.push(Open {
                                start,
                                seg,
                                array,
                                next: 0,
                            });
                            i += 1;
                            expect = if array {
                                Expect::ValueOrEnd
                            } else {
                                Expect::KeyOrEnd
                            };
                            continue;
                        }
                        b'"' => {
                            let Some(end) = string_end(doc, i) else {
                                return;
                            };
                            self.finished(seg, i, end);
                            i = end;
                        }
                        _ => {
                            let end = i + doc[i..]
                                .iter()
                                .position(|b| b",]}".contains(b) || b.is_ascii_whitespace())
                                .unwrap_or(doc.len() - i);
                            if end == i {
                                return;
                            }
                            self.finished(seg, i, end);
                            i = end;
                        }
                    }
                }
                Expect::KeyOrEnd | Expect::Key => {
                    let Some(end) = (c == b'"').then(|| string_end(doc, i)).flatten() else {
                        return;
                    };
                    let raw = &doc[i..end];
                    let name = serde_json::from_slice::<String>(raw)
                        .unwrap_or_else(|_| String::from_utf8_lossy(&raw[1..raw.len() - 1]).into());
                    i = end;
                    while i < doc.len() && doc[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    if doc.get(i) != Some(&b':') {
                        return;
                    }
                    i += 1;
                    key = Some(Seg::Key(name));
                    expect = Expect::Value;
                    continue;
                }
                Expect::Separator => {
                    let Some(top) = self.open.last() else { return };
                    match (c, top.array) {
                        (b',', true) => expect = Expect::Value,
                        (b',', false) => expect = Expect::Key,
                        (b']', true) | (b'}', false) => {
                            i = self.close(i);
                            continue;
                        }
                        _ => return,
                    }
                    i += 1;
                    continue;
                }
            }
            expect = Expect::Separator;
        }
    }

    /// Ends the innermost open container at its closing byte `i`; returns the next offset.
    fn close(&mut self, i: usize) -> usize {
        if let Some(container) = self.open.pop() {
            self.finished(container.seg, container.start, i + 1);
        }
        i + 1
    }

    /// A value at `seg` (within the open containers) spans `start..end`: keep its path if it
    /// contains the offset and is deeper than what was found so far.
    fn finished(&mut self, seg: Option<Seg>, start: usize, end: usize) {
        if !(start <= self.offset && self.offset <= end) {
            return;
        }
        let depth = self.open.len() + usize::from(seg.is_some());
        if self.best.as_ref().is_some_and(|(d, _)| *d >= depth) {
            return;
        }
        let path = self.open.iter().filter_map(|o| o.seg.clone()).chain(seg);
        self.best = Some((depth, path.collect()));
    }
}

/// The offset just past the string starting with the `"` at `start` (None if unterminated).
fn string_end(doc: &[u8], start: usize) -> Option<usize> {
    let mut j = start + 1;
    while j < doc.len() {
        match doc[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(doc: &str, offset: usize) -> String {
        path_at(doc.as_bytes(), offset)
            .iter()
            .map(|s| match s {
                Seg::Key(k) => format!(".{k}"),
                Seg::Index(n) => format!("[{n}]"),
            })
            .collect()
    }

    #[test]
    fn the_innermost_value_ending_at_the_offset_is_named() {
        let doc = r#"{"a": {"b": [1, "x", {"c": true}]}, "d": null}"#;
        let end_of = |needle: &str| doc.find(needle).unwrap() + needle.len();
        assert_eq!(at(doc, end_of("1")), ".a.b[0]");
        assert_eq!(at(doc, end_of(r#""x""#)), ".a.b[1]");
        assert_eq!(at(doc, end_of("true")), ".a.b[2].c");
        assert_eq!(
            at(doc, end_of("true}")),
            ".a.b[2]",
            "a missing field of the object"
        );
        assert_eq!(at(doc, end_of("]")), ".a.b");
        assert_eq!(at(doc, end_of("null")), ".d");
        assert_eq!(at(doc, doc.len()), "", "the top-level object");
    }

    #[test]
    fn escaped_keys_and_strings() {
        let doc = r#"{"a\"b\n": "q\"}", "z": 1}"#;
        let end = doc.find(r#"q\"}""#).unwrap() + 5;
        assert_eq!(at(doc, end), ".a\"b\n");
        assert_eq!(at(doc, doc.len() - 1), ".z");
    }

    #[test]
    fn a_truncated_document_still_has_a_path() {
        let doc = r#"{"rlimits":[{"type":"\n""#;
        assert_eq!(at(doc, doc.len()), ".rlimits[0].type");
        assert_eq!(at("{\"a\": [1, 2", 11), ".a[1]");
        assert_eq!(at("{\"a\": ?", 7), ".a", "a bad token still has a place");
    }

    #[test]
    fn serde_json_positions_map_to_offsets() {
        let doc = b"{\n  \"a\": 1,\n  \"b\": x\n}";
        assert_eq!(offset_of(doc, 1, 1), 1);
        assert_eq!(offset_of(doc, 2, 8), 10);
        assert_eq!(offset_of(doc, 3, 0), 12);
        assert_eq!(offset_of(doc, 9, 0), doc.len());
    }
}
