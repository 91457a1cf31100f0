//! The line the dashboard leaves on the terminal when it closes: the screen it drew is
//! gone, so this says what ran, how it ended and where to read more.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::core::Supervisor;

/// Prints [`exit_summary`] on stderr, once the terminal is given back.
pub(super) fn print(supervisor: &Supervisor, instance: &str, code: u8, log_dir: Option<&Path>) {
    let line = exit_summary(supervisor, instance, code, log_dir);
    // The terminal may be gone (a hangup): nothing to tell then.
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// `corral: shop stopped, exit code 0 · 4 workers, 7 restarts · logs in DIR`, for a
/// local dashboard's run (headless output already said all of it).
fn exit_summary(
    supervisor: &Supervisor,
    instance: &str,
    code: u8,
    log_dir: Option<&Path>,
) -> String {
    let snapshot = supervisor.snapshot(Instant::now());
    let workers: u32 = snapshot.groups.iter().map(|g| g.workers).sum();
    let restarts = snapshot.total_restarts;
    let instance = crate::text::escape(instance, false);
    let mut line = format!("corral: {instance} stopped, exit code {code} · ");
    let _ = write!(line, "{workers} {}", plural(workers, "worker"));
    if snapshot.groups.len() > 1 {
        let _ = write!(line, " in {} groups", snapshot.groups.len());
    }
    let _ = write!(line, ", {restarts} {}", plural(restarts, "restart"));
    if let Some(dir) = log_dir {
        let _ =
            write!(line, " · logs in {}", crate::text::escape(&dir.display().to_string(), false));
    }
    // Only when there is something in it. With the dashboard it holds corral's decisions
    // (spawns, exits and why), not only warnings, so the line does not call them warnings.
    let diagnostics =
        crate::logging::log_path().filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0));
    if let Some(path) = diagnostics {
        let path = crate::text::escape(&path.display().to_string(), false);
        let _ = write!(line, " · corral's diagnostics in {path}");
    }
    line
}

fn plural(n: u32, word: &str) -> String {
    if n == 1 { word.to_string() } else { format!("{word}s") }
}
