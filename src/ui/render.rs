//! Drawing one frame from a `View` and the UI state: a pure function of its inputs (plus
//! `now` for ages and countdowns), tested with ratatui's `TestBackend`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, TableState};

use super::format;
use super::model::{LineKind, View};
use super::state::{Focus, UiState};
use crate::core::{ExitReason, WorkerState, WorkerView};

/// Worker text for the screen: escapes visible, tabs expanded.
fn for_screen(text: &str) -> String {
    crate::text::escape(text, true)
}

/// How long a worker that just died stays highlighted.
pub const FLASH: Duration = Duration::from_secs(4);
/// How long a footer notice stays.
const NOTICE: Duration = Duration::from_secs(4);
/// Below this the layout cannot work; say so instead of drawing garbage.
pub const MIN_SIZE: (u16, u16) = (40, 10);

const KEYS: &[(&str, &str)] = &[
    ("↑↓ j k PgUp PgDn g G", "select a worker (or scroll the pane)"),
    ("x", "kill the selected worker now (SIGKILL: a crash)"),
    ("r", "restart the selected worker gracefully, now"),
    ("s", "stop the selected worker / start it again"),
    ("R", "rolling reload of the selected worker's group"),
    ("+ -", "one worker more / less in the group"),
    ("Tab", "move focus between the table and the output pane"),
    ("a", "output pane: selected worker / all workers"),
    ("e", "output pane: output lines / events"),
    ("/", "filter the output pane (Esc clears)"),
    ("?", "this help"),
    ("q Ctrl-C", "graceful shutdown; again: kill everything"),
    ("Ctrl-Z", "suspend corral (workers keep running)"),
];

struct Palette {
    color: bool,
}

impl Palette {
    fn fg(&self, c: Color) -> Style {
        if self.color { Style::new().fg(c) } else { Style::new() }
    }

    fn state(&self, w: &WorkerView) -> Style {
        let c = match w.state {
            WorkerState::Running => Color::Green,
            WorkerState::Starting => Color::Cyan,
            WorkerState::Stopping | WorkerState::Backoff { .. } => Color::Yellow,
            WorkerState::Stopped => Color::DarkGray,
            WorkerState::GaveUp | WorkerState::Failed { .. } => Color::Red,
        };
        if w.crash_looping { self.fg(Color::Red) } else { self.fg(c) }
    }
}

pub fn render(frame: &mut Frame<'_>, view: &View, ui: &mut UiState, now: Instant) {
    let area = frame.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let text = format!(
            "corral: terminal too small ({}×{}); needs {}×{}",
            area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
        );
        frame.render_widget(Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true }), area);
        return;
    }
    let pal = Palette { color: ui.color };
    let rows = u16::try_from(view.snapshot.workers.len()).unwrap_or(u16::MAX);
    let table_height = (rows + 2).min(area.height * 45 / 100).max(4);
    let [header, table, pane, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(table_height),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    render_header(frame, header, view, &pal);
    render_table(frame, table, view, ui, &pal, now);
    render_pane(frame, pane, view, ui, &pal);
    render_footer(frame, footer, view, ui, now);
    if ui.help {
        render_help(frame, area);
    }
}

fn render_header(frame: &mut Frame<'_>, area: Rect, view: &View, pal: &Palette) {
    let snap = &view.snapshot;
    let groups: Vec<String> =
        snap.groups.iter().map(|g| format!("{} {}/{} up", g.name, g.up, g.workers)).collect();
    let mut spans = vec![
        Span::styled(" corral ", pal.fg(Color::Cyan).add_modifier(Modifier::BOLD)),
        Span::raw(groups.join(" · ")),
        Span::raw(format!(" · restarts {}", snap.total_restarts)),
        Span::styled(
            format!(" · crashes/min {}", view.crashes_last_minute),
            if view.crashes_last_minute > 0 { pal.fg(Color::Red) } else { Style::new() },
        ),
        Span::raw(format!(" · events/s {}", view.events_per_sec)),
    ];
    if snap.shutting_down {
        spans.push(Span::styled(
            " · SHUTTING DOWN",
            pal.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    let spark_width = if area.width >= 110 { 30 } else { 0 };
    let [text, spark] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(spark_width)]).areas(area);
    frame.render_widget(Paragraph::new(Line::from(spans)), text);
    if spark_width > 0 {
        let [label, bars] =
            Layout::horizontal([Constraint::Length(12), Constraint::Min(0)]).areas(spark);
        frame.render_widget(Paragraph::new("crashes 60s "), label);
        let history = &view.crash_history;
        let shown = &history[history.len().saturating_sub(usize::from(bars.width))..];
        frame.render_widget(Sparkline::default().data(shown).style(pal.fg(Color::Red)), bars);
    }
}

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

fn render_table(
    frame: &mut Frame<'_>,
    area: Rect,
    view: &View,
    ui: &mut UiState,
    pal: &Palette,
    now: Instant,
) {
    let header =
        ["ID", "PID", "STATE", "UPTIME", "RESTARTS", "LAST EXIT", "CPU", "MEM", "EV/S", "STATUS"];
    // Below 100 columns every column must still fit 80: short reason tags, and the
    // selection shown by reverse video alone.
    let narrow = area.width < 100;
    // Keep the last frame's scroll position unless the selection left it, and build only
    // the rows that show: a thousand workers cost what a screenful does.
    let visible = usize::from(area.height.saturating_sub(2));
    let mut offset = ui.hit.table_offset.min(view.snapshot.workers.len().saturating_sub(1));
    if ui.selected < offset {
        offset = ui.selected;
    } else if visible > 0 && ui.selected >= offset + visible {
        offset = ui.selected + 1 - visible;
    }
    let shown = view.snapshot.workers.iter().enumerate().skip(offset).take(visible.max(1));
    let mut cells: Vec<[String; 10]> = Vec::with_capacity(visible);
    for (i, w) in shown.clone() {
        let extra = view.extras.get(i).cloned().unwrap_or_default();
        let status = match &w.state {
            WorkerState::Failed { error, .. } => error.clone(),
            _ => extra.status.unwrap_or_default(),
        };
        cells.push([
            w.id.clone(),
            w.pid.map_or_else(|| "-".into(), |p| p.to_string()),
            format::state(w),
            w.uptime.map_or_else(|| "-".into(), format::uptime),
            w.restarts.to_string(),
            w.last_exit.as_ref().map_or_else(|| "-".into(), |e| format::last_exit(e, narrow)),
            extra.cpu.map_or_else(|| "-".into(), |c| format!("{c:.0}%")),
            extra.rss.map_or_else(|| "-".into(), format::bytes),
            extra.events_per_sec.to_string(),
            for_screen(&status),
        ]);
    }
    let mut widths: Vec<Constraint> = (0..9)
        .map(|c| {
            let content = cells.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
            Constraint::Length(content.max(header[c].len()) as u16)
        })
        .collect();
    widths.push(Constraint::Fill(1));
    let rows = cells.into_iter().zip(shown.map(|(_, w)| w)).map(|(c, w)| {
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
        let state_style = if flash { style } else { pal.state(w) };
        let [id, pid, state, up, restarts, last, cpu, mem, ev, status] = c;
        Row::new(vec![
            Cell::from(id),
            Cell::from(pid),
            Cell::from(state).style(state_style),
            Cell::from(up),
            Cell::from(restarts),
            Cell::from(last),
            Cell::from(cpu),
            Cell::from(mem),
            Cell::from(ev),
            Cell::from(status),
        ])
        .style(style)
    });
    let focused = ui.focus == Focus::Table;
    let block = Block::new().borders(Borders::TOP).title(if focused {
        " workers ◆ "
    } else {
        " workers "
    });
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(block)
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol(if narrow { "" } else { "▶ " });
    let selected = ui.selected.checked_sub(offset).filter(|&s| s < visible.max(1));
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
    ui.hit.table_top = area.y + 2;
    ui.hit.table_rows = area.height.saturating_sub(2);
    ui.hit.table_offset = offset;
}

fn render_pane(frame: &mut Frame<'_>, area: Rect, view: &View, ui: &mut UiState, pal: &Palette) {
    let who = match (ui.all_workers, ui.selected_key(view)) {
        (true, _) | (false, None) => "all workers".to_string(),
        (false, Some(_)) => {
            view.snapshot.workers.get(ui.selected).map(|w| w.id.clone()).unwrap_or_default()
        }
    };
    let what = if ui.events { "events" } else { "output" };
    let follow = if ui.scroll == 0 { "following".to_string() } else { format!("{} up", ui.scroll) };
    let mut title = format!(" {what} · {who} · {follow} ");
    if !ui.filter.is_empty() {
        let _ = write!(title, "· filter \"{}\" ", for_screen(&ui.filter));
    }
    if ui.focus == Focus::Pane {
        title.push_str("◆ ");
    }
    let block = Block::new().borders(Borders::TOP).title(title);
    let inner = block.inner(area);
    ui.pane_rows = usize::from(inner.height);
    ui.hit.pane_top = inner.y;
    ui.hit.pane_bottom = inner.y + inner.height;
    let show_id = ui.all_workers;
    let lines: Vec<Line<'_>> = view
        .pane
        .lines
        .iter()
        .map(|l| {
            let ts = humantime::format_rfc3339_seconds(l.at).to_string();
            let clock = ts.get(11..19).unwrap_or("").to_string();
            let (mark, style) = match l.kind {
                LineKind::Stdout => ("|", Style::new()),
                LineKind::Stderr => ("!", pal.fg(Color::LightRed)),
                LineKind::Event => ("»", pal.fg(Color::Cyan)),
            };
            let mut spans = vec![Span::styled(clock, pal.fg(Color::DarkGray)), Span::raw(" ")];
            if show_id {
                spans.push(Span::styled(format!("{} ", l.id), pal.fg(Color::LightBlue)));
            }
            spans.push(Span::styled(format!("{mark} "), style));
            spans.push(Span::styled(for_screen(&l.text), style));
            Line::from(spans)
        })
        .collect();
    frame.render_widget(block, area);
    let empty = lines.is_empty();
    frame.render_widget(Paragraph::new(lines), inner);
    if empty {
        let note = if ui.filter.is_empty() { "(nothing yet)" } else { "(no line matches)" };
        frame.render_widget(Paragraph::new(note).style(pal.fg(Color::DarkGray)), inner);
    }
}

fn render_footer(frame: &mut Frame<'_>, area: Rect, view: &View, ui: &UiState, now: Instant) {
    let text = if let Some(editing) = &ui.editing {
        format!(" /{}█   Enter keep · Esc clear", for_screen(editing))
    } else if view.snapshot.shutting_down {
        " stopping every worker gracefully… q or Ctrl-C again: kill everything now".to_string()
    } else if let Some((notice, at)) =
        ui.notice.as_ref().filter(|(_, at)| now.duration_since(*at) < NOTICE)
    {
        let _ = at;
        format!(" {notice}")
    } else {
        " ↑↓ select  x kill  r restart  s stop/start  +/- scale  Tab pane  a all  e events  / filter  ? help  q quit"
            .to_string()
    };
    let style = Style::new().add_modifier(Modifier::REVERSED);
    frame.render_widget(Paragraph::new(text).style(style), area);
}

fn render_help(frame: &mut Frame<'_>, area: Rect) {
    let width = area.width.min(76);
    let height = (KEYS.len() as u16 + 4).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line<'_>> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!(" {k:<22}"), Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(*what),
            ])
        })
        .collect();
    let block = Block::bordered().title(" keys ").title_alignment(Alignment::Center);
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
