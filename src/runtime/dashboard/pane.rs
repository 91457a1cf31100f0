//! The output pane's lines: the newest that match, of one worker or all merged by time;
//! in the events view the supervisor's lifecycle lines for each worker are merged in.

use std::borrow::Cow;
use std::time::SystemTime;

use super::WorkerHistory;
use crate::core::Stream;
use crate::core::WorkerKey;
use crate::runtime::logs::Logs;
use crate::ui::model::{LineKind, Pane, PaneLine, PaneMode, PaneRequest, filter_matches};

/// The newest `rows + scroll` matching lines (of one worker or all, merged by time),
/// minus the `scroll` newest: only what fits is copied.
pub fn pane(
    logs: &Logs,
    histories: &crate::core::KeyMap<WorkerHistory>,
    keys: &[WorkerKey],
    names: &[String],
    req: &PaneRequest,
) -> Pane {
    let events = match req.mode {
        PaneMode::Output => false,
        PaneMode::Events => true,
        // The other views draw from other data; their pane stays empty.
        PaneMode::Metrics | PaneMode::Details => return Pane::default(),
    };
    let want = req.rows + req.scroll;
    let selected: Vec<WorkerKey> = match req.worker {
        Some(k) => vec![k],
        None => keys.to_vec(),
    };
    let mut lines: Vec<PaneLine> = Vec::new();
    let mut matching = 0;
    for key in selected {
        let id = key.id(names).to_string();
        let start = lines.len();
        let mut take = |at: SystemTime, kind: LineKind, text: Cow<'_, str>| {
            // The filter reads the text people see: without escape sequences.
            if req.filter.is_empty() || filter_matches(&req.filter, &crate::ansi::strip(&text)) {
                matching += 1;
                lines.push(PaneLine { at, id: id.clone(), kind, text: text.into_owned() });
            }
        };
        if events && let Some(h) = histories.get(&key) {
            for (at, text) in &h.lifecycle {
                take(*at, LineKind::Supervisor, Cow::Borrowed(text));
            }
        }
        let Some(log) = logs.get(key) else { continue };
        // Without a filter everything matches: count the old lines without copying them.
        let total = if events { log.events.len() } else { log.lines.len() };
        let skipped = if req.filter.is_empty() { total.saturating_sub(want) } else { 0 };
        if events {
            for e in log.events.iter().skip(skipped) {
                take(e.at, LineKind::Event, Cow::Owned(e.data.to_string()));
            }
        } else {
            for l in log.lines.iter().skip(skipped) {
                let kind = match l.stream {
                    Stream::Stdout => LineKind::Stdout,
                    Stream::Stderr => LineKind::Stderr,
                };
                take(l.at, kind, Cow::Borrowed(&l.text));
            }
        }
        matching += skipped;
        // This worker's lines in time order; keep only its newest `want`.
        let mine = &mut lines[start..];
        mine.sort_by_key(|l| l.at);
        let excess = mine.len().saturating_sub(want);
        lines.drain(start..start + excess);
    }
    lines.sort_by_key(|l| l.at);
    let end = lines.len().saturating_sub(req.scroll.min(lines.len()));
    let start = end.saturating_sub(req.rows);
    Pane { lines: lines[start..end].to_vec(), matching }
}
