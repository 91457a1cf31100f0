//! Stopping: one slot (gracefully, by SIGABRT, or SIGKILL), a group's leftovers after its
//! leader died, and the whole supervisor, group by group in reverse order.

use std::time::Duration;

use super::{
    ABANDON_AFTER_KILL, After, Command, Cx, Event, EventKind, ExitReason, ExitStatus, How, Instant,
    Phase, Scope, Shutdown, ShutdownTrigger, Signal, Slot, StopRequest, Supervisor, TimerKind,
    finish, reload,
};

impl Supervisor {
    pub(super) fn on_shutdown(&mut self, now: Instant, trigger: ShutdownTrigger) {
        let forces = trigger.forces();
        match self.shutdown {
            Shutdown::Running => {
                self.shutdown = Shutdown::Graceful;
                for group in &mut self.groups {
                    if let Some(g) = group.reload.as_mut() {
                        g.cancel();
                    }
                }
                let kill_after = if forces { None } else { self.longest_grace() };
                self.out.push(Command::Emit(Event {
                    scope: Scope::Supervisor,
                    pid: None,
                    kind: EventKind::ShutdownStarted { trigger, kill_after },
                }));
                self.for_each_slot(now, |slot, cx| match slot.phase {
                    // A reload's replacement stops with its group, with the same grace
                    // as the worker it was to replace (it may serve already).
                    Phase::Live(_) if forces => {
                        reload::kill(slot, cx, ExitReason::Shutdown);
                        request_stop(slot, cx, ExitReason::Shutdown, How::Kill, After::Stay);
                    }
                    Phase::Waiting { .. } => {
                        slot.timers.clear();
                        slot.phase = Phase::Stopped;
                    }
                    // Live ones are stopped group by group (`stop_next_groups`).
                    Phase::Live(_) | Phase::Stopped | Phase::GaveUp => {}
                });
                if forces {
                    self.shutdown = Shutdown::Forced;
                } else {
                    self.stop_next_groups(now);
                }
            }
            Shutdown::Graceful if trigger.escalates() || forces => {
                self.shutdown = Shutdown::Forced;
                self.for_each_slot(now, |slot, cx| {
                    reload::kill(slot, cx, ExitReason::Shutdown);
                    if slot.is_live() {
                        request_stop(slot, cx, ExitReason::Shutdown, How::Kill, After::Stay);
                    }
                });
            }
            Shutdown::Graceful | Shutdown::Forced => {}
        }
    }

    /// The longest a worker of any group with live slots has between being asked to stop
    /// and SIGKILL.
    fn longest_grace(&self) -> Option<Duration> {
        self.groups
            .iter()
            .filter(|g| g.slots.iter().any(Slot::is_live))
            .map(|g| {
                let policy = &g.config.policy;
                policy.kill_timeout * if policy.disconnect_first { 2 } else { 1 }
            })
            .max()
    }
}

pub(super) fn stop_slot(slot: &mut Slot, cx: &mut Cx<'_>) {
    match slot.phase {
        Phase::Live(_) => request_stop(slot, cx, ExitReason::Stopped, How::Graceful, After::Stay),
        Phase::Waiting { .. } | Phase::GaveUp => {
            // A stop during backoff cancels the pending restart for good.
            slot.timers.clear();
            slot.phase = Phase::Stopped;
        }
        Phase::Stopped => {}
    }
}

pub(super) fn request_stop(
    slot: &mut Slot,
    cx: &mut Cx<'_>,
    reason: ExitReason,
    how: How,
    then: After,
) {
    let Phase::Live(run) = &mut slot.phase else {
        return;
    };
    run.ask_stop(StopRequest { reason, then });
    let Some(pid) = run.pid() else { return }; // delivered once the spawn reports its pid
    let key = slot.key;
    match how {
        How::Kill => {
            if !run.sent.kill {
                run.sent.kill = true;
                cx.signal(key, pid, Signal::KILL);
                cx.arm(slot, TimerKind::Abandon, cx.now + ABANDON_AFTER_KILL);
            }
        }
        How::Graceful | How::Abort => {
            if run.sent.term || run.sent.kill {
                return;
            }
            let notify = run.exit().is_none() && how == How::Graceful;
            if notify && cx.policy.disconnect_first {
                if !run.sent.disconnect {
                    run.sent.disconnect = true;
                    // At the latest: the disconnect's grace, then the stop signal's.
                    run.sent.kill_at = Some(cx.now + cx.policy.kill_timeout * 2);
                    cx.out.push(Command::NotifyShutdown { key, pid });
                    cx.arm(slot, TimerKind::Disconnect, cx.now + cx.policy.kill_timeout);
                }
                return;
            }
            if notify {
                cx.out.push(Command::NotifyShutdown { key, pid });
            }
            let signal = if how == How::Abort { Signal::ABRT } else { cx.policy.stop_signal };
            send_stop_signal(slot, cx, signal);
        }
    }
}

/// The stop signal (and SIGCONT), then SIGKILL after the kill timeout.
fn send_stop_signal(slot: &mut Slot, cx: &mut Cx<'_>, signal: Signal) {
    let Phase::Live(run) = &mut slot.phase else {
        return;
    };
    let Some(pid) = run.pid() else { return };
    if run.sent.term || run.sent.kill {
        return;
    }
    run.sent.term = true;
    run.sent.kill_at = Some(cx.now + cx.policy.kill_timeout);
    let key = slot.key;
    cx.signal(key, pid, signal);
    // A stopped (SIGSTOP'd) process only acts on the stop signal once continued.
    if signal != Signal::CONT {
        cx.signal(key, pid, Signal::CONT);
    }
    let at = cx.now + cx.policy.kill_timeout;
    cx.arm(slot, TimerKind::Kill, at);
}

/// How long a worker that finished its disconnect may take to exit by itself (with code 0)
/// before the stop signal: most exit at once, one with a timer of its own never does.
pub(crate) const DISCONNECT_GRACE: Duration = Duration::from_millis(500);

/// A worker asked to disconnect closed its channel: it has closed its servers and finished
/// their requests. It gets a moment to exit by itself, then the stop signal.
pub(super) fn disconnect_done(slot: &mut Slot, cx: &mut Cx<'_>) {
    let Phase::Live(run) = &slot.phase else {
        return;
    };
    if run.sent.disconnect && !run.sent.term && !run.sent.kill && run.exit().is_none() {
        let at = cx.now + DISCONNECT_GRACE.min(cx.policy.kill_timeout);
        cx.arm(slot, TimerKind::Disconnect, at);
    }
}

/// A worker asked to disconnect took too long, or did not exit once disconnected: Node's
/// own primary sends the stop signal at that point, so does corral.
pub(super) fn after_disconnect(slot: &mut Slot, cx: &mut Cx<'_>) {
    let Phase::Live(run) = &slot.phase else {
        return;
    };
    if run.sent.disconnect {
        let signal = cx.policy.stop_signal;
        send_stop_signal(slot, cx, signal);
    }
}

pub(super) fn start_group_cleanup(slot: &mut Slot, cx: &mut Cx<'_>) {
    let Phase::Live(run) = &mut slot.phase else {
        return;
    };
    if run.sent.term || run.sent.kill {
        return; // a stop is under way and its timers are armed
    }
    let Some(pid) = run.pid() else { return };
    run.sent.term = true;
    run.sent.kill_at = Some(cx.now + cx.policy.kill_timeout);
    let signal = cx.policy.stop_signal;
    cx.signal(slot.key, pid, signal);
    cx.signal(slot.key, pid, Signal::CONT);
    let at = cx.now + cx.policy.kill_timeout;
    cx.arm(slot, TimerKind::Kill, at);
}

/// SIGKILL did not end the run in time (a process in uninterruptible sleep): stop
/// waiting so a stop, a restart or the shutdown can finish.
pub(super) fn abandon(slot: &mut Slot, cx: &mut Cx<'_>) {
    let Phase::Live(run) = &mut slot.phase else {
        return;
    };
    if run.exit().is_none() {
        let reason = run.stop().map_or(ExitReason::Crashed, |s| s.reason);
        let uptime = cx.now.saturating_duration_since(run.started);
        let status = ExitStatus::Signal(Signal::KILL);
        run.end(status, cx.now, reason);
        let (pid, restarts) = (run.pid(), slot.restarts);
        let memory = run.memory_over.filter(|_| reason == ExitReason::MemoryLimit);
        cx.emit(slot, pid, EventKind::Exited { status, uptime, reason, restarts, memory });
    }
    finish(slot, cx);
}
