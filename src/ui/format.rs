//! Short, fixed-width texts for the table: uptimes, sizes, percentages, states.

use std::time::Duration;

use crate::core::{ExitReason, LastExit, WorkerState, WorkerView};

/// `12s`, `3m05s`, `2h04m`, `3d04h`.
pub fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
        _ => format!("{}d{:02}h", s / 86_400, (s / 3600) % 24),
    }
}

/// A countdown: `0.4s`, `12s`.
pub fn countdown(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}s", d.as_secs())
    }
}

/// `812K`, `34M`, `1.2G`.
pub fn bytes(n: u64) -> String {
    const K: u64 = 1024;
    match n {
        0..K => format!("{n}B"),
        K..1_048_576 => format!("{}K", n / K),
        1_048_576..1_073_741_824 => format!("{}M", n / (K * K)),
        _ => format!("{:.1}G", n as f64 / (K * K * K) as f64),
    }
}

/// The STATE column: a symbol and a word, never colour alone.
pub fn state(w: &WorkerView) -> String {
    if w.replacement.is_some() {
        return "⟳ reloading".into();
    }
    match &w.state {
        WorkerState::Starting => "◐ starting".into(),
        WorkerState::Running => "● running".into(),
        WorkerState::Stopping => "◌ stopping".into(),
        WorkerState::Backoff { left } if w.crash_looping => {
            format!("↻ crash-loop {}", countdown(*left))
        }
        WorkerState::Backoff { left } => format!("↻ backoff {}", countdown(*left)),
        WorkerState::Stopped => "■ stopped".into(),
        WorkerState::GaveUp => "✖ gave up".into(),
        WorkerState::Failed { left, .. } => format!("! failed {}", countdown(*left)),
    }
}

/// The LAST EXIT column: the status exactly as the kernel gave it (`SIGSEGV`, `exit 1`),
/// and what corral did when it caused the exit: `SIGKILL (killed by user)`, or on a narrow
/// terminal `SIGKILL (user)`.
pub fn last_exit(e: &LastExit, narrow: bool) -> String {
    let tag = match e.reason {
        ExitReason::Crashed | ExitReason::Exited => return e.status.to_string(),
        reason if !narrow => reason.label(),
        ExitReason::KilledByUser => "user",
        ExitReason::RestartedByUser => "restart",
        ExitReason::Stopped => "stop",
        ExitReason::HeartbeatTimeout => "hung",
        ExitReason::MemoryLimit => "memory",
        ExitReason::ReadyTimeout => "not ready",
        ExitReason::Reload => "reload",
        ExitReason::ScaledDown => "scaled",
        ExitReason::Shutdown => "shutdown",
    };
    format!("{} ({tag})", e.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        assert_eq!(uptime(Duration::from_secs(12)), "12s");
        assert_eq!(uptime(Duration::from_secs(185)), "3m05s");
        assert_eq!(uptime(Duration::from_mins(124)), "2h04m");
        assert_eq!(uptime(Duration::from_hours(76)), "3d04h");
        assert_eq!(bytes(812 * 1024), "812K");
        assert_eq!(bytes(34 << 20), "34M");
        assert_eq!(bytes(1288 << 20), "1.3G");
        assert_eq!(countdown(Duration::from_millis(400)), "0.4s");
        assert_eq!(countdown(Duration::from_secs(12)), "12s");
    }
}
