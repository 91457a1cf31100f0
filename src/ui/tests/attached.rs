//! An attached dashboard (`corral attach`): its view survives the trip through JSON, the
//! footer says whose corral it is, `q` detaches and `Q` asks before shutting it down.

use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{draw, normal, press, view_of, worker};
use crate::core::{ExitReason, ExitStatus, QuitKey, ShutdownTrigger, WorkerState};
use crate::signal::Signal;
use crate::ui::model::{
    Attached, Details, ExitRecord, Metrics, PaneRequest, Series, SeriesKind, UiRequest, View,
};
use crate::ui::state::{Effect, UiState};

fn attached(view: View) -> View {
    let attached = Some(Attached { instance: "shop".into(), pid: 4242, notice: None });
    View { attached, ..view }
}

/// Every worker state, a last exit of each kind, metrics and details: what a frame can hold.
fn full(now: Instant) -> View {
    let every_state = [
        WorkerState::Starting,
        WorkerState::Running,
        WorkerState::Stopping,
        WorkerState::Backoff { left: Duration::from_millis(1400) },
        WorkerState::Stopped,
        WorkerState::GaveUp,
        WorkerState::Failed { left: Duration::from_secs(3), error: "ENOENT".into() },
        WorkerState::Scheduled { left: Some(Duration::from_secs(118)) },
        WorkerState::Scheduled { left: None },
    ];
    let exits = [
        (ExitStatus::Signal(Signal::SEGV), ExitReason::Crashed),
        (ExitStatus::Code(0), ExitReason::Exited),
        (ExitStatus::Signal(Signal::KILL), ExitReason::KilledByUser),
        (ExitStatus::Code(143), ExitReason::HeartbeatTimeout),
    ];
    let workers = every_state
        .into_iter()
        .enumerate()
        .map(|(i, state)| {
            let (status, reason) = exits[i % exits.len()];
            let mut w = worker(i as u32 + 1, state, i as u32, Some((status, reason, 30)), now);
            w.crash_looping = i == 3;
            w.replacement = (i == 1).then_some(777);
            w
        })
        .collect();
    let at = SystemTime::UNIX_EPOCH + Duration::from_hours(490_000);
    let mut view = view_of(workers);
    let due = crate::core::Due { left: Duration::from_secs(118), wall: at };
    view.snapshot.groups[0].next_run = Some(due);
    view.snapshot.groups[0].next_reload = Some(due);
    View {
        metrics: Some(Metrics {
            who: "web.1".into(),
            series: vec![Series {
                name: "rps".into(),
                kind: SeriesKind::Metric,
                latest: Some(12.5),
                rate: None,
                points: vec![None, Some(1.0), Some(2.5)],
            }],
            dropped: 2,
            dropped_names: vec!["m65".into()],
        }),
        details: Some(Details {
            id: "web.1".into(),
            command: "node server.js".into(),
            exits: vec![ExitRecord {
                at,
                status: ExitStatus::Signal(Signal::ABRT),
                reason: ExitReason::MemoryLimit,
                uptime: Duration::from_millis(2500),
            }],
            ..Details::default()
        }),
        log_path: Some("/tmp/corral.log".into()),
        ..view
    }
}

#[test]
fn a_view_survives_the_wire_with_ages_for_instants() {
    let now = Instant::now();
    let sent = full(now);
    let before = Instant::now();
    let json = serde_json::to_vec(&sent).expect("encode");
    let got: View = serde_json::from_slice(&json).expect("decode");
    let after = Instant::now();
    // A last exit travels as its age, cut to the ms, and comes back that long before the
    // decoder's now: never earlier than it was (the cut only makes it younger), and later by
    // at most the time the trip took plus the ms cut. Bounds from clock readings, not a
    // guessed tolerance, so a slow trip on a loaded machine cannot fail it.
    let trip = after - before + Duration::from_millis(1);
    for (a, b) in sent.snapshot.workers.iter().zip(&got.snapshot.workers) {
        let (ea, eb) = (a.last_exit.as_ref().expect("exit"), b.last_exit.as_ref().expect("exit"));
        assert!(eb.at >= ea.at, "{:?} older than sent", ea.at - eb.at);
        assert!(eb.at <= ea.at + trip, "{:?} younger than sent; trip {trip:?}", eb.at - ea.at);
    }
    let mut snapshot = got.snapshot.clone();
    for (w, orig) in snapshot.workers.iter_mut().zip(&sent.snapshot.workers) {
        if let (Some(e), Some(o)) = (w.last_exit.as_mut(), orig.last_exit.as_ref()) {
            e.at = o.at;
        }
    }
    assert_eq!(snapshot, sent.snapshot);
    assert_eq!(got.extras, sent.extras);
    assert_eq!(got.pane, sent.pane);
    assert_eq!(got.metrics, sent.metrics);
    assert_eq!(got.details, sent.details);
    assert_eq!(got.crash_history, sent.crash_history);
    assert_eq!((got.events_per_sec, got.log_path), (sent.events_per_sec, sent.log_path));
    assert!(got.attached.is_none(), "who is attached is the client's to say, never sent");
}

#[test]
fn a_pane_request_round_trips_and_defaults_what_is_left_out() {
    let req = PaneRequest { worker: Some(super::key(1, 3)), rows: 7, ..PaneRequest::default() };
    let json = serde_json::to_string(&req).expect("encode");
    assert!(json.contains(r#""worker":{"group":1,"slot":3}"#), "{json}");
    assert_eq!(serde_json::from_str::<PaneRequest>(&json).expect("decode"), req);
    let short: PaneRequest = serde_json::from_str(r#"{"mode":"events"}"#).expect("defaults");
    assert_eq!(short.mode, crate::ui::model::PaneMode::Events);
    assert!(serde_json::from_str::<PaneRequest>(r#"{"rowz":1}"#).is_err(), "unknown field");
}

#[test]
fn the_footer_says_whose_corral_and_q_only_detaches() {
    let now = Instant::now();
    let view = attached(normal(now));
    let mut ui = UiState::new(false);
    let (text, _) = draw(&view, &mut ui, 80, 24, now);
    assert!(text.contains("attached to shop (pid 4242) · q detach · Q shut shop down"), "{text}");
    assert!(text.contains("q detach") && !text.contains("q quit"), "{text}");
    let quit = vec![Effect::Send(UiRequest::Quit(ShutdownTrigger::Key(QuitKey::Q)))];
    assert_eq!(press(&mut ui, &view, KeyCode::Char('q')), quit, "q is the same request…");
    // …which `attach` reads as "detach": only `Shutdown` stops the corral.
}

#[test]
fn shift_q_asks_first_and_only_y_shuts_down() {
    let now = Instant::now();
    let view = attached(normal(now));
    let mut ui = UiState::new(false);
    assert!(press(&mut ui, &view, KeyCode::Char('Q')).is_empty());
    let (text, _) = draw(&view, &mut ui, 80, 24, now);
    assert!(text.contains("shut down shop and all its workers? y/n"), "{text}");
    assert!(press(&mut ui, &view, KeyCode::Char('n')).is_empty(), "n: nothing");
    let (text, _) = draw(&view, &mut ui, 80, 24, now);
    assert!(text.contains("shop keeps running"), "{text}");
    press(&mut ui, &view, KeyCode::Char('Q'));
    assert_eq!(press(&mut ui, &view, KeyCode::Char('y')), vec![Effect::Send(UiRequest::Shutdown)]);
    press(&mut ui, &view, KeyCode::Char('Q'));
    let ctrl_c = ui.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), &view, now);
    let detach = vec![Effect::Send(UiRequest::Quit(ShutdownTrigger::Key(QuitKey::CtrlC)))];
    assert_eq!(ctrl_c, detach, "Ctrl-C at the question still only detaches");
    // Locally `Q` asks nothing: `q` is the quit there.
    let mut local = UiState::new(false);
    assert!(press(&mut local, &normal(now), KeyCode::Char('Q')).is_empty());
    assert!(!local.confirming);
}

#[test]
fn an_error_reply_is_shown_once() {
    let now = Instant::now();
    let mut view = attached(normal(now));
    let mut ui = UiState::new(false);
    if let Some(a) = view.attached.as_mut() {
        a.notice = Some((1, "unknown worker 'web.9'".into()));
    }
    ui.adopt_notice(&view, now);
    let (text, _) = draw(&view, &mut ui, 80, 24, now);
    assert!(text.contains("unknown worker 'web.9'"), "{text}");
    ui.notice = None;
    ui.adopt_notice(&view, now);
    assert!(ui.notice.is_none(), "the same notice is not shown again");
}
