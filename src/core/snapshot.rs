//! The read-only picture of all workers that front-ends render.

use std::time::{Duration, Instant, SystemTime};

use super::event::{ExitReason, ExitStatus};
use super::key::WorkerKey;

/// How a run ended, kept for the LAST EXIT column.
#[derive(Clone, Debug, PartialEq)]
pub struct LastExit {
    pub status: ExitStatus,
    pub reason: ExitReason,
    pub at: Instant,
    pub uptime: Duration,
}

/// The states of docs/supervision.md#states, as shown.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum WorkerState {
    Starting,
    Running,
    /// Running, ready once, and its readiness probe fails now.
    Unready,
    Stopping,
    Backoff {
        left: Duration,
    },
    #[default]
    Stopped,
    GaveUp,
    Failed {
        left: Duration,
        error: String,
    },
    /// Its group waits for a dependency (what for: the group's `waiting_for`).
    Waiting,
    /// A one-shot group's worker between runs of its schedule, the next one `left` away
    /// (`None`: the schedule never fires again).
    Scheduled {
        left: Option<Duration>,
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
            WorkerState::Waiting => "waiting",
            WorkerState::Scheduled { .. } => "scheduled",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
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
    /// Stopped by a person (`s`, `ctl stop`): not expected to be up.
    pub held: bool,
    /// Its run's probes, as they stand (empty without probes).
    pub probes: Vec<ProbeView>,
}

/// One probe of a worker's run: its last verdict and its failures so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeView {
    pub kind: super::probe::ProbeKind,
    /// `Some(true)`: passing, `Some(false)`: failing, `None`: no verdict yet (or, for
    /// readiness and liveness, held back until the startup probe succeeds).
    pub passing: Option<bool>,
    /// Failures in this run.
    pub failures: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupView {
    pub name: String,
    pub workers: u32,
    pub up: u32,
    /// While it waits for its dependencies: those not met yet (`db ready`).
    pub waiting_for: Vec<String>,
    /// While it waits: why one of them cannot hold unless a person acts.
    pub blocked: Option<String>,
    /// A one-shot group's next scheduled run.
    pub next_run: Option<Due>,
    /// The next rolling reload `reload-schedule` asks for.
    pub next_reload: Option<Due>,
}

/// Which of a group's schedules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleKind {
    /// `schedule`: the one-shot group's workers run.
    Run,
    /// `reload-schedule`: a rolling reload.
    Reload,
}

/// When a schedule fires next: the timer's instant, and the wall-clock time people read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextRun {
    pub at: Instant,
    pub wall: SystemTime,
}

/// A schedule's next time as of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    pub left: Duration,
    pub wall: SystemTime,
}

impl NextRun {
    pub fn due(self, now: Instant) -> Due {
        Due { left: self.at.saturating_duration_since(now), wall: self.wall }
    }
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
