//! `status`'s reply (docs/control.md), one type for the server that fills it and the
//! `ctl` that prints it: every worker's row, every group's line, and the health verdict.

use serde::{Deserialize, Serialize};

/// The reply to `{"cmd":"status"}`, besides `id` and `ok`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// Every worker that should be up is up and ready (docs/application.md#health-ctl-status-livez-readyz).
    pub healthy: bool,
    /// Why not, when not.
    pub problems: Vec<String>,
    pub instance: String,
    pub pid: u32,
    pub shutting_down: bool,
    pub restarts: u32,
    pub groups: Vec<GroupStatus>,
    pub workers: Vec<WorkerStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupStatus {
    pub name: String,
    pub workers: u32,
    pub up: u32,
    /// The dependencies it still waits for (`db ready`).
    pub waiting_for: Vec<String>,
    /// Why one of them cannot hold unless a person acts.
    pub blocked: Option<String>,
    /// RFC 3339: a one-shot group's next scheduled run, the next scheduled reload.
    pub next_run: Option<String>,
    pub next_reload: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerStatus {
    /// `web.2`
    pub id: String,
    pub group: Option<String>,
    pub worker: u32,
    pub pid: Option<u32>,
    pub generation: Option<u32>,
    /// The state's word, as the dashboard shows it (docs/supervision.md#states).
    pub state: String,
    pub uptime_ms: Option<u64>,
    pub restarts: u32,
    pub last_exit: Option<LastExitStatus>,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    /// The worker's own `status` text.
    pub status: Option<String>,
    /// While its group waits: what for.
    pub waiting_for: Option<Vec<String>>,
    /// Between runs of a schedule: when the next one is (RFC 3339) and how far away.
    pub next_run: Option<String>,
    pub next_run_in_ms: Option<u64>,
    /// Its probes (docs/application.md#probes), when its group has any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeStatus>,
}

/// One probe of a worker's run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProbeStatus {
    /// `startup`, `readiness`, `liveness`.
    pub probe: String,
    /// `passing`, `failing`, or `pending` (no verdict yet).
    pub state: String,
    /// Failures in this run.
    pub failures: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LastExitStatus {
    pub code: Option<i32>,
    pub signal: Option<String>,
    /// Why it ended (docs/output.md's `reason`).
    pub reason: String,
    pub uptime_ms: u64,
}
