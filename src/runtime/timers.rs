//! The supervisor's timers: a deadline-ordered set the main loop sleeps on.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::core::TimerToken;

#[derive(Default)]
pub struct Timers {
    due: BTreeMap<(Instant, u64), TimerToken>,
    seq: u64,
}

impl Timers {
    pub fn insert(&mut self, at: Instant, token: TimerToken) {
        self.seq += 1;
        self.due.insert((at, self.seq), token);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.due.keys().next().map(|(at, _)| *at)
    }

    /// Removes and returns one timer due at `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Option<TimerToken> {
        let (&(at, _), _) = self.due.first_key_value()?;
        if at > now {
            return None;
        }
        self.due.pop_first().map(|(_, token)| token)
    }
}
