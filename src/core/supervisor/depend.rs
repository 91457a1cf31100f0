//! Groups that wait for others (docs/application.md#dependencies-depends-on): released
//! once every condition holds, told once when one never can, and stopped before what they
//! depend on.

use super::{
    After, Command, Cx, Event, EventKind, ExitReason, Group, How, Instant, Phase, Scope, Shutdown,
    Supervisor, request_stop, spawn,
};
use crate::core::depends::{Dependency, Target, Verdict, Waits, judge};
use crate::core::worker::Slot;

/// `waiting`: what group `g` waits for, and why it never will when that is known.
pub(super) fn waiting_event(g: u16, unmet: Vec<String>, blocked: Option<String>) -> Command {
    Command::Emit(Event {
        scope: Scope::Group(g),
        pid: None,
        kind: EventKind::Waiting { unmet, blocked },
    })
}

impl Supervisor {
    /// `db ready`, for each dependency of group `g` that `pick` keeps.
    pub(super) fn labels(&self, g: u16, pick: impl Fn(&Dependency) -> bool) -> Vec<String> {
        let Some(group) = self.groups.get(usize::from(g)) else { return Vec::new() };
        group
            .config
            .depends_on
            .iter()
            .filter(|d| pick(d))
            .map(|d| {
                let name = self.groups.get(usize::from(d.group)).map_or("?", |t| &t.config.name);
                format!("{name} {}", d.condition.name())
            })
            .collect()
    }

    pub(super) fn verdict(&self, dependency: Dependency) -> Verdict {
        let Some(target) = self.groups.get(usize::from(dependency.group)) else {
            return Verdict::NotYet;
        };
        let target = Target {
            name: &target.config.name,
            slots: &target.slots,
            wait_ready: target.config.wait_ready,
            restart: target.config.policy.restart,
            waiting: match (target.waiting, target.blocked.as_deref()) {
                (false, _) => Waits::No,
                (true, None) => Waits::Yes,
                (true, Some(why)) => Waits::Blocked(why),
            },
        };
        judge(dependency.condition, &target)
    }

    /// Starts every waiting group whose conditions all hold now, in dependency order (so a
    /// chain released by one input starts whole), and says once when one can never hold.
    pub(super) fn release_waiting(&mut self, now: Instant) {
        if !self.started || self.shutdown != Shutdown::Running {
            return;
        }
        for at in 0..self.order.len() {
            let g = self.order[at];
            let Some(group) = self.groups.get(usize::from(g)) else { continue };
            if !group.waiting {
                continue;
            }
            let mut never = None;
            let mut unmet = Vec::new();
            for dependency in &group.config.depends_on {
                match self.verdict(*dependency) {
                    Verdict::Holds => {}
                    Verdict::NotYet => unmet.push(*dependency),
                    Verdict::Never(why) => {
                        never.get_or_insert(why);
                        unmet.push(*dependency);
                    }
                }
            }
            if unmet.is_empty() {
                self.release(now, g);
                continue;
            }
            let said = self.groups[usize::from(g)].blocked.is_some();
            match never {
                Some(why) if !said => {
                    let labels = self.labels(g, |d| unmet.contains(d));
                    self.groups[usize::from(g)].blocked = Some(why.clone());
                    self.out.push(waiting_event(g, labels, Some(why)));
                }
                Some(why) => self.groups[usize::from(g)].blocked = Some(why),
                // A person started what was stuck: it may hold after all.
                None => self.groups[usize::from(g)].blocked = None,
            }
        }
    }

    fn release(&mut self, now: Instant, g: u16) {
        let Some(group) = self.groups.get_mut(usize::from(g)) else { return };
        group.waiting = false;
        group.blocked = None;
        if group.config.scheduled {
            return; // its schedule starts it, from now on
        }
        for slot in &mut group.slots {
            // A slot a person stopped while it waited stays stopped.
            if matches!(slot.phase, Phase::Stopped) && !slot.held && !slot.retiring {
                let mut cx = Cx::new(now, &group.config, false, &mut self.out, &mut self.rng);
                spawn(slot, &mut cx);
            }
        }
    }

    /// Whether group `g` still waits for its dependencies (it has nothing to reload).
    pub fn waits(&self, g: u16) -> bool {
        self.groups.get(usize::from(g)).is_some_and(|group| group.waiting)
    }

    /// A graceful shutdown stops every group none of whose dependents still has a process:
    /// dependents first, what they depend on after them, unrelated groups together.
    pub(super) fn stop_next_groups(&mut self, now: Instant) {
        let has_process = |group: &Group| group.slots.iter().any(Slot::has_process);
        let free: Vec<usize> = (0..self.groups.len())
            .filter(|&g| {
                let dependents = self.dependents.get(g).map_or(&[][..], Vec::as_slice);
                has_process(&self.groups[g])
                    && dependents
                        .iter()
                        .all(|&d| !self.groups.get(usize::from(d)).is_some_and(has_process))
            })
            .collect();
        for g in free {
            let group = &mut self.groups[g];
            for slot in &mut group.slots {
                let mut cx = Cx::new(now, &group.config, true, &mut self.out, &mut self.rng);
                super::reload::stop(slot, &mut cx, ExitReason::Shutdown);
                if slot.is_live() {
                    request_stop(slot, &mut cx, ExitReason::Shutdown, How::Graceful, After::Stay);
                }
            }
        }
    }

    /// Groups still waiting (never started), for the headless exit rule: idle with one of
    /// them is a failure, since nothing will start it.
    pub(super) fn any_waiting(&self) -> bool {
        self.groups.iter().any(|g| g.waiting)
    }
}
