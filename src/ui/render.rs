//! Drawing one frame from a `View` and the UI state: a pure function of its inputs (plus
//! `now` for ages and countdowns), tested with ratatui's `TestBackend`.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Sparkline, SparklineBar};

use super::footer::{footer_height, render_footer};
use super::model::View;
use super::pane::render_pane;
use super::state::UiState;
use super::table::render_table;
use crate::core::{WorkerState, WorkerView};

/// Worker text for the screen: escapes visible, tabs expanded.
pub fn for_screen(text: &str) -> String {
    crate::text::escape(text, true)
}

/// Below this the layout cannot work; say so instead of drawing garbage.
pub const MIN_SIZE: (u16, u16) = (40, 10);

const KEYS: &[(&str, &str)] = &[
    ("↑↓ j k PgUp PgDn g G", "select a worker (or scroll the pane)"),
    ("x", "kill the selected worker now (SIGKILL: a crash)"),
    ("r", "restart the selected worker gracefully, now"),
    ("s", "stop the selected worker / start it again"),
    ("R", "rolling reload of the selected worker's group"),
    ("+ -", "one worker more / less in the selected row's group"),
    ("Tab", "move focus between the table and the output pane"),
    ("a", "pane: selected worker / all workers (its group)"),
    ("e", "pane: output lines / events"),
    ("m", "pane: metrics, charted over 5 minutes"),
    ("Enter", "pane: details of the selected worker"),
    (">", "details: send the worker a JSON message (Node)"),
    ("/", "filter the output pane (Esc clears)"),
    ("c", "release the mouse to select text; c takes it back"),
    ("Esc", "back to the output; clears the filter"),
    ("?", "this help"),
    ("q Ctrl-C", "graceful shutdown; again: kill everything"),
    ("Ctrl-Z", "suspend corral (workers keep running)"),
];

pub struct Palette {
    pub color: bool,
}

impl Palette {
    pub fn fg(&self, c: Color) -> Style {
        if self.color { Style::new().fg(c) } else { Style::new() }
    }

    pub fn state(&self, w: &WorkerView) -> Style {
        let c = match w.state {
            WorkerState::Running => Color::Green,
            WorkerState::Starting => Color::Cyan,
            WorkerState::Stopping | WorkerState::Backoff { .. } | WorkerState::Unready => {
                Color::Yellow
            }
            WorkerState::Stopped => Color::DarkGray,
            WorkerState::Waiting | WorkerState::Scheduled { .. } => Color::Blue,
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
    let lines = super::groups::table_lines(&view.snapshot).len();
    let rows = u16::try_from(lines).unwrap_or(u16::MAX);
    let table_height = (rows.saturating_add(2)).min(area.height * 45 / 100).max(4);
    let [header, table, pane, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(table_height),
        Constraint::Min(3),
        Constraint::Length(footer_height(area.width, view.attached.is_some())),
    ])
    .areas(area);
    render_header(frame, header, view, &pal);
    render_table(frame, table, view, ui, &pal, now);
    render_pane(frame, pane, view, ui, &pal, now);
    render_footer(frame, footer, view, ui, now);
    if ui.help {
        render_help(frame, area, view.attached.is_some());
    }
}

fn render_header(frame: &mut Frame<'_>, area: Rect, view: &View, pal: &Palette) {
    let snap = &view.snapshot;
    // Several groups each have a header line in the table; this line adds them up.
    let groups = match snap.groups.as_slice() {
        [] => String::new(),
        [one] => format!("{} {}/{} up", for_screen(&one.name), one.up, one.workers),
        many => {
            let up: u32 = many.iter().map(|g| g.up).sum();
            let workers: u32 = many.iter().map(|g| g.workers).sum();
            format!("{} groups {up}/{workers} up", many.len())
        }
    };
    let mut spans = vec![
        Span::styled(" corral ", pal.fg(Color::Cyan).add_modifier(Modifier::BOLD)),
        Span::raw(groups),
        Span::raw(format!(" · restarts {}", snap.total_restarts)),
        Span::raw(format!(" · events/s {}", view.events_per_sec)),
    ];
    if snap.shutting_down {
        spans.push(Span::styled(
            " · SHUTTING DOWN",
            pal.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    let crash_style = if view.crashes_last_minute > 0 { pal.fg(Color::Red) } else { Style::new() };
    spans.push(Span::styled(format!(" · crashes/min {}", view.crashes_last_minute), crash_style));
    let line = Line::from(spans);
    let used = u16::try_from(line.width()).unwrap_or(u16::MAX);
    frame.render_widget(Paragraph::new(line), area);
    // The minute's sparkline follows the count, in what room is left.
    let spark = Rect { x: area.x + used + 1, width: area.width.saturating_sub(used + 1), ..area };
    render_crash_spark(frame, spark, &view.crash_history, pal);
}

/// The last minute of failed runs at any width: seconds are summed into as many bars as
/// fit (at least 6, or none), and the scale is written beside them (`peak 2/4s`: at most
/// 2 in one 4 s bar).
fn render_crash_spark(frame: &mut Frame<'_>, area: Rect, history: &[u64], pal: &Palette) {
    const SCALE: u16 = 12; // " peak 99/10s"
    let room = usize::from(area.width.saturating_sub(SCALE)).min(history.len());
    if room < 6 || history.is_empty() {
        return;
    }
    let bars = bucket_sums(history, room);
    let per = history.len().div_ceil(room);
    let peak = bars.iter().copied().max().unwrap_or(0);
    let scale = if peak == 0 { " none".to_string() } else { format!(" peak {peak}/{per}s") };
    let [chart, tail] =
        Layout::horizontal([Constraint::Length(bars.len() as u16), Constraint::Min(0)]).areas(area);
    // Quiet stretches draw as a low dim line, not as nothing.
    let data: Vec<SparklineBar> =
        bars.iter().map(|&b| SparklineBar::from((b > 0).then_some(b))).collect();
    let spark = Sparkline::default()
        .data(data)
        .max(peak.max(1))
        .style(pal.fg(Color::Red))
        .absent_value_symbol("▁")
        .absent_value_style(pal.fg(Color::DarkGray));
    frame.render_widget(spark, chart);
    frame.render_widget(Paragraph::new(scale), tail);
}

/// `values` (oldest first) summed into at most `max` buckets of whole, equal spans; the
/// newest bucket is complete on the right.
pub fn bucket_sums(values: &[u64], max: usize) -> Vec<u64> {
    let per = values.len().div_ceil(max.max(1)).max(1);
    let mut out: Vec<u64> = values.rchunks(per).map(|c| c.iter().sum()).collect();
    out.reverse();
    out
}

/// Attached, the keys that end things end only the attach.
const ATTACHED_KEYS: &[(&str, &str)] = &[
    ("q Ctrl-C", "detach: corral and its workers keep running"),
    ("Q", "shut this corral down (asks first)"),
    ("Ctrl-Z", "suspend attach (corral goes on)"),
];

fn render_help(frame: &mut Frame<'_>, area: Rect, attached: bool) {
    let keys: Vec<(&str, &str)> = if attached {
        let local = |(k, _): &&(&str, &str)| *k != "q Ctrl-C" && *k != "Ctrl-Z";
        KEYS.iter().filter(local).chain(ATTACHED_KEYS).copied().collect()
    } else {
        KEYS.to_vec()
    };
    let width = area.width.min(76);
    let height = (keys.len() as u16 + 4).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line<'_>> = keys
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
