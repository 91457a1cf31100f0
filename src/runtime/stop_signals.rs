//! Which stop signals count (docs/signals.md): a second SIGINT or SIGTERM forces the stop,
//! but a process that sends the same signal twice at once (before corral could act on the
//! first) meant it once. GNU `timeout` does exactly that (to its child, then to its process
//! group), and a graceful stop became SIGKILL for every worker. A second signal sent after
//! the first was seen to act (`shutdown_started`) is a second request, and the terminal's own
//! Ctrl-C (sent by the kernel, sender 0) always counts: two quick presses mean "now".

use std::time::{Duration, Instant};

use crate::signal::Signal;

/// A repeat from the same sender within this is the same request: back-to-back `kill`s,
/// not a person or a script that saw the first one act.
pub(super) const SAME_REQUEST: Duration = Duration::from_millis(5);

#[derive(Default)]
pub(super) struct StopSignals {
    last: Option<(Signal, i32, Instant)>,
}

impl StopSignals {
    /// How many of `count` arrivals of `signal`, the last from `sender`, are requests.
    pub fn requests(&mut self, signal: Signal, count: u32, sender: i32, now: Instant) -> u32 {
        let repeat = sender > 0
            && self.last.is_some_and(|(s, from, at)| {
                s == signal && from == sender && now.saturating_duration_since(at) < SAME_REQUEST
            });
        self.last = Some((signal, sender, now));
        // Several arrivals between two looks with a process as sender: one process
        // sending twice at once is the duplicate above, not a second request.
        let counted = if sender > 0 { 1 } else { count.min(2) };
        if repeat { 0 } else { counted }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_process_twice_within_a_second_is_one_request() {
        let mut s = StopSignals::default();
        let t0 = Instant::now();
        assert_eq!(s.requests(Signal::TERM, 1, 4242, t0), 1);
        assert_eq!(s.requests(Signal::TERM, 1, 4242, t0 + Duration::from_micros(50)), 0);
        assert_eq!(s.requests(Signal::TERM, 2, 4242, t0 + Duration::from_micros(60)), 0);
        // Later (once the first could act), or from someone else, or another signal.
        assert_eq!(s.requests(Signal::TERM, 1, 4242, t0 + Duration::from_millis(20)), 1);
        assert_eq!(s.requests(Signal::TERM, 1, 77, t0 + Duration::from_millis(21)), 1);
        assert_eq!(s.requests(Signal::INT, 1, 77, t0 + Duration::from_millis(22)), 1);
    }

    #[test]
    fn the_terminals_ctrl_c_always_counts() {
        let mut s = StopSignals::default();
        let t0 = Instant::now();
        assert_eq!(s.requests(Signal::INT, 1, 0, t0), 1);
        assert_eq!(s.requests(Signal::INT, 1, 0, t0 + Duration::from_millis(50)), 1);
        assert_eq!(s.requests(Signal::INT, 2, 0, t0 + Duration::from_millis(60)), 2);
    }
}
