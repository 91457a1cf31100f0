//! The processes the test worker starts: `--children` kept in its group, and the
//! `--escape`d `sleep` that leaves its group and session.

use std::io;
use std::process::{Child, Command, Stdio};

pub fn spawn_children(count: u32) -> io::Result<Vec<Child>> {
    (0..count).map(|_| Command::new("sleep").arg("1000").stdin(Stdio::null()).spawn()).collect()
}

/// Leaves a `sleep 1000` behind that is neither our child nor in our group or session:
/// `setsid -f` (util-linux) forks, its child starts a new session (hence a new group) and
/// execs `sleep`, and the parent exits at once, which orphans the sleep: it is re-parented
/// (to corral, the subreaper, if corral does its job).
pub fn escape() -> io::Result<()> {
    let mut command = Command::new("setsid");
    command.args(["-f", "sleep", "1000"]).stdin(Stdio::null());
    // Reap the intermediate; the grandchild is someone else's now.
    let status = command.spawn()?.wait()?;
    if status.success() { Ok(()) } else { Err(io::Error::other(format!("setsid -f: {status}"))) }
}
