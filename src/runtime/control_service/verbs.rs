//! The control verbs that act or read logs: each turns a request into the inputs the
//! dashboard's keys send, or answers from the logs the dashboard shows.

use std::rc::Rc;
use std::time::{Instant, SystemTime};

use serde_json::Value;

use super::{Cx, DEFAULT_LINES};
use crate::control::messages;
use crate::control::server;
use crate::core::{Input, ShutdownTrigger, Stream, UserAction, WorkerKey};
use crate::report::Record;
use crate::runtime::logs::Logs;

/// `kill`, `restart`, `stop`, `start`, `toggle`: the action on every targeted slot.
pub(super) fn act(
    id: &Value,
    target: &str,
    action: fn(WorkerKey) -> UserAction,
    cx: &Cx<'_>,
) -> Vec<u8> {
    match cx.targets(target) {
        Ok(keys) => {
            let ids: Vec<String> = keys.iter().map(|k| k.id(cx.names).to_string()).collect();
            for key in keys {
                cx.inputs.push(Input::User(action(key)));
            }
            messages::ok_with(id, &messages::Reached { workers: ids })
        }
        Err(e) => messages::error(id, &e),
    }
}

pub(super) fn scale(
    id: &Value,
    group: &str,
    workers: Option<u32>,
    delta: Option<i64>,
    cx: &Cx<'_>,
) -> Vec<u8> {
    let Some(g) = cx.names.iter().position(|n| n == group) else {
        return messages::error(
            id,
            &format!("unknown group '{group}' (groups: {})", cx.names.join(", ")),
        );
    };
    let snapshot = cx.core.snapshot(Instant::now());
    let now = snapshot.groups.get(g).map_or(0, |v| i64::from(v.workers));
    let want = match (workers, delta) {
        (Some(n), None) => i64::from(n),
        (None, Some(d)) => now + d,
        _ => return messages::error(id, "scale takes either workers or delta"),
    };
    let max = i64::from(crate::core::MAX_WORKERS);
    if !(1..=max).contains(&want) {
        return messages::error(id, &format!("a group has 1 to {max} workers, not {want}"));
    }
    let g16 = g as u16;
    for _ in 0..(want - now).unsigned_abs() {
        let action = if want > now { UserAction::ScaleUp(g16) } else { UserAction::ScaleDown(g16) };
        cx.inputs.push(Input::User(action));
    }
    messages::ok_with(id, &messages::Scaled { group: group.to_string(), workers: want })
}

/// `reload`: the groups whose reload was queued (the reply waits for them), or the error.
pub(super) fn reload(id: &Value, target: &str, cx: &Cx<'_>) -> Result<Vec<u16>, Vec<u8>> {
    let groups: Vec<u16> = if target == "all" {
        (0..cx.names.len() as u16).collect()
    } else if let Some(g) = cx.names.iter().position(|n| n == target) {
        vec![g as u16]
    } else {
        return Err(messages::error(
            id,
            &format!("unknown group '{target}' (groups: {})", cx.names.join(", ")),
        ));
    };
    if cx.core.shutting_down() {
        return Err(messages::error(id, "corral is shutting down"));
    }
    if let [g] = groups[..]
        && cx.core.waits(g)
    {
        return Err(messages::error(
            id,
            &format!("{target} waits for the groups it depends on: it runs nothing to reload"),
        ));
    }
    let groups: Vec<u16> = groups.into_iter().filter(|&g| !cx.core.waits(g)).collect();
    for &g in &groups {
        super::super::note_queued_reload(cx.core, cx.names, g);
        cx.inputs.push(Input::Reload { group: g, cause: crate::core::ReloadCause::Ctl });
    }
    Ok(groups)
}

pub(super) fn logs(
    client: &Rc<server::Client>,
    id: &Value,
    target: Option<&str>,
    lines: Option<usize>,
    follow: bool,
    cx: &Cx<'_>,
) -> Vec<u8> {
    let keys = match target.map(|t| cx.targets(t)).transpose() {
        Ok(keys) => keys,
        Err(e) => return messages::error(id, &e),
    };
    let want = lines.unwrap_or(DEFAULT_LINES);
    let from = keys.clone().unwrap_or_else(|| cx.core.worker_keys());
    let shown = cx.hub.with_logs(|logs| last_lines(logs, &from, want, cx.names));
    if follow {
        client.follow_logs(id.clone(), keys);
    }
    messages::ok_list(id, "lines", shown.iter().map(Vec::as_slice))
}

/// `send`: a message to workers' Node channels.
pub(super) fn send(id: &Value, target: &str, message: &Value, cx: &mut Cx<'_>) -> Vec<u8> {
    let (core, names) = (cx.core, cx.names);
    let targets = |t: &str| super::targets(core, names, t);
    super::super::node_setup::send_message(cx.node, cx.procs, names, (id, target, message), targets)
}

pub(super) fn shutdown(id: &Value, force: bool, cx: &Cx<'_>) -> Vec<u8> {
    cx.inputs.push(Input::Shutdown(ShutdownTrigger::Control { force }));
    messages::ok_with(id, &messages::Whom { instance: None, pid: std::process::id() })
}

/// The last `want` output lines of `keys`' workers, oldest first, each encoded as an item.
fn last_lines(logs: &Logs, keys: &[WorkerKey], want: usize, names: &[String]) -> Vec<Vec<u8>> {
    let mut all: Vec<(SystemTime, WorkerKey, u32, Stream, &str)> = Vec::new();
    for &key in keys {
        if let Some(log) = logs.get(key) {
            let skip = log.lines.len().saturating_sub(want);
            all.extend(
                log.lines.iter().skip(skip).map(|l| (l.at, key, l.pid, l.stream, l.text.as_str())),
            );
        }
    }
    all.sort_by_key(|(at, ..)| *at);
    let skip = all.len().saturating_sub(want);
    let mut shown = Vec::with_capacity(want.min(all.len()));
    for (at, key, pid, stream, text) in all.into_iter().skip(skip) {
        let mut out = Vec::new();
        let record = Record::Output { key, pid, stream, line: text.as_bytes() };
        crate::report::json_line(&mut out, at, names, &record);
        out.pop(); // its newline: an item of the list
        shown.push(out);
    }
    shown
}
