//! What each key does to the UI state, and what it asks of the runtime. A key that cannot
//! act says why in the footer instead of doing nothing silently.

use std::time::Instant;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::model::{PaneMode, UiRequest, View};
use super::state::{Effect, Focus, UiState};
use crate::core::{UserAction, WorkerState, WorkerView};

/// The core's cap on workers per group (`+` beyond it does nothing).
const MAX_WORKERS: u32 = 4096;

impl UiState {
    pub fn on_key(&mut self, key: KeyEvent, view: &View, now: Instant) -> Vec<Effect> {
        if key.kind == KeyEventKind::Release {
            return vec![];
        }
        if self.editing.is_some() {
            self.edit_filter(key);
            return vec![];
        }
        if self.composing.is_some() {
            return self.compose(key, now);
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if self.confirming {
            return self.confirm(key.code, ctrl, view, now);
        }
        match key.code {
            KeyCode::Char('c') if ctrl => self.quit(crate::core::QuitKey::CtrlC),
            KeyCode::Char('z') if ctrl => vec![Effect::Suspend],
            KeyCode::Char('q') => self.quit(crate::core::QuitKey::Q),
            // Attached, `q` only detaches; stopping the corral itself is asked for apart.
            KeyCode::Char('Q') if view.attached.is_some() => {
                self.confirming = true;
                vec![]
            }
            KeyCode::Char('?') => {
                self.help = !self.help;
                vec![]
            }
            KeyCode::Esc => {
                self.help = false;
                self.filter.clear();
                if matches!(self.mode, PaneMode::Metrics | PaneMode::Details) {
                    self.mode = PaneMode::Output;
                }
                vec![]
            }
            _ if self.help => {
                self.help = false;
                vec![]
            }
            KeyCode::Char(c @ ('x' | 'r' | 's' | 'R' | '+' | '=' | '-' | '_')) => {
                self.action(c, view, now)
            }
            KeyCode::Char('c') => {
                // Copying: the terminal selects only while corral does not take the mouse.
                self.mouse_released = !self.mouse_released;
                vec![Effect::Mouse(!self.mouse_released)]
            }
            KeyCode::Char(c @ ('e' | 'm')) => {
                let mode = if c == 'e' { PaneMode::Events } else { PaneMode::Metrics };
                self.switch(mode);
                vec![]
            }
            KeyCode::Enter => {
                self.switch(PaneMode::Details);
                vec![]
            }
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = if self.focus == Focus::Table { Focus::Pane } else { Focus::Table };
                vec![]
            }
            KeyCode::Char('a') => {
                self.all_workers = !self.all_workers;
                self.scroll = 0;
                vec![]
            }
            KeyCode::Char('/') => {
                self.editing = Some(String::new());
                vec![]
            }
            KeyCode::Char('>') if self.mode == PaneMode::Details => {
                match view.snapshot.workers.get(self.selected) {
                    Some(w) => self.composing = Some((w.key, w.id.clone(), String::new())),
                    None => self.note("no worker selected", now),
                }
                vec![]
            }
            code => {
                if !self.navigate(code, view) {
                    let name = match code {
                        KeyCode::Char(c) => format!("'{c}'"),
                        other => other.to_string(),
                    };
                    self.note(format!("{name} does nothing here · ? lists the keys"), now);
                }
                vec![]
            }
        }
    }

    /// The answer to "shut down NAME? y/n": `y` asks for it, anything else does not (Ctrl-C
    /// still detaches).
    fn confirm(&mut self, code: KeyCode, ctrl: bool, view: &View, now: Instant) -> Vec<Effect> {
        self.confirming = false;
        let name = view.attached.as_ref().map_or("corral", |a| a.instance.as_str()).to_string();
        match code {
            KeyCode::Char('c') if ctrl => self.quit(crate::core::QuitKey::CtrlC),
            KeyCode::Char('y' | 'Y') => {
                self.note(format!("shutting down {name}…"), now);
                vec![Effect::Send(UiRequest::Shutdown)]
            }
            _ => {
                self.note(format!("{name} keeps running"), now);
                vec![]
            }
        }
    }

    /// `e`, `m`, `Enter`: that view of the pane, or back to the output when it shows.
    fn switch(&mut self, mode: PaneMode) {
        self.mode = if self.mode == mode { PaneMode::Output } else { mode };
        self.scroll = 0;
    }

    /// Typing a message for a worker: Enter sends it when it is JSON, Esc gives up.
    fn compose(&mut self, key: KeyEvent, now: Instant) -> Vec<Effect> {
        let Some((worker, id, text)) = self.composing.as_mut() else { return vec![] };
        match key.code {
            KeyCode::Esc => self.composing = None,
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => text.push(c),
            KeyCode::Enter => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(message) => {
                    let (key, to) = (*worker, id.clone());
                    self.composing = None;
                    self.note(format!("sent to {to}"), now);
                    return vec![Effect::Send(UiRequest::Send { key, message })];
                }
                Err(e) => {
                    let why = format!("not JSON ({e}): \"ready\", 42, {{\"cmd\":\"x\"}} are");
                    self.note(why, now);
                }
            },
            _ => {}
        }
        vec![]
    }

    fn edit_filter(&mut self, key: KeyEvent) {
        let Some(text) = self.editing.as_mut() else { return };
        match key.code {
            KeyCode::Esc => {
                self.editing = None;
                self.filter.clear();
            }
            KeyCode::Enter => self.filter = self.editing.take().unwrap_or_default(),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => text.push(c),
            _ => {}
        }
        if let Some(text) = &self.editing {
            self.filter.clone_from(text); // filter as you type
        }
        self.scroll = 0;
    }

    /// The keys that act on workers: the request, or a notice saying why there is none.
    fn action(&mut self, c: char, view: &View, now: Instant) -> Vec<Effect> {
        let Some(w) = view.snapshot.workers.get(self.selected) else {
            self.note("no worker selected", now);
            return vec![];
        };
        if view.snapshot.shutting_down {
            self.note("shutting down: workers are no longer started or changed", now);
            return vec![];
        }
        let group = view.snapshot.groups.get(usize::from(w.key.group));
        let (name, workers) = group.map_or(("", 0), |g| (g.name.as_str(), g.workers));
        let action = match c {
            'x' if !has_process(w) => {
                let state = w.state.label();
                self.note(format!("{} is {state}: no process to kill", w.id), now);
                return vec![];
            }
            'x' => UserAction::Kill(w.key),
            'r' => UserAction::Restart(w.key),
            's' => UserAction::ToggleStop(w.key),
            'R' => {
                self.note(format!("rolling reload of {name}: one worker at a time"), now);
                UserAction::Reload(w.key.group)
            }
            '+' | '=' if workers >= MAX_WORKERS => {
                self.note(format!("{name} has {MAX_WORKERS} workers, the most there can be"), now);
                return vec![];
            }
            '+' | '=' => {
                self.note(format!("{name}: one worker more, {} in all", workers + 1), now);
                UserAction::ScaleUp(w.key.group)
            }
            _ if workers <= 1 => {
                let text = format!("{name} has one worker: - keeps it (s stops it)");
                self.note(text, now);
                return vec![];
            }
            _ => {
                // The highest-numbered worker goes (docs/supervision.md#scaling), whichever row is selected.
                let text = format!("{name}: one worker less, {} left", workers - 1);
                self.note(text, now);
                UserAction::ScaleDown(w.key.group)
            }
        };
        vec![Effect::Send(UiRequest::Action(action))]
    }
}

/// Whether the worker has a process now (one that `x` can kill).
fn has_process(w: &WorkerView) -> bool {
    match w.state {
        WorkerState::Starting
        | WorkerState::Running
        | WorkerState::Unready
        | WorkerState::Stopping => true,
        WorkerState::Backoff { .. }
        | WorkerState::Stopped
        | WorkerState::GaveUp
        | WorkerState::Failed { .. }
        | WorkerState::Waiting
        | WorkerState::Scheduled { .. } => w.pid.is_some(),
    }
}
