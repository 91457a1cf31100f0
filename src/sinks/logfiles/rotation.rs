//! When a log file rotates, what its rotated copy is called, and which rotated copies
//! are pruned: decisions only, from times and names given to it. No clock, no files.
//!
//! Names follow tracing-appender's: the current file is `web.2.log`; at rotation it
//! becomes `web.2.2026-12-01.log` (the UTC day it covered), or `web.2.2026-12-01.1.log`
//! (`.2`, …) if that name is taken.

use std::time::{Duration, SystemTime};

const DAY: Duration = Duration::from_hours(24);

/// How long one file covers before it rotates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// A UTC day (the only period people get).
    Daily,
    /// The test hook's short period: rotated names carry the second, so they stay
    /// unique.
    Every(Duration),
}

impl Period {
    /// The number of the period `t` falls in: UTC days since the epoch, or whole periods
    /// since the epoch. A time before the epoch is period 0.
    pub fn index(self, t: SystemTime) -> u64 {
        let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let length = self.length().as_millis().max(1);
        u64::try_from(since.as_millis() / length).unwrap_or(u64::MAX)
    }

    fn length(self) -> Duration {
        match self {
            Period::Daily => DAY,
            Period::Every(d) => d,
        }
    }

    /// The date part of the rotated name of a file that covered period `index`:
    /// `2026-12-01`, or with a test period `2026-12-01-10-00-04` (when it began).
    pub fn label(self, index: u64) -> String {
        let length = u64::try_from(self.length().as_millis()).unwrap_or(u64::MAX).max(1);
        let start = Duration::from_millis(index.saturating_mul(length));
        let start = SystemTime::UNIX_EPOCH.checked_add(start).unwrap_or(SystemTime::UNIX_EPOCH);
        // `2026-12-01T10:00:04Z`: humantime's RFC 3339 is always UTC and fixed-width.
        let text = humantime::format_rfc3339_seconds(start).to_string();
        match self {
            Period::Daily => text.get(..10).unwrap_or(&text).to_string(),
            Period::Every(_) => text.get(..19).unwrap_or(&text).replace(['T', ':'], "-"),
        }
    }
}

/// What to do with a log file found at the current name when corral opens it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// Write on at its end.
    Append,
    /// It covers an earlier period: rotate it under this label first.
    Rotate(String),
}

/// A log file found on opening, `len` bytes last modified at `modified`, written to at
/// `now`. An empty file is simply reused: rotating it would only keep an empty copy.
pub fn on_open(period: Period, len: u64, modified: SystemTime, now: SystemTime) -> Found {
    let covered = period.index(modified);
    if len > 0 && covered < period.index(now) {
        Found::Rotate(period.label(covered))
    } else {
        Found::Append
    }
}

/// One open log file's rotation state: the period its current file covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    period: Period,
    covers: u64,
}

impl Rotation {
    /// A file opened (or appended to) at `now`.
    pub fn opened(period: Period, now: SystemTime) -> Rotation {
        Rotation { period, covers: period.index(now) }
    }

    /// Before writing at `now`: `Some(label)` when the file's period is over and it must
    /// be rotated under `label` first. A clock that went back never rotates.
    pub fn due(&self, now: SystemTime) -> Option<String> {
        (self.period.index(now) > self.covers).then(|| self.period.label(self.covers))
    }
}

/// `web.2.2026-12-01.log`, or with `n > 0` `web.2.2026-12-01.n.log`.
pub fn rotated_name(prefix: &str, label: &str, n: u32) -> String {
    if n == 0 { format!("{prefix}.{label}.log") } else { format!("{prefix}.{label}.{n}.log") }
}

/// `(label, n)` when `name` is a rotated copy of the log `prefix` (`web.2`): exactly
/// `<prefix>.<date>[.<n>].log`, the date as [`Period::label`] writes one. Anything else,
/// another slot's files (`web.20.…` for `web.2`) included, is `None`.
pub fn parse_rotated<'a>(prefix: &str, name: &'a str) -> Option<(&'a str, u32)> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('.')?.strip_suffix(".log")?;
    let (label, n) = match rest.split_once('.') {
        None => (rest, 0),
        Some((label, n)) => {
            let digits = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
            if !digits || n.starts_with('0') {
                return None;
            }
            (label, n.parse().ok()?)
        }
    };
    is_label(label).then_some((label, n))
}

/// `2026-12-01` or `2026-12-01-10-00-04`.
fn is_label(text: &str) -> bool {
    let shape = match text.len() {
        10 => "dddd-dd-dd",
        19 => "dddd-dd-dd-dd-dd-dd",
        _ => return false,
    };
    text.bytes()
        .zip(shape.bytes())
        .all(|(b, s)| if s == b'd' { b.is_ascii_digit() } else { b == s })
}

/// Of the names in a directory, the rotated copies of `prefix` to delete so that only
/// the newest `keep` remain (newest by label, then by `n`).
pub fn to_prune<'a>(
    prefix: &str,
    names: impl IntoIterator<Item = &'a str>,
    keep: u32,
) -> Vec<String> {
    let mut rotated: Vec<(&str, u32, &str)> = names
        .into_iter()
        .filter_map(|name| parse_rotated(prefix, name).map(|(label, n)| (label, n, name)))
        .collect();
    rotated.sort_unstable();
    let excess = rotated.len().saturating_sub(keep as usize);
    rotated.into_iter().take(excess).map(|(_, _, name)| name.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc3339).expect("a valid time")
    }

    #[test]
    fn a_daily_file_rotates_at_utc_midnight_under_the_day_it_covered() {
        let r = Rotation::opened(Period::Daily, at("2026-12-01T10:00:00Z"));
        assert_eq!(r.due(at("2026-12-01T23:59:59.999Z")), None);
        assert_eq!(r.due(at("2026-12-02T00:00:00Z")).as_deref(), Some("2026-12-01"));
        assert_eq!(r.due(at("2026-12-05T08:00:00Z")).as_deref(), Some("2026-12-01"));
        assert_eq!(r.due(at("2026-11-30T12:00:00Z")), None, "a clock that went back");
    }

    #[test]
    fn a_test_period_labels_by_the_second_it_began() {
        let p = Period::Every(Duration::from_secs(2));
        let r = Rotation::opened(p, at("2026-12-01T10:00:05.500Z"));
        assert_eq!(r.due(at("2026-12-01T10:00:05.999Z")), None);
        assert_eq!(r.due(at("2026-12-01T10:00:06Z")).as_deref(), Some("2026-12-01-10-00-04"));
        assert_eq!(
            Period::Daily.label(Period::Daily.index(at("1970-01-01T00:00:00Z"))),
            "1970-01-01"
        );
    }

    #[test]
    fn a_file_found_from_an_earlier_period_is_rotated_first_unless_empty() {
        let now = at("2026-12-02T09:00:00Z");
        let yesterday = at("2026-12-01T22:00:00Z");
        let p = Period::Daily;
        assert_eq!(on_open(p, 10, yesterday, now), Found::Rotate("2026-12-01".into()));
        assert_eq!(on_open(p, 0, yesterday, now), Found::Append, "empty: reused");
        assert_eq!(on_open(p, 10, at("2026-12-02T00:00:01Z"), now), Found::Append);
        assert_eq!(on_open(p, 10, at("2026-12-03T00:00:00Z"), now), Found::Append, "future");
    }

    #[test]
    fn rotated_names_are_recognised_exactly() {
        assert_eq!(rotated_name("web.2", "2026-12-01", 0), "web.2.2026-12-01.log");
        assert_eq!(rotated_name("web.2", "2026-12-01", 3), "web.2.2026-12-01.3.log");
        assert_eq!(parse_rotated("web.2", "web.2.2026-12-01.log"), Some(("2026-12-01", 0)));
        assert_eq!(parse_rotated("web.2", "web.2.2026-12-01.12.log"), Some(("2026-12-01", 12)));
        let seconds = "web.2.2026-12-01-10-00-04.log";
        assert_eq!(parse_rotated("web.2", seconds), Some(("2026-12-01-10-00-04", 0)));
        for other in [
            "web.20.2026-12-01.log",
            "web.2.log",
            "web.2.2026-12-01.log.gz",
            "web.2.2026-12-01.01.log",
            "web.2.2026-12-01..log",
            "web.2.2026-12-1.log",
            "web.2.notadate!.log",
            "web.2.2026-12-01.x.log",
            "xweb.2.2026-12-01.log",
            "corral.2026-12-01.log",
        ] {
            assert_eq!(parse_rotated("web.2", other), None, "{other}");
        }
        assert_eq!(parse_rotated("corral", "corral.2026-12-01.log"), Some(("2026-12-01", 0)));
        assert_eq!(parse_rotated("corral", "corral.1.2026-12-01.log"), None, "group `corral`");
    }

    #[test]
    fn pruning_keeps_the_newest_n_of_this_log_and_touches_nothing_else() {
        let names = [
            "web.2.log",
            "web.2.2026-11-29.log",
            "web.2.2026-12-01.log",
            "web.2.2026-12-01.1.log",
            "web.2.2026-11-30.log",
            "web.20.2026-11-01.log",
            "web.2.2026-11-28.log.gz",
            "notes.txt",
        ];
        let mut pruned = to_prune("web.2", names, 2);
        pruned.sort();
        assert_eq!(pruned, ["web.2.2026-11-29.log", "web.2.2026-11-30.log"]);
        assert_eq!(to_prune("web.2", names, 0).len(), 4, "keep 0: only the current file stays");
        assert!(to_prune("web.2", names, 4).is_empty());
        assert!(to_prune("web.2", names, 10_000).is_empty());
    }
}
