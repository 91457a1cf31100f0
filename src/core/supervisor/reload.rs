//! Rolling reload: for each worker of a group in turn, start its replacement, wait until it
//! has proved itself (`ready` with `--wait-ready`, bounded by `--ready-timeout`; else alive
//! for `--reload-settle`), then stop the old one gracefully. A replacement that fails keeps
//! the old worker, ends the reload and reports the failure. During a handover a slot holds
//! two runs: its own and a successor, which becomes the slot's run once the old one is gone.
//! Reload requests that arrive while one runs are coalesced into one more reload after it.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Cx, How, Shutdown, Supervisor, request_stop};
use crate::core::command::{Command, TimerKind};
use crate::core::event::{Event, EventKind, ExitReason, ExitStatus, ReloadCause, Scope};
use crate::core::worker::{After, Phase, Run, Slot, Stage};
use crate::signal::Signal;

/// A reload in progress in one group.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReloadRun {
    /// Slot numbers still to replace, in order.
    pending: VecDeque<u32>,
    /// The slot being replaced now.
    current: Option<u32>,
    replaced: u32,
    failed: bool,
    /// Asked for again while this one runs: one more reload follows it, however many asks
    /// came (a deploy script's SIGHUP and an impatient operator's should not pile up); it
    /// carries the first of those asks' cause.
    queued: Option<ReloadCause>,
}

impl ReloadRun {
    fn of(slots: &[Slot]) -> ReloadRun {
        let pending = slots.iter().filter(|s| !s.retiring).map(|s| s.key.slot).collect();
        ReloadRun { pending, ..ReloadRun::default() }
    }

    /// Shutdown: no more replacements, and no reload after this one.
    pub(super) fn cancel(&mut self) {
        self.pending.clear();
        self.queued = None;
    }
}

impl Supervisor {
    pub(super) fn start_reload(&mut self, now: Instant, g: u16, cause: ReloadCause) {
        if self.shutdown != Shutdown::Running {
            return;
        }
        let Some(group) = self.groups.get_mut(usize::from(g)) else { return };
        // A group that waits for others runs nothing yet: a reload (a schedule's, a
        // watched file's) has nothing to replace, and reporting one would be noise.
        if group.waiting {
            return;
        }
        if let Some(running) = group.reload.as_mut() {
            // One at a time: the new code may have landed after this reload began.
            running.queued.get_or_insert(cause);
            return;
        }
        group.reload = Some(ReloadRun::of(&group.slots));
        self.out.push(Command::Emit(Event {
            scope: Scope::Group(g),
            pid: None,
            kind: EventKind::ReloadStarted { cause },
        }));
        self.step_reloads(now);
    }

    /// Moves every reload in progress forward as far as it can go now.
    pub(super) fn step_reloads(&mut self, now: Instant) {
        let shutting_down = self.shutdown != Shutdown::Running;
        for (g, group) in self.groups.iter_mut().enumerate() {
            let Some(reload) = group.reload.as_mut() else { continue };
            let mut cx = Cx::new(now, &group.config, shutting_down, &mut self.out, &mut self.rng);
            loop {
                if let Some(current) = reload.current {
                    // A slot scaled away meanwhile has nothing left to report.
                    if let Some(slot) = super::slot_mut(&mut group.slots, current) {
                        match slot.reload_outcome.take() {
                            Some(true) => reload.replaced += 1,
                            Some(false) => {
                                reload.failed = true;
                                reload.pending.clear();
                            }
                            None => break, // this slot's handover is still under way
                        }
                    }
                    reload.current = None;
                }
                if shutting_down && !reload.pending.is_empty() {
                    // Cut short: not every worker was replaced, whatever came before.
                    reload.failed = true;
                    reload.pending.clear();
                }
                let Some(next) = reload.pending.pop_front() else {
                    let (replaced, failed) = (reload.replaced, reload.failed);
                    let scope = Scope::Group(g as u16);
                    let kind = EventKind::ReloadFinished { replaced, failed };
                    cx.out.push(Command::Emit(Event { scope, pid: None, kind }));
                    // A failed reload does not cancel the queued one: it may bring the fix.
                    if let (Some(cause), false) = (reload.queued.take(), shutting_down) {
                        *reload = ReloadRun::of(&group.slots);
                        let kind = EventKind::ReloadStarted { cause };
                        cx.out.push(Command::Emit(Event { scope, pid: None, kind }));
                        continue;
                    }
                    group.reload = None;
                    break;
                };
                if let Some(slot) = super::slot_mut(&mut group.slots, next)
                    && spawn_successor(slot, &mut cx)
                {
                    reload.current = Some(next);
                }
            }
        }
    }
}

/// Starts the replacement of a running slot; false when the slot is not running (it is
/// skipped: a stopped or crashing worker has nothing to hand over).
fn spawn_successor(slot: &mut Slot, cx: &mut Cx<'_>) -> bool {
    let Phase::Live(run) = &slot.phase else { return false };
    if run.stage() != Stage::Up || slot.successor.is_some() {
        return false;
    }
    let generation = slot.next_generation;
    slot.next_generation += 1;
    slot.successor = Some(Run::new(generation, cx.now));
    cx.out.push(Command::Spawn { key: slot.key, generation });
    true
}

/// Whether `generation` is the slot's successor (not its own run).
pub(super) fn is_successor(slot: &Slot, generation: u32) -> bool {
    slot.successor.as_ref().is_some_and(|s| s.generation == generation)
}

pub(super) fn on_spawned(slot: &mut Slot, cx: &mut Cx<'_>, pid: u32) {
    let Some(succ) = slot.successor.as_mut() else { return };
    if !succ.spawned(pid) {
        return;
    }
    succ.started = cx.now;
    let generation = succ.generation;
    cx.emit(slot, Some(pid), EventKind::Spawned { generation });
    if !cx.shutting_down {
        super::probes::start(slot, cx, generation);
    }
    if cx.shutting_down {
        kill(slot, cx, ExitReason::Shutdown);
    } else if cx.wait_ready {
        // The worker says when it serves; a settle time on top would only slow reloads.
        let at = cx.now + cx.policy.ready_timeout;
        cx.arm(slot, TimerKind::SuccessorReady, at);
    } else if cx.policy.reload_settle.is_zero() {
        handover(slot, cx);
    } else {
        // Spawned is not serving: give it time to bind and listen, or to fail, before the
        // old worker goes.
        let at = cx.now + cx.policy.reload_settle;
        cx.arm(slot, TimerKind::SuccessorSettled, at);
    }
}

/// The replacement stayed up for `--reload-settle`: it takes over.
pub(super) fn on_settled(slot: &mut Slot, cx: &mut Cx<'_>) {
    if slot.successor.as_ref().is_some_and(|s| s.stage() == Stage::Up) {
        handover(slot, cx);
    }
}

/// The timers that only mean something while the slot has a successor.
fn clear_successor_timers(slot: &mut Slot) {
    slot.timers.retain(|&(_, k)| {
        !matches!(
            k,
            TimerKind::SuccessorReady | TimerKind::SuccessorSettled | TimerKind::SuccessorKill
        )
    });
}

pub(super) fn on_spawn_failed(slot: &mut Slot, cx: &mut Cx<'_>, error: String) {
    let Some(succ) = slot.successor.take() else { return };
    cx.emit(slot, None, EventKind::SpawnFailed { error });
    cx.out.push(Command::Release { key: slot.key, generation: succ.generation });
    slot.reload_outcome = Some(false);
}

/// The replacement is ready: by its own word, or (`by_probe`) by its readiness probe.
pub(super) fn on_ready(slot: &mut Slot, cx: &mut Cx<'_>, by_probe: bool) {
    let Some(succ) = slot.successor.as_mut() else { return };
    if succ.ready || succ.stop().is_some() {
        return;
    }
    succ.ready = true;
    let (pid, started) = (succ.pid(), succ.started);
    clear_successor_timers(slot);
    cx.emit(slot, pid, EventKind::Ready);
    // WHY a probe's ready waits out --reload-settle: a probe checks an address, and while
    // the replacement starts, the worker it replaces still answers there (a port of the
    // slot's, a shared one): its answer would hand over to a release that has not even
    // started, and crashes a second later. A worker that says `ready` itself needs no
    // settle time.
    let settled = started + cx.policy.reload_settle;
    if by_probe && cx.now < settled {
        cx.arm(slot, TimerKind::SuccessorSettled, settled);
    } else {
        handover(slot, cx);
    }
}

/// Not ready in time: the replacement is killed; the old worker stays.
pub(super) fn on_ready_timeout(slot: &mut Slot, cx: &mut Cx<'_>) {
    if slot.successor.as_ref().is_some_and(|s| !s.ready && s.stop().is_none()) {
        kill(slot, cx, ExitReason::ReadyTimeout);
    }
}

/// The replacement died before it took over: report it, keep the old worker.
pub(super) fn on_exited(slot: &mut Slot, cx: &mut Cx<'_>, status: ExitStatus, group_alive: bool) {
    let Some(succ) = slot.successor.take() else { return };
    let reason = succ.stop().map_or(ExitReason::Crashed, |s| s.reason);
    let uptime = cx.now.saturating_duration_since(succ.started);
    let restarts = slot.restarts;
    let memory = succ.memory_over.filter(|_| reason == ExitReason::MemoryLimit);
    cx.emit(slot, succ.pid(), EventKind::Exited { status, uptime, reason, restarts, memory });
    if let (true, Some(pid)) = (group_alive, succ.pid()) {
        // Whatever it started goes with it: a replacement never outlives its failure.
        cx.signal(slot.key, pid, Signal::KILL);
    }
    clear_successor_timers(slot);
    cx.out.push(Command::Release { key: slot.key, generation: succ.generation });
    slot.reload_outcome = Some(false);
}

/// SIGKILL for a replacement (a fresh process: nothing to lose) that failed or is not
/// wanted any more; its exit ends it.
pub(super) fn kill(slot: &mut Slot, cx: &mut Cx<'_>, reason: ExitReason) {
    let key = slot.key;
    let Some(succ) = slot.successor.as_mut() else { return };
    if succ.sent.kill {
        return;
    }
    succ.ask_stop(crate::core::worker::StopRequest { reason, then: After::Stay });
    succ.sent.kill = true;
    if let Some(pid) = succ.pid() {
        cx.signal(key, pid, Signal::KILL);
    }
}

/// A shutdown's stop for a replacement that already runs (it may be serving, as the old
/// worker is): the stop signal, then SIGKILL after the kill timeout, as every worker gets.
/// One still being spawned serves nobody: it is killed.
pub(super) fn stop(slot: &mut Slot, cx: &mut Cx<'_>, reason: ExitReason) {
    let key = slot.key;
    let Some(succ) = slot.successor.as_mut() else { return };
    let Some(pid) = succ.pid() else { return kill(slot, cx, reason) };
    if succ.sent.kill || succ.sent.term {
        return;
    }
    succ.ask_stop(crate::core::worker::StopRequest { reason, then: After::Stay });
    succ.sent.term = true;
    let at = cx.now + cx.policy.kill_timeout;
    succ.sent.kill_at = Some(at);
    let signal = cx.policy.stop_signal;
    cx.signal(key, pid, signal);
    if signal != Signal::CONT {
        cx.signal(key, pid, Signal::CONT);
    }
    cx.arm(slot, TimerKind::SuccessorKill, at);
}

/// The replacement runs: the old worker stops gracefully, reason `reload`.
fn handover(slot: &mut Slot, cx: &mut Cx<'_>) {
    if let Phase::Live(run) = &slot.phase
        && run.stage() <= Stage::Up
    {
        request_stop(slot, cx, ExitReason::Reload, How::Graceful, After::Handover);
    }
}

/// The old run is gone: the replacement becomes the slot's run. Returns false when there
/// is none (the caller then applies what was asked).
pub(super) fn promote(slot: &mut Slot, cx: &mut Cx<'_>, then: After) -> bool {
    let Some(mut succ) = slot.successor.take() else { return false };
    let wanted_gone = matches!(then, After::Stay | After::Remove) || cx.shutting_down;
    let not_ready = cx.wait_ready && !succ.ready;
    clear_successor_timers(slot);
    let succ_killed = succ.sent.kill;
    // Signalled already by a shutdown: its stop goes on, SIGKILL at its time.
    let stopping = succ.sent.term && !succ.sent.kill;
    if !succ.sent.kill && !stopping {
        succ.call_off_stop();
    }
    let kill_at = succ.sent.kill_at;
    slot.last_pid = succ.pid();
    slot.phase = Phase::Live(succ);
    // One stopped or killed for the shutdown replaced nothing, whichever of the two was
    // reaped first.
    slot.reload_outcome = Some(!(succ_killed || stopping));
    if let (true, Some(at)) = (stopping, kill_at) {
        cx.arm(slot, TimerKind::Kill, at);
    } else if wanted_gone {
        // The slot was being stopped for good: its replacement follows the old run.
        let reason = if cx.shutting_down { ExitReason::Shutdown } else { ExitReason::Stopped };
        request_stop(slot, cx, reason, How::Graceful, then.max(After::Stay));
    } else {
        if not_ready {
            let at = cx.now + cx.policy.ready_timeout;
            cx.arm(slot, TimerKind::Ready, at);
        }
        super::probes::resume(slot, cx);
    }
    true
}
