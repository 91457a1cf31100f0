//! The attached clients' viewers: who is owed a frame, one encoding per distinct pane, a
//! client that has not taken its last frame skipped, gone clients forgotten, and every
//! frame bounded and readable back as the `View` it was built from.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value;

use super::{MAX_ROWS, MAX_TEXT, Viewers, bounded, trim_lines};
use crate::control::server::Client;
use crate::core::{GroupView, Snapshot, WorkerKey, WorkerState, WorkerView};
use crate::report::Stream;
use crate::runtime::dashboard::ViewFeed;
use crate::runtime::logs::Logs;
use crate::ui::model::{PaneMode, PaneRequest, View};

const WEB_1: WorkerKey = WorkerKey { group: 0, slot: 1 };
const WEB_2: WorkerKey = WorkerKey { group: 0, slot: 2 };

fn clients(n: u64) -> HashMap<u64, Rc<Client>> {
    (1..=n).map(|s| (s, Rc::new(Client::new(s)))).collect()
}

fn pane(worker: Option<WorkerKey>) -> PaneRequest {
    PaneRequest { worker, rows: 10, ..PaneRequest::default() }
}

/// The frames a client was sent: its `id`s and views.
fn frames(client: &Client) -> Vec<(Value, View)> {
    client
        .take_queued()
        .iter()
        .map(|line| {
            let v: Value = serde_json::from_slice(line).expect("a frame is JSON");
            let view = serde_json::from_value(v["view"].clone()).expect("a frame holds a View");
            (v["id"].clone(), view)
        })
        .collect()
}

fn snapshot() -> Snapshot {
    let worker = |key: WorkerKey| WorkerView {
        key,
        id: format!("web.{}", key.slot),
        pid: Some(100 + key.slot),
        generation: Some(0),
        state: WorkerState::Running,
        ..WorkerView::default()
    };
    Snapshot {
        groups: vec![GroupView { name: "web".into(), workers: 2, up: 2, ..GroupView::default() }],
        workers: vec![worker(WEB_1), worker(WEB_2)],
        total_restarts: 0,
        shutting_down: false,
        kill_in: None,
    }
}

#[test]
fn each_distinct_pane_is_built_once_and_each_client_gets_its_own_id() {
    let live = clients(3);
    let mut viewers = Viewers::default();
    viewers.subscribe(&live[&1], &Value::from(7), pane(Some(WEB_1)));
    viewers.subscribe(&live[&2], &Value::from("a"), pane(Some(WEB_1)));
    viewers.subscribe(&live[&3], &Value::from(1), pane(None));
    let due = viewers.due(false, |s| live.contains_key(&s));
    assert_eq!(due.len(), 2, "two distinct panes for three clients");
    assert_eq!(due[0].1, [0, 1], "the two clients showing web.1 share one build");

    let names = vec!["web".to_string()];
    let mut logs = Logs::new(true);
    logs.line(std::time::SystemTime::now(), WEB_1, 101, Stream::Stdout, b"one");
    logs.line(std::time::SystemTime::now(), WEB_2, 102, Stream::Stdout, b"two");
    let d = ViewFeed::new(None, None, Vec::new());
    for (request, who) in &due {
        let view = d.view(snapshot(), &logs, &HashMap::new(), &names, request);
        viewers.send(who, &serde_json::to_vec(&view).expect("encode"));
    }
    let got = frames(&live[&1]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 7);
    let texts: Vec<&str> = got[0].1.pane.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["one"]);
    assert_eq!(got[0].1.snapshot, snapshot(), "the table arrives as it was");
    assert_eq!(frames(&live[&2])[0].0, "a");
    assert_eq!(frames(&live[&3])[0].1.pane.lines.len(), 2, "all workers' lines");

    assert!(viewers.due(false, |s| live.contains_key(&s)).is_empty(), "nothing changed: no frame");
    assert_eq!(
        viewers.due(true, |s| live.contains_key(&s)).len(),
        2,
        "a change: every viewer again"
    );
}

#[test]
fn a_client_that_has_not_taken_its_frame_gets_none_and_gone_ones_are_forgotten() {
    let live = clients(2);
    let mut viewers = Viewers::default();
    viewers.subscribe(&live[&1], &Value::from(1), pane(None));
    viewers.subscribe(&live[&2], &Value::from(1), pane(None));
    let due = viewers.due(true, |s| live.contains_key(&s));
    viewers.send(&due[0].1, b"{}");
    // Client 1 reads; client 2 is suspended and has its frame still queued.
    live[&1].take_queued();
    let due = viewers.due(true, |s| live.contains_key(&s));
    assert_eq!(due[0].1, [0], "only the client that took its frame");
    viewers.send(&due[0].1, b"{}");
    live[&2].take_queued();
    let due = viewers.due(false, |s| live.contains_key(&s));
    assert_eq!(due[0].1, [1], "the skipped client is still owed the latest");

    let mut fewer = live.clone();
    fewer.remove(&1);
    viewers.due(false, |s| fewer.contains_key(&s));
    assert!(!viewers.set_pane(1, pane(None)), "a client that went is forgotten");
    assert!(viewers.set_pane(2, pane(Some(WEB_2))));
    viewers.due(false, |_| false);
    assert!(viewers.is_empty());
}

#[test]
fn a_pane_request_and_its_frame_are_bounded() {
    let huge = PaneRequest {
        rows: usize::MAX,
        scroll: usize::MAX,
        filter: "x".repeat(10_000),
        mode: PaneMode::Output,
        ..PaneRequest::default()
    };
    let req = bounded(huge);
    assert_eq!(req.rows, MAX_ROWS);
    assert!(req.rows.checked_add(req.scroll).is_some(), "rows + scroll cannot overflow");
    assert_eq!(req.filter.chars().count(), 256);

    let mut logs = Logs::new(true);
    let long = "é".repeat(MAX_TEXT * 2);
    logs.line(std::time::SystemTime::now(), WEB_1, 101, Stream::Stdout, long.as_bytes());
    let d = ViewFeed::new(None, None, Vec::new());
    let req = PaneRequest { filter: String::new(), scroll: 0, ..req };
    let mut view = d.view(snapshot(), &logs, &HashMap::new(), &["web".into()], &req);
    let full = view.pane.lines[0].text.chars().count();
    trim_lines(&mut view);
    assert!(full > MAX_TEXT, "the local view keeps the whole line");
    assert_eq!(view.pane.lines[0].text.chars().count(), MAX_TEXT, "cut on a char boundary");
}
