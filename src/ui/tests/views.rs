//! The views issue 9 added or fixed: the footer at 80×24, the crash chart, notices, the
//! metrics and details panes.

use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::KeyCode;

use super::{draw, key, normal, press, view_of, worker};
use crate::core::{ExitReason, ExitStatus, WorkerState};
use crate::signal::Signal;
use crate::ui::model::{PaneMode, View};
use crate::ui::state::UiState;

/// Every key the footer names is whole at 80×24, and the selection marker stays
/// (regression: the footer was cut after `e event`, the `▶` was dropped below 100 columns).
#[test]
fn at_80x24_the_footer_names_whole_keys_and_the_marker_stays() {
    let now = Instant::now();
    let (text, _) = draw(&normal(now), &mut UiState::new(false), 80, 24, now);
    for key in ["x kill", "e events", "m metrics", "⏎ details", "/ filter", "? help", "q quit"] {
        assert!(text.contains(key), "{key:?} not on the 80×24 screen:\n{text}");
    }
    assert!(text.contains("▶ web.1"), "{text}");
}

/// Regression: the header showed one column a second, so an 18-column sparkline held only
/// the last 18 seconds. A crash 59 s ago is in the minute at every width that has a chart.
#[test]
fn the_crash_sparkline_holds_the_whole_minute_with_its_scale() {
    let now = Instant::now();
    let mut view = normal(now);
    view.crash_history = (0..60).map(|i| u64::from(i == 0)).collect();
    view.crashes_last_minute = 1;
    for cols in [80, 100, 120, 200] {
        let (text, _) = draw(&view, &mut UiState::new(false), cols, 24, now);
        let header = text.lines().next().unwrap_or_default();
        assert!(header.contains('█') && header.contains("peak 1/"), "{cols}: {header}");
    }
    assert_eq!(crate::ui::render::bucket_sums(&[1, 0, 0, 2, 0, 1, 1], 3), [1, 2, 2]);
}

/// Regression: a row without a process still showed the last run's events per second.
#[test]
fn a_row_without_a_process_has_no_rate() {
    let now = Instant::now();
    let (text, _) = draw(&normal(now), &mut UiState::new(false), 120, 24, now);
    let backoff = text.lines().find(|l| l.contains("web.3")).unwrap_or_default();
    assert!(backoff.trim_end().ends_with('-'), "{backoff}");
}

/// Regression: keys that could not act did nothing and said nothing.
#[test]
fn keys_that_cannot_act_say_why() {
    let now = Instant::now();
    let mut ui = UiState::new(false);
    let stopped = view_of(vec![worker(1, WorkerState::Stopped, 0, None, now)]);
    assert!(press(&mut ui, &stopped, KeyCode::Char('x')).is_empty());
    let notice = ui.notice.clone().map(|(t, _)| t).unwrap_or_default();
    assert_eq!(notice, "web.1 is stopped: no process to kill");
    assert!(press(&mut ui, &stopped, KeyCode::Char('-')).is_empty());
    let notice = ui.notice.clone().map(|(t, _)| t).unwrap_or_default();
    assert!(notice.contains("one worker"), "{notice}");
    press(&mut ui, &stopped, KeyCode::Char('z'));
    let notice = ui.notice.clone().map(|(t, _)| t).unwrap_or_default();
    assert!(notice.contains("'z' does nothing"), "{notice}");
    let (text, _) = draw(&stopped, &mut ui, 80, 24, now);
    assert!(text.contains("'z' does nothing here · ? lists the keys"), "{text}");
    assert!(text.contains("q quit"), "the keys stay on the second line:\n{text}");
    let later = Instant::now() + crate::ui::footer::NOTICE;
    let (text, _) = draw(&stopped, &mut ui, 80, 24, later);
    assert!(!text.contains("does nothing"), "a notice goes after a few seconds:\n{text}");
    let mut down = normal(now);
    down.snapshot.shutting_down = true;
    assert!(press(&mut ui, &down, KeyCode::Char('r')).is_empty());
    assert!(ui.notice.as_ref().is_some_and(|(t, _)| t.starts_with("shutting down")));
}

#[test]
fn the_stopping_line_counts_down_to_the_sigkill() {
    let now = Instant::now();
    let mut down = normal(now);
    down.snapshot.shutting_down = true;
    let mut ui = UiState::new(false);
    let (text, _) = draw(&down, &mut ui, 80, 24, now);
    assert!(text.contains("stopping every worker gracefully… q or Ctrl-C again"), "{text}");
    down.snapshot.kill_in = Some(Duration::from_millis(8500));
    let (text, _) = draw(&down, &mut ui, 80, 24, now);
    let want = "stopping every worker: SIGKILL in 8.5s · q or Ctrl-C again: kill now";
    assert!(text.contains(want), "whole at 80 columns:\n{text}");
}

fn with_metrics(now: Instant) -> View {
    use crate::ui::model::{Metrics, Series, SeriesKind};
    let wave = |f: fn(usize) -> f64| -> Vec<Option<f64>> {
        (0..crate::ui::model::METRIC_SECONDS)
            // A restart 100 s ago: a gap of 3 s in every series.
            .map(|i| (!(197..200).contains(&i)).then(|| f(i)))
            .collect()
    };
    let series = |name: &str, kind, latest, rate, points| Series {
        name: name.into(),
        kind,
        latest: Some(latest),
        rate,
        points,
    };
    let mut view = normal(now);
    view.metrics = Some(Metrics {
        who: "web.1".into(),
        series: vec![
            series("requests", SeriesKind::Metric, 5120.0, Some(12.0), wave(|i| (i * 17) as f64)),
            series(
                "latency_ms",
                SeriesKind::Metric,
                3.25,
                Some(-0.1),
                wave(|i| (i % 40) as f64 / 8.0),
            ),
            series("cache-miss", SeriesKind::Event, 311.0, Some(1.2), wave(|i| (i % 3) as f64)),
            series("cpu", SeriesKind::Cpu, 4.0, None, wave(|i| (i % 10) as f64)),
            series("memory", SeriesKind::Memory, 13e6, None, wave(|i| 12e6 + i as f64 * 1e3)),
        ],
        dropped: 2,
        dropped_names: vec!["m65".into(), "m66".into()],
    });
    view
}

fn with_details(now: Instant) -> View {
    use crate::ui::model::{Details, ExitRecord};
    let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000 + s);
    let exit = |s, status, reason, up| ExitRecord {
        at: at(s),
        status,
        reason,
        uptime: Duration::from_secs(up),
    };
    let mut view = normal(now);
    view.details = Some(Details {
        id: "web.2".into(),
        command: "corral __demo-worker --crash-after 10s..40s".into(),
        cwd: "/srv/app".into(),
        pid: Some(4002),
        generation: Some(3),
        restarts: 3,
        crashes: 2,
        protocol_errors: 1,
        sockets: vec!["tcp 127.0.0.1:3000".into()],
        status: Some("serving, 42 requests".into()),
        exits: vec![
            exit(90, ExitStatus::Signal(Signal::SEGV), ExitReason::Crashed, 31),
            exit(50, ExitStatus::Code(0), ExitReason::RestartedByUser, 12),
            exit(20, ExitStatus::Code(1), ExitReason::Crashed, 20),
        ],
    });
    view
}

/// The metrics and details views, at 80×24 and 120×40 (issue 9's "for each view").
#[test]
fn metrics_and_details_views() {
    let now = Instant::now();
    for (w, h) in [(80, 24), (120, 40)] {
        let mut ui = UiState::new(false);
        ui.mode = PaneMode::Metrics;
        let (text, _) = draw(&with_metrics(now), &mut ui, w, h, now);
        assert!(text.contains("requests") && text.contains("5120") && text.contains("+12/s"));
        // An event type's count is a total and its MAX the busiest second: both say so.
        assert!(text.contains("» cache-miss         311 total      1.20/s         2/s"), "{text}");
        assert!(text.contains("2 more series dropped"), "{text}");
        insta::assert_snapshot!(format!("metrics_{w}x{h}"), text);
        ui.mode = PaneMode::Details;
        ui.selected = 1;
        let (text, _) = draw(&with_details(now), &mut ui, w, h, now);
        assert!(text.contains("SIGSEGV") && text.contains("restarted by user"), "{text}");
        insta::assert_snapshot!(format!("details_{w}x{h}"), text);
    }
}

#[test]
fn e_m_and_enter_switch_the_pane_and_esc_goes_back() {
    let view = normal(Instant::now());
    let mut ui = UiState::new(false);
    press(&mut ui, &view, KeyCode::Char('m'));
    assert_eq!(ui.pane_request(&view).mode, PaneMode::Metrics);
    press(&mut ui, &view, KeyCode::Char('a'));
    let req = ui.pane_request(&view);
    assert_eq!((req.worker, req.group), (Some(key(0, 1)), true), "a: the worker's group");
    press(&mut ui, &view, KeyCode::Enter);
    assert_eq!(ui.pane_request(&view).mode, PaneMode::Details);
    press(&mut ui, &view, KeyCode::Enter);
    assert_eq!(ui.mode, PaneMode::Output, "Enter again: back");
    press(&mut ui, &view, KeyCode::Char('e'));
    press(&mut ui, &view, KeyCode::Char('m'));
    press(&mut ui, &view, KeyCode::Esc);
    assert_eq!(ui.mode, PaneMode::Output);
}

#[test]
fn metric_buckets_average_whole_seconds_and_mark_gaps() {
    use crate::ui::metrics::{Bucket, buckets};
    let points = [Some(1.0), Some(3.0), None, None, Some(5.0), Some(7.0), Some(9.0)];
    let b = |mean, whole| Bucket { mean, whole };
    // Three seconds a bucket, the newest whole on the right; the restart's empty seconds
    // make theirs partial (drawn dim).
    let expected = [b(Some(1.0), true), b(Some(3.0), false), b(Some(7.0), true)];
    assert_eq!(buckets(&points, 3), expected);
    assert_eq!(buckets(&[None, None], 1), [b(None, false)]);
}

/// The details show a status's colours; the table shows its text without them.
#[test]
fn a_status_keeps_its_colours_in_the_details_and_only_its_text_in_the_table() {
    let now = Instant::now();
    let mut view = with_details(now);
    let status = "\x1b[32mserving\x1b[0m, 42 \x1b]0;t\x07requests";
    if let Some(d) = view.details.as_mut() {
        d.status = Some(status.into());
    }
    view.extras[0].status = Some(status.into());
    let mut ui = UiState::new(true);
    let (table, _) = draw(&view, &mut ui, 120, 40, now);
    assert!(table.contains(" serving, 42 requests"), "{table}");
    ui.mode = PaneMode::Details;
    let (text, buffer) = draw(&view, &mut ui, 120, 40, now);
    let y = text.lines().position(|l| l.starts_with("status ")).expect("status line");
    let line = text.lines().nth(y).unwrap_or_default();
    assert_eq!(line.trim_end(), format!("{:<16}serving, 42 requests", "status"));
    assert_eq!(buffer[(16, y as u16)].fg, ratatui::style::Color::Green);
    assert_eq!(buffer[(26, y as u16)].fg, ratatui::style::Color::Reset);
}
