//! The integration-test harness: runs the real `corral` binary headless with JSON output,
//! collects its events, waits on conditions with deadlines, and kills everything a test
//! started (found by a per-test token in the environment), even when the test fails.
//!
//! It never synchronises with a bare sleep: every wait polls a condition until a deadline
//! and fails with everything seen so far. It asserts outcomes, never durations.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Python and npm packages, pinned, from the test command.
pub mod deps;
pub mod http;
/// The same for the dashboard: corral on a pseudo-terminal, the screen read back.
pub mod notify;
mod procs;
pub mod pty;

pub use procs::*;

/// How long any one condition may take. Generous: CI runs this on 2 loaded cores, and a
/// deadline only bounds a failing test, it never slows a passing one.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// For things that are already true unless something is broken (a killed process going
/// away, the output pipe closing after exit).
pub const SHORT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(15);

/// The environment variable that marks every process a test started.
pub const TOKEN_VAR: &str = "CORRAL_TEST_TOKEN";

pub fn corral_bin() -> &'static str {
    env!("CARGO_BIN_EXE_corral")
}

/// A directory of its own for one corral's control socket (`XDG_RUNTIME_DIR`): tests run
/// side by side, and two corrals of the same name in one directory would be one too many.
pub fn runtime_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("corral-tests-{}", std::process::id())).join(n.to_string())
}

/// `Command::new(corral)` with its own [`runtime_dir`].
pub fn corral_command() -> Command {
    let mut command = Command::new(corral_bin());
    command.env("XDG_RUNTIME_DIR", runtime_dir());
    command
}

/// `corral __test-worker ARGS…`, as the COMMAND part of a corral command line.
pub fn test_worker(args: &[&str]) -> Vec<String> {
    [corral_bin(), "__test-worker"].iter().chain(args).map(ToString::to_string).collect()
}

/// A COMMAND that runs the test worker with other flags in each slot (`slots[0]` in slot
/// 1 …), chosen by `CORRAL_WORKER_ID`. The shell `exec`s it, so the worker keeps the pid
/// corral reports.
pub fn test_worker_per_slot(slots: &[&[&str]]) -> Vec<String> {
    let quote = |word: &String| format!("'{}'", word.replace('\'', "'\\''"));
    let mut script = String::from("case \"$CORRAL_WORKER_ID\" in\n");
    for (i, args) in slots.iter().enumerate() {
        let words: Vec<String> = test_worker(args).iter().map(quote).collect();
        let _ = writeln!(script, "{}) exec {} ;;", i + 1, words.join(" "));
    }
    script.push_str("esac\nexit 64\n");
    vec!["sh".to_string(), "-c".to_string(), script]
}

/// A corral command line: `OPTIONS… -- COMMAND…`.
pub fn with_command(options: &[&str], command: &[String]) -> Vec<String> {
    let options = options.iter().chain(&["--"]).map(ToString::to_string);
    options.chain(command.iter().cloned()).collect()
}

/// What the reader threads collect from corral's stdout and stderr.
#[derive(Default)]
struct Captured {
    /// Every stdout line that is a JSON object with `ts` and `event` (docs/output.md).
    events: Mutex<Vec<Value>>,
    /// Every other stdout line: each one is a failure of the headless JSON format.
    garbage: Mutex<Vec<String>>,
    stderr: Mutex<String>,
    stdout_closed: AtomicBool,
    stderr_closed: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A reader thread that panicked leaves usable data behind; report it, don't cascade.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running `corral --no-ui --log-format json …`, killed with everything it started when
/// dropped.
pub struct Corral {
    child: Child,
    token: String,
    captured: Arc<Captured>,
    exit: Option<ExitStatus>,
    /// Its `XDG_RUNTIME_DIR`: where its control socket is.
    runtime_dir: PathBuf,
}

impl Corral {
    /// Starts `corral --no-ui --log-format json ARGS…`.
    pub fn start<S: AsRef<OsStr>>(args: &[S]) -> Corral {
        let mut command = Command::new(corral_bin());
        command.args(["--no-ui", "--log-format", "json"]).args(args);
        Corral::spawn(command)
    }

    /// Starts `corral --no-ui --log-format json ARGS…` as PID 1 of a new PID namespace
    /// (`unshare --pid --fork --mount-proc`; needs root, see [`is_root`]). `pid()` is then
    /// unshare's; [`Corral::inner_pid`] is corral's own, as seen from outside.
    pub fn start_in_pid_namespace<S: AsRef<OsStr>>(args: &[S]) -> Corral {
        let mut command = Command::new("unshare");
        command.args(["--pid", "--fork", "--mount-proc", corral_bin()]);
        command.args(["--no-ui", "--log-format", "json"]).args(args);
        Corral::spawn(command)
    }

    /// corral's pid (in this test's namespace) when it runs under `unshare`.
    pub fn inner_pid(&self) -> u32 {
        let found = wait_until(DEADLINE, || children_of(self.pid()).len() == 1);
        assert!(found, "no corral under unshare {}\n{}", self.pid(), self.dump());
        children_of(self.pid())[0]
    }

    /// Like [`Corral::start`], with extra environment variables for corral.
    pub fn start_with_env<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &str)]) -> Corral {
        let mut command = Command::new(corral_bin());
        command.args(["--no-ui", "--log-format", "json"]).args(args);
        command.envs(env.iter().copied());
        Corral::spawn(command)
    }

    /// Like [`Corral::start`], with corral's umask set to `umask` (through `sh`, which
    /// `exec`s corral, so `pid()` is corral's).
    pub fn start_with_umask<S: AsRef<OsStr>>(args: &[S], umask: u32) -> Corral {
        let mut command = Command::new("sh");
        command.args(["-c", &format!("umask {umask:03o}; exec \"$@\""), "sh", corral_bin()]);
        command.args(["--no-ui", "--log-format", "json"]).args(args);
        Corral::spawn(command)
    }

    /// Starts `corral ARGS…` exactly as given (for subcommands such as `demo`).
    pub fn start_raw<S: AsRef<OsStr>>(args: &[S]) -> Corral {
        let mut command = Command::new(corral_bin());
        command.args(args);
        Corral::spawn(command)
    }

    /// Starts `PROGRAM ARGS…`: a program that is a corral primary itself (a library
    /// `Cluster`), watched and cleaned up like corral.
    pub fn start_program<S: AsRef<OsStr>>(program: &Path, args: &[S]) -> Corral {
        let mut command = Command::new(program);
        command.args(args);
        Corral::spawn(command)
    }

    /// Like [`Corral::start`], in working directory `dir`.
    pub fn start_in<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Corral {
        let mut command = Command::new(corral_bin());
        command.args(["--no-ui", "--log-format", "json"]).args(args).current_dir(dir);
        Corral::spawn(command)
    }

    /// Runs a prepared command (a launcher that execs corral, say) as a [`Corral`]; it must
    /// end up as `corral --no-ui --log-format json …` for the events to be read.
    pub fn start_command(command: Command) -> Corral {
        Corral::spawn(command)
    }

    fn spawn(mut command: Command) -> Corral {
        let given = command.get_envs().find(|(k, _)| *k == "XDG_RUNTIME_DIR");
        let runtime_dir = if let Some((_, Some(dir))) = given {
            PathBuf::from(dir)
        } else {
            let dir = runtime_dir();
            command.env("XDG_RUNTIME_DIR", &dir);
            dir
        };
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        command
            .env(TOKEN_VAR, &token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("corral binary starts");
        let captured = Arc::new(Captured::default());
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let for_stdout = Arc::clone(&captured);
        thread::spawn(move || read_stdout(stdout, &for_stdout));
        let for_stderr = Arc::clone(&captured);
        thread::spawn(move || read_stderr(stderr, &for_stderr));
        Corral { child, token, captured, exit: None, runtime_dir }
    }

    /// `corral ctl ARGS…` against this corral's runtime directory, to completion.
    pub fn ctl(&self, args: &[&str]) -> std::process::Output {
        self.ctl_command(args).output().expect("corral ctl runs")
    }

    /// `corral ctl ARGS…` as a command to start (for `-f`).
    pub fn ctl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(corral_bin());
        command.arg("ctl").args(args).env("XDG_RUNTIME_DIR", &self.runtime_dir);
        command
    }

    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<Value> {
        lock(&self.captured.events).clone()
    }

    pub fn stderr(&self) -> String {
        lock(&self.captured.stderr).clone()
    }

    /// Sends `signal` to corral itself.
    pub fn signal(&self, signal: i32) {
        assert!(send_signal(self.pid(), signal), "corral {} is gone", self.pid());
    }

    /// Polls `found` over the events until it returns `Some`, or fails the test at the
    /// deadline with everything seen so far. Any non-JSON stdout line fails it at once.
    /// `found` runs with the event list locked, so it must be quick (no network I/O).
    pub fn wait_for<T>(
        &self,
        what: &str,
        deadline: Duration,
        mut found: impl FnMut(&[Value]) -> Option<T>,
    ) -> T {
        let end = Instant::now() + deadline;
        loop {
            self.assert_clean_stdout();
            // Read before the events: once stdout is closed no event can arrive any more,
            // so a condition still unmet then fails at once instead of at the deadline.
            let closed = self.captured.stdout_closed.load(Ordering::SeqCst);
            if let Some(value) = found(&lock(&self.captured.events)) {
                return value;
            }
            assert!(!closed, "corral's stdout closed before {what}\n{}", self.dump());
            assert!(Instant::now() < end, "timed out waiting for {what}\n{}", self.dump());
            thread::sleep(POLL);
        }
    }

    /// Waits until `count` `spawned` events have arrived; returns `(worker, pid)` of the
    /// first `count`, in order.
    pub fn wait_spawned(&self, count: usize) -> Vec<(u64, u32)> {
        self.wait_for(&format!("{count} spawned events"), DEADLINE, |events| {
            let spawned = spawned(events);
            (spawned.len() >= count).then(|| spawned[..count].to_vec())
        })
    }

    /// Waits for corral to exit and for its stdout and stderr to close, so `events()` is
    /// complete afterwards.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let end = Instant::now() + deadline;
        let status = loop {
            if let Some(status) = self.try_exit() {
                break status;
            }
            assert!(Instant::now() < end, "corral did not exit\n{}", self.dump());
            thread::sleep(POLL);
        };
        // Only corral holds its stdout: if the pipe stays open, some process inherited it.
        let closed = wait_until(SHORT, || {
            self.captured.stdout_closed.load(Ordering::SeqCst)
                && self.captured.stderr_closed.load(Ordering::SeqCst)
        });
        assert!(closed, "corral exited but its stdout/stderr stayed open\n{}", self.dump());
        self.assert_clean_stdout();
        status
    }

    /// corral's exit status if it has exited (reaping it), else `None`.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("waitpid on corral");
        }
        self.exit
    }

    /// Asserts that no process carrying this test's token is left, allowing a killed
    /// process a moment to be torn down by the kernel.
    pub fn assert_nothing_left(&self) {
        let gone = wait_until(SHORT, || token_processes(&self.token).is_empty());
        assert!(
            gone,
            "processes outlived corral: {}\n{}",
            describe(&token_processes(&self.token)),
            self.dump()
        );
    }

    pub fn assert_clean_stdout(&self) {
        let garbage = lock(&self.captured.garbage);
        assert!(
            garbage.is_empty(),
            "stdout lines that are not headless JSON events (docs/output.md): {:?}\n{}",
            *garbage,
            self.dump_without(&garbage)
        );
    }

    /// Everything known about this run, for failure messages.
    pub fn dump(&self) -> String {
        self.dump_without(&lock(&self.captured.garbage))
    }

    fn dump_without(&self, garbage: &[String]) -> String {
        const SHOWN: usize = 300;
        let events = lock(&self.captured.events);
        let skipped = events.len().saturating_sub(SHOWN);
        let mut text = format!("--- corral pid {} ({} events", self.pid(), events.len());
        if skipped > 0 {
            let _ = write!(text, ", first {skipped} not shown");
        }
        text.push_str(")\n");
        for event in &events[skipped..] {
            text.push_str(&event.to_string());
            text.push('\n');
        }
        for line in garbage {
            let _ = writeln!(text, "NOT JSON: {line}");
        }
        let _ = write!(text, "--- stderr:\n{}", lock(&self.captured.stderr));
        text
    }
}

impl Drop for Corral {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            // Best effort: it may exit between the check and the kill.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Workers die with corral (parent-death signal), but a test must not leak processes
        // into the next one even when corral is broken: anything with the token goes.
        kill_token_processes(&self.token);
    }
}

fn read_stdout(stdout: ChildStdout, captured: &Captured) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        match serde_json::from_slice::<Value>(text) {
            Ok(event) if event["event"].is_string() && event["ts"].is_string() => {
                lock(&captured.events).push(event);
            }
            _ => lock(&captured.garbage).push(String::from_utf8_lossy(text).into_owned()),
        }
    }
    captured.stdout_closed.store(true, Ordering::SeqCst);
}

fn read_stderr(mut stderr: ChildStderr, captured: &Captured) {
    let mut buffer = [0u8; 4096];
    loop {
        match stderr.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => lock(&captured.stderr).push_str(&String::from_utf8_lossy(&buffer[..n])),
        }
    }
    captured.stderr_closed.store(true, Ordering::SeqCst);
}

// ---- reading events ----------------------------------------------------------------------

pub fn kind(event: &Value) -> &str {
    event["event"].as_str().unwrap_or_default()
}

pub fn worker_of(event: &Value) -> Option<u64> {
    event["worker"].as_u64()
}

pub fn pid_of(event: &Value) -> Option<u32> {
    event["pid"].as_u64().and_then(|pid| u32::try_from(pid).ok())
}

/// The events of one kind, in order.
pub fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| kind(e) == name).collect()
}

/// The events of one kind about one worker slot, in order.
pub fn of_worker<'a>(events: &'a [Value], name: &str, worker: u64) -> Vec<&'a Value> {
    events.iter().filter(|e| kind(e) == name && worker_of(e) == Some(worker)).collect()
}

/// `(worker, pid)` of every `spawned` event, in order.
/// Where worker `worker`'s first `exited` event stands in `events`.
pub fn exited_index(events: &[Value], worker: u64) -> Option<usize> {
    events.iter().position(|e| e["event"] == "exited" && e["worker"] == worker)
}

pub fn spawned(events: &[Value]) -> Vec<(u64, u32)> {
    named(events, "spawned")
        .into_iter()
        .map(|e| {
            let worker = worker_of(e).unwrap_or_else(|| panic!("spawned without worker: {e}"));
            let pid = pid_of(e).unwrap_or_else(|| panic!("spawned without pid: {e}"));
            (worker, pid)
        })
        .collect()
}

// ---- a small disk ----

/// A 64 MiB tmpfs of the test's own, unmounted when dropped: a disk the test can fill.
/// `None` (say why, and skip) where it cannot be mounted: without root, or in a sandbox.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount() -> Option<Tmpfs> {
        if !is_root() {
            eprintln!("skipped: needs root to mount a tmpfs");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("skipped: cannot mount a tmpfs here");
            return None;
        }
        Some(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with one file, leaving no room; removing the file frees it again.
    pub fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k"])
            .arg(format!("of={}", filler.display()))
            .stderr(Stdio::null())
            .status();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

// ---- files and ports ---------------------------------------------------------------------

/// The lines of a `--marker` file: `(pid, generation)` per worker start.
pub fn marker_lines(path: &Path) -> Vec<(u32, String)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let (pid, generation) = line.split_once(' ').expect("marker line is `pid generation`");
            (pid.parse().expect("marker pid"), generation.to_string())
        })
        .collect()
}

/// Waits until the marker file shows a start of `pid`: the test worker is running its own
/// code (past the reset of SIGSEGV/SIGBUS that the Rust runtime changes), so a crash
/// signal sent now kills it. Later steps (`--ignore-term` …) need their own probe.
pub fn wait_marker(corral: &Corral, path: &Path, pid: u32) {
    corral.wait_for(&format!("marker line of pid {pid}"), DEADLINE, |_| {
        marker_lines(path).iter().any(|(p, _)| *p == pid).then_some(())
    });
}

/// The `--report` JSON of a test worker, once it has been written.
pub fn read_report(path: &Path) -> Option<Value> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
/// Whether `program` is on PATH (tests of what needs it say SKIPPED without it).
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// The harness checks itself, without corral: a broken token scan would make every
/// "nothing left" assertion pass vacuously.
#[test]
fn token_scan_finds_marked_processes_and_treats_zombies_as_dead() {
    let token = format!("harness-self-test-{:016x}", fastrand::u64(..));
    let mut shell = Command::new("sh")
        .args(["-c", "sleep 1000 & exec sleep 1000"])
        .env(TOKEN_VAR, &token)
        .stdin(Stdio::null())
        .spawn()
        .expect("sh starts");
    let leader = shell.id();
    assert!(wait_until(DEADLINE, || token_processes(&token).len() == 2), "both sleeps found");
    assert!(token_processes(&token).contains(&leader));

    // Killed but not yet reaped: a zombie, which counts as dead.
    assert!(send_signal(leader, libc::SIGKILL));
    assert!(wait_until(DEADLINE, || stat(leader).is_some_and(|s| s.state == 'Z')), "zombie");
    assert!(!pid_alive(leader));
    assert_eq!(token_processes(&token).len(), 1, "only the orphaned sleep is left");

    kill_token_processes(&token);
    assert!(token_processes(&token).is_empty(), "{}", describe(&token_processes(&token)));
    shell.wait().expect("reap sh");
}
