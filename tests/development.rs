//! The developer's loop (docs/development.md) on real programs: `--pty` gives workers a
//! terminal and loses none of their lines, `--watch` turns a burst of changes into one
//! rolling reload, and a Procfile runs as foreman runs it.

#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::util::pty::{Term, Tty};
use crate::util::{Corral, DEADLINE, corral_bin, named, on_path};

fn outputs(events: &[Value]) -> Vec<String> {
    named(events, "output").iter().map(|e| e["line"].as_str().unwrap_or("").to_string()).collect()
}

#[test]
fn a_pty_worker_sees_a_terminal_and_every_line_arrives() {
    let python = if on_path("python3") {
        "python3 -c 'import sys; print(\"py\", sys.stdout.isatty(), sys.stderr.isatty())';"
    } else {
        ""
    };
    let script =
        format!("test -t 1 && test -t 2 && echo tty-yes; {python} echo to-stderr >&2; seq 1 10000");
    let args = ["--pty", "-w", "1", "--restart", "never", "--", "sh", "-c", &script];
    let mut corral = Corral::start(&args);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    let lines = outputs(&events);
    assert_eq!(lines[0], "tty-yes", "{}", corral.dump());
    if !python.is_empty() {
        assert!(lines.contains(&"py True True".to_string()), "{lines:?}");
    }
    assert!(lines.contains(&"to-stderr".to_string()), "{lines:?}");
    let numbers: Vec<&String> = lines.iter().filter(|l| l.parse::<u32>().is_ok()).collect();
    let expected: Vec<String> = (1..=10_000).map(|n| n.to_string()).collect();
    assert!(numbers.iter().copied().eq(expected.iter()), "lost or reordered lines");
    assert!(lines.iter().all(|l| !l.contains('\r')), "a carriage return reached the output");
    let output = named(&events, "output");
    assert!(output.iter().all(|e| e["stream"] == "stdout"), "a pty is one stream");
    // Every line came before the exit.
    let last = events.iter().rposition(|e| e["event"] == "output").unwrap();
    let exit = events.iter().position(|e| e["event"] == "exited").unwrap();
    assert!(last < exit, "{}", corral.dump());
}

fn open_fds(pid: u32) -> (usize, usize) {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else { return (0, 0) };
    let links: Vec<_> = dir.flatten().filter_map(|e| fs::read_link(e.path()).ok()).collect();
    let ptys = links.iter().filter(|l| l.to_string_lossy().contains("ptmx")).count();
    (links.len(), ptys)
}

#[test]
fn a_pty_is_closed_with_its_worker_however_often_it_restarts() {
    // 150 restarts each, then both give up: nothing of theirs may stay open.
    let args = [
        "--pty",
        "-w",
        "2",
        "--backoff",
        "0",
        "--max-restarts",
        "150",
        "--restart-window",
        "1h",
        "--",
        "sh",
        "-c",
        "echo run; exit 3",
    ];
    let corral = Corral::start(&args);
    corral.wait_for("20 spawns", DEADLINE, |events| {
        (named(events, "spawned").len() >= 20).then_some(())
    });
    let (before, _) = open_fds(corral.pid());
    corral.wait_for("both workers to give up", Duration::from_mins(1), |events| {
        (named(events, "gave_up").len() == 2).then_some(())
    });
    let mut last = (usize::MAX, usize::MAX);
    let closed = crate::util::wait_until(DEADLINE, || {
        last = open_fds(corral.pid());
        last.1 == 0 && last.0 <= before
    });
    assert!(closed, "fds {before} → {} with {} pty masters\n{}", last.0, last.1, corral.dump());
    let lines = outputs(&corral.events());
    assert_eq!(lines.iter().filter(|l| *l == "run").count(), 302, "{}", corral.dump());
}

#[test]
fn the_workers_terminal_is_the_panes_size_and_follows_a_resize() {
    let script = "trap 'stty size </dev/tty' WINCH; stty size </dev/tty; \
                  while :; do sleep 0.1; done";
    let term = Term { rows: 30, cols: 100, ..Term::default() };
    let tty = Tty::start_on(term, &["--pty", "-w", "1", "--", "sh", "-c", script]);
    // `ROWS COLS` as the worker's terminal has it: the pane's text width is 11 less than
    // the screen (`12:00:00 | ` before each line).
    let size_line = |screen: &str, cols: u16| {
        screen
            .lines()
            .any(|l| l.trim_end().ends_with(&format!(" {}", cols - 11)) && l.contains("| "))
    };
    tty.wait_screen("the pane's width", DEADLINE, |s| size_line(s, 100));
    tty.resize(40, 120);
    tty.wait_screen("the new width after a resize", DEADLINE, |s| size_line(s, 120));
}

/// A project directory with a `.gitignore` and a `node_modules/`.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("src")).unwrap();
    fs::create_dir_all(dir.path().join("node_modules/lib")).unwrap();
    fs::create_dir_all(dir.path().join(".git")).unwrap();
    fs::write(dir.path().join(".gitignore"), "*.tmp\nbuild/\n").unwrap();
    dir
}

fn reloads(events: &[Value]) -> Vec<Value> {
    named(events, "reload_started").into_iter().cloned().collect()
}

fn wait_reloads(corral: &Corral, started: usize, finished: usize) -> Vec<Value> {
    corral.wait_for("reloads", DEADLINE, |events| {
        let done = named(events, "reload_finished").len() >= finished;
        (reloads(events).len() >= started && done).then(|| reloads(events))
    })
}

#[test]
fn ten_files_written_at_once_make_one_reload_and_ignored_files_none() {
    let dir = project();
    let args = ["--watch", ".", "--watch-ignore", "*.log", "--reload-settle", "0", "-w", "2"];
    let mut command: Vec<&str> = args.to_vec();
    command.extend(["--", "sleep", "1000"]);
    let corral = Corral::start_in(dir.path(), &command);
    corral.wait_spawned(2);
    for i in 0..10 {
        fs::write(dir.path().join(format!("src/file{i}.js")), "x").unwrap();
    }
    let started = wait_reloads(&corral, 1, 1);
    assert_eq!(started.len(), 1, "{}", corral.dump());
    assert_eq!(started[0]["cause"], "watch");
    assert!(started[0]["path"].as_str().unwrap().starts_with("src/file"), "{}", started[0]);
    // Ignored: --watch-ignore, node_modules/, .gitignore (a file and a directory), .git/.
    fs::write(dir.path().join("src/debug.log"), "x").unwrap();
    fs::write(dir.path().join("node_modules/lib/index.js"), "x").unwrap();
    fs::write(dir.path().join("src/scratch.tmp"), "x").unwrap();
    fs::create_dir_all(dir.path().join("build/out")).unwrap();
    fs::write(dir.path().join("build/out/app.js"), "x").unwrap();
    fs::write(dir.path().join(".git/index"), "x").unwrap();
    // Then a change that counts: had any ignored one counted, it would be the first path
    // of this burst, or a reload of its own.
    fs::write(dir.path().join("src/after.js"), "x").unwrap();
    let started = wait_reloads(&corral, 2, 2);
    assert_eq!(started.len(), 2, "{}", corral.dump());
    assert_eq!(started[1]["path"], "src/after.js", "{}", corral.dump());
}

#[test]
fn changes_during_a_reload_make_exactly_one_more() {
    let dir = project();
    let args = [
        "--watch",
        "src",
        "--watch-debounce",
        "100ms",
        "--reload-settle",
        "10s",
        "-w",
        "1",
        "--",
        "sleep",
        "1000",
    ];
    let corral = Corral::start_in(dir.path(), &args);
    corral.wait_spawned(1);
    fs::write(dir.path().join("src/a.js"), "x").unwrap();
    wait_reloads(&corral, 1, 0);
    // Two bursts while the first reload waits 10 s for its replacement to settle.
    fs::write(dir.path().join("src/b.js"), "x").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    fs::write(dir.path().join("src/c.js"), "x").unwrap();
    let finished = named(&corral.events(), "reload_finished").len();
    assert_eq!(finished, 0, "both bursts came during the first reload\n{}", corral.dump());
    let started = wait_reloads(&corral, 2, 2);
    assert_eq!(started[1]["path"], "src/b.js", "{}", corral.dump());
    fs::write(dir.path().join("src/sentinel.js"), "x").unwrap();
    let started = wait_reloads(&corral, 3, 2);
    assert_eq!(started.len(), 3, "{}", corral.dump());
    assert_eq!(started[2]["path"], "src/sentinel.js", "no reload of c.js of its own");
}

#[test]
fn a_directory_made_again_under_the_same_name_is_watched_again() {
    let dir = project();
    let args = ["--watch", "src", "--reload-settle", "0", "-w", "1", "--", "sleep", "1000"];
    let corral = Corral::start_in(dir.path(), &args);
    corral.wait_spawned(1);
    let gen_dir = dir.path().join("src/gen");
    fs::create_dir(&gen_dir).unwrap();
    wait_reloads(&corral, 1, 1);
    fs::remove_dir(&gen_dir).unwrap();
    fs::create_dir(&gen_dir).unwrap();
    wait_reloads(&corral, 2, 2);
    fs::write(gen_dir.join("x.js"), "x").unwrap();
    let started = wait_reloads(&corral, 3, 3);
    assert_eq!(started[2]["path"], "src/gen/x.js", "{}", corral.dump());
}

/// A watched directory deleted whole says so once; deleting a tree under it says nothing
/// per directory (notify's own warnings were one line each).
#[test]
fn a_removed_watched_directory_is_one_warning_and_a_deleted_tree_none() {
    let dir = project();
    for n in 0..50 {
        fs::create_dir_all(dir.path().join(format!("src/tree/d{n}"))).unwrap();
    }
    let args = ["--watch", "src", "--reload-settle", "0", "-w", "1", "--", "sleep", "1000"];
    let corral = Corral::start_in(dir.path(), &args);
    corral.wait_spawned(1);
    fs::remove_dir_all(dir.path().join("src/tree")).unwrap();
    wait_reloads(&corral, 1, 1);
    fs::remove_dir_all(dir.path().join("src")).unwrap();
    let said =
        |c: &Corral| c.stderr().matches("src was removed: changes there no longer reload").count();
    assert!(crate::util::wait_until(DEADLINE, || said(&corral) == 1), "{}", corral.stderr());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(said(&corral), 1, "{}", corral.stderr());
    assert!(!corral.stderr().contains("Unable to remove"), "{}", corral.stderr());
}

#[test]
fn the_watch_limit_is_one_warning_and_corral_runs_on() {
    // A user namespace of our own has its own inotify limit: 4 watches, for 9 directories.
    let ok = Command::new("unshare").args(["--user", "--map-root-user", "true"]).status();
    if !ok.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no user namespaces here");
        return;
    }
    let dir = project();
    for sub in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        fs::create_dir(dir.path().join("src").join(sub)).unwrap();
    }
    let mut command = Command::new("unshare");
    command.args(["--user", "--map-root-user", "sh", "-c"]);
    command.arg("echo 4 > /proc/sys/user/max_inotify_watches && exec \"$0\" \"$@\"");
    command.args([corral_bin(), "--no-ui", "--log-format", "json", "--watch", "src"]);
    command.args(["-w", "1", "--", "sleep", "1000"]).current_dir(dir.path());
    let corral = Corral::start_command(command);
    corral.wait_spawned(1);
    let stderr = corral.stderr();
    assert_eq!(stderr.matches("watch limit is reached").count(), 1, "{stderr}");
    assert!(stderr.contains("max_user_watches = 4"), "{stderr}");
    // What is watched still reloads.
    fs::write(dir.path().join("src/app.js"), "x").unwrap();
    wait_reloads(&corral, 1, 1);
}

#[test]
fn a_change_starts_a_crashed_worker_that_waits_to_restart() {
    let dir = project();
    let script = "test -f src/fixed || { echo broken; exit 1; }; echo fixed; exec sleep 1000";
    let args = ["--watch", "src", "--backoff", "1h", "-w", "1", "--", "sh", "-c", script];
    let corral = Corral::start_in(dir.path(), &args);
    corral.wait_for("a crash, then a 1h backoff", DEADLINE, |events| {
        named(events, "restart_scheduled").first().map(|_| ())
    });
    fs::write(dir.path().join("src/fixed"), "").unwrap();
    corral.wait_for("the fixed worker", DEADLINE, |events| {
        outputs(events).contains(&"fixed".to_string()).then_some(())
    });
    assert_eq!(named(&corral.events(), "spawned").len(), 2, "{}", corral.dump());
}

fn procfile(dir: &Path, text: &str) {
    fs::write(dir.join("Procfile"), text).unwrap();
}

fn groups_of(events: &[Value]) -> Vec<(String, u64)> {
    let mut spawned: Vec<(String, u64)> = named(events, "spawned")
        .iter()
        .map(|e| (e["group"].as_str().unwrap().to_string(), e["worker"].as_u64().unwrap()))
        .collect();
    spawned.sort();
    spawned
}

#[test]
fn a_procfile_with_two_lines_runs_two_groups_with_its_formation() {
    let dir = tempfile::tempdir().unwrap();
    procfile(dir.path(), "# dev\nweb: echo web $CORRAL_WORKER_ID\n\nworker: echo worker\n");
    let mut corral = Corral::start_in(dir.path(), &["--restart", "never"]);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    assert_eq!(groups_of(&events), [("web".into(), 1), ("worker".into(), 1)]);
    let mut lines = outputs(&events);
    lines.sort();
    assert_eq!(lines, ["web 1", "worker"]);
    let args = ["--restart", "never", "--formation", "web=2,worker=0"];
    let mut corral = Corral::start_in(dir.path(), &args);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    assert_eq!(groups_of(&corral.events()), [("web".into(), 1), ("web".into(), 2)]);
}

fn run_corral(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(corral_bin()).args(args).current_dir(dir).output().expect("corral runs")
}

#[test]
fn bad_procfiles_exit_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("web: a\nweb: b\n", "Procfile:2: 'web' is already defined on line 1"),
        ("web: a\n\nthis is not a line\n", "Procfile:3: expected 'name: command'"),
        ("w.eb: a\n", "Procfile:1: bad process name 'w.eb'"),
        ("web:\n", "Procfile:1: 'web' has no command"),
    ];
    for (text, message) in cases {
        procfile(dir.path(), text);
        let out = run_corral(dir.path(), &["--no-ui", "--procfile", "Procfile"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {stderr}");
        assert!(stderr.starts_with(&format!("corral: {message}")), "{text:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    procfile(dir.path(), "web: a\n");
    let out = run_corral(dir.path(), &["--no-ui", "--formation", "api=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no process 'api'"));
}

#[test]
fn check_config_of_a_procfile_prints_toml_that_runs_the_same() {
    let dir = tempfile::tempdir().unwrap();
    procfile(dir.path(), "web: echo web\nworker: echo worker\n");
    let out = run_corral(dir.path(), &["check-config", "Procfile", "--formation", "web=2"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let toml = String::from_utf8(out.stdout).unwrap();
    fs::write(dir.path().join("same.toml"), &toml).unwrap();
    let args = ["--restart", "never", "--config", "same.toml"];
    let mut corral = Corral::start_in(dir.path(), &args);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    let groups = groups_of(&events);
    assert_eq!(groups, [("web".into(), 1), ("web".into(), 2), ("worker".into(), 1)], "{toml}");
}
