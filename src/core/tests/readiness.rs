//! Readiness (`--wait-ready`, its timeout), heartbeats and the memory limit, with fixed
//! instants.

use super::*;

pub(super) fn harness_with(policy: Policy, wait_ready: bool) -> Harness {
    let mut h = Harness::new(0, policy, false);
    let cfg = GroupConfig {
        name: "web".into(),
        workers: 1,
        policy,
        wait_ready,
        depends_on: Vec::new(),
        scheduled: false,
        probes: ProbeSet::default(),
    };
    h.sup = Supervisor::new(vec![cfg], false, 7);
    h.feed(Input::Start);
    h
}

pub(super) fn gen_of(h: &Harness, key: WorkerKey) -> u32 {
    h.pids[&key].1
}

pub(super) fn exit_reason(h: &Harness) -> Option<ExitReason> {
    h.events.iter().rev().find_map(|e| match e.kind {
        EventKind::Exited { reason, .. } => Some(reason),
        _ => None,
    })
}

#[test]
fn wait_ready_keeps_starting_until_ready_then_runs() {
    let mut h = harness_with(Policy::default(), true);
    assert_eq!(h.state(W1), WorkerState::Starting);
    let generation = gen_of(&h, W1);
    h.at(100).feed(Input::Ready { key: W1, generation });
    assert_eq!(h.state(W1), WorkerState::Running);
    assert!(h.kinds().contains(&&EventKind::Ready));
    h.fire(W1); // the ready timer is stale now
    assert!(h.signals.is_empty(), "a ready worker is never killed for the ready timeout");
}

#[test]
fn not_ready_in_time_is_killed_and_counts_as_failed() {
    let policy = Policy { ready_timeout: Duration::from_secs(2), ..Policy::default() };
    let mut h = harness_with(policy, true);
    h.fire(W1);
    assert_eq!(h.now, h.t0 + Duration::from_secs(2));
    assert_eq!(h.signals, vec![(W1, Signal::KILL)]);
    h.exit_worker(W1, ExitStatus::Signal(Signal::KILL));
    assert_eq!(exit_reason(&h), Some(ExitReason::ReadyTimeout));
    assert!(matches!(h.state(W1), WorkerState::Backoff { .. }));
}

#[test]
fn heartbeat_silence_aborts_then_kills_and_restarts() {
    let policy = Policy {
        heartbeat_timeout: Some(Duration::from_secs(3)),
        kill_timeout: Duration::from_secs(1),
        min_uptime: Duration::from_secs(5),
        ..Policy::default()
    };
    let mut h = harness_with(policy, false);
    let generation = gen_of(&h, W1);
    // Never sent a heartbeat: no timer, never killed for silence.
    assert!(h.timers.is_empty());
    for t in [1000, 2000, 3500] {
        h.at(t).feed(Input::Heartbeat { key: W1, generation });
    }
    assert_eq!(h.timers.len(), 1, "one timer however many heartbeats");
    h.fire(W1); // fires at 4 s: the last heartbeat was 0.5 s ago, re-armed
    assert!(h.signals.is_empty());
    h.fire(W1); // 6.5 s: 3 s of silence
    assert_eq!(h.now, h.t0 + Duration::from_millis(6500));
    assert_eq!(h.signals, vec![(W1, Signal::ABRT), (W1, Signal::CONT)]);
    h.fire(W1); // the kill timeout
    assert_eq!(h.signals.last(), Some(&(W1, Signal::KILL)));
    h.exit_worker(W1, ExitStatus::Signal(Signal::KILL));
    assert_eq!(exit_reason(&h), Some(ExitReason::HeartbeatTimeout));
    assert_eq!(h.spawns(W1), 2, "a stable run restarts at once");
}

#[test]
fn memory_over_the_limit_twice_restarts_gracefully() {
    let policy = Policy { max_memory: Some(100), ..Policy::default() };
    let mut h = harness_with(policy, false);
    let generation = gen_of(&h, W1);
    h.at(1000).feed(Input::Sample { key: W1, generation, rss: 150 });
    h.at(2000).feed(Input::Sample { key: W1, generation, rss: 90 });
    h.at(3000).feed(Input::Sample { key: W1, generation, rss: 150 });
    assert!(h.signals.is_empty(), "one sample over the limit is not enough");
    h.at(4000).feed(Input::Sample { key: W1, generation, rss: 150 });
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)]);
    h.exit_worker(W1, ExitStatus::Code(0));
    assert_eq!(exit_reason(&h), Some(ExitReason::MemoryLimit));
    let memory = h.events.iter().rev().find_map(|e| match e.kind {
        EventKind::Exited { memory, .. } => Some(memory),
        _ => None,
    });
    let over = crate::core::MemoryOver { rss: 150, limit: 100 };
    assert_eq!(memory, Some(Some(over)), "the exit says by how much");
    assert!(
        matches!(h.state(W1), WorkerState::Backoff { .. }),
        "exit 0 after a memory kill is still a failure"
    );
}
