//! Fairness between the main loop's sources. The loop's `select!` takes one ready source
//! per turn, at random; whatever a storm keeps ready (SIGCHLD from workers that exit as
//! fast as they are spawned, a flood of output), these run after every turn anyway, so
//! nobody waits on it: the watchdog ping, the control requests already queued, and the
//! tasks and timers that only run while the loop gives the thread back.

use std::time::{Duration, Instant};

/// The longest the loop runs without giving the thread back to the control server's
/// tasks, the `/metrics` server and tokio's timers and sockets.
const YIELD_EVERY: Duration = Duration::from_millis(5);

/// Control requests answered between two turns, at most: a client that pipelines
/// thousands is still served, a slice at a time.
const CONTROL_PER_TURN: usize = 16;

pub(super) struct Turns {
    yielded: Instant,
}

impl Turns {
    pub fn new() -> Turns {
        Turns { yielded: Instant::now() }
    }

    /// How many queued control requests to answer after a turn.
    pub const CONTROL_REQUESTS: usize = CONTROL_PER_TURN;

    /// Call at the end of every turn of the main loop.
    pub async fn yield_if_due(&mut self) {
        if self.yielded.elapsed() >= YIELD_EVERY {
            // WHY: a source that is always ready (the signal counters in a SIGCHLD storm)
            // would keep the loop's future from ever returning `Pending`, and only then do
            // the local tasks (the control server reading requests) and tokio's timer and
            // socket drivers get a turn.
            tokio::task::yield_now().await;
            self.yielded = Instant::now();
        }
    }
}
