//! Probes' decisions with fixed instants: readiness gates `ready` and marks `unready`,
//! liveness restarts, startup holds both back, one probe out at a time, stale results
//! ignored, failures reported at most once a second.

use super::readiness::{exit_reason, gen_of};
use super::*;

fn timing(failure_threshold: u32) -> ProbeTiming {
    ProbeTiming {
        period: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        initial_delay: Duration::ZERO,
        failure_threshold,
        success_threshold: 1,
    }
}

fn harness(probes: ProbeSet, workers: u32) -> Harness {
    let mut h = Harness::new(0, Policy::default(), false);
    let wait_ready = probes.readiness.is_some();
    let cfg = GroupConfig {
        name: "web".into(),
        workers,
        policy: Policy::default(),
        wait_ready,
        probes,
        ..GroupConfig::default()
    };
    h.sup = Supervisor::new(vec![cfg], false, 7);
    h.feed(Input::Start);
    h
}

/// Fires the latest timer of `key`'s `probe` and returns the probes asked for since.
fn tick(h: &mut Harness, key: WorkerKey, probe: ProbeKind) -> Vec<(WorkerKey, u32, ProbeKind)> {
    let before = h.probes.len();
    let (at, token) = *h
        .timers
        .iter()
        .rev()
        .find(|(_, t)| {
            t.key == key && matches!(t.kind, TimerKind::Probe { probe: p, .. } if p == probe)
        })
        .expect("a probe timer");
    h.now = h.now.max(at);
    h.feed(Input::Timer(token));
    h.probes[before..].to_vec()
}

fn result(h: &mut Harness, key: WorkerKey, probe: ProbeKind, ok: bool) {
    let generation = gen_of(h, key);
    let error = (!ok).then(|| "connection refused".to_string());
    h.feed(Input::ProbeResult { key, generation, probe, error });
}

/// One period: the probe runs and answers.
fn round(h: &mut Harness, key: WorkerKey, probe: ProbeKind, ok: bool) {
    assert_eq!(tick(h, key, probe).len(), 1, "one probe asked for");
    result(h, key, probe, ok);
}

fn count_kind(h: &Harness, f: impl Fn(&EventKind) -> bool) -> usize {
    h.events.iter().filter(|e| f(&e.kind)).count()
}

#[test]
fn readiness_decides_ready() {
    let mut h = harness(ProbeSet { readiness: Some(timing(3)), ..ProbeSet::default() }, 1);
    assert_eq!(h.state(W1), WorkerState::Starting);
    round(&mut h, W1, ProbeKind::Readiness, false);
    assert_eq!(h.state(W1), WorkerState::Starting);
    assert_eq!(count_kind(&h, |k| *k == EventKind::Ready), 0);
    round(&mut h, W1, ProbeKind::Readiness, true);
    assert_eq!(h.state(W1), WorkerState::Running);
    assert_eq!(count_kind(&h, |k| *k == EventKind::Ready), 1);
}

#[test]
fn failing_readiness_after_ready_is_unready_not_killed() {
    let mut h = harness(ProbeSet { readiness: Some(timing(2)), ..ProbeSet::default() }, 1);
    round(&mut h, W1, ProbeKind::Readiness, true);
    round(&mut h, W1, ProbeKind::Readiness, false);
    assert_eq!(h.state(W1), WorkerState::Running, "one failure is below the threshold");
    round(&mut h, W1, ProbeKind::Readiness, false);
    assert_eq!(h.state(W1), WorkerState::Unready);
    assert_eq!(count_kind(&h, |k| *k == EventKind::Unready), 1);
    round(&mut h, W1, ProbeKind::Readiness, false);
    assert_eq!(count_kind(&h, |k| *k == EventKind::Unready), 1, "said once");
    assert!(h.signals.is_empty(), "never killed for readiness");
    round(&mut h, W1, ProbeKind::Readiness, true);
    assert_eq!(h.state(W1), WorkerState::Running);
    assert_eq!(count_kind(&h, |k| *k == EventKind::Ready), 2, "ready again");
}

#[test]
fn failing_liveness_restarts_gracefully_as_a_failure() {
    let policy = Policy { restart: RestartPolicy::OnFailure, ..Policy::default() };
    let mut h = Harness::new(0, policy, false);
    let probes = ProbeSet { liveness: Some(timing(3)), ..ProbeSet::default() };
    let cfg = GroupConfig {
        name: "web".into(),
        workers: 1,
        policy,
        wait_ready: false,
        probes,
        ..GroupConfig::default()
    };
    h.sup = Supervisor::new(vec![cfg], false, 7);
    h.feed(Input::Start);
    for _ in 0..2 {
        round(&mut h, W1, ProbeKind::Liveness, false);
    }
    assert!(h.signals.is_empty());
    round(&mut h, W1, ProbeKind::Liveness, false);
    assert_eq!(h.signals.first(), Some(&(W1, Signal::TERM)), "graceful: the stop signal first");
    // A clean exit after the stop signal is still a failure: on-failure restarts it.
    h.exit_worker(W1, ExitStatus::Code(0));
    assert_eq!(exit_reason(&h), Some(ExitReason::LivenessProbe));
    assert_eq!(count_kind(&h, |k| matches!(k, EventKind::RestartScheduled { .. })), 1);
    assert!(ExitReason::LivenessProbe.is_crash());
}

#[test]
fn a_success_breaks_the_failure_streak() {
    let mut h = harness(ProbeSet { liveness: Some(timing(2)), ..ProbeSet::default() }, 1);
    for _ in 0..5 {
        round(&mut h, W1, ProbeKind::Liveness, false);
        round(&mut h, W1, ProbeKind::Liveness, true);
    }
    assert!(h.signals.is_empty());
}

#[test]
fn startup_holds_liveness_back_then_hands_over() {
    let probes =
        ProbeSet { liveness: Some(timing(1)), startup: Some(timing(3)), ..ProbeSet::default() };
    let mut h = harness(probes, 1);
    let kinds = |h: &Harness| -> Vec<ProbeKind> {
        h.timers
            .iter()
            .filter_map(|(_, t)| match t.kind {
                TimerKind::Probe { probe, .. } => Some(probe),
                _ => None,
            })
            .collect()
    };
    assert_eq!(kinds(&h), vec![ProbeKind::Startup]);
    round(&mut h, W1, ProbeKind::Startup, false);
    round(&mut h, W1, ProbeKind::Startup, true);
    assert!(h.signals.is_empty());
    assert!(kinds(&h).contains(&ProbeKind::Liveness));
    let armed = h.timers.len();
    assert!(tick(&mut h, W1, ProbeKind::Startup).is_empty(), "the startup probe is done");
    assert_eq!(h.timers.len(), armed, "and not armed again");
    round(&mut h, W1, ProbeKind::Liveness, false);
    assert_eq!(h.signals.first(), Some(&(W1, Signal::TERM)));
}

#[test]
fn a_startup_probe_that_never_succeeds_restarts() {
    let probes = ProbeSet { startup: Some(timing(3)), ..ProbeSet::default() };
    let mut h = harness(probes, 1);
    for _ in 0..3 {
        round(&mut h, W1, ProbeKind::Startup, false);
    }
    assert_eq!(h.signals.first(), Some(&(W1, Signal::TERM)));
    h.exit_worker(W1, ExitStatus::Signal(Signal::TERM));
    assert_eq!(exit_reason(&h), Some(ExitReason::LivenessProbe));
}

#[test]
fn one_probe_out_at_a_time_and_stale_results_ignored() {
    let mut h = harness(ProbeSet { liveness: Some(timing(1)), ..ProbeSet::default() }, 1);
    assert_eq!(tick(&mut h, W1, ProbeKind::Liveness).len(), 1);
    assert!(tick(&mut h, W1, ProbeKind::Liveness).is_empty(), "the first is still out");
    let generation = gen_of(&h, W1);
    let stale = Input::ProbeResult {
        key: W1,
        generation: generation + 7,
        probe: ProbeKind::Liveness,
        error: Some("x".into()),
    };
    h.feed(stale);
    assert!(h.signals.is_empty(), "another generation's result changes nothing");
    result(&mut h, W1, ProbeKind::Liveness, true);
    assert_eq!(tick(&mut h, W1, ProbeKind::Liveness).len(), 1, "asked again once answered");
}

#[test]
fn failures_are_reported_at_most_once_a_second_with_the_count() {
    let fast = ProbeTiming { period: Duration::from_millis(100), ..timing(1000) };
    let mut h = harness(ProbeSet { liveness: Some(fast), ..ProbeSet::default() }, 1);
    for _ in 0..25 {
        round(&mut h, W1, ProbeKind::Liveness, false);
    }
    let counts: Vec<u64> = h
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ProbeFailed { probe: ProbeKind::Liveness, count, .. } => Some(*count),
            _ => None,
        })
        .collect();
    assert_eq!(counts, vec![1, 11, 21]);
}

#[test]
fn a_stopped_run_is_not_probed() {
    let mut h = harness(ProbeSet { liveness: Some(timing(1)), ..ProbeSet::default() }, 1);
    h.feed(Input::User(UserAction::Stop(W1)));
    assert!(tick(&mut h, W1, ProbeKind::Liveness).is_empty());
}

#[test]
fn a_rolling_reload_waits_for_the_replacement_readiness() {
    let mut h = harness(ProbeSet { readiness: Some(timing(3)), ..ProbeSet::default() }, 1);
    round(&mut h, W1, ProbeKind::Readiness, true);
    let old = gen_of(&h, W1);
    h.feed(Input::User(UserAction::Reload(0)));
    let new = gen_of(&h, W1);
    assert_ne!(old, new);
    assert!(h.signals.is_empty(), "the old worker stays until its replacement is ready");
    // The replacement's probe: the latest probe timer is its.
    let asked = tick(&mut h, W1, ProbeKind::Readiness);
    assert_eq!(asked, vec![(W1, new, ProbeKind::Readiness)]);
    h.feed(Input::ProbeResult {
        key: W1,
        generation: new,
        probe: ProbeKind::Readiness,
        error: None,
    });
    // The probe's address may still be the old worker's: the replacement also stays up
    // --reload-settle before it takes over.
    assert!(h.signals.is_empty(), "ready by a probe at once: the old worker still stays");
    let settled = *h
        .timers
        .iter()
        .rev()
        .find(|(_, t)| t.key == W1 && t.kind == TimerKind::SuccessorSettled)
        .expect("a settle timer");
    assert_eq!(settled.0, h.now + Policy::default().reload_settle);
    h.now = settled.0;
    h.feed(Input::Timer(settled.1));
    assert_eq!(h.signals.first(), Some(&(W1, Signal::TERM)), "settled: the old one stops");
}

#[test]
fn a_replacement_ready_by_probe_that_dies_before_it_settles_replaces_nothing() {
    let mut h = harness(ProbeSet { readiness: Some(timing(3)), ..ProbeSet::default() }, 1);
    round(&mut h, W1, ProbeKind::Readiness, true);
    let old = gen_of(&h, W1);
    h.feed(Input::User(UserAction::Reload(0)));
    let new = gen_of(&h, W1);
    tick(&mut h, W1, ProbeKind::Readiness);
    // Answered by the old worker, on the port they share: "ready".
    h.feed(Input::ProbeResult {
        key: W1,
        generation: new,
        probe: ProbeKind::Readiness,
        error: None,
    });
    // The broken release dies a second later.
    let later = h.now + Duration::from_secs(1);
    h.now = later;
    h.feed(Input::Exited {
        key: W1,
        generation: new,
        status: ExitStatus::Code(1),
        group_alive: false,
    });
    assert!(h.signals.is_empty(), "the old worker was never asked to stop: {:?}", h.signals);
    assert_eq!(h.state(W1), WorkerState::Running, "the old worker (generation {old}) runs on");
    assert!(
        h.kinds().iter().any(|k| matches!(k, EventKind::ReloadFinished { failed: true, .. })),
        "the reload failed"
    );
}
