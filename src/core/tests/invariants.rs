//! The property test: random sequences of inputs never break the supervisor's invariants.

use proptest::prelude::*;

use super::*;

/// Random sequences of inputs never break the invariants.
#[derive(Clone, Debug)]
enum Step {
    Exit(u32, i32),
    GroupLeft(u32),
    FireLatest(u32),
    /// The slot's newest process says `ready`.
    Ready(u32),
    /// The slot's oldest process closed its Node channel (true) or cannot disconnect.
    Disconnect(u32, bool),
    User(u8, u32),
    Shutdown,
    Advance(u64),
    /// The group's schedule is due (only a scheduled group heeds it).
    Due,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u32..4, 0i32..3).prop_map(|(s, c)| Step::Exit(s, c)),
        (1u32..4).prop_map(Step::GroupLeft),
        (1u32..4).prop_map(Step::FireLatest),
        (1u32..4).prop_map(Step::Ready),
        (1u32..4, any::<bool>()).prop_map(|(s, done)| Step::Disconnect(s, done)),
        (0u8..8, 1u32..4).prop_map(|(a, s)| Step::User(a, s)),
        Just(Step::Shutdown),
        (0u64..20_000).prop_map(Step::Advance),
        Just(Step::Due),
    ]
}

proptest! {
    #[test]
    fn invariants_hold_for_any_input_sequence(
        steps in proptest::collection::vec(step(), 0..80),
        wait_ready in any::<bool>(),
        settle in prop_oneof![Just(0u64), Just(500)],
        disconnect_first in any::<bool>(),
        scheduled in any::<bool>(),
    ) {
        let policy = Policy {
            max_restarts: 5,
            kill_timeout: ms(100),
            reload_settle: ms(settle),
            disconnect_first,
            ..Policy::default()
        };
        let restart = if scheduled { RestartPolicy::OnFailure } else { RestartPolicy::Always };
        let policy = Policy { restart, ..policy };
        let cfg = GroupConfig {
            name: "web".into(),
            workers: 3,
            policy,
            wait_ready,
            scheduled,
            depends_on: Vec::new(),
            probes: ProbeSet::default(),
        };
        let mut h = Harness::groups(vec![cfg], false);
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
                Step::Disconnect(slot, done) => {
                    let key = WorkerKey { group: 0, slot };
                    if let Some(&(_, generation)) = live.get(&key).and_then(|v| v.first()) {
                        h.feed(if done {
                            Input::DisconnectDone { key, generation }
                        } else {
                            Input::CannotDisconnect { key, generation }
                        });
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
                Step::Due => h.feed(Input::ScheduleDue { group: 0 }),
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
            let started = count(&h, &EventKind::ReloadStarted { cause: crate::core::ReloadCause::Key });
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
        prop_assert_eq!(count(&h, &EventKind::ReloadStarted { cause: crate::core::ReloadCause::Key }), reloads_finished(&h).len());
    }
}
