//! How corral ends when workers cannot start (`--restart never`, `on-failure`), and several
//! groups: started in order, stopped in reverse, one group at a time.

use super::*;

fn never_harness(policy: Policy, workers: u32) -> (Supervisor, Instant) {
    let cfg = GroupConfig {
        name: "web".into(),
        workers,
        policy,
        wait_ready: false,
        depends_on: Vec::new(),
        scheduled: false,
        probes: ProbeSet::default(),
    };
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

/// web needs the queue ready, the queue needs the db ready.
fn three_groups() -> Harness {
    let group = |name: &str, on: Option<u16>| GroupConfig {
        name: name.into(),
        workers: 2,
        policy: Policy::default(),
        wait_ready: false,
        depends_on: on
            .map(|group| Dependency { group, condition: Condition::Ready })
            .into_iter()
            .collect(),
        scheduled: false,
        probes: ProbeSet::default(),
    };
    Harness::groups(vec![group("db", None), group("queue", Some(0)), group("web", Some(1))], true)
}

fn stopped(h: &Harness, g: u16) -> Vec<u32> {
    h.signals
        .iter()
        .filter(|(k, s)| k.group == g && *s == Signal::TERM)
        .map(|(k, _)| k.slot)
        .collect()
}

#[test]
fn groups_start_after_what_they_depend_on_and_stop_before_it() {
    let mut h = three_groups();
    let order: Vec<u16> = h
        .events
        .iter()
        .filter_map(|e| match (e.scope, &e.kind) {
            (Scope::Worker(k), EventKind::Spawned { .. }) => Some(k.group),
            _ => None,
        })
        .collect();
    assert_eq!(order, [0, 0, 1, 1, 2, 2], "dependency order");
    h.at(100).feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    assert_eq!(stopped(&h, 2), [1, 2], "what nothing depends on is asked to stop first");
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

/// Spawns still waiting their turn when a shutdown begins are cancelled: no event, no
/// failure, and a headless corral exits 0 at once instead of starting them to stop them.
#[test]
fn spawns_not_yet_done_at_shutdown_are_cancelled_quietly() {
    let cfg = GroupConfig {
        name: "web".into(),
        workers: 3,
        policy: Policy::default(),
        wait_ready: false,
        depends_on: Vec::new(),
        scheduled: false,
        probes: ProbeSet::default(),
    };
    let mut sup = Supervisor::new(vec![cfg], true, 1);
    let t0 = Instant::now();
    assert_eq!(sup.handle(t0, Input::Start).len(), 3);
    sup.handle(t0, Input::Spawned { key: W1, generation: 0, pid: 100 });
    let early = sup.handle(t0, Input::SpawnCancelled { key: W2, generation: 0 });
    assert!(early.is_empty(), "only a shutdown cancels a spawn: {early:?}");
    sup.handle(t0, Input::Shutdown(ShutdownTrigger::Signal(Signal::INT)));
    let mut out = Vec::new();
    // W1 has a process and is stopped the usual way; W2 and W3 were never started.
    for key in [W2, WorkerKey { group: 0, slot: 3 }] {
        out.extend(sup.handle(t0, Input::SpawnCancelled { key, generation: 0 }));
    }
    assert!(
        !out.iter().any(
            |c| matches!(c, Command::Emit(e) if matches!(e.kind, EventKind::SpawnFailed { .. }))
        ),
        "{out:?}"
    );
    assert!(!out.iter().any(|c| matches!(c, Command::Exit(_))), "W1 is still stopping");
    let cmds = sup.handle(
        t0,
        Input::Exited {
            key: W1,
            generation: 0,
            status: ExitStatus::Signal(Signal::TERM),
            group_alive: false,
        },
    );
    assert!(cmds.contains(&Command::Exit(0)), "{cmds:?}");
}

#[test]
fn a_graceful_shutdown_counts_down_to_the_first_sigkill() {
    let policy = Policy { kill_timeout: Duration::from_secs(5), ..Policy::default() };
    let mut h = Harness::new(2, policy, false);
    assert_eq!(h.sup.snapshot(h.now).kill_in, None, "nothing to count down while running");
    h.at(1000).feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::INT)));
    assert_eq!(h.sup.snapshot(h.now).kill_in, Some(Duration::from_secs(5)));
    h.at(3000);
    assert_eq!(h.sup.snapshot(h.now).kill_in, Some(Duration::from_secs(3)));
    h.exit_worker(W1, ExitStatus::Code(0));
    assert_eq!(h.sup.snapshot(h.now).kill_in, Some(Duration::from_secs(3)), "W2 still due");
    h.feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::INT)));
    assert_eq!(h.sup.snapshot(h.now).kill_in, None, "killed now: nothing left to wait for");
}

#[test]
fn workers_a_person_stopped_keep_headless_corral_up_until_started_again() {
    let mut h = Harness::new(2, Policy::default(), true);
    for key in [W1, W2] {
        h.at(1).feed(Input::User(UserAction::Stop(key)));
        h.exit_worker(key, ExitStatus::Signal(Signal::TERM));
        assert_eq!(h.state(key), WorkerState::Stopped);
    }
    assert_eq!(h.exit, None, "corral stays up for the person who stopped them");
    // Started again, both end on their own: now the work is done.
    let no_restart = Policy { restart: RestartPolicy::Never, ..Policy::default() };
    let mut h = Harness::new(2, no_restart, true);
    h.at(1).feed(Input::User(UserAction::Stop(W1)));
    h.exit_worker(W1, ExitStatus::Signal(Signal::TERM));
    h.feed(Input::User(UserAction::Start(W1)));
    for key in [W1, W2] {
        h.at(20_000).exit_worker(key, ExitStatus::Code(0));
    }
    assert_eq!(h.exit, Some(0));
}
