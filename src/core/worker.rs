//! A worker slot's bookkeeping inside the supervisor.

use std::collections::VecDeque;
use std::time::Instant;

use super::command::TimerKind;
use super::event::{ExitReason, ExitStatus, MemoryOver};
pub use super::key::WorkerKey;
use super::probe::RunProbes;
use super::snapshot::LastExit;

/// What happens to a slot once its current process (and its process group) is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum After {
    /// Ask the restart policy (a crash, or a kill that counts as one).
    Policy,
    /// Start again at once, not counted as a restart (`r`).
    RestartNow,
    /// Its replacement (a rolling reload) takes over; without one, start again at once.
    Handover,
    /// Stay stopped (`s`, shutdown).
    Stay,
    /// Remove the slot (scaled down).
    Remove,
}

/// A stop corral asked for: why, and what comes after.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StopRequest {
    pub reason: ExitReason,
    pub then: After,
}

/// When a run's leader exited, with what, and why.
pub(crate) type Exit = (ExitStatus, Instant, ExitReason);

/// Where a run stands, with what is known only there: a pid once the spawn reported one,
/// the stop asked for, the leader's exit. Handlers match on it rather than on flags.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RunState {
    /// The spawn is in flight: no pid yet.
    Spawning,
    /// Running, not asked to stop.
    Up { pid: u32 },
    /// Asked to stop, perhaps before its spawn reported a pid; not ended yet.
    Stopping { pid: Option<u32>, stop: StopRequest },
    /// Its leader was reaped (or given up on); its group may still be emptied.
    Ended { pid: Option<u32>, stop: Option<StopRequest>, exit: Exit },
}

/// What corral sent a run to end it (or, after its leader's exit, to empty its group).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sent {
    /// Asked to disconnect (Node's graceful stop); the stop signal follows.
    pub disconnect: bool,
    /// The stop signal (or an ABRT) was sent; the kill timer is armed.
    pub term: bool,
    /// SIGKILL was sent to the group.
    pub kill: bool,
    /// When the kill timer armed with the stop signal fires (SIGKILL unless the run ended
    /// first): the dashboard counts down to it during a shutdown.
    pub kill_at: Option<Instant>,
}

/// One generation's process, from spawn request to the moment its group is empty.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub generation: u32,
    pub state: RunState,
    pub sent: Sent,
    pub started: Instant,
    pub ready: bool,
    /// When the last heartbeat arrived (only tracked with `--heartbeat-timeout`).
    pub last_heartbeat: Option<Instant>,
    /// Consecutive memory samples over `--max-memory`.
    pub over_memory: u32,
    /// The sample that stopped the run for `--max-memory`, for its exit event.
    pub memory_over: Option<MemoryOver>,
    /// Its probes' counters, set up when it is spawned (boxed: most groups have none, and
    /// a slot's size is paid by every worker).
    pub probes: Option<Box<RunProbes>>,
}

/// Where a run stands, without what each stage carries (for comparisons: `>= Stopping`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    Spawning,
    Up,
    Stopping,
    Ended,
}

impl Run {
    pub fn stage(&self) -> Stage {
        match self.state {
            RunState::Spawning => Stage::Spawning,
            RunState::Up { .. } => Stage::Up,
            RunState::Stopping { .. } => Stage::Stopping,
            RunState::Ended { .. } => Stage::Ended,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        match self.state {
            RunState::Spawning => None,
            RunState::Up { pid } => Some(pid),
            RunState::Stopping { pid, .. } | RunState::Ended { pid, .. } => pid,
        }
    }

    /// The stop asked for, if any (kept after the exit: it says why the run ended).
    pub fn stop(&self) -> Option<StopRequest> {
        match self.state {
            RunState::Spawning | RunState::Up { .. } => None,
            RunState::Stopping { stop, .. } => Some(stop),
            RunState::Ended { stop, .. } => stop,
        }
    }

    pub fn exit(&self) -> Option<Exit> {
        match self.state {
            RunState::Ended { exit, .. } => Some(exit),
            _ => None,
        }
    }

    /// The spawn reported `pid`; false if it had one already.
    pub fn spawned(&mut self, pid: u32) -> bool {
        self.state = match self.state {
            RunState::Spawning => RunState::Up { pid },
            RunState::Stopping { pid: None, stop } => RunState::Stopping { pid: Some(pid), stop },
            _ => return false,
        };
        true
    }

    /// Asks the run to stop. A later request wins when it asks for at least as much (stop
    /// beats restart, scale-down beats stop); requests never undo each other.
    pub fn ask_stop(&mut self, asked: StopRequest) {
        self.state = match self.state {
            RunState::Spawning => RunState::Stopping { pid: None, stop: asked },
            RunState::Up { pid } => RunState::Stopping { pid: Some(pid), stop: asked },
            RunState::Stopping { pid, stop } if asked.then >= stop.then => {
                RunState::Stopping { pid, stop: asked }
            }
            RunState::Ended { pid, stop, exit } if stop.is_none_or(|s| asked.then >= s.then) => {
                RunState::Ended { pid, stop: Some(asked), exit }
            }
            unchanged => unchanged,
        };
    }

    /// Changes what comes after the stop asked for, if one was.
    pub fn then(&mut self, then: After) {
        if let RunState::Stopping { stop, .. } | RunState::Ended { stop: Some(stop), .. } =
            &mut self.state
        {
            stop.then = then;
        }
    }

    /// A replacement's stop is called off (it takes over after all): it runs on.
    pub fn call_off_stop(&mut self) {
        if let RunState::Stopping { pid, .. } = self.state {
            self.state = pid.map_or(RunState::Spawning, |pid| RunState::Up { pid });
        }
    }

    /// The leader exited (or was given up on) with `status`, for `reason`.
    pub fn end(&mut self, status: ExitStatus, at: Instant, reason: ExitReason) {
        let (pid, stop) = (self.pid(), self.stop());
        self.state = RunState::Ended { pid, stop, exit: (status, at, reason) };
    }

    pub fn new(generation: u32, now: Instant) -> Run {
        Run {
            generation,
            state: RunState::Spawning,
            sent: Sent::default(),
            started: now,
            ready: false,
            last_heartbeat: None,
            over_memory: 0,
            memory_over: None,
            probes: None,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Phase {
    /// A process exists (or its spawn is in flight, or its group is being emptied).
    Live(Run),
    /// Waiting to restart; `failed` holds the spawn error when the last start failed.
    Waiting {
        until: Instant,
        failed: Option<String>,
    },
    Stopped,
    GaveUp,
}

#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub key: WorkerKey,
    /// The generation the next spawn gets.
    pub next_generation: u32,
    pub phase: Phase,
    /// Automatic restarts (what the RESTARTS column shows).
    pub restarts: u32,
    /// Times of automatic restarts inside the `--restart-window`, for `--max-restarts`.
    pub restart_log: VecDeque<Instant>,
    /// Consecutive runs shorter than `--min-uptime`: the backoff exponent.
    pub short_runs: u32,
    /// Consecutive failed short runs: three make a crash loop.
    pub failed_short_runs: u32,
    pub last_exit: Option<LastExit>,
    /// The last start of this slot could not spawn: no run ended, yet it is a failure for
    /// corral's exit code.
    pub start_failed: bool,
    pub last_pid: Option<u32>,
    /// The timers that count for this slot, at most one per kind; any other that fires
    /// is stale.
    pub timers: Vec<(u64, TimerKind)>,
    pub epoch: u64,
    /// Scaled down: removed once its process is gone.
    pub retiring: bool,
    /// During a rolling reload: the replacement, until the old run is gone.
    pub successor: Option<Run>,
    /// The outcome of this slot's last replacement, for the group's reload to collect.
    pub reload_outcome: Option<bool>,
    /// Stopped because a person asked (`s`, `ctl stop`): headless corral stays up for them
    /// to start it again, instead of exiting as if the work were done.
    pub held: bool,
}

impl Slot {
    pub fn new(key: WorkerKey) -> Slot {
        Slot {
            key,
            next_generation: 0,
            phase: Phase::Stopped,
            restarts: 0,
            restart_log: VecDeque::new(),
            short_runs: 0,
            failed_short_runs: 0,
            last_exit: None,
            start_failed: false,
            last_pid: None,
            timers: Vec::new(),
            epoch: 0,
            retiring: false,
            successor: None,
            reload_outcome: None,
            held: false,
        }
    }

    /// Consumes the armed timer `(epoch, kind)`; false when it is stale.
    pub fn take_timer(&mut self, epoch: u64, kind: TimerKind) -> bool {
        let before = self.timers.len();
        self.timers.retain(|&t| t != (epoch, kind));
        self.timers.len() != before
    }

    pub fn has_timer(&self, kind: TimerKind) -> bool {
        self.timers.iter().any(|&(_, k)| k == kind)
    }

    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live(_))
    }

    /// A process of this slot may exist (its own run or a replacement).
    pub fn has_process(&self) -> bool {
        self.is_live() || self.successor.is_some()
    }
}
