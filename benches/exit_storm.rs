//! An exit storm on the real binary: 8 workers running `sh -c 'exit 1'` with `--backoff 0`
//! (each is restarted as soon as it dies), corral told it has a systemd watchdog of 1 s.
//! Reports the worst `corral ctl status` reply (whole processes, one after another) and the
//! longest silence between two `WATCHDOG=1` pings while the storm goes on, and how many
//! workers came and went. Goals: every reply under 1 s, no silence over half the period.
//!
//! `cargo bench --bench exit_storm` runs it for 20 s; under `cargo test` a 2 s smoke run
//! that states no goals.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Storm(Child);

impl Drop for Storm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let run_for = if full { Duration::from_secs(20) } else { Duration::from_secs(2) };
    let dir = tempfile::tempdir().expect("temp dir");
    let notify = dir.path().join("notify");
    let socket = UnixDatagram::bind(&notify).expect("bind the notify socket");
    let pings = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&pings);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            if &buf[..n] == b"WATCHDOG=1" {
                sink.lock().expect("lock").push(Instant::now());
            }
        }
    });
    let child = Command::new(common::corral_bin())
        .args(["--no-ui", "--log-format", "json", "-I", "storm", "-w", "8"])
        .args(["--backoff", "0", "--", "sh", "-c", "exit 1"])
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("corral starts");
    let storm = Storm(child);
    std::thread::sleep(Duration::from_millis(500));
    let ctl = || {
        let asked = Instant::now();
        let out = Command::new(common::corral_bin())
            .args(["ctl", "-I", "storm", "status", "--json"])
            .env("XDG_RUNTIME_DIR", dir.path())
            .output()
            .expect("ctl runs");
        (asked.elapsed(), out)
    };
    let from = Instant::now();
    let (mut worst, mut replies, mut failed) = (Duration::ZERO, 0u32, 0u32);
    let mut restarts = 0u64;
    while from.elapsed() < run_for {
        let (took, out) = ctl();
        worst = worst.max(took);
        replies += 1;
        // Exit 1 is an answer too: the workers crash-loop, so corral is not healthy.
        let answered = matches!(out.status.code(), Some(0 | 1));
        match serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout) {
            Ok(rows) if answered => {
                restarts = rows.iter().filter_map(|w| w["restarts"].as_u64()).sum();
            }
            _ => failed += 1,
        }
    }
    let to = Instant::now();
    let mut last = from;
    let mut silence = Duration::ZERO;
    let at = pings.lock().expect("lock").clone();
    for t in at.into_iter().filter(|t| *t > from && *t <= to).chain([to]) {
        silence = silence.max(t - last);
        last = t;
    }
    drop(storm);
    let build = if full { "release" } else { "test/debug smoke" };
    println!(
        "exit storm ({build}, {:.0} s, 8 workers exiting at once, --backoff 0):",
        run_for.as_secs_f64()
    );
    println!(
        "  ctl status: {replies} replies, {failed} failed, worst {:.0} ms",
        worst.as_secs_f64() * 1e3
    );
    println!("  watchdog (1 s): longest silence {:.0} ms", silence.as_secs_f64() * 1e3);
    println!("  restarts counted by corral: {restarts}");
    if full {
        let ok =
            failed == 0 && worst < Duration::from_secs(1) && silence < Duration::from_millis(500);
        println!(
            "  goals (replies < 1 s, silence < 500 ms): {}",
            if ok { "met" } else { "MISSED" }
        );
    }
}
