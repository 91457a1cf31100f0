//! When a burst of changes under a group's watched paths becomes one reload: after the
//! quiet period that follows the last change, or at the latest `MAX_WAIT_FACTOR` quiet
//! periods after the first (a file rewritten without pause must not put reloads off
//! for ever). Pure: the caller passes the time.

use std::time::{Duration, Instant};

/// A burst is cut after this many quiet periods, however busy it still is.
const MAX_WAIT_FACTOR: u32 = 10;

#[derive(Debug)]
pub struct Debounce {
    quiet: Duration,
    /// The burst under way: when it began, its first path, and its last change.
    burst: Option<Burst>,
}

#[derive(Debug)]
struct Burst {
    first_at: Instant,
    first_path: String,
    last_at: Instant,
}

impl Debounce {
    pub fn new(quiet: Duration) -> Debounce {
        Debounce { quiet, burst: None }
    }

    /// A change to `path` at `now`.
    pub fn change(&mut self, now: Instant, path: &str) {
        if let Some(b) = self.burst.as_mut() {
            b.last_at = b.last_at.max(now);
        } else {
            let first_path = path.to_string();
            self.burst = Some(Burst { first_at: now, first_path, last_at: now });
        }
    }

    /// When the burst under way becomes a reload.
    pub fn due(&self) -> Option<Instant> {
        let b = self.burst.as_ref()?;
        let cap = b.first_at + self.quiet.saturating_mul(MAX_WAIT_FACTOR);
        Some((b.last_at + self.quiet).min(cap))
    }

    /// The burst's first path, once it is due at `now`; the next change starts a new one.
    pub fn take_due(&mut self, now: Instant) -> Option<String> {
        if self.due()? > now {
            return None;
        }
        self.burst.take().map(|b| b.first_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_burst_is_one_reload_after_the_quiet_period() {
        let t0 = Instant::now();
        let mut d = Debounce::new(300 * MS);
        assert_eq!(d.due(), None);
        for (i, path) in ["a.js", "b.js", "c.js"].iter().enumerate() {
            d.change(t0 + 100 * MS * i as u32, path);
        }
        assert_eq!(d.due(), Some(t0 + 500 * MS));
        assert_eq!(d.take_due(t0 + 499 * MS), None);
        assert_eq!(d.take_due(t0 + 500 * MS).as_deref(), Some("a.js"));
        assert_eq!(d.take_due(t0 + 10_000 * MS), None);
        assert_eq!(d.due(), None);
    }

    #[test]
    fn a_change_after_the_reload_starts_a_new_burst() {
        let t0 = Instant::now();
        let mut d = Debounce::new(300 * MS);
        d.change(t0, "a");
        assert_eq!(d.take_due(t0 + 300 * MS).as_deref(), Some("a"));
        d.change(t0 + 301 * MS, "b");
        assert_eq!(d.due(), Some(t0 + 601 * MS));
        assert_eq!(d.take_due(t0 + 601 * MS).as_deref(), Some("b"));
    }

    #[test]
    fn a_burst_that_never_pauses_is_cut() {
        let t0 = Instant::now();
        let mut d = Debounce::new(300 * MS);
        let mut reloads = 0;
        // A change every 100 ms for 10 s: never quiet for 300 ms.
        for i in 0..100u32 {
            let now = t0 + 100 * MS * i;
            if d.take_due(now).is_some() {
                reloads += 1;
            }
            d.change(now, "log.txt");
        }
        assert_eq!(reloads, 3, "one every 3 s (10 quiet periods)");
    }

    #[test]
    fn an_instant_out_of_order_does_not_shorten_the_wait() {
        let before = Instant::now();
        let t0 = before + 10 * MS;
        let mut d = Debounce::new(300 * MS);
        d.change(t0, "a");
        d.change(before, "b");
        assert_eq!(d.due(), Some(t0 + 300 * MS));
    }
}
