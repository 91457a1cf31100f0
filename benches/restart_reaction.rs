//! Restart reaction and memory, measured on real processes (issue: "a benchmark, not a
//! test").
//!
//! - reaction: from `kill -9` of a worker to its replacement's first instruction in
//!   `main`, under `corral --backoff 0`, beside a bare fork+exec (and `posix_spawn`) of the
//!   same program measured in the same run;
//! - corral's own RSS while it supervises 64 workers;
//! - start: from corral's start to N workers' first instruction (the last one's own clock,
//!   `CORRAL_BENCH_START_WORKERS`, default 1000), and to the Nth `spawned` line read from
//!   its stdout.
//!
//! The worker program is this binary itself (`CORRAL_BENCH_ROLE=worker`): it prints its
//! `CLOCK_MONOTONIC` time at the top of `main` and sleeps. Both measurements therefore pay
//! the same exec and dynamic-loading cost; the difference is corral's.
//!
//! `cargo bench --bench restart_reaction` runs the full measurement (`CORRAL_BENCH_KILLS`,
//! default 300). Under `cargo test` it runs a 5-kill, 20-worker smoke version so it cannot
//! rot. `CORRAL_BENCH_PARTS` (e.g. `reaction,start`) runs only the parts named among
//! `bare`, `reaction`, `rss`, `start`; `CORRAL_BENCH_BIN` measures another corral binary.

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn main() {
    if std::env::var_os("CORRAL_BENCH_ROLE").is_some() {
        println!("start {}", mono_ns());
        loop {
            std::thread::sleep(Duration::from_hours(1));
        }
    }
    let full = std::env::args().any(|a| a == "--bench");
    let kills: usize = if full {
        std::env::var("CORRAL_BENCH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
    } else {
        5
    };
    let me = std::env::current_exe().expect("own path");
    let corral = common::corral_bin();
    let corral = corral.as_os_str();
    let build = if full { "release" } else { "test/debug smoke" };
    // A smoke run (debug build, `cargo test`) only checks that the bench works: goals
    // are for release runs, so it states none.
    let goal = |text: &'static str| if full { text } else { "" };

    let bare_fork = common::wants("bare").then(|| bare(&me, kills, true));
    let bare_spawn = common::wants("bare").then(|| bare(&me, kills, false));
    let reaction = common::wants("reaction").then(|| under_corral(corral, &me, kills));
    if reaction.is_some() || bare_fork.is_some() {
        println!("\nrestart reaction: kill -9 of a worker → its replacement's first instruction");
        println!("(n = {kills} each, {build} build)\n");
        println!("{:<34} {:>9} {:>9} {:>9}", "", "median", "p90", "p99");
    }
    for (name, v) in [
        ("corral --backoff 0 (kill → exec)", &reaction),
        ("bare fork+exec (spawn → exec)", &bare_fork),
        ("bare posix_spawn (spawn → exec)", &bare_spawn),
    ] {
        if let Some(v) = v {
            let (m, p90, p99) = stats(v);
            println!("{name:<34} {m:>6.3} ms {p90:>6.3} ms {p99:>6.3} ms");
        }
    }
    if let Some(reaction) = &reaction {
        let (m, _, p99) = stats(reaction);
        common::record("restart_p50_ms", m);
        common::record("restart_p99_ms", p99);
    }
    if let (Some(reaction), Some(bare_fork)) = (&reaction, &bare_fork) {
        let gap = stats(reaction).0 - stats(bare_fork).0;
        println!(
            "\ncorral median minus bare fork+exec median: {gap:.3} ms{}",
            goal(" (goal: under 1 ms)")
        );
    }
    if common::wants("rss") {
        let (rss, hwm) = rss_with_workers(corral, &me, 64);
        println!(
            "corral RSS with 64 workers: {:.1} MiB (peak {:.1} MiB{})",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0,
            goal("; goal: under 10 MiB")
        );
    }
    if common::wants("start") {
        let n: u32 = if full {
            std::env::var("CORRAL_BENCH_START_WORKERS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000)
        } else {
            20
        };
        let (first_instruction, spawned) = start_of(corral, &me, n);
        println!(
            "\nstart of {n} workers ({build} build): the last one's first instruction \
             {first_instruction:.1} ms after corral was started, the {n}th `spawned` line read \
             {spawned:.1} ms after"
        );
        common::record("start_exec_ms", first_instruction);
        common::record("start_spawned_ms", spawned);
    }
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let at = |q: usize| s[(s.len() * q / 100).min(s.len() - 1)];
    (at(50), at(90), at(99))
}

fn first_line(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    out.read_line(&mut line).expect("read worker line");
    line
}

fn start_ns(line: &str) -> u64 {
    line.trim().strip_prefix("start ").and_then(|n| n.parse().ok()).expect("start line")
}

/// Spawn → first instruction of the same program, without corral.
fn bare(me: &std::path::Path, n: usize, force_fork: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut cmd = Command::new(me);
        cmd.env("CORRAL_BENCH_ROLE", "worker").stdout(Stdio::piped()).stdin(Stdio::null());
        if force_fork {
            // Any pre_exec makes std fork instead of posix_spawn, as corral must.
            // SAFETY: the closure does nothing.
            unsafe { cmd.pre_exec(|| Ok(())) };
        }
        let t0 = mono_ns();
        let mut child = cmd.spawn().expect("spawn");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let t1 = start_ns(&first_line(&mut stdout));
        out.push((t1 - t0) as f64 / 1e6);
        let _ = child.kill();
        let _ = child.wait();
    }
    out
}

struct Corral {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Corral {
    fn start(corral: &OsStr, me: &std::path::Path, workers: u32) -> Corral {
        let mut child = Command::new(corral)
            // A control socket of its own: another corral of the same name may run.
            .env(
                "XDG_RUNTIME_DIR",
                std::env::temp_dir().join(format!("corral-bench-{}", std::process::id())),
            )
            .args(["--no-ui", "--log-format", "json", "--backoff", "0", "-w"])
            .arg(workers.to_string())
            .arg("--")
            .arg(me)
            .env("CORRAL_BENCH_ROLE", "worker")
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start corral");
        let lines = BufReader::new(child.stdout.take().expect("stdout"));
        Corral { child, lines }
    }

    /// Next `start` line a worker printed: (its pid, its start time).
    fn next_start(&mut self) -> (u32, u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut line = String::new();
        while Instant::now() < deadline {
            line.clear();
            assert!(self.lines.read_line(&mut line).expect("read corral") > 0, "corral exited");
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if let ("output", Some(pid), Some(text)) =
                (v["event"].as_str().unwrap_or(""), v["pid"].as_u64(), v["line"].as_str())
            {
                return (pid as u32, start_ns(text));
            }
        }
        panic!("no worker start within 30 s");
    }

    fn stop(mut self) {
        // SAFETY: kill with integer arguments.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut rest = Vec::new();
        let _ = self.lines.read_to_end(&mut rest);
        let _ = self.child.wait();
    }
}

fn under_corral(corral: &OsStr, me: &std::path::Path, n: usize) -> Vec<f64> {
    let mut c = Corral::start(corral, me, 1);
    let (mut pid, _) = c.next_start();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = mono_ns();
        // SAFETY: kill with integer arguments.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let (next, t1) = c.next_start();
        out.push((t1 - t0) as f64 / 1e6);
        pid = next;
    }
    c.stop();
    out
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("field")
}

fn rss_with_workers(corral: &OsStr, me: &std::path::Path, workers: u32) -> (u64, u64) {
    let mut c = Corral::start(corral, me, workers);
    let mut pids = Vec::new();
    for _ in 0..workers {
        pids.push(c.next_start().0);
    }
    // A few restarts too, so the number is not the best case.
    for pid in pids.iter().take(8) {
        // SAFETY: kill with integer arguments.
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
        c.next_start();
    }
    let corral_pid = c.child.id();
    let result = (status_kib(corral_pid, "VmRSS:"), status_kib(corral_pid, "VmHWM:"));
    c.stop();
    result
}

/// From just before corral is started to the last of `n` workers' first instruction (its
/// own clock), and to when the `n`th `spawned` line was read from corral's stdout, in ms.
fn start_of(corral: &OsStr, me: &std::path::Path, n: u32) -> (f64, f64) {
    let t0 = mono_ns();
    let mut c = Corral::start(corral, me, n);
    let deadline = Instant::now() + Duration::from_mins(2);
    let (mut started, mut last_start, mut spawned, mut spawned_at) = (0, t0, 0, t0);
    let mut line = String::new();
    while started < n || spawned < n {
        assert!(Instant::now() < deadline, "{started} of {n} workers started within 2 minutes");
        line.clear();
        assert!(c.lines.read_line(&mut line).expect("read corral") > 0, "corral exited");
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        match (v["event"].as_str(), v["line"].as_str()) {
            (Some("spawned"), _) => {
                spawned += 1;
                if spawned == n {
                    spawned_at = mono_ns();
                }
            }
            (Some("output"), Some(text)) if text.starts_with("start ") => {
                started += 1;
                last_start = last_start.max(start_ns(text));
            }
            _ => {}
        }
    }
    c.stop();
    ((last_start - t0) as f64 / 1e6, (spawned_at - t0) as f64 / 1e6)
}
