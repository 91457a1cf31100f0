//! Supervision (docs/supervision.md): crashes stay isolated, exits are recorded exactly, restarts back
//! off, crash loops give up, and a worker's last words come before its exit.

use serde_json::Value;

use crate::util::{
    Corral, DEADLINE, exited_index, named, of_worker, pid_alive, send_signal, spawned, test_worker,
    wait_marker, with_command,
};

/// Short timings keep the suite fast; the policy itself is unit-tested in `core`.
const FAST: [&str; 4] = ["--backoff", "20ms..200ms", "--kill-timeout", "300ms"];

fn path_str(path: &std::path::Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

#[test]
fn a_crash_is_isolated_and_restarted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("marker");
    let worker = test_worker(&["--marker", path_str(&marker)]);
    let mut corral = Corral::start(&with_command(&[&["-w", "3"][..], &FAST].concat(), &worker));
    let first = corral.wait_spawned(3);
    for &(_, pid) in &first {
        wait_marker(&corral, &marker, pid);
    }
    let (victim, victim_pid) = first[1];

    assert!(send_signal(victim_pid, libc::SIGSEGV), "worker {victim_pid} is gone");

    let exited = corral.wait_for("the victim's exit", DEADLINE, |events| {
        of_worker(events, "exited", victim).first().map(|&e| e.clone())
    });
    assert_eq!(exited["pid"], victim_pid, "{exited}");
    assert_eq!(exited["signal"], "SIGSEGV", "{exited}");
    assert_eq!(exited["code"], Value::Null, "{exited}");
    assert_eq!(exited["reason"], "crashed", "{exited}");
    let new_pid = corral.wait_for("the victim's respawn", DEADLINE, |events| {
        spawned(events).into_iter().filter(|&(w, _)| w == victim).nth(1).map(|(_, pid)| pid)
    });
    assert_ne!(new_pid, victim_pid);
    let events = corral.events();
    let scheduled = of_worker(&events, "restart_scheduled", victim);
    assert_eq!(scheduled.first().map(|e| &e["restarts"]), Some(&Value::from(1)), "{scheduled:?}");

    for &(worker, pid) in first.iter().filter(|&&(w, _)| w != victim) {
        assert!(pid_alive(pid), "worker {worker} (pid {pid}) died with its neighbour");
        assert_eq!(of_worker(&events, "spawned", worker).len(), 1, "worker {worker} restarted");
        assert!(of_worker(&events, "exited", worker).is_empty(), "worker {worker} exited");
    }
    assert!(corral.try_exit().is_none(), "corral went down with a worker\n{}", corral.dump());

    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

/// How a worker ends, and what corral must report.
struct Ending {
    flags: &'static [&'static str],
    code: Option<i64>,
    signal: Option<&'static str>,
}

#[test]
fn exits_are_recorded_exactly() {
    let endings = [
        Ending { flags: &["--exit", "0"], code: Some(0), signal: None },
        Ending { flags: &["--exit", "1"], code: Some(1), signal: None },
        Ending { flags: &["--exit", "7"], code: Some(7), signal: None },
        Ending { flags: &["--exit", "255"], code: Some(255), signal: None },
        Ending { flags: &["--signal", "TERM"], code: None, signal: Some("SIGTERM") },
        Ending { flags: &["--signal", "KILL"], code: None, signal: Some("SIGKILL") },
        Ending { flags: &["--signal", "ABRT"], code: None, signal: Some("SIGABRT") },
        Ending { flags: &["--signal", "SEGV"], code: None, signal: Some("SIGSEGV") },
    ];
    // All at once: each run is independent and mostly waits on process start-up.
    let mut runs: Vec<(&Ending, Corral)> = endings
        .iter()
        .map(|ending| {
            let args = with_command(&["-w", "1", "--restart", "never"], &test_worker(ending.flags));
            (ending, Corral::start(&args))
        })
        .collect();
    for (ending, corral) in &mut runs {
        let what = ending.flags.join(" ");
        let status = corral.wait_exit(DEADLINE);
        let events = corral.events();
        let exits = of_worker(&events, "exited", 1);
        assert_eq!(exits.len(), 1, "{what}: one run, one exit\n{}", corral.dump());
        let exited = exits[0];
        assert_eq!(
            exited["code"],
            ending.code.map_or(Value::Null, Value::from),
            "{what}: {exited}"
        );
        assert_eq!(
            exited["signal"],
            ending.signal.map_or(Value::Null, Value::from),
            "{what}: {exited}"
        );
        let reason = if ending.code == Some(0) { "exited" } else { "crashed" };
        assert_eq!(exited["reason"], reason, "{what}: {exited}");
        // docs/supervision.md#shutdown: by itself, 0 if every last exit succeeded, else 1.
        let expected = i32::from(ending.code != Some(0));
        assert_eq!(status.code(), Some(expected), "{what}: corral's exit\n{}", corral.dump());
        assert_eq!(named(&events, "spawned").len(), 1, "{what}: restarted under --restart never");
    }
}

#[test]
fn restarts_back_off_exponentially_up_to_the_cap() {
    let args = with_command(
        &["-w", "1", "--backoff", "50ms..400ms", "--min-uptime", "10s"],
        &test_worker(&["--exit", "1"]),
    );
    let mut corral = Corral::start(&args);
    let scheduled = corral.wait_for("5 restart_scheduled", DEADLINE, |events| {
        let scheduled = of_worker(events, "restart_scheduled", 1);
        (scheduled.len() >= 5)
            .then(|| scheduled[..5].iter().map(|&e| e.clone()).collect::<Vec<_>>())
    });
    for (n, (event, base)) in scheduled.iter().zip([50, 100, 200, 400, 400]).enumerate() {
        let delay = event["delay_ms"].as_u64().unwrap_or_else(|| panic!("delay_ms: {event}"));
        // Up to 10% jitter on top (docs/options.md#options), +1 for rounding to whole milliseconds.
        assert!(
            (base..=base + base / 10 + 1).contains(&delay),
            "restart {}: delay {delay} ms, expected {base} ms + up to 10%: {event}",
            n + 1
        );
        assert_eq!(event["restarts"], n + 1, "{event}");
    }
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn a_crash_loop_gives_up_after_max_restarts() {
    let args = with_command(
        &["-w", "1", "--max-restarts", "3", "--backoff", "10ms"],
        &test_worker(&["--exit", "1"]),
    );
    let mut corral = Corral::start(&args);
    // Nothing is left running or will be restarted, so corral exits by itself, with 1.
    let status = corral.wait_exit(DEADLINE);
    let dump = corral.dump();
    assert_eq!(status.code(), Some(1), "{dump}");
    let events = corral.events();
    assert_eq!(of_worker(&events, "spawned", 1).len(), 4, "a start and 3 restarts\n{dump}");
    assert_eq!(of_worker(&events, "restart_scheduled", 1).len(), 3, "{dump}");
    let gave_up = of_worker(&events, "gave_up", 1);
    assert_eq!(gave_up.len(), 1, "{dump}");
    assert_eq!(gave_up[0]["restarts"], 3, "{dump}");
    let gave_up_at = events.iter().position(|e| e["event"] == "gave_up").expect("gave_up");
    assert!(named(&events[gave_up_at..], "spawned").is_empty(), "spawned after gave_up\n{dump}");
    let last = events.last().expect("events");
    assert_eq!(last["event"], "shutdown_complete", "{dump}");
    assert_eq!(last["exit_code"], 1, "{dump}");
}

#[test]
fn last_words_come_before_the_exit() {
    const LINES: usize = 10_000;
    const ERR_LINES: usize = 100;
    let args = with_command(
        &["-w", "1", "--restart", "never"],
        &test_worker(&[
            "--lines",
            &LINES.to_string(),
            "--stderr-lines",
            &ERR_LINES.to_string(),
            "--exit",
            "3",
        ]),
    );
    let mut corral = Corral::start(&args);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(1), "{}", corral.dump());
    let events = corral.events();
    let dump = || corral.dump();
    let exited_at = exited_index(&events, 1).unwrap_or_else(|| panic!("no exit\n{}", dump()));
    assert_eq!(events[exited_at]["code"], 3, "{}", dump());
    for (stream, count) in [("stdout", LINES), ("stderr", ERR_LINES)] {
        let lines: Vec<(usize, &str)> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e["event"] == "output" && e["worker"] == 1 && e["stream"] == stream)
            .map(|(i, e)| (i, e["line"].as_str().unwrap_or_else(|| panic!("line: {e}"))))
            .collect();
        assert_eq!(lines.len(), count, "{stream}: every line arrives");
        for (n, &(_, line)) in lines.iter().enumerate() {
            assert_eq!(line, format!("line {}", n + 1), "{stream}: lines in order");
        }
        let (last_at, _) = lines[count - 1];
        assert!(last_at < exited_at, "{stream}: `exited` came before the last output line");
    }
}

/// A program that passes corral's start-up check (the file exists and is executable) but
/// that `execve` refuses every time, as a binary deleted after start would be: it is in no
/// format the kernel runs (ENOEXEC). (A missing `#!` interpreter is refused at start.)
fn unspawnable(dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("prog");
    std::fs::write(&path, "not a program, and no #! line\n").expect("write the file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path_str(&path).to_string()
}

#[test]
fn a_run_where_every_spawn_failed_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let prog = unspawnable(dir.path());
    let cases: [(&[&str], &str); 2] = [
        (&["-w", "2", "--restart", "never"], "spawn_failed"),
        // Retried, then given up: gave-up is a failure too.
        (&["-w", "1", "--restart", "on-failure", "--max-restarts", "1"], "gave_up"),
    ];
    for (options, last_worker_event) in cases {
        let what = options.join(" ");
        let mut corral = Corral::start(&with_command(options, std::slice::from_ref(&prog)));
        let status = corral.wait_exit(DEADLINE);
        let events = corral.events();
        assert!(named(&events, "spawned").is_empty(), "{what}\n{}", corral.dump());
        assert!(!named(&events, "spawn_failed").is_empty(), "{what}\n{}", corral.dump());
        assert!(!named(&events, last_worker_event).is_empty(), "{what}\n{}", corral.dump());
        let last = events.last().expect("events");
        assert_eq!(last["event"], "shutdown_complete", "{what}\n{}", corral.dump());
        assert_eq!(last["exit_code"], 1, "{what}\n{}", corral.dump());
        assert_eq!(status.code(), Some(1), "{what}: corral's exit\n{}", corral.dump());
    }
}
