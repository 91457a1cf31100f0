//! The event channel (docs/workers.md) and the supervision that rides on it
//! (docs/supervision.md): every message form arrives as sent, hostile bytes are counted
//! and cost bounded memory, hung, bloated and never-ready workers are restarted (and only
//! those), a worker's last message comes before its exit, and a graceful stop tells the
//! worker before it signals it.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{
    Corral, DEADLINE, exited_index, named, of_worker, pid_alive, signal_bit, signal_mask, spawned,
    status_kib, test_worker, test_worker_per_slot, with_command,
};

/// Short timings keep the suite fast; the policy itself is unit-tested in `core`.
const FAST: [&str; 4] = ["--backoff", "20ms..200ms", "--kill-timeout", "300ms"];

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// A `--send` step for a JSON value.
fn send(value: &Value) -> String {
    value.to_string()
}

/// `--send STEP` for each step.
fn send_flags(steps: &[String]) -> Vec<String> {
    steps.iter().flat_map(|s| ["--send".to_string(), s.clone()]).collect()
}

fn strs(strings: &[String]) -> Vec<&str> {
    strings.iter().map(String::as_str).collect()
}

/// The `data` of every `message` event of `worker`, in order.
fn messages(events: &[Value], worker: u64) -> Vec<Value> {
    of_worker(events, "message", worker).into_iter().map(|e| e["data"].clone()).collect()
}

/// Waits for a `message` event of `worker` whose data is `data`.
fn wait_message(corral: &Corral, worker: u64, data: &Value) {
    corral.wait_for(&format!("worker {worker} to send {data}"), DEADLINE, |events| {
        messages(events, worker).contains(data).then_some(())
    });
}

/// The `n`-th (0-based) `exited` event of `worker`, once there.
fn wait_exited(corral: &Corral, worker: u64, n: usize) -> Value {
    corral.wait_for(&format!("exit {} of worker {worker}", n + 1), DEADLINE, |events| {
        of_worker(events, "exited", worker).get(n).map(|&e| e.clone())
    })
}

/// The pid of the `n`-th (0-based) start of `worker`, once there.
fn wait_start(corral: &Corral, worker: u64, n: usize) -> u32 {
    corral.wait_for(&format!("start {} of worker {worker}", n + 1), DEADLINE, |events| {
        spawned(events).into_iter().filter(|&(w, _)| w == worker).nth(n).map(|(_, pid)| pid)
    })
}

/// The pid of `worker` among `(worker, pid)` pairs.
fn pid_in(started: &[(u64, u32)], worker: u64) -> u32 {
    started.iter().find(|&&(w, _)| w == worker).map(|&(_, pid)| pid).expect("worker started")
}

/// "Nothing happens" is checked after a fixed quiet period, never by racing a deadline:
/// waits until `until`, then asserts that `worker` (pid `pid`) never exited.
fn assert_untouched_until(corral: &Corral, until: Instant, worker: u64, pid: u32, why: &str) {
    thread::sleep(until.saturating_duration_since(Instant::now()));
    let events = corral.events();
    assert!(
        of_worker(&events, "exited", worker).is_empty() && pid_alive(pid),
        "{why}: worker {worker} (pid {pid}) was stopped\n{}",
        corral.dump()
    );
    assert_eq!(of_worker(&events, "spawned", worker).len(), 1, "{why}\n{}", corral.dump());
}

fn stop(mut corral: Corral) -> Vec<Value> {
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
    corral.events()
}

#[test]
fn every_message_form_arrives_as_sent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let go = dir.path().join("go");
    let first = json!({"type": "status", "text": "warming up"});
    // What `message` events must carry, in order (ready and heartbeat are not repeated).
    let reported = [
        json!({"type": "status", "text": "serving"}),
        json!({"type": "log", "level": "warn", "msg": "disk almost full"}),
        json!({"type": "metric", "name": "latency", "value": 12.5}),
        json!({"type": "cache", "entries": 1200, "nested": {"ok": true, "list": [1, 2.5, "x", null]}}),
        json!(42),
    ];
    let mut steps = vec![send(&first), format!("wait:{}", path_str(&go))];
    steps.extend(
        ["\"ready\"", "{\"type\":\"ready\"}", "{\"type\":\"heartbeat\"}"].map(String::from),
    );
    steps.extend(reported.iter().map(send));
    // Node's internal messages are not for corral: no event, not counted.
    steps.push("raw:{\"cmd\":\"NODE_HANDLE\"}".into());
    let sent_and_counted = 1 + 3 + reported.len();
    let flags = send_flags(&steps);
    let mut args = strs(&flags);
    args.extend(["--exit", "0"]);
    let mut corral = Corral::start(&with_command(
        &["-w", "1", "--wait-ready", "--restart", "never"],
        &test_worker(&args),
    ));

    wait_message(&corral, 1, &first);
    assert!(
        named(&corral.events(), "ready").is_empty(),
        "ready before the worker said so\n{}",
        corral.dump()
    );
    fs::write(&go, "").expect("create the go file");

    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    let dump = corral.dump();
    assert_eq!(of_worker(&events, "ready", 1).len(), 1, "two forms of ready, one event\n{dump}");
    let expected: Vec<Value> = std::iter::once(first).chain(reported).collect();
    assert_eq!(messages(&events, 1), expected, "message data, in order\n{dump}");
    assert!(named(&events, "protocol_error").is_empty(), "{dump}");
    let exits = of_worker(&events, "exited", 1);
    assert_eq!(exits.len(), 1, "{dump}");
    assert_eq!(exits[0]["messages"], sent_and_counted, "messages counted\n{dump}");
    let exited_at = events.iter().position(|e| e["event"] == "exited").expect("exited");
    assert!(of_worker(&events[exited_at..], "message", 1).is_empty(), "message after exit\n{dump}");
    corral.assert_nothing_left();
}

/// docs/workers.md and docs/output.md: `data` is the JSON value the worker sent, and `"v": 1` may accompany any
/// object. Node sends whole numbers as integers.
#[test]
fn message_data_is_exactly_what_was_sent() {
    let sent = [
        json!({"type": "status", "text": "warming", "v": 1}),
        json!({"type": "log", "level": "info", "msg": "cache warm", "request_id": 7}),
        json!({"type": "metric", "name": "requests", "value": 3}),
        json!({"type": "metric", "name": "load", "value": 0.5, "unit": "ratio"}),
    ];
    let steps: Vec<String> = sent.iter().map(send).collect();
    let flags = send_flags(&steps);
    let mut args = strs(&flags);
    args.extend(["--exit", "0"]);
    let mut corral =
        Corral::start(&with_command(&["-w", "1", "--restart", "never"], &test_worker(&args)));
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let got = messages(&corral.events(), 1);
    // Compared as text too: `3` and `3.0` are different JSON to every consumer.
    let text = |values: &[Value]| values.iter().map(Value::to_string).collect::<Vec<_>>();
    assert_eq!(text(&got), text(&sent), "data must be what the worker sent\n{}", corral.dump());
}

/// D1, D2, D6: broken JSON, invalid UTF-8, a 100 MiB line and a flood of garbage are
/// dropped and counted, reported rate-limited, cost corral no memory to speak of, and the
/// channel keeps working.
#[test]
fn garbage_on_the_channel_is_counted_and_costs_bounded_memory() {
    const HUGE: u64 = 100 << 20;
    const GARBAGE_LINES: u64 = 10_000;
    // `{"a":`, two invalid UTF-8 lines, the huge line, the garbage.
    const BAD_LINES: u64 = 4 + GARBAGE_LINES;
    let dir = tempfile::tempdir().expect("temp dir");
    let go = dir.path().join("go");
    let before = json!({"type": "status", "text": "before"});
    let still_here = json!({"type": "status", "text": "still here"});
    let after_long = json!({"type": "status", "text": "after a long line"});
    let hostile = [
        send(&before),
        format!("wait:{}", path_str(&go)),
        "raw:{\"a\":".into(),
        "hex:fffe".into(),
        "hex:eda080".into(), // a UTF-16 surrogate, which UTF-8 forbids
        format!("long:{HUGE}"),
        "raw:".into(), // the newline that ends the huge line
        format!("garbage:{GARBAGE_LINES}"),
        send(&still_here),
    ];
    // Worker 2's first bad line is an oversized one, so its first (immediate) report says so.
    let long_first = [format!("long:{}", 2 << 20), "raw:".into(), send(&after_long)];
    let (hostile, long_first) = (send_flags(&hostile), send_flags(&long_first));
    let command = test_worker_per_slot(&[&strs(&hostile), &strs(&long_first)]);
    let corral = Corral::start(&with_command(&[&["-w", "2"][..], &FAST].concat(), &command));
    wait_message(&corral, 1, &before);
    wait_message(&corral, 2, &after_long);
    let baseline = status_kib(corral.pid(), "VmHWM").expect("corral's VmHWM");

    fs::write(&go, "").expect("create the go file");
    wait_message(&corral, 1, &still_here);
    let peak = status_kib(corral.pid(), "VmHWM").expect("corral's VmHWM");
    assert!(
        peak.saturating_sub(baseline) < 50 << 10,
        "corral's peak RSS grew from {baseline} KiB to {peak} KiB\n{}",
        corral.dump()
    );

    let events = corral.events();
    let dump = corral.dump();
    assert_eq!(messages(&events, 1), [before, still_here.clone()], "only valid lines\n{dump}");
    let errors = of_worker(&events, "protocol_error", 1);
    assert!(!errors.is_empty(), "{dump}");
    assert_eq!((&errors[0]["error"], &errors[0]["count"]), (&"malformed".into(), &1.into()));
    let mut last = 0;
    for e in &errors {
        assert!(e["error"] == "malformed" || e["error"] == "oversized", "{e}");
        let count = e["count"].as_u64().unwrap_or_else(|| panic!("count: {e}"));
        assert!(count > last && count <= BAD_LINES, "counts grow, bounded by the bad lines: {e}");
        last = count;
    }
    assert!((errors.len() as u64) < BAD_LINES / 100, "not rate-limited: {} reports", errors.len());
    let errors = of_worker(&events, "protocol_error", 2);
    assert_eq!(
        errors.first().map(|e| (&e["error"], &e["count"])),
        Some((&"oversized".into(), &1.into())),
        "{dump}"
    );
    for worker in [1, 2] {
        assert_eq!(of_worker(&events, "spawned", worker).len(), 1, "restarted\n{dump}");
        assert!(of_worker(&events, "exited", worker).is_empty(), "{dump}");
    }

    let events = stop(corral);
    // Garbage is not a message: only the valid ones count.
    for (worker, valid) in [(1, 2), (2, 1)] {
        let exits = of_worker(&events, "exited", worker);
        assert_eq!(exits.len(), 1, "{events:?}");
        assert_eq!(exits[0]["messages"], valid, "worker {worker}: {}", exits[0]);
    }
}

/// docs/workers.md: output lines longer than 16 KiB are split, and nothing is lost.
#[test]
fn a_long_output_line_is_split_and_nothing_is_lost() {
    const PIECE: usize = 16 * 1024;
    const BYTES: usize = (4 << 20) + 100; // 256 whole pieces and a short one
    let mut corral = Corral::start(&with_command(
        &["-w", "1", "--restart", "never"],
        &test_worker(&["--long-line", &BYTES.to_string(), "--exit", "0"]),
    ));
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.stderr());
    let events = corral.events();
    let lines: Vec<&str> = of_worker(&events, "output", 1)
        .iter()
        .map(|e| e["line"].as_str().unwrap_or_else(|| panic!("line: {e}")))
        .collect();
    let total: usize = lines.iter().map(|l| l.len()).sum();
    assert_eq!(total, BYTES, "bytes arrived in {} lines; stderr: {}", lines.len(), corral.stderr());
    assert_eq!(lines.len(), BYTES.div_ceil(PIECE), "{}", corral.stderr());
    assert!(lines[..lines.len() - 1].iter().all(|l| l.len() == PIECE), "split at 16 KiB");
    assert!(lines.iter().all(|l| l.bytes().all(|b| b == b'x')), "only what was written");
}

/// D2 on stdout: a 100 MiB line without a newline costs corral no memory to speak of.
#[test]
fn a_huge_output_line_costs_bounded_memory() {
    const HUGE: &str = "104857600";
    let dir = tempfile::tempdir().expect("temp dir");
    let go = dir.path().join("go");
    let waiting = json!({"type": "status", "text": "waiting"});
    let wait = format!("wait:{}", path_str(&go));
    // Worker 1 writes the line once and exits 0, so its `exited` says corral has read it
    // all; worker 2 keeps corral running for the measurement after that.
    let writer = ["--send", &send(&waiting), "--send", &wait, "--long-line", HUGE, "--exit", "0"];
    let command = test_worker_per_slot(&[&writer, &[]]);
    let corral = Corral::start(&with_command(&["-w", "2", "--restart", "on-failure"], &command));
    wait_message(&corral, 1, &waiting);
    let baseline = status_kib(corral.pid(), "VmHWM").expect("corral's VmHWM");

    fs::write(&go, "").expect("create the go file");
    let exited = wait_exited(&corral, 1, 0);
    assert_eq!(exited["code"], 0, "{exited}");
    let peak = status_kib(corral.pid(), "VmHWM").expect("corral's VmHWM");
    assert!(
        peak.saturating_sub(baseline) < 50 << 10,
        "corral's peak RSS grew from {baseline} KiB to {peak} KiB; stderr: {}",
        corral.stderr()
    );
    stop(corral);
}

/// A7: a worker that sent heartbeats and then hangs is aborted and restarted; one that
/// never sent a heartbeat is left alone.
#[test]
fn a_hung_worker_is_killed_and_restarted() {
    const TIMEOUT: Duration = Duration::from_secs(1);
    let hangs = ["--heartbeats", "10", "--heartbeat-every", "100ms", "--signal", "STOP"];
    let command = test_worker_per_slot(&[&hangs, &[]]);
    let options =
        ["-w", "2", "--heartbeat-timeout", "1s", "--backoff", "20ms", "--kill-timeout", "500ms"];
    let corral = Corral::start(&with_command(&options, &command));
    let first = corral.wait_spawned(2);
    // Three timeouts: a silent worker would have been killed thrice over.
    let quiet_until = Instant::now() + 3 * TIMEOUT;

    let exited = wait_exited(&corral, 1, 0);
    assert_eq!(exited["pid"], pid_in(&first, 1), "{exited}");
    assert_eq!(exited["reason"], "heartbeat_timeout", "{exited}");
    // SIGABRT (and SIGCONT) first; SIGKILL if that did not end it within the kill timeout.
    assert!(exited["signal"] == "SIGABRT" || exited["signal"] == "SIGKILL", "{exited}");
    assert_ne!(wait_start(&corral, 1, 1), pid_in(&first, 1));

    assert_untouched_until(&corral, quiet_until, 2, pid_in(&first, 2), "no heartbeat, no timeout");
    stop(corral);
}

/// docs/supervision.md#health-beyond-exits: a worker whose RSS stays over `--max-memory` is restarted gracefully; one under
/// it, sampled in the same rounds, is not.
#[test]
fn a_worker_over_the_memory_limit_is_restarted() {
    const SAMPLE_EVERY: Duration = Duration::from_secs(1);
    let command = test_worker_per_slot(&[&["--alloc-mib", "200"], &["--alloc-mib", "8"]]);
    let corral = Corral::start(&with_command(
        &[&["-w", "2", "--max-memory", "64MiB"][..], &FAST].concat(),
        &command,
    ));
    let first = corral.wait_spawned(2);
    // Two samples over the limit trigger a restart; three rounds leave room for one more.
    let quiet_until = Instant::now() + 3 * SAMPLE_EVERY;

    let exited = wait_exited(&corral, 1, 0);
    assert_eq!(exited["pid"], pid_in(&first, 1), "{exited}");
    assert_eq!(exited["reason"], "memory_limit", "{exited}");
    assert_eq!(exited["max_memory_bytes"], 64 << 20, "the limit: {exited}");
    assert!(exited["rss_bytes"].as_u64() > Some(64 << 20), "the RSS over it: {exited}");
    assert_eq!(exited["signal"], "SIGTERM", "a graceful stop: {exited}");
    assert_ne!(wait_start(&corral, 1, 1), pid_in(&first, 1));

    assert_untouched_until(&corral, quiet_until, 2, pid_in(&first, 2), "under the memory limit");
    stop(corral);
}

/// docs/supervision.md#health-beyond-exits: with `--wait-ready`, a worker not ready by `--ready-timeout` is killed and
/// restarted; one that said ready in time is not.
#[test]
fn a_worker_not_ready_in_time_is_killed_and_restarted() {
    // 5 s: the ready worker must start and speak within it, and on a loaded 2-core box a
    // new process can wait seconds for a core.
    let command = test_worker_per_slot(&[&["--send", "\"ready\""], &[]]);
    let corral = Corral::start(&with_command(
        &[&["-w", "2", "--wait-ready", "--ready-timeout", "5s"][..], &FAST].concat(),
        &command,
    ));
    let first = corral.wait_spawned(2);
    corral.wait_for("worker 1 ready", DEADLINE, |events| {
        (!of_worker(events, "ready", 1).is_empty()).then_some(())
    });

    let exited = wait_exited(&corral, 2, 0);
    assert_eq!(exited["pid"], pid_in(&first, 2), "{exited}");
    assert_eq!(exited["reason"], "ready_timeout", "{exited}");
    assert_eq!(exited["signal"], "SIGKILL", "{exited}");
    assert_ne!(wait_start(&corral, 2, 1), pid_in(&first, 2));
    // Worker 1 was spawned first, so its ready timer was due no later than worker 2's,
    // which has fired: no further wait is needed to know it was not acted on.
    assert_untouched_until(&corral, Instant::now(), 1, pid_in(&first, 1), "ready in time");
    assert!(of_worker(&corral.events(), "ready", 2).is_empty(), "{}", corral.dump());
    stop(corral);
}

/// C5: every output line and the last message come before the `exited` event.
#[test]
fn last_words_and_the_last_message_come_before_the_exit() {
    const LINES: usize = 10_000;
    let bye = json!({"type": "status", "text": "bye"});
    let mut corral = Corral::start(&with_command(
        &["-w", "1", "--restart", "never"],
        &test_worker(&["--lines", &LINES.to_string(), "--send", &send(&bye), "--exit", "3"]),
    ));
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(1), "{}", corral.dump());
    let events = corral.events();
    let dump = || corral.dump();
    let exited_at = exited_index(&events, 1).unwrap_or_else(|| panic!("no exit\n{}", dump()));
    let exited = &events[exited_at];
    assert_eq!((&exited["code"], &exited["messages"]), (&3.into(), &1.into()), "{exited}");
    let lines: Vec<&str> =
        of_worker(&events, "output", 1).iter().filter_map(|e| e["line"].as_str()).collect();
    assert_eq!(lines.len(), LINES, "every line arrives");
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("line {}", n + 1), "lines in order");
    }
    assert_eq!(messages(&events, 1), [bye], "{}", dump());
    let after = &events[exited_at + 1..];
    let late = of_worker(after, "output", 1).len() + of_worker(after, "message", 1).len();
    assert_eq!(late, 0, "output or messages after `exited`\n{}", dump());
}

/// docs/workers.md: a graceful stop writes `{"type":"shutdown"}` to the worker before the signal.
#[test]
fn a_graceful_stop_sends_the_shutdown_notice_before_the_signal() {
    let mut corral = Corral::start(&with_command(
        &["-w", "1"],
        &test_worker(&["--read-channel", "--term-exit", "0"]),
    ));
    let (_, pid) = corral.wait_spawned(1)[0];
    // Before its handler is in place, SIGTERM would just kill it and prove nothing.
    corral.wait_for(&format!("pid {pid} to catch SIGTERM"), DEADLINE, |_| {
        let caught = signal_mask(pid, "SigCgt").is_some_and(|m| m & signal_bit(libc::SIGTERM) != 0);
        caught.then_some(())
    });

    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    let lines: Vec<&str> =
        of_worker(&events, "output", 1).iter().filter_map(|e| e["line"].as_str()).collect();
    // The handler prints what the channel held when SIGTERM arrived, byte for byte.
    assert_eq!(lines, ["channel: {\"type\":\"shutdown\"}", "got SIGTERM"], "{}", corral.dump());
    let exits = of_worker(&events, "exited", 1);
    assert_eq!(exits.len(), 1, "{}", corral.dump());
    let exit = exits[0];
    assert_eq!((&exit["code"], &exit["reason"]), (&0.into(), &"shutdown".into()), "{exit}");
    corral.assert_nothing_left();
}
