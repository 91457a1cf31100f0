//! A pseudo-terminal for a worker's stdout and stderr (docs/development.md): corral keeps the
//! master and reads the worker's output from it; the worker gets the slave as fds 1 and 2.
//!
//! WHY ONLCR off: a terminal's output processing turns every `\n` into `\r\n`. With it off
//! the bytes read from the master are exactly the bytes the worker wrote, as from a pipe,
//! so log files and headless output are the same with and without `--pty`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;
use nix::sys::termios::{OutputFlags, SetArg, tcgetattr, tcsetattr};

/// A terminal's size in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtySize {
    pub cols: u16,
    pub rows: u16,
}

impl PtySize {
    /// Without a dashboard (headless, or before it said its pane's size): a classic
    /// terminal's, whatever corral's own terminal is; programs that divide by the width
    /// must never see 0.
    pub const DEFAULT: PtySize = PtySize { cols: 80, rows: 24 };

    /// At least a few cells each way, whatever a tiny pane says.
    pub fn clamped(cols: usize, rows: usize) -> PtySize {
        let fit = |n: usize, min: u16| u16::try_from(n).unwrap_or(u16::MAX).max(min);
        PtySize { cols: fit(cols, 10), rows: fit(rows, 2) }
    }
}

/// Both ends, close-on-exec: the worker gets the slave only through the spawn's fd placement.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a pseudo-terminal of `size`.
pub fn open(size: PtySize) -> io::Result<Pty> {
    // WHY not openpty(3): it opens both ends without close-on-exec, and another thread's
    // exec in between would leak them.
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname_r(&master)?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let master = OwnedFd::from(master);
    let mut termios = tcgetattr(&slave)?;
    termios.output_flags.remove(OutputFlags::ONLCR);
    tcsetattr(&slave, SetArg::TCSANOW, &termios)?;
    resize(master.as_fd(), size)?;
    Ok(Pty { master, slave })
}

/// Sets the terminal's size; the kernel sends SIGWINCH to its foreground process group (the
/// worker's, where it is the controlling terminal) when it changed.
pub fn resize(master: BorrowedFd<'_>, size: PtySize) -> io::Result<()> {
    let ws = libc::winsize { ws_row: size.rows, ws_col: size.cols, ws_xpixel: 0, ws_ypixel: 0 };
    // WHY raw: nix's ioctl macros only generate unsafe functions; no gain over this.
    // SAFETY: TIOCSWINSZ reads one `winsize`, which lives for the call.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &raw const ws) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a real program reads as the terminal's size (`stty size`: rows, then columns).
    fn size_seen_by_stty(pty: &Pty) -> String {
        let stdin = pty.slave.try_clone().expect("dup the slave");
        let out = std::process::Command::new("stty")
            .arg("size")
            .stdin(std::process::Stdio::from(stdin))
            .output()
            .expect("run stty");
        assert!(out.status.success(), "stty: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn a_new_pty_has_its_size_and_no_onlcr() {
        let pty = open(PtySize { cols: 132, rows: 40 }).expect("pty");
        assert_eq!(size_seen_by_stty(&pty), "40 132");
        resize(pty.master.as_fd(), PtySize { cols: 90, rows: 30 }).expect("resize");
        assert_eq!(size_seen_by_stty(&pty), "30 90");
        let t = tcgetattr(&pty.slave).expect("termios");
        assert!(!t.output_flags.contains(OutputFlags::ONLCR));
        nix::unistd::write(&pty.slave, b"a\nb\n").expect("write");
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(&pty.master, &mut buf).expect("read");
        assert_eq!(&buf[..n], b"a\nb\n");
        assert_eq!(PtySize::clamped(0, 100_000), PtySize { cols: 10, rows: u16::MAX });
    }
}
