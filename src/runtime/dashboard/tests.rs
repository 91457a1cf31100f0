//! The runtime's side of the dashboard with several groups: every pane names each line's
//! worker by its own group's name, and a group's metrics sum that group only.

use super::views::{details, metrics};
use super::{GroupFacts, pane};
use crate::core::Stream;
use crate::core::{GroupView, Snapshot, WorkerKey, WorkerState, WorkerView};
use crate::runtime::logs::Logs;
use crate::ui::model::{PaneMode, PaneRequest};

const WEB_1: WorkerKey = WorkerKey { group: 0, slot: 1 };
const QUEUE_1: WorkerKey = WorkerKey { group: 1, slot: 1 };
const QUEUE_2: WorkerKey = WorkerKey { group: 1, slot: 2 };

fn names() -> Vec<String> {
    vec!["web".into(), "queue".into()]
}

fn view(key: WorkerKey, pid: u32) -> WorkerView {
    WorkerView {
        key,
        id: format!("{}.{}", names()[usize::from(key.group)], key.slot),
        pid: Some(pid),
        generation: Some(0),
        state: WorkerState::Running,
        ..WorkerView::default()
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        groups: vec![
            GroupView { name: "web".into(), workers: 1, up: 1, ..GroupView::default() },
            GroupView { name: "queue".into(), workers: 2, up: 2, ..GroupView::default() },
        ],
        workers: vec![view(WEB_1, 10), view(QUEUE_1, 20), view(QUEUE_2, 21)],
        total_restarts: 0,
        shutting_down: false,
        kill_in: None,
    }
}

fn logs() -> Logs {
    let mut logs = Logs::new(true);
    logs.line(std::time::SystemTime::now(), WEB_1, 10, Stream::Stdout, b"GET /");
    logs.line(std::time::SystemTime::now(), QUEUE_1, 20, Stream::Stdout, b"job 1");
    logs.line(std::time::SystemTime::now(), QUEUE_2, 21, Stream::Stderr, b"job 2 failed");
    for (key, pid, value) in [(WEB_1, 10, 100), (QUEUE_1, 20, 3), (QUEUE_2, 21, 4)] {
        let line = format!(r#"{{"type":"metric","name":"done","value":{value}}}"#);
        logs.event(std::time::SystemTime::now(), key, pid, line.as_bytes(), None);
    }
    logs
}

#[test]
fn every_pane_line_carries_its_own_groups_id() {
    let snap = snapshot();
    let keys: Vec<WorkerKey> = snap.workers.iter().map(|w| w.key).collect();
    let req = PaneRequest { rows: 10, ..PaneRequest::default() };
    let all = pane::pane(&logs(), &crate::core::KeyMap::default(), &keys, &names(), &req);
    let mut ids: Vec<&str> = all.lines.iter().map(|l| l.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["queue.1", "queue.2", "web.1"]);
    let one = PaneRequest { worker: Some(QUEUE_2), ..req };
    let lines = pane::pane(&logs(), &crate::core::KeyMap::default(), &keys, &names(), &one).lines;
    let shown: Vec<(&str, &str)> = lines.iter().map(|l| (l.id.as_str(), l.text.as_str())).collect();
    assert_eq!(shown, [("queue.2", "job 2 failed")]);
}

#[test]
fn a_groups_metrics_and_a_workers_details_stay_in_their_group() {
    let snap = snapshot();
    let req = PaneRequest {
        worker: Some(QUEUE_1),
        mode: PaneMode::Metrics,
        group: true,
        ..PaneRequest::default()
    };
    let m = metrics(&snap, &logs(), &crate::core::KeyMap::default(), &names(), &req);
    assert_eq!(m.who, "queue (2 workers, summed)");
    let done = m.series.iter().find(|s| s.name == "done").and_then(|s| s.latest);
    assert_eq!(done, Some(7.0), "queue's 3 + 4, not web's 100");

    let facts = vec![
        GroupFacts { command: "web-server".into(), ..GroupFacts::default() },
        GroupFacts { command: "queue-worker".into(), ..GroupFacts::default() },
    ];
    let req = PaneRequest { worker: Some(QUEUE_2), mode: PaneMode::Details, ..req };
    let d = details(&snap, &logs(), &crate::core::KeyMap::default(), &facts, &req);
    let d = d.map(|d| (d.id, d.command, d.pid));
    assert_eq!(d, Some(("queue.2".into(), "queue-worker".into(), Some(21))));
}

#[test]
fn the_filter_reads_the_text_without_escapes_and_the_line_stays_as_received() {
    let mut logs = Logs::new(true);
    logs.line(
        std::time::SystemTime::now(),
        WEB_1,
        10,
        Stream::Stdout,
        b"\x1b[1mcolo\x1b[32mured\x1b[0m word",
    );
    logs.line(std::time::SystemTime::now(), WEB_1, 10, Stream::Stdout, b"plain line");
    logs.line(std::time::SystemTime::now(), WEB_1, 10, Stream::Stdout, b"\x1b[31m1m\x1b[0m");
    let keys = [WEB_1];
    let req = |filter: &str| PaneRequest {
        worker: Some(WEB_1),
        rows: 10,
        filter: filter.into(),
        ..PaneRequest::default()
    };
    let shown = |filter: &str| {
        let p = pane::pane(&logs, &crate::core::KeyMap::default(), &keys, &names(), &req(filter));
        p.lines.into_iter().map(|l| l.text).collect::<Vec<_>>()
    };
    assert_eq!(shown("coloured"), ["\x1b[1mcolo\x1b[32mured\x1b[0m word"]);
    assert!(shown("32m").is_empty(), "escapes are not text");
    assert_eq!(shown("1m"), ["\x1b[31m1m\x1b[0m"]);
}
