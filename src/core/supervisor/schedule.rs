//! Schedules (docs/application.md#schedules): the runtime owns the clocks and says when a
//! group's schedule is due and when it fires next; whether a due run starts is decided here.

use super::{Command, Event, EventKind, Instant, NextRun, Phase, Scope, Supervisor, start_fresh};
use crate::core::snapshot::ScheduleKind;

impl Supervisor {
    /// A one-shot group's run is due: every worker starts, unless a worker of the last run
    /// is still going (up, stopping, or waiting to retry under `on-failure`): then this run
    /// is skipped, and said so once.
    pub(super) fn on_schedule_due(&mut self, now: Instant, g: u16) {
        if self.shutting_down() {
            return;
        }
        let shutting_down = false;
        let Some(group) = self.groups.get_mut(usize::from(g)) else { return };
        if !group.config.scheduled {
            return;
        }
        let running = group
            .slots
            .iter()
            .filter(|s| s.has_process() || matches!(s.phase, Phase::Waiting { .. }))
            .count() as u32;
        if running > 0 {
            let kind = EventKind::ScheduleSkipped { running };
            self.out.push(Command::Emit(Event { scope: Scope::Group(g), pid: None, kind }));
            return;
        }
        let mut cx =
            super::Cx::new(now, &group.config, shutting_down, &mut self.out, &mut self.rng);
        for slot in &mut group.slots {
            // A worker a person stopped stays stopped until they start it again.
            if !slot.held && !slot.retiring {
                start_fresh(slot, &mut cx);
            }
        }
    }

    pub(super) fn set_next_run(&mut self, g: u16, kind: ScheduleKind, next: Option<NextRun>) {
        let Some(group) = self.groups.get_mut(usize::from(g)) else { return };
        match kind {
            ScheduleKind::Run => group.next_run = next,
            ScheduleKind::Reload => group.next_reload = next,
        }
    }
}
