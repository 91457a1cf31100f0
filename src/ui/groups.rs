//! The table's lines with several groups (docs/config.md): each group's rows under a header line
//! with its own up/total and restarts. The header is not a row: the selection, which is an
//! index into `snapshot.workers`, never lands on it. With one group there is no header
//! line; the dashboard's title line already says the same of that group.

use crate::core::{GroupView, Snapshot, WorkerView};

/// One line of the table body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableLine {
    /// Index into `snapshot.groups`.
    Group(usize),
    /// Index into `snapshot.workers`.
    Worker(usize),
}

/// The table's lines in display order: worker rows, and with more than one group a header
/// line before each group's rows (the core lists workers group by group).
pub fn table_lines(snapshot: &Snapshot) -> Vec<TableLine> {
    let headers = snapshot.groups.len() > 1;
    let mut lines = Vec::with_capacity(snapshot.workers.len() + snapshot.groups.len());
    let mut current = None;
    for (i, w) in snapshot.workers.iter().enumerate() {
        let group = usize::from(w.key.group);
        if headers && current != Some(group) {
            lines.push(TableLine::Group(group));
            current = Some(group);
        }
        lines.push(TableLine::Worker(i));
    }
    lines
}

/// Where worker `selected` is among `lines` (0 when there is no such worker).
pub fn line_of(lines: &[TableLine], selected: usize) -> usize {
    lines.iter().position(|l| *l == TableLine::Worker(selected)).unwrap_or(0)
}

/// The worker at line `at`, or the nearest one in the direction of `forward` (then the
/// other way), so a move that ends on a header ends on a row beside it.
pub fn worker_near(lines: &[TableLine], at: usize, forward: bool) -> Option<usize> {
    let at = at.min(lines.len().checked_sub(1)?);
    let worker = |l: &TableLine| match *l {
        TableLine::Worker(i) => Some(i),
        TableLine::Group(_) => None,
    };
    let ahead = || lines[at..].iter().find_map(worker);
    let behind = || lines[..=at].iter().rev().find_map(worker);
    if forward { ahead().or_else(behind) } else { behind().or_else(ahead) }
}

/// What a group's header line says, besides its name: `3/4 up · restarts 2`, and what is
/// under way (`reloading`, `scaling down to 3`).
pub struct GroupSummary {
    pub counts: String,
    pub under_way: Vec<String>,
}

/// The summary of group `index`, from its rows.
pub fn summary(snapshot: &Snapshot, index: usize, group: &GroupView) -> GroupSummary {
    use std::fmt::Write as _;
    let rows: Vec<&WorkerView> =
        snapshot.workers.iter().filter(|w| usize::from(w.key.group) == index).collect();
    let restarts: u32 = rows.iter().map(|w| w.restarts).sum();
    let mut counts = format!("{}/{} up · restarts {restarts}", group.up, group.workers);
    if let Some(next) = group.next_run {
        let _ = write!(counts, " · next run in {}", super::format::uptime(next.left));
    }
    if let Some(next) = group.next_reload {
        let _ = write!(counts, " · next reload in {}", super::format::uptime(next.left));
    }
    let mut under_way = Vec::new();
    if rows.iter().any(|w| w.replacement.is_some()) {
        under_way.push("reloading".to_string());
    }
    // A group being scaled down keeps its retiring rows until they have stopped.
    let shown = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    if shown > group.workers {
        under_way.push(format!("scaling down to {}", group.workers));
    }
    if !group.waiting_for.is_empty() {
        let what = group.waiting_for.join(", ");
        under_way.push(match &group.blocked {
            Some(why) => format!("blocked: waits for {what}, but {why}"),
            None => format!("waiting for {what}"),
        });
    }
    GroupSummary { counts, under_way }
}
