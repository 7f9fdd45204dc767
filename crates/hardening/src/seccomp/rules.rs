//! Turns `linux.seccomp` into per-ABI rule sets the way runc (with libseccomp) reads it:
//! unknown syscall names are skipped, rules whose action equals the default action are
//! dropped, conditions of one rule are ANDed unless two of them test the same argument
//! (then each condition becomes its own rule, ORed), and rules naming the same syscall are
//! tried in order, conditional ones before an unconditional one.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};
use tracing::debug;

use super::arch::{Abi, Host};
use crate::HardeningError;

pub(crate) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(crate) const RET_KILL_THREAD: u32 = 0x0000_0000;
pub(crate) const RET_TRAP: u32 = 0x0003_0000;
pub(crate) const RET_ERRNO: u32 = 0x0005_0000;
pub(crate) const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub(crate) const RET_TRACE: u32 = 0x7ff0_0000;
pub(crate) const RET_LOG: u32 = 0x7ffc_0000;
pub(crate) const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;

pub(crate) const FLAG_TSYNC: u32 = 1 << 0;
pub(crate) const FLAG_LOG: u32 = 1 << 1;
pub(crate) const FLAG_SPEC_ALLOW: u32 = 1 << 2;
pub(crate) const FLAG_NEW_LISTENER: u32 = 1 << 3;
pub(crate) const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
pub(crate) const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// Syscalls that must not be sent to a seccomp agent: the child talks to the runtime with
/// them after the filter is loaded (write as in runc; send(2) is sendto, send_fd is sendmsg),
/// and the agent cannot answer before the runtime has passed it the listener.
const NOTIFY_FORBIDDEN: [&str; 3] = ["write", "sendto", "sendmsg"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// (arg & mask) == value
    MaskedEq {
        mask: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cond {
    pub arg: u8,
    pub op: Op,
    pub value: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub action: u32,
    /// All must hold; never empty.
    pub conds: Vec<Cond>,
}

/// What one syscall does: the first conditional rule that matches, else `fallback`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Syscall {
    pub rules: Vec<Rule>,
    pub fallback: u32,
}

/// Rules collected for one syscall while reading the profile.
#[derive(Default)]
struct Pending {
    /// Conditional rules, in profile order.
    rules: Vec<Rule>,
    /// The first unconditional rule's action.
    unconditional: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AbiRules {
    pub abi: Abi,
    pub syscalls: BTreeMap<u32, Syscall>,
    /// Syscall numbers above this get -ENOSYS (runc's stub for calls newer than the profile).
    pub enosys_above: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Profile {
    pub default: u32,
    pub flags: u32,
    /// Native ABI first.
    pub abis: Vec<AbiRules>,
}

fn action(
    a: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
) -> Result<u32, HardeningError> {
    use LinuxSeccompAction::*;
    let errno = |base: u32| -> Result<u32, HardeningError> {
        let e = errno_ret.unwrap_or(libc::EPERM as u32);
        if e > 0xffff {
            return Err(HardeningError::invalid(
                field,
                format!("errnoRet {e} does not fit in 16 bits"),
            ));
        }
        Ok(base | e)
    };
    if errno_ret.is_some() && !matches!(a, ScmpActErrno | ScmpActTrace) {
        return Err(HardeningError::invalid(
            field,
            format!("errnoRet is not supported with {a}"),
        ));
    }
    Ok(match a {
        ScmpActKill | ScmpActKillThread => RET_KILL_THREAD,
        ScmpActKillProcess => RET_KILL_PROCESS,
        ScmpActTrap => RET_TRAP,
        ScmpActErrno => errno(RET_ERRNO)?,
        ScmpActTrace => errno(RET_TRACE)?,
        ScmpActLog => RET_LOG,
        ScmpActAllow => RET_ALLOW,
        ScmpActNotify => RET_USER_NOTIF,
    })
}

fn op(o: LinuxSeccompOperator, value: u64, value_two: u64) -> (Op, u64) {
    use LinuxSeccompOperator::*;
    match o {
        ScmpCmpNe => (Op::Ne, value),
        ScmpCmpLt => (Op::Lt, value),
        ScmpCmpLe => (Op::Le, value),
        ScmpCmpEq => (Op::Eq, value),
        ScmpCmpGe => (Op::Ge, value),
        ScmpCmpGt => (Op::Gt, value),
        // libseccomp: datum_a is the mask, datum_b the value.
        ScmpCmpMaskedEq => (Op::MaskedEq { mask: value }, value_two),
    }
}

/// The ABIs to compile for: the native one plus each listed one the host can run. Other
/// architectures can never match a syscall on this host, so leaving them out changes nothing.
fn abis(spec: &LinuxSeccomp, host: Host) -> Vec<Abi> {
    let mut out = vec![host.native];
    for arch in spec.architectures().iter().flatten() {
        match Abi::from_oci(*arch, host.native) {
            Some(abi) if abi == host.native || host.compat.contains(&abi) => {
                if !out.contains(&abi) {
                    out.push(abi);
                }
            }
            _ if *arch == Arch::ScmpArchNative => {}
            _ => debug!("seccomp: architecture {arch} cannot run on this host, skipped"),
        }
    }
    out
}

/// One entry of `linux.seccomp.syscalls`, checked: its action and its rules, each a
/// conjunction of conditions (one empty rule: unconditional).
struct Entry {
    action: u32,
    rules: Vec<Vec<Cond>>,
}

pub(crate) fn build(spec: &LinuxSeccomp, host: Host) -> Result<Profile, HardeningError> {
    let default = default_action(spec)?;
    let abis = abis(spec, host);
    let mut entries = Vec::new();
    // Per ABI: (syscall number, index of an entry naming it), in profile order. Sorted by
    // number afterwards (stable, so profile order holds within a number): cheaper than a map
    // kept sorted while reading, with profiles of hundreds of names.
    let mut hits: Vec<Vec<(u32, usize)>> = vec![Vec::new(); abis.len()];
    let mut max_nr: Vec<Option<u32>> = vec![None; abis.len()];

    for (i, sc) in spec.syscalls().iter().flatten().enumerate() {
        let e = entry(i, sc)?;
        for (j, name) in sc.names().iter().enumerate() {
            check_name(i, j, name, e.action)?;
            let mut known = false;
            for (k, abi) in abis.iter().enumerate() {
                let Some(nr) = abi.syscall(name) else {
                    continue;
                };
                known = true;
                max_nr[k] = max_nr[k].max(Some(nr));
                // Same as the default action: redundant (runc skips these too).
                if e.action != default {
                    hits[k].push((nr, entries.len()));
                }
            }
            if !known {
                debug!("seccomp: unknown syscall {name:?} ignored");
            }
        }
        entries.push(e);
    }

    let allow_like = matches!(default & RET_ACTION_FULL, RET_ALLOW | RET_LOG | RET_TRACE);
    let stub = !allow_like && default != RET_ERRNO | libc::ENOSYS as u32;
    let mut notify = false;
    let abis = abis
        .into_iter()
        .zip(hits)
        .zip(max_nr)
        .map(|((abi, hits), max)| AbiRules {
            abi,
            syscalls: syscalls(hits, &entries, default, &mut notify),
            enosys_above: max.filter(|_| stub),
        })
        .collect();

    Ok(Profile {
        default,
        flags: flags(spec, notify),
        abis,
    })
}

fn default_action(spec: &LinuxSeccomp) -> Result<u32, HardeningError> {
    let default = action(
        spec.default_action(),
        spec.default_errno_ret(),
        "linux.seccomp.defaultAction",
    )?;
    if default == RET_USER_NOTIF {
        return Err(HardeningError::invalid(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    Ok(default)
}

/// Checks entry `i` and reads its action and conditions.
fn entry(i: usize, sc: &LinuxSyscall) -> Result<Entry, HardeningError> {
    let field = || format!("linux.seccomp.syscalls[{i}]");
    let action = action(sc.action(), sc.errno_ret(), &format!("{}.action", field()))?;
    let mut conds = Vec::new();
    let mut seen = [0u8; 6];
    for (j, arg) in sc.args().iter().flatten().enumerate() {
        let index = arg.index();
        if index >= 6 {
            return Err(HardeningError::invalid(
                format!("{}.args[{j}].index", field()),
                format!("{index} is out of range (0-5)"),
            ));
        }
        seen[index] += 1;
        let (op, value) = op(arg.op(), arg.value(), arg.value_two().unwrap_or(0));
        conds.push(Cond {
            arg: index as u8,
            op,
            value,
        });
    }
    // runc: conditions sharing an argument index are alternatives, not a conjunction.
    let rules = if seen.iter().any(|&n| n > 1) {
        conds.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![conds]
    };
    Ok(Entry { action, rules })
}

fn check_name(i: usize, j: usize, name: &str, action: u32) -> Result<(), HardeningError> {
    if name.is_empty() {
        return Err(HardeningError::invalid(
            format!("linux.seccomp.syscalls[{i}].names[{j}]"),
            "empty syscall name",
        ));
    }
    if action == RET_USER_NOTIF && NOTIFY_FORBIDDEN.contains(&name) {
        return Err(HardeningError::invalid(
            format!("linux.seccomp.syscalls[{i}].names[{j}]"),
            format!("SCMP_ACT_NOTIFY cannot be used for the {name} syscall"),
        ));
    }
    Ok(())
}

/// One ABI's syscalls from its `hits`: the rules of every entry naming a number, in profile
/// order, and what is left of them once nothing redundant remains.
fn syscalls(
    mut hits: Vec<(u32, usize)>,
    entries: &[Entry],
    default: u32,
    notify: &mut bool,
) -> BTreeMap<u32, Syscall> {
    hits.sort_by_key(|&(nr, _)| nr);
    let mut out = Vec::new();
    for group in hits.chunk_by(|a, b| a.0 == b.0) {
        let nr = group[0].0;
        let mut pending = Pending::default();
        for &(_, e) in group {
            pending.add(nr, &entries[e]);
        }
        if let Some(sc) = pending.finish(default, notify) {
            out.push((nr, sc));
        }
    }
    out.into_iter().collect()
}

impl Pending {
    fn add(&mut self, nr: u32, e: &Entry) {
        for conds in &e.rules {
            if !conds.is_empty() {
                self.rules.push(Rule {
                    action: e.action,
                    conds: conds.clone(),
                });
            } else if self.unconditional.is_none() {
                self.unconditional = Some(e.action);
            } else if self.unconditional != Some(e.action) {
                // runtime-spec: when a syscall matches several entries, the first counts.
                debug!("seccomp: syscall {nr} already has an unconditional rule with another action; keeping the first");
            }
        }
    }

    /// The syscall's rules, or None when it does what the default action does.
    fn finish(mut self, default: u32, notify: &mut bool) -> Option<Syscall> {
        let fallback = self.unconditional.unwrap_or(default);
        // Trailing conditional rules that end in the fallback action change nothing.
        while self.rules.last().is_some_and(|r| r.action == fallback) {
            self.rules.pop();
        }
        *notify |=
            fallback == RET_USER_NOTIF || self.rules.iter().any(|r| r.action == RET_USER_NOTIF);
        (!self.rules.is_empty() || fallback != default).then_some(Syscall {
            rules: self.rules,
            fallback,
        })
    }
}

fn flags(spec: &LinuxSeccomp, notify: bool) -> u32 {
    let mut flags = if notify { FLAG_NEW_LISTENER } else { 0 };
    for f in spec.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv if notify => {
                FLAG_WAIT_KILLABLE_RECV
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                debug!("seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored, no rule uses SCMP_ACT_NOTIFY");
                0
            }
        };
    }
    // TSYNC and NEW_LISTENER together need TSYNC_ESRCH, or the kernel refuses the pair.
    if flags & (FLAG_TSYNC | FLAG_NEW_LISTENER) == FLAG_TSYNC | FLAG_NEW_LISTENER {
        flags |= FLAG_TSYNC_ESRCH;
    }
    flags
}
