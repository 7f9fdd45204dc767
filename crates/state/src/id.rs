use crate::{Result, StateError};

/// Longest accepted id: the id names a directory in the state root and in every cgroup
/// hierarchy, so it must fit in one file name (NAME_MAX, 255 bytes). runc has no explicit
/// check and fails later with "file name too long"; husk says so before touching anything.
pub const MAX_ID_LEN: usize = 255;

/// Checks an id the way runc does: letters, digits and `_ + - .`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(StateError::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > MAX_ID_LEN {
        return bad("it is longer than 255 bytes, the limit of a file name");
    }
    if id == "." || id == ".." {
        return bad("it is a path component");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        return bad("only letters, digits and _ + - . are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_ids() {
        for id in [
            "a",
            "test-1",
            "0123456789abcdef",
            "k8s_pod.x+y",
            &"y".repeat(255),
        ] {
            validate_id(id).unwrap();
        }
    }

    #[test]
    fn rejects_paths_and_junk() {
        for id in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a b",
            "é",
            &"x".repeat(256),
            &"x".repeat(1025),
        ] {
            assert!(validate_id(id).is_err(), "{id:?} accepted");
        }
    }
}
