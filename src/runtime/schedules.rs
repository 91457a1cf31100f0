//! The schedules' clocks (docs/application.md#schedules): a component that owns, for each
//! group's `schedule` and `reload-schedule`, the next wall-clock time it fires and the
//! monotonic instant to look again. When one fires it becomes a core input
//! (`ScheduleDue`, or a `Reload` with cause `schedule`); the core decides what happens.
//!
//! WHY not the core's timers: a cron time is a wall-clock time, and the wall clock can be
//! set back or forward while corral runs; the core only knows `Instant`s. The timer here
//! wakes at the due time or every `schedule::RECHECK`, whichever is first, and each look
//! counts the next time again from the wall clock (`schedule::step`), so a clock change
//! neither delays a run by the size of the change nor fires a burst of missed ones.

use std::time::{Instant, SystemTime};

use crate::config::GroupSpec;
use crate::core::{Input, NextRun, ReloadCause, ScheduleKind};
use crate::schedule::{self, Schedule, Step};

struct Entry {
    group: u16,
    kind: ScheduleKind,
    schedule: Schedule,
    /// The next time it fires (`None`: never again).
    next: Option<SystemTime>,
    /// When to look again.
    wake: Option<Instant>,
}

#[derive(Default)]
pub(super) struct Schedules {
    entries: Vec<Entry>,
}

impl Schedules {
    pub fn new<'a>(groups: impl Iterator<Item = &'a GroupSpec>) -> Schedules {
        let mut entries = Vec::new();
        for (g, spec) in groups.enumerate() {
            let group = g as u16;
            let kinds = [
                (ScheduleKind::Run, &spec.schedule),
                (ScheduleKind::Reload, &spec.reload_schedule),
            ];
            for (kind, schedule) in kinds {
                if let Some(schedule) = schedule {
                    let schedule = schedule.clone();
                    entries.push(Entry { group, kind, schedule, next: None, wake: None });
                }
            }
        }
        Schedules { entries }
    }

    /// The first times, counted from now; the inputs tell the core.
    pub fn start(&mut self, now: Instant, wall: SystemTime) -> Vec<Input> {
        let mut out = Vec::new();
        for e in &mut self.entries {
            e.next = e.schedule.next_after(wall);
            e.wake = e.next.map(|next| schedule::wake_at(next, now, wall));
            out.push(next_run(e, now, wall));
        }
        out
    }

    /// When the loop should call [`Schedules::poll`] next.
    pub fn next_wake(&self) -> Option<Instant> {
        self.entries.iter().filter_map(|e| e.wake).min()
    }

    /// Looks at every schedule whose wake time came: those due fire (once each), and the
    /// core hears of every next time that changed.
    pub fn poll(&mut self, now: Instant, wall: SystemTime) -> Vec<Input> {
        let mut out = Vec::new();
        for e in &mut self.entries {
            if e.wake.is_none_or(|w| w > now) {
                continue;
            }
            let before = e.next;
            let next = match schedule::step(&e.schedule, e.next, wall) {
                Step::Fire { next } => {
                    out.push(match e.kind {
                        ScheduleKind::Run => Input::ScheduleDue { group: e.group },
                        ScheduleKind::Reload => {
                            Input::Reload { group: e.group, cause: ReloadCause::Schedule }
                        }
                    });
                    next
                }
                Step::Wait { next } => next,
            };
            e.next = next;
            e.wake = next.map(|next| schedule::wake_at(next, now, wall));
            if next != before {
                out.push(next_run(e, now, wall));
            }
        }
        out
    }
}

fn next_run(e: &Entry, now: Instant, wall: SystemTime) -> Input {
    let next = e.next.map(|next| {
        let left = next.duration_since(wall).unwrap_or_default();
        NextRun { at: now + left, wall: next }
    });
    Input::NextRun { group: e.group, kind: e.kind, next }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn schedules(pattern: &str) -> Schedules {
        let at = SystemTime::UNIX_EPOCH + Duration::from_hours(500_000);
        let schedule = Schedule::parse(pattern, schedule::Zone::Utc, at).expect("parses");
        let entry =
            |kind, group| Entry { group, kind, schedule: schedule.clone(), next: None, wake: None };
        Schedules { entries: vec![entry(ScheduleKind::Run, 0), entry(ScheduleKind::Reload, 1)] }
    }

    #[test]
    fn fires_each_due_time_once_and_says_the_next() {
        let mut s = schedules("*/2 * * * * *");
        let wall =
            SystemTime::UNIX_EPOCH + Duration::from_hours(500_000) + Duration::from_millis(500);
        let now = Instant::now();
        let first = s.start(now, wall);
        assert!(matches!(
            first[0],
            Input::NextRun { group: 0, kind: ScheduleKind::Run, next: Some(_) }
        ));
        let wake = s.next_wake().expect("a wake");
        assert_eq!(wake, now + Duration::from_millis(1500));
        // Too early: nothing.
        assert!(s.poll(now, wall).is_empty());
        let later = wall + Duration::from_millis(1500);
        let fired = s.poll(wake, later);
        assert_eq!(fired[0], Input::ScheduleDue { group: 0 });
        assert!(matches!(fired[1], Input::NextRun { group: 0, .. }));
        assert_eq!(fired[2], Input::Reload { group: 1, cause: ReloadCause::Schedule });
        assert_eq!(fired.len(), 4);
        // Looked at again at the same time: not again.
        let again = s.poll(wake, later);
        assert!(again.iter().all(|i| matches!(i, Input::NextRun { .. })), "{again:?}");
        assert_eq!(s.next_wake(), Some(wake + Duration::from_secs(2)));
    }
}
