//! corral's own signals: every catchable one is caught, so none can kill corral without
//! its cleanup (SIGUSR2, SIGALRM, a real-time signal…), and each one that arrives is
//! counted and handed to the main loop, which decides what it means.
//!
//! One thing is decided in the handler itself: SIGTTIN/SIGTTOU sent by the terminal (a
//! background job touching it) stop corral until `fg`, as they would stop any terminal
//! program. Caught and ignored, they would make every terminal access fail and retry: a
//! busy loop. Sent by a process (`kill -TTIN`), they are a request to scale.

use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal as NixSignal, kill, pthread_sigmask};
use nix::unistd::getpid;
use tokio::io::AsyncReadExt;

use crate::signal::Signal;

/// Signals 1..=64 (Linux's `_NSIG`).
const SLOTS: usize = 65;

#[allow(clippy::declare_interior_mutable_const)] // only used to build the arrays below
const ZERO: AtomicU32 = AtomicU32::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const NOBODY: AtomicI32 = AtomicI32::new(0);
/// How many of each signal arrived since the main loop last looked.
static COUNTS: [AtomicU32; SLOTS] = [ZERO; SLOTS];
/// Who sent each signal last (`si_pid`), for the log.
static SENDERS: [AtomicI32; SLOTS] = [NOBODY; SLOTS];
#[allow(clippy::declare_interior_mutable_const)]
const NEVER: AtomicU64 = AtomicU64::new(0);
/// When each signal last arrived (`CLOCK_MONOTONIC`, ns): a duplicate is judged by when it
/// was sent, not by when the loop got to it.
static ARRIVED_NS: [AtomicU64; SLOTS] = [NEVER; SLOTS];
/// The write end of the wake-up socket; -1 until installed.
static WAKE: AtomicI32 = AtomicI32::new(-1);

/// Signals whose default would end or stop corral behind its back, beside the ones it
/// acts on. Left alone: SIGKILL and SIGSTOP (cannot be caught), SIGSEGV, SIGBUS, SIGILL,
/// SIGFPE, SIGTRAP and SIGABRT (faults of corral itself: dying is right), SIGTSTP and
/// SIGCONT (job control), SIGWINCH and SIGURG (ignored by default), SIGPIPE (ignored by
/// Rust's runtime; EPIPE is handled where it happens), and 32/33 (glibc's own).
fn caught() -> Vec<i32> {
    let mut list = vec![
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGTERM,
        libc::SIGSTKFLT,
        libc::SIGCHLD,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGSYS,
    ];
    list.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    list
}

/// What the main loop reads.
pub struct Signals {
    wake: tokio::net::UnixStream,
}

/// One signal that arrived: how often since the last look, and who sent it last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrived {
    pub signal: Signal,
    pub count: u32,
    pub sender: i32,
    /// When the last of them arrived (the handler's clock, not the loop's).
    pub at: Instant,
}

/// Unblocks every signal: a mask inherited from the parent (a shell script that blocked
/// TERM, a supervisor that forgot to reset it) would keep corral from reaping and from
/// hearing SIGTERM.
pub fn unblock_all() {
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

impl Signals {
    pub fn install() -> io::Result<Signals> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        theirs.set_nonblocking(true)?;
        let wake = tokio::net::UnixStream::from_std(ours)?;
        // The write end lives as long as the process: the handlers may run at any time.
        let previous = WAKE.swap(OwnedFd::from(theirs).into_raw_fd(), Ordering::AcqRel);
        if previous >= 0 {
            // A descriptor an earlier install leaked on purpose; nothing else uses it.
            let _ = nix::unistd::close(previous);
        }
        for sig in caught() {
            // SAFETY: `on_signal` only touches atomics and calls async-signal-safe
            // syscalls (write, kill, getpid); it never allocates or takes a lock.
            unsafe {
                signal_hook_registry::register_sigaction(sig, move |info| on_signal(sig, info))
            }
            .map_err(|e| io::Error::other(format!("signal {sig}: {e}")))?;
        }
        Ok(Signals { wake })
    }

    /// Waits until at least one signal has arrived; returns each with its count.
    pub async fn recv(&mut self) -> Vec<Arrived> {
        let mut buf = [0u8; 64];
        loop {
            let arrived = take();
            if !arrived.is_empty() {
                // Empty the wake-ups that belong to these, without waiting.
                while let Ok(n) = self.wake.try_read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
                return arrived;
            }
            if self.wake.read(&mut buf).await.is_err() {
                // Cannot happen while the write end is open (it always is); never spin.
                std::future::pending::<()>().await;
            }
        }
    }
}

fn take() -> Vec<Arrived> {
    let mut arrived = Vec::new();
    // Read the clocks only when something arrived: this runs at every turn of the loop.
    let mut clocks = None;
    for (n, count) in COUNTS.iter().enumerate() {
        let count = count.swap(0, Ordering::AcqRel);
        if count > 0 {
            let (now, now_ns) = *clocks.get_or_insert_with(|| (Instant::now(), monotonic_ns()));
            let sender = SENDERS[n].load(Ordering::Acquire);
            let age =
                Duration::from_nanos(now_ns.saturating_sub(ARRIVED_NS[n].load(Ordering::Acquire)));
            let at = now.checked_sub(age).unwrap_or(now);
            arrived.push(Arrived { signal: Signal(n as i32), count, sender, at });
        }
    }
    arrived
}

/// `CLOCK_MONOTONIC` in ns (async-signal-safe: a vDSO call; nix's wrapper allocates nothing).
fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
            + u64::try_from(t.tv_nsec()).unwrap_or(0)
    })
}

/// Whether the terminal on fd 0, 1 or 2 has our process group in the foreground.
///
/// WHY: a terminal signal raised while corral was in the background can be handled only
/// after `fg` (a second thread touched the terminal before the stop; its signal waited it
/// out), and stopping for it then would stop a foreground job: corral stopped again right
/// after `fg` once on a loaded machine (tests/jobcontrol.rs). No terminal on 0–2: `false`,
/// the stop the signal asks for.
fn in_foreground() -> bool {
    // getpgrp is async-signal-safe, and so is nix's wrapper (no allocation).
    let ours = nix::unistd::getpgrp().as_raw();
    (0..=2).any(|fd| {
        // SAFETY: tcgetpgrp is async-signal-safe and takes no pointer; a closed fd or one
        // that is not our terminal makes it return -1.
        unsafe { libc::tcgetpgrp(fd) == ours }
    })
}

fn on_signal(sig: i32, info: &libc::siginfo_t) {
    if (sig == libc::SIGTTIN || sig == libc::SIGTTOU) && info.si_code == libc::SI_KERNEL {
        // WHY: the kernel sends these to a background job that touches its terminal (a
        // read; a write under `stty tostop`; setting raw mode). Stop like the default
        // action would; `fg` continues us and the terminal call is retried.
        // getpid and kill are async-signal-safe; nix's wrappers allocate nothing.
        if !in_foreground() {
            let _ = kill(getpid(), NixSignal::SIGSTOP);
        }
        return;
    }
    let Some(slot) = COUNTS.get(sig as usize) else { return };
    ARRIVED_NS[sig as usize].store(monotonic_ns(), Ordering::Release);
    slot.fetch_add(1, Ordering::AcqRel);
    // WHY raw: the fd is a number in an atomic; nix's write wants a borrowed fd.
    // SAFETY: si_pid is valid to read for signals sent by kill/sigqueue and reads 0 (or a
    // meaningless number, used only in a log line) otherwise. write is async-signal-safe;
    // the buffer is a static byte.
    unsafe {
        SENDERS[sig as usize].store(info.si_pid(), Ordering::Release);
        let fd = WAKE.load(Ordering::Acquire);
        if fd >= 0 {
            // A full socket already holds a wake-up: nothing is lost by a failed write.
            libc::write(fd, [1u8].as_ptr().cast(), 1);
        }
    }
}
