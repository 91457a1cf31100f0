//! The supervisor's decisions with fixed instants: no processes, no clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::*;
use crate::signal::Signal;

mod depends;
mod disconnect;
mod exits_and_groups;
mod invariants;
mod probes;
mod readiness;
mod reload;
mod schedule;
use readiness::harness_with;
use reload::{count, reloads_finished};

const W1: WorkerKey = WorkerKey { group: 0, slot: 1 };
const W2: WorkerKey = WorkerKey { group: 0, slot: 2 };

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Drives a supervisor like the runtime does: spawns succeed at once with fresh pids.
struct Harness {
    sup: Supervisor,
    t0: Instant,
    now: Instant,
    next_pid: u32,
    /// pid of each slot's current generation.
    pids: HashMap<WorkerKey, (u32, u32)>,
    events: Vec<Event>,
    timers: Vec<(Instant, TimerToken)>,
    exit: Option<u8>,
    signals: Vec<(WorkerKey, Signal)>,
    /// Probes asked for: slot, generation, which.
    probes: Vec<(WorkerKey, u32, ProbeKind)>,
}

impl Harness {
    fn new(workers: u32, policy: Policy, exit_when_idle: bool) -> Harness {
        Harness::with(workers, policy, false, exit_when_idle)
    }

    fn with(workers: u32, policy: Policy, wait_ready: bool, exit_when_idle: bool) -> Harness {
        let cfg = GroupConfig {
            name: "web".into(),
            workers,
            policy,
            wait_ready,
            depends_on: Vec::new(),
            scheduled: false,
            probes: ProbeSet::default(),
        };
        Harness::groups(vec![cfg], exit_when_idle)
    }

    fn groups(configs: Vec<GroupConfig>, exit_when_idle: bool) -> Harness {
        let t0 = Instant::now();
        let mut h = Harness {
            sup: Supervisor::new(configs, exit_when_idle, 7),
            t0,
            now: t0,
            next_pid: 100,
            pids: HashMap::new(),
            events: Vec::new(),
            timers: Vec::new(),
            exit: None,
            signals: Vec::new(),
            probes: Vec::new(),
        };
        h.feed(Input::Start);
        h
    }

    fn at(&mut self, millis: u64) -> &mut Harness {
        self.now = self.t0 + ms(millis);
        self
    }

    fn feed(&mut self, input: Input) {
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            for cmd in self.sup.handle(self.now, input) {
                match cmd {
                    Command::Spawn { key, generation } => {
                        self.next_pid += 1;
                        self.pids.insert(key, (self.next_pid, generation));
                        queue.insert(0, Input::Spawned { key, generation, pid: self.next_pid });
                    }
                    Command::Emit(e) => self.events.push(e),
                    Command::Timer { at, token } => self.timers.push((at, token)),
                    Command::Exit(code) => self.exit = Some(code),
                    Command::Signal { key, signal, .. } => self.signals.push((key, signal)),
                    Command::Probe { key, generation, probe, .. } => {
                        self.probes.push((key, generation, probe));
                    }
                    Command::NotifyShutdown { .. } | Command::Release { .. } => {}
                }
            }
        }
    }

    fn exit_worker(&mut self, key: WorkerKey, status: ExitStatus) {
        let (_, generation) = self.pids[&key];
        self.feed(Input::Exited { key, generation, status, group_alive: false });
    }

    /// Fires the latest timer armed for `key` (at its own instant).
    fn fire(&mut self, key: WorkerKey) {
        let (at, token) = *self.timers.iter().rev().find(|(_, t)| t.key == key).expect("timer");
        self.now = at;
        self.feed(Input::Timer(token));
    }

    fn kinds(&self) -> Vec<&EventKind> {
        self.events.iter().map(|e| &e.kind).collect()
    }

    fn spawns(&self, key: WorkerKey) -> usize {
        self.events
            .iter()
            .filter(|e| {
                e.scope == Scope::Worker(key) && matches!(e.kind, EventKind::Spawned { .. })
            })
            .count()
    }

    fn delays(&self) -> Vec<Duration> {
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::RestartScheduled { delay, .. } => Some(delay),
                _ => None,
            })
            .collect()
    }

    fn state(&self, key: WorkerKey) -> WorkerState {
        let snap = self.sup.snapshot(self.now);
        snap.workers.into_iter().find(|w| w.key == key).expect("worker").state
    }
}

fn crash() -> ExitStatus {
    ExitStatus::Code(1)
}

fn within_jitter(delay: Duration, base: Duration) -> bool {
    delay >= base && delay <= base + base / 10
}

#[test]
fn start_spawns_every_worker_once() {
    let h = Harness::new(3, Policy::default(), false);
    assert_eq!(h.spawns(W1), 1);
    assert_eq!(h.spawns(W2), 1);
    let snap = h.sup.snapshot(h.now);
    assert_eq!(snap.workers.len(), 3);
    assert!(snap.workers.iter().all(|w| w.state == WorkerState::Running && w.pid.is_some()));
    assert_eq!(snap.workers[1].id, "web.2");
}

#[test]
fn a_crash_is_reported_exactly_and_only_that_slot_restarts() {
    let mut h = Harness::new(2, Policy::default(), false);
    let other_pid = h.pids[&W2].0;
    h.at(500).exit_worker(W1, ExitStatus::Signal(Signal::SEGV));
    let exited =
        h.events.iter().find(|e| matches!(e.kind, EventKind::Exited { .. })).expect("exited");
    assert_eq!(exited.scope, Scope::Worker(W1));
    let EventKind::Exited { status, reason, uptime, restarts, memory: None } = &exited.kind else {
        unreachable!()
    };
    assert_eq!(*status, ExitStatus::Signal(Signal::SEGV));
    assert_eq!(status.to_string(), "SIGSEGV");
    assert_eq!((*reason, *uptime, *restarts), (ExitReason::Crashed, ms(500), 0));
    assert!(matches!(h.state(W1), WorkerState::Backoff { .. }));
    h.fire(W1);
    assert_eq!(h.spawns(W1), 2);
    assert_eq!(h.spawns(W2), 1);
    assert_eq!(h.pids[&W2].0, other_pid);
    assert_eq!(h.sup.snapshot(h.now).workers[0].restarts, 1);
}

#[test]
fn backoff_doubles_caps_and_resets_after_a_stable_run() {
    let policy = Policy {
        backoff: Backoff { first: ms(100), max: ms(800) },
        min_uptime: Duration::from_secs(10),
        ..Policy::default()
    };
    let mut h = Harness::new(1, policy, false);
    for _ in 0..6 {
        let t = h.now;
        h.now = t + ms(10);
        h.exit_worker(W1, crash());
        h.fire(W1);
    }
    let bases = [100, 200, 400, 800, 800, 800];
    let delays = h.delays();
    assert_eq!(delays.len(), 6);
    for (d, b) in delays.iter().zip(bases) {
        assert!(within_jitter(*d, ms(b)), "{d:?} vs {b}ms");
    }
    // A run of at least --min-uptime restarts at once and starts the backoff over.
    h.now += Duration::from_secs(10);
    h.exit_worker(W1, crash());
    assert_eq!(*h.delays().last().expect("delay"), Duration::ZERO);
    assert_eq!(h.spawns(W1), 8);
    h.now += ms(10);
    h.exit_worker(W1, crash());
    assert!(within_jitter(*h.delays().last().expect("delay"), ms(100)));
}

#[test]
fn zero_backoff_restarts_at_once() {
    let policy = Policy { backoff: Backoff::ZERO, ..Policy::default() };
    let mut h = Harness::new(1, policy, false);
    h.at(1).exit_worker(W1, crash());
    assert_eq!(h.spawns(W1), 2);
    assert_eq!(h.delays(), vec![Duration::ZERO]);
}

#[test]
fn too_many_restarts_in_the_window_give_up_and_headless_exits_1() {
    let policy = Policy { max_restarts: 3, backoff: Backoff::ZERO, ..Policy::default() };
    let mut h = Harness::new(1, policy, true);
    for i in 1..=4 {
        h.at(i).exit_worker(W1, crash());
    }
    assert_eq!(h.spawns(W1), 4);
    assert!(matches!(h.kinds().last(), Some(EventKind::GaveUp { restarts: 3, last: true })));
    assert_eq!(h.state(W1), WorkerState::GaveUp);
    assert_eq!(h.exit, Some(1));
}

#[test]
fn a_worker_that_gives_up_while_others_run_or_under_the_dashboard_is_not_the_last() {
    let policy = Policy { max_restarts: 1, backoff: Backoff::ZERO, ..Policy::default() };
    for (workers, exit_when_idle) in [(2, true), (1, false)] {
        let mut h = Harness::new(workers, policy, exit_when_idle);
        for i in 1..=2 {
            h.at(i).exit_worker(W1, crash());
        }
        assert!(
            matches!(h.kinds().last(), Some(EventKind::GaveUp { last: false, .. })),
            "{workers} workers, exit when idle: {exit_when_idle}"
        );
        assert_eq!(h.exit, None);
    }
}

#[test]
fn crashes_spread_wider_than_the_window_never_give_up() {
    let policy = Policy {
        max_restarts: 2,
        restart_window: Duration::from_mins(1),
        backoff: Backoff::ZERO,
        ..Policy::default()
    };
    let mut h = Harness::new(1, policy, true);
    for i in 1..=10 {
        h.at(i * 31_000).exit_worker(W1, crash());
    }
    assert_eq!(h.spawns(W1), 11);
    assert!(!h.kinds().iter().any(|k| matches!(k, EventKind::GaveUp { .. })));
}

#[test]
fn policies_never_and_on_failure() {
    let never = Policy { restart: RestartPolicy::Never, ..Policy::default() };
    let mut h = Harness::new(2, never, true);
    h.at(5).exit_worker(W1, crash());
    assert_eq!(h.state(W1), WorkerState::Stopped);
    assert_eq!(h.exit, None, "worker 2 still runs");
    h.exit_worker(W2, ExitStatus::Code(0));
    assert_eq!(h.exit, Some(1), "worker 1 failed");

    let on_failure = Policy { restart: RestartPolicy::OnFailure, ..Policy::default() };
    let mut h = Harness::new(1, on_failure, true);
    h.at(5).exit_worker(W1, ExitStatus::Signal(Signal::KILL));
    h.fire(W1);
    assert_eq!(h.spawns(W1), 2);
    h.at(20_000).exit_worker(W1, ExitStatus::Code(0));
    assert_eq!(h.state(W1), WorkerState::Stopped);
    assert_eq!(h.exit, Some(0));
}

#[test]
fn stop_during_backoff_cancels_the_restart_for_good() {
    let mut h = Harness::new(1, Policy::default(), false);
    h.at(5).exit_worker(W1, crash());
    h.feed(Input::User(UserAction::Stop(W1)));
    assert_eq!(h.state(W1), WorkerState::Stopped);
    h.fire(W1); // the old backoff timer is stale now
    assert_eq!(h.spawns(W1), 1);
}

#[test]
fn graceful_stop_escalates_to_sigkill_after_the_timeout() {
    let mut h = Harness::new(1, Policy::default(), false);
    h.feed(Input::User(UserAction::Stop(W1)));
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)]);
    assert_eq!(h.state(W1), WorkerState::Stopping);
    let (at, _) = h.timers[0];
    assert_eq!(at, h.now + Duration::from_secs(5));
    h.fire(W1);
    assert_eq!(h.signals.last(), Some(&(W1, Signal::KILL)));
    h.exit_worker(W1, ExitStatus::Signal(Signal::KILL));
    assert_eq!(h.state(W1), WorkerState::Stopped);
    let last = h.sup.snapshot(h.now).workers[0].last_exit.clone().expect("last exit");
    assert_eq!((last.status, last.reason), (ExitStatus::Signal(Signal::KILL), ExitReason::Stopped));
}

#[test]
fn a_group_left_behind_is_emptied_before_the_restart() {
    let mut h = Harness::new(1, Policy { backoff: Backoff::ZERO, ..Policy::default() }, false);
    let (_, generation) = h.pids[&W1];
    h.at(5).feed(Input::Exited { key: W1, generation, status: crash(), group_alive: true });
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)]);
    assert_eq!(h.spawns(W1), 1, "no new generation while the old group lives");
    h.fire(W1);
    assert_eq!(h.signals.last(), Some(&(W1, Signal::KILL)));
    h.feed(Input::GroupGone { key: W1, generation });
    assert_eq!(h.spawns(W1), 2);
}

#[test]
fn user_kill_counts_as_a_crash_user_restart_does_not() {
    let mut h = Harness::new(1, Policy { backoff: Backoff::ZERO, ..Policy::default() }, false);
    h.feed(Input::User(UserAction::Kill(W1)));
    assert_eq!(h.signals, vec![(W1, Signal::KILL)]);
    h.at(3).exit_worker(W1, ExitStatus::Signal(Signal::KILL));
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Exited { reason: ExitReason::KilledByUser, .. }))
    );
    assert_eq!(h.spawns(W1), 2);
    assert_eq!(h.sup.snapshot(h.now).workers[0].restarts, 1);

    h.feed(Input::User(UserAction::Restart(W1)));
    // Coalesced: a burst of restart requests is one restart.
    h.feed(Input::User(UserAction::Restart(W1)));
    h.at(4).exit_worker(W1, ExitStatus::Code(0));
    assert_eq!(h.spawns(W1), 3);
    assert_eq!(h.sup.snapshot(h.now).workers[0].restarts, 1);
    assert!(
        h.events.iter().any(|e| matches!(
            e.kind,
            EventKind::Exited { reason: ExitReason::RestartedByUser, .. }
        ))
    );
}

#[test]
fn spawn_failures_are_retried_with_backoff() {
    let policy = Policy { backoff: Backoff::ZERO, ..Policy::default() };
    let cfg = GroupConfig {
        name: "web".into(),
        workers: 1,
        policy,
        wait_ready: false,
        depends_on: Vec::new(),
        scheduled: false,
        probes: ProbeSet::default(),
    };
    let mut sup = Supervisor::new(vec![cfg], false, 1);
    let t0 = Instant::now();
    let cmds = sup.handle(t0, Input::Start);
    assert_eq!(cmds, vec![Command::Spawn { key: W1, generation: 0 }]);
    let cmds =
        sup.handle(t0, Input::SpawnFailed { key: W1, generation: 0, error: "ENOENT".into() });
    let at = cmds.iter().find_map(|c| match c {
        Command::Timer { at, .. } => Some(*at),
        _ => None,
    });
    assert!(
        at.is_some_and(|at| at >= t0 + ms(100)),
        "a failed spawn is never retried in a tight loop"
    );
    let snap = sup.snapshot(t0);
    assert!(
        matches!(&snap.workers[0].state, WorkerState::Failed { error, .. } if error == "ENOENT")
    );
}

#[test]
fn shutdown_stops_everything_then_a_second_request_kills() {
    let mut h = Harness::new(2, Policy::default(), false);
    h.at(5).exit_worker(W2, crash()); // W2 waits in backoff
    h.feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::INT)));
    assert_eq!(h.state(W2), WorkerState::Stopped);
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)]);
    h.feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::INT)));
    assert_eq!(h.signals.last(), Some(&(W1, Signal::KILL)));
    assert_eq!(h.exit, None);
    h.exit_worker(W1, ExitStatus::Signal(Signal::KILL));
    assert_eq!(h.exit, Some(0));
    h.fire(W2);
    assert_eq!(h.spawns(W2), 1, "nothing starts after shutdown began");
}

#[test]
fn shutdown_says_how_long_a_worker_has_before_sigkill() {
    let kill_after = |h: &Harness| {
        h.kinds().into_iter().find_map(|k| match k {
            EventKind::ShutdownStarted { kill_after, .. } => Some(*kill_after),
            _ => None,
        })
    };
    let policy = Policy { kill_timeout: ms(3000), ..Policy::default() };
    let mut h = Harness::new(1, policy, false);
    h.at(5).feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    assert_eq!(kill_after(&h), Some(Some(ms(3000))));
    // Asked to disconnect first, then the stop signal: each gets the kill timeout.
    let node = Policy { kill_timeout: ms(3000), disconnect_first: true, ..Policy::default() };
    let mut h = Harness::new(1, node, false);
    h.at(5).feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    assert_eq!(kill_after(&h), Some(Some(ms(6000))));
    // Killed at once: no grace to announce.
    let mut h = Harness::new(1, policy, false);
    h.at(5).feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::QUIT)));
    assert_eq!(kill_after(&h), Some(None));
}

#[test]
fn scaling_adds_and_retires_the_highest_slot() {
    let mut h = Harness::new(2, Policy::default(), false);
    h.feed(Input::User(UserAction::ScaleUp(0)));
    let w3 = WorkerKey { group: 0, slot: 3 };
    assert_eq!(h.spawns(w3), 1);
    h.feed(Input::User(UserAction::ScaleDown(0)));
    assert_eq!(h.signals, vec![(w3, Signal::TERM), (w3, Signal::CONT)]);
    h.exit_worker(w3, ExitStatus::Code(0));
    let snap = h.sup.snapshot(h.now);
    assert_eq!(snap.workers.len(), 2);
    assert_eq!(snap.groups[0].workers, 2);
    h.feed(Input::User(UserAction::ScaleDown(0)));
    h.exit_worker(W2, ExitStatus::Code(0));
    h.feed(Input::User(UserAction::ScaleDown(0)));
    assert_eq!(h.sup.snapshot(h.now).workers.len(), 1, "never below one worker");
}

#[test]
fn snapshot_counts_down_and_flags_crash_loops() {
    let policy = Policy {
        backoff: Backoff { first: Duration::from_secs(1), max: Duration::from_secs(1) },
        ..Policy::default()
    };
    let mut h = Harness::new(1, policy, false);
    for _ in 0..3 {
        h.now += ms(10);
        h.exit_worker(W1, crash());
        h.fire(W1);
    }
    h.now += ms(10);
    h.exit_worker(W1, crash());
    h.now += ms(400);
    let view = h.sup.snapshot(h.now).workers.remove(0);
    assert!(view.crash_looping);
    let WorkerState::Backoff { left } = view.state else { panic!("{:?}", view.state) };
    assert!(left <= ms(700) && left >= ms(500), "{left:?}");
}

#[test]
fn only_a_person_asking_twice_forces_the_shutdown() {
    let mut h = Harness::new(1, Policy::default(), false);
    h.feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::HUP)));
    for automatic in [
        ShutdownTrigger::TerminalError,
        ShutdownTrigger::Hangup,
        ShutdownTrigger::Panic,
        ShutdownTrigger::StdoutClosed,
        ShutdownTrigger::Signal(Signal::PIPE),
        ShutdownTrigger::Signal(Signal::HUP),
    ] {
        h.feed(Input::Shutdown(automatic));
    }
    assert!(!h.signals.contains(&(W1, Signal::KILL)), "the graceful stop goes on: {:?}", h.signals);
    h.feed(Input::Shutdown(ShutdownTrigger::Key(QuitKey::Q)));
    assert!(h.signals.contains(&(W1, Signal::KILL)), "q again forces it");
}

#[test]
fn sigquit_kills_every_worker_at_once_and_during_a_graceful_stop() {
    let mut h = Harness::new(2, Policy::default(), false);
    h.feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::QUIT)));
    assert_eq!(h.signals, vec![(W1, Signal::KILL), (W2, Signal::KILL)], "no graceful step");
    let mut h = Harness::new(1, Policy::default(), false);
    h.feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::HUP)));
    h.feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::QUIT)));
    assert_eq!(h.signals.last(), Some(&(W1, Signal::KILL)), "QUIT cuts a graceful stop short");
}

#[test]
fn exit_reasons_serialise_as_their_headless_words() {
    use ExitReason as R;
    let all = [
        R::Crashed,
        R::Exited,
        R::KilledByUser,
        R::RestartedByUser,
        R::Stopped,
        R::HeartbeatTimeout,
        R::MemoryLimit,
        R::ReadyTimeout,
        R::Reload,
        R::ScaledDown,
        R::Shutdown,
    ];
    for r in all {
        let word = serde_json::to_value(r).expect("serialises");
        assert_eq!(word, r.as_str(), "{r:?}");
        assert_eq!(serde_json::from_value::<R>(word).expect("reads back"), r);
    }
}
