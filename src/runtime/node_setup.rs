//! Setting up the Node channels and the port broker from the groups, reporting the
//! workers' bad cluster messages, and `ctl send`'s messages to workers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::GroupIo;
use super::hub::Reports;
use super::node::NodeChannels;
use super::ports::{GroupPorts, PortBroker};
use super::procs::ProcessTable;
use crate::core::WorkerKey;
use crate::protocol::ProtocolError;
use crate::report::Record;

/// How soon a message that met a full channel is tried again.
pub(super) const RETRY: Duration = Duration::from_millis(20);

/// The port broker of every group: sockets bound on demand for Node cluster workers and
/// for the binds corral adopts, and copies of the groups' `--listen` sockets.
pub(super) fn broker(groups: &[GroupIo]) -> Arc<Mutex<PortBroker>> {
    let here = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let ports = groups
        .iter()
        .map(|g| {
            let cwd = g.spec.cwd.clone().unwrap_or_else(|| here.clone());
            let shares = g.spec.node_cluster || g.spec.share_binds;
            GroupPorts::new(cwd, if shares { &g.listeners } else { &[] })
        })
        .collect();
    Arc::new(Mutex::new(PortBroker::new(ports)))
}

/// A worker's bad cluster messages are reported at most this often (the count says the rest).
const REPORT_EVERY: Duration = Duration::from_secs(1);

pub(super) fn channels(groups: &[GroupIo], broker: Arc<Mutex<PortBroker>>) -> NodeChannels {
    for g in groups.iter().filter(|g| g.spec.node_cluster) {
        if g.spec.policy.restart != crate::core::RestartPolicy::Always {
            tracing::warn!(
                "{}: a Node cluster worker never exits by itself while its channel is open, so \
                 with --restart {} it runs until stopped; --node-cluster off for a one-shot \
                 script",
                g.spec.name,
                if g.spec.policy.restart == crate::core::RestartPolicy::Never {
                    "never"
                } else {
                    "on-failure"
                }
            );
        }
    }
    // `listening` is the readiness of a group that has none of its own.
    let ready_on_listen =
        groups.iter().map(|g| g.spec.node_cluster && !g.spec.wait_ready).collect();
    let names = groups.iter().map(|g| g.spec.name.clone()).collect();
    let round_robin = groups
        .iter()
        .map(|g| g.spec.node_cluster_sched == crate::config::Sched::RoundRobin)
        .collect();
    NodeChannels::new(broker, ready_on_listen, round_robin, names)
}

/// Reports the workers' bad cluster messages, at most once per `REPORT_EVERY`.
#[derive(Default)]
pub(super) struct NodeErrors {
    /// When a bad cluster message was last reported.
    reported: Option<Instant>,
}

impl NodeErrors {
    pub fn report(&mut self, key: WorkerKey, pid: u32, hub: &Reports, names: &[String]) {
        let count = hub.protocol_error(key);
        let now = Instant::now();
        if self.reported.is_some_and(|t| now.duration_since(t) < REPORT_EVERY) {
            return;
        }
        self.reported = Some(now);
        tracing::warn!(worker = %key.id(names), pid, count, "ignored a cluster message");
        let error = ProtocolError::Malformed;
        hub.report(std::time::SystemTime::now(), &Record::ProtocolError { key, pid, error, count });
    }
}

/// `ctl send`: the message to every targeted worker whose channel is Node IPC; an error
/// when one cannot take it (the others still get it). `targets` resolves `target`.
pub(super) fn send_message(
    node: &mut NodeChannels,
    procs: &ProcessTable,
    names: &[String],
    (id, target, message): (&Value, &str, &Value),
    targets: impl FnOnce(&str) -> Result<Vec<WorkerKey>, String>,
) -> Vec<u8> {
    use crate::control::messages;
    let reserved =
        message.get("cmd").and_then(Value::as_str).is_some_and(|c| c.starts_with("NODE_"));
    if reserved {
        return messages::error(id, "NODE_ commands are Node's own and cannot be sent");
    }
    let keys = match targets(target) {
        Ok(keys) => keys,
        Err(e) => return messages::error(id, &e),
    };
    let line = message.to_string();
    if line.len() > messages::MAX_LINE {
        return messages::error(id, "the message is longer than 1 MiB");
    }
    let running = procs.running(&keys);
    let mut sent = Vec::new();
    let mut failed = Vec::new();
    for (key, generation) in running {
        match node.send_user(key, generation, line.as_bytes()) {
            Ok(()) => sent.push(key.id(names).to_string()),
            Err(e) => failed.push(format!("{}: {e}", key.id(names))),
        }
    }
    if !failed.is_empty() {
        let sent =
            if sent.is_empty() { String::new() } else { format!("sent to {}; ", sent.join(", ")) };
        return messages::error(id, &format!("{sent}not sent to {}", failed.join("; ")));
    }
    if sent.is_empty() {
        return messages::error(id, &format!("no running worker in '{target}'"));
    }
    messages::ok_with(id, &messages::Reached { workers: sent })
}
