//! The dashboard's own state (selection, focus, pane mode, filter, help) and what keys and
//! the mouse do to it. Turns input into `UiRequest`s for the runtime; never touches a
//! process itself.

use std::time::Instant;

use ratatui::crossterm::event::{KeyCode, MouseEvent, MouseEventKind};

use super::groups::{TableLine, line_of, table_lines, worker_near};
use super::model::{PaneMode, PaneRequest, UiRequest, View};
use crate::core::WorkerKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Table,
    Pane,
}

/// Where things were drawn last frame, so a click can be mapped back to a row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hitboxes {
    /// Screen row of the table's first line, and how many lines are visible.
    pub table_top: u16,
    pub table_rows: u16,
    /// First table line drawn (the table scrolls); group header lines count.
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
    pub mode: PaneMode,
    pub filter: String,
    /// While typing after `/`.
    pub editing: Option<String>,
    /// While typing a message after `>` in the details: to whom (its id too), and the text.
    pub composing: Option<(crate::core::WorkerKey, String, String)>,
    /// Lines up from the tail; 0 follows it.
    pub scroll: usize,
    pub help: bool,
    pub pane_rows: usize,
    /// Characters of a line's text the pane shows.
    pub pane_cols: usize,
    pub hit: Hitboxes,
    /// A short note in the footer (what a key did, or why it could not), with when it was
    /// set.
    pub notice: Option<(String, Instant)>,
    pub quit_requested: bool,
    pub color: bool,
    /// Attached, after `Q`: the footer asks "shut down NAME? y/n" and the next key answers.
    pub confirming: bool,
    /// `c`: the mouse is the terminal's (its own selection and copy work), not ours.
    pub mouse_released: bool,
    /// The serial of the attached corral's last error the footer showed.
    seen_notice: u64,
}

/// What the UI thread does besides redrawing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Send(UiRequest),
    Suspend,
    /// Mouse capture on (`true`) or off, so the terminal's own selection works.
    Mouse(bool),
}

impl UiState {
    pub fn new(color: bool) -> UiState {
        UiState {
            selected: 0,
            focus: Focus::Table,
            all_workers: false,
            mode: PaneMode::Output,
            filter: String::new(),
            editing: None,
            composing: None,
            scroll: 0,
            help: false,
            pane_rows: 10,
            pane_cols: 80,
            hit: Hitboxes::default(),
            notice: None,
            quit_requested: false,
            color,
            confirming: false,
            mouse_released: false,
            seen_notice: 0,
        }
    }

    pub fn selected_key(&self, view: &View) -> Option<WorkerKey> {
        view.snapshot.workers.get(self.selected).map(|w| w.key)
    }

    /// What the pane should show, for the runtime.
    pub fn pane_request(&self, view: &View) -> PaneRequest {
        let one = match self.mode {
            PaneMode::Output | PaneMode::Events => !self.all_workers,
            // With `a` the metrics are the selected worker's group's: still its key.
            PaneMode::Metrics | PaneMode::Details => true,
        };
        PaneRequest {
            worker: if one { self.selected_key(view) } else { None },
            mode: self.mode,
            group: self.mode == PaneMode::Metrics && self.all_workers,
            filter: self.filter.clone(),
            rows: self.pane_rows,
            cols: self.pane_cols,
            scroll: self.scroll,
        }
    }

    /// Keeps the selection on a worker that exists after scaling.
    pub fn clamp(&mut self, view: &View) {
        let n = view.snapshot.workers.len();
        self.selected = self.selected.min(n.saturating_sub(1));
        self.scroll = self.scroll.min(view.pane.matching.saturating_sub(self.pane_rows));
    }

    /// A fresh view from an attached corral may carry an error one of our requests got: shown
    /// once, like the notice of a key.
    pub fn adopt_notice(&mut self, view: &View, now: Instant) {
        if let Some((serial, text)) = view.attached.as_ref().and_then(|a| a.notice.as_ref())
            && *serial != self.seen_notice
        {
            self.seen_notice = *serial;
            self.note(text.clone(), now);
        }
    }

    /// Shows `text` in the footer for a few seconds.
    pub fn note(&mut self, text: impl Into<String>, now: Instant) {
        self.notice = Some((text.into(), now));
    }

    pub(super) fn quit(&mut self, key: crate::core::QuitKey) -> Vec<Effect> {
        self.quit_requested = true;
        vec![Effect::Send(UiRequest::Quit(crate::core::ShutdownTrigger::Key(key)))]
    }

    /// Moves the selection (or scrolls the focused pane); false if `code` is no
    /// navigation key.
    pub(super) fn navigate(&mut self, code: KeyCode, view: &View) -> bool {
        let Some(step) = Step::of(code) else { return false };
        if self.focus == Focus::Pane {
            let max = view.pane.matching.saturating_sub(self.pane_rows);
            let page = self.pane_rows.max(1);
            // Scrolling goes up from the tail: `Up` is one more line back.
            self.scroll = match step {
                Step::Up => (self.scroll + 1).min(max),
                Step::Down => self.scroll.saturating_sub(1),
                Step::PageUp => (self.scroll + page).min(max),
                Step::PageDown => self.scroll.saturating_sub(page),
                Step::First => max,
                Step::Last => 0,
            };
            return true;
        }
        // Workers are listed group by group, so the next index is the next row below,
        // whatever group header lies between; a page is a page of lines, headers included.
        let last = view.snapshot.workers.len().saturating_sub(1);
        let page = usize::from(self.hit.table_rows.max(1));
        let lines = || table_lines(&view.snapshot);
        self.selected = match step {
            Step::Up => self.selected.saturating_sub(1),
            Step::Down => (self.selected + 1).min(last),
            Step::PageUp => {
                let lines = lines();
                let to = line_of(&lines, self.selected).saturating_sub(page);
                worker_near(&lines, to, true).unwrap_or(0)
            }
            Step::PageDown => {
                let lines = lines();
                let to = line_of(&lines, self.selected) + page;
                worker_near(&lines, to, false).unwrap_or(0)
            }
            Step::First => 0,
            Step::Last => last,
        };
        if !self.all_workers {
            self.scroll = 0;
        }
        true
    }

    pub fn on_mouse(&mut self, m: MouseEvent, view: &View) {
        let h = self.hit;
        match m.kind {
            MouseEventKind::Down(_) => {
                if m.row >= h.table_top && m.row < h.table_top + h.table_rows {
                    let at = h.table_offset + usize::from(m.row - h.table_top);
                    let lines = table_lines(&view.snapshot);
                    // A click on a group's header selects its first worker.
                    let clicked = match lines.get(at) {
                        Some(TableLine::Worker(i)) => Some(*i),
                        Some(TableLine::Group(_)) => worker_near(&lines, at, true),
                        None => None,
                    };
                    if let Some(index) = clicked {
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

/// A move of the selection or the pane.
#[derive(Clone, Copy)]
enum Step {
    Up,
    Down,
    PageUp,
    PageDown,
    First,
    Last,
}

impl Step {
    fn of(code: KeyCode) -> Option<Step> {
        Some(match code {
            KeyCode::Up | KeyCode::Char('k') => Step::Up,
            KeyCode::Down | KeyCode::Char('j') => Step::Down,
            KeyCode::PageUp => Step::PageUp,
            KeyCode::PageDown => Step::PageDown,
            KeyCode::Char('g') | KeyCode::Home => Step::First,
            KeyCode::Char('G') | KeyCode::End => Step::Last,
            _ => return None,
        })
    }
}
