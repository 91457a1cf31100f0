//! What the dashboard draws and what it asks for: built by the runtime (which owns every
//! fact), read by the UI thread. Plain data, so rendering is a pure function of it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::wire;
use crate::core::{ExitReason, ExitStatus, Snapshot, UserAction, WorkerKey};

/// One frame's worth of facts. Serialisable, so `corral attach` can be sent one (see
/// `wire`); the UI cannot tell where its view came from.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct View {
    #[serde(with = "wire::snapshot")]
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
    /// The metrics of the pane's worker (or group), when the pane shows them.
    pub metrics: Option<Metrics>,
    /// The details of the pane's worker, when the pane shows them.
    pub details: Option<Details>,
    /// Set by `corral attach`, never sent: whose corral this is, and what its replies said.
    #[serde(skip)]
    pub attached: Option<Attached>,
}

/// The corral an attached dashboard shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attached {
    pub instance: String,
    pub pid: u32,
    /// The latest error a request got (`unknown worker`, a failed reload), with a serial
    /// that changes with each, so the footer shows each once.
    pub notice: Option<(u64, String)>,
}

/// The profiler view (docs/dashboard.md#the-profiler-view "Metrics"): every series of a worker or a group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// `web.1`, or `web (3 workers)` for a group.
    pub who: String,
    pub series: Vec<Series>,
    /// Names beyond the per-worker cap: how many, and the first few of them.
    pub dropped: u64,
    pub dropped_names: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesKind {
    /// A `metric` message's value (summed over a group).
    Metric,
    /// A custom event type: the count, and its rate.
    Event,
    /// Percent of one core, whole process tree.
    Cpu,
    /// Resident bytes, whole process tree.
    Memory,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub kind: SeriesKind,
    /// The latest value: a metric's value, an event type's count so far.
    pub latest: Option<f64>,
    /// Change per second (over the last few seconds).
    pub rate: Option<f64>,
    /// One point a second, oldest first, `METRIC_SECONDS` of them; `None` where nothing
    /// ran (a restart shows as a gap). For events: how many arrived that second.
    pub points: Vec<Option<f64>>,
}

/// How many seconds of history a metrics chart shows.
pub const METRIC_SECONDS: usize = 300;

/// `Enter`: what there is to know about one worker.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Details {
    pub id: String,
    pub command: String,
    pub cwd: String,
    pub pid: Option<u32>,
    pub generation: Option<u32>,
    pub restarts: u32,
    /// Runs that failed (crashed, killed, hung, over memory, never ready).
    pub crashes: u64,
    pub protocol_errors: u64,
    /// The group's listening sockets (every worker of the group shares them).
    pub sockets: Vec<String>,
    pub status: Option<String>,
    /// Newest first, at most `EXITS_KEPT`.
    pub exits: Vec<ExitRecord>,
}

/// How many exits the details keep per worker.
pub const EXITS_KEPT: usize = 10;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitRecord {
    #[serde(with = "wire::epoch_ms")]
    pub at: SystemTime,
    #[serde(with = "wire::status")]
    pub status: ExitStatus,
    pub reason: ExitReason,
    #[serde(with = "wire::duration_ms")]
    pub uptime: Duration,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerExtra {
    /// Percent of one core, whole process tree.
    pub cpu: Option<f32>,
    /// Resident bytes, whole process tree.
    pub rss: Option<u64>,
    pub events_per_sec: u64,
    /// The worker's last `status` text.
    pub status: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pane {
    /// Oldest first, at most the requested number of rows.
    pub lines: Vec<PaneLine>,
    /// Lines that match the request in all (to bound scrolling).
    pub matching: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Stdout,
    Stderr,
    Event,
    /// What the supervisor did to the worker (spawned, exited, restart scheduled).
    Supervisor,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaneLine {
    #[serde(with = "wire::epoch_ms")]
    pub at: SystemTime,
    /// `web.2`
    pub id: String,
    pub kind: LineKind,
    /// Raw (lossy UTF-8); the renderer neutralises control characters.
    pub text: String,
}

/// Which lines the output pane shows.
/// Sent by `corral attach` as the `pane` of its `view` and `pane` requests; fields left out
/// take their defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaneRequest {
    /// `None`: every worker.
    #[serde(with = "wire::worker_key")]
    pub worker: Option<WorkerKey>,
    pub mode: PaneMode,
    /// Metrics: summed over `worker`'s whole group.
    pub group: bool,
    /// Only lines containing this (case-insensitive unless it has capitals).
    pub filter: String,
    /// How many lines fit.
    pub rows: usize,
    /// How many characters of a line's text fit (the workers' terminals get this width).
    pub cols: usize,
    /// Lines up from the newest; 0 follows the tail.
    pub scroll: usize,
}

/// What the output pane shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaneMode {
    #[default]
    Output,
    /// The worker's messages and the supervisor's lifecycle events for it.
    Events,
    Metrics,
    Details,
}

/// What the UI thread asks of the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UiRequest {
    Action(UserAction),
    /// `q` / Ctrl-C: graceful shutdown, again: kill everything; or the terminal is gone.
    Quit(crate::core::ShutdownTrigger),
    Pane(PaneRequest),
    /// `>` in the details: one JSON value to the worker's `process.on('message')`.
    Send {
        key: crate::core::WorkerKey,
        message: serde_json::Value,
    },
    /// `Q`, then `y`, in an attached dashboard: shut that corral down. (There, `Quit` only
    /// detaches: a lost terminal or a panic in `attach` must never stop the supervisor.)
    Shutdown,
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
