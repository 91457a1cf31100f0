//! corral's side of the keeper (see [`crate::keeper`]): starts it, tells it which process
//! groups exist, and says goodbye at a clean exit. The keeper outlives corral just long
//! enough to kill what corral left, however corral died (even `kill -9`).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::fcntl::{FcntlArg, OFlag, fcntl};

/// Set in the keeper of a library primary, to the primary's pid (see [`crate::cluster`]).
pub const KEEPER_VAR: &str = "CORRAL_KEEPER";

/// Whether the keeper is a copy of this program with its own arguments (a library primary,
/// whose program is not the corral binary and knows no `__keeper`).
static AS_THIS_PROGRAM: AtomicBool = AtomicBool::new(false);

/// From now on the keeper is started as this program, with the arguments it was given and
/// `CORRAL_KEEPER=PID`: arguments it parsed once parse again, and `Cluster::is_primary`
/// runs the keeper instead of returning.
pub fn start_as_this_program() {
    AS_THIS_PROGRAM.store(true, Ordering::Relaxed);
}

pub struct Keeper {
    pid: u32,
    pipe: Option<ChildStdin>,
    /// Groups to forget, sent with the next [`Keeper::flush`]: telling the keeper wakes
    /// it, and right after an exit it would take a core from the replacement being
    /// started. (A new group is told at once: until then corral's death would leave it.)
    forgets: String,
}

impl Keeper {
    /// Starts the keeper; `None` (and a warning) when it cannot be started.
    pub fn start() -> Option<Keeper> {
        let primary = std::process::id().to_string();
        let mut command = Command::new("/proc/self/exe");
        if AS_THIS_PROGRAM.load(Ordering::Relaxed) {
            let mut own = std::env::args_os();
            if let Some(argv0) = own.next() {
                command.arg0(argv0);
            }
            command.args(own).env(KEEPER_VAR, &primary);
        } else {
            command.arg("__keeper").arg(&primary);
        }
        let started = command
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
            if let Ok(flags) = fcntl(p, FcntlArg::F_GETFL) {
                let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
                let _ = fcntl(p, FcntlArg::F_SETFL(flags));
            }
        }
        // The child is reaped by corral's own reaper; std's handle is not waited on.
        Some(Keeper { pid: child.id(), pipe, forgets: String::new() })
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
        use std::fmt::Write as _;
        let _ = writeln!(self.forgets, "-{pgid}");
    }

    /// Sends the forgets gathered since the last flush.
    pub fn flush(&mut self) {
        if !self.forgets.is_empty() {
            let lines = std::mem::take(&mut self.forgets);
            self.say(&lines);
        }
    }

    /// A clean exit: nothing to kill.
    pub fn bye(&mut self) {
        self.flush();
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
