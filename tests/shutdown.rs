//! Stopping (docs/supervision.md#shutdown): graceful shutdown on SIGINT/SIGTERM, SIGKILL after the kill timeout,
//! whole process trees and escapees cleaned up, workers dying with a corral killed by SIGKILL, and a
//! pending restart cancelled by a shutdown.

use std::path::Path;

use serde_json::Value;

use crate::util::{
    Corral, DEADLINE, children_of, kind, marker_lines, named, of_worker, pid_alive, signal_bit,
    signal_mask, stat, test_worker, token_processes, wait_until, with_command,
};

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// Waits until `pid` ignores SIGTERM, i.e. the test worker got past `--ignore-term`:
/// before that, a stop signal would simply kill it and prove nothing.
fn wait_ignores_term(corral: &Corral, pid: u32) {
    corral.wait_for(&format!("pid {pid} to ignore SIGTERM"), DEADLINE, |_| {
        let ignored =
            signal_mask(pid, "SigIgn").is_some_and(|m| m & signal_bit(libc::SIGTERM) != 0);
        ignored.then_some(())
    });
}

#[test]
fn shutdown_during_backoff_cancels_the_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("marker");
    let args = with_command(
        &["-w", "1", "--backoff", "30s"],
        &test_worker(&["--marker", path_str(&marker), "--exit", "1"]),
    );
    let mut corral = Corral::start(&args);
    let scheduled = corral.wait_for("restart_scheduled", DEADLINE, |events| {
        of_worker(events, "restart_scheduled", 1).first().map(|&e| e.clone())
    });
    let delay = scheduled["delay_ms"].as_u64().unwrap_or_else(|| panic!("delay_ms: {scheduled}"));
    assert!(delay >= 30_000, "{scheduled}");

    corral.signal(libc::SIGTERM);
    let status = corral.wait_exit(DEADLINE);
    let events = corral.events();
    let dump = corral.dump();
    assert_eq!(status.code(), Some(0), "{dump}");
    let started = named(&events, "shutdown_started");
    assert_eq!(started.len(), 1, "{dump}");
    assert_eq!(started[0]["signal"], "SIGTERM", "{dump}");
    let last = events.last().expect("events");
    assert_eq!(
        (&last["event"], &last["exit_code"]),
        (&"shutdown_complete".into(), &0.into()),
        "{dump}"
    );
    assert_eq!(named(&events, "spawned").len(), 1, "restarted after shutdown\n{dump}");
    assert_eq!(marker_lines(&marker).len(), 1, "started more than once\n{dump}");
    corral.assert_nothing_left();
}

#[test]
fn a_worker_ignoring_sigterm_is_killed_after_the_timeout() {
    let args =
        with_command(&["-w", "1", "--kill-timeout", "300ms"], &test_worker(&["--ignore-term"]));
    let mut corral = Corral::start(&args);
    let (_, pid) = corral.wait_spawned(1)[0];
    wait_ignores_term(&corral, pid);

    corral.signal(libc::SIGINT);
    let status = corral.wait_exit(DEADLINE);
    let events = corral.events();
    let dump = corral.dump();
    assert_eq!(status.code(), Some(0), "{dump}");
    let exits = of_worker(&events, "exited", 1);
    assert_eq!(exits.len(), 1, "{dump}");
    assert_eq!(exits[0]["pid"], pid, "{dump}");
    assert_eq!(exits[0]["signal"], "SIGKILL", "{dump}");
    assert_eq!(exits[0]["code"], Value::Null, "{dump}");
    assert_eq!(exits[0]["reason"], "shutdown", "{dump}");
    corral.assert_nothing_left();
}

#[test]
fn shutdown_stops_the_whole_process_group() {
    let args =
        with_command(&["-w", "1", "--kill-timeout", "300ms"], &test_worker(&["--children", "2"]));
    let mut corral = Corral::start(&args);
    let (_, pid) = corral.wait_spawned(1)[0];
    let children = corral.wait_for("the worker's 2 children", DEADLINE, |_| {
        let children = children_of(pid);
        (children.len() == 2).then_some(children)
    });

    corral.signal(libc::SIGINT);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
    for child in children {
        assert!(!pid_alive(child), "grandchild {child} survived");
    }
}

#[test]
fn escaped_descendants_are_killed_at_shutdown() {
    let args = with_command(&["-w", "1", "--kill-timeout", "300ms"], &test_worker(&["--escape"]));
    let mut corral = Corral::start(&args);
    let (_, pid) = corral.wait_spawned(1)[0];
    // The escapee carries the token, left the worker's session, and, corral being a child
    // subreaper, was re-parented to corral when its intermediate parent exited.
    let escapee = corral.wait_for("an escaped descendant re-parented to corral", DEADLINE, |_| {
        token_processes(corral.token()).into_iter().find(|&p| {
            p != pid
                && p != corral.pid()
                && stat(p).is_some_and(|s| s.session != pid && s.ppid == corral.pid())
        })
    });

    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
    assert!(!pid_alive(escapee), "escapee {escapee} outlived corral");
}

#[test]
fn workers_die_with_a_sigkilled_corral() {
    // The workers ignore SIGTERM: only a parent-death signal of SIGKILL ends them.
    let args = with_command(&["-w", "3"], &test_worker(&["--ignore-term"]));
    let mut corral = Corral::start(&args);
    let workers = corral.wait_spawned(3);
    for &(_, pid) in &workers {
        wait_ignores_term(&corral, pid);
    }

    corral.signal(libc::SIGKILL);
    corral.wait_exit(DEADLINE);
    for (worker, pid) in workers {
        let died = wait_until(DEADLINE, || !pid_alive(pid));
        assert!(died, "worker {worker} (pid {pid}) outlived a SIGKILLed corral");
    }
}

#[test]
fn sigint_shuts_down_cleanly() {
    let args = with_command(&["-w", "2", "--kill-timeout", "300ms"], &test_worker(&[]));
    let mut corral = Corral::start(&args);
    corral.wait_for("supervisor_started", DEADLINE, |events| {
        named(events, "supervisor_started").first().map(|&e| e.clone())
    });
    let workers = corral.wait_spawned(2);

    corral.signal(libc::SIGINT);
    let status = corral.wait_exit(DEADLINE);
    let events = corral.events();
    let dump = corral.dump();
    assert_eq!(status.code(), Some(0), "{dump}");
    assert_eq!(events.iter().filter(|e| kind(e) == "shutdown_started").count(), 1, "{dump}");
    let started_at = events.iter().position(|e| kind(e) == "shutdown_started").expect("started");
    assert_eq!(events[started_at]["signal"], "SIGINT", "{dump}");
    let last = events.last().expect("events");
    assert_eq!(last["event"], "shutdown_complete", "{dump}");
    assert_eq!(last["exit_code"], 0, "{dump}");
    for (worker, pid) in workers {
        let exits = of_worker(&events[started_at..], "exited", worker);
        assert_eq!(exits.len(), 1, "worker {worker}: one exit, after shutdown_started\n{dump}");
        assert_eq!(exits[0]["pid"], pid, "{dump}");
        assert_eq!(exits[0]["reason"], "shutdown", "{dump}");
    }
    assert!(named(&events[started_at..], "spawned").is_empty(), "spawn during shutdown\n{dump}");
    check_schema(&events, corral.pid());
    corral.assert_nothing_left();
}

/// The common fields of docs/output.md on a whole run's events.
fn check_schema(events: &[Value], corral_pid: u32) {
    let started = &named(events, "supervisor_started")[0];
    assert_eq!(started["pid"], corral_pid, "{started}");
    assert!(started["version"].is_string(), "{started}");
    let group = &started["groups"][0];
    // The default group name is the COMMAND's file name: the test worker is corral itself.
    assert_eq!(group["name"], "corral", "{started}");
    assert_eq!(group["workers"], 2, "{started}");
    assert!(group["command"].is_string(), "{started}");
    for event in events {
        let ts = event["ts"].as_str().unwrap_or_default();
        assert!(is_rfc3339_utc_millis(ts), "ts is not RFC 3339 UTC with milliseconds: {event}");
        if matches!(kind(event), "spawned" | "exited") {
            assert_eq!(event["group"], "corral", "{event}");
            assert!(event["worker"].as_u64().is_some_and(|w| w >= 1), "{event}");
            assert!(event["pid"].is_u64(), "{event}");
        }
    }
}

/// `2025-01-31T12:34:56.789Z` (or `+00:00`).
fn is_rfc3339_utc_millis(ts: &str) -> bool {
    let (stamp, zone) = match ts.strip_suffix('Z') {
        Some(stamp) => (stamp, "Z"),
        None => ts.split_at(ts.len().saturating_sub(6)),
    };
    let shape = "dddd-dd-ddTdd:dd:dd.ddd";
    (zone == "Z" || zone == "+00:00")
        && stamp.len() == shape.len()
        && stamp.chars().zip(shape.chars()).all(|(c, s)| match s {
            'd' => c.is_ascii_digit(),
            _ => c == s,
        })
}

#[test]
fn timestamps_are_checked_strictly() {
    for good in ["2025-01-31T12:34:56.789Z", "2025-01-31T12:34:56.789+00:00"] {
        assert!(is_rfc3339_utc_millis(good), "{good}");
    }
    for bad in
        ["2025-01-31T12:34:56Z", "2025-01-31 12:34:56.789Z", "2025-01-31T12:34:56.789+01:00", ""]
    {
        assert!(!is_rfc3339_utc_millis(bad), "{bad}");
    }
}

/// Ctrl-C while a thousand workers are still starting: the spawns not yet done are
/// cancelled (no `spawn_failed`, exit 0), the ones done are stopped, nothing is left.
#[test]
fn an_interrupt_during_a_big_start_cancels_the_spawns_not_yet_done() {
    let mut corral = Corral::start(&["-w", "1000", "--", "sleep", "1000"]);
    corral.wait_spawned(1);
    corral.signal(libc::SIGINT);
    let status = corral.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    assert!(crate::util::named(&events, "spawn_failed").is_empty(), "{}", corral.dump());
    corral.assert_nothing_left();
}
