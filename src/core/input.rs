//! Facts the runtime feeds into the supervisor: what the kernel reported, what the user
//! asked for, which timer fired.

use super::command::TimerToken;
use super::event::{ExitStatus, ReloadCause, ShutdownTrigger};
use super::key::WorkerKey;
use super::probe::ProbeKind;
use super::snapshot::{NextRun, ScheduleKind};

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Start every configured worker.
    Start,
    Spawned {
        key: WorkerKey,
        generation: u32,
        pid: u32,
    },
    /// A spawn asked for was not done because corral is shutting down (spawns wait
    /// their turn; thousands of them must not delay a Ctrl-C).
    SpawnCancelled {
        key: WorkerKey,
        generation: u32,
    },
    SpawnFailed {
        key: WorkerKey,
        generation: u32,
        error: String,
    },
    /// The worker (its group leader) was reaped; `group_alive` says whether other members
    /// of its process group are still running.
    Exited {
        key: WorkerKey,
        generation: u32,
        status: ExitStatus,
        group_alive: bool,
    },
    /// The rest of the process group is gone too.
    GroupGone {
        key: WorkerKey,
        generation: u32,
    },
    /// The worker said `ready`.
    Ready {
        key: WorkerKey,
        generation: u32,
    },
    /// A worker asked to disconnect (Node's graceful stop) closed its channel: it has
    /// closed its servers, and may exit by itself.
    DisconnectDone {
        key: WorkerKey,
        generation: u32,
    },
    /// A worker cannot be asked to disconnect (it is not running Node's cluster code, or
    /// its channel is closed): the stop signal goes at once.
    CannotDisconnect {
        key: WorkerKey,
        generation: u32,
    },
    /// The worker sent a heartbeat.
    Heartbeat {
        key: WorkerKey,
        generation: u32,
    },
    /// Resident memory of the worker's whole process tree, sampled once a second.
    Sample {
        key: WorkerKey,
        generation: u32,
        rss: u64,
    },
    /// One probe's result: `error` is `None` on success, else why it failed.
    ProbeResult {
        key: WorkerKey,
        generation: u32,
        probe: ProbeKind,
        error: Option<String>,
    },
    Timer(TimerToken),
    User(UserAction),
    /// A rolling reload of a group asked for by something other than a key (a signal,
    /// `ctl`, a watched file, a schedule), which the `reload_started` event names.
    Reload {
        group: u16,
        cause: ReloadCause,
    },
    /// A one-shot group's schedule is due (docs/application.md#schedules): its workers start,
    /// unless the last run is still going.
    ScheduleDue {
        group: u16,
    },
    /// When a group's schedule fires next (`None`: never again), for the views.
    NextRun {
        group: u16,
        kind: ScheduleKind,
        next: Option<NextRun>,
    },
    /// A shutdown request (signal or key); a second one forces it.
    Shutdown(ShutdownTrigger),
}

/// What a person can ask for, from the dashboard or through signals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserAction {
    /// SIGKILL now; the restart policy decides what follows (a crash).
    Kill(WorkerKey),
    /// Stop gracefully and start again at once, without backoff.
    Restart(WorkerKey),
    /// Stop gracefully and stay stopped.
    Stop(WorkerKey),
    /// Start a stopped, waiting or given-up slot now.
    Start(WorkerKey),
    /// Stop a running or waiting slot, start a stopped one.
    ToggleStop(WorkerKey),
    /// Rolling reload of the group.
    Reload(u16),
    ScaleUp(u16),
    ScaleDown(u16),
}
