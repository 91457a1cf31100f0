//! What the dashboard draws and what it asks for: built by the runtime (which owns every
//! fact), read by the UI thread. Plain data, so rendering is a pure function of it.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::core::{Snapshot, UserAction, WorkerKey};

/// One frame's worth of facts.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub snapshot: Snapshot,
    /// Per worker, in the order of `snapshot.workers`.
    pub extras: Vec<WorkerExtra>,
    /// Messages per second from all workers, over the last second.
    pub events_per_sec: u64,
    /// Failed runs (crashes, kills, timeouts) in the last 60 s.
    pub crashes_last_minute: u64,
    /// Failed runs per second over the last minute, oldest first (the sparkline).
    pub crash_history: Vec<u64>,
    /// The tail of the output pane, as the UI asked for it.
    pub pane: Pane,
    /// Where corral's own diagnostics go while the dashboard is on.
    pub log_path: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerExtra {
    /// Percent of one core, whole process tree.
    pub cpu: Option<f32>,
    /// Resident bytes, whole process tree.
    pub rss: Option<u64>,
    pub events_per_sec: u64,
    /// The worker's last `status` text.
    pub status: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pane {
    /// Oldest first, at most the requested number of rows.
    pub lines: Vec<PaneLine>,
    /// Lines that match the request in all (to bound scrolling).
    pub matching: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    Stdout,
    Stderr,
    Event,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PaneLine {
    pub at: SystemTime,
    /// `web.2`
    pub id: String,
    pub kind: LineKind,
    /// Raw (lossy UTF-8); the renderer neutralises control characters.
    pub text: String,
}

/// Which lines the output pane shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaneRequest {
    /// `None`: every worker.
    pub worker: Option<WorkerKey>,
    /// Events instead of output lines.
    pub events: bool,
    /// Only lines containing this (case-insensitive unless it has capitals).
    pub filter: String,
    /// How many lines fit.
    pub rows: usize,
    /// Lines up from the newest; 0 follows the tail.
    pub scroll: usize,
}

/// What the UI thread asks of the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UiRequest {
    Action(UserAction),
    /// `q` / Ctrl-C: graceful shutdown; again: kill everything.
    Quit(String),
    Pane(PaneRequest),
}

/// Whether `text` matches a pane filter: smart case, like ripgrep's `-S`.
pub fn filter_matches(filter: &str, text: &str) -> bool {
    if filter.is_empty() {
        return true;
    }
    if filter.chars().any(char::is_uppercase) {
        text.contains(filter)
    } else {
        text.to_lowercase().contains(filter)
    }
}
