//! The pure supervisor: every decision (restart policy, backoff, crash loops, stopping,
//! shutdown, scaling) as `Supervisor::handle(now, Input) -> Vec<Command>`.
//!
//! No tokio, no syscalls, no clock reads here: time comes in as an argument and timers go
//! out as commands tagged with an epoch, so a stale timer is recognised and ignored. The
//! backend and runtime (I/O) live elsewhere and only ever execute what this module says.

mod command;
mod depends;
mod event;
pub mod health;
mod input;
mod key;
mod policy;
mod probe;
mod snapshot;
mod stream;
mod supervisor;
mod worker;

pub use command::{Command, TimerKind, TimerToken};
pub use depends::{Condition, Dependency, start_order};
pub use event::{
    Event, EventKind, ExitReason, ExitStatus, MemoryOver, QuitKey, ReloadCause, Scope,
    ShutdownTrigger,
};
pub use input::{Input, UserAction};
pub use key::{KeyMap, WorkerId, WorkerKey};
pub use policy::{Backoff, Policy, RestartPolicy};
pub use probe::{ProbeKind, ProbeSet, ProbeTiming};
pub use snapshot::{
    Due, GroupView, LastExit, NextRun, ScheduleKind, Snapshot, WorkerState, WorkerView,
};
pub use stream::Stream;
pub use supervisor::{GroupConfig, MAX_WORKERS, Supervisor};

#[cfg(test)]
mod tests;
