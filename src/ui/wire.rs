//! How a `View` crosses the control socket (`corral attach`): serde forms of the core types
//! it carries, so `core/` stays free of any encoding, and compact times. An `Instant` means
//! nothing in another process: a last exit travels as its age and comes back as an `Instant`
//! that long before the reader's now.
//!
//! Every conversion is an exhaustive `match` both ways: a new state or exit reason in the
//! core does not compile until it has a wire form.

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::core::{
    Due, ExitReason, ExitStatus, GroupView, LastExit, Snapshot, WorkerKey, WorkerState, WorkerView,
};
use crate::signal::Signal;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Serialize, Deserialize)]
struct SnapshotWire {
    groups: Vec<GroupWire>,
    workers: Vec<WorkerWire>,
    total_restarts: u32,
    shutting_down: bool,
    /// Absent from an older corral: no countdown then.
    #[serde(default)]
    kill_in_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct GroupWire {
    name: String,
    workers: u32,
    up: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    waiting_for: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocked: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_run: Option<DueWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_reload: Option<DueWire>,
}

/// A schedule's next time: how far away, and the wall clock's milliseconds since 1970.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct DueWire {
    left_ms: u64,
    unix_ms: u64,
}

impl DueWire {
    fn of(d: Due) -> DueWire {
        let unix = d.wall.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        DueWire { left_ms: ms(d.left), unix_ms: ms(unix) }
    }

    fn due(self) -> Due {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(self.unix_ms);
        Due { left: Duration::from_millis(self.left_ms), wall }
    }
}

#[derive(Serialize, Deserialize)]
struct WorkerWire {
    group: u16,
    slot: u32,
    id: String,
    pid: Option<u32>,
    generation: Option<u32>,
    state: StateWire,
    uptime_ms: Option<u64>,
    restarts: u32,
    last_exit: Option<LastExitWire>,
    crash_looping: bool,
    replacement: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    held: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum StateWire {
    Starting,
    Running,
    Stopping,
    Backoff { left_ms: u64 },
    Stopped,
    GaveUp,
    Failed { left_ms: u64, error: String },
    Waiting,
    Scheduled { left_ms: Option<u64> },
    Unready,
}

#[derive(Serialize, Deserialize)]
struct LastExitWire {
    status: StatusWire,
    reason: ExitReason,
    /// How long before the frame was encoded.
    age_ms: u64,
    uptime_ms: u64,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StatusWire {
    Code(i32),
    Signal(i32),
}

impl From<ExitStatus> for StatusWire {
    fn from(s: ExitStatus) -> Self {
        match s {
            ExitStatus::Code(c) => StatusWire::Code(c),
            ExitStatus::Signal(Signal(n)) => StatusWire::Signal(n),
        }
    }
}

impl From<StatusWire> for ExitStatus {
    fn from(s: StatusWire) -> Self {
        match s {
            StatusWire::Code(c) => ExitStatus::Code(c),
            StatusWire::Signal(n) => ExitStatus::Signal(Signal(n)),
        }
    }
}

impl StateWire {
    fn of(state: &WorkerState) -> StateWire {
        match state {
            WorkerState::Starting => StateWire::Starting,
            WorkerState::Running => StateWire::Running,
            WorkerState::Unready => StateWire::Unready,
            WorkerState::Stopping => StateWire::Stopping,
            WorkerState::Backoff { left } => StateWire::Backoff { left_ms: ms(*left) },
            WorkerState::Stopped => StateWire::Stopped,
            WorkerState::GaveUp => StateWire::GaveUp,
            WorkerState::Failed { left, error } => {
                StateWire::Failed { left_ms: ms(*left), error: error.clone() }
            }
            WorkerState::Waiting => StateWire::Waiting,
            WorkerState::Scheduled { left } => StateWire::Scheduled { left_ms: left.map(ms) },
        }
    }

    fn state(self) -> WorkerState {
        match self {
            StateWire::Starting => WorkerState::Starting,
            StateWire::Running => WorkerState::Running,
            StateWire::Unready => WorkerState::Unready,
            StateWire::Stopping => WorkerState::Stopping,
            StateWire::Backoff { left_ms } => {
                WorkerState::Backoff { left: Duration::from_millis(left_ms) }
            }
            StateWire::Stopped => WorkerState::Stopped,
            StateWire::GaveUp => WorkerState::GaveUp,
            StateWire::Failed { left_ms, error } => {
                WorkerState::Failed { left: Duration::from_millis(left_ms), error }
            }
            StateWire::Waiting => WorkerState::Waiting,
            StateWire::Scheduled { left_ms } => {
                WorkerState::Scheduled { left: left_ms.map(Duration::from_millis) }
            }
        }
    }
}

impl SnapshotWire {
    fn of(s: &Snapshot, now: Instant) -> SnapshotWire {
        let groups = s
            .groups
            .iter()
            .map(|g| GroupWire {
                name: g.name.clone(),
                workers: g.workers,
                up: g.up,
                waiting_for: g.waiting_for.clone(),
                blocked: g.blocked.clone(),
                next_run: g.next_run.map(DueWire::of),
                next_reload: g.next_reload.map(DueWire::of),
            })
            .collect();
        let workers = s
            .workers
            .iter()
            .map(|w| WorkerWire {
                group: w.key.group,
                slot: w.key.slot,
                id: w.id.clone(),
                pid: w.pid,
                generation: w.generation,
                state: StateWire::of(&w.state),
                uptime_ms: w.uptime.map(ms),
                restarts: w.restarts,
                last_exit: w.last_exit.as_ref().map(|e| LastExitWire {
                    status: e.status.into(),
                    reason: e.reason,
                    age_ms: ms(now.saturating_duration_since(e.at)),
                    uptime_ms: ms(e.uptime),
                }),
                crash_looping: w.crash_looping,
                replacement: w.replacement,
                held: w.held,
            })
            .collect();
        SnapshotWire {
            groups,
            workers,
            total_restarts: s.total_restarts,
            shutting_down: s.shutting_down,
            kill_in_ms: s.kill_in.map(ms),
        }
    }

    fn snapshot(self, now: Instant) -> Snapshot {
        let groups = self
            .groups
            .into_iter()
            .map(|g| GroupView {
                name: g.name,
                workers: g.workers,
                up: g.up,
                waiting_for: g.waiting_for,
                blocked: g.blocked,
                next_run: g.next_run.map(DueWire::due),
                next_reload: g.next_reload.map(DueWire::due),
            })
            .collect();
        let workers = self
            .workers
            .into_iter()
            .map(|w| WorkerView {
                key: WorkerKey { group: w.group, slot: w.slot },
                id: w.id,
                pid: w.pid,
                generation: w.generation,
                state: w.state.state(),
                uptime: w.uptime_ms.map(Duration::from_millis),
                restarts: w.restarts,
                last_exit: w.last_exit.map(|e| LastExit {
                    status: e.status.into(),
                    reason: e.reason,
                    // Older than this process can express: as old as it can.
                    at: now.checked_sub(Duration::from_millis(e.age_ms)).unwrap_or(now),
                    uptime: Duration::from_millis(e.uptime_ms),
                }),
                crash_looping: w.crash_looping,
                replacement: w.replacement,
                held: w.held,
                // The attached dashboard shows a probe's verdict through the state.
                probes: Vec::new(),
            })
            .collect();
        Snapshot {
            groups,
            workers,
            total_restarts: self.total_restarts,
            shutting_down: self.shutting_down,
            kill_in: self.kill_in_ms.map(Duration::from_millis),
        }
    }
}

/// `#[serde(with)]` for a `Snapshot`.
pub mod snapshot {
    use super::{
        Deserialize, Deserializer, Instant, Serialize, Serializer, Snapshot, SnapshotWire,
    };

    pub fn serialize<S: Serializer>(s: &Snapshot, ser: S) -> Result<S::Ok, S::Error> {
        SnapshotWire::of(s, Instant::now()).serialize(ser)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Snapshot, D::Error> {
        SnapshotWire::deserialize(de).map(|w| w.snapshot(Instant::now()))
    }
}

/// `#[serde(with)]` for an `ExitStatus`: `{"code":1}` or `{"signal":9}`.
pub mod status {
    use super::{Deserialize, Deserializer, ExitStatus, Serialize, Serializer, StatusWire};

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's `with` hands over a reference
    pub fn serialize<S: Serializer>(s: &ExitStatus, ser: S) -> Result<S::Ok, S::Error> {
        StatusWire::from(*s).serialize(ser)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<ExitStatus, D::Error> {
        StatusWire::deserialize(de).map(ExitStatus::from)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyWire {
    group: u16,
    slot: u32,
}

/// `#[serde(with)]` for an `Option<WorkerKey>`: `{"group":0,"slot":2}` or `null`.
pub mod worker_key {
    use super::{Deserialize, Deserializer, KeyWire, Serialize, Serializer, WorkerKey};

    #[allow(clippy::ref_option)] // serde's `with` hands over `&Option<T>`
    pub fn serialize<S: Serializer>(k: &Option<WorkerKey>, ser: S) -> Result<S::Ok, S::Error> {
        k.map(|k| KeyWire { group: k.group, slot: k.slot }).serialize(ser)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<WorkerKey>, D::Error> {
        Option::<KeyWire>::deserialize(de)
            .map(|k| k.map(|k| WorkerKey { group: k.group, slot: k.slot }))
    }
}

/// `#[serde(with)]` for a `SystemTime`: milliseconds since the epoch (the pane shows
/// seconds; a clock before 1970 is sent as 1970).
pub mod epoch_ms {
    use super::{Deserialize, Deserializer, Duration, Serialize, Serializer, SystemTime, ms};

    pub fn serialize<S: Serializer>(t: &SystemTime, ser: S) -> Result<S::Ok, S::Error> {
        ms(t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()).serialize(ser)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<SystemTime, D::Error> {
        let ms = u64::deserialize(de)?;
        Ok(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
    }
}

/// `#[serde(with)]` for a `Duration`: whole milliseconds.
pub mod duration_ms {
    use super::{Deserialize, Deserializer, Duration, Serialize, Serializer, ms};

    pub fn serialize<S: Serializer>(d: &Duration, ser: S) -> Result<S::Ok, S::Error> {
        ms(*d).serialize(ser)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
        u64::deserialize(de).map(Duration::from_millis)
    }
}
