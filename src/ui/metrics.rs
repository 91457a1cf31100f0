//! The metrics view (docs/dashboard.md#the-profiler-view, the article's profiler): each series a worker reports, and
//! its CPU and memory, with the latest value, the rate and a chart of the last 5 minutes.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, SparklineBar};

use super::format;
use super::model::{METRIC_SECONDS, Metrics, Series, SeriesKind};
use super::render::{Palette, for_screen};

const NAME: u16 = 18;
/// Wide enough for an event's `12.3k total`.
const NUMBER: u16 = 11;

/// `1234`, `12.3k`, `4.5M`, `0.25`.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn value(kind: SeriesKind, v: f64) -> String {
    match kind {
        SeriesKind::Metric => compact(v),
        // A count, not a value: said so, beside a MAX that is per second.
        SeriesKind::Event => format!("{} total", compact(v)),
        SeriesKind::Cpu => format!("{v:.0}%"),
        SeriesKind::Memory => format::bytes(v.max(0.0) as u64),
    }
}

fn rate(s: &Series) -> String {
    let Some(r) = s.rate else { return "-".into() };
    match s.kind {
        SeriesKind::Event => format!("{}/s", compact(r)),
        SeriesKind::Metric => format!("{}{}/s", if r > 0.0 { "+" } else { "" }, compact(r)),
        SeriesKind::Cpu | SeriesKind::Memory => "-".into(),
    }
}

/// One bar of a chart: the mean of its seconds, and whether every one of them had a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub mean: Option<f64>,
    pub whole: bool,
}

/// The points averaged into at most `bars` buckets of whole seconds (newest on the
/// right). A bucket with seconds where nothing ran is drawn dim (a restart, or the start
/// of the series), one with none at all is empty: a gap.
pub fn buckets(points: &[Option<f64>], bars: usize) -> Vec<Bucket> {
    let per = points.len().div_ceil(bars.max(1)).max(1);
    let mut out: Vec<Bucket> = points
        .rchunks(per)
        .map(|c| {
            let present: Vec<f64> = c.iter().flatten().copied().collect();
            let mean =
                (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64);
            Bucket { mean, whole: present.len() == c.len() }
        })
        .collect();
    out.reverse();
    out
}

/// Bars scaled between the lowest and highest value shown; the lowest still shows.
fn bars(values: &[Bucket], pal: &Palette) -> Vec<SparklineBar> {
    let present = values.iter().filter_map(|b| b.mean);
    let lo = present.clone().fold(f64::INFINITY, f64::min);
    let hi = present.fold(f64::NEG_INFINITY, f64::max);
    // A flat series draws as a low line, not as nothing.
    let (lo, span) = if hi > lo { (lo, hi - lo) } else { (lo - 1.0, 1.0) };
    values
        .iter()
        .map(|b| {
            let bar = SparklineBar::from(b.mean.map(|v| 1 + ((v - lo) / span * 99.0) as u64));
            if b.whole { bar } else { bar.style(pal.fg(Color::DarkGray)) }
        })
        .collect()
}

fn row(frame: &mut Frame<'_>, area: Rect, s: &Series, pal: &Palette) {
    let [name, latest, per_sec, peak, chart] = Layout::horizontal([
        Constraint::Length(NAME),
        Constraint::Length(NUMBER),
        Constraint::Length(NUMBER),
        Constraint::Length(NUMBER),
        Constraint::Min(0),
    ])
    .spacing(1)
    .areas(area);
    let style = match s.kind {
        SeriesKind::Metric => pal.fg(Color::Cyan),
        SeriesKind::Event => pal.fg(Color::Magenta),
        SeriesKind::Cpu | SeriesKind::Memory => pal.fg(Color::Green),
    };
    let label = match s.kind {
        SeriesKind::Event => format!("» {}", for_screen(&s.name)),
        SeriesKind::Metric | SeriesKind::Cpu | SeriesKind::Memory => for_screen(&s.name),
    };
    frame.render_widget(Paragraph::new(label).style(style), name);
    let latest_text = s.latest.map_or_else(|| "-".into(), |v| value(s.kind, v));
    frame.render_widget(Paragraph::new(latest_text).right_aligned(), latest);
    frame.render_widget(Paragraph::new(rate(s)).right_aligned(), per_sec);
    let shown = buckets(&s.points, usize::from(chart.width));
    let top = s.points.iter().flatten().copied().reduce(f64::max);
    let peak_text = match s.kind {
        // The busiest second's count: the chart's unit, not the total's.
        SeriesKind::Event => top.map_or_else(|| "-".into(), |v| format!("{}/s", compact(v))),
        // The latest value may be newer than the last whole second charted: a MAX below
        // LATEST would be a lie.
        SeriesKind::Metric | SeriesKind::Cpu | SeriesKind::Memory => {
            let top = match (top, s.latest) {
                (Some(t), Some(l)) => Some(t.max(l)),
                (t, l) => t.or(l),
            };
            top.map_or_else(|| "-".into(), |v| value(s.kind, v))
        }
    };
    frame.render_widget(Paragraph::new(peak_text).right_aligned(), peak);
    let data = bars(&shown, pal);
    let spark = Sparkline::default().data(data).max(100).style(style).absent_value_symbol(" ");
    frame.render_widget(spark, chart);
}

pub fn render_metrics(frame: &mut Frame<'_>, area: Rect, metrics: Option<&Metrics>, pal: &Palette) {
    let Some(m) = metrics.filter(|m| !m.series.is_empty()) else {
        let note = if metrics.is_some() {
            "(no metrics yet: workers send {\"type\":\"metric\",\"name\":…,\"value\":…})"
        } else {
            "…"
        };
        frame.render_widget(Paragraph::new(note).style(pal.fg(Color::DarkGray)), area);
        return;
    };
    let chart_width = area.width.saturating_sub(NAME + 3 * NUMBER + 4).max(1);
    let per = METRIC_SECONDS.div_ceil(usize::from(chart_width)).max(1);
    let head = format!(
        "{:<n$} {:>w$} {:>w$} {:>w$} 5 min … now, {per}s a bar",
        "SERIES",
        "LATEST",
        "RATE",
        "MAX",
        n = usize::from(NAME),
        w = usize::from(NUMBER)
    );
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut rows = area.height.saturating_sub(1);
    frame.render_widget(Paragraph::new(Line::from(Span::styled(head, bold))), area);
    let dropped = m.dropped > 0;
    if dropped {
        rows = rows.saturating_sub(1);
    }
    let series = m.series.len() as u16;
    let each = rows.checked_div(series).unwrap_or(1).clamp(1, 3);
    let mut y = area.y + 1;
    for s in m.series.iter().take(usize::from(rows / each)) {
        row(frame, Rect { y, height: each, ..area }, s, pal);
        y += each;
    }
    if dropped {
        let names = m.dropped_names.iter().map(|n| for_screen(n)).collect::<Vec<_>>().join(", ");
        let text = format!("{} more series dropped (64 a worker): {names}", m.dropped);
        let at = Rect { y: area.y + area.height - 1, height: 1, ..area };
        frame.render_widget(Paragraph::new(text).style(pal.fg(Color::Yellow)), at);
    }
}
