//! Scaling a group up and down by one slot.

use super::{
    After, Command, Cx, Event, EventKind, ExitReason, How, Instant, MAX_WORKERS, Phase, Scope,
    Shutdown, Slot, Supervisor, WorkerKey, request_stop, spawn, start_fresh,
};

impl Supervisor {
    pub(super) fn scale_up(&mut self, now: Instant, g: u16) {
        if self.shutdown != Shutdown::Running {
            return;
        }
        let Some(group) = self.groups.get_mut(usize::from(g)) else {
            return;
        };
        let active = group.slots.iter().filter(|s| !s.retiring).count() as u32;
        if active >= MAX_WORKERS {
            return;
        }
        let mut cx = Cx::new(now, &group.config, false, &mut self.out, &mut self.rng);
        // Taking back a slot that is still being scaled down beats starting a new number.
        if let Some(slot) = group.slots.iter_mut().find(|s| s.retiring) {
            slot.retiring = false;
            group.retiring -= 1;
            match &mut slot.phase {
                Phase::Live(run) => {
                    run.then(After::RestartNow);
                }
                Phase::Waiting { .. } | Phase::Stopped | Phase::GaveUp => {
                    start_fresh(slot, &mut cx);
                }
            }
        } else {
            let number = group.slots.last().map_or(1, |s| s.key.slot + 1);
            let mut slot = Slot::new(WorkerKey { group: g, slot: number });
            // A waiting group's new slot waits with the others; a scheduled group's joins its
            // next run.
            if !group.waiting && !cx.scheduled {
                spawn(&mut slot, &mut cx);
            }
            group.slots.push(slot);
        }
        group.config.workers = active + 1;
        let workers = group.config.workers;
        self.out.push(Command::Emit(Event {
            scope: Scope::Group(g),
            pid: None,
            kind: EventKind::Scaled { workers },
        }));
    }

    pub(super) fn scale_down(&mut self, now: Instant, g: u16) {
        if self.shutdown != Shutdown::Running {
            return;
        }
        let Some(group) = self.groups.get_mut(usize::from(g)) else {
            return;
        };
        let active = group.slots.iter().filter(|s| !s.retiring).count() as u32;
        if active <= 1 {
            return;
        }
        let mut cx = Cx::new(now, &group.config, false, &mut self.out, &mut self.rng);
        if let Some(slot) = group.slots.iter_mut().rev().find(|s| !s.retiring) {
            slot.retiring = true;
            group.retiring += 1;
            if slot.is_live() {
                request_stop(slot, &mut cx, ExitReason::ScaledDown, How::Graceful, After::Remove);
            } else {
                slot.timers.clear();
                slot.phase = Phase::Stopped;
            }
        }
        group.config.workers = active - 1;
        let workers = group.config.workers;
        self.out.push(Command::Emit(Event {
            scope: Scope::Group(g),
            pid: None,
            kind: EventKind::Scaled { workers },
        }));
    }
}
