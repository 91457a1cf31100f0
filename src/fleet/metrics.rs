//! What `/metrics` says (docs/production.md#prometheus): a plain-data [`Model`] of one corral, built by the
//! runtime from the core's snapshot and its own counters, and its `OpenMetrics` text,
//! written with `prometheus-client`. Pure: no clock, no I/O, no runtime types; serving it is
//! `metrics_server`'s.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, GaugeValueEncoder,
    MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::core::{ExitReason, WorkerState};

/// Every exit reason has a series of its own from the start, at 0 until it happens: a
/// counter that appears only at its first increment hides that increment from `rate()`.
pub const EXIT_REASONS: [ExitReason; 12] = [
    ExitReason::Crashed,
    ExitReason::Exited,
    ExitReason::KilledByUser,
    ExitReason::RestartedByUser,
    ExitReason::Stopped,
    ExitReason::HeartbeatTimeout,
    ExitReason::MemoryLimit,
    ExitReason::ReadyTimeout,
    ExitReason::Reload,
    ExitReason::ScaledDown,
    ExitReason::Shutdown,
    ExitReason::LivenessProbe,
];

/// Where `reason` stands in [`EXIT_REASONS`] (and in [`GroupModel::exits`]).
pub fn reason_index(reason: ExitReason) -> usize {
    match reason {
        ExitReason::Crashed => 0,
        ExitReason::Exited => 1,
        ExitReason::KilledByUser => 2,
        ExitReason::RestartedByUser => 3,
        ExitReason::Stopped => 4,
        ExitReason::HeartbeatTimeout => 5,
        ExitReason::MemoryLimit => 6,
        ExitReason::ReadyTimeout => 7,
        ExitReason::Reload => 8,
        ExitReason::ScaledDown => 9,
        ExitReason::Shutdown => 10,
        ExitReason::LivenessProbe => 11,
    }
}

/// The values of `corral_worker_state`'s `state` label, as the dashboard names them.
pub const STATES: [&str; 10] = [
    "starting",
    "running",
    "stopping",
    "backoff",
    "stopped",
    "gave-up",
    "failed",
    "waiting",
    "scheduled",
    "unready",
];

/// Where `state` stands in [`STATES`].
pub fn state_index(state: &WorkerState) -> usize {
    match state {
        WorkerState::Starting => 0,
        WorkerState::Running => 1,
        WorkerState::Stopping => 2,
        WorkerState::Backoff { .. } => 3,
        WorkerState::Stopped => 4,
        WorkerState::GaveUp => 5,
        WorkerState::Failed { .. } => 6,
        WorkerState::Waiting => 7,
        WorkerState::Scheduled { .. } => 8,
        WorkerState::Unready => 9,
    }
}

/// One corral, as Prometheus sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    /// The `instance` label of every series.
    pub instance: String,
    pub groups: Vec<GroupModel>,
    pub workers: Vec<WorkerModel>,
    /// Why corral is not ready (`/readyz`'s 503 body); empty when it is.
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupModel {
    pub name: String,
    /// Workers the group is meant to run.
    pub workers: u32,
    /// Exits since corral started, by [`reason_index`].
    pub exits: [u64; EXIT_REASONS.len()],
    /// Messages received from the group's workers, over all their runs.
    pub messages: u64,
    pub protocol_errors: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerModel {
    /// Index into [`Model::groups`].
    pub group: usize,
    /// The `worker` label: the slot number (`CORRAL_WORKER_ID`, the JSON `worker`).
    pub slot: u32,
    /// Index into [`STATES`].
    pub state: usize,
    /// A live process that is not being stopped (starting or running): what the
    /// dashboard's `4/4 up` counts.
    pub up: bool,
    pub restarts: u32,
    /// Seconds the current process has run; 0 without one.
    pub uptime: f64,
    /// Cores busy over the last sample (1.0 = one core), whole process tree; `None` until
    /// the sampler has measured the current process.
    pub cpu: Option<f64>,
    /// Resident bytes of the process tree, with `cpu`.
    pub memory: Option<u64>,
    /// The latest value of each `metric` name the slot reported, over its runs (among
    /// the 64 series the logs keep per slot, custom event types included).
    pub metrics: Vec<(String, f64)>,
    /// Messages whose name found no room among those 64.
    pub metrics_dropped: u64,
}

/// The whole exposition of `model`, `# EOF` included, appended to `out`.
pub fn render(model: &Arc<Model>, out: &mut String) -> fmt::Result {
    let instance = [(Cow::Borrowed("instance"), Cow::Owned(model.instance.clone()))];
    let mut registry = Registry::with_prefix_and_labels("corral", instance.into_iter());
    registry.register_collector(Box::new(Families(Arc::clone(model))));
    prometheus_client::encoding::text::encode(out, &registry)
}

/// The same in the classic text format (`text/plain; version=0.0.4`).
pub fn render_classic(model: &Arc<Model>, out: &mut String) -> fmt::Result {
    let mut open = String::with_capacity(out.capacity());
    render(model, &mut open)?;
    classic::from_openmetrics(&open, out);
    Ok(())
}

/// The model as a `prometheus-client` collector: encoded at once, from the values as they
/// are (no registered metric objects to keep in step with the core).
#[derive(Debug)]
struct Families(Arc<Model>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let m = &*self.0;
        let e = &mut encoder;
        let seconds = Unit::Seconds;
        let bytes = Unit::Bytes;
        let ratio = Unit::Other("ratio".into());
        gauges(e, m, "worker_up", HELP_UP, None, |w| Some(f64::from(u8::from(w.up))))?;
        counters(e, m, "worker_restarts", HELP_RESTARTS, |w| u64::from(w.restarts))?;
        gauges(e, m, "worker_uptime", HELP_UPTIME, Some(&seconds), |w| Some(w.uptime))?;
        gauges(e, m, "worker_cpu", HELP_CPU, Some(&ratio), |w| w.cpu)?;
        gauges(e, m, "worker_memory", HELP_MEMORY, Some(&bytes), |w| w.memory.map(|b| b as f64))?;
        worker_states(e, m)?;
        worker_metrics(e, m)?;
        counters(e, m, "worker_metrics_dropped", HELP_DROPPED, |w| w.metrics_dropped)?;
        group_series(e, m)
    }
}

const HELP_UP: &str = "1 while the worker has a live process that is not being stopped";
const HELP_RESTARTS: &str = "Restarts of the worker slot since corral started";
const HELP_UPTIME: &str = "Seconds the worker's current process has run, 0 without one";
const HELP_CPU: &str = "CPU of the worker's process tree in cores (1 = one core busy)";
const HELP_MEMORY: &str = "Resident memory of the worker's process tree";
const HELP_STATE: &str = "The worker's current state, as its label (always 1)";
const HELP_METRIC: &str = "Latest value of each metric the worker reported on its channel";
const HELP_DROPPED: &str = "Messages with a new metric name after the worker's 64 were taken";

/// The labels of a worker's series: `group`, `worker` (after the registry's `instance`).
type WorkerLabels<'a> = ([(&'static str, &'a str); 1], [(&'static str, u32); 1]);

/// Each worker with its group's name, skipping any that names no group.
fn workers(m: &Model) -> impl Iterator<Item = (&WorkerModel, WorkerLabels<'_>)> {
    m.workers.iter().filter_map(|w| {
        let group = m.groups.get(w.group)?;
        Some((w, ([("group", group.name.as_str())], [("worker", w.slot)])))
    })
}

/// A gauge's value, written as an integer when it is one (`42`, not `42.0`: the same
/// number to any parser). Formatting floats was the largest single cost of a 1,000-worker
/// scrape, and most gauges here (up, state, bytes, counts) are integers.
#[derive(Clone, Copy, Debug)]
struct Number(f64);

impl EncodeGaugeValue for Number {
    #[expect(clippy::float_cmp, reason = "exactly integral is what is asked")]
    fn encode(&self, encoder: &mut GaugeValueEncoder<'_>) -> fmt::Result {
        // Below 2^53 every integer is exact in an f64, so the cast loses nothing.
        let v = self.0;
        if v.trunc() == v && v.abs() < 9_007_199_254_740_992.0 {
            EncodeGaugeValue::encode(&(v as i64), encoder)
        } else {
            EncodeGaugeValue::encode(&v, encoder)
        }
    }
}

fn gauge(family: &mut MetricEncoder<'_>, labels: &impl EncodeLabelSet, value: f64) -> fmt::Result {
    family.encode_family(labels)?.encode_gauge(&Number(value))
}

fn counter(
    family: &mut MetricEncoder<'_>,
    labels: &impl EncodeLabelSet,
    value: &impl EncodeCounterValue,
) -> fmt::Result {
    family.encode_family(labels)?.encode_counter::<NoLabelSet, _, u64>(value, None)
}

/// A per-worker gauge; a worker whose `value` is `None` (or not finite) has no sample.
fn gauges(
    e: &mut DescriptorEncoder<'_>,
    m: &Model,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: impl Fn(&WorkerModel) -> Option<f64>,
) -> fmt::Result {
    let mut family = e.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (w, labels) in workers(m) {
        if let Some(v) = value(w).filter(|v| v.is_finite()) {
            gauge(&mut family, &labels, v)?;
        }
    }
    Ok(())
}

fn counters(
    e: &mut DescriptorEncoder<'_>,
    m: &Model,
    name: &str,
    help: &str,
    value: impl Fn(&WorkerModel) -> u64,
) -> fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (w, labels) in workers(m) {
        counter(&mut family, &labels, &value(w))?;
    }
    Ok(())
}

/// The current state only, as a label of a series that is always 1: `count by (state)`
/// and `corral_worker_state{state="backoff"}` work as they would with a series per state
/// at 0 or 1, at a seventh of the series (the largest family by far, at 1,000 workers) and
/// of the scrape's size. A change of state ends one series; Prometheus marks it stale.
fn worker_states(e: &mut DescriptorEncoder<'_>, m: &Model) -> fmt::Result {
    let mut family = e.encode_descriptor("worker_state", HELP_STATE, None, MetricType::Gauge)?;
    for (w, labels) in workers(m) {
        if let Some(state) = STATES.get(w.state) {
            gauge(&mut family, &(labels, [("state", *state)]), 1.0)?;
        }
    }
    Ok(())
}

fn worker_metrics(e: &mut DescriptorEncoder<'_>, m: &Model) -> fmt::Result {
    let mut family = e.encode_descriptor("worker_metric", HELP_METRIC, None, MetricType::Gauge)?;
    for (w, labels) in workers(m) {
        for (name, value) in w.metrics.iter().filter(|(_, v)| v.is_finite()) {
            gauge(&mut family, &(labels, [("name", name.as_str())]), *value)?;
        }
    }
    Ok(())
}

fn group(g: &GroupModel) -> [(&'static str, &str); 1] {
    [("group", g.name.as_str())]
}

fn group_series(e: &mut DescriptorEncoder<'_>, m: &Model) -> fmt::Result {
    let help = "Workers the group is meant to run";
    let mut family = e.encode_descriptor("group_workers", help, None, MetricType::Gauge)?;
    for g in &m.groups {
        gauge(&mut family, &group(g), f64::from(g.workers))?;
    }
    exits(e, m)?;
    let help = "Messages received on the group's event channels";
    group_counters(e, m, "messages", help, |g| g.messages)?;
    let help = "Event-channel lines dropped as malformed or oversized";
    group_counters(e, m, "protocol_errors", help, |g| g.protocol_errors)
}

fn exits(e: &mut DescriptorEncoder<'_>, m: &Model) -> fmt::Result {
    let help = "Worker exits by reason since corral started";
    let mut family = e.encode_descriptor("exits", help, None, MetricType::Counter)?;
    for g in &m.groups {
        for (reason, count) in EXIT_REASONS.iter().zip(g.exits) {
            counter(&mut family, &(group(g), [("reason", reason.as_str())]), &count)?;
        }
    }
    Ok(())
}

fn group_counters(
    e: &mut DescriptorEncoder<'_>,
    m: &Model,
    name: &str,
    help: &str,
    value: impl Fn(&GroupModel) -> u64,
) -> fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for g in &m.groups {
        counter(&mut family, &group(g), &value(g))?;
    }
    Ok(())
}

mod classic;

#[cfg(test)]
mod tests;
