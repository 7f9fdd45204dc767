//! `HOME` for the container's process, as runc sets it: when `process.env` has no `HOME` (or
//! an empty one), the home directory of the process's uid in the container's `/etc/passwd`,
//! or `/` when there is no such entry.

use std::io::Read;
use std::os::fd::AsFd;

use oci_spec::runtime::Process;

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// `process` with `HOME` added from the passwd file under `root` (the container's root
/// directory), or `None` when its environment names a home already.
pub(crate) fn with_home(process: &Process, root: impl AsFd) -> Option<Process> {
    let env = process.env().clone().unwrap_or_default();
    let has_home = env
        .iter()
        .any(|e| e.strip_prefix("HOME=").is_some_and(|v| !v.is_empty()));
    if has_home {
        return None;
    }
    let home = passwd_home(root, process.user().uid()).unwrap_or_else(|| "/".into());
    let mut env: Vec<String> = env.into_iter().filter(|e| e != "HOME=").collect();
    env.push(format!("HOME={home}"));
    let mut p = process.clone();
    p.set_env(Some(env));
    Some(p)
}

/// The home directory of `uid` in `<root>/etc/passwd` (symlinks resolved inside the root).
fn passwd_home(root: impl AsFd, uid: u32) -> Option<String> {
    let fd = husk_sys::openat2(
        root,
        c"etc/passwd",
        (libc::O_RDONLY | libc::O_CLOEXEC) as u64,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
    .ok()?;
    let mut text = String::new();
    // A passwd file is small; a huge one (or a FIFO) is not read without end.
    std::fs::File::from(fd)
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    home_of(&text, uid)
}

fn home_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::home_of;

    #[test]
    fn home_from_the_uids_entry() {
        let pw = "root:x:0:0:root:/root:/bin/sh\n# comment\nbad\nu:x:1000:1000::/home/u:/bin/sh\n";
        assert_eq!(home_of(pw, 0).as_deref(), Some("/root"));
        assert_eq!(home_of(pw, 1000).as_deref(), Some("/home/u"));
        assert_eq!(home_of(pw, 7), None);
    }
}
