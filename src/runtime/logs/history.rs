//! Fixed-size per-second history of one number (docs/dashboard.md#the-profiler-view "Metrics"): 5 minutes, one point a
//! second, in a ring of `f32`s (1.2 KB a series, whatever happens). A second in which the
//! run that reported was gone is a gap, so a restart shows in the chart.

use crate::ui::model::METRIC_SECONDS;

const SECONDS: u64 = METRIC_SECONDS as u64;

/// Whether a series holds values (a gauge: carried forward while its run lives) or counts
/// things per second (a counter: zero while its run lives and nothing happens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

#[derive(Debug)]
pub struct History {
    kind: Kind,
    /// Indexed by unix second modulo `SECONDS`; NaN where there is no value.
    ring: Box<[f32; METRIC_SECONDS]>,
    /// The last second written (0: never).
    last: u64,
    /// The process that wrote it: a different one starts a new run.
    pid: u32,
    /// A gauge's latest value, or a counter's total.
    pub latest: f64,
}

impl History {
    pub fn new(kind: Kind) -> History {
        History { kind, ring: Box::new([f32::NAN; METRIC_SECONDS]), last: 0, pid: 0, latest: 0.0 }
    }

    fn slot(second: u64) -> usize {
        (second % SECONDS) as usize
    }

    /// What an unwritten second after `last` holds while the run goes on.
    fn carried(&self) -> f32 {
        match self.kind {
            Kind::Gauge => self.ring[Self::slot(self.last)],
            Kind::Counter => 0.0,
        }
    }

    /// Fills the seconds after the last write up to `second` (excluded): carried forward
    /// for the same run, gaps for another.
    fn advance(&mut self, second: u64, pid: u32) {
        if self.last == 0 || second <= self.last {
            return;
        }
        let fill = if pid == self.pid { self.carried() } else { f32::NAN };
        let from = (self.last + 1).max(second.saturating_sub(SECONDS - 1));
        for s in from..second {
            self.ring[Self::slot(s)] = fill;
        }
    }

    /// A gauge's value at `second`, reported by `pid`.
    pub fn set(&mut self, second: u64, pid: u32, value: f64) {
        if second < self.last {
            return; // the clock went back: keep the history as it is
        }
        self.advance(second, pid);
        self.ring[Self::slot(second)] = value as f32;
        (self.last, self.pid, self.latest) = (second, pid, value);
    }

    /// One more of a counter at `second`, from `pid`.
    pub fn count(&mut self, second: u64, pid: u32) {
        if second < self.last {
            return;
        }
        let new_second = second > self.last || self.last == 0;
        self.advance(second, pid);
        let slot = Self::slot(second);
        if new_second || self.ring[slot].is_nan() {
            self.ring[slot] = 0.0;
        }
        self.ring[slot] += 1.0;
        (self.last, self.pid) = (second, pid);
        self.latest += 1.0;
    }

    /// The last `METRIC_SECONDS` seconds up to `now`, oldest first. `live`: the pid of the
    /// worker's current run, which carries the series on past its last write.
    pub fn points(&self, now: u64, live: Option<u32>) -> Vec<Option<f64>> {
        let first = now.saturating_sub(SECONDS - 1);
        (first..=now)
            .map(|s| {
                let v = if self.last == 0 || s + SECONDS <= self.last {
                    f32::NAN
                } else if s > self.last {
                    if live == Some(self.pid) { self.carried() } else { f32::NAN }
                } else {
                    self.ring[Self::slot(s)]
                };
                (!v.is_nan()).then_some(f64::from(v))
            })
            .collect()
    }

    /// Whether the run that wrote last is `pid`.
    pub fn written_by(&self, pid: Option<u32>) -> bool {
        pid == Some(self.pid) && self.last != 0
    }
}

/// Change per second over the last few seconds: a gauge's slope, a counter's mean count.
pub fn rate(kind: Kind, points: &[Option<f64>]) -> Option<f64> {
    const WINDOW: usize = 5;
    match kind {
        Kind::Counter => {
            // The current second is still counting: the five complete ones before it.
            let done = &points[..points.len().saturating_sub(1)];
            let recent: Vec<f64> = done.iter().rev().take(WINDOW).flatten().copied().collect();
            (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64)
        }
        Kind::Gauge => {
            let n = points.len();
            let recent: Vec<(usize, f64)> = (n.saturating_sub(WINDOW + 1)..n)
                .filter_map(|i| points[i].map(|v| (i, v)))
                .collect();
            let (&(i0, v0), &(i1, v1)) = (recent.first()?, recent.last()?);
            (i1 > i0).then(|| (v1 - v0) / (i1 - i0) as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(points: &[Option<f64>], n: usize) -> Vec<Option<f64>> {
        points[points.len() - n..].to_vec()
    }

    #[test]
    fn a_gauge_carries_forward_while_its_run_lives_and_gaps_after_a_restart() {
        let mut h = History::new(Kind::Gauge);
        h.set(1000, 7, 10.0);
        h.set(1002, 7, 30.0);
        assert_eq!(
            tail(&h.points(1003, Some(7)), 4),
            [Some(10.0), Some(10.0), Some(30.0), Some(30.0)]
        );
        // The run ended: nothing after its last value.
        assert_eq!(tail(&h.points(1004, None), 2), [None, None]);
        // A new run (pid 8) keeps the series, with a gap for the restart.
        h.set(1006, 8, 1.0);
        let points = h.points(1006, Some(8));
        assert_eq!(tail(&points, 5), [Some(30.0), None, None, None, Some(1.0)]);
        h.set(1007, 9, 2.0);
        assert_eq!(tail(&h.points(1007, Some(9)), 2), [Some(1.0), Some(2.0)]);
        assert_eq!(h.points(1007, Some(9)).len(), METRIC_SECONDS);
    }

    #[test]
    fn a_counter_counts_per_second_and_totals() {
        let mut h = History::new(Kind::Counter);
        for _ in 0..3 {
            h.count(500, 1);
        }
        h.count(502, 1);
        assert_eq!(tail(&h.points(503, Some(1)), 4), [Some(3.0), Some(0.0), Some(1.0), Some(0.0)]);
        assert!((h.latest - 4.0).abs() < f64::EPSILON);
        let rate = rate(Kind::Counter, &h.points(503, Some(1)));
        assert_eq!(rate, Some(4.0 / 3.0), "the mean of the complete seconds with data");
    }

    #[test]
    fn old_values_leave_the_window_and_a_long_gap_clears_it() {
        let mut h = History::new(Kind::Gauge);
        h.set(100, 1, 5.0);
        h.set(100 + 2 * SECONDS, 2, 6.0);
        let points = h.points(100 + 2 * SECONDS, Some(2));
        assert_eq!(points.iter().flatten().count(), 1, "only the new value is in the window");
    }

    #[test]
    fn a_gauge_rate_is_its_slope() {
        let points: Vec<Option<f64>> = (0..10).map(|i| Some(f64::from(i) * 3.0)).collect();
        assert_eq!(rate(Kind::Gauge, &points), Some(3.0));
        assert_eq!(rate(Kind::Gauge, &[None, None]), None);
    }
}
