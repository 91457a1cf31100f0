//! Short, fixed-width texts for the table: uptimes, sizes, percentages, states.

use std::time::Duration;

use crate::core::{ExitReason, LastExit, WorkerState, WorkerView};

/// `12s`, `3m05s`, `2h04m`, `3d04h`.
///
/// WHY not `headless::human_duration`: a table column stays at most 5 wide (whole seconds,
/// then days); the event lines want milliseconds for short runs and never say days. Both
/// take the minutes-and-hours middle from [`clock`].
pub fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..86_400 => clock(s),
        _ => format!("{}d{:02}h", s / 86_400, (s / 3600) % 24),
    }
}

/// `3m05s` under an hour, `2h04m` from there on: the form the dashboard's uptimes and the
/// headless event lines share.
pub fn clock(secs: u64) -> String {
    if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs / 60) % 60)
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
        WorkerState::Unready => "◑ unready".into(),
        WorkerState::Stopping => "◌ stopping".into(),
        WorkerState::Backoff { left } if w.crash_looping => {
            format!("↻ crash-loop {}", countdown(*left))
        }
        WorkerState::Backoff { left } => format!("↻ backoff {}", countdown(*left)),
        WorkerState::Stopped => "■ stopped".into(),
        WorkerState::GaveUp => "✖ gave up".into(),
        WorkerState::Failed { left, .. } => format!("! failed {}", countdown(*left)),
        WorkerState::Waiting => "◇ waiting".into(),
        WorkerState::Scheduled { .. } => "◷ scheduled".into(),
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
        ExitReason::LivenessProbe => "liveness",
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
        assert_eq!(clock(60), "1m00s");
        assert_eq!(clock(3599), "59m59s");
        assert_eq!(clock(3600), "1h00m");
        assert_eq!(clock(100 * 3600 + 59), "100h00m");
    }

    #[test]
    fn the_table_and_the_event_lines_agree_between_a_minute_and_a_day() {
        for s in (60..86_400).step_by(7).chain([3599, 3600, 86_399]) {
            let d = Duration::from_millis(s * 1000 + 999);
            assert_eq!(uptime(d), crate::report::human_duration(d), "{s}s");
        }
    }
}
