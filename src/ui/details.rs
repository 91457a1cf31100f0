//! `Enter`: what there is to know about the selected worker — how it is run, its counters,
//! its sockets and its last exits.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::format;
use super::model::Details;
use super::render::{Palette, for_screen};

fn field<'a>(name: &'static str, value: String) -> Line<'a> {
    Line::from(vec![name_span(name), Span::raw(value)])
}

fn name_span(name: &'static str) -> Span<'static> {
    Span::styled(format!("{name:<16}"), Style::new().add_modifier(Modifier::BOLD))
}

/// The worker's own words (its status), with its colours.
fn styled_field<'a>(name: &'static str, value: Option<&'a str>, pal: &Palette) -> Line<'a> {
    let mut spans = vec![name_span(name)];
    super::colour::spans(value.unwrap_or("-"), Style::new(), pal.color, &mut spans);
    Line::from(spans)
}

pub fn render_details(
    frame: &mut Frame<'_>,
    area: Rect,
    details: Option<&Details>,
    pal: &Palette,
    _now: Instant,
) {
    let Some(d) = details else {
        // The runtime answers the pane's request within a frame or two.
        let note = Paragraph::new("…").style(pal.fg(Color::DarkGray));
        frame.render_widget(note, area);
        return;
    };
    let dash = || "-".to_string();
    let sockets = if d.sockets.is_empty() { "none".to_string() } else { d.sockets.join(", ") };
    let mut lines = vec![
        field("command", for_screen(&d.command)),
        field("cwd", for_screen(&d.cwd)),
        field(
            "pid",
            format!(
                "{}   generation {}",
                d.pid.map_or_else(dash, |p| p.to_string()),
                d.generation.map_or_else(dash, |g| g.to_string())
            ),
        ),
        field(
            "counts",
            format!(
                "{} restarts · {} crashes · {} protocol errors",
                d.restarts, d.crashes, d.protocol_errors
            ),
        ),
        field("sockets", for_screen(&sockets)),
        styled_field("status", d.status.as_deref(), pal),
    ];
    let head =
        if d.exits.is_empty() { "last exits: none yet" } else { "last exits, newest first:" };
    lines.push(Line::from(Span::styled(head, Style::new().add_modifier(Modifier::BOLD))));
    for e in &d.exits {
        let ts = humantime::format_rfc3339_seconds(e.at).to_string();
        let clock = ts.get(11..19).unwrap_or("").to_string();
        let style = if e.reason.is_crash() { pal.fg(Color::Red) } else { Style::new() };
        lines.push(Line::from(vec![
            Span::styled(format!("  {clock}  "), pal.fg(Color::DarkGray)),
            Span::styled(format!("{:<12}", e.status.to_string()), style),
            Span::styled(format!("{:<19}", e.reason.label()), style),
            Span::raw(format!("after {}", format::uptime(e.uptime))),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}
