//! The metrics and the details of the pane's worker (or its group), built only when the
//! pane shows them.

use std::time::SystemTime;

use super::{GroupFacts, WorkerHistory, unix_second};
use crate::core::{Snapshot, WorkerView};
use crate::runtime::logs::Logs;
use crate::runtime::logs::history::{History, Kind, rate};
use crate::ui::model::{Details, Metrics, PaneRequest, Series, SeriesKind};

/// One series being summed over workers.
struct Sum {
    name: String,
    kind: SeriesKind,
    points: Vec<Option<f64>>,
    latest: Option<f64>,
}

impl Sum {
    fn add(&mut self, history: &History, now: u64, w: &WorkerView, group: bool) {
        let points = history.points(now, w.pid);
        if self.points.is_empty() {
            self.points = vec![None; points.len()];
        }
        for (sum, p) in self.points.iter_mut().zip(points) {
            if let Some(p) = p {
                *sum = Some(sum.unwrap_or(0.0) + p);
            }
        }
        // A group's value is what its running workers report now; an event count and a
        // single worker's last value stay after the run.
        let counts = self.kind == SeriesKind::Event || !group || history.written_by(w.pid);
        if counts {
            self.latest = Some(self.latest.unwrap_or(0.0) + history.latest);
        }
    }

    fn finish(self) -> Series {
        let kind = if self.kind == SeriesKind::Event { Kind::Counter } else { Kind::Gauge };
        let rate = rate(kind, &self.points);
        Series { name: self.name, kind: self.kind, latest: self.latest, rate, points: self.points }
    }
}

fn sum_of<'a>(sums: &'a mut Vec<Sum>, name: &str, kind: SeriesKind) -> &'a mut Sum {
    if let Some(at) = sums.iter().position(|s| s.kind == kind && s.name == name) {
        return &mut sums[at];
    }
    sums.push(Sum { name: name.to_string(), kind, points: Vec::new(), latest: None });
    let last = sums.len() - 1;
    &mut sums[last]
}

/// The selected worker's series, or (`req.group`) its group's summed per name.
pub fn metrics(
    snapshot: &Snapshot,
    logs: &Logs,
    histories: &crate::core::KeyMap<WorkerHistory>,
    names: &[String],
    req: &PaneRequest,
) -> Metrics {
    let Some(selected) = req.worker else { return Metrics::default() };
    let workers: Vec<&WorkerView> = snapshot
        .workers
        .iter()
        .filter(|w| if req.group { w.key.group == selected.group } else { w.key == selected })
        .collect();
    let who = match (req.group, workers.first()) {
        (true, _) => {
            let name = names.get(usize::from(selected.group)).map_or("?", String::as_str);
            format!("{name} ({} workers, summed)", workers.len())
        }
        (false, Some(w)) => w.id.clone(),
        (false, None) => String::new(),
    };
    let now = unix_second(SystemTime::now());
    let mut sums: Vec<Sum> = Vec::new();
    let mut usage: Vec<Sum> = Vec::new();
    let (mut dropped, mut dropped_names) = (0, Vec::new());
    for w in &workers {
        if let Some(log) = logs.get(w.key) {
            for s in &log.metrics.series {
                let kind = if s.event { SeriesKind::Event } else { SeriesKind::Metric };
                sum_of(&mut sums, &s.name, kind).add(&s.history, now, w, req.group);
            }
            dropped += log.metrics.dropped;
            for n in &log.metrics.dropped_names {
                if !dropped_names.contains(n) {
                    dropped_names.push(n.clone());
                }
            }
        }
        if let Some(h) = histories.get(&w.key) {
            sum_of(&mut usage, "cpu", SeriesKind::Cpu).add(&h.cpu, now, w, req.group);
            sum_of(&mut usage, "memory", SeriesKind::Memory).add(&h.memory, now, w, req.group);
        }
    }
    // The worker's own numbers first (metrics, then event types), then CPU and memory.
    sums.sort_by_key(|s| s.kind == SeriesKind::Event);
    let series = sums.into_iter().chain(usage).map(Sum::finish).collect();
    Metrics { who, series, dropped, dropped_names }
}

/// The selected worker's details.
pub fn details(
    snapshot: &Snapshot,
    logs: &Logs,
    histories: &crate::core::KeyMap<WorkerHistory>,
    groups: &[GroupFacts],
    req: &PaneRequest,
) -> Option<Details> {
    let key = req.worker?;
    let w = snapshot.workers.iter().find(|w| w.key == key)?;
    let facts = groups.get(usize::from(key.group)).cloned().unwrap_or_default();
    let log = logs.get(key);
    let history = histories.get(&key);
    Some(Details {
        id: w.id.clone(),
        command: facts.command,
        cwd: facts.cwd,
        pid: w.pid,
        generation: w.generation,
        restarts: w.restarts,
        crashes: history.map_or(0, |h| h.crashes),
        protocol_errors: log.map_or(0, |l| l.protocol_errors),
        sockets: facts.sockets,
        status: log.and_then(|l| l.status_of(w.pid)).map(str::to_string),
        exits: history.map(|h| h.exits.iter().cloned().collect()).unwrap_or_default(),
    })
}
