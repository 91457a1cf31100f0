//! What a person asks for (a key, `corral ctl`): kill, restart, stop, start, toggle,
//! reload, scale.

use super::{
    After, ExitReason, How, Instant, Phase, Supervisor, UserAction, request_stop, start_fresh,
    stop_slot,
};

use crate::core::event::ReloadCause;

impl Supervisor {
    pub(super) fn on_user(&mut self, now: Instant, action: &UserAction) {
        match *action {
            UserAction::Kill(key) => self.with_slot(now, key, |slot, cx| {
                if slot.is_live() {
                    request_stop(slot, cx, ExitReason::KilledByUser, How::Kill, After::Policy);
                }
            }),
            UserAction::Restart(key) => self.with_slot(now, key, |slot, cx| {
                if slot.is_live() {
                    request_stop(
                        slot,
                        cx,
                        ExitReason::RestartedByUser,
                        How::Graceful,
                        After::RestartNow,
                    );
                } else if !cx.shutting_down && !slot.retiring {
                    start_fresh(slot, cx);
                }
            }),
            UserAction::Stop(key) => self.with_slot(now, key, |slot, cx| {
                slot.held = true;
                stop_slot(slot, cx);
            }),
            UserAction::Start(key) => self.with_slot(now, key, |slot, cx| {
                if !slot.is_live() && !cx.shutting_down && !slot.retiring {
                    start_fresh(slot, cx);
                }
            }),
            UserAction::ToggleStop(key) => self.with_slot(now, key, |slot, cx| {
                let stopping_for_good = match &mut slot.phase {
                    Phase::Live(run) => run.stop().is_some_and(|s| s.then == After::Stay),
                    Phase::Waiting { .. } => false,
                    Phase::Stopped | Phase::GaveUp => true,
                };
                if !stopping_for_good {
                    slot.held = true;
                    stop_slot(slot, cx);
                } else if let Phase::Live(run) = &mut slot.phase {
                    // `s` again while it stops: start it once it is down.
                    if run.stop().is_some() && !cx.shutting_down {
                        run.then(After::RestartNow);
                        slot.held = false;
                    }
                } else if !cx.shutting_down && !slot.retiring {
                    start_fresh(slot, cx);
                }
            }),
            UserAction::Reload(group) => self.start_reload(now, group, ReloadCause::Key),
            UserAction::ScaleUp(group) => self.scale_up(now, group),
            UserAction::ScaleDown(group) => self.scale_down(now, group),
        }
    }
}
