//! The test worker's signal dispositions: C-program defaults, an ignored SIGTERM, the
//! `--term-exit` handler, and a death by any signal, real-time ones included.

use std::sync::atomic::{AtomicI32, Ordering};

use super::channel;
use crate::signal::Signal;

/// Undoes what the Rust runtime changed that a C program would not have.
///
/// WHY: std installs a SIGSEGV/SIGBUS handler (stack-overflow detection) that, for a signal
/// sent with `kill` rather than a real fault, resets the disposition and *returns*: the
/// first `kill -SEGV` from a test would be swallowed. Core dumps are turned off so that
/// signal deaths in tests leave no `core` files and take no time to write.
pub fn behave_like_a_c_program() {
    set_disposition(libc::SIGSEGV, libc::SIG_DFL);
    set_disposition(libc::SIGBUS, libc::SIG_DFL);
    // Lowering a limit is always allowed.
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
}

/// `--ignore-term`.
pub fn ignore_term() {
    set_disposition(libc::SIGTERM, libc::SIG_IGN);
}

/// `--term-exit`: on SIGTERM, print `got SIGTERM` (after the channel's bytes, when
/// `channel::read_on_sigterm` asked for them) and exit with `code`.
pub fn exit_on_term(code: u8) {
    TERM_EXIT_CODE.store(i32::from(code), Ordering::Relaxed);
    set_disposition(libc::SIGTERM, on_sigterm as extern "C" fn(libc::c_int) as usize);
}

/// The exit code of `--term-exit`, read by the signal handler.
static TERM_EXIT_CODE: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_sigterm(_: libc::c_int) {
    const MESSAGE: &[u8] = b"got SIGTERM\n";
    channel::report_from_signal_handler();
    // WHY raw: `_exit` has no nix wrapper, and nix's write wants a borrowed fd that only
    // `Stdout` (a lock, not for a signal handler) or an unsafe borrow would give.
    // SAFETY: write(2) and _exit(2) are async-signal-safe, the buffer is static, and an
    // atomic load takes no lock. _exit skips Rust's stdout buffer, which is why the
    // message is written straight to fd 1.
    unsafe {
        libc::write(libc::STDOUT_FILENO, MESSAGE.as_ptr().cast(), MESSAGE.len());
        libc::_exit(TERM_EXIT_CODE.load(Ordering::Relaxed));
    }
}

fn set_disposition(signal: libc::c_int, handler: libc::sighandler_t) {
    // WHY raw: `die_by` passes any number `--signal` parsed, real-time ones included, which
    // nix's `Signal` cannot name.
    // SAFETY: glibc's signal() installs the handler with sigaction (BSD semantics); the
    // handlers used here are SIG_DFL, SIG_IGN or the async-signal-safe `on_sigterm`.
    // Failure (SIGKILL, SIGSTOP cannot be changed) leaves the default, which is wanted.
    unsafe { libc::signal(signal, handler) };
}

/// Dies by `signal` the way a crashing C program would: default disposition, unblocked,
/// raised at itself. Returns only if the default action does not end the process.
pub fn die_by(signal: Signal) {
    set_disposition(signal.0, libc::SIG_DFL);
    // WHY raw: `signal` may be a real-time one, which nix's `SigSet` and `raise` cannot take.
    // SAFETY: plain libc calls on a local, zero-initialised sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigaddset(&raw mut set, signal.0);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &raw const set, std::ptr::null_mut());
        libc::raise(signal.0);
    }
}
