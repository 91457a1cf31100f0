//! The snapshot front-ends draw.

use super::{
    CRASH_LOOP_RUNS, Duration, GroupConfig, GroupView, Instant, Phase, Shutdown, Slot, Snapshot,
    Stage, Supervisor, WorkerState, WorkerView,
};

impl Supervisor {
    /// The picture front-ends draw, as of `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let mut workers = Vec::new();
        let mut groups = Vec::new();
        let mut total_restarts = 0;
        for (g, group) in self.groups.iter().enumerate() {
            let mut up = 0;
            for slot in &group.slots {
                let next = group.next_run.map(|n| n.due(now).left);
                let mut view = view_of(slot, &group.config, next, now);
                let idle =
                    matches!(view.state, WorkerState::Stopped | WorkerState::Scheduled { .. });
                if group.waiting && idle && !slot.held {
                    view.state = WorkerState::Waiting;
                }
                if matches!(
                    view.state,
                    WorkerState::Running | WorkerState::Starting | WorkerState::Unready
                ) {
                    up += 1;
                }
                total_restarts += slot.restarts;
                workers.push(view);
            }
            let waiting_for = if group.waiting {
                self.labels(g as u16, |d| self.verdict(*d) != crate::core::depends::Verdict::Holds)
            } else {
                Vec::new()
            };
            groups.push(GroupView {
                name: group.config.name.clone(),
                workers: group.config.workers,
                up,
                waiting_for,
                blocked: group.blocked.clone(),
                next_run: group.next_run.map(|n| n.due(now)),
                next_reload: group.next_reload.map(|n| n.due(now)),
            });
        }
        let kill_in = (self.shutdown == Shutdown::Graceful).then(|| self.kill_in(now)).flatten();
        Snapshot {
            groups,
            workers,
            total_restarts,
            shutting_down: self.shutdown != Shutdown::Running,
            kill_in,
        }
    }

    /// How long until the first SIGKILL still due: the earliest kill timer of a run that has
    /// neither ended nor been killed.
    fn kill_in(&self, now: Instant) -> Option<Duration> {
        let runs = self.groups.iter().flat_map(|g| &g.slots).flat_map(|slot| {
            let live = match &slot.phase {
                Phase::Live(run) => Some(run),
                Phase::Waiting { .. } | Phase::Stopped | Phase::GaveUp => None,
            };
            live.into_iter().chain(slot.successor.as_ref())
        });
        runs.filter(|run| run.exit().is_none() && !run.sent.kill)
            .filter_map(|run| run.sent.kill_at)
            .min()
            .map(|at| at.saturating_duration_since(now))
    }
}

/// `next_run`: how long until the group's schedule fires, for a scheduled group.
pub(super) fn view_of(
    slot: &Slot,
    config: &GroupConfig,
    next_run: Option<Duration>,
    now: Instant,
) -> WorkerView {
    let (state, pid, generation, uptime) = match &slot.phase {
        Phase::Live(run) => {
            let state = if run.stage() >= Stage::Stopping {
                WorkerState::Stopping
            } else if run.stage() == Stage::Spawning || (config.wait_ready && !run.ready) {
                WorkerState::Starting
            } else if run.probes.as_ref().is_some_and(|p| p.unready) {
                WorkerState::Unready
            } else {
                WorkerState::Running
            };
            let uptime = match (run.pid(), run.exit()) {
                (Some(_), None) => Some(now.saturating_duration_since(run.started)),
                _ => None,
            };
            (state, run.pid(), Some(run.generation), uptime)
        }
        Phase::Waiting { until, failed } => {
            let left = until.saturating_duration_since(now);
            let state = match failed {
                None => WorkerState::Backoff { left },
                Some(error) => WorkerState::Failed { left, error: error.clone() },
            };
            (state, None, None, None)
        }
        // A person's stop holds it out of the schedule's runs: it shows as stopped.
        Phase::Stopped if config.scheduled && !slot.held => {
            (WorkerState::Scheduled { left: next_run }, None, None, None)
        }
        Phase::Stopped => (WorkerState::Stopped, None, None, None),
        Phase::GaveUp => (WorkerState::GaveUp, None, None, None),
    };
    WorkerView {
        key: slot.key,
        id: crate::core::WorkerId { group: &config.name, slot: slot.key.slot }.to_string(),
        pid,
        generation,
        state,
        uptime,
        restarts: slot.restarts,
        last_exit: slot.last_exit.clone(),
        crash_looping: slot.failed_short_runs >= CRASH_LOOP_RUNS,
        replacement: slot.successor.as_ref().and_then(crate::core::worker::Run::pid),
        held: slot.held,
        probes: probe_views(slot, config),
    }
}

/// The probes of the slot's run (its own, not a reload's replacement), in a fixed order.
fn probe_views(slot: &Slot, config: &GroupConfig) -> Vec<crate::core::snapshot::ProbeView> {
    use crate::core::probe::ProbeKind;
    let Phase::Live(run) = &slot.phase else { return Vec::new() };
    let Some(probes) = run.probes.as_deref() else { return Vec::new() };
    [ProbeKind::Startup, ProbeKind::Readiness, ProbeKind::Liveness]
        .into_iter()
        .filter(|&kind| config.probes.get(kind).is_some())
        .map(|kind| {
            let track = match kind {
                ProbeKind::Startup => &probes.startup,
                ProbeKind::Readiness => &probes.readiness,
                ProbeKind::Liveness => &probes.liveness,
            };
            let (passing, failures) = track.state();
            crate::core::snapshot::ProbeView { kind, passing, failures }
        })
        .collect()
}
