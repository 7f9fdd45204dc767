//! runc's naming rules for the systemd driver: `cgroupsPath` is `slice:prefix:name`; the
//! unit is `prefix-name.scope` (or `name` itself when it is a slice), placed in `slice`
//! (default `system.slice`); a slice name expands to its cgroup path (`a-b.slice` ->
//! `/a.slice/a-b.slice`, `-.slice` -> `/`).

use crate::error::SystemdError;

const SLICE: &str = ".slice";

/// Where a container's unit lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitPlace {
    /// The parent slice (`Slice=` of a scope, `Wants=` of a slice).
    pub slice: String,
    /// The unit's name: `prefix-name.scope`, or a `*.slice`.
    pub unit: String,
    /// The unit's cgroup path below the hierarchy root, e.g. `/system.slice/husk-x.scope`.
    pub cgroup: String,
}

impl UnitPlace {
    pub fn is_slice(&self) -> bool {
        self.unit.ends_with(SLICE)
    }
}

/// Resolves `cgroups_path` (None or empty: `:husk:<id>`) the way runc's systemd driver does;
/// an empty slice is `default_slice` (`system.slice`, or `user.slice` for a user's manager).
pub fn place(
    id: &str,
    cgroups_path: Option<&str>,
    default_slice: &str,
) -> Result<UnitPlace, SystemdError> {
    let (slice, prefix, name) = match cgroups_path.filter(|p| !p.is_empty()) {
        None => ("", "husk", id),
        Some(p) => {
            let parts: Vec<&str> = p.split(':').collect();
            let [slice, prefix, name] = parts[..] else {
                return Err(SystemdError::Config(format!(
                    "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {p:?} instead"
                )));
            };
            (slice, prefix, name)
        }
    };
    let slice = if slice.is_empty() {
        default_slice
    } else {
        slice
    };
    let name = if name.is_empty() { id } else { name };
    let unit = if name.ends_with(SLICE) {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    check_unit_name(&unit)?;
    let parent = expand_slice(slice)?;
    let cgroup = format!("{}/{unit}", parent.trim_end_matches('/'));
    Ok(UnitPlace {
        slice: slice.to_string(),
        unit,
        cgroup,
    })
}

/// systemd's unit name alphabet: ASCII letters, digits and `:-_.\`, at most 255 bytes.
fn check_unit_name(unit: &str) -> Result<(), SystemdError> {
    let ok = unit.len() <= 255
        && unit
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(SystemdError::Config(format!(
            "invalid systemd unit name {unit:?}"
        )))
    }
}

/// The cgroup path of a slice: `a-b.slice` -> `/a.slice/a-b.slice`, `-.slice` -> `/`.
pub fn expand_slice(slice: &str) -> Result<String, SystemdError> {
    let bad = |why: &str| SystemdError::Config(format!("invalid slice name {slice:?}: {why}"));
    let Some(base) = slice.strip_suffix(SLICE).filter(|b| !b.is_empty()) else {
        return Err(bad("must end with .slice"));
    };
    if slice.contains('/') {
        return Err(bad("must not contain '/'"));
    }
    if base == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for comp in base.split('-') {
        if comp.is_empty() {
            return Err(bad("empty component (leading, trailing or double '-')"));
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(comp);
        path.push_str(SLICE);
        prefix.push_str(comp);
        prefix.push('-');
    }
    check_unit_name(slice)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_like_runc() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in [
            ".slice",
            "a",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a/b.slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cgroups_path_forms() {
        let p = place("c1", Some("system.slice:docker:abc"), "system.slice").unwrap();
        assert_eq!(p.unit, "docker-abc.scope");
        assert_eq!(p.cgroup, "/system.slice/docker-abc.scope");
        let p = place("c1", Some(":crio:abc"), "system.slice").unwrap();
        assert_eq!(p.slice, "system.slice");
        let p = place("c1", None, "system.slice").unwrap();
        assert_eq!(p.unit, "husk-c1.scope");
        let p = place(
            "c1",
            Some("kubepods-besteffort.slice:cri-containerd:x"),
            "system.slice",
        )
        .unwrap();
        assert_eq!(
            p.cgroup,
            "/kubepods.slice/kubepods-besteffort.slice/cri-containerd-x.scope"
        );
        let p = place("c1", Some("-.slice:p:n"), "system.slice").unwrap();
        assert_eq!(p.cgroup, "/p-n.scope");
        let p = place("c1", Some("a.slice::a-b.slice"), "system.slice").unwrap();
        assert!(p.is_slice());
        assert_eq!(p.cgroup, "/a.slice/a-b.slice");
        assert!(place("c1", Some("/abs/path"), "system.slice").is_err());
        assert!(place("c1", Some("a:b:c:d"), "system.slice").is_err());
        assert!(place("c1", Some("bad:p:n"), "system.slice").is_err());
        assert!(place("c1", Some("system.slice:p:n/x"), "system.slice").is_err());
    }
}
