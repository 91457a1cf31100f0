//! Rolling reload (docs/supervision.md#rolling-reload) on real processes: without `--wait-ready` a replacement must
//! stay up for `--reload-settle` before the old worker goes, one that dies meanwhile fails
//! the reload and the old workers keep serving, and SIGHUPs during a reload queue exactly
//! one more.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::util::{
    Corral, DEADLINE, named, of_worker, pid_alive, pid_of, spawned, test_worker, with_command,
};

/// The test worker with `args`, as shell words.
fn quoted_worker(args: &[&str]) -> String {
    let quote = |word: &String| format!("'{}'", word.replace('\'', "'\\''"));
    test_worker(args).iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// `sh -c SCRIPT` where `$W` in SCRIPT is the test worker with `worker_args` (exec'd, so it
/// keeps the pid corral reports).
fn sh(script: &str, worker_args: &[&str]) -> Vec<String> {
    let script = script.replace("$W", &quoted_worker(worker_args));
    vec!["sh".to_string(), "-c".to_string(), script]
}

fn ts(event: &Value) -> SystemTime {
    let text = event["ts"].as_str().unwrap_or_else(|| panic!("no ts: {event}"));
    humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("ts {text}: {e}"))
}

fn reload_exit_of(events: &[Value], pid: u32) -> Option<(usize, &Value)> {
    events
        .iter()
        .enumerate()
        .find(|(_, e)| e["event"] == "exited" && pid_of(e) == Some(pid) && e["reason"] == "reload")
}

fn stop(mut corral: Corral) {
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn a_reload_stops_each_old_worker_only_after_its_replacement_settled() {
    const SETTLE_MS: u64 = 600;
    let settle = format!("{SETTLE_MS}ms");
    let args = ["-n", "web", "-w", "2", "--reload-settle", &settle, "--kill-timeout", "2s"];
    let corral = Corral::start(&with_command(&args, &test_worker(&[])));
    let old = corral.wait_spawned(2);
    let finished = reload(&corral);
    assert_eq!(
        (finished["replaced"].as_u64(), finished["failed"].as_bool()),
        (Some(2), Some(false))
    );
    let events = corral.events();
    for &(worker, old_pid) in &old {
        let spawns = of_worker(&events, "spawned", worker);
        let new =
            spawns.get(1).unwrap_or_else(|| panic!("worker {worker} replaced\n{}", corral.dump()));
        let new_at = events.iter().position(|e| e == *new).expect("spawned is in the events");
        let (exit_at, exited) = reload_exit_of(&events, old_pid).unwrap_or_else(|| {
            panic!("old pid {old_pid} stopped for the reload\n{}", corral.dump())
        });
        assert!(new_at < exit_at, "worker {worker}: the old one went before its replacement");
        // A lower bound, so it cannot flake: the stop is sent when the settle timer fires.
        let gap = ts(exited).duration_since(ts(new)).unwrap_or(Duration::ZERO);
        assert!(
            gap >= Duration::from_millis(SETTLE_MS - 100),
            "worker {worker}: old stopped {gap:?} after its replacement spawned\n{}",
            corral.dump()
        );
    }
    // One at a time: worker 2 is replaced only once worker 1's old run is gone.
    let second = events.iter().position(|e| e == of_worker(&events, "spawned", 2)[1]);
    let first_exit = reload_exit_of(&events, old[0].1).map(|(i, _)| i);
    assert!(second > first_exit, "{}", corral.dump());
    stop(corral);
}

#[test]
fn a_replacement_that_crashes_while_settling_fails_the_reload_and_keeps_the_old_workers() {
    // Generation 0 serves; every later generation (the replacements) exits 1 at once.
    let command = sh(r#"[ "$CORRAL_GENERATION" = 0 ] && exec $W; exit 1"#, &[]);
    // A long settle costs nothing here: the crash ends the wait, not the timer.
    let args = ["-n", "web", "-w", "2", "--reload-settle", "10s", "--kill-timeout", "2s"];
    let corral = Corral::start(&with_command(&args, &command));
    let old = corral.wait_spawned(2);
    let finished = reload(&corral);
    assert_eq!(
        (finished["replaced"].as_u64(), finished["failed"].as_bool()),
        (Some(0), Some(true)),
        "{}",
        corral.dump()
    );
    let events = corral.events();
    let spawns = spawned(&events);
    assert_eq!(spawns.len(), 3, "one replacement, for worker 1 only\n{}", corral.dump());
    let replacement = spawns[2];
    assert_eq!(replacement.0, 1);
    let exits = named(&events, "exited");
    assert_eq!(exits.len(), 1, "only the replacement exited\n{}", corral.dump());
    assert_eq!(pid_of(exits[0]), Some(replacement.1));
    assert_eq!(exits[0]["code"], 1);
    for &(worker, pid) in &old {
        assert!(pid_alive(pid), "old worker {worker} (pid {pid}) was stopped\n{}", corral.dump());
    }
    stop(corral);
}

#[test]
fn sighups_during_a_reload_queue_exactly_one_more_reload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gate = dir.path().join("gate");
    let gate_step = format!("wait:{}", gate.to_str().expect("temp paths are UTF-8"));
    // The first replacement (generation 1) is slow to start: it is not ready until the
    // test opens the gate, so the reload is surely still running while the SIGHUPs land.
    let slow = quoted_worker(&["--send", &gate_step, "--send", "\"ready\""]);
    let script = format!(r#"[ "$CORRAL_GENERATION" = 1 ] && exec {slow}; exec $W"#);
    let command = sh(&script, &["--send", "\"ready\""]);
    let args = ["-v", "-n", "web", "-w", "1", "--wait-ready", "--kill-timeout", "2s"];
    let mut corral = Corral::start(&with_command(&args, &command));
    corral.wait_for("worker 1 ready", DEADLINE, |events| {
        (!of_worker(events, "ready", 1).is_empty()).then_some(())
    });
    corral.signal(libc::SIGHUP);
    corral.wait_spawned(2);
    let queued = |corral: &Corral| {
        corral.stderr().matches("reload requested during a reload of web: queued").count()
    };
    for n in 1..=3 {
        corral.signal(libc::SIGHUP);
        // Each one handled before the next, so none is merged by signal delivery itself.
        corral.wait_for(&format!("{n} queued reload requests logged"), DEADLINE, |_| {
            (queued(&corral) >= n).then_some(())
        });
    }
    std::fs::write(&gate, b"").expect("open the gate");
    corral.wait_for("two reload_finished", DEADLINE, |events| {
        (named(events, "reload_finished").len() >= 2).then_some(())
    });
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    let started = named(&events, "reload_started");
    assert_eq!(started.len(), 2, "{}", corral.dump());
    for s in &started {
        assert_eq!(s["cause"], "signal", "{s}");
    }
    let finished = named(&events, "reload_finished");
    assert_eq!(finished.len(), 2, "{}", corral.dump());
    for f in &finished {
        assert_eq!((f["replaced"].as_u64(), f["failed"].as_bool()), (Some(1), Some(false)), "{f}");
    }
    assert_eq!(spawned(&events).len(), 3, "generations 0, 1 and 2\n{}", corral.dump());
    assert_eq!(queued(&corral), 3);
    corral.assert_nothing_left();
}

#[test]
fn a_shutdown_while_a_replacement_settles_ends_promptly_with_nothing_left() {
    // Far longer than the test may take: only the shutdown can end this reload.
    let args = ["-n", "web", "-w", "2", "--reload-settle", "1h", "--kill-timeout", "2s"];
    let mut corral = Corral::start(&with_command(&args, &test_worker(&[])));
    let old = corral.wait_spawned(2);
    corral.signal(libc::SIGHUP);
    let replacement = corral.wait_spawned(3)[2];
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    let finished = named(&events, "reload_finished");
    assert_eq!(finished.len(), 1, "{}", corral.dump());
    assert_eq!(finished[0]["failed"], true, "{}", corral.dump());
    let exits = named(&events, "exited");
    for pid in old.iter().map(|&(_, pid)| pid).chain([replacement.1]) {
        let exit = exits.iter().find(|e| pid_of(e) == Some(pid));
        let exit = exit.unwrap_or_else(|| panic!("pid {pid} exited\n{}", corral.dump()));
        assert_eq!(exit["reason"], "shutdown", "{exit}");
    }
    assert_eq!(spawned(&events).len(), 3, "nothing started after the shutdown began");
    corral.assert_nothing_left();
}

/// SIGHUP, then the `reload_finished` event.
fn reload(corral: &Corral) -> serde_json::Value {
    corral.signal(libc::SIGHUP);
    corral.wait_for("reload_finished", DEADLINE, |events| {
        named(events, "reload_finished").first().map(|e| (*e).clone())
    })
}
