//! Restart policy and backoff arithmetic.

use std::time::Duration;

use crate::signal::Signal;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    /// Restart after a non-zero exit or a signal.
    OnFailure,
    Never,
}

/// `delay(n) = min(first × 2^(n-1), max)`, n counting consecutive short runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const ZERO: Backoff = Backoff { first: Duration::ZERO, max: Duration::ZERO };

    /// The delay before the restart after the `n`-th consecutive short run (`n >= 1`),
    /// without jitter.
    pub fn delay(self, n: u32) -> Duration {
        let exponent = n.saturating_sub(1).min(63);
        let factor = 1u128 << exponent;
        let nanos = self.first.as_nanos().saturating_mul(factor);
        let capped = nanos.min(self.max.as_nanos());
        Duration::from_nanos(u64::try_from(capped).unwrap_or(u64::MAX))
    }
}

/// Everything that decides a group's restarts and stops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    pub restart: RestartPolicy,
    pub backoff: Backoff,
    pub min_uptime: Duration,
    /// 0 = never give up.
    pub max_restarts: u32,
    pub restart_window: Duration,
    pub stop_signal: Signal,
    pub kill_timeout: Duration,
    /// With `--wait-ready`: a worker not ready by then is killed and counts as failed.
    pub ready_timeout: Duration,
    /// A worker that sent a heartbeat and then none for this long is killed.
    pub heartbeat_timeout: Option<Duration>,
    /// Bytes of RSS (whole process tree) above which a worker is restarted.
    pub max_memory: Option<u64>,
    /// Rolling reload without `--wait-ready`: how long a replacement must stay up before
    /// the worker it replaces is stopped; one that dies sooner fails the reload. Zero hands
    /// over as soon as the replacement is spawned.
    pub reload_settle: Duration,
    /// Node's cluster workers: a graceful stop first asks the worker to disconnect (it
    /// closes its servers and lets their requests finish) and sends the stop signal only
    /// once the channel closes or the kill timeout passes (docs/node.md).
    pub disconnect_first: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            restart: RestartPolicy::Always,
            backoff: Backoff { first: Duration::from_millis(100), max: Duration::from_secs(30) },
            min_uptime: Duration::from_secs(10),
            max_restarts: 0,
            restart_window: Duration::from_mins(1),
            stop_signal: Signal::TERM,
            kill_timeout: Duration::from_secs(5),
            ready_timeout: Duration::from_secs(30),
            heartbeat_timeout: None,
            max_memory: None,
            reload_settle: DEFAULT_RELOAD_SETTLE,
            disconnect_first: false,
        }
    }
}

/// A replacement that has not said it is ready gets this long to bind, listen, and fail:
/// Node boots in ~60 ms, Python web apps in 1–2 s.
pub const DEFAULT_RELOAD_SETTLE: Duration = Duration::from_secs(2);

/// Adds up to 10% jitter; `unit` is a random number in `[0, 1)`.
pub(crate) fn with_jitter(delay: Duration, unit: f64) -> Duration {
    delay + delay.mul_f64(unit.clamp(0.0, 1.0) * 0.1)
}

/// A spawn failure is retried at least this far apart, even with `--backoff 0`: retrying
/// a missing binary in a tight loop only burns CPU.
pub(crate) const MIN_SPAWN_RETRY: Duration = Duration::from_millis(100);

/// How long to wait for a group to vanish after SIGKILL before giving up on it (a process
/// stuck in uninterruptible sleep cannot be killed).
pub(crate) const ABANDON_AFTER_KILL: Duration = Duration::from_secs(5);

/// Memory samples in a row over `--max-memory` that trigger a restart.
pub(crate) const MEMORY_SAMPLES: u32 = 2;

/// Failed short runs in a row that make a crash loop.
pub(crate) const CRASH_LOOP_RUNS: u32 = 3;
