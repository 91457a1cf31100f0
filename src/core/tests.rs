//! The supervisor's decisions with fixed instants: no processes, no clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::signal::Signal;

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
}

impl Harness {
    fn new(workers: u32, policy: Policy, exit_when_idle: bool) -> Harness {
        Harness::with(workers, policy, false, exit_when_idle)
    }

    fn with(workers: u32, policy: Policy, wait_ready: bool, exit_when_idle: bool) -> Harness {
        let cfg = GroupConfig { name: "web".into(), workers, policy, wait_ready };
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
    let EventKind::Exited { status, reason, uptime, restarts } = &exited.kind else {
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
    let cfg = GroupConfig { name: "web".into(), workers: 1, policy, wait_ready: false };
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

/// Random sequences of inputs never break the invariants.
#[derive(Clone, Debug)]
enum Step {
    Exit(u32, i32),
    GroupLeft(u32),
    FireLatest(u32),
    /// The slot's newest process says `ready`.
    Ready(u32),
    User(u8, u32),
    Shutdown,
    Advance(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u32..4, 0i32..3).prop_map(|(s, c)| Step::Exit(s, c)),
        (1u32..4).prop_map(Step::GroupLeft),
        (1u32..4).prop_map(Step::FireLatest),
        (1u32..4).prop_map(Step::Ready),
        (0u8..8, 1u32..4).prop_map(|(a, s)| Step::User(a, s)),
        Just(Step::Shutdown),
        (0u64..20_000).prop_map(Step::Advance),
    ]
}

proptest! {
    #[test]
    fn invariants_hold_for_any_input_sequence(
        steps in proptest::collection::vec(step(), 0..80),
        wait_ready in any::<bool>(),
        settle in prop_oneof![Just(0u64), Just(500)],
    ) {
        let policy = Policy {
            max_restarts: 5,
            kill_timeout: ms(100),
            reload_settle: ms(settle),
            ..Policy::default()
        };
        let mut h = Harness::with(3, policy, wait_ready, false);
        // Live processes per slot as (pid, generation): one, or two while a reload hands over.
        let mut live: HashMap<WorkerKey, Vec<(u32, u32)>> =
            h.pids.iter().map(|(k, &(pid, g))| (*k, vec![(pid, g)])).collect();
        for s in steps {
            let before = h.events.len();
            match s {
                Step::Exit(slot, code) => {
                    let key = WorkerKey { group: 0, slot };
                    if let Some(&(_, generation)) = live.get(&key).and_then(|v| v.first()) {
                        h.feed(Input::Exited { key, generation, status: ExitStatus::Code(code), group_alive: false });
                    }
                }
                Step::GroupLeft(slot) => {
                    let key = WorkerKey { group: 0, slot };
                    if let Some(&(_, generation)) = live.get(&key).and_then(|v| v.last()) {
                        h.feed(Input::Exited { key, generation, status: ExitStatus::Code(1), group_alive: true });
                        h.feed(Input::GroupGone { key, generation });
                    }
                }
                Step::FireLatest(slot) => {
                    let key = WorkerKey { group: 0, slot };
                    if let Some(&(at, token)) = h.timers.iter().rev().find(|(_, t)| t.key == key) {
                        h.now = h.now.max(at);
                        h.feed(Input::Timer(token));
                    }
                }
                Step::Ready(slot) => {
                    let key = WorkerKey { group: 0, slot };
                    if let Some(&(_, generation)) = live.get(&key).and_then(|v| v.last()) {
                        h.feed(Input::Ready { key, generation });
                    }
                }
                Step::User(a, slot) => {
                    let key = WorkerKey { group: 0, slot };
                    let action = match a {
                        0 => UserAction::Kill(key),
                        1 => UserAction::Restart(key),
                        2 => UserAction::Stop(key),
                        3 => UserAction::Start(key),
                        4 => UserAction::ToggleStop(key),
                        5 => UserAction::ScaleUp(0),
                        6 => UserAction::Reload(0),
                        _ => UserAction::ScaleDown(0),
                    };
                    h.feed(Input::User(action));
                }
                Step::Shutdown => h.feed(Input::Shutdown(ShutdownTrigger::Key(QuitKey::Q))),
                Step::Advance(n) => h.now += ms(n),
            }
            for e in &h.events[before..] {
                let (Scope::Worker(key), Some(pid)) = (e.scope, e.pid) else { continue };
                match e.kind {
                    EventKind::Spawned { generation } => {
                        live.entry(key).or_default().push((pid, generation));
                    }
                    EventKind::Exited { .. } => {
                        if let Some(v) = live.get_mut(&key) {
                            v.retain(|&(p, _)| p != pid);
                        }
                    }
                    _ => {}
                }
            }
            let snap = h.sup.snapshot(h.now);
            for (key, procs) in &live {
                let replacing = snap.workers.iter().any(|w| w.key == *key && w.replacement.is_some());
                let allowed = if replacing { 2 } else { 1 };
                prop_assert!(procs.len() <= allowed, "{} live processes for {key}: {procs:?}", procs.len());
            }
            // One reload at a time per group, however many were asked for.
            let started = count(&h, &EventKind::ReloadStarted);
            let finished = reloads_finished(&h).len();
            prop_assert!(started == finished || started == finished + 1, "{started} started, {finished} finished");
            prop_assert_eq!(h.sup.reloading(0), started > finished);
        }
        // A shutdown always ends once every live process has exited.
        h.feed(Input::Shutdown(ShutdownTrigger::Key(QuitKey::Q)));
        for (key, procs) in live.clone() {
            for (_, generation) in procs {
                h.feed(Input::Exited { key, generation, status: ExitStatus::Code(0), group_alive: false });
            }
        }
        prop_assert_eq!(h.exit, Some(0));
        // Every reload that started is reported finished, shutdown or not.
        prop_assert_eq!(count(&h, &EventKind::ReloadStarted), reloads_finished(&h).len());
    }
}

fn harness_with(policy: Policy, wait_ready: bool) -> Harness {
    let mut h = Harness::new(0, policy, false);
    let cfg = GroupConfig { name: "web".into(), workers: 1, policy, wait_ready };
    h.sup = Supervisor::new(vec![cfg], false, 7);
    h.feed(Input::Start);
    h
}

fn gen_of(h: &Harness, key: WorkerKey) -> u32 {
    h.pids[&key].1
}

fn exit_reason(h: &Harness) -> Option<ExitReason> {
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
    assert!(
        matches!(h.state(W1), WorkerState::Backoff { .. }),
        "exit 0 after a memory kill is still a failure"
    );
}

/// Feeds the exit of a specific generation (the harness' pid map follows the newest one).
fn exit_generation(h: &mut Harness, key: WorkerKey, generation: u32, status: ExitStatus) {
    h.feed(Input::Exited { key, generation, status, group_alive: false });
}

fn reload_finished(h: &Harness) -> Option<(u32, bool)> {
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
    assert!(h.kinds().contains(&&EventKind::ReloadStarted));
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
    let cfg =
        GroupConfig { name: "web".into(), workers: 2, policy: Policy::default(), wait_ready: true };
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
    assert!(h.signals.contains(&(W1, Signal::KILL)), "the replacement is killed");
    exit_generation(&mut h, W1, new.1, ExitStatus::Signal(Signal::KILL));
    assert_eq!(h.exit, None, "the old worker is still stopping");
    exit_generation(&mut h, W1, old.1, ExitStatus::Code(0));
    assert_eq!(h.exit, Some(0));
    assert_eq!(h.spawns(W1), 2, "nothing new started during shutdown");
    assert_eq!(reload_finished(&h), Some((0, true)));
}

#[test]
fn a_reload_cut_short_by_shutdown_is_reported_failed_whichever_process_goes_first() {
    let mut h = Harness::new(2, Policy::default(), false);
    let old = h.pids[&W1];
    h.feed(Input::User(UserAction::Reload(0)));
    let new = h.pids[&W1];
    h.feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    // The old worker is reaped before its killed replacement.
    exit_generation(&mut h, W1, old.1, ExitStatus::Code(0));
    assert_eq!(reload_finished(&h), Some((0, true)), "the killed replacement replaced nothing");
    exit_generation(&mut h, W1, new.1, ExitStatus::Signal(Signal::KILL));
    let w2 = h.pids[&W2];
    exit_generation(&mut h, W2, w2.1, ExitStatus::Code(0));
    assert_eq!(h.exit, Some(0));
    assert_eq!(h.spawns(W2), 1);
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

fn count(h: &Harness, wanted: &EventKind) -> usize {
    h.events.iter().filter(|e| e.kind == *wanted).count()
}

fn reloads_finished(h: &Harness) -> Vec<(u32, bool)> {
    h.events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ReloadFinished { replaced, failed } => Some((replaced, failed)),
            _ => None,
        })
        .collect()
}

/// The armed timer of `kind` for `key`, fired at its own instant.
fn fire_kind(h: &mut Harness, key: WorkerKey, kind: TimerKind) {
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
    assert_eq!(count(&h, &EventKind::ReloadStarted), 1, "one at a time");
    assert_eq!(h.spawns(W1), 2);
    fire_kind(&mut h, W1, TimerKind::SuccessorSettled);
    exit_generation(&mut h, W1, first.1, ExitStatus::Code(0));
    // The first reload is over and the queued one begins at once, with a new replacement.
    assert_eq!(reloads_finished(&h), vec![(1, false)]);
    assert_eq!(count(&h, &EventKind::ReloadStarted), 2);
    assert_eq!(h.spawns(W1), 3);
    assert!(h.sup.reloading(0));
    fire_kind(&mut h, W1, TimerKind::SuccessorSettled);
    exit_generation(&mut h, W1, second.1, ExitStatus::Code(0));
    assert_eq!(reloads_finished(&h), vec![(1, false), (1, false)]);
    assert_eq!(count(&h, &EventKind::ReloadStarted), 2, "three requests, one more reload");
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
    assert_eq!(count(&h, &EventKind::ReloadStarted), 2, "the fix may have landed since");
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
    assert_eq!(count(&h, &EventKind::ReloadStarted), 1);
    assert_eq!(reloads_finished(&h), vec![(0, true)]);
    assert_eq!(h.spawns(W1), 2, "nothing started after the shutdown began");
    assert_eq!(h.exit, Some(0));
    h.feed(Input::User(UserAction::Reload(0)));
    assert_eq!(count(&h, &EventKind::ReloadStarted), 1, "no reload during or after shutdown");
}

fn never_harness(policy: Policy, workers: u32) -> (Supervisor, Instant) {
    let cfg = GroupConfig { name: "web".into(), workers, policy, wait_ready: false };
    let mut sup = Supervisor::new(vec![cfg], true, 1);
    let t0 = Instant::now();
    sup.handle(t0, Input::Start);
    (sup, t0)
}

fn spawn_failed(key: WorkerKey, generation: u32) -> Input {
    Input::SpawnFailed { key, generation, error: "No such file or directory".into() }
}

#[test]
fn under_restart_never_a_spawn_failure_is_a_failure_and_headless_exits_1() {
    let never = Policy { restart: RestartPolicy::Never, ..Policy::default() };
    let (mut sup, t0) = never_harness(never, 2);
    assert!(!sup.handle(t0, spawn_failed(W1, 0)).contains(&Command::Exit(1)));
    assert!(sup.handle(t0, spawn_failed(W2, 0)).contains(&Command::Exit(1)));

    // One slot failed to start, the other ran and exited 0: still a failure.
    let (mut sup, t0) = never_harness(never, 2);
    sup.handle(t0, spawn_failed(W1, 0));
    sup.handle(t0, Input::Spawned { key: W2, generation: 0, pid: 10 });
    let done =
        Input::Exited { key: W2, generation: 0, status: ExitStatus::Code(0), group_alive: false };
    assert!(sup.handle(t0 + ms(5), done).contains(&Command::Exit(1)));
}

#[test]
fn on_failure_exits_1_when_failed_spawns_give_up_and_0_when_a_retry_succeeds() {
    let on_failure =
        Policy { restart: RestartPolicy::OnFailure, max_restarts: 1, ..Policy::default() };
    let (mut sup, t0) = never_harness(on_failure, 1);
    let timer = |cmds: &[Command]| {
        cmds.iter().find_map(|c| match c {
            Command::Timer { at, token } => Some((*at, *token)),
            _ => None,
        })
    };
    let (at, token) = timer(&sup.handle(t0, spawn_failed(W1, 0))).expect("retry timer");
    sup.handle(at, Input::Timer(token));
    let cmds = sup.handle(at, spawn_failed(W1, 1));
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Emit(Event { kind: EventKind::GaveUp { .. }, .. })))
    );
    assert!(cmds.contains(&Command::Exit(1)), "gave-up counts as a failure: {cmds:?}");

    // A failed start that is retried and then ends well is a success.
    let (mut sup, t0) = never_harness(on_failure, 1);
    let (at, token) = timer(&sup.handle(t0, spawn_failed(W1, 0))).expect("retry timer");
    sup.handle(at, Input::Timer(token));
    sup.handle(at, Input::Spawned { key: W1, generation: 1, pid: 10 });
    let done =
        Input::Exited { key: W1, generation: 1, status: ExitStatus::Code(0), group_alive: false };
    assert!(sup.handle(at + ms(5), done).contains(&Command::Exit(0)));
}

fn three_groups() -> Harness {
    let group = |name: &str| GroupConfig {
        name: name.into(),
        workers: 2,
        policy: Policy::default(),
        wait_ready: false,
    };
    Harness::groups(vec![group("db"), group("queue"), group("web")], true)
}

fn stopped(h: &Harness, g: u16) -> Vec<u32> {
    h.signals
        .iter()
        .filter(|(k, s)| k.group == g && *s == Signal::TERM)
        .map(|(k, _)| k.slot)
        .collect()
}

#[test]
fn groups_start_in_order_and_stop_in_reverse_one_group_at_a_time() {
    let mut h = three_groups();
    let order: Vec<u16> = h
        .events
        .iter()
        .filter_map(|e| match (e.scope, &e.kind) {
            (Scope::Worker(k), EventKind::Spawned { .. }) => Some(k.group),
            _ => None,
        })
        .collect();
    assert_eq!(order, [0, 0, 1, 1, 2, 2], "file order");
    h.at(100).feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    assert_eq!(stopped(&h, 2), [1, 2], "the last group is asked to stop first");
    assert!(stopped(&h, 1).is_empty() && stopped(&h, 0).is_empty());
    let web1 = WorkerKey { group: 2, slot: 1 };
    h.at(200).exit_worker(web1, ExitStatus::Signal(Signal::TERM));
    assert!(stopped(&h, 1).is_empty(), "queue waits until every web worker is gone");
    h.exit_worker(WorkerKey { group: 2, slot: 2 }, ExitStatus::Signal(Signal::TERM));
    assert_eq!(stopped(&h, 1), [1, 2]);
    assert!(stopped(&h, 0).is_empty());
    for slot in [1, 2] {
        h.exit_worker(WorkerKey { group: 1, slot }, ExitStatus::Code(0));
    }
    assert_eq!(stopped(&h, 0), [1, 2]);
    assert_eq!(h.exit, None);
    for slot in [1, 2] {
        h.exit_worker(WorkerKey { group: 0, slot }, ExitStatus::Code(0));
    }
    assert_eq!(h.exit, Some(0));
    assert_eq!(h.spawns(web1), 1, "nothing restarts during the shutdown");
}

#[test]
fn a_waiting_group_that_crashes_during_shutdown_is_not_restarted_and_a_second_request_kills_all() {
    let mut h = three_groups();
    h.at(100).feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    let db1 = WorkerKey { group: 0, slot: 1 };
    h.at(150).exit_worker(db1, ExitStatus::Code(1));
    assert_eq!(h.spawns(db1), 1);
    h.at(200).feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    let killed: Vec<(u16, u32)> = h
        .signals
        .iter()
        .filter(|(_, s)| *s == Signal::KILL)
        .map(|(k, _)| (k.group, k.slot))
        .collect();
    assert_eq!(killed, [(0, 2), (1, 1), (1, 2), (2, 1), (2, 2)]);
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
