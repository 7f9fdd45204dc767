//! The syscall ABIs a filter can match, their AUDIT_ARCH values and syscall tables.

use oci_spec::runtime::Arch;

/// Bit the kernel sets in the syscall number of x32 calls (reported as AUDIT_ARCH_X86_64).
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Abi {
    X86_64,
    X32,
    I386,
    Aarch64,
    Arm,
}

impl Abi {
    /// The ABI named by a spec architecture, `None` for ones husk has no table for.
    pub fn from_oci(arch: Arch, native: Abi) -> Option<Abi> {
        match arch {
            Arch::ScmpArchNative => Some(native),
            Arch::ScmpArchX86_64 => Some(Abi::X86_64),
            Arch::ScmpArchX32 => Some(Abi::X32),
            Arch::ScmpArchX86 => Some(Abi::I386),
            Arch::ScmpArchAarch64 => Some(Abi::Aarch64),
            Arch::ScmpArchArm => Some(Abi::Arm),
            _ => None,
        }
    }

    /// The `seccomp_data.arch` value of this ABI's system calls.
    pub fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::I386 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
            Abi::Arm => AUDIT_ARCH_ARM,
        }
    }

    /// Syscall arguments are 32 bits wide: only the low half of `seccomp_data.args[i]` counts.
    pub fn is_32bit(self) -> bool {
        matches!(self, Abi::I386 | Abi::Arm)
    }

    pub fn syscall(self, name: &str) -> Option<u32> {
        let table = self.table();
        let name = name.as_bytes();
        table
            .binary_search_by(|(n, _)| cmp_short(n.as_bytes(), name))
            .ok()
            .map(|i| table[i].1)
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            #[cfg(any(test, target_arch = "x86_64"))]
            Abi::X86_64 => super::syscalls_x86_64::SYSCALLS,
            #[cfg(any(test, target_arch = "x86_64"))]
            Abi::X32 => super::syscalls_x32::SYSCALLS,
            #[cfg(any(test, target_arch = "x86_64"))]
            Abi::I386 => super::syscalls_i386::SYSCALLS,
            #[cfg(any(test, target_arch = "aarch64"))]
            Abi::Aarch64 => super::syscalls_aarch64::SYSCALLS,
            #[cfg(any(test, target_arch = "aarch64"))]
            Abi::Arm => super::syscalls_arm::SYSCALLS,
            // Tables of other hosts are not built in: `Host` never selects those ABIs.
            #[allow(unreachable_patterns)]
            _ => &[],
        }
    }
}

/// `a.cmp(b)` for the short names of the syscall tables, byte by byte: most steps of the
/// binary search differ in the first byte or two, where a `memcmp` call costs more than the
/// comparison (a profile like containerd's looks up ~1,100 names per create and exec).
fn cmp_short(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// The ABIs a process on this kernel can use: the native one (always in the filter, as with
/// libseccomp) and the compat ones a profile may add.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Host {
    pub native: Abi,
    pub compat: &'static [Abi],
}

impl Host {
    #[cfg(any(test, target_arch = "x86_64"))]
    pub const X86_64: Host = Host {
        native: Abi::X86_64,
        compat: &[Abi::X32, Abi::I386],
    };
    #[cfg(any(test, target_arch = "aarch64"))]
    pub const AARCH64: Host = Host {
        native: Abi::Aarch64,
        compat: &[Abi::Arm],
    };

    #[cfg(target_arch = "x86_64")]
    pub const CURRENT: Option<Host> = Some(Host::X86_64);
    #[cfg(target_arch = "aarch64")]
    pub const CURRENT: Option<Host> = Some(Host::AARCH64);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub const CURRENT: Option<Host> = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_resolve() {
        for abi in [Abi::X86_64, Abi::X32, Abi::I386, Abi::Aarch64, Abi::Arm] {
            let t = abi.table();
            assert!(
                t.windows(2).all(|w| w[0].0 < w[1].0),
                "{abi:?} table is not sorted"
            );
            assert!(t.len() > 300, "{abi:?}");
        }
        assert_eq!(Abi::X86_64.syscall("getppid"), Some(110));
        assert_eq!(Abi::X86_64.syscall("file_setattr"), Some(469));
        assert_eq!(Abi::X32.syscall("execve"), Some(X32_SYSCALL_BIT | 520));
        assert_eq!(Abi::I386.syscall("socketcall"), Some(102));
        assert_eq!(Abi::Aarch64.syscall("openat"), Some(56));
        assert_eq!(Abi::Aarch64.syscall("open"), None, "aarch64 has no open(2)");
        assert_eq!(Abi::Arm.syscall("set_tls"), Some(0x0f_0005));
        assert_eq!(Abi::X86_64.syscall("no_such_call"), None);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            Abi::X86_64.syscall("getppid"),
            Some(libc::SYS_getppid as u32)
        );
    }
}
