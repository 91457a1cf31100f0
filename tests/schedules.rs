//! Schedules (docs/application.md#schedules) on the real binary: a one-shot `sh` group on a
//! two-second cron runs again and again without headless corral leaving, a run that outlasts
//! the period is skipped (and said) rather than doubled, `reload-schedule` reloads a long-running
//! group with cause `schedule`, and a bad pattern is a config error at its place.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{Corral, DEADLINE, corral_bin, kind, named, wait_until};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn start(toml: &str) -> (tempfile::TempDir, Corral) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "app.toml", toml);
    let corral = Corral::start(&["--config".as_ref(), file.as_os_str()]);
    (dir, corral)
}

#[test]
fn a_one_shot_group_runs_at_each_time_and_keeps_corral_up() {
    let (_dir, mut corral) = start(
        "[group.job]\ncommand = \"echo run\"\nschedule = \"*/2 * * * * *\"\nschedule-tz = \"UTC\"\n\
         workers = 1\n",
    );
    // Once the control socket answers, between two runs (a run may be under way at a look).
    let mut status = Value::Null;
    let answered = wait_until(DEADLINE, || {
        let out = corral.ctl(&["status", "--json"]);
        status = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        out.status.success() && status[0]["state"] == "scheduled"
    });
    assert!(answered, "{status}\n{}", corral.dump());
    assert!(status[0]["next_run"].as_str().is_some_and(|t| t.ends_with('Z')), "{status}");
    assert!(status[0]["next_run_in_ms"].as_u64().is_some_and(|ms| ms <= 2000), "{status}");
    corral.wait_for("three runs", DEADLINE, |events| {
        let runs = named(events, "output").iter().filter(|e| e["line"] == "run").count();
        (runs >= 3).then_some(())
    });
    assert_eq!(corral.try_exit(), None, "headless corral stays up between runs");
    let events = corral.events();
    let exits = named(&events, "exited");
    assert!(exits.iter().all(|e| e["code"] == 0), "{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
}

#[test]
fn a_run_that_outlasts_the_period_is_skipped_and_said_never_doubled() {
    let (_dir, mut corral) = start(
        "[group.slow]\ncommand = \"echo start; sleep 3\"\nschedule = \"*/1 * * * * *\"\nworkers = 1\n",
    );
    corral.wait_for("a skip", DEADLINE, |e| named(e, "schedule_skipped").first().map(|_| ()));
    corral.wait_for("a second run", DEADLINE, |e| named(e, "spawned").get(1).map(|_| ()));
    let events = corral.events();
    // spawned and exited alternate: never two runs at once.
    let mut live = 0;
    for e in events.iter().filter(|e| e["group"] == "slow") {
        match kind(e) {
            "spawned" => live += 1,
            "exited" => live -= 1,
            _ => {}
        }
        assert!(live <= 1, "two runs at once\n{}", corral.dump());
    }
    let skip = named(&events, "schedule_skipped")[0].clone();
    assert_eq!(skip["running"], 1, "{skip}");
    assert!(corral.stderr().contains("scheduled run skipped"), "{}", corral.stderr());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
}

#[test]
fn reload_schedule_reloads_with_cause_schedule() {
    let (_dir, mut corral) = start(
        "[group.web]\ncommand = \"exec sleep 60\"\nworkers = 1\nreload-schedule = \"*/3 * * * * *\"\n\
         reload-settle = \"0s\"\n",
    );
    let started = corral.wait_for("a scheduled reload", DEADLINE, |e| {
        named(e, "reload_started").first().map(|s| (*s).clone())
    });
    assert_eq!(started["cause"], "schedule", "{started}");
    corral.wait_for("its end", DEADLINE, |e| named(e, "reload_finished").first().map(|_| ()));
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
}

#[test]
fn bad_schedules_are_config_errors_at_their_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("schedule = \"*/2 * *\"", "app.toml:3:12: group.job.schedule: expected a cron pattern"),
        ("schedule = \"99 * * * *\"", "app.toml:3:12: group.job.schedule: not a cron pattern"),
        ("schedule = \"@hourly\"\nrestart = \"always\"", "use reload-schedule"),
        ("schedule = \"@hourly\"\nschedule-tz = \"Mars/Olympus\"", "expected \"local\" or \"UTC\""),
    ];
    for (line, want) in cases {
        let file =
            write(dir.path(), "app.toml", &format!("[group.job]\ncommand = \"true\"\n{line}\n"));
        let out = Command::new(corral_bin()).args(["--no-ui", "--config"]).arg(&file).output();
        let out = out.expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{line}: {stderr}");
        assert!(stderr.contains(want) && stderr.lines().count() == 1, "{line}: {stderr}");
    }
    let file = write(
        dir.path(),
        "app.toml",
        "[group.job]\ncommand = \"true\"\nschedule = \"0 0 4 * * *\"\nschedule-tz = \"UTC\"\n",
    );
    let out = Command::new(corral_bin()).arg("check-config").arg(&file).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("# job runs at \"0 0 4 * * *\" (UTC): next "), "{stdout}");
    assert_eq!(stdout.matches("04:00:00 UTC").count(), 3, "the next three: {stdout}");
}

/// A scheduled job whose last run failed is not healthy until a run succeeds: a failed
/// nightly backup must not pass a HEALTHCHECK.
#[test]
fn a_failed_scheduled_run_makes_ctl_status_exit_1() {
    let (_dir, mut corral) =
        start("[group.backup]\ncommand = \"exit 3\"\nschedule = \"*/5 * * * * *\"\n");
    corral.wait_for("a failed run", DEADLINE, |events| {
        events.iter().any(|e| kind(e) == "exited" && e["code"] == 3).then_some(())
    });
    let out = corral.ctl(&["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("backup.1's last scheduled run failed (exit 3)"), "{stderr}");
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
}
