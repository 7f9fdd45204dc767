//! Arbitrary bytes as `linux.seccomp` (skipped unless oci-spec parses them) compiled to a
//! BPF program by husk-hardening (`Plan::new`).
//!
//! husk-hardening does not expose the compiled program, so its sanity is checked by the
//! kernel: every filter `Plan::new` accepts is loaded with seccomp(2) in a forked child,
//! which must succeed (the kernel's checker rejects out-of-range jumps, bad opcodes or
//! loads, a missing final return, and programs over 4096 instructions with EINVAL/ENOMEM).

#![no_main]

use std::sync::atomic::{AtomicI32, Ordering};

use husk_hardening::Plan;
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::{Linux, LinuxSeccomp, Process};

/// Result slot shared with the forked child: `PENDING` until the child has tried to load
/// the filter, then 0 or the errno.
const PENDING: i32 = -1;

fn shared_slot() -> &'static AtomicI32 {
    use std::sync::OnceLock;
    static SLOT: OnceLock<usize> = OnceLock::new();
    let addr = *SLOT.get_or_init(|| {
        // SAFETY: a fresh anonymous shared mapping; checked for MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap of the result slot failed");
        p as usize
    });
    // SAFETY: the mapping is page-aligned, zero-initialised, never unmapped, and only
    // accessed through this atomic.
    unsafe { &*(addr as *const AtomicI32) }
}

/// Loads the plan's filter in a forked child and returns 0 or the errno seccomp(2) gave.
///
/// The child only makes the prctl/seccomp calls and then stores the result in shared
/// memory and spins: once the filter is in place any further syscall may be killed,
/// trapped, failed or sent to a notify listener nobody reads, so the parent kills it.
fn load_in_child(plan: &Plan) -> i32 {
    let slot = shared_slot();
    slot.store(PENDING, Ordering::SeqCst);
    // SAFETY: the child runs no Rust or libFuzzer code that allocates or locks: two
    // syscalls through the plan's async-signal-safe child methods, an atomic store, a spin.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = match plan
            .set_no_new_privs()
            .and_then(|()| plan.install_seccomp())
        {
            Ok(listener) => {
                // Closing a notify listener is a syscall the filter may block on.
                std::mem::forget(listener);
                0
            }
            Err(f) => f.errno.0,
        };
        slot.store(code, Ordering::SeqCst);
        loop {
            std::hint::spin_loop();
        }
    }
    let mut status = 0;
    let res = loop {
        let v = slot.load(Ordering::SeqCst);
        if v != PENDING {
            break v;
        }
        // SAFETY: pid is our child; WNOHANG only reaps it if it already died.
        let dead = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert_eq!(
            dead, 0,
            "the child died before loading the filter (status {status:#x})"
        );
        std::thread::yield_now();
    };
    // SAFETY: pid is our child, still unreaped: kill + waitpid reap it.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, &mut status, 0);
    }
    res
}

fuzz_target!(|data: &[u8]| {
    let Ok(seccomp) = serde_json::from_slice::<LinuxSeccomp>(data) else {
        return;
    };
    let mut process = Process::default();
    process.set_no_new_privileges(Some(true));
    let mut linux = Linux::default();
    linux.set_seccomp(Some(seccomp));

    match Plan::new(&process, Some(&linux)) {
        Ok(plan) => {
            assert!(plan.has_seccomp());
            let errno = load_in_child(&plan);
            assert_eq!(
                errno,
                0,
                "the kernel refused the compiled filter: {}",
                std::io::Error::from_raw_os_error(errno)
            );
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                !msg.contains(['\n', '\r']),
                "error is not one line: {msg:?}"
            );
        }
    }
});
