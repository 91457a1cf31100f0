//! The dashboard's own state (selection, focus, pane mode, filter, help) and what keys and
//! the mouse do to it. Turns input into `UiRequest`s for the runtime; never touches a
//! process itself.

use std::time::Instant;

use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind,
};

use super::model::{PaneRequest, UiRequest, View};
use crate::core::{UserAction, WorkerKey};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Table,
    Pane,
}

/// Where things were drawn last frame, so a click can be mapped back to a row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hitboxes {
    /// Screen row of the first worker row, and how many rows are visible.
    pub table_top: u16,
    pub table_rows: u16,
    /// First worker index drawn (the table scrolls).
    pub table_offset: usize,
    pub pane_top: u16,
    pub pane_bottom: u16,
}

#[derive(Clone, Debug)]
pub struct UiState {
    /// Index into `snapshot.workers`.
    pub selected: usize,
    pub focus: Focus,
    pub all_workers: bool,
    pub events: bool,
    pub filter: String,
    /// While typing after `/`.
    pub editing: Option<String>,
    /// Lines up from the tail; 0 follows it.
    pub scroll: usize,
    pub help: bool,
    pub pane_rows: usize,
    pub hit: Hitboxes,
    /// A short note in the footer (`R` before reloads exist), with when it was set.
    pub notice: Option<(String, Instant)>,
    pub quit_requested: bool,
    pub color: bool,
}

/// What the UI thread does besides redrawing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Send(UiRequest),
    Suspend,
}

impl UiState {
    pub fn new(color: bool) -> UiState {
        UiState {
            selected: 0,
            focus: Focus::Table,
            all_workers: false,
            events: false,
            filter: String::new(),
            editing: None,
            scroll: 0,
            help: false,
            pane_rows: 10,
            hit: Hitboxes::default(),
            notice: None,
            quit_requested: false,
            color,
        }
    }

    pub fn selected_key(&self, view: &View) -> Option<WorkerKey> {
        view.snapshot.workers.get(self.selected).map(|w| w.key)
    }

    /// What the pane should show, for the runtime.
    pub fn pane_request(&self, view: &View) -> PaneRequest {
        PaneRequest {
            worker: if self.all_workers { None } else { self.selected_key(view) },
            events: self.events,
            filter: self.filter.clone(),
            rows: self.pane_rows,
            scroll: self.scroll,
        }
    }

    /// Keeps the selection on a worker that exists after scaling.
    pub fn clamp(&mut self, view: &View) {
        let n = view.snapshot.workers.len();
        self.selected = self.selected.min(n.saturating_sub(1));
        self.scroll = self.scroll.min(view.pane.matching.saturating_sub(self.pane_rows));
    }

    pub fn on_key(&mut self, key: KeyEvent, view: &View, now: Instant) -> Vec<Effect> {
        if key.kind == KeyEventKind::Release {
            return vec![];
        }
        if let Some(text) = self.editing.as_mut() {
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
            return vec![];
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let selected = self.selected_key(view);
        let act = |a: UserAction| vec![Effect::Send(UiRequest::Action(a))];
        match key.code {
            KeyCode::Char('c') if ctrl => self.quit("Ctrl-C"),
            KeyCode::Char('z') if ctrl => vec![Effect::Suspend],
            KeyCode::Char('q') => self.quit("q"),
            KeyCode::Char('?') => {
                self.help = !self.help;
                vec![]
            }
            KeyCode::Esc => {
                self.help = false;
                self.filter.clear();
                vec![]
            }
            _ if self.help => {
                self.help = false;
                vec![]
            }
            KeyCode::Char('x') => selected.map_or_else(Vec::new, |k| act(UserAction::Kill(k))),
            KeyCode::Char('r') => selected.map_or_else(Vec::new, |k| act(UserAction::Restart(k))),
            KeyCode::Char('s') => {
                selected.map_or_else(Vec::new, |k| act(UserAction::ToggleStop(k)))
            }
            KeyCode::Char('+' | '=') => {
                selected.map_or_else(Vec::new, |k| act(UserAction::ScaleUp(k.group)))
            }
            KeyCode::Char('-' | '_') => {
                selected.map_or_else(Vec::new, |k| act(UserAction::ScaleDown(k.group)))
            }
            KeyCode::Char('R') => {
                let Some(k) = selected else { return vec![] };
                let group = view.snapshot.groups.get(usize::from(k.group)).map_or("", |g| &g.name);
                let text = format!("rolling reload of {group}: one worker at a time");
                self.notice = Some((text, now));
                act(UserAction::Reload(k.group))
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
            KeyCode::Char('e') => {
                self.events = !self.events;
                self.scroll = 0;
                vec![]
            }
            KeyCode::Char('/') => {
                self.editing = Some(String::new());
                vec![]
            }
            code => {
                self.navigate(code, view);
                vec![]
            }
        }
    }

    fn quit(&mut self, how: &str) -> Vec<Effect> {
        self.quit_requested = true;
        vec![Effect::Send(UiRequest::Quit(how.to_string()))]
    }

    fn navigate(&mut self, code: KeyCode, view: &View) {
        let n = view.snapshot.workers.len();
        let page = self.pane_rows.max(1);
        if self.focus == Focus::Pane {
            let max = view.pane.matching.saturating_sub(self.pane_rows);
            self.scroll = match code {
                KeyCode::Up | KeyCode::Char('k') => (self.scroll + 1).min(max),
                KeyCode::Down | KeyCode::Char('j') => self.scroll.saturating_sub(1),
                KeyCode::PageUp => (self.scroll + page).min(max),
                KeyCode::PageDown => self.scroll.saturating_sub(page),
                KeyCode::Char('g') | KeyCode::Home => max,
                KeyCode::Char('G') | KeyCode::End => 0,
                _ => self.scroll,
            };
            return;
        }
        let last = n.saturating_sub(1);
        let table_page = usize::from(self.hit.table_rows.max(1));
        self.selected = match code {
            KeyCode::Up | KeyCode::Char('k') => self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => (self.selected + 1).min(last),
            KeyCode::PageUp => self.selected.saturating_sub(table_page),
            KeyCode::PageDown => (self.selected + table_page).min(last),
            KeyCode::Char('g') | KeyCode::Home => 0,
            KeyCode::Char('G') | KeyCode::End => last,
            _ => self.selected,
        };
        if !self.all_workers {
            self.scroll = 0;
        }
    }

    pub fn on_mouse(&mut self, m: MouseEvent, view: &View) {
        let h = self.hit;
        match m.kind {
            MouseEventKind::Down(_) => {
                if m.row >= h.table_top && m.row < h.table_top + h.table_rows {
                    let index = h.table_offset + usize::from(m.row - h.table_top);
                    if index < view.snapshot.workers.len() {
                        self.selected = index;
                        self.focus = Focus::Table;
                        if !self.all_workers {
                            self.scroll = 0;
                        }
                    }
                } else if m.row >= h.pane_top && m.row < h.pane_bottom {
                    self.focus = Focus::Pane;
                }
            }
            MouseEventKind::ScrollUp => {
                let max = view.pane.matching.saturating_sub(self.pane_rows);
                self.scroll = (self.scroll + 3).min(max);
            }
            MouseEventKind::ScrollDown => self.scroll = self.scroll.saturating_sub(3),
            _ => {}
        }
    }
}
