//! Rendering with ratatui's `TestBackend` and insta snapshots (fixed PIDs, fixed times),
//! and what keys do to the UI state.

use std::time::{Duration, Instant, SystemTime};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier};

use super::model::{LineKind, Pane, PaneLine, PaneMode, UiRequest, View, WorkerExtra};
use super::render;
use super::state::{Effect, Focus, UiState};
use crate::core::{
    ExitReason, ExitStatus, GroupView, LastExit, Snapshot, UserAction, WorkerKey, WorkerState,
    WorkerView,
};
use crate::signal::Signal;

fn key(group: u16, slot: u32) -> WorkerKey {
    WorkerKey { group, slot }
}

fn worker(
    slot: u32,
    state: WorkerState,
    restarts: u32,
    last: Option<(ExitStatus, ExitReason, u64)>,
    now: Instant,
) -> WorkerView {
    let running = matches!(state, WorkerState::Running | WorkerState::Starting);
    WorkerView {
        key: key(0, slot),
        id: format!("web.{slot}"),
        pid: running.then_some(4000 + slot),
        generation: Some(restarts),
        uptime: running.then(|| Duration::from_secs(u64::from(slot) * 61)),
        state,
        restarts,
        last_exit: last.map(|(status, reason, ago)| LastExit {
            status,
            reason,
            at: now.checked_sub(Duration::from_secs(ago)).expect("test instants are recent"),
            uptime: Duration::from_secs(3),
        }),
        crash_looping: false,
        replacement: None,
        held: false,
        probes: Vec::new(),
    }
}

fn view_of(workers: Vec<WorkerView>) -> View {
    let up = workers.iter().filter(|w| matches!(w.state, WorkerState::Running)).count() as u32;
    let extras = workers
        .iter()
        .map(|w| WorkerExtra {
            cpu: w.pid.map(|_| 1.5),
            rss: w.pid.map(|_| 12 << 20),
            events_per_sec: 2,
            status: w.pid.map(|_| "serving, 42 requests".to_string()),
        })
        .collect();
    let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000 + s);
    let pane = Pane {
        lines: vec![
            PaneLine {
                at: at(0),
                id: "web.1".into(),
                kind: LineKind::Stdout,
                text: "Worker 4001 listening on 127.0.0.1:3000".into(),
            },
            PaneLine {
                at: at(1),
                id: "web.1".into(),
                kind: LineKind::Stderr,
                text: "\x1b]0;PWNED\x07 \x1b[1;33mwarning:\x1b[0m\tslow\x07\x1b[2J".into(),
            },
        ],
        matching: 2,
    };
    View {
        snapshot: Snapshot {
            groups: vec![GroupView {
                name: "web".into(),
                workers: workers.len() as u32,
                up,
                ..GroupView::default()
            }],
            total_restarts: workers.iter().map(|w| w.restarts).sum(),
            workers,
            shutting_down: false,
            kill_in: None,
        },
        extras,
        events_per_sec: 6,
        crashes_last_minute: 2,
        // One crash 30 s ago, one 2 s ago: the two of `crashes_last_minute`.
        crash_history: (0..60).map(|i| u64::from(i == 30 || i == 58)).collect(),
        pane,
        log_path: None,
        metrics: None,
        details: None,
        attached: None,
    }
}

fn normal(now: Instant) -> View {
    view_of(vec![
        worker(1, WorkerState::Running, 0, None, now),
        worker(
            2,
            WorkerState::Running,
            3,
            Some((ExitStatus::Signal(Signal::SEGV), ExitReason::Crashed, 1)),
            now,
        ),
        worker(
            3,
            WorkerState::Backoff { left: Duration::from_millis(1400) },
            5,
            Some((ExitStatus::Code(1), ExitReason::Crashed, 30)),
            now,
        ),
        worker(
            4,
            WorkerState::Running,
            1,
            Some((ExitStatus::Signal(Signal::KILL), ExitReason::KilledByUser, 60)),
            now,
        ),
    ])
}

fn draw(
    view: &View,
    ui: &mut UiState,
    w: u16,
    h: u16,
    now: Instant,
) -> (String, ratatui::buffer::Buffer) {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    terminal.draw(|f| render(f, view, ui, now)).expect("draw");
    let buffer = terminal.backend().buffer().clone();
    let text = (0..h)
        .map(|y| {
            let line: String = (0..w).map(|x| buffer[(x, y)].symbol().to_string()).collect();
            line.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    (text, buffer)
}

#[test]
fn normal_dashboard() {
    let now = Instant::now();
    let (text, _) = draw(&normal(now), &mut UiState::new(true), 120, 24, now);
    insta::assert_snapshot!("normal_120x24", text);
}

#[test]
fn fits_80x24() {
    let now = Instant::now();
    let (text, _) = draw(&normal(now), &mut UiState::new(false), 80, 24, now);
    assert!(text.contains("RESTARTS") && text.contains("LAST EXIT"), "{text}");
    insta::assert_snapshot!("normal_80x24", text);
}

#[test]
fn crash_looping_and_given_up_rows_are_red_and_say_so() {
    let now = Instant::now();
    let mut looping = worker(
        1,
        WorkerState::Backoff { left: Duration::from_secs(12) },
        9,
        Some((ExitStatus::Code(1), ExitReason::Crashed, 20)),
        now,
    );
    looping.crash_looping = true;
    let gave_up = worker(
        2,
        WorkerState::GaveUp,
        10,
        Some((ExitStatus::Code(2), ExitReason::Crashed, 20)),
        now,
    );
    let view = view_of(vec![looping, gave_up]);
    let mut ui = UiState::new(true);
    ui.selected = 1;
    let (text, buffer) = draw(&view, &mut ui, 100, 20, now);
    assert!(text.contains("↻ crash-loop 12s") && text.contains("✖ gave up"), "{text}");
    // Row 0 of the table is at y = 3 (header, border, column titles).
    assert_eq!(buffer[(3, 3)].fg, Color::Red, "crash-looping row in red");
    insta::assert_snapshot!("crash_loop_and_gave_up", text);
}

#[test]
fn a_fresh_crash_is_highlighted_and_no_colour_still_says_it() {
    let now = Instant::now();
    let (text, buffer) = draw(&normal(now), &mut UiState::new(true), 120, 24, now);
    assert_eq!(buffer[(4, 4)].bg, Color::Red, "web.2 just died: highlighted");
    assert!(text.contains("SIGSEGV") && text.contains("SIGKILL (killed by user)"));
    let (plain, buffer) = draw(&normal(now), &mut UiState::new(false), 120, 24, now);
    assert_eq!(plain, text, "NO_COLOR changes colours, never words");
    assert!(buffer.content.iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
}

#[test]
fn many_workers_scroll_with_the_selection() {
    let now = Instant::now();
    let workers = (1..=60).map(|s| worker(s, WorkerState::Running, 0, None, now)).collect();
    let view = view_of(workers);
    let mut ui = UiState::new(false);
    ui.selected = 50;
    let (text, _) = draw(&view, &mut ui, 100, 30, now);
    assert!(text.contains("▶ web.51"), "the selected row is visible: {text}");
    insta::assert_snapshot!("many_workers", text);
}

#[test]
fn empty_and_tiny() {
    let now = Instant::now();
    let (text, _) = draw(&View::default(), &mut UiState::new(false), 80, 24, now);
    insta::assert_snapshot!("empty", text);
    for (w, h) in [(1, 1), (10, 5), (39, 30), (200, 9)] {
        let (text, _) = draw(&normal(now), &mut UiState::new(true), w, h, now);
        assert!(w < 20 || text.replace('\n', "").contains("too small"), "{w}x{h}: {text}");
    }
}

#[test]
fn help_overlay() {
    let now = Instant::now();
    let mut ui = UiState::new(false);
    ui.help = true;
    let (text, _) = draw(&normal(now), &mut ui, 100, 24, now);
    insta::assert_snapshot!("help", text);
}

#[test]
fn worker_text_cannot_inject_escapes_and_keeps_its_colours() {
    let now = Instant::now();
    let (text, buffer) = draw(&normal(now), &mut UiState::new(true), 120, 24, now);
    assert!(text.contains("!  warning:   slow\\u{7}\n"), "{text}");
    assert!(!text.contains("PWNED") && !text.contains("[2J"), "{text}");
    assert!(buffer.content.iter().all(|c| !c.symbol().chars().any(char::is_control)));
    let y = text.lines().position(|l| l.contains("warning:")).expect("the line") as u16;
    let x = |word: &str| {
        let line = text.lines().nth(usize::from(y)).unwrap_or_default();
        let bytes = line.find(word).expect("the word");
        line[..bytes].chars().count() as u16
    };
    let warning = &buffer[(x("warning"), y)];
    assert_eq!(warning.fg, Color::Yellow);
    assert!(warning.modifier.contains(Modifier::BOLD));
    // After the worker's reset: stderr's own red again, not bold.
    let slow = &buffer[(x("slow"), y)];
    assert_eq!(slow.fg, Color::LightRed);
    assert!(!slow.modifier.contains(Modifier::BOLD));
    // Without colours (NO_COLOR) the words stay, the colours go.
    let (_, plain) = draw(&normal(now), &mut UiState::new(false), 120, 24, now);
    assert_eq!(plain[(x("warning"), y)].fg, Color::Reset);
    assert!(plain[(x("warning"), y)].modifier.contains(Modifier::BOLD));
}

#[test]
fn a_worker_style_ends_with_its_line() {
    let now = Instant::now();
    let mut view = normal(now);
    let unclosed =
        PaneLine { text: "\x1b[4;38;2;1;2;3munclosed".into(), ..view.pane.lines[0].clone() };
    let next = PaneLine { text: "next".into(), ..view.pane.lines[0].clone() };
    view.pane.lines = vec![unclosed, next];
    let (text, buffer) = draw(&view, &mut UiState::new(true), 120, 24, now);
    let y = text.lines().position(|l| l.contains("unclosed")).expect("the line") as u16;
    let cell = |y: u16, x: u16| &buffer[(x, y)];
    assert_eq!(cell(y, 11).fg, Color::Rgb(1, 2, 3), "{text}");
    assert!(cell(y, 11).modifier.contains(Modifier::UNDERLINED));
    assert_eq!(text.lines().nth(usize::from(y + 1)).map(|l| &l[11..]), Some("next"));
    assert_eq!(cell(y + 1, 11).fg, Color::Reset);
    assert!(!cell(y + 1, 11).modifier.contains(Modifier::UNDERLINED));
    assert!(!cell(y, 40).modifier.contains(Modifier::UNDERLINED), "not past its text");
}

#[test]
fn c_releases_the_mouse_and_takes_it_back() {
    let now = Instant::now();
    let view = normal(now);
    let mut ui = UiState::new(false);
    assert_eq!(press(&mut ui, &view, KeyCode::Char('c')), vec![Effect::Mouse(false)]);
    assert!(ui.mouse_released);
    let (text, _) = draw(&view, &mut ui, 80, 24, now);
    assert!(text.contains("mouse released: select text to copy it · c takes the mouse back"));
    assert!(!text.contains(" output · web.1"), "no border line while released: {text}");
    assert_eq!(press(&mut ui, &view, KeyCode::Char('c')), vec![Effect::Mouse(true)]);
    let (text, _) = draw(&view, &mut ui, 80, 24, now);
    assert!(!text.contains("mouse released") && text.contains(" output · web.1"), "{text}");
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(matches!(ui.on_key(ctrl_c, &view, now).as_slice(), [Effect::Send(UiRequest::Quit(_))]));
}

fn press(ui: &mut UiState, view: &View, code: KeyCode) -> Vec<Effect> {
    ui.on_key(KeyEvent::new(code, KeyModifiers::NONE), view, Instant::now())
}

#[test]
fn keys_select_and_act_on_the_selected_worker() {
    let view = normal(Instant::now());
    let mut ui = UiState::new(false);
    assert!(press(&mut ui, &view, KeyCode::Char('j')).is_empty());
    assert_eq!(ui.selected, 1);
    let send = |a| vec![Effect::Send(UiRequest::Action(a))];
    assert_eq!(press(&mut ui, &view, KeyCode::Char('x')), send(UserAction::Kill(key(0, 2))));
    assert_eq!(press(&mut ui, &view, KeyCode::Char('r')), send(UserAction::Restart(key(0, 2))));
    assert_eq!(press(&mut ui, &view, KeyCode::Char('s')), send(UserAction::ToggleStop(key(0, 2))));
    assert_eq!(press(&mut ui, &view, KeyCode::Char('+')), send(UserAction::ScaleUp(0)));
    assert_eq!(press(&mut ui, &view, KeyCode::Char('-')), send(UserAction::ScaleDown(0)));
    press(&mut ui, &view, KeyCode::Char('G'));
    assert_eq!(ui.selected, 3);
    press(&mut ui, &view, KeyCode::Char('g'));
    assert_eq!(ui.selected, 0);
    let quit = press(&mut ui, &view, KeyCode::Char('q'));
    assert_eq!(
        quit,
        vec![Effect::Send(UiRequest::Quit(crate::core::ShutdownTrigger::Key(
            crate::core::QuitKey::Q
        )))]
    );
    let ctrl_c =
        ui.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), &view, Instant::now());
    assert_eq!(
        ctrl_c,
        vec![Effect::Send(UiRequest::Quit(crate::core::ShutdownTrigger::Key(
            crate::core::QuitKey::CtrlC
        )))]
    );
    let ctrl_z =
        ui.on_key(KeyEvent::new(KeyCode::Char('z'), KeyModifiers::CONTROL), &view, Instant::now());
    assert_eq!(ctrl_z, vec![Effect::Suspend]);
}

#[test]
fn pane_modes_filter_and_focus() {
    let view = normal(Instant::now());
    let mut ui = UiState::new(false);
    assert_eq!(ui.pane_request(&view).worker, Some(key(0, 1)));
    press(&mut ui, &view, KeyCode::Char('a'));
    press(&mut ui, &view, KeyCode::Char('e'));
    let req = ui.pane_request(&view);
    assert_eq!((req.worker, req.mode), (None, PaneMode::Events));
    press(&mut ui, &view, KeyCode::Char('/'));
    for c in "warn".chars() {
        press(&mut ui, &view, KeyCode::Char(c));
    }
    assert_eq!(ui.pane_request(&view).filter, "warn", "filters while typing");
    press(&mut ui, &view, KeyCode::Enter);
    assert!(ui.editing.is_none());
    press(&mut ui, &view, KeyCode::Esc);
    assert!(ui.filter.is_empty(), "Esc clears the filter");
    press(&mut ui, &view, KeyCode::Tab);
    assert_eq!(ui.focus, Focus::Pane);
    press(&mut ui, &view, KeyCode::Char('?'));
    assert!(ui.help);
    press(&mut ui, &view, KeyCode::Char('j'));
    assert!(!ui.help, "any key closes the help");
}

#[test]
fn filters_are_smart_case() {
    use super::model::filter_matches;
    assert!(filter_matches("warn", "WARNING: slow"));
    assert!(!filter_matches("Warn", "WARNING: slow"));
    assert!(filter_matches("WARN", "WARNING: slow"));
    assert!(filter_matches("", "anything"));
}

mod attached;
mod groups;
mod views;

#[test]
fn a_message_is_typed_in_the_details_and_sent_only_when_it_is_json() {
    let now = Instant::now();
    let view = normal(now);
    let mut ui = UiState::new(false);
    press(&mut ui, &view, KeyCode::Char('>'));
    assert!(ui.composing.is_none(), "only in the details");
    press(&mut ui, &view, KeyCode::Enter);
    press(&mut ui, &view, KeyCode::Char('>'));
    for c in r#"{"a":1"#.chars() {
        assert!(press(&mut ui, &view, KeyCode::Char(c)).is_empty());
    }
    let (text, _) = draw(&view, &mut ui, 120, 24, now);
    assert!(text.contains(r#"to web.1 (JSON): {"a":1█"#), "{text}");
    assert!(press(&mut ui, &view, KeyCode::Enter).is_empty(), "not JSON yet: nothing is sent");
    assert!(
        ui.composing.is_some()
            && ui.notice.as_ref().is_some_and(|(n, _)| n.starts_with("not JSON"))
    );
    press(&mut ui, &view, KeyCode::Char('}'));
    let sent = press(&mut ui, &view, KeyCode::Enter);
    let message = serde_json::json!({ "a": 1 });
    assert_eq!(sent, vec![Effect::Send(UiRequest::Send { key: key(0, 1), message })]);
    assert!(ui.composing.is_none());
    press(&mut ui, &view, KeyCode::Char('>'));
    press(&mut ui, &view, KeyCode::Char('x'));
    assert!(press(&mut ui, &view, KeyCode::Esc).is_empty());
    assert!(ui.composing.is_none(), "Esc gives up; x was text, not a kill");
}
