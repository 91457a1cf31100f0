//! The runtime's side of the dashboard: per-second rates and crash history, each worker's
//! lifecycle as the supervisor saw it, and the `View`s built from them: one builder for
//! every viewer. The local dashboard's view goes to the UI thread's slot (at most ~30 times
//! a second, only when something changed), which never blocks supervision; attached
//! clients' views go out through the control socket (`control_service::view`).

mod pane;
mod views;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use self::views::{details, metrics};
use super::logs::Logs;
use super::logs::history::{History, Kind};
use crate::backend::{BoundListener, Usage};
use crate::config::GroupSpec;
use crate::core::{Event, EventKind, Scope, Snapshot, WorkerKey};
use crate::ui::ViewSlot;
use crate::ui::model::{EXITS_KEPT, ExitRecord, PaneMode, PaneRequest, View, WorkerExtra};

/// Seconds of crash history the header's sparkline shows.
const HISTORY: usize = 60;
/// Supervisor events kept per worker for its events view.
const LIFECYCLE_KEPT: usize = 100;

/// What the details show of a group: how its workers are run.
#[derive(Clone, Debug, Default)]
pub struct GroupFacts {
    pub command: String,
    pub cwd: String,
    pub sockets: Vec<String>,
}

impl GroupFacts {
    pub fn new(spec: &GroupSpec, listeners: &[BoundListener]) -> GroupFacts {
        let cwd = spec.cwd.clone().or_else(|| std::env::current_dir().ok());
        GroupFacts {
            command: spec.command.display.clone(),
            cwd: cwd.map_or_else(|| "?".into(), |p| p.display().to_string()),
            sockets: listeners.iter().map(|l| l.local.clone()).collect(),
        }
    }
}

/// What the supervisor did to one slot, kept for its events view and its details.
#[derive(Debug)]
pub struct WorkerHistory {
    /// Lifecycle lines, oldest first.
    pub lifecycle: VecDeque<(SystemTime, String)>,
    /// Newest first.
    pub exits: VecDeque<ExitRecord>,
    pub crashes: u64,
    pub cpu: History,
    pub memory: History,
}

impl Default for WorkerHistory {
    fn default() -> Self {
        WorkerHistory {
            lifecycle: VecDeque::new(),
            exits: VecDeque::new(),
            crashes: 0,
            cpu: History::new(Kind::Gauge),
            memory: History::new(Kind::Gauge),
        }
    }
}

/// The facts every viewer's `View` is built from, kept while anyone may look: the local
/// dashboard, or a control socket someone may attach to.
pub struct ViewFeed {
    /// The local dashboard, when there is one.
    local: Option<Local>,
    /// Something every viewer shows changed since the last frame.
    dirty: bool,
    /// Failed runs per second, ring indexed by second, with the second it counts.
    crashes: [(u64, u64); HISTORY],
    prev_messages: HashMap<WorkerKey, u64>,
    rates: HashMap<WorkerKey, u64>,
    events_per_sec: u64,
    log_path: Option<std::path::PathBuf>,
    groups: Vec<GroupFacts>,
    workers: crate::core::KeyMap<WorkerHistory>,
}

/// The local dashboard's slot and what its pane asks for.
struct Local {
    slot: ViewSlot,
    request: PaneRequest,
    /// Owed a frame (its pane request changed, or something it shows did).
    dirty: bool,
}

pub fn unix_second(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The line a worker's events view shows for a supervisor event about it.
fn lifecycle_text(event: &Event) -> Option<String> {
    let pid = event.pid.map_or_else(String::new, |p| format!(" pid {p}"));
    Some(match &event.kind {
        EventKind::Spawned { generation } => format!("spawned{pid} (generation {generation})"),
        EventKind::SpawnFailed { error } => format!("could not spawn: {error}"),
        EventKind::Ready => format!("ready{pid}"),
        EventKind::Unready => format!("unready{pid}: its readiness probe fails"),
        EventKind::ProbeFailed { probe, error, count } => {
            format!("{} probe failed ({count} so far): {error}", probe.as_str())
        }
        EventKind::Exited { status, uptime, reason, memory, .. } => {
            let after = crate::ui::format_uptime(*uptime);
            let why = crate::report::exit_why(*reason, *memory);
            format!("exited{pid}: {status} after {after} ({why})")
        }
        EventKind::RestartScheduled { delay, restarts } => {
            // `restarts` already counts this one, as the RESTARTS column does.
            format!("restart {restarts} in {:.1}s", delay.as_secs_f64())
        }
        EventKind::GaveUp { restarts, .. } => format!("gave up after {restarts} restarts"),
        EventKind::Scaled { .. }
        | EventKind::ReloadStarted { .. }
        | EventKind::ReloadFinished { .. }
        | EventKind::ShutdownStarted { .. }
        | EventKind::Waiting { .. }
        | EventKind::ScheduleSkipped { .. } => return None,
    })
}

impl ViewFeed {
    /// `slot`: the local dashboard's, or `None` when only attached clients may look.
    pub fn new(
        slot: Option<ViewSlot>,
        log_path: Option<std::path::PathBuf>,
        groups: Vec<GroupFacts>,
    ) -> ViewFeed {
        ViewFeed {
            local: slot.map(|slot| Local {
                slot,
                request: PaneRequest { rows: 20, ..PaneRequest::default() },
                dirty: true,
            }),
            dirty: true,
            crashes: [(0, 0); HISTORY],
            prev_messages: HashMap::new(),
            rates: HashMap::new(),
            events_per_sec: 0,
            log_path,
            groups,
            workers: crate::core::KeyMap::default(),
        }
    }

    /// Counts failed runs for the header, and keeps each worker's lifecycle and exits.
    pub fn on_event(&mut self, event: &Event) {
        self.dirty = true;
        let at = SystemTime::now();
        if let EventKind::Exited { reason, .. } = &event.kind
            && reason.is_crash()
        {
            let now = unix_second(at);
            let bucket = &mut self.crashes[(now % HISTORY as u64) as usize];
            if bucket.0 != now {
                *bucket = (now, 0);
            }
            bucket.1 += 1;
        }
        let Scope::Worker(key) = event.scope else { return };
        let history = self.workers.entry(key).or_default();
        if let EventKind::Exited { status, uptime, reason, .. } = &event.kind {
            let record = ExitRecord { at, status: *status, reason: *reason, uptime: *uptime };
            history.exits.push_front(record);
            history.exits.truncate(EXITS_KEPT);
            history.crashes += u64::from(reason.is_crash());
        }
        if let Some(text) = lifecycle_text(event) {
            if history.lifecycle.len() >= LIFECYCLE_KEPT {
                history.lifecycle.pop_front();
            }
            history.lifecycle.push_back((at, text));
        }
    }

    /// Once a second: messages per second per worker.
    pub fn tick_rates(&mut self, logs: &Logs, keys: impl Iterator<Item = WorkerKey>) {
        self.events_per_sec = 0;
        self.rates.clear();
        for key in keys {
            let now = logs.messages(key);
            let before = self.prev_messages.insert(key, now).unwrap_or(now);
            let rate = now.saturating_sub(before);
            self.events_per_sec += rate;
            self.rates.insert(key, rate);
        }
        self.dirty = true;
    }

    fn crash_history(&self) -> Vec<u64> {
        let now = unix_second(SystemTime::now());
        (0..HISTORY as u64)
            .rev()
            .map(|ago| {
                let second = now.saturating_sub(ago);
                let (stamp, count) = self.crashes[(second % HISTORY as u64) as usize];
                if stamp == second { count } else { 0 }
            })
            .collect()
    }

    /// A sample of a live worker's CPU and memory into its history (one point a second is
    /// kept), whether or not anyone looks now: an attach later charts the last 5 minutes.
    pub fn record_usage(&mut self, key: WorkerKey, u: &Usage) {
        let second = unix_second(SystemTime::now());
        let history = self.workers.entry(key).or_default();
        history.cpu.set(second, u.pid, f64::from(u.cpu));
        history.memory.set(second, u.pid, u.rss as f64);
    }

    /// Something every viewer shows changed here since [`ViewFeed::take_changed`].
    pub fn changed(&self) -> bool {
        self.dirty
    }

    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn has_local(&self) -> bool {
        self.local.is_some()
    }

    /// The local dashboard is owed a frame for its own reasons (its pane changed).
    pub fn local_dirty(&self) -> bool {
        self.local.as_ref().is_some_and(|l| l.dirty)
    }

    /// The local dashboard's pane changed.
    pub fn set_request(&mut self, request: PaneRequest) {
        if let Some(local) = self.local.as_mut() {
            local.request = request;
            local.dirty = true;
        }
    }

    /// Whether the local dashboard is owed a frame, once `changed` (something every viewer
    /// shows) is counted.
    pub fn local_due(&mut self, changed: bool) -> bool {
        self.local.as_mut().is_some_and(|l| {
            l.dirty |= changed;
            l.dirty
        })
    }

    /// The local dashboard's frame, into its slot.
    pub fn publish_local(
        &mut self,
        snapshot: Snapshot,
        logs: &Logs,
        usage: &HashMap<WorkerKey, Usage>,
        names: &[String],
    ) {
        let Some(local) = self.local.as_ref() else { return };
        let view = self.view(snapshot, logs, usage, names, &local.request);
        if let Some(local) = self.local.as_mut() {
            local.dirty = false;
            if let Ok(mut slot) = local.slot.lock() {
                *slot = Some(Arc::new(view));
            }
        }
    }

    /// One viewer's frame: the shared facts, and its pane as `req` asks.
    pub fn view(
        &self,
        snapshot: Snapshot,
        logs: &Logs,
        usage: &HashMap<WorkerKey, Usage>,
        names: &[String],
        req: &PaneRequest,
    ) -> View {
        let extras = snapshot
            .workers
            .iter()
            .map(|w| {
                let u = usage.get(&w.key).filter(|u| w.pid == Some(u.pid));
                WorkerExtra {
                    cpu: u.map(|u| u.cpu),
                    rss: u.map(|u| u.rss),
                    events_per_sec: self.rates.get(&w.key).copied().unwrap_or(0),
                    status: logs.get(w.key).and_then(|l| l.status_of(w.pid)).map(str::to_string),
                }
            })
            .collect();
        let keys: Vec<WorkerKey> = snapshot.workers.iter().map(|w| w.key).collect();
        let history = self.crash_history();
        View {
            extras,
            events_per_sec: self.events_per_sec,
            crashes_last_minute: history.iter().sum(),
            crash_history: history,
            pane: pane::pane(logs, &self.workers, &keys, names, req),
            log_path: self.log_path.clone(),
            metrics: (req.mode == PaneMode::Metrics)
                .then(|| metrics(&snapshot, logs, &self.workers, names, req)),
            details: (req.mode == PaneMode::Details)
                .then(|| details(&snapshot, logs, &self.workers, &self.groups, req))
                .flatten(),
            snapshot,
            attached: None,
        }
    }
}

#[cfg(test)]
mod tests;
