//! Protection against CVE-2019-5736 without copying or re-executing husk.
//!
//! The container's init is a clone of the husk process, so until it execs the user's program
//! its `/proc/self/exe` is the host's husk binary. If the program resolves to
//! `/proc/self/exe` (a symlink, or a `#!/proc/self/exe` script), the kernel would run husk's
//! binary inside the container, where a process could keep a handle on it and write it once
//! husk exits. So the final exec goes through a tiny trampoline first: a 209-byte static ELF in
//! a sealed memfd. While it runs, `/proc/self/exe` is that sealed memfd (which cannot be
//! written), and it immediately execs the real program: `execve(argv[0], &argv[1], envp)`.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::{check, Errno, Result};

/// x86_64: ELF header, one PT_LOAD program header, and the code:
///   fcntl(*argv[0], F_SETFD, FD_CLOEXEC)   the report descriptor closes at the final exec
///   execve(argv[1], &argv[2], envp)
///   write(*argv[0], &errno, 4)            only reached when execve failed: report why
///   exit_group(127)
#[cfg(target_arch = "x86_64")]
pub const TRAMPOLINE: &[u8] = &[
    // e_ident: magic, 64-bit, little endian, version 1, System V ABI
    0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, // e_type: EXEC
    0x3e, 0, // e_machine: x86_64
    1, 0, 0, 0, // e_version
    0x78, 0, 0x40, 0, 0, 0, 0, 0, // e_entry 0x400078
    64, 0, 0, 0, 0, 0, 0, 0, // e_phoff
    0, 0, 0, 0, 0, 0, 0, 0, // e_shoff
    0, 0, 0, 0, // e_flags
    64, 0, // e_ehsize
    56, 0, // e_phentsize
    1, 0, // e_phnum
    0, 0, 0, 0, 0, 0, // e_shentsize, e_shnum, e_shstrndx
    // program header: PT_LOAD, R+X, whole file at 0x400000
    1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // p_offset
    0, 0, 0x40, 0, 0, 0, 0, 0, // p_vaddr
    0, 0, 0x40, 0, 0, 0, 0, 0, // p_paddr
    209, 0, 0, 0, 0, 0, 0, 0, // p_filesz
    209, 0, 0, 0, 0, 0, 0, 0, // p_memsz
    0, 0x10, 0, 0, 0, 0, 0, 0, // p_align
    // code
    0x48, 0x8b, 0x44, 0x24, 0x08, // mov rax, [rsp+8]      argv[0]
    0x0f, 0xb6, 0x38, // movzx edi, byte [rax]            its first byte: the fd
    0xbe, 2, 0, 0, 0, // mov esi, F_SETFD
    0xba, 1, 0, 0, 0, // mov edx, FD_CLOEXEC
    0xb8, 72, 0, 0, 0, // mov eax, 72 (fcntl)
    0x0f, 0x05, // syscall
    0x48, 0x8b, 0x7c, 0x24, 0x10, // mov rdi, [rsp+16]     argv[1]: the program
    0x48, 0x8d, 0x74, 0x24, 0x18, // lea rsi, [rsp+24]     &argv[2]: its argv
    0x48, 0x8b, 0x04, 0x24, // mov rax, [rsp]              argc
    0x48, 0x8d, 0x54, 0xc4, 0x10, // lea rdx, [rsp+rax*8+16] envp
    0xb8, 59, 0, 0, 0, // mov eax, 59 (execve)
    0x0f, 0x05, // syscall
    0xf7, 0xd8, // neg eax                                 -errno -> errno
    0x50, // push rax
    0x48, 0x8b, 0x44, 0x24, 0x10, // mov rax, [rsp+16]     argv[0] again
    0x0f, 0xb6, 0x38, // movzx edi, byte [rax]            the report fd
    0x48, 0x89, 0xe6, // mov rsi, rsp                     &errno
    0xba, 4, 0, 0, 0, // mov edx, 4
    0xb8, 1, 0, 0, 0, // mov eax, 1 (write)
    0x0f, 0x05, // syscall
    0xbf, 127, 0, 0, 0, // mov edi, 127
    0xb8, 231, 0, 0, 0, // mov eax, 231 (exit_group)
    0x0f, 0x05, // syscall
];

/// Architectures without a trampoline exec the program directly (unprotected).
#[cfg(not(target_arch = "x86_64"))]
pub const TRAMPOLINE: &[u8] = &[];

const MFD_CLOEXEC: libc::c_uint = 0x1;
const MFD_ALLOW_SEALING: libc::c_uint = 0x2;
const MFD_EXEC: libc::c_uint = 0x10;

/// Parent side: the trampoline in a sealed, close-on-exec memfd; `None` where there is no
/// trampoline for this architecture.
pub fn trampoline() -> Result<Option<OwnedFd>> {
    if TRAMPOLINE.is_empty() {
        return Ok(None);
    }
    let name = c"husk-exec";
    // MFD_EXEC keeps it executable where vm.memfd_noexec would say otherwise; kernels older
    // than 6.3 do not know the flag.
    let create = |flags: libc::c_uint| {
        // SAFETY: memfd_create with a NUL-terminated name.
        check(unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags) })
    };
    let raw = match create(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC) {
        Err(Errno(libc::EINVAL)) => create(MFD_CLOEXEC | MFD_ALLOW_SEALING)?,
        other => other?,
    };
    // SAFETY: a fresh descriptor from the kernel.
    let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    crate::write_all(&fd, TRAMPOLINE)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our own descriptor.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } as libc::c_long)?;
    Ok(Some(fd))
}

/// What the trampoline writes to the report descriptor when the final execve fails: the
/// errno as 4 native-endian bytes.
pub const EXEC_FAILED_LEN: usize = 4;

/// Child side: execs through the trampoline `fd`. `tramp_argv` must be
/// `[report fd as a one-byte string, program path, argv..., NULL]`, and the report descriptor
/// must not be close-on-exec (the trampoline makes it so for the final exec). Returns only on
/// failure.
pub fn exec_via(
    fd: BorrowedFd<'_>,
    tramp_argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> Errno {
    // SAFETY: NULL-terminated arrays of C strings that outlive the call; AT_EMPTY_PATH execs
    // the descriptor itself.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            tramp_argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::last()
}
