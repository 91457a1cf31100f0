//! Headless output loses nothing (docs/output.md): to a file, to a reader that is slower than the
//! workers, to a disk that is full and then has room again. While output is held back,
//! supervision goes on, and a worker's `exited` still comes after its last line.

use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::{
    DEADLINE, SHORT, TOKEN_VAR, children_of, corral_bin, kill_token_processes, send_signal, stat,
    wait_until,
};

/// corral started with stdout going where the test says, killed with everything it
/// started when dropped.
struct Run {
    child: Child,
    token: String,
}

impl Run {
    fn start(args: &[&str], stdout: Stdio) -> Run {
        let token = format!("{:016x}", fastrand::u64(..));
        let child = crate::util::corral_command()
            .args(["--no-ui", "--log-format", "json"])
            .args(args)
            .env(TOKEN_VAR, &token)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("corral starts");
        Run { child, token }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let mut status = None;
        let exited = wait_until(deadline, || {
            status = self.child.try_wait().expect("waitpid");
            status.is_some()
        });
        assert!(exited, "corral did not exit in {deadline:?}; stderr so far: {}", self.stderr());
        status.expect("exited")
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if self.child.try_wait().ok().flatten().is_some()
            && let Some(mut e) = self.child.stderr.take()
        {
            let _ = e.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_token_processes(&self.token);
    }
}

fn events(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

/// The `line` of every `output` event, in order.
fn output_lines(events: &[Value]) -> Vec<&str> {
    events.iter().filter(|e| e["event"] == "output").filter_map(|e| e["line"].as_str()).collect()
}

fn assert_all_numbers(lines: &[&str], count: usize) {
    assert_eq!(lines.len(), count, "every line arrives, once");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, (i + 1).to_string(), "line {i} in order");
    }
}

/// The last events are the worker's `exited` and then `shutdown_complete`.
fn assert_ends_cleanly(events: &[Value]) {
    let names: Vec<&str> =
        events.iter().rev().take(2).filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names, ["shutdown_complete", "exited"], "exited follows the last line");
}

#[test]
fn headless_json_to_a_file_keeps_every_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.json");
    let file = fs::File::create(&path).expect("create");
    let mut run =
        Run::start(&["-w", "1", "--restart", "never", "--", "seq", "1", "200000"], file.into());
    assert!(run.wait(DEADLINE).success());
    let events = events(&fs::read_to_string(&path).expect("read"));
    assert_all_numbers(&output_lines(&events), 200_000);
    assert_ends_cleanly(&events);
}

#[test]
fn a_slow_reader_holds_the_worker_back_and_loses_nothing() {
    // Slot 1 writes ~10 MB, far more than the pipes and corral's queue hold; slot 2
    // crashes over and over. Nobody reads corral's stdout for a while.
    let script = "if [ \"$CORRAL_WORKER_ID\" = 1 ]; then exec seq 1 1000000; fi; sleep 0.2; exit 1";
    let mut run = Run::start(
        &["-w", "2", "--restart", "on-failure", "--backoff", "50ms", "--", "sh", "-c", script],
        Stdio::piped(),
    );
    let corral = run.pid();
    let mut stdout = run.child.stdout.take().expect("piped");
    // Supervision goes on while output is held: slot 2 keeps being restarted (new pids)
    // and the writer of slot 1 is blocked in its write, not finished.
    let mut seen = std::collections::BTreeSet::new();
    let restarted = wait_until(DEADLINE, || {
        seen.extend(children_of(corral));
        seen.len() >= 5
    });
    assert!(restarted, "supervision stalled while output was held back: {seen:?}");
    let flooder = children_of(corral)
        .into_iter()
        .find(|&p| fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.starts_with(b"seq")));
    let flooder = flooder.expect("the writer is still running: its output is held back");
    let blocked = wait_until(SHORT, || {
        fs::read_to_string(format!("/proc/{flooder}/wchan")).is_ok_and(|w| w.contains("pipe"))
    });
    assert!(blocked, "the flooding worker waits in its write: {:?}", stat(flooder));
    // Now read everything, then stop corral.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).expect("read stdout");
        text
    });
    let done = wait_until(DEADLINE, || !children_of(corral).contains(&flooder));
    assert!(done, "the writer finishes once its output is read");
    assert!(send_signal(corral, libc::SIGTERM));
    assert!(run.wait(DEADLINE).success());
    let events = events(&reader.join().expect("reader"));
    let flood: Vec<&Value> = events.iter().filter(|e| e["worker"] == 1).collect();
    let lines: Vec<&str> = flood
        .iter()
        .filter(|e| e["event"] == "output")
        .filter_map(|e| e["line"].as_str())
        .collect();
    assert_all_numbers(&lines, 1_000_000);
    assert_eq!(flood.last().map(|e| &e["event"]), Some(&Value::from("exited")));
    assert_eq!(events.last().map(|e| &e["event"]), Some(&Value::from("shutdown_complete")));
}

#[test]
fn a_full_disk_holds_output_back_and_stops_nothing() {
    let full = fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let mut run =
        Run::start(&["-w", "2", "--", "sh", "-c", "echo hello; exec sleep 1000"], full.into());
    let corral = run.pid();
    let both = wait_until(DEADLINE, || children_of(corral).len() == 2);
    assert!(both, "workers start although nothing can be written");
    let workers = children_of(corral);
    // It stays up, and the workers with it: a full disk is not a reason to stop.
    std::thread::sleep(Duration::from_secs(2));
    assert!(run.child.try_wait().expect("waitpid").is_none(), "corral stopped on ENOSPC");
    assert_eq!(children_of(corral), workers, "no worker was stopped or restarted");
    assert!(send_signal(corral, libc::SIGTERM));
    let status = run.wait(DEADLINE);
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(1), "lost output at exit is a failure: {stderr}");
    assert_eq!(stderr.matches("cannot write output").count(), 1, "said once: {stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(stderr.contains("could not be written"), "{stderr}");
}

#[test]
fn output_resumes_when_the_disk_has_room_again() {
    // Needs root for a small tmpfs; CI runs as root.
    let Some(disk) = crate::util::Tmpfs::mount() else { return };
    let mnt = disk.path();
    // Fill the disk, leaving no room for corral's output.
    let filler = disk.fill();
    let out = fs::File::create(mnt.join("out.json")).expect("create on the full disk");
    // ~30 MB of JSON: far more than corral queues, so the worker itself must wait.
    let mut run =
        Run::start(&["-w", "1", "--restart", "never", "--", "seq", "1", "300000"], out.into());
    let corral = run.pid();
    std::thread::sleep(Duration::from_secs(2));
    assert!(run.child.try_wait().expect("waitpid").is_none(), "corral is waiting for room");
    assert_eq!(children_of(corral).len(), 1, "the worker is held back, not finished");
    fs::remove_file(&filler).expect("free the disk");
    let status = run.wait(DEADLINE);
    let stderr = run.stderr();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("cannot write output"), "the failure was said: {stderr}");
    let events = events(&fs::read_to_string(mnt.join("out.json")).expect("read"));
    assert_all_numbers(&output_lines(&events), 300_000);
    assert_ends_cleanly(&events);
}

#[test]
fn an_orphan_flooding_a_dead_workers_pipe_does_not_freeze_supervision() {
    // The leader exits; `yes`, left in its group, keeps writing to the same pipe. Reading
    // it must never keep corral from reaping, restarting and stopping.
    let devnull = fs::OpenOptions::new().write(true).open("/dev/null").expect("/dev/null");
    let mut run = Run::start(
        &["-w", "2", "--kill-timeout", "1s", "--", "sh", "-c", "yes & sleep 0.5; exit 1"],
        devnull.into(),
    );
    let corral = run.pid();
    let mut leaders = std::collections::BTreeSet::new();
    let restarted = wait_until(DEADLINE, || {
        leaders.extend(children_of(corral).into_iter().filter(|&p| {
            fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.starts_with(b"sh"))
        }));
        leaders.len() >= 6 // both slots restarted at least twice
    });
    assert!(restarted, "workers were not restarted: {leaders:?}");
    let zombies: Vec<u32> = children_of(corral)
        .into_iter()
        .filter(|&p| stat(p).is_some_and(|s| s.state == 'Z'))
        .collect();
    assert!(zombies.is_empty(), "unreaped workers: {zombies:?}");
    assert!(send_signal(corral, libc::SIGTERM));
    let status = run.wait(DEADLINE);
    assert!(status.success() || status.signal().is_none(), "{status:?}");
}

#[test]
fn diagnostics_name_workers_by_their_id() {
    let mut run = Run::start(
        &["-n", "web", "-w", "1", "--restart", "never", "--", "sh", "-c", "echo garbage >&3"],
        Stdio::null(),
    );
    assert!(run.wait(DEADLINE).success());
    let stderr = run.stderr();
    assert!(stderr.contains("worker=web.1"), "warnings name the worker by its id: {stderr}");
    assert!(!stderr.contains("worker=0.1"), "{stderr}");
}

#[test]
fn an_output_writer_that_cannot_start_is_exit_2_before_anything_runs() {
    // No thread can be started under a process limit of 1 (not for root: drop to nobody).
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run corral as another user");
        return;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "prlimit", "--nproc=1"])
        .arg(corral_bin())
        .args(["--no-ui", "-w", "1", "--", "sleep", "1000"])
        .stdin(Stdio::null())
        .output();
    let Ok(out) = out else {
        eprintln!("skipped: setpriv is not installed");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Permission denied") || stderr.contains("No such file") {
        eprintln!("skipped: nobody cannot run the binary here: {stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("corral: cannot start the output writer"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing was started or reported");
}

#[test]
fn verbose_logs_say_what_corral_decided_and_read() {
    let args = ["-n", "web", "-w", "1", "--restart", "never", "--", "sh", "-c", "echo hi; exit 3"];
    let mut run = Run::start(&[&["-v"][..], &args].concat(), Stdio::null());
    assert_eq!(run.wait(DEADLINE).code(), Some(1));
    let stderr = run.stderr();
    assert!(stderr.contains("spawned pid") && stderr.contains("worker=web.1"), "{stderr}");
    assert!(stderr.contains("exited: exit 3"), "-v logs exits with their reason: {stderr}");
    assert!(!stderr.contains("DEBUG"), "-v is not -vv: {stderr}");
    let mut run = Run::start(&[&["-vv"][..], &args].concat(), Stdio::null());
    assert_eq!(run.wait(DEADLINE).code(), Some(1));
    let stderr = run.stderr();
    assert!(stderr.contains("DEBUG read") && stderr.contains("bytes=3"), "-vv: reads: {stderr}");
}

#[test]
fn verbose_events_show_once_when_stdout_and_stderr_are_one_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("both.log");
    let both = fs::File::create(&path).expect("create");
    let status = Command::new(corral_bin())
        .args(["--no-ui", "-v", "-n", "web", "-w", "1", "--restart", "never", "--"])
        .args(["sh", "-c", "echo hi; exit 3"])
        .stdout(both.try_clone().expect("dup"))
        .stderr(both)
        .status()
        .expect("corral runs");
    assert_eq!(status.code(), Some(1));
    let text = fs::read_to_string(&path).expect("read");
    assert_eq!(
        text.matches("spawned pid").count(),
        1,
        "each event once, as `2>&1` shows it: {text}"
    );
    assert_eq!(text.matches("exited: exit 3").count(), 1, "{text}");
}

#[test]
fn the_dashboards_log_file_records_what_corral_decided() {
    let mut tty = crate::util::pty::Tty::start(&[
        "-n",
        "web",
        "-w",
        "1",
        "--",
        "sh",
        "-c",
        "sleep 0.3; exit 4",
    ]);
    let logged = wait_until(DEADLINE, || tty.log().contains("exited: exit 4"));
    assert!(logged, "corral.log stays empty in a normal run\n{}", tty.dump());
    assert!(tty.log().contains("worker=web.1"), "{}", tty.log());
    tty.send(b"q");
    tty.wait_exit(DEADLINE);
}

#[test]
fn a_held_back_worker_is_not_killed_for_heartbeats_corral_cannot_hear() {
    // A heartbeat every 5,000 lines: many a second whenever its output flows.
    let script = "while :; do echo '{\"type\":\"heartbeat\"}' >&3; seq 1 5000; done";
    let mut run = Run::start(
        &["-w", "1", "--heartbeat-timeout", "2s", "--kill-timeout", "1s", "--", "sh", "-c", script],
        Stdio::piped(),
    );
    let mut stdout = run.child.stdout.take().expect("piped");
    // Nobody reads for 4 s, twice the timeout: output is held back, and with it the event
    // channel.
    std::thread::sleep(Duration::from_secs(4));
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(send_signal(run.pid(), libc::SIGTERM));
    assert!(run.wait(DEADLINE).success());
    let text = reader.join().expect("reader");
    let kills = text.lines().filter(|l| l.contains("\"heartbeat_timeout\"")).count();
    assert_eq!(kills, 0, "killed for heartbeats it could not send while held back");
    assert!(text.lines().any(|l| l.contains("\"reason\":\"shutdown\"")));
}

/// Text output marks a worker's stderr lines with `!`, as the dashboard does, and its
/// stdout lines with `|`.
#[test]
fn text_output_marks_stderr_with_a_bang() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.txt");
    let file = fs::File::create(&path).expect("create");
    let token = format!("{:016x}", fastrand::u64(..));
    let child = crate::util::corral_command()
        .args(["--no-ui", "-w", "1", "--restart", "never", "--", "sh", "-c"])
        .arg("echo to-out; echo to-err >&2")
        .env(TOKEN_VAR, &token)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::piped())
        .spawn()
        .expect("corral starts");
    let mut run = Run { child, token };
    assert!(run.wait(DEADLINE).success());
    let text = fs::read_to_string(&path).expect("read");
    let line = |end: &str| text.lines().find(|l| l.ends_with(end)).unwrap_or_default().to_string();
    assert!(line("to-out").contains(" sh.1   | to-out"), "{text}");
    assert!(line("to-err").contains(" sh.1   ! to-err"), "{text}");
}
