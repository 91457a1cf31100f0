//! What the supervisor tells the runtime to do. Commands are imperatives; the runtime
//! executes them in order and reports the outcome back as `Input`s.

use std::time::Instant;

use super::event::Event;
use super::key::WorkerKey;
use super::probe::ProbeKind;
use crate::signal::Signal;

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Start generation `generation` of the slot; answer with `Spawned` or `SpawnFailed`.
    Spawn {
        key: WorkerKey,
        generation: u32,
    },
    /// Send `signal` to the process group led by `pid` (the worker's own group).
    Signal {
        key: WorkerKey,
        pid: u32,
        signal: Signal,
    },
    /// Tell the worker over its event channel that a graceful stop follows (a Node
    /// cluster worker: ask it to disconnect; `Input::DisconnectDone` says it did).
    NotifyShutdown {
        key: WorkerKey,
        pid: u32,
    },
    /// Feed `Input::Timer(token)` back at `at`.
    Timer {
        at: Instant,
        token: TimerToken,
    },
    /// The supervisor is done with this generation: close its pipes, stop watching its group.
    Release {
        key: WorkerKey,
        generation: u32,
    },
    Emit(Event),
    /// Run the worker's `probe` once; answer with `Input::ProbeResult`.
    Probe {
        key: WorkerKey,
        generation: u32,
        pid: u32,
        probe: ProbeKind,
    },
    /// Nothing is left to supervise: clean up and exit with this code.
    Exit(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// End of a backoff or spawn-retry wait.
    Restart,
    /// The grace after the stop signal is over: SIGKILL.
    Kill,
    /// A worker asked to disconnect has not closed its channel in time: the stop signal.
    Disconnect,
    /// SIGKILL did not empty the group in time: stop waiting for it.
    Abandon,
    /// `--ready-timeout` ran out before the worker said `ready`.
    Ready,
    /// Check whether the last heartbeat is older than `--heartbeat-timeout`.
    Heartbeat,
    /// A reload's replacement was not ready within `--ready-timeout`.
    SuccessorReady,
    /// A reload's replacement (without `--wait-ready`) stayed up for `--reload-settle`.
    SuccessorSettled,
    /// A replacement stopped by a shutdown did not end within the kill timeout: SIGKILL.
    SuccessorKill,
    /// Time for the next `probe` of run `generation` (the slot's own run or its
    /// replacement: both are probed during a handover).
    Probe { probe: ProbeKind, generation: u32 },
}

/// Identifies one armed timer. Only the slot's latest epoch counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerToken {
    pub key: WorkerKey,
    pub epoch: u64,
    pub kind: TimerKind,
}
