//! The worker table: one row per worker (under its group's header line when there are
//! several groups), the selected one marked, scrolled to keep the selection visible; only
//! the rows that show are built.

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};

use super::format;
use super::groups::{TableLine, line_of, summary, table_lines};
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

/// The first line drawn: last frame's, unless the selected line `at` left the visible
/// lines, or lines went away and there is room to show more.
fn scroll_offset(ui: &UiState, lines: &[TableLine], at: usize, visible: usize) -> usize {
    let mut offset = ui.hit.table_offset.min(lines.len().saturating_sub(visible.max(1)));
    // Scrolling up to the first row of a group brings its header into view with it.
    let top = match at.checked_sub(1).map(|above| lines[above]) {
        Some(TableLine::Group(_)) => at - 1,
        Some(TableLine::Worker(_)) | None => at,
    };
    if top < offset {
        offset = top;
    } else if visible > 0 && at >= offset + visible {
        offset = at + 1 - visible;
    }
    offset
}

/// A group's header line: its name, then `3/4 up · restarts 2`, then what is under way.
fn group_line<'a>(view: &View, index: usize, pal: &Palette) -> Line<'a> {
    let Some(group) = view.snapshot.groups.get(index) else { return Line::default() };
    let s = summary(&view.snapshot, index, group);
    let mut spans = vec![
        Span::styled(
            format!(" {}", for_screen(&group.name)),
            pal.fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("  {}", s.counts)),
    ];
    for what in s.under_way {
        spans.push(Span::styled(format!(" · {what}"), pal.fg(Color::Yellow)));
    }
    Line::from(spans)
}

/// The texts of one row, in `HEADER` order.
fn cells(view: &View, i: usize, w: &WorkerView, narrow: bool) -> [String; 10] {
    let extra = view.extras.get(i).cloned().unwrap_or_default();
    let status = match &w.state {
        WorkerState::Failed { error, .. } => error.clone(),
        _ => extra.status.unwrap_or_default(),
    };
    let dash = || "-".to_string();
    // Between runs of a schedule the column counts down to the next one instead.
    let uptime = match &w.state {
        WorkerState::Scheduled { left: Some(left) } => format!("in {}", format::uptime(*left)),
        _ => w.uptime.map_or_else(dash, format::uptime),
    };
    [
        w.id.clone(),
        w.pid.map_or_else(dash, |p| p.to_string()),
        format::state(w),
        uptime,
        w.restarts.to_string(),
        w.last_exit.as_ref().map_or_else(dash, |e| format::last_exit(e, narrow)),
        extra.cpu.map_or_else(dash, |c| format!("{c:.0}%")),
        extra.rss.map_or_else(dash, format::bytes),
        // A rate belongs to a run: a row without a process has none.
        if w.pid.is_some() { extra.events_per_sec.to_string() } else { dash() },
        // A status's colours are not the table's: its text without them.
        for_screen(&crate::ansi::strip(&status)),
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

/// The texts of the lines shown: a worker row's cells, `None` for a group's header line.
type Texts<'v> = Vec<Option<(&'v WorkerView, [String; 10])>>;

/// The width of each column but the last (STATUS), and what is left for STATUS.
fn widths(view: &View, texts: &Texts<'_>, columns: &[usize], width: u16) -> (Vec<usize>, usize) {
    // Ids over every worker, not only the rows shown: the column keeps its width when the
    // table scrolls from `web.2` to `queue.12`.
    let id_width = view.snapshot.workers.iter().map(|w| w.id.chars().count()).max();
    let width_of = |c: usize| {
        let content = match (c, id_width) {
            (0, Some(ids)) => ids,
            _ => texts.iter().flatten().map(|(_, r)| r[c].chars().count()).max().unwrap_or(0),
        };
        content.max(HEADER[c].len())
    };
    let fixed: Vec<usize> = columns[..columns.len() - 1].iter().map(|&c| width_of(c)).collect();
    let used = fixed.iter().sum::<usize>() + fixed.len() + MARKER.chars().count();
    let status_width = usize::from(width).saturating_sub(used).max(1);
    (fixed, status_width)
}

/// One worker's row, or an empty one where a group's header line is drawn later.
fn row<'a>(
    text: Option<(&WorkerView, [String; 10])>,
    columns: &[usize],
    status_width: usize,
    pal: &Palette,
    now: Instant,
) -> Row<'a> {
    let Some((w, mut text)) = text else { return Row::new(Vec::<Cell<'a>>::new()) };
    let (style, state_style) = row_style(w, pal, now);
    text[9] = fit(&text[9], status_width);
    let cells: Vec<Cell<'a>> = columns
        .iter()
        .map(|&c| {
            let cell = Cell::from(std::mem::take(&mut text[c]));
            if c == 2 { cell.style(state_style) } else { cell }
        })
        .collect();
    Row::new(cells).style(style)
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
    let lines = table_lines(&view.snapshot);
    let at = line_of(&lines, ui.selected);
    let offset = scroll_offset(ui, &lines, at, visible);
    let shown: Vec<TableLine> = lines.iter().copied().skip(offset).take(visible.max(1)).collect();
    let texts: Texts<'_> = shown
        .iter()
        .map(|line| match *line {
            TableLine::Worker(i) => {
                view.snapshot.workers.get(i).map(|w| (w, cells(view, i, w, narrow)))
            }
            TableLine::Group(_) => None,
        })
        .collect();
    let (fixed, status_width) = widths(view, &texts, &columns, area.width);
    let mut widths: Vec<Constraint> = fixed.iter().map(|&w| Constraint::Length(w as u16)).collect();
    widths.push(Constraint::Fill(1));
    let rows: Vec<Row<'_>> =
        texts.into_iter().map(|t| row(t, &columns, status_width, pal, now)).collect();
    let focused = ui.focus == Focus::Table;
    let title = if focused { " workers ◆ " } else { " workers " };
    let header: Vec<&str> = columns.iter().map(|&c| HEADER[c]).collect();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::new().borders(Borders::TOP).title(title))
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol(MARKER);
    let selected =
        at.checked_sub(offset).filter(|&s| s < visible.max(1) && !view.snapshot.workers.is_empty());
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
    // Header lines span the columns, which a table row cannot: drawn over their rows.
    for (y, line) in (area.y + 2..area.y + area.height).zip(&shown) {
        if let TableLine::Group(g) = *line {
            let at = Rect { y, height: 1, ..area };
            frame.render_widget(Paragraph::new(group_line(view, g, pal)), at);
        }
    }
    ui.hit.table_top = area.y + 2;
    ui.hit.table_rows = area.height.saturating_sub(2);
    ui.hit.table_offset = offset;
}
