//! CRIU's RPC messages (`images/rpc.proto` in CRIU's sources): the subset husk sends and reads,
//! with CRIU's field numbers.

use crate::wire::{fields, Enc, Val};

/// `criu_req_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqType {
    Dump = 1,
    Restore = 2,
    PreDump = 4,
    Notify = 6,
    FeatureCheck = 9,
    Version = 10,
}

impl ReqType {
    fn from_i64(v: i64) -> Option<ReqType> {
        Some(match v {
            1 => ReqType::Dump,
            2 => ReqType::Restore,
            4 => ReqType::PreDump,
            6 => ReqType::Notify,
            9 => ReqType::FeatureCheck,
            10 => ReqType::Version,
            _ => return None,
        })
    }
}

/// `criu_cg_mode`: how CRIU treats the cgroups it finds (runc's `--manage-cgroups-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgMode {
    Ignore = 0,
    Soft = 3,
    Full = 4,
    Strict = 5,
    Default = 6,
}

impl CgMode {
    /// runc's names; the empty string is CRIU's default (soft).
    pub fn parse(s: &str) -> Option<CgMode> {
        Some(match s {
            "" => CgMode::Default,
            "soft" => CgMode::Soft,
            "full" => CgMode::Full,
            "strict" => CgMode::Strict,
            "ignore" => CgMode::Ignore,
            _ => return None,
        })
    }
}

/// `criu_opts`: every option husk uses. Booleans are sent only when true.
#[derive(Debug, Default, Clone)]
pub struct Opts {
    pub images_dir_fd: i32,
    pub pid: Option<i32>,
    pub leave_running: bool,
    pub ext_unix_sk: bool,
    pub tcp_established: bool,
    pub evasive_devices: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub log_level: Option<i32>,
    pub log_file: Option<String>,
    /// Page server `(address, port)`.
    pub page_server: Option<(String, i32)>,
    pub notify_scripts: bool,
    pub root: Option<String>,
    pub parent_img: Option<String>,
    pub track_mem: bool,
    pub auto_dedup: bool,
    pub work_dir_fd: Option<i32>,
    pub link_remap: bool,
    /// External mounts: `(key, value)`; on dump mountpoint -> name, on restore name -> source.
    pub ext_mnt: Vec<(String, String)>,
    pub manage_cgroups: bool,
    /// `(controller, path)`; no controller means every one.
    pub cg_root: Vec<(Option<String>, String)>,
    pub rst_sibling: bool,
    /// `(key, fd)`: a descriptor of the `criu swrk` process standing in for an external file.
    pub inherit_fd: Vec<(String, i32)>,
    pub manage_cgroups_mode: Option<CgMode>,
    pub external: Vec<String>,
    pub empty_ns: Option<u32>,
    /// `(namespace, file)`.
    pub join_ns: Vec<(String, String)>,
    pub freeze_cgroup: Option<String>,
    pub tcp_skip_in_flight: bool,
    pub lazy_pages: bool,
    pub status_fd: Option<i32>,
    pub orphan_pts_master: bool,
    pub config_file: Option<String>,
}

impl Opts {
    fn encode(&self, e: &mut Enc) {
        e.int32(1, self.images_dir_fd);
        if let Some(pid) = self.pid {
            e.int32(2, pid);
        }
        for (field, on) in [
            (3, self.leave_running),
            (4, self.ext_unix_sk),
            (5, self.tcp_established),
            (6, self.evasive_devices),
            (7, self.shell_job),
            (8, self.file_locks),
        ] {
            if on {
                e.bool(field, true);
            }
        }
        if let Some(l) = self.log_level {
            e.int32(9, l);
        }
        if let Some(f) = &self.log_file {
            e.string(10, f);
        }
        if let Some((addr, port)) = &self.page_server {
            e.message(11, |m| {
                m.string(1, addr);
                m.int32(2, *port);
            });
        }
        if self.notify_scripts {
            e.bool(12, true);
        }
        if let Some(r) = &self.root {
            e.string(13, r);
        }
        if let Some(p) = &self.parent_img {
            e.string(14, p);
        }
        if self.track_mem {
            e.bool(15, true);
        }
        if self.auto_dedup {
            e.bool(16, true);
        }
        if let Some(fd) = self.work_dir_fd {
            e.int32(17, fd);
        }
        if self.link_remap {
            e.bool(18, true);
        }
        for (k, v) in &self.ext_mnt {
            e.message(23, |m| {
                m.string(1, k);
                m.string(2, v);
            });
        }
        if self.manage_cgroups {
            e.bool(24, true);
        }
        for (ctrl, path) in &self.cg_root {
            e.message(25, |m| {
                if let Some(c) = ctrl {
                    m.string(1, c);
                }
                m.string(2, path);
            });
        }
        if self.rst_sibling {
            e.bool(26, true);
        }
        for (k, fd) in &self.inherit_fd {
            e.message(27, |m| {
                m.string(1, k);
                m.int32(2, *fd);
            });
        }
        if let Some(mode) = self.manage_cgroups_mode {
            e.int32(34, mode as i32);
        }
        for x in &self.external {
            e.string(37, x);
        }
        if let Some(ns) = self.empty_ns {
            e.uint32(38, ns);
        }
        for (ns, file) in &self.join_ns {
            e.message(39, |m| {
                m.string(1, ns);
                m.string(2, file);
            });
        }
        if let Some(cg) = &self.freeze_cgroup {
            e.string(44, cg);
        }
        if self.tcp_skip_in_flight {
            e.bool(46, true);
        }
        if self.lazy_pages {
            e.bool(48, true);
        }
        if let Some(fd) = self.status_fd {
            e.int32(49, fd);
        }
        if self.orphan_pts_master {
            e.bool(50, true);
        }
        if let Some(c) = &self.config_file {
            e.string(51, c);
        }
    }
}

/// `criu_features`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub mem_track: bool,
    pub lazy_pages: bool,
}

/// A `criu_req`.
pub(crate) enum Req<'a> {
    /// Dump, pre-dump or restore.
    Run(ReqType, &'a Opts),
    NotifyDone,
    FeatureCheck(Features),
    Version,
}

impl Req<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        match self {
            Req::Run(t, opts) => {
                e.int32(1, *t as i32);
                e.message(2, |m| opts.encode(m));
            }
            Req::NotifyDone => {
                e.int32(1, ReqType::Notify as i32);
                e.bool(3, true);
            }
            Req::FeatureCheck(f) => {
                e.int32(1, ReqType::FeatureCheck as i32);
                e.message(5, |m| {
                    if f.mem_track {
                        m.bool(1, true);
                    }
                    if f.lazy_pages {
                        m.bool(2, true);
                    }
                });
            }
            Req::Version => e.int32(1, ReqType::Version as i32),
        }
        e.0
    }
}

/// A decoded `criu_resp`.
#[derive(Debug, Default)]
pub struct Resp {
    pub kind: Option<ReqType>,
    pub success: bool,
    /// `restore.pid`: the restored init.
    pub restored_pid: Option<i32>,
    /// `notify.script` and `notify.pid`.
    pub notify: Option<(String, i32)>,
    pub cr_errno: Option<i32>,
    pub cr_errmsg: Option<String>,
    pub features: Option<Features>,
    /// major*10000 + minor*100 + sublevel, as runc compares them.
    pub version: Option<u32>,
}

fn sub<'a>(v: &Val<'a>) -> Result<Vec<(u32, Val<'a>)>, &'static str> {
    fields(v.bytes().ok_or("expected a message")?).collect()
}

fn int(v: &Val<'_>) -> Result<i64, &'static str> {
    v.int().ok_or("expected a number")
}

fn string(v: &Val<'_>) -> Result<String, &'static str> {
    Ok(String::from_utf8_lossy(v.bytes().ok_or("expected a string")?).into_owned())
}

impl Resp {
    pub fn decode(buf: &[u8]) -> Result<Resp, &'static str> {
        let mut r = Resp::default();
        for f in fields(buf) {
            let (n, v) = f?;
            match n {
                1 => r.kind = ReqType::from_i64(int(&v)?),
                2 => r.success = int(&v)? != 0,
                4 => {
                    for (n, v) in sub(&v)? {
                        if n == 1 {
                            r.restored_pid = Some(int(&v)? as i32);
                        }
                    }
                }
                5 => {
                    let (mut script, mut pid) = (String::new(), 0);
                    for (n, v) in sub(&v)? {
                        match n {
                            1 => script = string(&v)?,
                            2 => pid = int(&v)? as i32,
                            _ => {}
                        }
                    }
                    r.notify = Some((script, pid));
                }
                7 => r.cr_errno = Some(int(&v)? as i32),
                8 => {
                    let mut f = Features::default();
                    for (n, v) in sub(&v)? {
                        match n {
                            1 => f.mem_track = int(&v)? != 0,
                            2 => f.lazy_pages = int(&v)? != 0,
                            _ => {}
                        }
                    }
                    r.features = Some(f);
                }
                9 => r.cr_errmsg = Some(string(&v)?),
                10 => {
                    let (mut major, mut minor, mut sublevel) = (0, 0, 0);
                    for (n, v) in sub(&v)? {
                        match n {
                            1 => major = int(&v)? as u32,
                            2 => minor = int(&v)? as u32,
                            4 => sublevel = int(&v)? as u32,
                            _ => {}
                        }
                    }
                    r.version = Some(major * 10000 + minor * 100 + sublevel);
                }
                _ => {}
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_fields_use_criu_numbers() {
        let opts = Opts {
            images_dir_fd: 5,
            pid: Some(42),
            leave_running: true,
            ext_mnt: vec![("/a".into(), "/b".into())],
            manage_cgroups_mode: Some(CgMode::Soft),
            ..Opts::default()
        };
        let buf = Req::Run(ReqType::Dump, &opts).encode();
        let top: Vec<_> = fields(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(top[0], (1, Val::Varint(1)));
        let o: Vec<_> = sub(&top[1].1).unwrap();
        let nums: Vec<u32> = o.iter().map(|(n, _)| *n).collect();
        assert_eq!(nums, vec![1, 2, 3, 23, 34]);
        assert_eq!(o[4].1, Val::Varint(3));
    }

    #[test]
    fn response_decodes() {
        let mut e = Enc::default();
        e.int32(1, 2);
        e.bool(2, true);
        e.message(4, |m| m.int32(1, 1234));
        e.message(10, |m| {
            m.int32(1, 3);
            m.int32(2, 17);
            m.int32(4, 1);
        });
        let r = Resp::decode(&e.0).unwrap();
        assert_eq!(r.kind, Some(ReqType::Restore));
        assert!(r.success);
        assert_eq!(r.restored_pid, Some(1234));
        assert_eq!(r.version, Some(31701));
    }
}
