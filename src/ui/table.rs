//! The worker table: one row per worker, the selected one marked, scrolled to keep the
//! selection visible; only the rows that show are built.

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Cell, Row, Table, TableState};

use super::format;
use super::model::View;
use super::render::{Palette, for_screen};
use super::state::{Focus, UiState};
use crate::core::{ExitReason, WorkerState, WorkerView};

/// How long a worker that just died stays highlighted.
pub const FLASH: Duration = Duration::from_secs(4);

const HEADER: [&str; 10] =
    ["ID", "PID", "STATE", "UPTIME", "RESTARTS", "LAST EXIT", "CPU", "MEM", "EV/S", "STATUS"];
/// The selection marker; it stays at every width (reverse video alone is lost on some
/// terminals and in screenshots).
const MARKER: &str = "▶ ";

fn recently_failed(w: &WorkerView, now: Instant) -> bool {
    w.last_exit.as_ref().is_some_and(|e| {
        let failure = !matches!(
            e.reason,
            ExitReason::Exited
                | ExitReason::Stopped
                | ExitReason::Shutdown
                | ExitReason::RestartedByUser
                | ExitReason::Reload
                | ExitReason::ScaledDown
        );
        failure && now.saturating_duration_since(e.at) < FLASH
    })
}

/// The first row drawn: last frame's, unless the selection left the visible rows.
fn scroll_offset(ui: &UiState, workers: usize, visible: usize) -> usize {
    let mut offset = ui.hit.table_offset.min(workers.saturating_sub(1));
    if ui.selected < offset {
        offset = ui.selected;
    } else if visible > 0 && ui.selected >= offset + visible {
        offset = ui.selected + 1 - visible;
    }
    offset
}

/// The texts of one row, in `HEADER` order.
fn cells(view: &View, i: usize, w: &WorkerView, narrow: bool) -> [String; 10] {
    let extra = view.extras.get(i).cloned().unwrap_or_default();
    let status = match &w.state {
        WorkerState::Failed { error, .. } => error.clone(),
        _ => extra.status.unwrap_or_default(),
    };
    let dash = || "-".to_string();
    [
        w.id.clone(),
        w.pid.map_or_else(dash, |p| p.to_string()),
        format::state(w),
        w.uptime.map_or_else(dash, format::uptime),
        w.restarts.to_string(),
        w.last_exit.as_ref().map_or_else(dash, |e| format::last_exit(e, narrow)),
        extra.cpu.map_or_else(dash, |c| format!("{c:.0}%")),
        extra.rss.map_or_else(dash, format::bytes),
        // A rate belongs to a run: a row without a process has none.
        if w.pid.is_some() { extra.events_per_sec.to_string() } else { dash() },
        for_screen(&status),
    ]
}

/// `text` cut to `width` characters, with `…` when something was cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn row_style(w: &WorkerView, pal: &Palette, now: Instant) -> (Style, Style) {
    let mut style = Style::new();
    if matches!(w.state, WorkerState::GaveUp) || w.crash_looping {
        style = pal.fg(Color::Red).add_modifier(Modifier::BOLD);
    }
    let flash = recently_failed(w, now);
    if flash {
        style = if pal.color {
            Style::new().bg(Color::Red).fg(Color::White).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        };
    }
    (style, if flash { style } else { pal.state(w) })
}

pub fn render_table(
    frame: &mut Frame<'_>,
    area: Rect,
    view: &View,
    ui: &mut UiState,
    pal: &Palette,
    now: Instant,
) {
    // Below 100 columns everything must still fit 80: short reason tags, and no EV/S
    // column (the header has the total, the metrics view each worker's rates).
    let narrow = area.width < 100;
    let columns: Vec<usize> = (0..10).filter(|&c| !(narrow && HEADER[c] == "EV/S")).collect();
    let visible = usize::from(area.height.saturating_sub(2));
    let offset = scroll_offset(ui, view.snapshot.workers.len(), visible);
    let shown: Vec<(usize, &WorkerView)> =
        view.snapshot.workers.iter().enumerate().skip(offset).take(visible.max(1)).collect();
    let texts: Vec<[String; 10]> = shown.iter().map(|&(i, w)| cells(view, i, w, narrow)).collect();
    let width_of = |c: usize| {
        let content = texts.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
        content.max(HEADER[c].len())
    };
    let fixed: Vec<usize> = columns[..columns.len() - 1].iter().map(|&c| width_of(c)).collect();
    let used = fixed.iter().sum::<usize>() + fixed.len() + MARKER.chars().count();
    let status_width = usize::from(area.width).saturating_sub(used).max(1);
    let mut widths: Vec<Constraint> = fixed.iter().map(|&w| Constraint::Length(w as u16)).collect();
    widths.push(Constraint::Fill(1));
    let rows = texts.into_iter().zip(&shown).map(|(mut text, &(_, w))| {
        let (style, state_style) = row_style(w, pal, now);
        text[9] = fit(&text[9], status_width);
        let row: Vec<Cell<'_>> = columns
            .iter()
            .map(|&c| {
                let cell = Cell::from(std::mem::take(&mut text[c]));
                if c == 2 { cell.style(state_style) } else { cell }
            })
            .collect();
        Row::new(row).style(style)
    });
    let focused = ui.focus == Focus::Table;
    let title = if focused { " workers ◆ " } else { " workers " };
    let header: Vec<&str> = columns.iter().map(|&c| HEADER[c]).collect();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::new().borders(Borders::TOP).title(title))
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol(MARKER);
    let selected = ui.selected.checked_sub(offset).filter(|&s| s < visible.max(1));
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
    ui.hit.table_top = area.y + 2;
    ui.hit.table_rows = area.height.saturating_sub(2);
    ui.hit.table_offset = offset;
}
