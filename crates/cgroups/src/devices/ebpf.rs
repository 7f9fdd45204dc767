//! cgroup v2 device control: the emulated rule set compiled into a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program, loaded with `bpf(2)` and attached to the cgroup
//! with `BPF_F_ALLOW_MULTI` (so filters of ancestors still apply).
//!
//! Program layout (the context is `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
//! u32 minor; }`, `access_type` = access << 16 | type):
//!
//! ```text
//!   r2 = type, r3 = access, r4 = major, r5 = minor
//!   per exception:  if r2 != type goto next
//!                   if (r3 & ~access) != 0 goto next     (only when access != rwm)
//!                   if r4 != major goto next             (only when major != *)
//!                   if r5 != minor goto next             (only when minor != *)
//!                   return !default
//!   next/end:       return default
//! ```

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use tracing::debug;

use super::{Emulator, Rule, ACC_ALL};
use crate::error::{io_err, CgroupError};
use crate::sys::{self, BpfInsn};

const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const DEVCG_DEV_BLOCK: i32 = 1;
const DEVCG_DEV_CHAR: i32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// Compiles the emulator's final state into eBPF instructions.
pub(crate) fn program(e: &Emulator) -> Vec<BpfInsn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in e.exception_rules() {
        append_rule(&mut p, &r);
    }
    p.push(insn(ALU32_MOV_K, 0, 0, 0, i32::from(e.default_allow)));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

fn append_rule(p: &mut Vec<BpfInsn>, r: &Rule) {
    let start = p.len();
    let typ = if r.typ == b'b' {
        DEVCG_DEV_BLOCK
    } else {
        DEVCG_DEV_CHAR
    };
    p.push(insn(JMP_JNE_K, 2, 0, 0, typ));
    if r.access != ACC_ALL {
        // r1 = access & rule_access; a request with any other bit set does not match.
        p.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
        p.push(insn(ALU32_AND_K, 1, 0, 0, i32::from(r.access)));
        p.push(insn(JMP_JNE_X, 1, 3, 0, 0));
    }
    if r.major >= 0 {
        p.push(insn(JMP_JNE_K, 4, 0, 0, r.major as i32));
    }
    if r.minor >= 0 {
        p.push(insn(JMP_JNE_K, 5, 0, 0, r.minor as i32));
    }
    p.push(insn(ALU32_MOV_K, 0, 0, 0, i32::from(r.allow)));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    // Every conditional jump of this block goes to the first instruction after it.
    let next = p.len();
    for (i, ins) in p.iter_mut().enumerate().skip(start) {
        if ins.code == JMP_JNE_K || ins.code == JMP_JNE_X {
            ins.off = (next - i - 1) as i16;
        }
    }
}

/// Loads the filter for `e` and makes it the only device filter attached directly to the
/// cgroup `dir`. When `fresh` (the cgroup was just created) there is nothing to replace.
pub(crate) fn install(dir: &Path, e: &Emulator, fresh: bool) -> Result<(), CgroupError> {
    let insns = program(e);
    let license = CString::new("Apache").map_err(|_| CgroupError::Config("license".into()))?;
    let prog = match sys::load_device_prog(&insns, &license) {
        // Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; raise it and retry.
        Err(husk_sys::Errno(libc::EPERM)) => {
            husk_sys::setrlimit(
                libc::RLIMIT_MEMLOCK,
                libc::RLIM_INFINITY,
                libc::RLIM_INFINITY,
            )
            .map_err(|errno| CgroupError::Bpf {
                step: "raise RLIMIT_MEMLOCK",
                errno,
            })?;
            sys::load_device_prog(&insns, &license)
        }
        other => other,
    }
    .map_err(|errno| CgroupError::Bpf {
        step: "BPF_PROG_LOAD",
        errno,
    })?;
    let cg: OwnedFd = std::fs::File::open(dir)
        .map_err(|e| io_err("open cgroup", dir, &e))?
        .into();
    let old = if fresh {
        Vec::new()
    } else {
        sys::query_device_progs(cg.as_fd()).map_err(|errno| CgroupError::Bpf {
            step: "BPF_PROG_QUERY",
            errno,
        })?
    };
    sys::attach_device_prog(cg.as_fd(), prog.as_fd(), sys::BPF_F_ALLOW_MULTI).map_err(|errno| {
        CgroupError::Bpf {
            step: "BPF_PROG_ATTACH",
            errno,
        }
    })?;
    for id in old {
        let old_prog = match sys::prog_fd_by_id(id) {
            Ok(fd) => fd,
            // The program went away meanwhile, or an LSM hides it: nothing we can detach.
            Err(errno) => {
                debug!(id, %errno, "cannot open old device filter");
                continue;
            }
        };
        sys::detach_device_prog(cg.as_fd(), old_prog.as_fd()).map_err(|errno| {
            CgroupError::Bpf {
                step: "BPF_PROG_DETACH of the previous filter",
                errno,
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{ACC_MKNOD, ACC_READ, ANY};

    #[test]
    fn jumps_land_on_the_next_block() {
        let e = Emulator::from_rules(&[
            Rule {
                typ: b'c',
                major: 1,
                minor: 3,
                access: ACC_ALL,
                allow: true,
            },
            Rule {
                typ: b'b',
                major: ANY,
                minor: ANY,
                access: ACC_MKNOD | ACC_READ,
                allow: true,
            },
        ])
        .unwrap();
        let p = program(&e);
        // prologue 6, first rule (b *:* rm): jne type, mov, and, jne, mov, exit = 6,
        // second rule (c 1:3 rwm): jne type, jne major, jne minor, mov, exit = 5, tail 2.
        assert_eq!(p.len(), 6 + 6 + 5 + 2);
        for (i, ins) in p.iter().enumerate() {
            if ins.code == JMP_JNE_K || ins.code == JMP_JNE_X {
                let target = i as i64 + 1 + i64::from(ins.off);
                let t = &p[target as usize];
                assert!(
                    t.code == JMP_JNE_K || (t.code == ALU32_MOV_K && t.regs == 0),
                    "jump at {i} lands on {t:?}"
                );
            }
        }
        assert_eq!(p.last().unwrap().code, JMP_EXIT);
        assert_eq!(p[p.len() - 2].imm, 0, "default is deny");
    }
}
