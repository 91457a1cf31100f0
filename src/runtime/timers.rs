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

#[cfg(test)]
mod tests {
    use super::Timers;
    use crate::core::{TimerKind, TimerToken, WorkerKey};
    use std::time::{Duration, Instant};

    #[test]
    fn timers_fire_in_deadline_order() {
        let mut t = Timers::default();
        let now = Instant::now();
        let tok = |slot| TimerToken {
            key: WorkerKey { group: 0, slot },
            epoch: 1,
            kind: TimerKind::Restart,
        };
        t.insert(now + Duration::from_millis(20), tok(2));
        t.insert(now + Duration::from_millis(10), tok(1));
        t.insert(now + Duration::from_millis(10), tok(3));
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(10)));
        assert_eq!(t.pop_due(now), None);
        let later = now + Duration::from_millis(15);
        assert_eq!(t.pop_due(later).map(|x| x.key.slot), Some(1));
        assert_eq!(t.pop_due(later).map(|x| x.key.slot), Some(3));
        assert_eq!(t.pop_due(later), None);
    }
}
