//! Probes' verdicts (docs/application.md#probes): how a worker's readiness, liveness and
//! startup probes turn results into decisions. Pure: results and instants come in, verdicts
//! go out; the runtime only runs the probes.

use std::time::{Duration, Instant};

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeKind {
    /// Decides `ready`, and `unready` after it.
    Readiness,
    /// Restarts a worker that fails it.
    Liveness,
    /// Holds the other two back until it first succeeds.
    Startup,
}

impl ProbeKind {
    /// The `probe` field of the `probe_failed` event.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Readiness => "readiness",
            ProbeKind::Liveness => "liveness",
            ProbeKind::Startup => "startup",
        }
    }
}

/// When a probe runs and how many results decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeTiming {
    /// From one probe's start to the next's.
    pub period: Duration,
    /// A probe not done by then failed.
    pub timeout: Duration,
    /// From the spawn (or the startup probe's success) to the first probe.
    pub initial_delay: Duration,
    /// Failures in a row that make the verdict "failed"; at least 1.
    pub failure_threshold: u32,
    /// Successes in a row that make the verdict "passed"; at least 1.
    pub success_threshold: u32,
}

impl Default for ProbeTiming {
    fn default() -> Self {
        ProbeTiming {
            period: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            initial_delay: Duration::ZERO,
            failure_threshold: 3,
            success_threshold: 1,
        }
    }
}

/// A group's probes, as far as the supervisor needs them (what to probe is the runtime's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeSet {
    pub readiness: Option<ProbeTiming>,
    pub liveness: Option<ProbeTiming>,
    pub startup: Option<ProbeTiming>,
}

impl ProbeSet {
    pub fn get(&self, kind: ProbeKind) -> Option<ProbeTiming> {
        match kind {
            ProbeKind::Readiness => self.readiness,
            ProbeKind::Liveness => self.liveness,
            ProbeKind::Startup => self.startup,
        }
    }
}

/// A failing probe is reported at most this often per worker and probe, with the count
/// so far (as protocol errors are).
pub(crate) const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What one result changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing yet: a streak is still below its threshold, or it confirms the last verdict.
    Steady,
    /// `success_threshold` successes in a row, after a failure verdict or none.
    Passed,
    /// `failure_threshold` failures in a row, after a success verdict or none.
    Failed,
}

/// One probe's counters in one run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Track {
    ok_streak: u32,
    fail_streak: u32,
    /// A probe was asked for and its result has not come: the next is not asked for.
    pub in_flight: bool,
    /// Failures in this run, for the report's `count`.
    failures: u64,
    last_report: Option<Instant>,
    /// The last verdict: `Some(true)` passed, `Some(false)` failed.
    passing: Option<bool>,
    /// When its timer was meant to fire, which may differ a little from when it did.
    due: Option<Instant>,
}

impl Track {
    /// The next probe's time after one due now: a period after the last was meant to be
    /// due, so that a timer's lateness (the runtime batches timers close together) does not
    /// add up over periods; a period from now if corral fell a period behind.
    pub fn next_due(&mut self, now: Instant, period: std::time::Duration) -> Instant {
        let next =
            self.due.map(|due| due + period).filter(|next| *next > now).unwrap_or(now + period);
        self.due = Some(next);
        next
    }

    /// The timer was armed for `at` from scratch (the first probe, a new period count).
    pub fn armed(&mut self, at: Instant) {
        self.due = Some(at);
    }

    /// The last verdict (`None`: none yet) and the failures in this run.
    pub fn state(&self) -> (Option<bool>, u64) {
        (self.passing, self.failures)
    }

    pub fn record(&mut self, ok: bool, timing: &ProbeTiming) -> Verdict {
        self.in_flight = false;
        if ok {
            self.fail_streak = 0;
            self.ok_streak = self.ok_streak.saturating_add(1);
            if self.ok_streak >= timing.success_threshold && self.passing != Some(true) {
                self.passing = Some(true);
                return Verdict::Passed;
            }
        } else {
            self.ok_streak = 0;
            self.fail_streak = self.fail_streak.saturating_add(1);
            self.failures = self.failures.saturating_add(1);
            if self.fail_streak >= timing.failure_threshold && self.passing != Some(false) {
                self.passing = Some(false);
                return Verdict::Failed;
            }
        }
        Verdict::Steady
    }

    /// After a failure: `Some(count)` when it is to be reported now (the first one, or the
    /// first after [`REPORT_EVERY`]), `None` while reports are held back.
    pub fn report_failure(&mut self, now: Instant) -> Option<u64> {
        if self.last_report.is_some_and(|t| now.saturating_duration_since(t) < REPORT_EVERY) {
            return None;
        }
        self.last_report = Some(now);
        Some(self.failures)
    }
}

/// A run's probes.
#[derive(Clone, Debug, Default)]
pub(crate) struct RunProbes {
    pub readiness: Track,
    pub liveness: Track,
    pub startup: Track,
    /// The startup probe succeeded (or there is none): the other two run.
    pub started: bool,
    /// Ready once, and its readiness probe fails now.
    pub unready: bool,
}

impl RunProbes {
    pub fn new(set: &ProbeSet) -> RunProbes {
        RunProbes { started: set.startup.is_none(), ..RunProbes::default() }
    }

    pub fn track(&mut self, kind: ProbeKind) -> &mut Track {
        match kind {
            ProbeKind::Readiness => &mut self.readiness,
            ProbeKind::Liveness => &mut self.liveness,
            ProbeKind::Startup => &mut self.startup,
        }
    }

    /// The probes that run now: the startup probe alone until it succeeded, then the others.
    pub fn active(&self, set: &ProbeSet) -> impl Iterator<Item = ProbeKind> + use<> {
        let kinds: &[ProbeKind] = if self.started {
            &[ProbeKind::Readiness, ProbeKind::Liveness]
        } else {
            &[ProbeKind::Startup]
        };
        let set = *set;
        kinds.iter().copied().filter(move |&k| set.get(k).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(failure_threshold: u32, success_threshold: u32) -> ProbeTiming {
        ProbeTiming { failure_threshold, success_threshold, ..ProbeTiming::default() }
    }

    #[test]
    fn a_verdict_needs_a_full_streak_and_comes_once() {
        let t = timing(3, 2);
        let mut track = Track::default();
        assert_eq!(track.record(true, &t), Verdict::Steady);
        assert_eq!(track.record(true, &t), Verdict::Passed);
        assert_eq!(track.record(true, &t), Verdict::Steady, "already passing");
        assert_eq!(track.record(false, &t), Verdict::Steady);
        assert_eq!(track.record(false, &t), Verdict::Steady);
        assert_eq!(track.record(true, &t), Verdict::Steady, "a success breaks the streak");
        for _ in 0..2 {
            assert_eq!(track.record(false, &t), Verdict::Steady);
        }
        assert_eq!(track.record(false, &t), Verdict::Failed);
        assert_eq!(track.record(false, &t), Verdict::Steady, "already failing");
        assert_eq!(track.record(true, &t), Verdict::Steady);
        assert_eq!(track.record(true, &t), Verdict::Passed);
    }

    #[test]
    fn periods_count_from_when_the_timer_was_meant_to_fire() {
        let period = std::time::Duration::from_secs(1);
        let ms = std::time::Duration::from_millis;
        let start = Instant::now();
        let mut track = Track::default();
        track.armed(start);
        // Every timer fires 9 ms late: the next is still due on the period's grid.
        let mut due = start;
        for k in 1..=50 {
            due = track.next_due(due + ms(9), period);
            assert_eq!(due, start + period * k);
        }
        // corral fell more than a period behind: a period from now, not a burst.
        let late = due + period * 3;
        assert_eq!(track.next_due(late, period), late + period);
    }

    #[test]
    fn first_failures_decide_without_a_success_before() {
        let t = timing(1, 1);
        let mut track = Track::default();
        assert_eq!(track.record(false, &t), Verdict::Failed);
        assert_eq!(track.record(true, &t), Verdict::Passed);
    }

    #[test]
    fn failure_reports_are_rate_limited_with_the_count() {
        let t = timing(3, 1);
        let start = Instant::now();
        let mut track = Track::default();
        let mut reported = Vec::new();
        for i in 0..30u64 {
            track.record(false, &t);
            if let Some(count) = track.report_failure(start + Duration::from_millis(100 * i)) {
                reported.push(count);
            }
        }
        assert_eq!(reported, vec![1, 11, 21]);
    }

    #[test]
    fn startup_holds_the_others_back() {
        let set = ProbeSet {
            readiness: Some(ProbeTiming::default()),
            liveness: None,
            startup: Some(ProbeTiming::default()),
        };
        let mut probes = RunProbes::new(&set);
        assert_eq!(probes.active(&set).collect::<Vec<_>>(), vec![ProbeKind::Startup]);
        probes.started = true;
        assert_eq!(probes.active(&set).collect::<Vec<_>>(), vec![ProbeKind::Readiness]);
        let none = RunProbes::new(&ProbeSet::default());
        assert!(none.started);
        assert_eq!(none.active(&ProbeSet::default()).count(), 0);
    }
}
