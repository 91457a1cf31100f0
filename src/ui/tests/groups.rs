//! Several groups in one dashboard (docs/config.md): a header line per group, the selection on
//! worker rows only, `+`/`-`/`R` on the selected row's group, ids of every length aligned.

use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{KeyCode, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::{draw, key, normal, press, worker};
use crate::core::{ExitReason, ExitStatus, GroupView, UserAction, WorkerState, WorkerView};
use crate::ui::model::{LineKind, PaneLine, PaneMode, UiRequest, View, WorkerExtra};
use crate::ui::state::{Effect, UiState};

fn queue_worker(slot: u32, state: WorkerState, restarts: u32, now: Instant) -> WorkerView {
    let last = (restarts > 0).then_some((ExitStatus::Code(3), ExitReason::Crashed, 50));
    let mut w = worker(slot, state, restarts, last, now);
    w.key = key(1, slot);
    w.id = format!("queue.{slot}");
    w.pid = w.pid.map(|p| p + 100);
    w
}

/// `normal`'s four web workers, then two queue workers (one of them in backoff).
fn two_groups(now: Instant) -> View {
    let mut view = normal(now);
    let queue = [
        queue_worker(1, WorkerState::Running, 1, now),
        queue_worker(2, WorkerState::Backoff { left: Duration::from_secs(3) }, 0, now),
    ];
    for w in queue {
        view.extras.push(WorkerExtra {
            cpu: w.pid.map(|_| 0.5),
            rss: w.pid.map(|_| 8 << 20),
            events_per_sec: 1,
            status: w.pid.map(|_| "3 jobs done".to_string()),
        });
        view.snapshot.total_restarts += w.restarts;
        view.snapshot.workers.push(w);
    }
    view.snapshot.groups.push(GroupView {
        name: "queue".into(),
        workers: 2,
        up: 1,
        ..GroupView::default()
    });
    let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000 + s);
    view.pane.lines.push(PaneLine {
        at: at(2),
        id: "queue.1".into(),
        kind: LineKind::Stdout,
        text: "job 17 done".into(),
    });
    view.pane.matching += 1;
    view
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines().find(|l| l.contains(needle)).unwrap_or_default()
}

#[test]
fn each_group_has_a_header_line_with_its_own_counts() {
    let now = Instant::now();
    let view = two_groups(now);
    for (w, h) in [(80, 24), (120, 24)] {
        let (text, _) = draw(&view, &mut UiState::new(false), w, h, now);
        assert!(text.lines().any(|l| l == " web  3/4 up · restarts 9"), "{w}x{h}:\n{text}");
        assert!(text.lines().any(|l| l == " queue  1/2 up · restarts 1"), "{w}x{h}:\n{text}");
        assert!(text.starts_with(" corral 2 groups 4/6 up · restarts 10"), "{text}");
        // The header comes right above its group's first row.
        let lines: Vec<&str> = text.lines().collect();
        let queue = lines.iter().position(|l| l.starts_with(" queue")).unwrap_or(0);
        assert!(lines[queue + 1].contains("queue.1"), "{w}x{h}:\n{text}");
        insta::assert_snapshot!(format!("two_groups_{w}x{h}"), text);
    }
}

#[test]
fn one_group_has_no_header_line() {
    let now = Instant::now();
    let (text, _) = draw(&normal(now), &mut UiState::new(false), 80, 24, now);
    assert!(!text.lines().any(|l| l.starts_with(" web  ")), "{text}");
    assert!(text.starts_with(" corral web 3/4 up · restarts 9"), "{text}");
}

#[test]
fn what_a_group_is_doing_is_on_its_header_line() {
    let now = Instant::now();
    let mut view = two_groups(now);
    // queue.1 is being replaced, queue.3 is being scaled away (2 workers wanted).
    view.snapshot.workers[4].replacement = Some(4200);
    let mut retiring = queue_worker(3, WorkerState::Stopping, 0, now);
    retiring.pid = Some(4103);
    view.snapshot.workers.push(retiring);
    view.extras.push(WorkerExtra::default());
    let (text, _) = draw(&view, &mut UiState::new(false), 100, 24, now);
    let header = line_with(&text, " queue  ");
    assert_eq!(header, " queue  1/2 up · restarts 1 · reloading · scaling down to 2", "{text}");
}

#[test]
fn a_waiting_group_says_what_for_on_its_header_and_its_rows_say_waiting() {
    let now = Instant::now();
    let mut view = two_groups(now);
    view.snapshot.groups[1].waiting_for = vec!["migrate completed".into()];
    for w in view.snapshot.workers.iter_mut().filter(|w| w.key.group == 1) {
        w.state = WorkerState::Waiting;
        w.pid = None;
    }
    let (text, _) = draw(&view, &mut UiState::new(false), 120, 24, now);
    assert!(line_with(&text, " queue  ").ends_with("· waiting for migrate completed"), "{text}");
    assert!(line_with(&text, "queue.2").contains("◇ waiting"), "{text}");
    view.snapshot.groups[1].blocked =
        Some("migrate.1 ended (exit 3) and will not run again".into());
    let (text, _) = draw(&view, &mut UiState::new(false), 160, 24, now);
    let header = line_with(&text, " queue  ");
    assert!(
        header.contains("blocked: waits for migrate completed, but migrate.1 ended (exit 3)"),
        "{text}"
    );
}

#[test]
fn navigation_skips_the_headers() {
    let now = Instant::now();
    let view = two_groups(now);
    let mut ui = UiState::new(false);
    draw(&view, &mut ui, 100, 30, now);
    press(&mut ui, &view, KeyCode::Char('G'));
    assert_eq!(ui.selected, 5, "End: the last row, queue.2");
    press(&mut ui, &view, KeyCode::Char('k'));
    press(&mut ui, &view, KeyCode::Up);
    assert_eq!(ui.selected, 3, "up from queue.1 goes over queue's header to web.4");
    press(&mut ui, &view, KeyCode::Char('j'));
    assert_eq!(ui.selected, 4, "down from web.4 goes over the header to queue.1");
    let (text, _) = draw(&view, &mut ui, 100, 30, now);
    assert!(text.contains("▶ queue.1"), "{text}");
    assert!(!line_with(&text, " queue  ").contains('▶'), "{text}");
    press(&mut ui, &view, KeyCode::Home);
    assert_eq!(ui.selected, 0);
    press(&mut ui, &view, KeyCode::End);
    assert_eq!(ui.selected, 5);

    // A page of 4 lines: from web.1 (line 1) to line 5, queue's header: the row above it.
    ui.hit.table_rows = 4;
    press(&mut ui, &view, KeyCode::Home);
    press(&mut ui, &view, KeyCode::PageDown);
    assert_eq!(ui.selected, 3, "PgDn ends on web.4, not on queue's header");
    press(&mut ui, &view, KeyCode::PageDown);
    assert_eq!(ui.selected, 5);
    press(&mut ui, &view, KeyCode::PageUp);
    assert_eq!(ui.selected, 2, "PgUp: from line 7 to line 3, web.3");
    press(&mut ui, &view, KeyCode::PageUp);
    assert_eq!(ui.selected, 0, "line 0 is web's header: its first row");
}

#[test]
fn a_click_on_a_header_selects_its_first_worker() {
    let now = Instant::now();
    let view = two_groups(now);
    let mut ui = UiState::new(false);
    let (text, _) = draw(&view, &mut ui, 100, 30, now);
    let row = text.lines().position(|l| l.starts_with(" queue  ")).unwrap_or(0);
    let click = |row: usize| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: 4,
        row: u16::try_from(row).unwrap_or(0),
        modifiers: KeyModifiers::NONE,
    };
    ui.on_mouse(click(row), &view);
    assert_eq!(ui.selected, 4, "queue.1");
    ui.on_mouse(click(row - 1), &view);
    assert_eq!(ui.selected, 3, "the row above the header: web.4");
}

#[test]
fn plus_minus_and_reload_act_on_the_selected_rows_group_and_say_which() {
    let now = Instant::now();
    let view = two_groups(now);
    let mut ui = UiState::new(false);
    ui.selected = 4; // queue.1
    let send = |a| vec![Effect::Send(UiRequest::Action(a))];
    let notice = |ui: &UiState| ui.notice.clone().map(|(t, _)| t).unwrap_or_default();
    assert_eq!(press(&mut ui, &view, KeyCode::Char('+')), send(UserAction::ScaleUp(1)));
    assert_eq!(notice(&ui), "queue: one worker more, 3 in all");
    let (text, _) = draw(&view, &mut ui, 80, 24, now);
    assert!(text.contains(" queue: one worker more, 3 in all"), "in the footer:\n{text}");
    assert_eq!(press(&mut ui, &view, KeyCode::Char('-')), send(UserAction::ScaleDown(1)));
    assert_eq!(notice(&ui), "queue: one worker less, 1 left");
    assert_eq!(press(&mut ui, &view, KeyCode::Char('R')), send(UserAction::Reload(1)));
    assert_eq!(notice(&ui), "rolling reload of queue: one worker at a time");
    assert_eq!(press(&mut ui, &view, KeyCode::Char('x')), send(UserAction::Kill(key(1, 1))));
    ui.selected = 1; // web.2
    assert_eq!(press(&mut ui, &view, KeyCode::Char('+')), send(UserAction::ScaleUp(0)));
    assert_eq!(notice(&ui), "web: one worker more, 5 in all");
}

#[test]
fn ids_of_several_groups_line_up() {
    let now = Instant::now();
    let mut view = two_groups(now);
    let mut ui = UiState::new(false);
    press(&mut ui, &view, KeyCode::Char('a'));
    let (text, _) = draw(&view, &mut ui, 100, 30, now);
    let web = line_with(&text, "Worker 4001 listening");
    let queue = line_with(&text, "job 17 done");
    assert!(web.contains(" web.1   | ") && queue.contains(" queue.1 | "), "{text}");
    assert_eq!(web.find('|'), queue.find('|'), "the text starts in one column:\n{text}");
    // The table's ID column fits the longest id even when only web rows are shown.
    let (text, _) = draw(&view, &mut UiState::new(false), 100, 12, now);
    assert!(text.contains("▶ web.1   4001"), "{text}");

    // The details and metrics of a queue worker name it.
    view.details = Some(crate::ui::model::Details { id: "queue.1".into(), ..Default::default() });
    let mut ui = UiState::new(false);
    ui.selected = 4;
    ui.mode = PaneMode::Details;
    let (text, _) = draw(&view, &mut ui, 100, 30, now);
    assert!(text.contains(" details · queue.1 "), "{text}");
    ui.mode = PaneMode::Metrics;
    ui.all_workers = true;
    view.metrics = Some(crate::ui::model::Metrics {
        who: "queue (2 workers, summed)".into(),
        ..Default::default()
    });
    let (text, _) = draw(&view, &mut ui, 100, 30, now);
    assert!(text.contains(" metrics · queue (2 workers, summed) "), "{text}");
    let req = ui.pane_request(&view);
    assert_eq!((req.worker, req.group), (Some(key(1, 1)), true));
}

#[test]
fn scrolling_up_to_a_groups_first_row_shows_its_header() {
    let now = Instant::now();
    let mut view = two_groups(now);
    for slot in 3..=20 {
        view.snapshot.workers.push(queue_worker(slot, WorkerState::Running, 0, now));
        view.extras.push(WorkerExtra::default());
    }
    view.snapshot.groups[1].workers = 20;
    let mut ui = UiState::new(false);
    press(&mut ui, &view, KeyCode::End);
    draw(&view, &mut ui, 100, 24, now);
    for _ in 0..19 {
        press(&mut ui, &view, KeyCode::Up);
        draw(&view, &mut ui, 100, 24, now);
    }
    assert_eq!(ui.selected, 4);
    let (text, _) = draw(&view, &mut ui, 100, 24, now);
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.contains("▶ queue.1")).unwrap_or(0);
    assert!(lines[at - 1].starts_with(" queue  "), "{text}");
}

#[test]
fn a_scheduled_group_counts_down_to_its_next_run() {
    let now = Instant::now();
    let mut view = two_groups(now);
    let left = Duration::from_secs(118);
    for w in view.snapshot.workers.iter_mut().filter(|w| w.key.group == 1) {
        *w = queue_worker(w.key.slot, WorkerState::Scheduled { left: Some(left) }, 0, now);
    }
    let wall = SystemTime::UNIX_EPOCH + Duration::from_hours(490_000);
    view.snapshot.groups[1].next_run = Some(crate::core::Due { left, wall });
    view.snapshot.groups[0].next_reload =
        Some(crate::core::Due { left: Duration::from_mins(3 * 60 + 2), wall });
    let (text, _) = draw(&view, &mut UiState::new(false), 120, 24, now);
    let row = line_with(&text, "queue.2");
    assert!(row.contains("◷ scheduled") && row.contains("in 1m58s"), "{text}");
    assert!(line_with(&text, " queue ").contains("next run in 1m58s"), "{text}");
    assert!(line_with(&text, " web ").contains("next reload in 3h02m"), "{text}");
}
