//! Groups that wait for others: released when their conditions hold, told once when one
//! never can, counted as failed by the headless exit rule, stopped before what they need.

use super::*;

const DB: WorkerKey = WorkerKey { group: 0, slot: 1 };
const MIGRATE: WorkerKey = WorkerKey { group: 1, slot: 1 };
const WEB: WorkerKey = WorkerKey { group: 2, slot: 1 };
const OTHER: WorkerKey = WorkerKey { group: 3, slot: 1 };

fn group(
    name: &str,
    restart: RestartPolicy,
    wait_ready: bool,
    on: &[(u16, Condition)],
) -> GroupConfig {
    GroupConfig {
        name: name.into(),
        workers: 1,
        policy: Policy { restart, ..Policy::default() },
        wait_ready,
        depends_on: on.iter().map(|&(group, condition)| Dependency { group, condition }).collect(),
        scheduled: false,
        probes: ProbeSet::default(),
    }
}

/// db (says ready) ← migrate (one-shot, after db ready) ← web (after migrate completed);
/// `other` depends on nothing.
fn app(exit_when_idle: bool) -> Harness {
    Harness::groups(
        vec![
            group("db", RestartPolicy::Always, true, &[]),
            group("migrate", RestartPolicy::Never, false, &[(0, Condition::Ready)]),
            group("web", RestartPolicy::Always, false, &[(1, Condition::Completed)]),
            group("other", RestartPolicy::Always, false, &[]),
        ],
        exit_when_idle,
    )
}

fn waiting_events(h: &Harness) -> Vec<(u16, Vec<String>, Option<String>)> {
    h.events
        .iter()
        .filter_map(|e| match (e.scope, &e.kind) {
            (Scope::Group(g), EventKind::Waiting { unmet, blocked }) => {
                Some((g, unmet.clone(), blocked.clone()))
            }
            _ => None,
        })
        .collect()
}

fn ready(h: &mut Harness, key: WorkerKey) {
    let (_, generation) = h.pids[&key];
    h.feed(Input::Ready { key, generation });
}

#[test]
fn a_chain_starts_link_by_link_and_says_what_each_waits_for() {
    let mut h = app(true);
    assert_eq!((h.spawns(DB), h.spawns(MIGRATE), h.spawns(WEB), h.spawns(OTHER)), (1, 0, 0, 1));
    assert_eq!(
        waiting_events(&h),
        [(1, vec!["db ready".to_string()], None), (2, vec!["migrate completed".to_string()], None)]
    );
    assert_eq!(h.state(WEB), WorkerState::Waiting);
    let snap = h.sup.snapshot(h.now);
    assert_eq!(snap.groups[2].waiting_for, ["migrate completed"]);
    assert_eq!(h.spawns(MIGRATE), 0, "db spawned but not ready yet");
    ready(&mut h, DB);
    assert_eq!(h.spawns(MIGRATE), 1);
    assert_eq!(h.spawns(WEB), 0, "migrate runs but has not completed");
    h.at(100).exit_worker(MIGRATE, ExitStatus::Code(0));
    assert_eq!(h.spawns(WEB), 1);
    assert!(h.sup.snapshot(h.now).groups[2].waiting_for.is_empty());
    assert_eq!(h.exit, None, "web and db run on");
}

#[test]
fn a_failed_migration_holds_web_says_why_once_and_headless_corral_fails_when_idle() {
    let mut h = app(true);
    ready(&mut h, DB);
    h.at(100).exit_worker(MIGRATE, ExitStatus::Code(3));
    let blocked: Vec<_> = waiting_events(&h).into_iter().filter(|(_, _, b)| b.is_some()).collect();
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    let (g, unmet, why) = &blocked[0];
    assert_eq!((*g, unmet.as_slice()), (2, &["migrate completed".to_string()][..]));
    assert_eq!(why.as_deref(), Some("migrate.1 ended (exit 3) and will not run again"));
    assert_eq!(h.sup.snapshot(h.now).groups[2].blocked, why.clone());
    // More inputs say nothing more.
    h.at(200).exit_worker(OTHER, ExitStatus::Code(1));
    assert_eq!(waiting_events(&h).iter().filter(|(_, _, b)| b.is_some()).count(), 1);
    assert_eq!(h.spawns(WEB), 0);
    assert_eq!(h.exit, None, "db and other still run");
    h.feed(Input::User(UserAction::Stop(DB)));
    h.feed(Input::User(UserAction::Stop(OTHER)));
    let (_, generation) = h.pids[&DB];
    h.feed(Input::Exited {
        key: DB,
        generation,
        status: ExitStatus::Signal(Signal::TERM),
        group_alive: false,
    });
    let (_, generation) = h.pids[&OTHER];
    h.feed(Input::Exited {
        key: OTHER,
        generation,
        status: ExitStatus::Signal(Signal::TERM),
        group_alive: false,
    });
    assert_eq!(h.exit, None, "workers a person stopped keep headless corral up for them");
}

#[test]
fn a_waiting_group_has_nothing_to_reload_and_says_nothing() {
    let mut h = app(false);
    let before = h.events.len();
    h.feed(Input::Reload { group: 2, cause: ReloadCause::Schedule });
    assert_eq!(h.events.len(), before, "{:?}", &h.events[before..]);
    assert!(!h.sup.reloading(2));
}

#[test]
fn idle_with_a_group_that_can_never_start_is_exit_1() {
    let mut h = Harness::groups(
        vec![
            group("migrate", RestartPolicy::Never, false, &[]),
            group("web", RestartPolicy::Never, false, &[(0, Condition::Completed)]),
        ],
        true,
    );
    h.at(50).exit_worker(WorkerKey { group: 0, slot: 1 }, ExitStatus::Code(1));
    assert_eq!(h.exit, Some(1));
}

#[test]
fn a_blocked_condition_clears_when_a_person_starts_the_worker_and_it_completes() {
    let mut h = app(false);
    ready(&mut h, DB);
    h.at(100).exit_worker(MIGRATE, ExitStatus::Code(3));
    assert!(h.sup.snapshot(h.now).groups[2].blocked.is_some());
    h.feed(Input::User(UserAction::Start(MIGRATE)));
    assert_eq!(h.sup.snapshot(h.now).groups[2].blocked, None);
    h.at(200).exit_worker(MIGRATE, ExitStatus::Code(0));
    assert_eq!(h.spawns(WEB), 1);
}

#[test]
fn a_dependency_on_a_blocked_group_is_blocked_too() {
    let mut h = Harness::groups(
        vec![
            group("migrate", RestartPolicy::Never, false, &[]),
            group("web", RestartPolicy::Always, false, &[(0, Condition::Completed)]),
            group("edge", RestartPolicy::Always, false, &[(1, Condition::Started)]),
        ],
        false,
    );
    h.at(50).exit_worker(WorkerKey { group: 0, slot: 1 }, ExitStatus::Signal(Signal::SEGV));
    let snap = h.sup.snapshot(h.now);
    assert_eq!(
        snap.groups[1].blocked.as_deref(),
        Some("migrate.1 ended (SIGSEGV) and will not run again")
    );
    assert_eq!(
        snap.groups[2].blocked.as_deref(),
        Some("web cannot start (migrate.1 ended (SIGSEGV) and will not run again)")
    );
}

#[test]
fn started_holds_once_every_worker_spawned_even_before_ready() {
    let h = Harness::groups(
        vec![
            GroupConfig { workers: 2, ..group("db", RestartPolicy::Always, true, &[]) },
            group("web", RestartPolicy::Always, false, &[(0, Condition::Started)]),
        ],
        false,
    );
    assert_eq!(h.spawns(WorkerKey { group: 1, slot: 1 }), 1);
}

#[test]
fn scaling_a_waiting_group_adds_a_waiting_slot_and_a_person_may_start_one_early() {
    let mut h = app(false);
    h.feed(Input::User(UserAction::ScaleUp(2)));
    let web2 = WorkerKey { group: 2, slot: 2 };
    assert_eq!((h.state(web2), h.spawns(web2)), (WorkerState::Waiting, 0));
    h.feed(Input::User(UserAction::Start(web2)));
    assert_eq!(h.spawns(web2), 1, "a person's start overrides the wait");
    assert_eq!(h.spawns(WEB), 0);
    h.feed(Input::User(UserAction::Stop(WEB)));
    ready(&mut h, DB);
    h.at(100).exit_worker(MIGRATE, ExitStatus::Code(0));
    assert_eq!((h.spawns(WEB), h.spawns(web2)), (0, 1), "stopped by hand stays stopped; no double");
}

#[test]
fn shutdown_stops_dependents_first_and_unrelated_groups_together() {
    let mut h = app(false);
    ready(&mut h, DB);
    h.at(100).exit_worker(MIGRATE, ExitStatus::Code(0));
    h.at(200).feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    let asked = |h: &Harness| -> Vec<u16> {
        let mut g: Vec<u16> =
            h.signals.iter().filter(|(_, s)| *s == Signal::TERM).map(|(k, _)| k.group).collect();
        g.dedup();
        g
    };
    // web (needs migrate, which needs db) and other (needs nothing) go first; db is needed
    // by migrate only, which is not running: it goes at once too. Its dependents are gone.
    assert_eq!(asked(&h), [0, 2, 3]);

    // With migrate still running, db waits for it.
    let mut h = app(false);
    ready(&mut h, DB);
    h.at(200).feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    assert_eq!(asked(&h), [1, 3], "migrate and other first; db after migrate, web never ran");
    h.at(300).exit_worker(MIGRATE, ExitStatus::Signal(Signal::TERM));
    assert_eq!(asked(&h), [1, 3, 0]);
    assert_eq!(h.spawns(WEB), 0, "a waiting group is not started by a shutdown");
}

mod property {
    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Step {
        Exit(u16, u32, i32),
        Ready(u16, u32),
        /// A person's action on db or migrate (a start of web by hand would override its wait).
        User(u8, u16, u32),
        Fire(u16, u32),
        Shutdown,
        Advance(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u16..3, 1u32..3, 0i32..2).prop_map(|(g, s, c)| Step::Exit(g, s, c)),
            (0u16..3, 1u32..3).prop_map(|(g, s)| Step::Ready(g, s)),
            (0u8..4, 0u16..2, 1u32..3).prop_map(|(a, g, s)| Step::User(a, g, s)),
            (0u16..3, 1u32..3).prop_map(|(g, s)| Step::Fire(g, s)),
            Just(Step::Shutdown),
            (0u64..5_000).prop_map(Step::Advance),
        ]
    }

    fn has_pid(h: &Harness, g: u16) -> bool {
        h.sup.snapshot(h.now).workers.iter().any(|w| w.key.group == g && w.pid.is_some())
    }

    proptest! {
        /// db (2, says ready) ← migrate (one-shot) ← web (2): web never starts before migrate
        /// completed with db ready, nothing starts during a shutdown, and db is not asked to
        /// stop while migrate or web still has a process.
        #[test]
        fn dependencies_hold_for_any_input_sequence(steps in proptest::collection::vec(step(), 0..60)) {
            let policy = |restart| Policy { restart, kill_timeout: ms(100), max_restarts: 3, ..Policy::default() };
            let mut h = Harness::groups(
                vec![
                    GroupConfig { workers: 2, policy: policy(RestartPolicy::Always), ..group("db", RestartPolicy::Always, true, &[]) },
                    GroupConfig { policy: policy(RestartPolicy::Never), ..group("migrate", RestartPolicy::Never, false, &[(0, Condition::Ready)]) },
                    GroupConfig {
                        workers: 2,
                        policy: policy(RestartPolicy::Always),
                        ..group("web", RestartPolicy::Always, false, &[(1, Condition::Completed), (0, Condition::Ready)])
                    },
                ],
                false,
            );
            let mut web_started = false;
            for s in steps {
                let (events_before, signals_before) = (h.events.len(), h.signals.len());
                let shutting_down = h.sup.shutting_down();
                // A person may stop db by hand at any time; only the shutdown's order is judged.
                let by_hand = matches!(s, Step::User(..));
                match s {
                    Step::Exit(g, slot, code) => {
                        let key = WorkerKey { group: g, slot };
                        if let Some(&(_, generation)) = h.pids.get(&key) {
                            h.feed(Input::Exited { key, generation, status: ExitStatus::Code(code), group_alive: false });
                        }
                    }
                    Step::Ready(g, slot) => {
                        let key = WorkerKey { group: g, slot };
                        if let Some(&(_, generation)) = h.pids.get(&key) {
                            h.feed(Input::Ready { key, generation });
                        }
                    }
                    Step::User(a, g, slot) => {
                        let key = WorkerKey { group: g, slot };
                        let action = match a {
                            0 => UserAction::Kill(key),
                            1 => UserAction::Stop(key),
                            2 => UserAction::Start(key),
                            _ => UserAction::Restart(key),
                        };
                        h.feed(Input::User(action));
                    }
                    Step::Fire(g, slot) => {
                        let key = WorkerKey { group: g, slot };
                        if let Some(&(at, token)) = h.timers.iter().rev().find(|(_, t)| t.key == key) {
                            h.now = h.now.max(at);
                            h.feed(Input::Timer(token));
                        }
                    }
                    Step::Shutdown => h.feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM))),
                    Step::Advance(n) => h.now += ms(n),
                }
                let new_spawns: Vec<WorkerKey> = h.events[events_before..]
                    .iter()
                    .filter_map(|e| match (e.scope, &e.kind) {
                        (Scope::Worker(k), EventKind::Spawned { .. }) => Some(k),
                        _ => None,
                    })
                    .collect();
                if shutting_down {
                    prop_assert!(new_spawns.is_empty(), "a spawn during the shutdown: {new_spawns:?}");
                }
                if !web_started && new_spawns.iter().any(|k| k.group == 2) {
                    web_started = true;
                    let snap = h.sup.snapshot(h.now);
                    let migrate = &snap.workers.iter().find(|w| w.key.group == 1).expect("migrate");
                    prop_assert_eq!(migrate.state.clone(), WorkerState::Stopped);
                    prop_assert!(migrate.last_exit.as_ref().is_some_and(|e| e.status.success()));
                    let db_up = snap.workers.iter().filter(|w| w.key.group == 0).all(|w| w.state == WorkerState::Running);
                    prop_assert!(db_up, "web started while db was not ready: {:?}", snap.workers);
                }
                let db_asked = h.signals[signals_before..].iter().any(|(k, s)| k.group == 0 && *s == Signal::TERM);
                if db_asked && h.sup.shutting_down() && !by_hand {
                    prop_assert!(!has_pid(&h, 1) && !has_pid(&h, 2), "db asked to stop before its dependents were gone");
                }
            }
        }
    }
}
