//! What happened, as the supervisor reports it: the facts both front-ends (headless lines
//! and the dashboard) are built from.

use std::fmt;
use std::time::Duration;

use super::key::WorkerKey;
use super::probe::ProbeKind;
use crate::signal::Signal;

/// How a process ended, exactly as the kernel reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(Signal),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Code(c) => Some(c),
            ExitStatus::Signal(_) => None,
        }
    }

    pub fn signal(self) -> Option<Signal> {
        match self {
            ExitStatus::Code(_) => None,
            ExitStatus::Signal(s) => Some(s),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit {c}"),
            ExitStatus::Signal(s) => write!(f, "{s}"),
        }
    }
}

/// Why a run ended: on its own (`Crashed`, `Exited`) or because corral ended it.
/// Serialised (for `corral attach`) as the headless words of [`ExitReason::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    Crashed,
    Exited,
    KilledByUser,
    RestartedByUser,
    Stopped,
    HeartbeatTimeout,
    MemoryLimit,
    ReadyTimeout,
    Reload,
    ScaledDown,
    Shutdown,
    /// Its liveness probe failed `failure-threshold` times in a row, or its startup probe
    /// never succeeded.
    LivenessProbe,
}

impl ExitReason {
    /// Whether a run that ended this way counts as a crash (the header's crashes/min, the
    /// details' crash count, red in the last exits): it died by itself, or corral or a
    /// person had to end it because it misbehaved.
    pub fn is_crash(self) -> bool {
        match self {
            ExitReason::Crashed
            | ExitReason::KilledByUser
            | ExitReason::HeartbeatTimeout
            | ExitReason::MemoryLimit
            | ExitReason::ReadyTimeout
            | ExitReason::LivenessProbe => true,
            ExitReason::Exited
            | ExitReason::RestartedByUser
            | ExitReason::Stopped
            | ExitReason::Reload
            | ExitReason::ScaledDown
            | ExitReason::Shutdown => false,
        }
    }

    /// The `reason` field of the headless `exited` event.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Crashed => "crashed",
            ExitReason::Exited => "exited",
            ExitReason::KilledByUser => "killed_by_user",
            ExitReason::RestartedByUser => "restarted_by_user",
            ExitReason::Stopped => "stopped",
            ExitReason::HeartbeatTimeout => "heartbeat_timeout",
            ExitReason::MemoryLimit => "memory_limit",
            ExitReason::ReadyTimeout => "ready_timeout",
            ExitReason::Reload => "reload",
            ExitReason::ScaledDown => "scaled_down",
            ExitReason::Shutdown => "shutdown",
            ExitReason::LivenessProbe => "liveness_probe",
        }
    }

    /// The words a person reads (`killed by user`).
    pub fn label(self) -> &'static str {
        match self {
            ExitReason::Crashed => "crashed",
            ExitReason::Exited => "exited",
            ExitReason::KilledByUser => "killed by user",
            ExitReason::RestartedByUser => "restarted by user",
            ExitReason::Stopped => "stopped",
            ExitReason::HeartbeatTimeout => "heartbeat timeout",
            ExitReason::MemoryLimit => "memory limit",
            ExitReason::ReadyTimeout => "ready timeout",
            ExitReason::Reload => "reload",
            ExitReason::ScaledDown => "scaled down",
            ExitReason::Shutdown => "shutdown",
            ExitReason::LivenessProbe => "liveness probe",
        }
    }
}

/// What asked corral to shut down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownTrigger {
    Signal(Signal),
    /// A key in the dashboard.
    Key(QuitKey),
    /// The dashboard's terminal went away.
    Hangup,
    /// The dashboard's terminal failed (a read or write error).
    TerminalError,
    /// The dashboard's thread panicked.
    Panic,
    /// Nobody reads headless output any more (EPIPE): stop as SIGPIPE would, but cleanly.
    StdoutClosed,
    /// `corral ctl shutdown [--force]`.
    Control {
        force: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuitKey {
    Q,
    CtrlC,
}

impl QuitKey {
    pub fn as_str(self) -> &'static str {
        match self {
            QuitKey::Q => "q",
            QuitKey::CtrlC => "Ctrl-C",
        }
    }
}

impl ShutdownTrigger {
    /// Whether asking again means "kill everything now". Only a person asks twice on
    /// purpose (SIGINT, SIGTERM, `q`, Ctrl-C, `ctl shutdown`); a hangup, a closed stdout, a
    /// broken terminal or a panic arriving during a graceful stop must not cut it short.
    pub fn escalates(self) -> bool {
        match self {
            ShutdownTrigger::Signal(s) => {
                s == Signal::INT || s == Signal::TERM || s == Signal::QUIT
            }
            ShutdownTrigger::Key(_) | ShutdownTrigger::Control { .. } => true,
            ShutdownTrigger::Hangup
            | ShutdownTrigger::TerminalError
            | ShutdownTrigger::Panic
            | ShutdownTrigger::StdoutClosed => false,
        }
    }

    /// SIGQUIT or `ctl shutdown --force`: no graceful stop at all, SIGKILL to every group.
    pub fn forces(self) -> bool {
        match self {
            ShutdownTrigger::Signal(s) => s == Signal::QUIT,
            ShutdownTrigger::Control { force } => force,
            ShutdownTrigger::Key(_)
            | ShutdownTrigger::Hangup
            | ShutdownTrigger::TerminalError
            | ShutdownTrigger::Panic
            | ShutdownTrigger::StdoutClosed => false,
        }
    }

    /// How headless output names it: `("signal", "SIGTERM")` or `("key", "q")`. The words
    /// are the ones corral has always printed.
    pub fn reported(self) -> (&'static str, String) {
        match self {
            ShutdownTrigger::Signal(s) => ("signal", s.name()),
            ShutdownTrigger::StdoutClosed => ("signal", Signal::PIPE.name()),
            ShutdownTrigger::Key(k) => ("key", k.as_str().to_string()),
            ShutdownTrigger::Hangup => ("key", "hangup".into()),
            ShutdownTrigger::TerminalError => ("key", "terminal error".into()),
            ShutdownTrigger::Panic => ("key", "panic".into()),
            ShutdownTrigger::Control { force: false } => ("key", "ctl".into()),
            ShutdownTrigger::Control { force: true } => ("key", "ctl --force".into()),
        }
    }
}

/// Who an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Supervisor,
    Group(u16),
    Worker(WorkerKey),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub scope: Scope,
    /// The worker's current (or, after an exit, last) PID.
    pub pid: Option<u32>,
    pub kind: EventKind,
}

/// What ended a run for `--max-memory`: the RSS of the sample that decided it, and the limit
/// it was over, so the exit line can say both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryOver {
    pub rss: u64,
    pub limit: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    Spawned {
        generation: u32,
    },
    SpawnFailed {
        error: String,
    },
    Ready,
    /// Ready before, its readiness probe fails now (it keeps running).
    Unready,
    /// A probe failed; reported at most once a second per worker and probe, `count`
    /// saying how many failed in this run so far.
    ProbeFailed {
        probe: ProbeKind,
        error: String,
        count: u64,
    },
    Exited {
        status: ExitStatus,
        uptime: Duration,
        reason: ExitReason,
        restarts: u32,
        /// With `reason` `MemoryLimit`: how far over the limit the worker was.
        memory: Option<MemoryOver>,
    },
    RestartScheduled {
        delay: Duration,
        restarts: u32,
    },
    GaveUp {
        restarts: u32,
        /// Headless: no worker is left to run, so corral exits now (nobody can restart it).
        last: bool,
    },
    Scaled {
        workers: u32,
    },
    ReloadStarted {
        cause: ReloadCause,
    },
    /// `replaced` workers were replaced; `failed`: a replacement failed and the reload
    /// stopped there, keeping the old workers.
    ReloadFinished {
        replaced: u32,
        failed: bool,
    },
    ShutdownStarted {
        trigger: ShutdownTrigger,
        /// How long a worker asked to stop has before SIGKILL: the longest of the groups'
        /// that have workers (twice the kill timeout where workers are asked to disconnect
        /// first). `None` when everything is killed now, or nothing runs.
        kill_after: Option<std::time::Duration>,
    },
    /// The group waits for `unmet` (`db ready`) before it starts; `blocked`: why one of them
    /// cannot hold unless a person acts (said once).
    Waiting {
        unmet: Vec<String>,
        blocked: Option<String>,
    },
    /// A one-shot group's schedule came due while `running` of its workers were still at
    /// the last run: this run is skipped, never doubled.
    ScheduleSkipped {
        running: u32,
    },
}

/// What asked for a rolling reload (`reload_started`'s `cause`, docs/output.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadCause {
    /// SIGHUP.
    Signal,
    /// `R` in the dashboard.
    Key,
    /// `corral ctl reload` (and `corral attach`).
    Ctl,
    /// A file changed under a watched path (the first one of the burst).
    Watch { path: String },
    /// `reload-schedule`.
    Schedule,
}

impl ReloadCause {
    /// Its name in events: `signal`, `key`, `ctl`, `watch`, `schedule`.
    pub fn name(&self) -> &'static str {
        match self {
            ReloadCause::Signal => "signal",
            ReloadCause::Key => "key",
            ReloadCause::Ctl => "ctl",
            ReloadCause::Watch { .. } => "watch",
            ReloadCause::Schedule => "schedule",
        }
    }
}
