//! A scheduled one-shot group: started by its schedule, one run at a time, and never a
//! reason for headless corral to leave.

use super::*;

fn scheduled(workers: u32, restart: RestartPolicy) -> Harness {
    let policy = Policy { restart, ..Policy::default() };
    let job = GroupConfig {
        name: "job".into(),
        workers,
        policy,
        wait_ready: false,
        scheduled: true,
        depends_on: Vec::new(),
        ..GroupConfig::default()
    };
    Harness::groups(vec![job], true)
}

#[test]
fn waits_for_its_time_then_every_worker_runs() {
    let mut h = scheduled(2, RestartPolicy::Never);
    assert_eq!(h.spawns(W1) + h.spawns(W2), 0, "nothing at start");
    let next = NextRun { at: h.t0 + Duration::from_mins(1), wall: std::time::SystemTime::now() };
    h.feed(Input::NextRun { group: 0, kind: ScheduleKind::Run, next: Some(next) });
    let view = h.sup.snapshot(h.t0 + Duration::from_secs(18));
    assert_eq!(
        view.workers[0].state,
        WorkerState::Scheduled { left: Some(Duration::from_secs(42)) }
    );
    assert_eq!(view.groups[0].next_run.map(|d| d.left), Some(Duration::from_secs(42)));
    h.at(60_000).feed(Input::ScheduleDue { group: 0 });
    assert_eq!((h.spawns(W1), h.spawns(W2)), (1, 1));
    h.exit_worker(W1, ExitStatus::Code(0));
    h.exit_worker(W2, ExitStatus::Code(3));
    assert_eq!(h.exit, None, "a scheduled group keeps headless corral up");
    assert!(matches!(h.state(W2), WorkerState::Scheduled { .. }), "between runs, failed or not");
    h.at(120_000).feed(Input::ScheduleDue { group: 0 });
    assert_eq!((h.spawns(W1), h.spawns(W2)), (2, 2), "and again at the next time");
}

#[test]
fn a_run_still_going_is_not_doubled() {
    let mut h = scheduled(2, RestartPolicy::Never);
    h.feed(Input::ScheduleDue { group: 0 });
    h.exit_worker(W1, ExitStatus::Code(0));
    h.at(2000).feed(Input::ScheduleDue { group: 0 });
    assert_eq!((h.spawns(W1), h.spawns(W2)), (1, 1), "W2 still runs: the whole run is skipped");
    let skipped =
        h.kinds().into_iter().filter(|k| **k == EventKind::ScheduleSkipped { running: 1 });
    assert_eq!(skipped.count(), 1, "said once");
    h.exit_worker(W2, ExitStatus::Code(0));
    h.at(4000).feed(Input::ScheduleDue { group: 0 });
    assert_eq!((h.spawns(W1), h.spawns(W2)), (2, 2));
}

#[test]
fn on_failure_retries_within_the_run_and_a_person_stop_holds_a_worker_out() {
    let mut h = scheduled(2, RestartPolicy::OnFailure);
    h.feed(Input::ScheduleDue { group: 0 });
    h.at(100).exit_worker(W1, ExitStatus::Code(1));
    assert!(matches!(h.state(W1), WorkerState::Backoff { .. }));
    h.feed(Input::ScheduleDue { group: 0 });
    assert_eq!(h.spawns(W2), 1, "a retry waiting counts as the run still going");
    h.fire(W1);
    h.exit_worker(W1, ExitStatus::Code(0));
    h.exit_worker(W2, ExitStatus::Code(0));
    h.feed(Input::User(UserAction::Stop(W2)));
    assert_eq!(h.state(W2), WorkerState::Stopped, "stopped by a person, not scheduled");
    h.feed(Input::ScheduleDue { group: 0 });
    assert_eq!((h.spawns(W1), h.spawns(W2)), (3, 1));
}
