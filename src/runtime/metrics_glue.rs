//! The runtime's side of `--metrics` (docs/production.md#prometheus): binds the address before anything starts,
//! counts exits by reason as events pass, and, when a scrape asks, builds the model from
//! the snapshot, the sampler's usage and the logs' counters. Serving and rendering are
//! `fleet::metrics_server`'s, on its own thread.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

use super::hub::Reports;
use super::logs::Logs;
use crate::backend::{self, Usage};
use crate::config::RunSpec;
use crate::core::{Event, EventKind, Scope, Snapshot, Supervisor, WorkerKey, WorkerState};
use crate::fleet::metrics::{
    EXIT_REASONS, GroupModel, Model, WorkerModel, reason_index, state_index,
};
use crate::fleet::metrics_server::{self, Publisher};

#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {}", backend::describe(source))]
pub struct MetricsError {
    addr: SocketAddr,
    #[source]
    source: std::io::Error,
}

pub(super) struct Metrics {
    publisher: Publisher,
    instance: String,
    /// Exits since corral started, per group, by `reason_index`.
    exits: Vec<[u64; EXIT_REASONS.len()]>,
}

/// Binds `--metrics` and starts serving it; `None` without the flag.
pub(super) fn start(spec: &RunSpec) -> Result<Option<Metrics>, MetricsError> {
    let Some(addr) = spec.metrics else { return Ok(None) };
    let fail = |source| MetricsError { addr, source };
    let listener = metrics_server::bind(addr).map_err(fail)?;
    let publisher = metrics_server::start(listener, spec.instance.clone()).map_err(fail)?;
    let exits = vec![[0; EXIT_REASONS.len()]; spec.groups.len()];
    Ok(Some(Metrics { publisher, instance: spec.instance.clone(), exits }))
}

/// Resolves when a scrape wants a model; never without `--metrics`.
pub(super) async fn wanted(notify: Option<&Notify>) {
    match notify {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

impl Metrics {
    /// Fires when a scrape wants a model.
    pub fn wanted(&self) -> Arc<Notify> {
        self.publisher.wanted()
    }

    /// O(1) per event: only exits are counted here; everything else is read at a scrape.
    pub fn count_exit(&mut self, event: &Event) {
        let (Scope::Worker(key), EventKind::Exited { reason, .. }) = (event.scope, &event.kind)
        else {
            return;
        };
        if let Some(group) = self.exits.get_mut(usize::from(key.group)) {
            group[reason_index(*reason)] += 1;
        }
    }

    /// The loop's whole share of a scrape (at most once a second): its time is logged at
    /// debug level, so the cost on supervision can be watched (`benches/metrics_scrape.rs`).
    pub fn publish(&self, core: &Supervisor, hub: &Reports, usage: &HashMap<WorkerKey, Usage>) {
        let started = Instant::now();
        let snapshot = core.snapshot(started);
        let mut model =
            hub.with_logs(|logs| build(&self.instance, &snapshot, logs, usage, &self.exits));
        model.problems = crate::core::health::problems(&snapshot);
        self.publisher.publish(model);
        let took_us = started.elapsed().as_micros();
        tracing::debug!(workers = snapshot.workers.len(), took_us, "metrics model published");
    }
}

fn build(
    instance: &str,
    snapshot: &Snapshot,
    logs: &Logs,
    usage: &HashMap<WorkerKey, Usage>,
    exits: &[[u64; EXIT_REASONS.len()]],
) -> Model {
    let mut groups: Vec<GroupModel> = snapshot
        .groups
        .iter()
        .enumerate()
        .map(|(g, view)| GroupModel {
            name: view.name.clone(),
            workers: view.workers,
            exits: exits.get(g).copied().unwrap_or_default(),
            messages: 0,
            protocol_errors: 0,
        })
        .collect();
    // Over every slot that ever spoke, so a scale-down never makes a counter go back.
    for (key, log) in logs.iter() {
        if let Some(g) = groups.get_mut(usize::from(key.group)) {
            g.messages += log.messages;
            g.protocol_errors += log.protocol_errors;
        }
    }
    let workers = snapshot
        .workers
        .iter()
        .map(|w| {
            let measured = usage.get(&w.key).filter(|u| w.pid == Some(u.pid));
            let log = logs.get(w.key);
            WorkerModel {
                group: usize::from(w.key.group),
                slot: w.key.slot,
                state: state_index(&w.state),
                up: matches!(w.state, WorkerState::Running | WorkerState::Starting),
                restarts: w.restarts,
                uptime: w.uptime.map_or(0.0, |u| u.as_secs_f64()),
                cpu: measured.map(|u| f64::from(u.cpu) / 100.0),
                memory: measured.map(|u| u.rss),
                metrics: log.map_or_else(Vec::new, |l| {
                    let values = l.metrics.series.iter().filter(|s| !s.event);
                    values.map(|s| (s.name.clone(), s.history.latest)).collect()
                }),
                metrics_dropped: log.map_or(0, |l| l.metrics.dropped),
            }
        })
        .collect();
    Model { instance: instance.to_string(), groups, workers, problems: Vec::new() }
}
