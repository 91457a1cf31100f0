//! Schedules (docs/application.md#schedules): a cron pattern (six fields with seconds, the usual
//! five, or `@hourly` and the like) read by the `croner` crate, in local time or UTC. Pure: the
//! wall clock comes in as an argument, so every answer is tested with fixed times.

use std::cmp::Ordering;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Datelike as _, LocalResult, TimeZone, Timelike as _, Utc};
use croner::Cron;
use croner::errors::CronError;
use croner::{CivilDate, CivilDateTime, CivilTime, CronDateTime, Resolution, Weekday};

/// The longest the runtime sleeps before looking at the wall clock again: a clock set back or
/// forward (NTP, a suspended laptop) is noticed within this, whatever the next run is.
pub const RECHECK: Duration = Duration::from_secs(30);

/// The time zone a schedule's fields are read in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Zone {
    /// The system's (`TZ`, else `/etc/localtime`), as chrono's `Local` reads it.
    #[default]
    Local,
    Utc,
}

impl Zone {
    /// `schedule-tz`'s words.
    pub fn parse(text: &str) -> Result<Zone, String> {
        match text {
            "local" | "Local" => Ok(Zone::Local),
            "UTC" | "utc" | "Etc/UTC" | "Z" => Ok(Zone::Utc),
            _ => Err("expected \"local\" or \"UTC\" (for another zone, start corral with \
                      TZ=Area/City, which \"local\" follows)"
                .into()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Zone::Local => "local",
            Zone::Utc => "UTC",
        }
    }
}

/// A parsed cron pattern and the zone its fields are read in.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    /// As written, for messages and `check-config`.
    pub text: String,
    pub zone: Zone,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.zone == other.zone
    }
}

impl Schedule {
    /// Reads a pattern; a pattern that never fires again is refused too.
    pub fn parse(text: &str, zone: Zone, now: SystemTime) -> Result<Schedule, String> {
        let fields = text.split_whitespace().count();
        if let Some(word) = text.trim().strip_prefix('@') {
            let known = ["yearly", "annually", "monthly", "weekly", "daily", "hourly"];
            if word == "reboot" {
                return Err("@reboot is not a time: a group without a schedule starts with \
                            corral, which is what @reboot means"
                    .into());
            }
            if !known.contains(&word.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "@{word} is not a shorthand cron knows: @hourly, @daily, @weekly, \
                     @monthly or @yearly"
                ));
            }
        } else if !(fields == 5 || fields == 6) {
            let plural = if fields == 1 { "" } else { "s" };
            return Err(format!(
                "expected a cron pattern of 5 fields (minute hour day month weekday), 6 (with \
                 seconds first) or @hourly, @daily, @weekly, @monthly, @yearly: this has \
                 {fields} field{plural}"
            ));
        }
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .year(croner::parser::Year::Disallowed)
            .build();
        let cron = parser.parse(text).map_err(|e| describe(&e))?;
        let schedule = Schedule { cron, text: text.to_string(), zone };
        if schedule.next_after(now).is_none() {
            return Err("the pattern never matches a future time".into());
        }
        Ok(schedule)
    }

    /// The same pattern read in `zone`.
    #[must_use]
    pub fn in_zone(self, zone: Zone) -> Schedule {
        Schedule { zone, ..self }
    }

    /// The first time strictly after `after` that the pattern matches, in its zone.
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let after = DateTime::<Utc>::from(after);
        let next = match self.zone {
            Zone::Utc => next_in(&self.cron, &Utc, after),
            Zone::Local => next_in(&self.cron, &chrono::Local, after),
        };
        next.map(SystemTime::from)
    }

    /// The next `n` times after `after` (for `check-config`).
    pub fn upcoming(&self, after: SystemTime, n: usize) -> Vec<SystemTime> {
        let mut out = Vec::with_capacity(n);
        let mut at = after;
        while out.len() < n {
            let Some(next) = self.next_after(at) else { break };
            out.push(next);
            at = next;
        }
        out
    }

    /// `next` as a person reads it in the schedule's zone: `2026-12-06 04:00:00 +01:00`.
    pub fn show(&self, at: SystemTime) -> String {
        let at = DateTime::<Utc>::from(at);
        match self.zone {
            Zone::Utc => at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            Zone::Local => {
                at.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S %:z").to_string()
            }
        }
    }
}

fn describe(e: &CronError) -> String {
    let text = match e {
        CronError::EmptyPattern => "the pattern is empty".to_string(),
        CronError::InvalidPattern(m)
        | CronError::IllegalCharacters(m)
        | CronError::ComponentError(m) => m.trim_end_matches('.').to_string(),
        other => other.to_string(),
    };
    format!("not a cron pattern: {text}")
}

/// The first match after `after` in zone `tz`, to the second.
pub fn next_in<Tz: TimeZone>(cron: &Cron, tz: &Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let start = Zoned(after.with_timezone(tz));
    cron.find_next_occurrence(&start, false).ok().map(|z| z.0.with_timezone(&Utc))
}

/// When a schedule whose next run is `next` (wall clock) should be looked at again, as seen
/// at `now` (monotonic) and `wall` (the wall clock at that moment): at its due time, or after
/// [`RECHECK`] if that comes first.
pub fn wake_at(next: SystemTime, now: Instant, wall: SystemTime) -> Instant {
    let left = next.duration_since(wall).unwrap_or(Duration::ZERO);
    now + left.min(RECHECK)
}

/// What a schedule does when looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Its time came: fire once, and wait for this next time.
    Fire { next: Option<SystemTime> },
    /// Not yet; the next time is this (changed when the wall clock was set back).
    Wait { next: Option<SystemTime> },
}

/// Looks at a schedule whose next run was `next`, at wall time `wall`. A due schedule fires
/// once however late it is (a clock set forward, a suspended machine: no burst of runs), and
/// its next time is counted from now; a clock set back brings the next time back with it.
pub fn step(schedule: &Schedule, next: Option<SystemTime>, wall: SystemTime) -> Step {
    let fresh = schedule.next_after(wall);
    match next {
        Some(due) if due <= wall => Step::Fire { next: fresh },
        // Counted before the clock was set back: the pattern's next time from now is earlier.
        Some(due) if fresh.is_some_and(|f| f < due) => Step::Wait { next: fresh },
        Some(due) => Step::Wait { next: Some(due) },
        None => Step::Wait { next: fresh },
    }
}

/// A chrono time as croner searches it (croner's own chrono support is a feature this build
/// leaves off; the trait is small).
#[derive(Clone, Debug)]
struct Zoned<Tz: TimeZone>(DateTime<Tz>);

impl<Tz: TimeZone> CronDateTime for Zoned<Tz> {
    fn to_civil(&self) -> CivilDateTime {
        let n = self.0.naive_local();
        CivilDateTime::new(
            CivilDate::from_parts_unchecked(n.year(), n.month(), n.day()),
            CivilTime::from_parts_unchecked(n.hour(), n.minute(), n.second().min(59)),
        )
    }

    fn civil_weekday(&self) -> Weekday {
        Weekday::from_days_from_sunday(self.0.naive_local().weekday().num_days_from_sunday())
    }

    fn resolve_civil(&self, civil: CivilDateTime) -> Result<Resolution<Self>, CronError> {
        let naive = chrono::NaiveDate::from_ymd_opt(civil.year(), civil.month(), civil.day())
            .ok_or(CronError::InvalidDate)?
            .and_hms_opt(civil.hour(), civil.minute(), civil.second())
            .ok_or(CronError::InvalidTime)?;
        Ok(match self.0.timezone().from_local_datetime(&naive) {
            LocalResult::Single(t) => Resolution::Single(Zoned(t)),
            LocalResult::Ambiguous(a, b) => Resolution::Ambiguous(Zoned(a), Zoned(b)),
            LocalResult::None => Resolution::Gap,
        })
    }

    fn checked_add_seconds(&self, seconds: i64) -> Option<Self> {
        let delta = chrono::TimeDelta::try_seconds(seconds)?;
        self.0.clone().checked_add_signed(delta).map(Zoned)
    }

    fn cmp_instant(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

#[cfg(test)]
mod tests;
