//! The footer: the keys, as many as fit, each whole (at 80 columns every key it names is
//! visible), or a notice, the filter being typed, or the shutdown in progress.

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::format::countdown;
use super::model::View;
use super::state::UiState;

/// The footer while `c` has given the mouse to the terminal.
pub const RELEASED: &str = " mouse released: select text to copy it · c takes the mouse back";

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
    // Not an action, but where there is room at 80 columns.
    ("c", "copy"),
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

/// Attached, `q` detaches: the hints say so.
fn detaching(hints: &[Hint], attached: bool) -> Vec<Hint> {
    let word =
        |&(key, word): &Hint| if attached && key == "q" { (key, "detach") } else { (key, word) };
    hints.iter().map(word).collect()
}

/// The key hints for a footer `cols` wide: one line if everything fits, else two, and
/// on a very narrow terminal only the few that matter most. Every key named is whole.
pub fn keys_lines(cols: usize, attached: bool) -> Vec<Line<'static>> {
    let (actions, views) = (detaching(ACTIONS, attached), detaching(VIEWS, attached));
    let all: Vec<Hint> = actions.iter().chain(&views).copied().collect();
    let mut lines = if width(&all) <= cols {
        vec![line(&all)]
    } else if width(&actions).max(width(&views)) <= cols {
        vec![line(&actions), line(&views)]
    } else {
        vec![line(&detaching(FEW, attached))]
    };
    if attached {
        // Where the keys act is worth a line of its own: `q` here leaves corral running.
        lines.insert(0, Line::default());
    }
    lines
}

/// The line an attached footer starts with.
fn attached_line(view: &View) -> Option<String> {
    let a = view.attached.as_ref()?;
    let name = crate::text::escape(&a.instance, true);
    Some(format!(" attached to {name} (pid {}) · q detach · Q shut {name} down", a.pid))
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
pub fn footer_height(cols: u16, attached: bool) -> u16 {
    keys_lines(usize::from(cols), attached).len() as u16
}

/// The footer: key hints; a notice, the filter being typed or the shutdown replace its
/// first line.
pub fn render_footer(frame: &mut Frame<'_>, area: Rect, view: &View, ui: &UiState, now: Instant) {
    let mut lines = keys_lines(usize::from(area.width), view.attached.is_some());
    let name = view.attached.as_ref().map(|a| crate::text::escape(&a.instance, true));
    if let Some(text) = attached_line(view) {
        lines[0] = Line::from(text);
    }
    let first = usize::from(view.attached.is_some());
    let message = if let Some(editing) = &ui.editing {
        let text = crate::text::escape(editing, true);
        Some(format!(" /{text}█   Enter keep · Esc clear"))
    } else if let Some((_, id, text)) = &ui.composing {
        let (id, text) = (crate::text::escape(id, true), crate::text::escape(text, true));
        Some(format!(" to {id} (JSON): {text}█   Enter send · Esc cancel"))
    } else if let (true, Some(name)) = (ui.confirming, &name) {
        Some(format!(" shut down {name} and all its workers? y/n"))
    } else if let (true, Some(name)) = (view.snapshot.shutting_down, &name) {
        Some(match view.snapshot.kill_in {
            Some(left) => format!(
                " {name} stopping: SIGKILL in {} · q detaches · Q, y again: kill everything",
                countdown(left)
            ),
            None => format!(
                " {name} is stopping every worker… q detaches · Q, y again: kill everything"
            ),
        })
    } else if view.snapshot.shutting_down {
        // The wait is the first thing a person stopping corral wants to know.
        Some(match view.snapshot.kill_in {
            Some(left) => format!(
                " stopping every worker: SIGKILL in {} · q or Ctrl-C again: kill now",
                countdown(left)
            ),
            None => {
                " stopping every worker gracefully… q or Ctrl-C again: kill everything now".into()
            }
        })
    } else {
        ui.notice
            .as_ref()
            .filter(|(_, at)| now.saturating_duration_since(*at) < NOTICE)
            .map(|(notice, _)| format!(" {notice}"))
            .or_else(|| ui.mouse_released.then(|| RELEASED.to_string()))
    };
    if let Some(message) = message
        && let Some(slot) = lines.get_mut(first)
    {
        *slot = Line::from(message);
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
            let lines = keys_lines(cols, false);
            for line in &lines {
                let shown = text(line);
                assert!(shown.chars().count() <= cols, "{cols}: {shown:?}");
            }
            let all: String = lines.iter().map(text).collect();
            assert!(all.contains("? help") && all.contains("q quit"), "{cols}: {all:?}");
        }
        let at_80: String = keys_lines(80, false).iter().map(text).collect();
        for (key, word) in ACTIONS.iter().chain(VIEWS) {
            assert!(at_80.contains(&format!("{key} {word}")), "{key} missing at 80: {at_80:?}");
        }
        assert_eq!(keys_lines(80, false).len(), 2);
        assert_eq!(keys_lines(200, false).len(), 1);
        let attached: String = keys_lines(200, true).iter().map(text).collect();
        assert!(attached.contains("q detach") && !attached.contains("quit"), "{attached:?}");
        assert_eq!(keys_lines(200, true).len(), 2, "one more for the attached line");
    }
}
