//! The runtime's side of systemd's notification protocol: when to say READY, RELOADING,
//! STOPPING (the protocol itself is `fleet::notify`).

use std::time::{Duration, Instant};

use super::Runtime;
use crate::core::EventKind;

impl Runtime {
    /// `READY=1` once corral is healthy as `ctl status` and `/readyz` judge it (every
    /// worker that should be up is up and ready; groups that wait for others started;
    /// finished one-shots count as done) and every running worker has stayed up for
    /// `--reload-settle` without crash-looping: a fleet that crash-loops is never ready,
    /// though every worker may be running at one instant.
    pub(super) fn notify_ready(&mut self) {
        let Some(n) = self.notifier.as_mut() else { return };
        if n.ready_sent() || self.core.shutting_down() {
            return;
        }
        let snapshot = self.core.snapshot(Instant::now());
        let settled = |w: &crate::core::WorkerView| {
            let Some(g) = self.groups.get(usize::from(w.key.group)) else { return false };
            let settle =
                if g.spec.wait_ready { Duration::ZERO } else { g.spec.policy.reload_settle };
            w.state != crate::core::WorkerState::Running
                || (!w.crash_looping && w.uptime.is_some_and(|up| up >= settle))
        };
        let all_up = !snapshot.workers.is_empty()
            && crate::core::health::healthy(&snapshot)
            && snapshot.workers.iter().all(settled);
        if all_up {
            n.ready();
            n.status(Instant::now(), &crate::fleet::notify::summary(&snapshot));
        }
    }

    /// The service manager hears of reloads and of the shutdown.
    pub(super) fn notify_event(&mut self, kind: &EventKind) {
        let Some(n) = self.notifier.as_mut() else { return };
        match kind {
            EventKind::ReloadStarted { .. } => n.reloading(),
            EventKind::ReloadFinished { .. } => {
                let groups = self.groups.len() as u16;
                if !(0..groups).any(|g| self.core.reloading(g)) {
                    n.reloaded();
                }
            }
            EventKind::ShutdownStarted { .. } => n.stopping(),
            EventKind::Spawned { .. }
            | EventKind::SpawnFailed { .. }
            | EventKind::Ready
            | EventKind::Unready
            | EventKind::ProbeFailed { .. }
            | EventKind::Exited { .. }
            | EventKind::RestartScheduled { .. }
            | EventKind::GaveUp { .. }
            | EventKind::Scaled { .. }
            | EventKind::Waiting { .. }
            | EventKind::ScheduleSkipped { .. } => {}
        }
    }
}
