//! The environment each worker gets (docs/workers.md): corral's own, minus variables that would
//! lie to the worker (an outer supervisor's `LISTEN_FDS`, say), plus `--env`, plus corral's.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use crate::config::GroupSpec;

/// Variables corral sets itself; inherited values are dropped so nothing stale leaks.
const OWNED: &[&str] = &[
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "NODE_CHANNEL_FD",
    "NODE_CHANNEL_SERIALIZATION_MODE",
    "NODE_UNIQUE_ID",
    "CORRAL_GROUP",
    "CORRAL_WORKER_ID",
    "CORRAL_GENERATION",
    "CORRAL_PRIMARY_PID",
    "CORRAL_EVENT_FD",
    // corral's own service manager talks to corral, not to its workers.
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
];

/// `KEY=VALUE` entries shared by every worker of a group.
pub struct EnvTemplate {
    entries: Vec<Vec<u8>>,
    /// `NODE_UNIQUE_ID=<slot>`: Node's own sign that it runs as a cluster worker, and the
    /// number `cluster.worker.id` reports.
    node_cluster: bool,
}

fn entry(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(key.len() + value.len() + 1);
    e.extend_from_slice(key);
    e.push(b'=');
    e.extend_from_slice(value);
    e
}

impl EnvTemplate {
    pub fn new(group: &GroupSpec, inherited: &[(OsString, OsString)], primary_pid: u32) -> Self {
        let mut vars: Vec<(Vec<u8>, Vec<u8>)> = inherited
            .iter()
            .filter(|(k, _)| !OWNED.iter().any(|o| k.as_bytes() == o.as_bytes()))
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        for (k, v) in &group.env {
            let (k, v) = (k.as_bytes().to_vec(), v.as_bytes().to_vec());
            match vars.iter_mut().find(|(existing, _)| *existing == k) {
                Some(slot) => slot.1 = v,
                None => vars.push((k, v)),
            }
        }
        let mut entries: Vec<Vec<u8>> = vars.iter().map(|(k, v)| entry(k, v)).collect();
        let event_fd = (3 + group.listen.len()).to_string();
        entries.push(entry(b"CORRAL_GROUP", group.name.as_bytes()));
        entries.push(entry(b"CORRAL_PRIMARY_PID", primary_pid.to_string().as_bytes()));
        entries.push(entry(b"CORRAL_EVENT_FD", event_fd.as_bytes()));
        if !group.listen.is_empty() {
            let names: Vec<&str> = group.listen.iter().map(|l| l.name.as_str()).collect();
            entries.push(entry(b"LISTEN_FDS", group.listen.len().to_string().as_bytes()));
            entries.push(entry(b"LISTEN_FDNAMES", names.join(":").as_bytes()));
        }
        if group.node_ipc {
            entries.push(entry(b"NODE_CHANNEL_FD", event_fd.as_bytes()));
            entries.push(entry(b"NODE_CHANNEL_SERIALIZATION_MODE", b"json"));
        }
        EnvTemplate { entries, node_cluster: group.node_cluster }
    }

    /// The complete environment of one worker generation (without `LISTEN_PID`, which
    /// the spawner fills in after fork).
    pub fn for_worker(&self, slot: u32, generation: u32) -> Vec<Vec<u8>> {
        let mut env = Vec::with_capacity(self.entries.len() + 2);
        env.extend(self.entries.iter().cloned());
        env.push(entry(b"CORRAL_WORKER_ID", slot.to_string().as_bytes()));
        env.push(entry(b"CORRAL_GENERATION", generation.to_string().as_bytes()));
        if self.node_cluster {
            env.push(entry(b"NODE_UNIQUE_ID", slot.to_string().as_bytes()));
        }
        env
    }
}
