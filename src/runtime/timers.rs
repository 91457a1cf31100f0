//! The supervisor's timers: a deadline-ordered set the main loop sleeps on.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::core::TimerToken;

/// A timer in the heap, ordered by deadline, then by insertion.
struct Entry {
    at: Instant,
    seq: u64,
    token: TimerToken,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// WHY a heap and not a `BTreeMap`: with a timer per worker and probe re-armed every
/// period, the map's nodes were split and merged (allocated and freed) all the time; the
/// heap's one buffer stays.
pub struct Timers {
    due: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    /// Where coarse timers' slots are counted from.
    origin: Instant,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { due: BinaryHeap::new(), seq: 0, origin: Instant::now() }
    }
}

/// Coarse timers fire at the nearest end of a slot of this length.
const SLOT: Duration = Duration::from_millis(20);

impl Timers {
    /// A timer that may fire up to half a [`SLOT`] early or late, so that timers due close
    /// together fire in one wake-up of the loop: a thousand probes a second spread over the
    /// second would otherwise wake it a thousand times. (The core counts a probe's periods
    /// from when its timer was meant to fire, so the difference does not add up.)
    pub fn insert_coarse(&mut self, at: Instant, token: TimerToken) {
        let since = at.saturating_duration_since(self.origin).as_nanos();
        let slot = SLOT.as_nanos();
        let nearest = (since + slot / 2) / slot * slot;
        let at = self.origin + Duration::from_nanos(u64::try_from(nearest).unwrap_or(u64::MAX));
        self.insert(at, token);
    }

    pub fn insert(&mut self, at: Instant, token: TimerToken) {
        self.seq += 1;
        self.due.push(Reverse(Entry { at, seq: self.seq, token }));
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.due.peek().map(|e| e.0.at)
    }

    /// Removes and returns one timer due at `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Option<TimerToken> {
        if self.due.peek()?.0.at > now {
            return None;
        }
        self.due.pop().map(|e| e.0.token)
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

    #[test]
    fn coarse_timers_share_a_slot_and_fire_near_their_time() {
        let mut t = Timers::default();
        let tok =
            TimerToken { key: WorkerKey { group: 0, slot: 0 }, epoch: 1, kind: TimerKind::Restart };
        let origin = t.origin;
        let slot = super::SLOT;
        // Timers a few ms apart around a slot's end fire together, at that end.
        for ms in [slot.as_millis() as u64 - 3, slot.as_millis() as u64 + 2] {
            t.insert_coarse(origin + Duration::from_millis(ms), tok);
        }
        assert_eq!(t.next_deadline(), Some(origin + slot));
        assert!(t.pop_due(origin + slot).is_some() && t.pop_due(origin + slot).is_some());
        // Each fires within half a slot of when it was meant to.
        for k in 1..100u32 {
            let meant = origin + Duration::from_millis(1003) * k;
            t.insert_coarse(meant, tok);
            let fired = t.next_deadline().unwrap();
            assert!(t.pop_due(fired).is_some());
            let off = if fired > meant { fired - meant } else { meant - fired };
            assert!(off <= slot / 2, "{off:?} off");
        }
    }
}
