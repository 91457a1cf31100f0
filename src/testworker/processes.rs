//! The processes the test worker starts: `--children` kept in its group, and the
//! `--escape`d `sleep` that leaves its group and session.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

pub fn spawn_children(count: u32) -> io::Result<Vec<Child>> {
    (0..count).map(|_| Command::new("sleep").arg("1000").stdin(Stdio::null()).spawn()).collect()
}

/// Leaves a `sleep 1000` behind that is neither our child nor in our group or session:
/// the intermediate process exits at once, so the sleep is re-parented (to corral, the
/// subreaper, if corral does its job).
pub fn escape() -> io::Result<()> {
    let mut command = Command::new("sleep");
    command.arg("1000").stdin(Stdio::null());
    // WHY raw: between fork and exec only calls that cannot allocate (nix's fork is unsafe
    // too, for the same reason).
    // SAFETY: the closure runs in the forked child between fork and exec and calls only
    // async-signal-safe functions (fork, setsid, _exit); it allocates nothing.
    unsafe {
        command.pre_exec(|| match libc::fork() {
            -1 => Err(io::Error::last_os_error()),
            // The grandchild: a new session (hence a new group), then exec of `sleep`.
            0 if libc::setsid() == -1 => Err(io::Error::last_os_error()),
            0 => Ok(()),
            // The intermediate: gone before exec, which orphans the grandchild.
            _ => libc::_exit(0),
        });
    }
    // Reap the intermediate; the grandchild is someone else's now.
    command.spawn()?.wait()?;
    Ok(())
}
