//! Probes in the supervisor (docs/application.md#probes): one timer per run and probe asks
//! the runtime for a probe each period (never a second one while the first is out), and
//! each result moves the run's verdicts. Readiness makes a run ready as its own `ready`
//! message would, and `unready` after that; liveness (and a startup probe that never
//! succeeds) restarts it gracefully, reason `liveness_probe`.

use std::time::Instant;

use super::{After, Command, Cx, EventKind, ExitReason, How, Phase, Slot, TimerKind};
use super::{mark_ready, reload, request_stop};
use crate::core::probe::{ProbeKind, ProbeSet, RunProbes, Verdict};
use crate::core::worker::{Run, Stage};

/// The slot's run (its own or its replacement) of `generation`, while it runs and is not
/// being stopped: the only runs probes are for.
fn probed_run(slot: &mut Slot, generation: u32) -> Option<&mut Run> {
    let run = match &mut slot.phase {
        Phase::Live(run) if run.generation == generation => Some(run),
        _ => slot.successor.as_mut().filter(|s| s.generation == generation),
    }?;
    (run.stage() == Stage::Up).then_some(run)
}

fn run_probes(slot: &mut Slot, generation: u32) -> Option<&mut RunProbes> {
    probed_run(slot, generation)?.probes.as_deref_mut()
}

/// Run `generation` was spawned: its first probes are due after their initial delay.
pub(super) fn start(slot: &mut Slot, cx: &mut Cx<'_>, generation: u32) {
    let set = cx.probes;
    let Some(run) = probed_run(slot, generation) else { return };
    if set == ProbeSet::default() {
        return;
    }
    let probes = Box::new(RunProbes::new(&set));
    let kinds: Vec<ProbeKind> = probes.active(&set).collect();
    run.probes = Some(probes);
    arm_first(slot, cx, generation, &kinds);
}

fn arm_first(slot: &mut Slot, cx: &mut Cx<'_>, generation: u32, kinds: &[ProbeKind]) {
    for &probe in kinds {
        if let Some(timing) = cx.probes.get(probe) {
            arm_from_scratch(slot, cx, generation, probe, cx.now + timing.initial_delay);
        }
    }
}

/// Arms `probe`'s timer for `at`, the start of its count of periods.
fn arm_from_scratch(
    slot: &mut Slot,
    cx: &mut Cx<'_>,
    generation: u32,
    probe: ProbeKind,
    at: Instant,
) {
    if let Some(probes) = run_probes(slot, generation) {
        probes.track(probe).armed(at);
    }
    cx.arm(slot, TimerKind::Probe { probe, generation }, at);
}

/// A replacement became the slot's run: the timers it had were the slot's, cleared with
/// the old run, so its active probes start again one period from now.
pub(super) fn resume(slot: &mut Slot, cx: &mut Cx<'_>) {
    let set = cx.probes;
    let Phase::Live(run) = &slot.phase else { return };
    if run.stage() != Stage::Up {
        return;
    }
    let generation = run.generation;
    let Some(probes) = run.probes.as_deref() else { return };
    let kinds: Vec<ProbeKind> = probes.active(&set).collect();
    for probe in kinds {
        if let Some(timing) = set.get(probe) {
            arm_from_scratch(slot, cx, generation, probe, cx.now + timing.period);
        }
    }
}

/// A probe is due: ask for it (unless the last one is still out) and arm the next.
pub(super) fn on_timer(slot: &mut Slot, cx: &mut Cx<'_>, probe: ProbeKind, generation: u32) {
    let Some(timing) = cx.probes.get(probe) else { return };
    let key = slot.key;
    let Some(run) = probed_run(slot, generation) else { return };
    let Some(pid) = run.pid() else { return };
    let Some(probes) = run.probes.as_deref_mut() else { return };
    if probes.started == (probe == ProbeKind::Startup) {
        return; // the startup probe is done, or the others are not due yet
    }
    let track = probes.track(probe);
    let ask = !track.in_flight;
    track.in_flight = true;
    let next = track.next_due(cx.now, timing.period);
    cx.arm(slot, TimerKind::Probe { probe, generation }, next);
    if ask {
        cx.out.push(Command::Probe { key, generation, pid, probe });
    }
}

/// One probe's result.
pub(super) fn on_result(
    slot: &mut Slot,
    cx: &mut Cx<'_>,
    generation: u32,
    probe: ProbeKind,
    error: Option<String>,
) {
    let Some(timing) = cx.probes.get(probe) else { return };
    let now = cx.now;
    let Some(run) = probed_run(slot, generation) else { return };
    let pid = run.pid();
    let ready = run.ready;
    let Some(probes) = run.probes.as_deref_mut() else { return };
    let track = probes.track(probe);
    let verdict = track.record(error.is_none(), &timing);
    if let Some(error) = error
        && let Some(count) = track.report_failure(now)
    {
        cx.emit(slot, pid, EventKind::ProbeFailed { probe, error, count });
    }
    let successor = reload::is_successor(slot, generation);
    match (probe, verdict) {
        (_, Verdict::Steady) | (ProbeKind::Liveness, Verdict::Passed) => {}
        (ProbeKind::Startup, Verdict::Passed) => {
            if let Some(probes) = run_probes(slot, generation) {
                probes.started = true;
                let kinds: Vec<ProbeKind> = probes.active(&cx.probes).collect();
                arm_first(slot, cx, generation, &kinds);
            }
        }
        (ProbeKind::Startup | ProbeKind::Liveness, Verdict::Failed) => {
            if successor {
                reload::kill(slot, cx, ExitReason::LivenessProbe);
            } else {
                let (reason, how) = (ExitReason::LivenessProbe, How::Graceful);
                request_stop(slot, cx, reason, how, After::Policy);
            }
        }
        (ProbeKind::Readiness, Verdict::Passed) => {
            if !ready {
                if successor {
                    reload::on_ready(slot, cx, true);
                } else {
                    mark_ready(slot, cx, generation);
                }
            } else if let Some(probes) = run_probes(slot, generation)
                && probes.unready
            {
                probes.unready = false;
                cx.emit(slot, pid, EventKind::Ready);
            }
        }
        (ProbeKind::Readiness, Verdict::Failed) => {
            if ready
                && let Some(probes) = run_probes(slot, generation)
                && !probes.unready
            {
                probes.unready = true;
                cx.emit(slot, pid, EventKind::Unready);
            }
        }
    }
}
