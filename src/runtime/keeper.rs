//! corral's side of the keeper (see [`crate::keeper`]): starts it, tells it which process
//! groups exist, and says goodbye at a clean exit. The keeper outlives corral just long
//! enough to kill what corral left, however corral died (even `kill -9`).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};

pub struct Keeper {
    pid: u32,
    pipe: Option<ChildStdin>,
}

impl Keeper {
    /// Starts the keeper; `None` (and a warning) when it cannot be started.
    pub fn start() -> Option<Keeper> {
        let started = Command::new("/proc/self/exe")
            .arg("__keeper")
            .arg(std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group: the terminal's Ctrl-C, Ctrl-Z and hangup are not for it.
            .process_group(0)
            .env_remove("CORRAL_PRIMARY_PID")
            .spawn();
        let mut child = match started {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(
                    "cannot start the keeper ({e}): if corral is killed, descendants of its workers may survive it"
                );
                return None;
            }
        };
        let pipe = child.stdin.take();
        if let Some(p) = &pipe {
            // WHY non-blocking: a keeper that does not read must never stall supervision.
            // SAFETY: fcntl on a descriptor we own, integer arguments only.
            unsafe {
                let fd = std::os::fd::AsRawFd::as_raw_fd(p);
                let flags = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
        }
        // The child is reaped by corral's own reaper; std's handle is not waited on.
        Some(Keeper { pid: child.id(), pipe })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A worker's process group exists.
    pub fn watch(&mut self, pgid: u32) {
        self.say(&format!("+{pgid}\n"));
    }

    /// A process group is gone (its number may be reused: not to be killed any more).
    pub fn forget(&mut self, pgid: u32) {
        self.say(&format!("-{pgid}\n"));
    }

    /// A clean exit: nothing to kill.
    pub fn bye(&mut self) {
        self.say("bye\n");
        self.pipe = None;
    }

    fn say(&mut self, line: &str) {
        if let Some(p) = self.pipe.as_mut()
            && let Err(e) = p.write_all(line.as_bytes())
        {
            tracing::warn!("cannot tell the keeper: {e}");
        }
    }
}
