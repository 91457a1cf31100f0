//! The cost of "nothing is lost": N lines from one worker (`seq 1 N`) through headless
//! corral, to a file and to a pipe whose reader is slower than the worker, beside the same
//! worker writing straight to the file. Reports lines per second, corral's CPU seconds per
//! million lines, and lines lost (every number 1..=N is checked; must be 0).
//!
//! `cargo bench --bench output_flow` (`CORRAL_BENCH_LINES`, default 10,000,000); under
//! `cargo test` a 20,000-line smoke run that checks the bench works and judges nothing.
//! `CORRAL_BENCH_PARTS` (e.g. `file`) runs only the parts named among `direct` (no corral),
//! `file` and `pipe`; `CORRAL_BENCH_BIN` measures another corral binary.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::wait_measuring;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let lines: u64 = if full {
        std::env::var("CORRAL_BENCH_LINES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000)
    } else {
        20_000
    };
    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "\noutput flow: one worker writes {lines} lines ({} build)\n",
        if full { "release" } else { "debug smoke" }
    );
    println!(
        "{:<44} {:>12} {:>10} {:>16} {:>8}",
        "", "lines/s", "seconds", "CPU s / million", "lost"
    );
    if common::wants("direct") {
        let direct = straight_to_file(&dir.path().join("direct.txt"), lines);
        direct.print("seq straight to a file (no corral)");
    }
    for format in ["text", "json"].into_iter().filter(|_| common::wants("file")) {
        let path = dir.path().join(format!("corral.{format}"));
        let file = std::fs::File::create(&path).expect("output file");
        let run = through_corral(format, file.into(), lines, false);
        let text = std::fs::read_to_string(&path).expect("read output");
        let run = run.with_lost(lost(format, text.lines(), lines));
        run.print(&format!("corral {format} → file"));
        common::record(&format!("lines_{format}_per_s"), run.lines as f64 / run.seconds);
        common::record(
            &format!("lines_{format}_cpu_per_million"),
            run.cpu_seconds / (run.lines as f64 / 1e6),
        );
    }
    for format in ["text", "json"].into_iter().filter(|_| common::wants("pipe")) {
        let run = through_corral(format, Stdio::piped(), lines, true);
        run.print(&format!("corral {format} → slow pipe reader"));
    }
    if !full {
        println!("\n(smoke run: checks that the bench works; numbers come from release runs)");
    }
}

struct Run {
    lines: u64,
    seconds: f64,
    cpu_seconds: f64,
    lost: u64,
}

impl Run {
    fn with_lost(self, lost: u64) -> Run {
        Run { lost, ..self }
    }

    fn print(&self, name: &str) {
        let rate = self.lines as f64 / self.seconds;
        let per_million = self.cpu_seconds / (self.lines as f64 / 1e6);
        println!(
            "{name:<44} {rate:>12.0} {:>10.2} {per_million:>16.3} {:>8}",
            self.seconds, self.lost
        );
        assert_eq!(self.lost, 0, "{name}: lines were lost");
    }
}

fn straight_to_file(path: &std::path::Path, lines: u64) -> Run {
    let file = std::fs::File::create(path).expect("output file");
    let start = Instant::now();
    let before = children_cpu();
    let status = Command::new("seq").arg("1").arg(lines.to_string()).stdout(file).status();
    assert!(status.expect("seq runs").success());
    let seconds = start.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(path).expect("read");
    let lost = lines.saturating_sub(text.lines().count() as u64);
    Run { lines, seconds, cpu_seconds: children_cpu() - before, lost }
}

/// CPU seconds of every child waited for so far (only `seq` here: it has no children).
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given, which lives for the call.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &raw mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// `slow`: stdout is a pipe read by [`slow_read`].
fn through_corral(format: &str, stdout: Stdio, lines: u64, slow: bool) -> Run {
    let start = Instant::now();
    let mut child = Command::new(common::corral_bin())
        // A control socket of its own: another corral of the same name may run.
        .env(
            "XDG_RUNTIME_DIR",
            std::env::temp_dir().join(format!("corral-bench-{}", std::process::id())),
        )
        .args(["--no-ui", "--log-format", format, "--restart", "never", "-w", "1", "--"])
        .args(["seq", "1", &lines.to_string()])
        .stdin(Stdio::null())
        .stdout(stdout)
        .spawn()
        .expect("start corral");
    let reader = slow.then(|| {
        let out = child.stdout.take().expect("piped");
        let format = format.to_string();
        std::thread::spawn(move || slow_read(out, &format, lines))
    });
    let cpu = wait_measuring(&mut child);
    let seconds = start.elapsed().as_secs_f64();
    let lost = reader.map_or(0, |r| r.join().expect("reader"));
    Run { lines, seconds, cpu_seconds: cpu, lost }
}

/// Reads in small chunks with a pause before each: slower than `seq` writes. Returns the
/// lines lost.
fn slow_read(out: impl Read, format: &str, lines: u64) -> u64 {
    struct Slow<R>(R);
    impl<R: Read> Read for Slow<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_micros(200));
            let n = buf.len().min(16 * 1024);
            self.0.read(&mut buf[..n])
        }
    }
    let reader = BufReader::with_capacity(16 * 1024, Slow(out));
    let text: Vec<String> = reader.lines().map_while(Result::ok).collect();
    lost(format, text.iter().map(String::as_str), lines)
}

/// How many of the numbers 1..=`lines` are missing from corral's output, in order.
fn lost<'a>(format: &str, output: impl Iterator<Item = &'a str>, lines: u64) -> u64 {
    let mut next = 1u64;
    for line in output {
        let value = if format == "json" {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            if v["event"] != "output" {
                continue;
            }
            v["line"].as_str().and_then(|l| l.parse::<u64>().ok())
        } else {
            line.rsplit_once(" | ").and_then(|(_, l)| l.parse::<u64>().ok())
        };
        if value == Some(next) {
            next += 1;
        }
    }
    lines + 1 - next
}
