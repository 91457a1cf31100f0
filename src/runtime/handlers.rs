//! What arrives from outside, turned into inputs for the core or answered: corral's own
//! signals, the dashboard's requests, control requests, Node channel messages, watched
//! files, timers, and the ticks that publish frames, rates and metrics.

use std::sync::Arc;
use std::time::Instant;

use super::signals::Arrived;
use super::start::headless;
use super::{Runtime, control_service, dashboard, node_setup, note_queued_reload};
use crate::config::LogFormat;
use crate::control::server::Incoming;
use crate::core::{Input, ShutdownTrigger, UserAction};
use crate::signal::Signal;
use crate::ui::{self, UiRequest};

impl Runtime {
    pub(super) fn on_signals(&mut self, arrived: Vec<Arrived>) {
        for Arrived { signal, count, sender, at } in arrived {
            // Twice is all that counts for a stop (graceful, then forced) or a reload
            // (the current one, then one more).
            let twice = count.min(2);
            match signal.0 {
                libc::SIGCHLD => {
                    self.procs.reap(&mut self.probes, &mut self.groups, &self.hub, &self.inputs);
                }
                libc::SIGINT | libc::SIGTERM => {
                    let requests = self.stop_signals.requests(signal, count, sender, at);
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
            note_queued_reload(&self.core, &self.names, g);
            self.inputs.push(Input::Reload { group: g, cause: crate::core::ReloadCause::Signal });
        }
    }

    pub(super) fn scale(&mut self, up: bool) {
        for g in 0..self.groups.len() as u16 {
            let action = if up { UserAction::ScaleUp(g) } else { UserAction::ScaleDown(g) };
            self.inputs.push(Input::User(action));
        }
    }

    pub(super) fn start_dashboard(
        &mut self,
        requests: tokio::sync::mpsc::UnboundedSender<UiRequest>,
    ) {
        let slot = ui::ViewSlot::default();
        match ui::start(Arc::clone(&slot), requests) {
            Ok(handle) => {
                self.ui = Some(handle);
                let facts =
                    self.groups.iter().map(|g| dashboard::GroupFacts::new(&g.spec, &g.listeners));
                let log_path = crate::logging::log_path();
                let d = dashboard::ViewFeed::new(Some(slot), log_path, facts.collect());
                self.dashboard = Some(d);
            }
            Err(e) => {
                // No usable terminal after all: report headlessly rather than not at all.
                tracing::warn!("cannot start the dashboard ({e}); printing events instead");
                let resume = self.hub.resumed();
                match headless(LogFormat::Text, &self.names, &self.stdout_closed, &resume) {
                    Ok(h) => self.hub.start_headless(h),
                    Err(e) => tracing::error!("cannot start the output writer either: {e}"),
                }
                self.core.set_exit_when_idle(true);
            }
        }
    }

    pub(super) fn on_ui(&mut self, request: UiRequest) {
        match request {
            UiRequest::Action(action) => {
                if let UserAction::Reload(g) = action {
                    note_queued_reload(&self.core, &self.names, g);
                }
                self.inputs.push(Input::User(action));
            }
            UiRequest::Quit(trigger) => {
                // A broken terminal after a hangup or a quit is how those end, not a failure.
                let shutting_down = self.core.shutting_down();
                match trigger {
                    ShutdownTrigger::Panic => self.ui_failed = true,
                    ShutdownTrigger::TerminalError if !shutting_down => self.ui_failed = true,
                    _ => {}
                }
                self.inputs.push(Input::Shutdown(trigger));
            }
            UiRequest::Pane(request) => {
                self.procs.resize_terminals(request.cols, request.rows);
                if let Some(d) = self.dashboard.as_mut() {
                    d.set_request(request);
                }
            }
            UiRequest::Send { key, message } => {
                let target = self.id(key);
                let (core, names) = (&self.core, &self.names);
                let targets = |t: &str| control_service::targets(core, names, t);
                let what = (&serde_json::Value::Null, target.as_str(), &message);
                let reply =
                    node_setup::send_message(&mut self.node, &self.procs, names, what, targets);
                let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap_or_default();
                if let Some(error) = reply["error"].as_str() {
                    tracing::warn!(worker = %target, "message not sent: {error}");
                }
            }
            // Only an attached dashboard asks this way; the local one quits with `q`.
            UiRequest::Shutdown => {
                let trigger = ShutdownTrigger::Key(crate::core::QuitKey::Q);
                self.inputs.push(Input::Shutdown(trigger));
            }
        }
    }

    pub(super) fn on_control(&mut self, incoming: Incoming) {
        let Some(control) = self.control.as_mut() else { return };
        let cx = control_service::Cx {
            core: &self.core,
            names: &self.names,
            instance: &self.instance,
            inputs: &self.inputs,
            hub: &self.hub,
            procs: &self.procs,
            node: &mut self.node,
            attachable: self.dashboard.is_some(),
        };
        control.handle(incoming, cx);
    }

    pub(super) fn on_node(&mut self, event: super::node::NodeEvent) {
        use super::node::{Effect, NodeEvent};
        let inbound = match event {
            NodeEvent::Inbound(inbound) => inbound,
            NodeEvent::Connection(at, conn) => return self.node.dispatch(at, conn),
        };
        for effect in self.node.on_inbound(inbound) {
            match effect {
                Effect::Input(input) => self.inputs.push(input),
                Effect::ProtocolError { key, pid } => {
                    self.node_errors.report(key, pid, &self.hub, &self.names);
                }
            }
        }
    }

    /// Files changed under a group's watched paths, and the quiet period passed: a rolling
    /// reload of the group, and a start now of its workers that wait to restart after a
    /// crash (the change may be the fix; a reload only replaces running workers).
    pub(super) fn on_watch(&mut self, reloads: Vec<(u16, String)>) {
        let snapshot = self.core.snapshot(Instant::now());
        for (group, path) in reloads {
            for w in snapshot.workers.iter().filter(|w| w.key.group == group) {
                if matches!(
                    w.state,
                    crate::core::WorkerState::Backoff { .. }
                        | crate::core::WorkerState::Failed { .. }
                        | crate::core::WorkerState::GaveUp
                ) {
                    self.inputs.push(Input::User(UserAction::Start(w.key)));
                }
            }
            note_queued_reload(&self.core, &self.names, group);
            let cause = crate::core::ReloadCause::Watch { path };
            self.inputs.push(Input::Reload { group, cause });
        }
    }

    /// The sampler's round: to the process table (and the core), then the dashboard.
    pub(super) fn on_samples(&mut self, round: Vec<crate::backend::Usage>) {
        let measured = self.procs.on_samples(round, &self.inputs);
        if let Some(d) = self.dashboard.as_mut() {
            for (key, usage) in &measured {
                d.record_usage(*key, usage);
            }
        }
    }

    /// The core's timers and the probes' deadlines that came due.
    pub(super) fn timers_due(&mut self) {
        let now = Instant::now();
        while let Some(token) = self.timers.pop_due(now) {
            self.inputs.push(Input::Timer(token));
        }
        self.probes.due(now, &mut &*self.inputs);
    }

    pub(super) fn every_second(&mut self) {
        if let Some(d) = self.dashboard.as_mut() {
            let keys = self.core.worker_keys().into_iter();
            self.hub.with_logs(|logs| d.tick_rates(logs, keys));
        }
        self.systemd.every_second(&self.core);
    }

    /// Whether a viewer is owed a frame: only then does the frame tick run, so an idle
    /// corral wakes for frames about once a second (the rates), not 30 times, and one that
    /// nobody looks at never.
    pub(super) fn frame_owed(&self) -> bool {
        let Some(d) = self.dashboard.as_ref() else { return false };
        let changed = d.changed() || self.hub.dirty();
        let local = d.has_local() && (changed || d.local_dirty());
        local || self.control.as_ref().is_some_and(|c| c.frame_owed(changed))
    }

    /// The frame tick: a fresh view for every viewer owed one, built once per distinct pane.
    pub(super) fn publish(&mut self) {
        let Some(d) = self.dashboard.as_mut() else { return };
        let changed = self.hub.take_dirty() | d.take_changed();
        let local = d.local_due(changed);
        let remote = self.control.as_mut().map(|c| c.due_panes(changed)).unwrap_or_default();
        if !local && remote.is_empty() {
            return;
        }
        let snapshot = self.core.snapshot(Instant::now());
        let (usage, names) = (self.procs.usage(), &self.names);
        for (request, who) in remote {
            let view =
                self.hub.with_logs(|logs| d.view(snapshot.clone(), logs, usage, names, &request));
            if let Some(c) = self.control.as_mut() {
                c.send_view(&who, view);
            }
        }
        if local {
            self.hub.with_logs(|logs| d.publish_local(snapshot, logs, usage, names));
        }
    }

    /// A scrape wants the numbers.
    pub(super) fn publish_metrics(&self) {
        if let Some(m) = self.metrics.as_ref() {
            m.publish(&self.core, &self.hub, self.procs.usage());
        }
    }
}
