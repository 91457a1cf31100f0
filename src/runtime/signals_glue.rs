//! What each of corral's own signals means to the runtime (the handlers only count them;
//! see `signals`): shutdown, reload, scaling, SIGQUIT's forced stop, SIGUSR1's reopening
//! of the log files.

use super::Runtime;
use super::signals::Arrived;
use crate::core::{Input, ShutdownTrigger, UserAction};
use crate::signal::Signal;

impl Runtime {
    pub(super) fn on_signals(&mut self, arrived: Vec<Arrived>) {
        for Arrived { signal, count, sender } in arrived {
            // Twice is all that counts for a stop (graceful, then forced) or a reload
            // (the current one, then one more).
            let twice = count.min(2);
            match signal.0 {
                libc::SIGCHLD => self.reap(),
                libc::SIGINT | libc::SIGTERM => {
                    let requests = self.stop_signals.requests(
                        signal,
                        count,
                        sender,
                        std::time::Instant::now(),
                    );
                    if requests == 0 {
                        tracing::info!(
                            sender,
                            "{signal} again from the same process at once: one request"
                        );
                    }
                    (0..requests).for_each(|_| self.shutdown_signal(signal));
                }
                libc::SIGHUP if self.dashboard_on() => {
                    // The terminal went away: stop everything in order.
                    self.shutdown_signal(signal);
                }
                libc::SIGHUP => (0..twice).for_each(|_| self.reload_all()),
                libc::SIGTTIN | libc::SIGTTOU if self.dashboard_on() => {
                    tracing::info!(
                        sender,
                        "ignoring {signal}: scaling by signal is for headless mode"
                    );
                }
                libc::SIGTTIN | libc::SIGTTOU => {
                    let up = signal == Signal::TTIN;
                    (0..count.min(4096)).for_each(|_| self.scale(up));
                }
                libc::SIGQUIT => self.quit_now(sender),
                libc::SIGUSR1 => self.reopen_logs(sender),
                _ => tracing::warn!(sender, count, "ignoring {signal}"),
            }
        }
    }

    /// SIGUSR1: reopen every log file, for an outside logrotate that moved them away.
    pub(super) fn reopen_logs(&mut self, sender: i32) {
        if self.hub.reopen_files() {
            tracing::info!(sender, "SIGUSR1: reopening the log files");
        } else {
            tracing::info!(sender, "SIGUSR1: no log files are open to reopen");
        }
    }

    /// SIGQUIT: stop everything now (SIGKILL to every group), restore the terminal, exit 1.
    pub(super) fn quit_now(&mut self, sender: i32) {
        tracing::warn!(sender, "SIGQUIT: killing every worker now");
        self.shutdown_signal(Signal::QUIT);
        self.ui_failed = true;
    }

    pub(super) fn shutdown_signal(&mut self, signal: Signal) {
        if self.core.shutting_down() && self.exit.is_none() {
            // Headless, nothing else would say why every worker just died of SIGKILL.
            tracing::warn!("{signal} again: SIGKILL to every worker now");
        }
        self.inputs.push(Input::Shutdown(ShutdownTrigger::Signal(signal)));
    }

    pub(super) fn stdout_gone(&mut self) {
        // Nobody reads our report any more (`corral … | head -1`): stop like SIGPIPE
        // would, but cleanly, so no worker is orphaned.
        if self.exit.is_none() && !self.core.shutting_down() {
            self.inputs.push(Input::Shutdown(ShutdownTrigger::StdoutClosed));
        }
    }

    /// SIGHUP, headless: a rolling reload of every group (gunicorn's convention).
    pub(super) fn reload_all(&mut self) {
        for g in 0..self.groups.len() as u16 {
            self.note_queued_reload(g);
            self.inputs.push(Input::Reload { group: g, cause: crate::core::ReloadCause::Signal });
        }
    }

    /// The core coalesces a reload asked for during one into one more after it; say so,
    /// or the request looks ignored.
    pub(super) fn note_queued_reload(&self, g: u16) {
        if self.core.reloading(g) {
            let group = self.names.get(usize::from(g)).map_or("?", String::as_str);
            tracing::info!("reload requested during a reload of {group}: queued");
        }
    }

    pub(super) fn scale(&mut self, up: bool) {
        for g in 0..self.groups.len() as u16 {
            let action = if up { UserAction::ScaleUp(g) } else { UserAction::ScaleDown(g) };
            self.inputs.push(Input::User(action));
        }
    }
}
