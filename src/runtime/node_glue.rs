//! The main loop's side of the Node channels: building them from the groups, applying what
//! a cluster message means, and the shutdown notice of a graceful stop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::node::{Effect, NodeChannels, NodeEvent};
use super::ports::{GroupPorts, PortBroker};
use super::{GroupIo, Runtime};
use crate::core::WorkerKey;
use crate::protocol::{self, ProtocolError};
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

impl Runtime {
    pub(super) fn on_node(&mut self, event: NodeEvent) {
        let inbound = match event {
            NodeEvent::Inbound(inbound) => inbound,
            NodeEvent::Connection(at, conn) => return self.node.dispatch(at, conn),
        };
        for effect in self.node.on_inbound(inbound) {
            match effect {
                Effect::Input(input) => self.inputs.push(input),
                Effect::ProtocolError { key, pid } => self.node_protocol_error(key, pid),
            }
        }
    }

    fn node_protocol_error(&mut self, key: WorkerKey, pid: u32) {
        let count = self.hub.protocol_error(key);
        let now = Instant::now();
        if self.node_reported.is_some_and(|t| now.duration_since(t) < REPORT_EVERY) {
            return;
        }
        self.node_reported = Some(now);
        tracing::warn!(worker = %key.id(&self.names), pid, count, "ignored a cluster message");
        let error = ProtocolError::Malformed;
        self.hub.report(
            std::time::SystemTime::now(),
            &Record::ProtocolError { key, pid, error, count },
        );
    }

    /// The last worker of a group that stopped exited: its shared sockets close (new
    /// connections are refused while nobody serves). Checked only when the exiting slot
    /// itself stays stopped, so an exit storm costs a lookup per exit, not a group scan.
    pub(super) fn close_stopped_group(&mut self, event: &crate::core::Event) {
        use crate::core::{EventKind, Scope};
        let (Scope::Worker(key), EventKind::Exited { .. }) = (event.scope, &event.kind) else {
            return;
        };
        if self.core.slot_stopped(key)
            && self.core.group_stopped(key.group)
            && !self.core.shutting_down()
        {
            self.node.group_stopped(key.group);
        }
    }

    /// The notice before a graceful stop's signal: Node's `disconnect` for a cluster worker,
    /// corral's shutdown line for everyone else.
    pub(super) fn notify_shutdown(&mut self, key: WorkerKey, pid: u32) {
        let Some(&(key_at, generation)) = self.leaders.get(&pid) else {
            tracing::debug!(worker = %self.id(key), pid, "no channel for the shutdown notice");
            return;
        };
        let disconnect_first =
            self.groups.get(usize::from(key.group)).is_some_and(|g| g.spec.policy.disconnect_first);
        if disconnect_first {
            match self.node.disconnect(key_at, generation) {
                None => {
                    tracing::debug!(worker = %self.id(key), pid, "asked to disconnect");
                    return;
                }
                Some(done) => self.inputs.push(done),
            }
        }
        if let Some(io) = self.generations.get(&(key_at, generation)) {
            tracing::debug!(worker = %self.id(key), pid, "sending the shutdown notice");
            io.channel.send(protocol::SHUTDOWN_LINE);
        }
    }
}

impl Runtime {
    /// `ctl send`: the message to every targeted worker whose channel is Node IPC; an error
    /// when one cannot take it (the others still get it).
    pub(super) fn send_message(&mut self, id: &Value, target: &str, message: &Value) -> Vec<u8> {
        use crate::control::messages;
        let reserved =
            message.get("cmd").and_then(Value::as_str).is_some_and(|c| c.starts_with("NODE_"));
        if reserved {
            return messages::error(id, "NODE_ commands are Node's own and cannot be sent");
        }
        let keys = match self.targets(target) {
            Ok(keys) => keys,
            Err(e) => return messages::error(id, &e),
        };
        let line = message.to_string();
        if line.len() > messages::MAX_LINE {
            return messages::error(id, "the message is longer than 1 MiB");
        }
        let mut running: Vec<(WorkerKey, u32)> =
            self.leaders.values().copied().filter(|(k, _)| keys.contains(k)).collect();
        running.sort_unstable();
        let mut sent = Vec::new();
        let mut failed = Vec::new();
        for (key, generation) in running {
            match self.node.send_user(key, generation, line.as_bytes()) {
                Ok(()) => sent.push(self.id(key)),
                Err(e) => failed.push(format!("{}: {e}", self.id(key))),
            }
        }
        if !failed.is_empty() {
            let sent = if sent.is_empty() {
                String::new()
            } else {
                format!("sent to {}; ", sent.join(", "))
            };
            return messages::error(id, &format!("{sent}not sent to {}", failed.join("; ")));
        }
        if sent.is_empty() {
            return messages::error(id, &format!("no running worker in '{target}'"));
        }
        messages::ok_with(id, &messages::Reached { workers: sent })
    }
}
