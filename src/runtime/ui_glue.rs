//! The local dashboard's runtime side: starting it (or falling back to headless output
//! when there is no usable terminal) and turning its requests into inputs.

use std::sync::Arc;

use super::{Runtime, dashboard, headless};
use crate::config::LogFormat;
use crate::core::{Input, ShutdownTrigger, UserAction};
use crate::ui::{self, UiRequest};

impl Runtime {
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
                    self.note_queued_reload(g);
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
                self.resize_terminals(request.cols, request.rows);
                if let Some(d) = self.dashboard.as_mut() {
                    d.set_request(request);
                }
            }
            UiRequest::Send { key, message } => {
                let target = self.id(key);
                let reply = self.send_message(&serde_json::Value::Null, &target, &message);
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
}
