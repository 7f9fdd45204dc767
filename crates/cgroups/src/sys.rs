//! The raw system calls this crate needs that husk-sys does not have: `statfs(2)` for layout
//! detection and `bpf(2)` for the cgroup v2 device filter. Every `unsafe` block of the crate is
//! here.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use husk_sys::{check, Errno};

pub const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
pub const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// `f_type` of the filesystem holding `path`.
pub fn fs_magic(path: &CStr) -> Result<i64, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: path is NUL-terminated and st is a valid out-pointer for one statfs.
    check(unsafe { libc::statfs(path.as_ptr(), st.as_mut_ptr()) } as libc::c_long)?;
    // SAFETY: statfs succeeded, so the kernel filled st in.
    let st = unsafe { st.assume_init() };
    // f_type's width differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}

/// One eBPF instruction (`struct bpf_insn`): dst register in the low nibble of `regs`, src
/// register in the high nibble.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
pub const BPF_CGROUP_DEVICE: u32 = 6;
pub const BPF_F_ALLOW_MULTI: u32 = 2;

/// The `BPF_PROG_LOAD` member of `union bpf_attr`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH`/`BPF_PROG_DETACH` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The `BPF_PROG_QUERY` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// The `BPF_PROG_GET_FD_BY_ID` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `bpf(cmd, attr, sizeof(*attr))`.
///
/// # Safety
/// `attr` must be the `union bpf_attr` member `cmd` expects, and every pointer stored in it
/// must be valid for the kernel to read or write for the duration of the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<libc::c_long, Errno> {
    // SAFETY: upheld by the caller; the size passed is the size of the struct we pass.
    check(unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) })
}

/// Loads a `BPF_PROG_TYPE_CGROUP_DEVICE` program.
pub fn load_device_prog(insns: &[BpfInsn], license: &CStr) -> Result<OwnedFd, Errno> {
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"husk_devs");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: attr is a BPF_PROG_LOAD attr; insns and license outlive the call and are only read.
    let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr) }?;
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches `prog` to the cgroup directory `target` as a device filter.
pub fn attach_device_prog(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    flags: u32,
) -> Result<(), Errno> {
    let mut attr = AttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        ..Default::default()
    };
    // SAFETY: attr is a BPF_PROG_ATTACH attr holding only scalars.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
}

/// Detaches the device filter `prog` from the cgroup directory `target`.
pub fn detach_device_prog(target: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut attr = AttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: attr is a BPF_PROG_DETACH attr holding only scalars.
    unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
}

/// Ids of the device filters attached directly to `target`. On ENOSPC the kernel reports how
/// many there are, so the query is retried with a big enough buffer.
pub fn query_device_progs(target: BorrowedFd<'_>) -> Result<Vec<u32>, Errno> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = QueryAttr {
            target_fd: target.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        // SAFETY: attr is a BPF_PROG_QUERY attr; prog_ids points at prog_cnt writable u32s.
        match unsafe { bpf(BPF_PROG_QUERY, &mut attr) } {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            Err(Errno(libc::ENOSPC)) if attr.prog_cnt as usize > ids.len() => {
                ids = vec![0u32; attr.prog_cnt as usize];
            }
            Err(e) => return Err(e),
        }
    }
}

/// A descriptor for the loaded program with id `id`.
pub fn prog_fd_by_id(id: u32) -> Result<OwnedFd, Errno> {
    let mut attr = GetFdAttr {
        prog_id: id,
        ..Default::default()
    };
    // SAFETY: attr is a BPF_PROG_GET_FD_BY_ID attr holding only scalars.
    let fd = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) }?;
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
