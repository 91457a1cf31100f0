//! The pane under the table: the selected worker's (or every worker's) output lines or
//! events, its metrics, or its details.

use std::fmt::Write as _;
use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::details::render_details;
use super::metrics::render_metrics;
use super::model::{LineKind, PaneLine, PaneMode, View};
use super::render::{Palette, for_screen};
use super::state::{Focus, UiState};

fn title(view: &View, ui: &UiState) -> String {
    let selected = view.snapshot.workers.get(ui.selected);
    let who = match (ui.mode, ui.all_workers, selected) {
        (PaneMode::Details, _, Some(w)) | (_, false, Some(w)) => w.id.clone(),
        (PaneMode::Metrics, true, Some(_)) => {
            view.metrics.as_ref().map_or_else(String::new, |m| m.who.clone())
        }
        _ => "all workers".to_string(),
    };
    let mut title = match ui.mode {
        PaneMode::Output | PaneMode::Events => {
            let what = if ui.mode == PaneMode::Events { "events" } else { "output" };
            let follow =
                if ui.scroll == 0 { "following".to_string() } else { format!("{} up", ui.scroll) };
            format!(" {what} · {who} · {follow} ")
        }
        PaneMode::Metrics => format!(" metrics · {who} · last 5 min · m or Esc: back "),
        PaneMode::Details => format!(" details · {who} · Enter or Esc: back "),
    };
    if !ui.filter.is_empty() && matches!(ui.mode, PaneMode::Output | PaneMode::Events) {
        let _ = write!(title, "· filter \"{}\" ", for_screen(&ui.filter));
    }
    if ui.focus == Focus::Pane {
        title.push_str("◆ ");
    }
    title
}

/// `id_width`: the ids' column, as wide as the longest id (0: no ids shown).
fn line<'a>(l: &'a PaneLine, id_width: usize, pal: &Palette) -> Line<'a> {
    let ts = humantime::format_rfc3339_seconds(l.at).to_string();
    let clock = ts.get(11..19).unwrap_or("").to_string();
    let (mark, style) = match l.kind {
        LineKind::Stdout => ("|", ratatui::style::Style::new()),
        LineKind::Stderr => ("!", pal.fg(Color::LightRed)),
        LineKind::Event => ("»", pal.fg(Color::Cyan)),
        LineKind::Supervisor => ("◆", pal.fg(Color::Magenta).add_modifier(Modifier::BOLD)),
    };
    let mut spans = vec![Span::styled(clock, pal.fg(Color::DarkGray)), Span::raw(" ")];
    if id_width > 0 {
        spans.push(Span::styled(format!("{:<id_width$} ", l.id), pal.fg(Color::LightBlue)));
    }
    spans.push(Span::styled(format!("{mark} "), style));
    if l.kind == LineKind::Supervisor {
        // Words, not only colour, tell corral's lines from the worker's.
        spans.push(Span::styled("corral: ", style));
    }
    // The worker's colours over the line's own style (stderr's red).
    super::colour::spans(&l.text, style, pal.color, &mut spans);
    Line::from(spans)
}

pub fn render_pane(
    frame: &mut Frame<'_>,
    area: Rect,
    view: &View,
    ui: &mut UiState,
    pal: &Palette,
    now: Instant,
) {
    // Released for copying, the pane has no border line: a selection takes lines only.
    let block = if ui.mouse_released {
        Block::new()
    } else {
        Block::new().borders(Borders::TOP).title(title(view, ui))
    };
    let inner = block.inner(area);
    ui.pane_rows = usize::from(inner.height);
    // The text's width after a line's `12:00:00 | `: what the workers' terminals get.
    ui.pane_cols = usize::from(inner.width).saturating_sub(11);
    ui.hit.pane_top = inner.y;
    ui.hit.pane_bottom = inner.y + inner.height;
    frame.render_widget(block, area);
    match ui.mode {
        PaneMode::Metrics => return render_metrics(frame, inner, view.metrics.as_ref(), pal),
        PaneMode::Details => {
            return render_details(frame, inner, view.details.as_ref(), pal, now);
        }
        PaneMode::Output | PaneMode::Events => {}
    }
    // The width of every id there is, not only of the lines shown: the text column stays
    // put as lines of `web.2` and `queue.12` scroll by.
    let id_width = if ui.all_workers {
        let ids = view.snapshot.workers.iter().map(|w| w.id.chars().count());
        ids.chain(view.pane.lines.iter().map(|l| l.id.chars().count())).max().unwrap_or(0)
    } else {
        0
    };
    let lines: Vec<Line<'_>> = view.pane.lines.iter().map(|l| line(l, id_width, pal)).collect();
    let empty = lines.is_empty();
    frame.render_widget(Paragraph::new(lines), inner);
    if empty {
        let note = if ui.filter.is_empty() { "(nothing yet)" } else { "(no line matches)" };
        frame.render_widget(Paragraph::new(note).style(pal.fg(Color::DarkGray)), inner);
    }
}
