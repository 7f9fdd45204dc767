//! A small classic-BPF assembler with forward labels. Conditional jumps carry 8-bit offsets;
//! when a target ends up more than 255 instructions away, `finish` routes that branch through
//! an unconditional `ja` (32-bit offset) placed right after the jump, re-laying the program out
//! until every offset fits.

use libc::sock_filter;

use crate::HardeningError;

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
pub(crate) const MAX_INSNS: usize = 4096;

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;

/// Conditional jump comparisons of the accumulator against a constant (all unsigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Gt,
    Ge,
}

impl Cmp {
    fn code(self) -> u16 {
        let op = match self {
            Cmp::Eq => libc::BPF_JEQ,
            Cmp::Gt => libc::BPF_JGT,
            Cmp::Ge => libc::BPF_JGE,
        };
        (libc::BPF_JMP | op | libc::BPF_K) as u16
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(usize);

/// Where a branch goes: the instruction after the jump, or a label bound later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Next,
    To(Label),
}

enum Item {
    Stmt {
        code: u16,
        k: u32,
    },
    Jump {
        cmp: Cmp,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Bind(Label),
}

#[derive(Default)]
pub(crate) struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Binds `label` to the next instruction emitted.
    pub fn bind(&mut self, label: Label) {
        self.items.push(Item::Bind(label));
    }

    /// A = 32-bit word at `offset` of `struct seccomp_data`.
    pub fn load(&mut self, offset: u32) {
        self.items.push(Item::Stmt {
            code: LD_W_ABS,
            k: offset,
        });
    }

    pub fn and(&mut self, mask: u32) {
        self.items.push(Item::Stmt {
            code: ALU_AND_K,
            k: mask,
        });
    }

    pub fn ret(&mut self, action: u32) {
        self.items.push(Item::Stmt {
            code: RET_K,
            k: action,
        });
    }

    pub fn jump(&mut self, cmp: Cmp, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Jump { cmp, k, jt, jf });
    }

    /// Lays the program out and encodes it.
    pub fn finish(self) -> Result<Vec<sock_filter>, HardeningError> {
        let n = self.items.len();
        // Whether the true / false branch of item i goes through a trampoline.
        let mut far = vec![(false, false); n];
        let (addr, at) = loop {
            let (addr, at, len) = self.layout(&far)?;
            let mut changed = false;
            for (i, item) in self.items.iter().enumerate() {
                if let Item::Jump { jt, jf, .. } = item {
                    let too_far = |t: &Target| matches!(t, Target::To(l) if at[l.0] - (addr[i] + 1) > u8::MAX as usize);
                    let (far_t, far_f) = far[i];
                    far[i] = (far_t || too_far(jt), far_f || too_far(jf));
                    changed |= far[i] != (far_t, far_f);
                }
            }
            if len > MAX_INSNS {
                return Err(HardeningError::FilterTooLong(len));
            }
            if !changed {
                break (addr, at);
            }
        };

        let mut out = Vec::with_capacity(n);
        for (i, item) in self.items.iter().enumerate() {
            match *item {
                Item::Stmt { code, k } => out.push(sock_filter {
                    code,
                    jt: 0,
                    jf: 0,
                    k,
                }),
                Item::Bind(_) => {}
                Item::Jump { cmp, k, jt, jf } => {
                    let (far_t, far_f) = far[i];
                    let next = addr[i] + 1 + far_t as usize + far_f as usize;
                    let dest = |t: Target| match t {
                        Target::Next => next,
                        Target::To(l) => at[l.0],
                    };
                    // Trampolines follow the jump: first the true one, then the false one.
                    let (tramp_t, tramp_f) = (addr[i] + 1, addr[i] + 1 + far_t as usize);
                    let off = |to: usize| (to - (addr[i] + 1)) as u8;
                    let jt_off = if far_t { off(tramp_t) } else { off(dest(jt)) };
                    let jf_off = if far_f { off(tramp_f) } else { off(dest(jf)) };
                    out.push(sock_filter {
                        code: cmp.code(),
                        jt: jt_off,
                        jf: jf_off,
                        k,
                    });
                    for (is_far, tramp, t) in [(far_t, tramp_t, jt), (far_f, tramp_f, jf)] {
                        if is_far {
                            let k = (dest(t) - (tramp + 1)) as u32;
                            out.push(sock_filter {
                                code: JA,
                                jt: 0,
                                jf: 0,
                                k,
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Instruction address of every item and of every label, and the program length, given
    /// which branches need trampolines. Fails on unbound labels and backward jumps.
    #[allow(clippy::type_complexity)]
    fn layout(
        &self,
        far: &[(bool, bool)],
    ) -> Result<(Vec<usize>, Vec<usize>, usize), HardeningError> {
        let mut addr = Vec::with_capacity(self.items.len());
        let mut at = vec![usize::MAX; self.labels];
        let mut pos = 0;
        for (i, item) in self.items.iter().enumerate() {
            addr.push(pos);
            match item {
                Item::Stmt { .. } => pos += 1,
                Item::Jump { .. } => pos += 1 + far[i].0 as usize + far[i].1 as usize,
                Item::Bind(l) => at[l.0] = pos,
            }
        }
        for (i, item) in self.items.iter().enumerate() {
            if let Item::Jump { jt, jf, .. } = item {
                for t in [jt, jf] {
                    if let Target::To(l) = t {
                        if at[l.0] == usize::MAX {
                            return Err(HardeningError::Compiler("jump to an unbound label"));
                        }
                        if at[l.0] <= addr[i] {
                            return Err(HardeningError::Compiler("backward jump"));
                        }
                    }
                }
            }
        }
        Ok((addr, at, pos))
    }
}

/// A cBPF interpreter for the subset the compiler emits, used by the tests to check what a
/// compiled filter returns for a given `seccomp_data`. Panics on anything out of range.
#[cfg(test)]
pub(crate) fn run(prog: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    exec(prog, nr, arch, args).0
}

/// Like [`run`], also telling whether the filter looked at the syscall arguments.
#[cfg(test)]
pub(crate) fn exec(prog: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> (u32, bool) {
    let mut read_args = false;
    let mut word = |off: u32| -> u32 {
        match off {
            0 => nr,
            4 => arch,
            16..=63 if off % 4 == 0 => {
                read_args = true;
                let a = args[(off as usize - 16) / 8];
                if off % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            _ => panic!("load from offset {off}"),
        }
    };
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let ins = prog[pc];
        pc += 1;
        match ins.code {
            LD_W_ABS => acc = word(ins.k),
            ALU_AND_K => acc &= ins.k,
            RET_K => return (ins.k, read_args),
            JA => pc += ins.k as usize,
            code => {
                let hit = match code {
                    c if c == Cmp::Eq.code() => acc == ins.k,
                    c if c == Cmp::Gt.code() => acc > ins.k,
                    c if c == Cmp::Ge.code() => acc >= ins.k,
                    _ => panic!("unexpected opcode {code:#x}"),
                };
                pc += if hit { ins.jt } else { ins.jf } as usize;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_jumps_are_direct() {
        let mut a = Asm::default();
        let l = a.label();
        a.load(0);
        a.jump(Cmp::Eq, 7, Target::Next, Target::To(l));
        a.ret(1);
        a.bind(l);
        a.ret(2);
        let p = a.finish().unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!((p[1].jt, p[1].jf), (0, 1));
        assert_eq!(run(&p, 7, 0, [0; 6]), 1);
        assert_eq!(run(&p, 8, 0, [0; 6]), 2);
    }

    #[test]
    fn long_jumps_go_through_trampolines() {
        // Jumps over 300 and 600 instructions, on both branches, from two places.
        let mut a = Asm::default();
        let (far1, far2) = (a.label(), a.label());
        a.load(0);
        a.jump(Cmp::Ge, 10, Target::To(far1), Target::Next);
        a.jump(Cmp::Eq, 5, Target::To(far2), Target::To(far1));
        for _ in 0..300 {
            a.ret(0xdead);
        }
        a.bind(far1);
        a.ret(1);
        for _ in 0..300 {
            a.ret(0xbeef);
        }
        a.bind(far2);
        a.ret(2);
        let p = a.finish().unwrap();
        assert_eq!(
            p.len(),
            1 + 2 + 3 + 602,
            "one trampoline for the first jump, two for the second"
        );
        assert_eq!(p.iter().filter(|i| i.code == JA).count(), 3);
        assert_eq!(run(&p, 11, 0, [0; 6]), 1);
        assert_eq!(run(&p, 5, 0, [0; 6]), 2);
        assert_eq!(run(&p, 4, 0, [0; 6]), 1);
    }

    #[test]
    fn rejects_bad_programs() {
        let mut a = Asm::default();
        let l = a.label();
        a.jump(Cmp::Eq, 0, Target::To(l), Target::Next);
        assert!(matches!(a.finish(), Err(HardeningError::Compiler(_))));

        let mut a = Asm::default();
        let l = a.label();
        a.bind(l);
        a.load(0);
        a.jump(Cmp::Eq, 0, Target::To(l), Target::Next);
        assert!(matches!(a.finish(), Err(HardeningError::Compiler(_))));

        let mut a = Asm::default();
        for _ in 0..=MAX_INSNS {
            a.ret(0);
        }
        assert!(matches!(
            a.finish(),
            Err(HardeningError::FilterTooLong(4097))
        ));
    }
}
