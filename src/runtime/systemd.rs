//! The runtime's side of systemd's notification protocol (`Type=notify`): when to say
//! READY, RELOADING, STOPPING, the status line and the watchdog's pings (the protocol
//! itself is `fleet::notify`). Never touches: the core (it reads snapshots).

use std::time::{Duration, Instant};

use super::GroupIo;
use crate::core::{EventKind, Supervisor};
use crate::fleet::Notifier;

/// systemd's notification socket, when corral runs as a `Type=notify` service.
pub(super) struct Systemd {
    notifier: Option<Notifier>,
}

impl Systemd {
    pub fn from_env() -> Systemd {
        Systemd { notifier: Notifier::from_env() }
    }

    pub fn on(&self) -> bool {
        self.notifier.is_some()
    }

    /// How often the watchdog wants a ping, when it does.
    pub fn watchdog(&self) -> Option<Duration> {
        self.notifier.as_ref().and_then(Notifier::watchdog)
    }

    /// Called after every turn: a ping when one is due.
    pub fn watchdog_if_due(&mut self, now: Instant) {
        if let Some(n) = self.notifier.as_mut() {
            n.watchdog_if_due(now);
        }
    }

    /// Once a second: the status line, and a retry of what could not be sent.
    pub fn every_second(&mut self, core: &Supervisor) {
        if let Some(n) = self.notifier.as_mut() {
            let now = Instant::now();
            n.retry();
            n.status(now, &crate::fleet::notify::summary(&core.snapshot(now)));
        }
    }

    /// `READY=1` once corral is healthy as `ctl status` and `/readyz` judge it (every
    /// worker that should be up is up and ready; groups that wait for others started;
    /// finished one-shots count as done) and every running worker has stayed up for
    /// `--reload-settle` without crash-looping: a fleet that crash-loops is never ready,
    /// though every worker may be running at one instant.
    pub fn ready_if_so(&mut self, core: &Supervisor, groups: &[GroupIo]) {
        let Some(n) = self.notifier.as_mut() else { return };
        if n.ready_sent() || core.shutting_down() {
            return;
        }
        let snapshot = core.snapshot(Instant::now());
        let settled = |w: &crate::core::WorkerView| {
            let Some(g) = groups.get(usize::from(w.key.group)) else { return false };
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
    pub fn on_event(&mut self, kind: &EventKind, core: &Supervisor, groups: usize) {
        let Some(n) = self.notifier.as_mut() else { return };
        match kind {
            EventKind::ReloadStarted { .. } => n.reloading(),
            EventKind::ReloadFinished { .. } => {
                let groups = u16::try_from(groups).unwrap_or(u16::MAX);
                // A reload that the shutdown ended: STOPPING=1 was said, READY=1 would
                // take it back.
                if !core.shutting_down() && !(0..groups).any(|g| core.reloading(g)) {
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
