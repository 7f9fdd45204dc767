//! Code generation: rule sets to a classic BPF program.
//!
//! Layout:
//! ```text
//!   ld arch; jeq <audit arch>, <section> ...; ret KILL_THREAD      (unknown arch, libseccomp's default)
//! section (one per audit arch):
//!   ld nr
//!   [x86-64] jge X32_BIT -> x32 part inline (or ret KILL_THREAD), else native part
//!   part:  binary search (jge) over syscall-number ranges with one outcome each: runs of
//!          consecutive syscalls with the same plain action share a range, as do the gaps
//!          between them (default action) and, with runc's stub, everything above the
//!          highest syscall the profile names (ERRNO(ENOSYS)). A range is a `ret`, or the
//!          body of a syscall with argument rules.
//!   body:  per conditional rule: argument tests (fail -> next rule), ret action;
//!          then ret fallback
//! ```
//! The nr-dispatch path only uses loads of nr/arch, jeq/jge and ret, so the kernel's
//! per-syscall action cache recognises unconditionally allowed syscalls.

use libc::sock_filter;

use super::arch::{Abi, X32_SYSCALL_BIT};
use super::bpf::{Asm, Cmp, Label, Target};
use super::rules::{AbiRules, Cond, Op, Profile, Syscall, RET_ERRNO, RET_KILL_THREAD};
use crate::HardeningError;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

use Target::{Next, To};

pub(crate) fn compile(p: &Profile) -> Result<Vec<sock_filter>, HardeningError> {
    let mut a = Asm::default();
    // Group the ABIs by audit arch, keeping the native one first.
    let mut arches: Vec<(u32, Label)> = Vec::new();
    for r in &p.abis {
        if !arches.iter().any(|(arch, _)| *arch == r.abi.audit_arch()) {
            let l = a.label();
            arches.push((r.abi.audit_arch(), l));
        }
    }
    a.load(OFF_ARCH);
    for (arch, l) in &arches {
        a.jump(Cmp::Eq, *arch, To(*l), Next);
    }
    a.ret(RET_KILL_THREAD);
    for (arch, l) in &arches {
        a.bind(*l);
        a.load(OFF_NR);
        let find = |abi: Abi| p.abis.iter().find(|r| r.abi == abi);
        if *arch == Abi::X86_64.audit_arch() {
            let native = a.label();
            a.jump(Cmp::Ge, X32_SYSCALL_BIT, Next, To(native));
            match find(Abi::X32) {
                Some(x32) => part(&mut a, x32, p.default),
                None => a.ret(RET_KILL_THREAD),
            }
            a.bind(native);
            match find(Abi::X86_64) {
                Some(x86_64) => part(&mut a, x86_64, p.default),
                None => a.ret(RET_KILL_THREAD),
            }
        } else if let Some(r) = p.abis.iter().find(|r| r.abi.audit_arch() == *arch) {
            part(&mut a, r, p.default);
        }
    }
    a.finish()
}

/// What a range of syscall numbers does.
#[derive(Clone, Copy)]
enum Outcome<'a> {
    Ret(u32),
    Body(&'a Syscall),
}

/// Numbers from `start` up to the next range's start.
struct Range<'a> {
    start: u32,
    outcome: Outcome<'a>,
}

/// Appends a range, replacing a previous one that starts at the same number and merging
/// with the previous one when both just return the same action.
fn push<'a>(out: &mut Vec<Range<'a>>, start: u32, outcome: Outcome<'a>) {
    if out.last().is_some_and(|r| r.start == start) {
        out.pop();
    }
    if let (
        Some(Range {
            outcome: Outcome::Ret(prev),
            ..
        }),
        Outcome::Ret(new),
    ) = (out.last(), outcome)
    {
        if *prev == new {
            return;
        }
    }
    out.push(Range { start, outcome });
}

/// Splits the syscall numbers of one ABI into ranges with one outcome each.
fn ranges(r: &AbiRules, default: u32) -> Vec<Range<'_>> {
    let mut out = vec![Range {
        start: 0,
        outcome: Outcome::Ret(default),
    }];
    for (&nr, sc) in &r.syscalls {
        let outcome = if sc.rules.is_empty() {
            Outcome::Ret(sc.fallback)
        } else {
            Outcome::Body(sc)
        };
        push(&mut out, nr, outcome);
        if let Some(after) = nr.checked_add(1) {
            push(&mut out, after, Outcome::Ret(default));
        }
    }
    // runc's -ENOSYS stub: the highest named syscall is at least every number above.
    if let Some(after) = r.enosys_above.and_then(|max| max.checked_add(1)) {
        push(
            &mut out,
            after,
            Outcome::Ret(RET_ERRNO | libc::ENOSYS as u32),
        );
    }
    out
}

/// The code for one ABI, entered with A = nr.
fn part(a: &mut Asm, r: &AbiRules, default: u32) {
    dispatch(a, &ranges(r, default), r.abi.is_32bit());
}

fn dispatch(a: &mut Asm, ranges: &[Range<'_>], is_32bit: bool) {
    if let [only] = ranges {
        match only.outcome {
            Outcome::Ret(action) => a.ret(action),
            Outcome::Body(sc) => body(a, sc, is_32bit),
        }
        return;
    }
    let mid = ranges.len() / 2;
    let upper = a.label();
    a.jump(Cmp::Ge, ranges[mid].start, To(upper), Next);
    dispatch(a, &ranges[..mid], is_32bit);
    a.bind(upper);
    dispatch(a, &ranges[mid..], is_32bit);
}

fn body(a: &mut Asm, sc: &Syscall, is_32bit: bool) {
    for rule in &sc.rules {
        let fail = a.label();
        for c in &rule.conds {
            cond(a, c, fail, is_32bit);
        }
        a.ret(rule.action);
        a.bind(fail);
    }
    a.ret(sc.fallback);
}

/// Falls through when `c` holds, jumps to `fail` otherwise. 64-bit arguments are compared
/// high half first, then the low half only when the high halves are equal.
fn cond(a: &mut Asm, c: &Cond, fail: Label, is_32bit: bool) {
    let lo_off = OFF_ARGS + 8 * c.arg as u32;
    let hi_off = lo_off + 4;
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    let fail = To(fail);
    if is_32bit {
        a.load(lo_off);
        match c.op {
            Op::Eq => a.jump(Cmp::Eq, vl, Next, fail),
            Op::Ne => a.jump(Cmp::Eq, vl, fail, Next),
            Op::Gt => a.jump(Cmp::Gt, vl, Next, fail),
            Op::Ge => a.jump(Cmp::Ge, vl, Next, fail),
            Op::Lt => a.jump(Cmp::Ge, vl, fail, Next),
            Op::Le => a.jump(Cmp::Gt, vl, fail, Next),
            Op::MaskedEq { mask } => {
                a.and(mask as u32);
                a.jump(Cmp::Eq, vl, Next, fail);
            }
        }
        return;
    }
    let done = a.label();
    let pass = To(done);
    match c.op {
        Op::Eq => {
            a.load(hi_off);
            a.jump(Cmp::Eq, vh, Next, fail);
            a.load(lo_off);
            a.jump(Cmp::Eq, vl, Next, fail);
        }
        Op::Ne => {
            a.load(hi_off);
            a.jump(Cmp::Eq, vh, Next, pass);
            a.load(lo_off);
            a.jump(Cmp::Eq, vl, fail, Next);
        }
        Op::Gt | Op::Ge => {
            a.load(hi_off);
            a.jump(Cmp::Gt, vh, pass, Next);
            a.jump(Cmp::Eq, vh, Next, fail);
            a.load(lo_off);
            let cmp = if c.op == Op::Gt { Cmp::Gt } else { Cmp::Ge };
            a.jump(cmp, vl, Next, fail);
        }
        Op::Lt | Op::Le => {
            a.load(hi_off);
            a.jump(Cmp::Gt, vh, fail, Next);
            a.jump(Cmp::Eq, vh, Next, pass);
            a.load(lo_off);
            // lo < vl  <=>  !(lo >= vl);  lo <= vl  <=>  !(lo > vl)
            let cmp = if c.op == Op::Lt { Cmp::Ge } else { Cmp::Gt };
            a.jump(cmp, vl, fail, Next);
        }
        Op::MaskedEq { mask } => {
            let mh = (mask >> 32) as u32;
            // (hi & 0) == 0 always holds: skip the high half for 32-bit masks.
            if mh != 0 || vh != 0 {
                a.load(hi_off);
                a.and(mh);
                a.jump(Cmp::Eq, vh, Next, fail);
            }
            a.load(lo_off);
            a.and(mask as u32);
            a.jump(Cmp::Eq, vl, Next, fail);
        }
    }
    a.bind(done);
}
