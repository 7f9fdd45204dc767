//! Translation of OCI mount `options` into mount(2) flags, mount_setattr(2) attributes and a
//! data string — done once in the parent.

use husk_sys::mount::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

pub const MOUNT_ATTR_RELATIME: u64 = 0x00;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;
/// mount(2)'s MS_NOSYMFOLLOW (Linux 5.10).
pub const MS_NOSYMFOLLOW: libc::c_ulong = 256;

/// Every option husk gives meaning to (anything else goes to the filesystem as data).
pub const KNOWN_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
];

/// The parsed form of one mount's options.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Options {
    /// `MS_*` flags for mount(2) (without MS_BIND/MS_REC and propagation).
    pub flags: libc::c_ulong,
    /// Flags explicitly cleared (`rw`, `suid`, ...), for bind mounts' mount_setattr.
    pub cleared: libc::c_ulong,
    /// `bind` or `rbind` seen.
    pub bind: bool,
    /// `rbind`.
    pub recursive: bool,
    /// Propagation (`MS_SHARED`, `MS_SLAVE`, ... with `MS_REC` for the r* forms), 0 if none.
    pub propagation: libc::c_ulong,
    /// Recursive attributes (`rro`, `rnosuid`, ...) as mount_setattr set/clear masks.
    pub rec_set: u64,
    pub rec_clr: u64,
    /// Everything else, comma-joined, for the filesystem (`mode=755`, `size=65536k`, ...).
    pub data: String,
    /// `tmpcopyup`: a tmpfs that starts with a copy of what the image has there.
    pub tmpcopyup: bool,
    /// `idmap` (`Some(false)`) or `ridmap` (`Some(true)`, every mount of the tree).
    pub idmap: Option<bool>,
}

impl Options {
    pub fn parse<S: AsRef<str>>(opts: &[S]) -> Options {
        let mut o = Options::default();
        for opt in opts {
            let opt = opt.as_ref();
            if let Some((set, flag)) = flag_of(opt) {
                if set {
                    o.flags |= flag;
                    o.cleared &= !flag;
                } else {
                    o.flags &= !flag;
                    o.cleared |= flag;
                }
                continue;
            }
            if let Some(p) = propagation_of(opt) {
                o.propagation = p;
                continue;
            }
            if let Some(atime) = recursive_atime_of(opt) {
                // The kernel takes an atime mode only with the whole atime mask cleared.
                o.rec_set = (o.rec_set & !MOUNT_ATTR_ATIME_MASK) | atime;
                o.rec_clr |= MOUNT_ATTR_ATIME_MASK;
                continue;
            }
            if let Some((set, attr)) = recursive_attr_of(opt) {
                if set {
                    o.rec_set |= attr;
                    o.rec_clr &= !attr;
                } else {
                    o.rec_clr |= attr;
                    o.rec_set &= !attr;
                }
                continue;
            }
            match opt {
                "bind" => o.bind = true,
                "tmpcopyup" => o.tmpcopyup = true,
                "idmap" => o.idmap = Some(false),
                "ridmap" => o.idmap = Some(true),
                "rbind" => {
                    o.bind = true;
                    o.recursive = true;
                }
                // Handled elsewhere or meaningless for the kernel.
                "defaults" | "" => {}
                _ => {
                    if !o.data.is_empty() {
                        o.data.push(',');
                    }
                    o.data.push_str(opt);
                }
            }
        }
        o
    }

    /// mount_setattr(2) set/clear masks equivalent to `flags`/`cleared`, for bind mounts.
    pub fn attrs(&self) -> (u64, u64) {
        let mut set = 0;
        let mut clr = 0;
        for (ms, attr) in [
            (libc::MS_RDONLY, MOUNT_ATTR_RDONLY),
            (libc::MS_NOSUID, MOUNT_ATTR_NOSUID),
            (libc::MS_NODEV, MOUNT_ATTR_NODEV),
            (libc::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
            (libc::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
            (MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW),
        ] {
            if self.flags & ms != 0 {
                set |= attr;
            } else if self.cleared & ms != 0 {
                clr |= attr;
            }
        }
        if self.flags & libc::MS_NOATIME != 0 {
            set |= MOUNT_ATTR_NOATIME;
            clr |= MOUNT_ATTR_ATIME_MASK;
        } else if self.flags & libc::MS_STRICTATIME != 0 {
            set |= MOUNT_ATTR_STRICTATIME;
            clr |= MOUNT_ATTR_ATIME_MASK;
        } else if self.flags & libc::MS_RELATIME != 0 {
            set |= MOUNT_ATTR_RELATIME;
            clr |= MOUNT_ATTR_ATIME_MASK;
        }
        (set, clr)
    }
}

fn flag_of(opt: &str) -> Option<(bool, libc::c_ulong)> {
    Some(match opt {
        "ro" => (true, libc::MS_RDONLY),
        "rw" => (false, libc::MS_RDONLY),
        "nosuid" => (true, libc::MS_NOSUID),
        "suid" => (false, libc::MS_NOSUID),
        "nodev" => (true, libc::MS_NODEV),
        "dev" => (false, libc::MS_NODEV),
        "noexec" => (true, libc::MS_NOEXEC),
        "exec" => (false, libc::MS_NOEXEC),
        "sync" => (true, libc::MS_SYNCHRONOUS),
        "async" => (false, libc::MS_SYNCHRONOUS),
        "dirsync" => (true, libc::MS_DIRSYNC),
        "remount" => (true, libc::MS_REMOUNT),
        "mand" => (true, libc::MS_MANDLOCK),
        "nomand" => (false, libc::MS_MANDLOCK),
        "nosymfollow" => (true, MS_NOSYMFOLLOW),
        "symfollow" => (false, MS_NOSYMFOLLOW),
        "noatime" => (true, libc::MS_NOATIME),
        "atime" => (false, libc::MS_NOATIME),
        "nodiratime" => (true, libc::MS_NODIRATIME),
        "diratime" => (false, libc::MS_NODIRATIME),
        "relatime" => (true, libc::MS_RELATIME),
        "norelatime" => (false, libc::MS_RELATIME),
        "strictatime" => (true, libc::MS_STRICTATIME),
        "nostrictatime" => (false, libc::MS_STRICTATIME),
        "lazytime" => (true, libc::MS_LAZYTIME),
        "nolazytime" => (false, libc::MS_LAZYTIME),
        "silent" => (true, libc::MS_SILENT),
        "loud" => (false, libc::MS_SILENT),
        "iversion" => (true, libc::MS_I_VERSION),
        "noiversion" => (false, libc::MS_I_VERSION),
        _ => return None,
    })
}

/// `private`, `rshared`, ... as mount(2) propagation flags; also used for `rootfsPropagation`.
pub fn propagation_of(opt: &str) -> Option<libc::c_ulong> {
    Some(match opt {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

fn recursive_attr_of(opt: &str) -> Option<(bool, u64)> {
    Some(match opt {
        "rro" => (true, MOUNT_ATTR_RDONLY),
        "rrw" => (false, MOUNT_ATTR_RDONLY),
        "rnosuid" => (true, MOUNT_ATTR_NOSUID),
        "rsuid" => (false, MOUNT_ATTR_NOSUID),
        "rnodev" => (true, MOUNT_ATTR_NODEV),
        "rdev" => (false, MOUNT_ATTR_NODEV),
        "rnoexec" => (true, MOUNT_ATTR_NOEXEC),
        "rexec" => (false, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (true, MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (false, MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => (true, MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (false, MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// The recursive atime modes: one value of the atime field, not a bit of their own.
fn recursive_atime_of(opt: &str) -> Option<u64> {
    Some(match opt {
        "rnoatime" => MOUNT_ATTR_NOATIME,
        "rstrictatime" => MOUNT_ATTR_STRICTATIME,
        "rrelatime" | "ratime" => MOUNT_ATTR_RELATIME,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runc_default_mounts() {
        let o = Options::parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.bind);
        let o = Options::parse(&["rbind", "ro", "rprivate"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, libc::MS_RDONLY);
        assert_eq!(o.propagation, libc::MS_PRIVATE | libc::MS_REC);
        assert_eq!(o.attrs(), (MOUNT_ATTR_RDONLY, 0));
    }

    #[test]
    fn known_options_are_all_understood() {
        for opt in KNOWN_OPTIONS {
            let o = Options::parse(&[opt]);
            assert!(o.data.is_empty(), "{opt} would be passed to the filesystem");
        }
    }

    #[test]
    fn recursive_atime_and_symfollow() {
        let o = Options::parse(&["rnoatime"]);
        assert_eq!(
            (o.rec_set, o.rec_clr),
            (MOUNT_ATTR_NOATIME, MOUNT_ATTR_ATIME_MASK)
        );
        let o = Options::parse(&["rnoatime", "rrelatime", "rnosymfollow"]);
        assert_eq!(
            (o.rec_set, o.rec_clr),
            (MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_ATIME_MASK)
        );
        let o = Options::parse(&["nosymfollow"]);
        assert_eq!(o.flags, MS_NOSYMFOLLOW);
        assert_eq!(o.attrs(), (MOUNT_ATTR_NOSYMFOLLOW, 0));
    }

    #[test]
    fn later_options_win() {
        let o = Options::parse(&["ro", "rw", "noexec", "exec"]);
        assert_eq!(o.flags, 0);
        assert_eq!(o.attrs(), (0, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOEXEC));
        let o = Options::parse(&["rro", "rnosuid"]);
        assert_eq!(
            (o.rec_set, o.rec_clr),
            (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0)
        );
    }
}
