//! What one source says about a group's options ([`GroupOptions`]): the command line (only
//! what was typed), a config file's `[defaults]`, a file's group. Sources stack, the first
//! that sets an option wins, and what none sets keeps the default [`GroupRequest::new`] gives:
//! the defaults are made in one place, whichever front door the options came through.
//!
//! The options whose merging depends on where they were written (the working directory,
//! the environment and env files, the schedules, the watched paths, each kept with its
//! position in a file) are the front doors' to set on the request.

use std::time::Duration;

use super::group::{GroupRequest, Switch};
use super::values::Listen;
use crate::config::Sched;
use crate::core::{Backoff, RestartPolicy};
use crate::probe_spec::ProbeSpec;
use crate::schedule::Zone;
use crate::signal::Signal;

/// A group's options as one source sets them; `None`: this source says nothing.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupOptions {
    pub workers: Option<u32>,
    pub listen: Option<Vec<Listen>>,
    pub restart: Option<RestartPolicy>,
    pub backoff: Option<Backoff>,
    pub min_uptime: Option<Duration>,
    pub max_restarts: Option<u32>,
    pub restart_window: Option<Duration>,
    pub stop_signal: Option<Signal>,
    pub kill_timeout: Option<Duration>,
    pub schedule_tz: Option<Zone>,
    pub wait_ready: Option<bool>,
    pub ready_timeout: Option<Duration>,
    pub reload_settle: Option<Duration>,
    /// `Some(None)`: off, to undo a lower source's value.
    #[allow(clippy::option_option, reason = "three cases: not set, off, a value")]
    pub heartbeat_timeout: Option<Option<Duration>>,
    #[allow(clippy::option_option, reason = "three cases: not set, off, a value")]
    pub max_memory: Option<Option<u64>>,
    pub node_ipc: Option<Switch>,
    pub node_cluster: Option<Switch>,
    pub node_cluster_sched: Option<Sched>,
    pub share_binds: Option<bool>,
    pub pty: Option<bool>,
    pub watch_ignore: Option<Vec<String>>,
    pub watch_debounce: Option<Duration>,
    pub readiness_probe: Option<ProbeSpec>,
    pub liveness_probe: Option<ProbeSpec>,
    pub startup_probe: Option<ProbeSpec>,
}

impl GroupOptions {
    /// These options over `under`: each one this source sets wins over `under`'s.
    pub fn over(&self, under: &GroupOptions) -> GroupOptions {
        macro_rules! pick {
            ($($field:ident),* $(,)?) => {
                GroupOptions { $($field: self.$field.clone().or_else(|| under.$field.clone())),* }
            };
        }
        pick!(
            workers,
            listen,
            restart,
            backoff,
            min_uptime,
            max_restarts,
            restart_window,
            stop_signal,
            kill_timeout,
            schedule_tz,
            wait_ready,
            ready_timeout,
            reload_settle,
            heartbeat_timeout,
            max_memory,
            node_ipc,
            node_cluster,
            node_cluster_sched,
            share_binds,
            pty,
            watch_ignore,
            watch_debounce,
            readiness_probe,
            liveness_probe,
            startup_probe,
        )
    }

    /// Sets on `request` every option these set; the rest keep the request's defaults. A
    /// restart policy set here counts as chosen (a schedule then refuses `always`).
    pub fn apply_to(&self, request: &mut GroupRequest) {
        macro_rules! set {
            ($($field:ident => $($target:ident).+),* $(,)?) => {
                $(if let Some(value) = &self.$field {
                    request.$($target).+ = value.clone();
                })*
            };
        }
        set!(
            listen => listen,
            restart => policy.restart,
            backoff => policy.backoff,
            min_uptime => policy.min_uptime,
            max_restarts => policy.max_restarts,
            restart_window => policy.restart_window,
            stop_signal => policy.stop_signal,
            kill_timeout => policy.kill_timeout,
            schedule_tz => schedule_tz,
            wait_ready => wait_ready,
            ready_timeout => policy.ready_timeout,
            reload_settle => policy.reload_settle,
            heartbeat_timeout => policy.heartbeat_timeout,
            max_memory => policy.max_memory,
            node_ipc => node_ipc,
            node_cluster => node_cluster,
            node_cluster_sched => node_cluster_sched,
            share_binds => share_binds,
            pty => pty,
            watch_ignore => watch_ignore,
            watch_debounce => watch_debounce,
        );
        if self.workers.is_some() {
            request.workers = self.workers;
        }
        request.restart_chosen |= self.restart.is_some();
        let probes = [
            (&self.readiness_probe, &mut request.probes.readiness),
            (&self.liveness_probe, &mut request.probes.liveness),
            (&self.startup_probe, &mut request.probes.startup),
        ];
        for (from, to) in probes {
            if from.is_some() {
                to.clone_from(from);
            }
        }
    }

    /// The restart policy these options end with.
    pub fn restart_or_default(&self) -> RestartPolicy {
        self.restart.unwrap_or(crate::core::Policy::default().restart)
    }
}
