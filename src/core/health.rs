//! Health as the things that watch corral see it (docs/application.md#health): every worker
//! that should be up is up, and ready where it can say so. One verdict, read by `ctl status`,
//! `/readyz` and systemd's `READY=1`, so they never disagree.

use super::snapshot::{Snapshot, WorkerState, WorkerView};

/// The most reasons a verdict lists; a crash-looping fleet of thousands says how many more.
pub const MAX_REASONS: usize = 20;

/// Whether corral is healthy now: [`problems`] would be empty. Stops at the first problem
/// and writes no reasons (systemd's `READY=1` asks at every turn of the loop until then).
pub fn healthy(snapshot: &Snapshot) -> bool {
    !snapshot.shutting_down
        && snapshot.groups.iter().all(|g| g.waiting_for.is_empty())
        && snapshot.workers.iter().all(|w| worker_problem(w).is_none())
}

/// Why corral is not healthy now: empty when it is.
pub fn problems(snapshot: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let mut more = 0usize;
    let mut say = |line: String| {
        if out.len() < MAX_REASONS {
            out.push(line);
        } else {
            more += 1;
        }
    };
    if snapshot.shutting_down {
        say("corral is shutting down".to_string());
    }
    for group in &snapshot.groups {
        if group.waiting_for.is_empty() {
            continue;
        }
        let mut line = format!("{} waits for {}", group.name, group.waiting_for.join(", "));
        if let Some(why) = &group.blocked {
            line = format!("{line}, which cannot happen now: {why}");
        }
        say(line);
    }
    for w in &snapshot.workers {
        if let Some(problem) = worker_problem(w) {
            say(problem);
        }
    }
    if more > 0 {
        out.push(format!("and {more} more"));
    }
    out
}

/// Why this worker counts against health, if it does.
fn worker_problem(w: &WorkerView) -> Option<String> {
    let id = &w.id;
    if w.crash_looping && matches!(w.state, WorkerState::Running | WorkerState::Backoff { .. }) {
        // Up this instant perhaps, but its last runs all ended early: not healthy until one
        // lasts.
        return Some(format!("{id} is crash-looping"));
    }
    match &w.state {
        // A waiting worker's group has the line that says what it waits for; a scheduled
        // one is between runs, as it should be.
        WorkerState::Running | WorkerState::Waiting => None,
        // Between runs of its schedule: fine, unless its last run failed (a nightly backup
        // that failed must not look healthy until the next night).
        WorkerState::Scheduled { .. } => match &w.last_exit {
            Some(exit) if !exit.status.success() && !w.held => {
                Some(format!("{id}'s last scheduled run failed ({})", exit.status))
            }
            _ => None,
        },
        // A rolling reload: the replacement serves already.
        WorkerState::Stopping if w.replacement.is_some() => None,
        WorkerState::Stopped if w.held => None,
        WorkerState::Stopped => match &w.last_exit {
            Some(exit) if exit.status.success() => None,
            Some(exit) => Some(format!("{id} ended ({}) and will not run again", exit.status)),
            None => Some(format!("{id} is stopped")),
        },
        WorkerState::Starting => Some(format!("{id} is starting")),
        WorkerState::Unready => Some(format!("{id} is unready: its readiness probe fails")),
        WorkerState::Stopping => Some(format!("{id} is stopping")),
        WorkerState::Backoff { .. } => Some(format!("{id} is restarting")),
        WorkerState::GaveUp => Some(format!("{id} gave up after {} restarts", w.restarts)),
        WorkerState::Failed { error, .. } => Some(format!("{id} cannot start: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::core::{ExitReason, ExitStatus, GroupView, LastExit, WorkerKey};

    fn worker(slot: u32, state: WorkerState) -> WorkerView {
        WorkerView {
            key: WorkerKey { group: 0, slot },
            id: format!("web.{slot}"),
            pid: None,
            generation: None,
            state,
            ..WorkerView::default()
        }
    }

    fn snapshot(workers: Vec<WorkerView>) -> Snapshot {
        let group =
            GroupView { name: "web".into(), workers: workers.len() as u32, ..GroupView::default() };
        Snapshot { groups: vec![group], workers, ..Snapshot::default() }
    }

    #[test]
    fn running_workers_and_finished_one_shots_are_healthy() {
        let mut done = worker(2, WorkerState::Stopped);
        let at = Instant::now();
        let uptime = Duration::from_secs(1);
        done.last_exit =
            Some(LastExit { status: ExitStatus::Code(0), reason: ExitReason::Exited, at, uptime });
        let mut by_hand = worker(3, WorkerState::Stopped);
        by_hand.held = true;
        assert!(
            problems(&snapshot(vec![worker(1, WorkerState::Running), done, by_hand])).is_empty()
        );
    }

    #[test]
    fn every_other_state_says_why() {
        let left = Duration::from_secs(2);
        let mut failed_run = worker(6, WorkerState::Stopped);
        let at = Instant::now();
        failed_run.last_exit = Some(LastExit {
            status: ExitStatus::Code(3),
            reason: ExitReason::Exited,
            at,
            uptime: Duration::ZERO,
        });
        let mut looping = worker(7, WorkerState::Backoff { left });
        looping.crash_looping = true;
        let workers = vec![
            worker(1, WorkerState::Starting),
            worker(2, WorkerState::Backoff { left }),
            worker(3, WorkerState::GaveUp),
            worker(4, WorkerState::Failed { left, error: "ENOENT".into() }),
            worker(5, WorkerState::Stopping),
            failed_run,
            looping,
            WorkerView { crash_looping: true, ..worker(8, WorkerState::Running) },
            WorkerView {
                last_exit: Some(LastExit {
                    status: ExitStatus::Code(2),
                    reason: ExitReason::Exited,
                    at,
                    uptime: Duration::ZERO,
                }),
                ..worker(9, WorkerState::Scheduled { left: None })
            },
            worker(10, WorkerState::Scheduled { left: None }),
        ];
        assert_eq!(
            problems(&snapshot(workers)),
            [
                "web.1 is starting",
                "web.2 is restarting",
                "web.3 gave up after 0 restarts",
                "web.4 cannot start: ENOENT",
                "web.5 is stopping",
                "web.6 ended (exit 3) and will not run again",
                "web.7 is crash-looping",
                "web.8 is crash-looping",
                "web.9's last scheduled run failed (exit 2)",
            ]
        );
    }

    #[test]
    fn a_waiting_group_is_one_line_with_its_reason_and_a_flood_is_bounded() {
        let mut s = snapshot((1..=100).map(|n| worker(n, WorkerState::Waiting)).collect());
        s.groups[0].waiting_for = vec!["migrate completed".into()];
        s.groups[0].blocked = Some("migrate.1 ended (exit 1) and will not run again".into());
        assert!(!healthy(&s), "a waiting group is not healthy");
        assert_eq!(
            problems(&s),
            ["web waits for migrate completed, which cannot happen now: migrate.1 ended (exit 1) \
              and will not run again"]
        );
        let s = snapshot((1..=100).map(|n| worker(n, WorkerState::GaveUp)).collect());
        assert!(!healthy(&s));
        let p = problems(&s);
        assert_eq!((p.len(), p.last().map(String::as_str)), (MAX_REASONS + 1, Some("and 80 more")));
    }
}
