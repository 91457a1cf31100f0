//! Sockets corral itself was handed, the systemd way (`LISTEN_FDS`, `LISTEN_PID`,
//! `LISTEN_FDNAMES`, from a `.socket` unit or `systemd-socket-activate`): corral passes them
//! on to its workers as if it had bound them, so corral can be restarted while the kernel
//! queues connections on a socket that never closes.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use socket2::SockRef;

use crate::worker::listen_env::{self, Announced, ListenEnvError};

/// One socket from `LISTEN_FDS`.
#[derive(Debug)]
pub struct InheritedSocket {
    /// Its `LISTEN_FDNAMES` entry (systemd's default: the socket unit's name).
    pub name: String,
    pub fd: OwnedFd,
    /// Where it listens, as people read it.
    pub local: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InheritError {
    #[error(
        "LISTEN_PID={0} is not corral's pid ({1}): these sockets were meant for another process"
    )]
    WrongPid(u32, u32),
    #[error(transparent)]
    Variables(#[from] ListenEnvError),
    #[error("LISTEN_FDS: fd {0} is not an open socket")]
    NotASocket(RawFd),
}

/// Takes the sockets of `LISTEN_FDS` when they are meant for this process (marked
/// close-on-exec, so only the copies handed to workers are inherited). Without
/// `LISTEN_FDS`, or without `LISTEN_PID` (which systemd always sets), there are none.
pub fn take_inherited() -> Result<Vec<InheritedSocket>, InheritError> {
    // The rules workers follow too (`corral::worker::listeners`), but for another pid:
    // corral is handed its sockets directly, so only a mistake (a wrapper that forked)
    // puts another process's variables here, and starting without them would hide it.
    let entries = match listen_env::from_env()? {
        Announced::Nothing => return Ok(Vec::new()),
        Announced::ForAnother(pid) => {
            return Err(InheritError::WrongPid(pid, std::process::id()));
        }
        Announced::Fds(entries) => entries,
    };
    // Checked first, taken after: a bad fd leaves every fd as it was.
    if let Some(&(fd, _)) = entries.iter().find(|(fd, _)| !is_socket(*fd)) {
        return Err(InheritError::NotASocket(fd));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (raw, name) in entries {
        // SAFETY: `raw` is an open socket (checked above) that this process inherited and
        // nothing in it owns yet: LISTEN_FDS hands these fds to whoever takes them, once.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let _ = fcntl(&fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        let local = SockRef::from(&fd)
            .local_addr()
            .ok()
            .and_then(|a| {
                a.as_socket()
                    .map(|s| s.to_string())
                    .or_else(|| a.as_pathname().map(|p| format!("unix:{}", p.display())))
            })
            .unwrap_or_else(|| format!("fd {raw}"));
        out.push(InheritedSocket { name, fd, local });
    }
    Ok(out)
}

fn is_socket(fd: RawFd) -> bool {
    crate::worker::inherited_fd(fd).is_some_and(|fd| fd.socket.is_some())
}
