//! The pod sandbox's init process (the CRI lane's pause image): like Kubernetes' pause, it holds
//! the pod's namespaces, reaps orphaned children, and exits 0 on SIGINT or SIGTERM.

extern "C" fn on_term(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(0) }
}

extern "C" fn on_child(_: libc::c_int) {
    // SAFETY: waitpid is async-signal-safe; a null status pointer is allowed.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

fn handle(sig: libc::c_int, f: extern "C" fn(libc::c_int)) {
    // SAFETY: an all-zero sigaction is valid; the handler only calls async-signal-safe functions.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = f as usize;
        sa.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

fn main() {
    if std::process::id() != 1 {
        eprintln!("pause: warning: not running as PID 1");
    }
    handle(libc::SIGINT, on_term);
    handle(libc::SIGTERM, on_term);
    handle(libc::SIGCHLD, on_child);
    loop {
        // SAFETY: pause has no preconditions; it returns after each handled signal.
        unsafe { libc::pause() };
    }
}
