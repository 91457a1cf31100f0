//! The supervisor's timers: a deadline-ordered set the main loop sleeps on.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::core::TimerToken;

pub struct Timers {
    due: BTreeMap<(Instant, u64), TimerToken>,
    seq: u64,
    /// Where coarse timers' slots are counted from.
    origin: Instant,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { due: BTreeMap::new(), seq: 0, origin: Instant::now() }
    }
}

/// Coarse timers fire at the end of the slot of this length they fall in.
const SLOT: Duration = Duration::from_millis(10);

impl Timers {
    /// A timer that may fire up to [`SLOT`] late, so that timers due close together fire
    /// in one wake-up of the loop: a thousand probes a second spread over the second
    /// would otherwise wake it a thousand times.
    pub fn insert_coarse(&mut self, at: Instant, token: TimerToken) {
        let since = at.saturating_duration_since(self.origin).as_nanos();
        let slot = SLOT.as_nanos();
        let rounded = since.div_ceil(slot) * slot;
        let late = Duration::from_nanos(u64::try_from(rounded - since).unwrap_or(0));
        self.insert(at + late, token);
    }

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
