//! The test worker's signal dispositions: C-program defaults, an ignored SIGTERM, the
//! `--term-exit` handler, and a death by any signal, real-time ones included.

use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

use super::channel;
use crate::backend;
use crate::signal::Signal;

/// Undoes what the Rust runtime changed that a C program would not have.
///
/// WHY: std installs a SIGSEGV/SIGBUS handler (stack-overflow detection) that, for a signal
/// sent with `kill` rather than a real fault, resets the disposition and *returns*: the
/// first `kill -SEGV` from a test would be swallowed. Core dumps are turned off so that
/// signal deaths in tests leave no `core` files and take no time to write.
pub fn behave_like_a_c_program() {
    backend::default_action(Signal::SEGV);
    backend::default_action(Signal(libc::SIGBUS));
    // Lowering a limit is always allowed.
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
}

/// `--ignore-term`.
pub fn ignore_term() {
    backend::ignore(Signal::TERM);
}

/// `--term-exit`: on SIGTERM, print `got SIGTERM` (after the channel's bytes, when
/// `channel::read_on_sigterm` asked for them) and exit with `code`.
pub fn exit_on_term(code: u8) {
    const MESSAGE: &[u8] = b"got SIGTERM\n";
    let code = i32::from(code);
    // WHY raw inside: `_exit` has no nix wrapper, and nix's write wants a borrowed fd that
    // only `Stdout` (a lock, not for a signal handler) or an unsafe borrow would give.
    // SAFETY: the handler calls only async-signal-safe functions (recv through the
    // channel's report, write(2), _exit(2)) on static or stack buffers, and reads a
    // copied integer; it allocates nothing and takes no lock. _exit skips Rust's stdout buffer,
    // which is why everything is written straight to fd 1.
    let _ = unsafe {
        signal_hook_registry::register(libc::SIGTERM, move || {
            channel::report_from_signal_handler(|bytes| {
                libc::write(libc::STDOUT_FILENO, bytes.as_ptr().cast(), bytes.len());
            });
            libc::write(libc::STDOUT_FILENO, MESSAGE.as_ptr().cast(), MESSAGE.len());
            libc::_exit(code);
        })
    };
}

/// Dies by `signal` the way a crashing C program would: default disposition, unblocked,
/// sent to itself. Returns only if the default action does not end the process.
pub fn die_by(signal: Signal) {
    backend::default_action(signal);
    // Every signal is unblocked: nix's `SigSet` cannot name a real-time one alone, but
    // `all` holds them, and nothing else matters to a process about to die.
    let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&SigSet::all()), None);
    let _ = backend::signal_pid(std::process::id(), signal);
}
