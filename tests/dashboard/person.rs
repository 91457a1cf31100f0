//! The dashboard as a person uses it (issue 9): every key acts once on the first press,
//! after a resize too; the footer fits 80×24; a key that cannot act says why; a row shows
//! only its current run's status; the events view tells the supervisor's side; the
//! metrics and details views show what workers report and how they ended.

use std::time::{Duration, Instant};

use super::{
    assert_stopped_gracefully, cell, cpu_ticks, pid_cell, start_graceful, wait_running, web,
};
use crate::util::pty::{Term, Tty};
use crate::util::{DEADLINE, test_worker, with_command};

/// Opens and closes the help, as a person looks around first (and so the dashboard has
/// read keys before the resize, as in the bug report).
fn look_at_the_help(tty: &mut Tty) {
    tty.send(b"?");
    tty.wait_screen("the help overlay", DEADLINE, |s| s.contains(" keys "));
    tty.send(b"?");
    tty.wait_screen("the help closed", DEADLINE, |s| !s.contains(" keys "));
}

/// Resizes the terminal and waits until the dashboard has drawn itself at the new size (its
/// footer on the new last row), so that the next key arrives after the resize was seen.
fn resize_and_wait(tty: &Tty, rows: u16, cols: u16) {
    tty.resize(rows, cols);
    tty.wait_screen(&format!("the dashboard redrawn at {cols}×{rows}"), DEADLINE, |s| {
        let lines: Vec<&str> = s.lines().collect();
        lines.len() == usize::from(rows) && lines.last().is_some_and(|l| l.contains("q quit"))
    });
}

/// Regression test: the first key after a resize was left unread (crossterm's reader lost
/// the tty's readiness when the resize came in the same wakeup) while the UI thread spun;
/// the next key then applied both.
#[test]
fn one_question_mark_after_a_resize_acts_once_and_nothing_spins() {
    let mut tty = Tty::start(&web(1, &test_worker(&[])));
    wait_running(&tty, &["web.1"]);
    tty.send(b"?");
    tty.wait_screen("the help overlay", DEADLINE, |s| s.contains(" keys "));
    resize_and_wait(&tty, 24, 80);
    tty.send(b"?");
    tty.wait_screen("the help closed after one ?", DEADLINE, |s| !s.contains(" keys "));
    tty.send(b"?");
    tty.wait_screen("the help open after one more ?", DEADLINE, |s| s.contains(" keys "));
    // Idle now: a spinning thread would take a whole core, an idle dashboard next to none.
    let before = cpu_ticks(tty.pid()).expect("corral's /proc/<pid>/stat");
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(tty.pid()).unwrap_or(before).saturating_sub(before);
    let clk_tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK);
    let per_second = clk_tck.ok().flatten().unwrap_or(0).max(1) as f64;
    let cpu = used as f64 / per_second;
    let wall = start.elapsed().as_secs_f64();
    assert!(cpu < wall / 2.0, "corral used {cpu:.2} s of CPU in {wall:.2} s of idling");
}

#[test]
fn one_x_after_a_resize_kills_the_worker_once() {
    let mut tty = Tty::start(&web(2, &test_worker(&[])));
    let old = wait_running(&tty, &["web.1", "web.2"]);
    look_at_the_help(&mut tty);
    resize_and_wait(&tty, 24, 80);
    tty.send(b"x");
    tty.wait_screen("web.1 killed once and running again", DEADLINE, |s| {
        cell(s, "web.1", "RESTARTS").as_deref() == Some("1")
            && cell(s, "web.1", "STATE").as_deref() == Some("● running")
            && pid_cell(s, "web.1").is_some_and(|p| p != old[0])
    });
    // A key read later must not carry a second, left-over `x` with it.
    tty.send(b"?");
    tty.wait_screen("the help overlay", DEADLINE, |s| s.contains(" keys "));
    tty.send(b"?");
    let screen = tty.wait_screen("the help closed", DEADLINE, |s| !s.contains(" keys "));
    assert_eq!(cell(&screen, "web.1", "RESTARTS").as_deref(), Some("1"), "{screen}");
}

#[test]
fn one_q_after_a_resize_stops_gracefully() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("notes");
    let mut tty = start_graceful(&file);
    look_at_the_help(&mut tty);
    resize_and_wait(&tty, 24, 80);
    tty.send(b"q");
    let status = tty.wait_exit(DEADLINE);
    assert!(status.success(), "{status:?}\n{}", tty.dump());
    tty.assert_nothing_left();
    assert_stopped_gracefully(&tty, &file);
}

/// At 80×24 every key the footer names is there, whole (regression: it was cut after
/// `e event`, without `/ filter`, `? help` or `q quit`).
#[test]
fn at_80x24_the_footer_shows_every_key_it_names() {
    let term = Term { rows: 24, cols: 80, ..Term::default() };
    let tty = Tty::start_on(term, &web(2, &test_worker(&[])));
    wait_running(&tty, &["web.1", "web.2"]);
    let screen = tty.screen();
    let footer: Vec<&str> = screen.lines().rev().take(2).collect();
    for key in ["x kill", "r restart", "s stop/start", "+- scale", "R reload"] {
        assert!(footer[1].contains(key), "{key:?} missing: {footer:?}");
    }
    for key in
        ["Tab focus", "a all", "e events", "m metrics", "⏎ details", "/ filter", "? help", "q quit"]
    {
        assert!(footer[0].contains(key), "{key:?} missing: {footer:?}");
    }
    assert!(screen.contains("▶ web.1"), "the selection marker is gone:\n{screen}");
}

/// A status belongs to a run (regression: a stopped row kept saying what its last run
/// said, e.g. "shutting down", and a backoff row "crashing in 1s").
#[test]
fn a_stopped_row_keeps_no_status_from_its_last_run() {
    let worker = test_worker(&["--send", r#"{"type":"status","text":"busy now"}"#]);
    let mut tty = Tty::start(&web(1, &worker));
    wait_running(&tty, &["web.1"]);
    tty.wait_screen("web.1's status", DEADLINE, |s| {
        cell(s, "web.1", "STATUS").as_deref() == Some("busy now")
    });
    tty.send(b"s");
    tty.wait_screen("web.1 stopped with no status and no rate", DEADLINE, |s| {
        cell(s, "web.1", "STATE").as_deref() == Some("■ stopped")
            && cell(s, "web.1", "STATUS").as_deref() == Some("")
            && cell(s, "web.1", "EV/S").as_deref() == Some("-")
    });
}

/// Regression: `-` on the last worker and `x` on a stopped one did nothing and said
/// nothing; now the footer says why.
#[test]
fn keys_that_cannot_act_say_why_in_the_footer() {
    let mut tty = Tty::start(&web(1, &test_worker(&[])));
    wait_running(&tty, &["web.1"]);
    tty.send(b"-");
    tty.wait_screen("why - did nothing", DEADLINE, |s| s.contains("web has one worker"));
    tty.send(b"s");
    tty.wait_screen("web.1 stopped", DEADLINE, |s| {
        cell(s, "web.1", "STATE").as_deref() == Some("■ stopped")
    });
    tty.send(b"x");
    tty.wait_screen("why x did nothing", DEADLINE, |s| {
        s.contains("web.1 is stopped: no process to kill")
    });
}

/// The events view tells a worker's history as the supervisor saw it: spawns, exits with
/// their status and reason, scheduled restarts (regression: it showed only what the worker
/// sent, so a crash left no trace there).
#[test]
fn the_events_view_shows_the_supervisors_lifecycle_events() {
    let worker = test_worker(&["--send", r#"{"type":"hello"}"#, "--after", "300ms", "--exit", "3"]);
    let args = with_command(&["-n", "web", "-w", "1", "--backoff", "500ms"], &worker);
    let mut tty = Tty::start(&args);
    tty.send(b"e");
    let screen = tty.wait_screen("spawn, exit and restart lines", DEADLINE, |s| {
        s.contains("corral: spawned pid")
            && s.contains("exit 3 after")
            && s.contains("(crashed)")
            && s.contains("corral: restart ")
    });
    assert!(screen.contains(r#"» {"type":"hello"}"#), "the worker's own events too:\n{screen}");
}

/// The value in the LATEST column of the metrics row named `name`.
fn latest(screen: &str, name: &str) -> Option<f64> {
    let line = screen.lines().find(|l| l.split_whitespace().next() == Some(name))?;
    let text = line.split_whitespace().nth(1)?;
    let (number, scale) = match text.strip_suffix('k') {
        Some(n) => (n, 1e3),
        None => (text, 1.0),
    };
    number.parse::<f64>().ok().map(|v| v * scale)
}

/// The article's profiler: the demo worker streams `requests`, and `m` shows it live,
/// rising as requests come in, with a chart; CPU and memory are charted too.
#[test]
fn m_shows_the_demos_requests_rising_with_a_chart() {
    let port = crate::util::free_port();
    let args =
        ["demo", "--port", &port.to_string(), "--crash-after", "600s", "-w", "1", "--jobs", "0"];
    let mut tty = Tty::start(&args);
    wait_running(&tty, &["web.1"]);
    tty.send(b"m");
    let hello = |n: usize| {
        for _ in 0..n {
            crate::util::http::hello(port).expect("the demo answers");
        }
    };
    hello(5);
    let screen = tty.wait_screen("requests in the metrics view", DEADLINE, |s| {
        latest(s, "requests").is_some_and(|v| v >= 5.0)
            && latest(s, "latency_ms").is_some()
            && s.contains("cpu")
            && s.contains("memory")
    });
    let first = latest(&screen, "requests").expect("a value");
    hello(20);
    let screen = tty.wait_screen("the requests value rising", DEADLINE, |s| {
        latest(s, "requests").is_some_and(|v| v >= first + 20.0)
    });
    let row = screen.lines().find(|l| l.starts_with("requests")).unwrap_or_default();
    assert!(row.chars().any(|c| ('▁'..='█').contains(&c)), "no chart: {row}\n{screen}");
    assert!(screen.contains("metrics · web.1"), "{screen}");
}

/// `Enter`: how the worker is run and how it ended, its last exits newest first.
#[test]
fn enter_shows_the_last_exits_of_a_worker_that_crashed_twice() {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let path = file.path().to_str().expect("UTF-8 temp path").to_string();
    // Crashes with exit 3 in its first two runs, then stays up.
    let script = r#"n=$(wc -l < "$1"); echo run >> "$1"; [ "$n" -lt 2 ] && { sleep 0.3; exit 3; }; exec sleep 1000"#;
    let worker: Vec<String> =
        ["sh", "-c", script, "sh", &path].iter().map(ToString::to_string).collect();
    let args = with_command(&["-n", "web", "-w", "1", "--backoff", "200ms"], &worker);
    let mut tty = Tty::start(&args);
    tty.wait_screen("two restarts", DEADLINE, |s| {
        cell(s, "web.1", "RESTARTS").as_deref() == Some("2")
            && cell(s, "web.1", "STATE").as_deref() == Some("● running")
    });
    tty.send(b"\r");
    let screen = tty.wait_screen("the details", DEADLINE, |s| {
        s.contains("details · web.1") && s.contains("last exits")
    });
    let exits: Vec<&str> =
        screen.lines().filter(|l| l.contains("exit 3") && l.contains(" after ")).collect();
    assert_eq!(exits.len(), 2, "two exits listed:\n{screen}");
    assert!(exits.iter().all(|l| l.contains("crashed")), "{screen}");
    for field in ["command", "sh -c", "cwd", "generation 2", "2 restarts · 2 crashes"] {
        assert!(screen.contains(field), "{field:?} missing:\n{screen}");
    }
    tty.send(b"\x1b");
    tty.wait_screen("back to the output", DEADLINE, |s| s.contains("output · web.1"));
}
