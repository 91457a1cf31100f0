//! Rolling reloads with fixed instants: one worker at a time, readiness and settle times,
//! failures that keep the old worker, and reloads queued or cut short.

use super::*;

/// Feeds the exit of a specific generation (the harness' pid map follows the newest one).
pub(super) fn exit_generation(
    h: &mut Harness,
    key: WorkerKey,
    generation: u32,
    status: ExitStatus,
) {
    h.feed(Input::Exited { key, generation, status, group_alive: false });
}

pub(super) fn reload_finished(h: &Harness) -> Option<(u32, bool)> {
    h.events.iter().find_map(|e| match e.kind {
        EventKind::ReloadFinished { replaced, failed } => Some((replaced, failed)),
        _ => None,
    })
}

#[test]
fn rolling_reload_replaces_one_worker_at_a_time() {
    let mut h = Harness::new(2, Policy::default(), false);
    let (old1, old2) = (h.pids[&W1], h.pids[&W2]);
    h.feed(Input::User(UserAction::Reload(0)));
    assert!(
        h.kinds().contains(&&EventKind::ReloadStarted { cause: crate::core::ReloadCause::Key })
    );
    // Worker 1's replacement settles before the old one is asked to stop; worker 2 waits.
    assert_eq!(h.spawns(W1), 2);
    assert_eq!(h.spawns(W2), 1);
    assert!(h.signals.is_empty(), "the old worker serves while its replacement settles");
    let view = h.sup.snapshot(h.now).workers.remove(0);
    assert_eq!(view.replacement, Some(h.pids[&W1].0));
    h.fire(W1);
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)]);
    exit_generation(&mut h, W1, old1.1, ExitStatus::Code(0));
    assert_eq!(h.spawns(W2), 2, "then worker 2");
    h.fire(W2);
    exit_generation(&mut h, W2, old2.1, ExitStatus::Code(0));
    assert_eq!(reload_finished(&h), Some((2, false)));
    let snap = h.sup.snapshot(h.now);
    assert!(
        snap.workers.iter().all(|w| w.state == WorkerState::Running && w.replacement.is_none())
    );
    assert_eq!(snap.workers[0].pid, Some(h.pids[&W1].0), "the replacement is the slot's worker");
    assert_eq!(snap.total_restarts, 0, "a reload is not a crash");
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Exited { reason: ExitReason::Reload, .. }))
    );
}

#[test]
fn with_wait_ready_the_old_worker_stays_until_the_new_one_is_ready() {
    let mut h = harness_with(Policy::default(), true);
    let first = h.pids[&W1];
    h.feed(Input::Ready { key: W1, generation: first.1 });
    h.feed(Input::User(UserAction::Reload(0)));
    let next = h.pids[&W1];
    assert_ne!(next, first);
    assert!(h.signals.is_empty(), "not ready yet: the old worker keeps serving");
    h.feed(Input::Ready { key: W1, generation: next.1 });
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)]);
    exit_generation(&mut h, W1, first.1, ExitStatus::Code(0));
    assert_eq!(reload_finished(&h), Some((1, false)));
    assert_eq!(h.state(W1), WorkerState::Running);
}

#[test]
fn a_failing_replacement_keeps_the_old_worker_and_stops_the_reload() {
    let mut h = harness_with(Policy::default(), true);
    let cfg = GroupConfig {
        name: "web".into(),
        workers: 2,
        policy: Policy::default(),
        wait_ready: true,
        depends_on: Vec::new(),
        scheduled: false,
        probes: ProbeSet::default(),
    };
    h.sup = Supervisor::new(vec![cfg], false, 7);
    h.pids.clear();
    h.feed(Input::Start);
    let old = h.pids[&W1];
    h.feed(Input::Ready { key: W1, generation: old.1 });
    h.feed(Input::User(UserAction::Reload(0)));
    let failing = h.pids[&W1];
    exit_generation(&mut h, W1, failing.1, ExitStatus::Code(1));
    assert_eq!(reload_finished(&h), Some((0, true)));
    assert_eq!(h.spawns(W2), 1, "the reload stopped at the first failure");
    assert!(h.signals.is_empty(), "the old worker was never stopped");
    let view = h.sup.snapshot(h.now).workers.remove(0);
    assert_eq!((view.pid, view.replacement), (Some(old.0), None));
    assert_eq!(h.state(W1), WorkerState::Running);
}

#[test]
fn a_replacement_not_ready_in_time_is_killed() {
    let policy = Policy { ready_timeout: Duration::from_secs(2), ..Policy::default() };
    let mut h = harness_with(policy, true);
    let old = h.pids[&W1];
    h.feed(Input::Ready { key: W1, generation: old.1 });
    h.feed(Input::User(UserAction::Reload(0)));
    let slow = h.pids[&W1];
    h.fire(W1);
    assert_eq!(h.signals, vec![(W1, Signal::KILL)]);
    exit_generation(&mut h, W1, slow.1, ExitStatus::Signal(Signal::KILL));
    assert_eq!(reload_finished(&h), Some((0, true)));
    assert_eq!(h.sup.snapshot(h.now).workers[0].pid, Some(old.0));
}

#[test]
fn shutdown_during_a_reload_stops_old_and_new() {
    let mut h = Harness::new(1, Policy::default(), false);
    let old = h.pids[&W1];
    h.feed(Input::User(UserAction::Reload(0)));
    let new = h.pids[&W1];
    h.feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    // Both get the stop signal: the replacement may be serving already.
    let terms = h.signals.iter().filter(|(k, s)| *k == W1 && *s == Signal::TERM).count();
    assert_eq!(terms, 2, "{:?}", h.signals);
    assert!(!h.signals.contains(&(W1, Signal::KILL)), "no SIGKILL before the kill timeout");
    exit_generation(&mut h, W1, new.1, ExitStatus::Signal(Signal::TERM));
    assert_eq!(h.exit, None, "the old worker is still stopping");
    exit_generation(&mut h, W1, old.1, ExitStatus::Code(0));
    assert_eq!(h.exit, Some(0));
    assert_eq!(h.spawns(W1), 2, "nothing new started during shutdown");
    assert_eq!(reload_finished(&h), Some((0, true)));
}

#[test]
fn a_replacement_that_ignores_the_shutdowns_stop_signal_is_killed_at_the_kill_timeout() {
    let policy = Policy { kill_timeout: ms(3000), ..Policy::default() };
    let mut h = Harness::new(1, policy, false);
    let old = h.pids[&W1];
    h.feed(Input::User(UserAction::Reload(0)));
    let new = h.pids[&W1];
    h.at(100).feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    assert!(!h.signals.contains(&(W1, Signal::KILL)));
    // The old worker goes at once; the replacement, now the slot's run, ignores TERM.
    exit_generation(&mut h, W1, old.1, ExitStatus::Code(0));
    let (at, token) = *h.timers.iter().rev().find(|(_, t)| t.key == W1).expect("a kill timer");
    assert_eq!(at, h.t0 + ms(3100), "the kill timeout from the stop signal, not later");
    h.now = at;
    h.feed(Input::Timer(token));
    assert!(h.signals.contains(&(W1, Signal::KILL)), "{:?}", h.signals);
    exit_generation(&mut h, W1, new.1, ExitStatus::Signal(Signal::KILL));
    assert_eq!(h.exit, Some(0));
}

#[test]
fn a_reload_cut_short_by_shutdown_is_reported_failed_whichever_process_goes_first() {
    let mut h = Harness::new(2, Policy::default(), false);
    let old = h.pids[&W1];
    h.feed(Input::User(UserAction::Reload(0)));
    let new = h.pids[&W1];
    h.feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    // The old worker is reaped before its stopped replacement.
    exit_generation(&mut h, W1, old.1, ExitStatus::Code(0));
    assert_eq!(reload_finished(&h), Some((0, true)), "the stopped replacement replaced nothing");
    exit_generation(&mut h, W1, new.1, ExitStatus::Signal(Signal::TERM));
    let w2 = h.pids[&W2];
    exit_generation(&mut h, W2, w2.1, ExitStatus::Code(0));
    assert_eq!(h.exit, Some(0));
    assert_eq!(h.spawns(W2), 1);
}

pub(super) fn count(h: &Harness, wanted: &EventKind) -> usize {
    h.events.iter().filter(|e| e.kind == *wanted).count()
}

pub(super) fn reloads_finished(h: &Harness) -> Vec<(u32, bool)> {
    h.events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ReloadFinished { replaced, failed } => Some((replaced, failed)),
            _ => None,
        })
        .collect()
}

/// The armed timer of `kind` for `key`, fired at its own instant.
pub(super) fn fire_kind(h: &mut Harness, key: WorkerKey, kind: TimerKind) {
    let (at, token) =
        *h.timers.iter().rev().find(|(_, t)| t.key == key && t.kind == kind).expect("timer");
    h.now = h.now.max(at);
    h.feed(Input::Timer(token));
}

#[test]
fn without_wait_ready_the_old_worker_is_stopped_only_after_the_settle_time() {
    let policy = Policy { reload_settle: Duration::from_secs(3), ..Policy::default() };
    let mut h = harness_with(policy, false);
    let old = h.pids[&W1];
    h.at(1000).feed(Input::User(UserAction::Reload(0)));
    let new = h.pids[&W1];
    assert_ne!(new, old);
    let (at, token) = *h.timers.last().expect("settle timer");
    assert_eq!((at, token.kind), (h.t0 + ms(4000), TimerKind::SuccessorSettled));
    assert!(h.signals.is_empty(), "spawned is not serving: the old worker stays");
    fire_kind(&mut h, W1, TimerKind::SuccessorSettled);
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)]);
    exit_generation(&mut h, W1, old.1, ExitStatus::Code(0));
    assert_eq!(reload_finished(&h), Some((1, false)));
    let view = h.sup.snapshot(h.now).workers.remove(0);
    assert_eq!((view.pid, view.state), (Some(new.0), WorkerState::Running));
}

#[test]
fn a_replacement_that_dies_while_settling_fails_the_reload_and_keeps_the_old_worker() {
    let mut h = Harness::new(2, Policy::default(), false);
    let old = h.pids[&W1];
    h.feed(Input::User(UserAction::Reload(0)));
    let doomed = h.pids[&W1];
    h.at(500);
    exit_generation(&mut h, W1, doomed.1, crash());
    assert_eq!(reload_finished(&h), Some((0, true)));
    assert_eq!(h.spawns(W2), 1, "the remaining slots are not replaced");
    fire_kind(&mut h, W1, TimerKind::SuccessorSettled); // stale now
    assert!(h.signals.is_empty(), "the old worker was never stopped: {:?}", h.signals);
    let view = h.sup.snapshot(h.now).workers.remove(0);
    assert_eq!((view.pid, view.replacement), (Some(old.0), None));
    assert_eq!((view.state, view.restarts), (WorkerState::Running, 0));
}

#[test]
fn a_replacement_that_says_ready_needs_no_settle_time_even_without_wait_ready() {
    let mut h = harness_with(Policy::default(), false);
    h.feed(Input::User(UserAction::Reload(0)));
    let new = h.pids[&W1];
    h.at(60).feed(Input::Ready { key: W1, generation: new.1 });
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)]);
    fire_kind(&mut h, W1, TimerKind::SuccessorSettled); // stale: disarmed by the ready
    assert_eq!(h.signals.len(), 2, "{:?}", h.signals);
}

#[test]
fn a_zero_settle_hands_over_as_soon_as_the_replacement_is_spawned() {
    let policy = Policy { reload_settle: Duration::ZERO, ..Policy::default() };
    let mut h = harness_with(policy, false);
    h.feed(Input::User(UserAction::Reload(0)));
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)]);
    assert!(!h.timers.iter().any(|(_, t)| t.kind == TimerKind::SuccessorSettled));
}

#[test]
fn with_wait_ready_ready_is_the_signal_and_no_settle_time_is_added() {
    let mut h = harness_with(Policy::default(), true);
    let first = h.pids[&W1];
    h.feed(Input::Ready { key: W1, generation: first.1 });
    h.feed(Input::User(UserAction::Reload(0)));
    let next = h.pids[&W1];
    assert!(!h.timers.iter().any(|(_, t)| t.kind == TimerKind::SuccessorSettled));
    h.at(10).feed(Input::Ready { key: W1, generation: next.1 });
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)]);
}

#[test]
fn stopping_the_old_worker_while_its_replacement_settles_stops_both() {
    let mut h = harness_with(Policy::default(), false);
    let old = h.pids[&W1];
    h.feed(Input::User(UserAction::Reload(0)));
    let new = h.pids[&W1];
    h.at(100).feed(Input::User(UserAction::Stop(W1)));
    exit_generation(&mut h, W1, old.1, ExitStatus::Code(0));
    // The replacement took the slot over and follows the stop.
    assert_eq!(h.state(W1), WorkerState::Stopping);
    fire_kind(&mut h, W1, TimerKind::Kill);
    exit_generation(&mut h, W1, new.1, ExitStatus::Signal(Signal::KILL));
    assert_eq!(h.state(W1), WorkerState::Stopped);
    assert_eq!(reloads_finished(&h).len(), 1);
    assert_eq!(h.spawns(W1), 2, "a stop during the settle time starts nothing");
}

#[test]
fn reload_requests_during_a_reload_queue_exactly_one_more() {
    let mut h = harness_with(Policy::default(), false);
    assert!(!h.sup.reloading(0));
    let first = h.pids[&W1];
    h.feed(Input::User(UserAction::Reload(0)));
    let second = h.pids[&W1];
    assert!(h.sup.reloading(0));
    for t in [10, 20, 30] {
        h.at(t).feed(Input::User(UserAction::Reload(0)));
    }
    assert_eq!(
        count(&h, &EventKind::ReloadStarted { cause: crate::core::ReloadCause::Key }),
        1,
        "one at a time"
    );
    assert_eq!(h.spawns(W1), 2);
    fire_kind(&mut h, W1, TimerKind::SuccessorSettled);
    exit_generation(&mut h, W1, first.1, ExitStatus::Code(0));
    // The first reload is over and the queued one begins at once, with a new replacement.
    assert_eq!(reloads_finished(&h), vec![(1, false)]);
    assert_eq!(count(&h, &EventKind::ReloadStarted { cause: crate::core::ReloadCause::Key }), 2);
    assert_eq!(h.spawns(W1), 3);
    assert!(h.sup.reloading(0));
    fire_kind(&mut h, W1, TimerKind::SuccessorSettled);
    exit_generation(&mut h, W1, second.1, ExitStatus::Code(0));
    assert_eq!(reloads_finished(&h), vec![(1, false), (1, false)]);
    assert_eq!(
        count(&h, &EventKind::ReloadStarted { cause: crate::core::ReloadCause::Key }),
        2,
        "three requests, one more reload"
    );
    assert!(!h.sup.reloading(0));
    assert_eq!(h.state(W1), WorkerState::Running);
}

#[test]
fn a_queued_reload_still_runs_after_a_failed_one() {
    let mut h = harness_with(Policy::default(), false);
    let old = h.pids[&W1];
    h.feed(Input::User(UserAction::Reload(0)));
    h.feed(Input::User(UserAction::Reload(0)));
    let failing = h.pids[&W1];
    h.at(50);
    exit_generation(&mut h, W1, failing.1, crash());
    assert_eq!(reloads_finished(&h), vec![(0, true)]);
    assert_eq!(
        count(&h, &EventKind::ReloadStarted { cause: crate::core::ReloadCause::Key }),
        2,
        "the fix may have landed since"
    );
    let retry = h.pids[&W1];
    assert_ne!(retry, failing);
    fire_kind(&mut h, W1, TimerKind::SuccessorSettled);
    exit_generation(&mut h, W1, old.1, ExitStatus::Code(0));
    assert_eq!(reloads_finished(&h), vec![(0, true), (1, false)]);
    assert_eq!(h.sup.snapshot(h.now).workers[0].pid, Some(retry.0));
}

#[test]
fn shutdown_cancels_a_queued_reload() {
    let mut h = harness_with(Policy::default(), false);
    let old = h.pids[&W1];
    h.feed(Input::User(UserAction::Reload(0)));
    let new = h.pids[&W1];
    h.feed(Input::User(UserAction::Reload(0)));
    h.at(100).feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    exit_generation(&mut h, W1, new.1, ExitStatus::Signal(Signal::KILL));
    fire_kind(&mut h, W1, TimerKind::SuccessorSettled); // stale: nothing hands over now
    exit_generation(&mut h, W1, old.1, ExitStatus::Code(0));
    assert_eq!(count(&h, &EventKind::ReloadStarted { cause: crate::core::ReloadCause::Key }), 1);
    assert_eq!(reloads_finished(&h), vec![(0, true)]);
    assert_eq!(h.spawns(W1), 2, "nothing started after the shutdown began");
    assert_eq!(h.exit, Some(0));
    h.feed(Input::User(UserAction::Reload(0)));
    assert_eq!(
        count(&h, &EventKind::ReloadStarted { cause: crate::core::ReloadCause::Key }),
        1,
        "no reload during or after shutdown"
    );
}
