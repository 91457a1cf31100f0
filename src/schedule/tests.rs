use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

use super::*;

fn utc(text: &str) -> SystemTime {
    SystemTime::from(DateTime::parse_from_rfc3339(text).expect("rfc3339").with_timezone(&Utc))
}

fn shown(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn sched(text: &str) -> Schedule {
    Schedule::parse(text, Zone::Utc, utc("2026-12-06T10:00:00Z")).expect("parses")
}

fn next(text: &str, after: &str) -> String {
    shown(sched(text).next_after(utc(after)).expect("a next time"))
}

#[test]
fn seconds_minutes_and_nicknames() {
    assert_eq!(next("*/2 * * * * *", "2026-12-06T10:00:00.500Z"), "2026-12-06T10:00:02Z");
    // Strictly after: a run that fired exactly on time does not fire again.
    assert_eq!(next("*/2 * * * * *", "2026-12-06T10:00:02Z"), "2026-12-06T10:00:04Z");
    assert_eq!(next("@hourly", "2026-12-06T10:15:00Z"), "2026-12-06T11:00:00Z");
    assert_eq!(next("@daily", "2026-12-06T10:15:00Z"), "2026-12-07T00:00:00Z");
    // The usual five fields: minute first, at second 0.
    assert_eq!(next("30 4 * * *", "2026-12-06T10:15:00Z"), "2026-12-07T04:30:00Z");
    assert_eq!(next("0 0 4 * * *", "2026-12-06T03:59:59Z"), "2026-12-06T04:00:00Z");
    let three = sched("*/5 * * * *").upcoming(utc("2026-12-06T10:01:00Z"), 3);
    let three: Vec<String> = three.into_iter().map(shown).collect();
    assert_eq!(three, ["2026-12-06T10:05:00Z", "2026-12-06T10:10:00Z", "2026-12-06T10:15:00Z"]);
}

#[test]
fn mistakes_are_refused_with_a_reason() {
    let now = utc("2026-12-06T10:00:00Z");
    for bad in ["", "* * *", "61 * * * *", "* * * * * * * *", "@sometimes", "x * * * *"] {
        let err = Schedule::parse(bad, Zone::Utc, now).expect_err(bad);
        assert!(!err.is_empty(), "{bad}");
    }
    let reboot = Schedule::parse("@reboot", Zone::Utc, now).expect_err("@reboot");
    assert!(reboot.contains("a group without a schedule starts with corral"), "{reboot}");
    let unknown = Schedule::parse("@sometimes", Zone::Utc, now).expect_err("@sometimes");
    assert!(unknown.starts_with("@sometimes is not a shorthand"), "{unknown}");
    let one = Schedule::parse("hello", Zone::Utc, now).expect_err("hello");
    assert!(one.ends_with("this has 1 field"), "{one}");
    assert!(Schedule::parse("@Daily", Zone::Utc, now).is_ok(), "shorthands in any case");
    let err = Schedule::parse("0 0 30 2 *", Zone::Utc, now).expect_err("30 February");
    assert!(err.contains("never"), "{err}");
    assert!(Zone::parse("Europe/Paris").expect_err("not yet").contains("TZ="));
    assert_eq!(Zone::parse("UTC"), Ok(Zone::Utc));
    assert_eq!(Zone::parse("local"), Ok(Zone::Local));
}

/// Paris in 2026, without a time zone database: CET (+01:00), CEST (+02:00) from
/// 2026-03-29 01:00 UTC to 2026-10-25 01:00 UTC.
#[derive(Clone, Copy, Debug)]
struct Paris2026;

impl Paris2026 {
    fn offset_at(utc: &NaiveDateTime) -> FixedOffset {
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).and_then(|d| d.and_hms_opt(1, 0, 0));
        let summer = day(3, 29).is_some_and(|s| *utc >= s) && day(10, 25).is_some_and(|e| *utc < e);
        FixedOffset::east_opt(if summer { 7200 } else { 3600 }).expect("offset")
    }
}

impl TimeZone for Paris2026 {
    type Offset = FixedOffset;

    fn from_offset(_: &FixedOffset) -> Self {
        Paris2026
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<FixedOffset> {
        self.offset_from_local_datetime(&local.and_hms_opt(12, 0, 0).expect("noon"))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<FixedOffset> {
        // The offsets under which this wall time exists: summer's first, as its instant is
        // the earlier one.
        let fits: Vec<FixedOffset> = [7200, 3600]
            .into_iter()
            .filter_map(FixedOffset::east_opt)
            .filter(|o| {
                let utc = *local - chrono::TimeDelta::seconds(i64::from(o.local_minus_utc()));
                Paris2026::offset_at(&utc) == *o
            })
            .collect();
        match fits.as_slice() {
            [one] => MappedLocalTime::Single(*one),
            [summer, winter] => MappedLocalTime::Ambiguous(*summer, *winter),
            _ => MappedLocalTime::None,
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> FixedOffset {
        Paris2026::offset_at(&utc.and_hms_opt(12, 0, 0).expect("noon"))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> FixedOffset {
        Paris2026::offset_at(utc)
    }
}

fn paris_next(text: &str, after: &str) -> String {
    let cron = sched(text).cron;
    let after = DateTime::<Utc>::from(utc(after));
    let next = next_in(&cron, &Paris2026, after).expect("a next time");
    next.with_timezone(&Paris2026).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

#[test]
fn across_daylight_saving_changes() {
    // Spring: 02:00 to 03:00 does not exist; hourly runs stay an hour apart in real time.
    assert_eq!(paris_next("@hourly", "2026-03-29T00:30:00Z"), "2026-03-29T03:00:00+02:00");
    // A time inside the gap runs once, as the clock jumps over it (as Vixie cron does), and
    // at its own time the next day.
    assert_eq!(paris_next("30 2 * * *", "2026-03-28T23:00:00Z"), "2026-03-29T03:00:00+02:00");
    assert_eq!(paris_next("30 2 * * *", "2026-03-29T01:00:00Z"), "2026-03-30T02:30:00+02:00");
    // Autumn: 02:30 happens twice; the schedule runs at the first, and not again at the second.
    assert_eq!(paris_next("30 2 * * *", "2026-10-24T23:00:00Z"), "2026-10-25T02:30:00+02:00");
    let second = paris_next("30 2 * * *", "2026-10-25T00:30:00Z");
    assert_eq!(second, "2026-10-26T02:30:00+01:00");
    // A daily time outside the change keeps its wall-clock time across it.
    assert_eq!(paris_next("0 4 * * *", "2026-10-25T02:00:00Z"), "2026-10-25T04:00:00+01:00");
}

#[test]
fn a_late_or_early_clock_fires_once_and_never_in_a_burst() {
    let s = sched("*/2 * * * * *");
    let due = utc("2026-12-06T10:00:02Z");
    // Not yet.
    let step_before = step(&s, Some(due), utc("2026-12-06T10:00:01Z"));
    assert_eq!(step_before, Step::Wait { next: Some(due) });
    // On time: fire, the next one two seconds on.
    let fire = step(&s, Some(due), utc("2026-12-06T10:00:02.001Z"));
    assert_eq!(fire, Step::Fire { next: Some(utc("2026-12-06T10:00:04Z")) });
    // The clock jumped an hour forward: one run, then on from the new time (not 1800 runs).
    let jumped = step(&s, Some(due), utc("2026-12-06T11:00:00.5Z"));
    assert_eq!(jumped, Step::Fire { next: Some(utc("2026-12-06T11:00:02Z")) });
    // The clock was set an hour back: the next run follows it back instead of waiting an hour.
    let back = step(&s, Some(due), utc("2026-12-06T09:00:00.5Z"));
    assert_eq!(back, Step::Wait { next: Some(utc("2026-12-06T09:00:02Z")) });
}

#[test]
fn the_timer_wakes_at_the_due_time_or_to_look_at_the_clock_again() {
    let now = Instant::now();
    let wall = utc("2026-12-06T10:00:00Z");
    assert_eq!(wake_at(utc("2026-12-06T10:00:02Z"), now, wall), now + Duration::from_secs(2));
    assert_eq!(wake_at(utc("2026-12-06T04:00:00Z"), now, wall), now, "overdue: at once");
    assert_eq!(wake_at(utc("2026-12-07T04:00:00Z"), now, wall), now + RECHECK);
}
