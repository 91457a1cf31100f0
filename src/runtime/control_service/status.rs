//! `status`: every group and worker as `ctl status` shows them, from the snapshot, the
//! sampler's usage and the logs' statuses.

use std::time::Instant;

use serde_json::Value;

use super::Cx;
use crate::control::messages;
use crate::control::status::{GroupStatus, LastExitStatus, Status, WorkerStatus};
use crate::core::Snapshot;
use crate::runtime::logs::Logs;

pub(super) fn reply(id: &Value, cx: &Cx<'_>) -> Vec<u8> {
    let snapshot = cx.core.snapshot(Instant::now());
    let status = cx.hub.with_logs(|logs| status(cx, &snapshot, logs));
    messages::ok(id, serde_json::to_value(status).unwrap_or(Value::Null))
}

fn status(cx: &Cx<'_>, snapshot: &Snapshot, logs: &Logs) -> Status {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let workers = snapshot
        .workers
        .iter()
        .map(|w| {
            let usage = cx.usage().get(&w.key).filter(|u| Some(u.pid) == w.pid);
            let group = snapshot.groups.get(usize::from(w.key.group));
            let next = match w.state {
                crate::core::WorkerState::Scheduled { .. } => group.and_then(|g| g.next_run),
                _ => None,
            };
            WorkerStatus {
                id: w.id.clone(),
                group: cx.names.get(usize::from(w.key.group)).cloned(),
                worker: w.key.slot,
                pid: w.pid,
                generation: w.generation,
                state: w.state.label().to_string(),
                uptime_ms: w.uptime.map(ms),
                restarts: w.restarts,
                last_exit: w.last_exit.as_ref().map(|e| LastExitStatus {
                    code: e.status.code(),
                    signal: e.status.signal().map(crate::signal::Signal::name),
                    reason: e.reason.as_str().to_string(),
                    uptime_ms: ms(e.uptime),
                }),
                cpu_percent: usage.map(|u| f64::from(u.cpu)),
                memory_bytes: usage.map(|u| u.rss),
                status: logs.get(w.key).and_then(|l| l.status_of(w.pid)).map(str::to_string),
                waiting_for: group
                    .filter(|_| w.state == crate::core::WorkerState::Waiting)
                    .map(|g| g.waiting_for.clone()),
                next_run: next.map(|n| crate::report::format_ts(n.wall)),
                next_run_in_ms: next.map(|n| ms(n.left)),
                probes: w
                    .probes
                    .iter()
                    .map(|p| crate::control::status::ProbeStatus {
                        probe: p.kind.as_str().to_string(),
                        state: match p.passing {
                            Some(true) => "passing",
                            Some(false) => "failing",
                            None => "pending",
                        }
                        .to_string(),
                        failures: p.failures,
                    })
                    .collect(),
            }
        })
        .collect();
    let at = |d: Option<crate::core::Due>| d.map(|d| crate::report::format_ts(d.wall));
    let groups = snapshot
        .groups
        .iter()
        .map(|g| GroupStatus {
            name: g.name.clone(),
            workers: g.workers,
            up: g.up,
            waiting_for: g.waiting_for.clone(),
            blocked: g.blocked.clone(),
            next_run: at(g.next_run),
            next_reload: at(g.next_reload),
        })
        .collect();
    let problems = crate::core::health::problems(snapshot);
    Status {
        healthy: problems.is_empty(),
        problems,
        instance: cx.instance.to_string(),
        pid: std::process::id(),
        shutting_down: snapshot.shutting_down,
        restarts: snapshot.total_restarts,
        groups,
        workers,
    }
}
