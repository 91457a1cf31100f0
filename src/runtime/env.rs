//! The environment each worker gets (docs/workers.md): corral's own, minus variables that would
//! lie to the worker (an outer supervisor's `LISTEN_FDS`, say), then the env files', then `env`
//! and `--env`, then corral's.

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
    /// Everything, for a group without env files.
    entries: Vec<Vec<u8>>,
    /// With env files, the entries are merged again whenever the files are read: corral's
    /// inherited variables (under the files), the group's own (over them), corral's (last).
    inherited: Vec<(Vec<u8>, Vec<u8>)>,
    group: Vec<(Vec<u8>, Vec<u8>)>,
    own: Vec<Vec<u8>>,
    files: Vec<std::path::PathBuf>,
    /// `NODE_UNIQUE_ID=<slot>`: Node's own sign that it runs as a cluster worker, and the
    /// number `cluster.worker.id` reports.
    node_cluster: bool,
}

fn is_owned(key: &[u8]) -> bool {
    OWNED.iter().any(|o| key == o.as_bytes())
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
        let inherited: Vec<(Vec<u8>, Vec<u8>)> = inherited
            .iter()
            .filter(|(k, _)| !is_owned(k.as_bytes()))
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        let group_vars: Vec<(Vec<u8>, Vec<u8>)> =
            group.env.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
        let mut own = Vec::new();
        let event_fd = (3 + group.listen.len()).to_string();
        own.push(entry(b"CORRAL_GROUP", group.name.as_bytes()));
        own.push(entry(b"CORRAL_PRIMARY_PID", primary_pid.to_string().as_bytes()));
        own.push(entry(b"CORRAL_EVENT_FD", event_fd.as_bytes()));
        if !group.listen.is_empty() {
            let names: Vec<&str> = group.listen.iter().map(|l| l.name.as_str()).collect();
            own.push(entry(b"LISTEN_FDS", group.listen.len().to_string().as_bytes()));
            own.push(entry(b"LISTEN_FDNAMES", names.join(":").as_bytes()));
        }
        if group.node_ipc {
            own.push(entry(b"NODE_CHANNEL_FD", event_fd.as_bytes()));
            own.push(entry(b"NODE_CHANNEL_SERIALIZATION_MODE", b"json"));
        }
        let mut template = EnvTemplate {
            entries: Vec::new(),
            inherited,
            group: group_vars,
            own,
            files: group.env_files.clone(),
            node_cluster: group.node_cluster,
        };
        template.entries = template.merged(&[]);
        template
    }

    /// The group's env files, read at each spawn (`runtime::env_files`).
    pub fn files(&self) -> &[std::path::PathBuf] {
        &self.files
    }

    /// The shared entries with the env files' variables `from_files` (in file order) between
    /// corral's inherited environment and the group's own.
    pub fn merged(&self, from_files: &[(String, String)]) -> Vec<Vec<u8>> {
        let mut vars: Vec<(&[u8], &[u8])> =
            self.inherited.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        let mut at: std::collections::HashMap<&[u8], usize> =
            vars.iter().enumerate().map(|(i, (k, _))| (*k, i)).collect();
        let files = from_files
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            // What corral sets itself is not a file's to set (a copied `.env` with
            // `NOTIFY_SOCKET`, say).
            .filter(|(k, _)| !is_owned(k));
        let group = self.group.iter().map(|(k, v)| (k.as_slice(), v.as_slice()));
        for (k, v) in files.chain(group) {
            if let Some(&i) = at.get(k) {
                vars[i].1 = v;
            } else {
                at.insert(k, vars.len());
                vars.push((k, v));
            }
        }
        let mut entries: Vec<Vec<u8>> = vars.iter().map(|(k, v)| entry(k, v)).collect();
        entries.extend(self.own.iter().cloned());
        entries
    }

    /// The entries of a group without env files.
    pub fn entries(&self) -> &[Vec<u8>] {
        &self.entries
    }

    /// The complete environment of one worker generation (without `LISTEN_PID`, which
    /// the spawner fills in after fork).
    pub fn for_worker(&self, shared: &[Vec<u8>], slot: u32, generation: u32) -> Vec<Vec<u8>> {
        let mut env = Vec::with_capacity(shared.len() + 3);
        env.extend(shared.iter().cloned());
        env.push(entry(b"CORRAL_WORKER_ID", slot.to_string().as_bytes()));
        env.push(entry(b"CORRAL_GENERATION", generation.to_string().as_bytes()));
        if self.node_cluster {
            env.push(entry(b"NODE_UNIQUE_ID", slot.to_string().as_bytes()));
        }
        env
    }
}
