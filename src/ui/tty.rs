//! The dashboard's terminal watch: poll(2) on the terminal, on a socket the SIGWINCH handler
//! writes to and on the [`Waker`](super::Waker)'s socket. The only `unsafe` of `ui/` (the
//! signal handler) lives here; it never touches a process.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{SetArg, tcgetattr, tcsetattr};

/// What the terminal has for us.
pub(super) enum Tty {
    Input,
    Resized,
    /// A [`Waker`](super::Waker): a view is waiting in the slot.
    Woken,
    Quiet,
    Gone,
}

/// The terminal the keys come from, watched with poll(2), and a socket that a SIGWINCH
/// handler writes to, so a resize is drawn at once.
pub(super) struct TtyWatch {
    tty: Option<OwnedFd>,
    /// Watched when /dev/tty cannot be opened.
    stdin: io::Stdin,
    resized: Option<UnixStream>,
    woken: Option<UnixStream>,
}

/// The write end of the resize socket; -1 until the first dashboard starts.
static WINCH: AtomicI32 = AtomicI32::new(-1);

/// Installs the SIGWINCH handler once; returns the read end of its socket.
fn watch_resizes() -> Option<UnixStream> {
    let (ours, theirs) = UnixStream::pair().ok()?;
    ours.set_nonblocking(true).ok()?;
    theirs.set_nonblocking(true).ok()?;
    // The write end lives as long as the process: the handler may run at any time.
    let previous = WINCH.swap(theirs.into_raw_fd(), Ordering::AcqRel);
    if previous >= 0 {
        // The write end an earlier dashboard leaked on purpose; its read end is gone, so
        // nothing uses it.
        let _ = nix::unistd::close(previous);
    } else {
        // SAFETY: the handler only loads an atomic and calls write(2), which is
        // async-signal-safe; a full socket drops the byte, which is fine (one is enough).
        let installed = unsafe {
            signal_hook_registry::register(libc::SIGWINCH, || {
                let fd = WINCH.load(Ordering::Acquire);
                if fd >= 0 {
                    // WHY raw: the fd is a number in an atomic; nix's write wants a
                    // borrowed fd.
                    libc::write(fd, [1u8].as_ptr().cast(), 1);
                }
            })
        };
        installed.ok()?;
    }
    Some(ours)
}

impl TtyWatch {
    pub(super) fn open(woken: Option<UnixStream>) -> TtyWatch {
        // crossterm reads stdin when it is a terminal and /dev/tty otherwise; watching
        // /dev/tty sees the same input and the same hangup either way.
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open("/dev/tty")
            .ok()
            .map(OwnedFd::from);
        TtyWatch { tty, stdin: io::stdin(), resized: watch_resizes(), woken }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match &self.tty {
            Some(tty) => tty.as_fd(),
            None => self.stdin.as_fd(),
        }
    }

    /// Waits for input (or, `stalled`, only for a hangup or a resize) at most `timeout`.
    pub(super) fn wait(&self, timeout: Duration, stalled: bool) -> Tty {
        let events = if stalled { PollFlags::empty() } else { PollFlags::POLLIN };
        let mut pfds = [
            PollFd::new(self.fd(), events),
            self.watch(self.resized.as_ref()),
            self.watch(self.woken.as_ref()),
        ];
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        if !matches!(poll(&mut pfds, timeout), Ok(1..)) {
            return Tty::Quiet; // timeout, or EINTR: look again
        }
        // Flags nix does not know count as something happened, but not as a hangup.
        let any = |p: &PollFd<'_>| p.any().unwrap_or(true);
        let gone = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
        if pfds[0].revents().is_some_and(|r| r.intersects(gone)) {
            return Tty::Gone;
        }
        let input = any(&pfds[0]);
        if any(&pfds[1]) {
            drain(self.resized.as_ref());
            if !input {
                return Tty::Resized;
            }
        }
        if any(&pfds[2]) {
            drain(self.woken.as_ref());
            if !input {
                return Tty::Woken;
            }
        }
        Tty::Input
    }

    /// A wake-up socket to wait on. A missing one is stood in for by the terminal asking
    /// for nothing: poll then reports only the terminal's hangup or error there, which the
    /// terminal's own entry has already returned as `Gone`.
    fn watch<'a>(&'a self, socket: Option<&'a UnixStream>) -> PollFd<'a> {
        match socket {
            Some(s) => PollFd::new(s.as_fd(), PollFlags::POLLIN),
            None => PollFd::new(self.fd(), PollFlags::empty()),
        }
    }

    /// Writes the terminal's settings back unchanged: the kernel then wakes everything
    /// waiting to read it (`n_tty_set_termios` in Linux), edge-triggered waiters included.
    pub(super) fn rearm(&self) {
        if let Ok(settings) = tcgetattr(self.fd()) {
            let _ = tcsetattr(self.fd(), SetArg::TCSANOW, &settings);
        }
    }
}

/// Empties a wake-up socket without waiting.
fn drain(socket: Option<&UnixStream>) {
    let mut buf = [0u8; 64];
    while let Some(Ok(1..)) = socket.map(|mut s| s.read(&mut buf)) {}
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_wake_up_without_a_resize_socket_is_seen_and_drained() {
        let (ours, theirs) = UnixStream::pair().expect("pair");
        ours.set_nonblocking(true).expect("nonblocking");
        let watch = TtyWatch { tty: None, stdin: io::stdin(), resized: None, woken: Some(ours) };
        (&theirs).write_all(&[1, 1]).expect("write");
        // Stalled, so stdin (whatever the test runner gave us) only counts if it is gone.
        let first = watch.wait(Duration::from_secs(5), true);
        assert!(matches!(first, Tty::Woken | Tty::Gone));
        if matches!(first, Tty::Woken) {
            assert!(matches!(watch.wait(Duration::from_millis(10), true), Tty::Quiet));
        }
    }
}
