//! The footer: the keys, as many as fit, each whole (at 80 columns every key it names is
//! visible), or a notice, the filter being typed, or the shutdown in progress.

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::model::View;
use super::state::UiState;

/// How long a footer notice stays.
pub const NOTICE: Duration = Duration::from_secs(4);

/// A key and its word.
type Hint = (&'static str, &'static str);

/// What acts on workers, then what changes the view: one line each when they do not fit
/// on one together.
const ACTIONS: &[Hint] = &[
    ("↑↓", "select"),
    ("x", "kill"),
    ("r", "restart"),
    ("s", "stop/start"),
    ("+-", "scale"),
    ("R", "reload"),
];
const VIEWS: &[Hint] = &[
    ("Tab", "focus"),
    ("a", "all"),
    ("e", "events"),
    ("m", "metrics"),
    ("⏎", "details"),
    ("/", "filter"),
    ("?", "help"),
    ("q", "quit"),
];
/// What is left when even two lines are too narrow: the help lists the rest.
const FEW: &[Hint] = &[("x", "kill"), ("?", "help"), ("q", "quit")];

fn width(hints: &[Hint]) -> usize {
    let words: usize = hints.iter().map(|(k, w)| k.chars().count() + 1 + w.chars().count()).sum();
    1 + words + 2 * hints.len().saturating_sub(1)
}

/// The key hints for a footer `cols` wide: one line if everything fits, else two, and
/// on a very narrow terminal only the few that matter most. Every key named is whole.
pub fn keys_lines(cols: usize) -> Vec<Line<'static>> {
    let all: Vec<Hint> = ACTIONS.iter().chain(VIEWS).copied().collect();
    if width(&all) <= cols {
        vec![line(&all)]
    } else if width(ACTIONS).max(width(VIEWS)) <= cols {
        vec![line(ACTIONS), line(VIEWS)]
    } else {
        vec![line(FEW)]
    }
}

/// Keys in bold, words plain.
fn line(hints: &[Hint]) -> Line<'static> {
    let mut spans = vec![Span::raw(" ")];
    for (i, (key, word)) in hints.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(*key, Style::new().add_modifier(Modifier::BOLD)));
        spans.push(Span::raw(format!(" {word}")));
    }
    Line::from(spans)
}

/// How many rows the footer takes at this width.
pub fn footer_height(cols: u16) -> u16 {
    keys_lines(usize::from(cols)).len() as u16
}

/// The footer: key hints; a notice, the filter being typed or the shutdown replace its
/// first line.
pub fn render_footer(frame: &mut Frame<'_>, area: Rect, view: &View, ui: &UiState, now: Instant) {
    let mut lines = keys_lines(usize::from(area.width));
    let message = if let Some(editing) = &ui.editing {
        let text = crate::text::escape(editing, true);
        Some(format!(" /{text}█   Enter keep · Esc clear"))
    } else if view.snapshot.shutting_down {
        Some(" stopping every worker gracefully… q or Ctrl-C again: kill everything now".into())
    } else {
        ui.notice
            .as_ref()
            .filter(|(_, at)| now.saturating_duration_since(*at) < NOTICE)
            .map(|(notice, _)| format!(" {notice}"))
    };
    if let Some(message) = message {
        lines[0] = Line::from(message);
    }
    let style = Style::new().add_modifier(Modifier::REVERSED);
    frame.render_widget(Paragraph::new(lines).style(style), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &Line<'_>) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn every_named_key_fits_whole_at_any_width() {
        for cols in 24..=220 {
            let lines = keys_lines(cols);
            for line in &lines {
                let shown = text(line);
                assert!(shown.chars().count() <= cols, "{cols}: {shown:?}");
            }
            let all: String = lines.iter().map(text).collect();
            assert!(all.contains("? help") && all.contains("q quit"), "{cols}: {all:?}");
        }
        let at_80: String = keys_lines(80).iter().map(text).collect();
        for (key, word) in ACTIONS.iter().chain(VIEWS) {
            assert!(at_80.contains(&format!("{key} {word}")), "{key} missing at 80: {at_80:?}");
        }
        assert_eq!(keys_lines(80).len(), 2);
        assert_eq!(keys_lines(200).len(), 1);
    }
}
