//! The runtime's side of the dashboard: per-second rates and crash history, and the
//! `View` it publishes (at most ~30 times a second, only when something changed) to the
//! UI thread, which never blocks supervision.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::logs::Logs;
use crate::backend::Usage;
use crate::core::{EventKind, ExitReason, Snapshot, WorkerKey};
use crate::headless::Stream;
use crate::ui::ViewSlot;
use crate::ui::model::{LineKind, Pane, PaneLine, PaneRequest, View, WorkerExtra, filter_matches};

/// Seconds of crash history the header's sparkline shows.
const HISTORY: usize = 60;

pub struct Dashboard {
    slot: ViewSlot,
    pub request: PaneRequest,
    pub dirty: bool,
    /// Failed runs per second, ring indexed by second, with the second it counts.
    crashes: [(u64, u64); HISTORY],
    prev_messages: HashMap<WorkerKey, u64>,
    rates: HashMap<WorkerKey, u64>,
    events_per_sec: u64,
    pub log_path: Option<std::path::PathBuf>,
}

fn unix_second(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Dashboard {
    pub fn new(slot: ViewSlot, log_path: Option<std::path::PathBuf>) -> Dashboard {
        Dashboard {
            slot,
            request: PaneRequest { rows: 20, ..PaneRequest::default() },
            dirty: true,
            crashes: [(0, 0); HISTORY],
            prev_messages: HashMap::new(),
            rates: HashMap::new(),
            events_per_sec: 0,
            log_path,
        }
    }

    /// Counts failed runs for the header.
    pub fn on_event(&mut self, kind: &EventKind) {
        self.dirty = true;
        if let EventKind::Exited { reason, .. } = kind {
            let failed = matches!(
                reason,
                ExitReason::Crashed
                    | ExitReason::KilledByUser
                    | ExitReason::HeartbeatTimeout
                    | ExitReason::MemoryLimit
                    | ExitReason::ReadyTimeout
            );
            if failed {
                let now = unix_second(SystemTime::now());
                let bucket = &mut self.crashes[(now % HISTORY as u64) as usize];
                if bucket.0 != now {
                    *bucket = (now, 0);
                }
                bucket.1 += 1;
            }
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

    /// Publishes a fresh view if anything changed since the last one.
    pub fn publish(
        &mut self,
        snapshot: Snapshot,
        logs: &Logs,
        usage: &HashMap<WorkerKey, Usage>,
        names: &[String],
    ) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let extras = snapshot
            .workers
            .iter()
            .map(|w| {
                let u = usage.get(&w.key).filter(|u| w.pid == Some(u.pid));
                WorkerExtra {
                    cpu: u.map(|u| u.cpu),
                    rss: u.map(|u| u.rss),
                    events_per_sec: self.rates.get(&w.key).copied().unwrap_or(0),
                    status: logs.get(w.key).and_then(|l| l.status.clone()),
                }
            })
            .collect();
        let keys: Vec<WorkerKey> = snapshot.workers.iter().map(|w| w.key).collect();
        let history = self.crash_history();
        let view = View {
            extras,
            events_per_sec: self.events_per_sec,
            crashes_last_minute: history.iter().sum(),
            crash_history: history,
            pane: pane(logs, &keys, names, &self.request),
            log_path: self.log_path.clone(),
            snapshot,
        };
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(Arc::new(view));
        }
    }
}

fn id(names: &[String], key: WorkerKey) -> String {
    let name = names.get(usize::from(key.group)).map_or("?", String::as_str);
    format!("{name}.{}", key.slot)
}

/// The newest `rows + scroll` matching lines (of one worker or all, merged by time),
/// minus the `scroll` newest: only what fits is copied.
pub fn pane(logs: &Logs, keys: &[WorkerKey], names: &[String], req: &PaneRequest) -> Pane {
    let want = req.rows + req.scroll;
    let selected: Vec<WorkerKey> = match req.worker {
        Some(k) => vec![k],
        None => keys.to_vec(),
    };
    let mut lines: Vec<PaneLine> = Vec::new();
    let mut matching = 0;
    for key in selected {
        let Some(log) = logs.get(key) else { continue };
        let id = id(names, key);
        // Without a filter everything matches: count the old lines without copying them.
        let total = if req.events { log.events.len() } else { log.lines.len() };
        let skipped = if req.filter.is_empty() { total.saturating_sub(want) } else { 0 };
        let mut take = |at: SystemTime, kind: LineKind, text: Cow<'_, str>| {
            if filter_matches(&req.filter, &text) {
                matching += 1;
                lines.push(PaneLine { at, id: id.clone(), kind, text: text.into_owned() });
            }
        };
        if req.events {
            for e in log.events.iter().skip(skipped) {
                take(e.at, LineKind::Event, Cow::Owned(e.data.to_string()));
            }
        } else {
            for l in log.lines.iter().skip(skipped) {
                let kind = match l.stream {
                    Stream::Stdout => LineKind::Stdout,
                    Stream::Stderr => LineKind::Stderr,
                };
                take(l.at, kind, Cow::Borrowed(&l.text));
            }
        }
        matching += skipped;
        // Oldest-first within a worker; keep only that worker's newest `want`.
        trim_worker(&mut lines, &id, want);
    }
    lines.sort_by_key(|l| l.at);
    let end = lines.len().saturating_sub(req.scroll.min(lines.len()));
    let start = end.saturating_sub(req.rows);
    Pane { lines: lines[start..end].to_vec(), matching }
}

/// Drops all but the newest `want` lines of worker `id` (they were pushed oldest first).
fn trim_worker(lines: &mut Vec<PaneLine>, id: &str, want: usize) {
    let count = lines.iter().filter(|l| l.id == id).count();
    let mut excess = count.saturating_sub(want);
    lines.retain(|l| {
        if excess > 0 && l.id == id {
            excess -= 1;
            false
        } else {
            true
        }
    });
}
