//! The read-only picture of all workers that front-ends render.

use std::time::{Duration, Instant};

use super::event::{ExitReason, ExitStatus};
use super::worker::WorkerKey;

/// How a run ended, kept for the LAST EXIT column.
#[derive(Clone, Debug, PartialEq)]
pub struct LastExit {
    pub status: ExitStatus,
    pub reason: ExitReason,
    pub at: Instant,
    pub uptime: Duration,
}

/// The states of README.md#supervision, as shown.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerState {
    Starting,
    Running,
    /// Running, ready once, and its readiness probe fails now.
    Unready,
    Stopping,
    Backoff {
        left: Duration,
    },
    Stopped,
    GaveUp,
    Failed {
        left: Duration,
        error: String,
    },
}

impl WorkerState {
    pub fn label(&self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Running => "running",
            WorkerState::Unready => "unready",
            WorkerState::Stopping => "stopping",
            WorkerState::Backoff { .. } => "backoff",
            WorkerState::Stopped => "stopped",
            WorkerState::GaveUp => "gave-up",
            WorkerState::Failed { .. } => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct WorkerView {
    pub key: WorkerKey,
    /// `web.2`
    pub id: String,
    pub pid: Option<u32>,
    pub generation: Option<u32>,
    pub state: WorkerState,
    pub uptime: Option<Duration>,
    pub restarts: u32,
    pub last_exit: Option<LastExit>,
    pub crash_looping: bool,
    /// During a rolling reload: the PID of this worker's replacement.
    pub replacement: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupView {
    pub name: String,
    pub workers: u32,
    pub up: u32,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub groups: Vec<GroupView>,
    pub workers: Vec<WorkerView>,
    pub total_restarts: u32,
    pub shutting_down: bool,
    /// During a graceful shutdown: how long until the first SIGKILL of a worker that has
    /// not ended yet (its kill timeout), for the dashboard's countdown.
    pub kill_in: Option<Duration>,
}
