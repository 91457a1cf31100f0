//! The runtime's side of systemd's notification protocol: when to say READY, RELOADING,
//! STOPPING (the protocol itself is `fleet::notify`).

use std::time::Instant;

use super::Runtime;
use crate::core::EventKind;

impl Runtime {
    /// `READY=1` once every worker of every group is up (ready, with `--wait-ready`).
    pub(super) fn notify_ready(&mut self) {
        let Some(n) = self.notifier.as_mut() else { return };
        if n.ready_sent() || self.core.shutting_down() {
            return;
        }
        let snapshot = self.core.snapshot(Instant::now());
        let all_up = !snapshot.workers.is_empty()
            && snapshot.groups.iter().all(|g| g.up == g.workers)
            && snapshot.workers.iter().all(|w| w.state == crate::core::WorkerState::Running);
        if all_up {
            n.ready();
            n.status(Instant::now(), &crate::fleet::notify::summary(&snapshot));
        }
    }

    /// The service manager hears of reloads and of the shutdown.
    pub(super) fn notify_event(&mut self, kind: &EventKind) {
        let Some(n) = self.notifier.as_mut() else { return };
        match kind {
            EventKind::ReloadStarted => n.reloading(),
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
            | EventKind::Exited { .. }
            | EventKind::RestartScheduled { .. }
            | EventKind::GaveUp { .. }
            | EventKind::Scaled { .. } => {}
        }
    }
}
