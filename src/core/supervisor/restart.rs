//! Starting and starting again: a slot's spawn, its run's end, and what the restart policy
//! (backoff, crash loop, restart window) makes of it.

use super::{
    After, Command, Cx, Duration, EventKind, ExitReason, ExitStatus, How, LastExit,
    MIN_SPAWN_RETRY, Phase, RestartPolicy, Run, Slot, TimerKind, reload, request_stop, with_jitter,
};

pub(super) fn spawn(slot: &mut Slot, cx: &mut Cx<'_>) {
    let generation = slot.next_generation;
    slot.next_generation += 1;
    slot.timers.clear();
    slot.phase = Phase::Live(Run::new(generation, cx.now));
    cx.out.push(Command::Spawn { key: slot.key, generation });
}

/// A start the user asked for: a fresh crash-loop budget, no backoff.
pub(super) fn start_fresh(slot: &mut Slot, cx: &mut Cx<'_>) {
    slot.held = false;
    slot.restart_log.clear();
    slot.short_runs = 0;
    slot.failed_short_runs = 0;
    spawn(slot, cx);
}

/// The run and its whole process group are gone: record it and decide what comes next.
pub(super) fn finish(slot: &mut Slot, cx: &mut Cx<'_>) {
    let Phase::Live(run) = std::mem::replace(&mut slot.phase, Phase::Stopped) else {
        return;
    };
    slot.timers.clear();
    cx.out.push(Command::Release { key: slot.key, generation: run.generation });
    let Some((status, at, reason)) = run.exit() else {
        return;
    };
    let uptime = at.saturating_duration_since(run.started);
    slot.last_exit = Some(LastExit { status, reason, at, uptime });
    let then = run.stop().map_or(After::Policy, |s| s.then);
    if reload::promote(slot, cx, then) {
        return; // a rolling reload's replacement carries on for the slot
    }
    if cx.shutting_down || slot.retiring {
        return;
    }
    match then {
        After::Policy => decide_restart(slot, cx, status, reason, uptime, None),
        After::RestartNow | After::Handover => spawn(slot, cx),
        After::Stay | After::Remove => {}
    }
}

/// The restart policy after a run ended on its own (or a start failed).
pub(super) fn decide_restart(
    slot: &mut Slot,
    cx: &mut Cx<'_>,
    status: ExitStatus,
    reason: ExitReason,
    uptime: Duration,
    spawn_error: Option<String>,
) {
    // A worker corral ended because it hung, bloated, never got ready or failed its
    // liveness probe failed, whatever its exit code.
    let inflicted = matches!(
        reason,
        ExitReason::HeartbeatTimeout
            | ExitReason::MemoryLimit
            | ExitReason::ReadyTimeout
            | ExitReason::LivenessProbe
    );
    let failed = spawn_error.is_some() || !status.success() || inflicted;
    match cx.policy.restart {
        RestartPolicy::Never => return,
        RestartPolicy::OnFailure if !failed => return,
        RestartPolicy::OnFailure | RestartPolicy::Always => {}
    }
    let stable = spawn_error.is_none() && uptime >= cx.policy.min_uptime;
    let mut delay = if stable {
        slot.short_runs = 0;
        slot.failed_short_runs = 0;
        Duration::ZERO
    } else {
        slot.short_runs = slot.short_runs.saturating_add(1);
        slot.failed_short_runs = if failed { slot.failed_short_runs.saturating_add(1) } else { 0 };
        with_jitter(cx.policy.backoff.delay(slot.short_runs), cx.rng.f64())
    };
    if spawn_error.is_some() {
        delay = delay.max(MIN_SPAWN_RETRY);
    }
    let max = cx.policy.max_restarts as usize;
    if max > 0 {
        let window = cx.policy.restart_window;
        while slot
            .restart_log
            .front()
            .is_some_and(|&t| cx.now.saturating_duration_since(t) >= window)
        {
            slot.restart_log.pop_front();
        }
        if slot.restart_log.len() >= max {
            slot.phase = Phase::GaveUp;
            let (pid, restarts) = (slot.last_pid, slot.restarts);
            cx.emit(slot, pid, EventKind::GaveUp { restarts, last: false });
            return;
        }
        slot.restart_log.push_back(cx.now);
    }
    slot.restarts = slot.restarts.saturating_add(1);
    let (pid, restarts) = (slot.last_pid, slot.restarts);
    cx.emit(slot, pid, EventKind::RestartScheduled { delay, restarts });
    if delay.is_zero() {
        spawn(slot, cx);
    } else {
        let until = cx.now + delay;
        slot.phase = Phase::Waiting { until, failed: spawn_error };
        cx.arm(slot, TimerKind::Restart, until);
    }
}

/// The heartbeat timer fired: kill the worker if it has been silent too long, else wait
/// for the rest of the timeout since its last heartbeat.
pub(super) fn check_heartbeat(slot: &mut Slot, cx: &mut Cx<'_>) {
    let Some(timeout) = cx.policy.heartbeat_timeout else {
        return;
    };
    let Phase::Live(run) = &slot.phase else {
        return;
    };
    let Some(last) = run.last_heartbeat else {
        return;
    };
    if run.stop().is_some() || run.exit().is_some() {
        return;
    }
    if cx.now.saturating_duration_since(last) >= timeout {
        // SIGABRT first: a hung worker may dump its state before the SIGKILL.
        request_stop(slot, cx, ExitReason::HeartbeatTimeout, How::Abort, After::Policy);
    } else {
        cx.arm(slot, TimerKind::Heartbeat, last + timeout);
    }
}
