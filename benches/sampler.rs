//! What one CPU/memory sampling round costs per 1,000 processes: real `sleep` processes,
//! each leading its own session as a worker does, read through the sampler corral uses.
//! `cargo bench --bench sampler` (1,000 processes, 10 rounds); under `cargo test` a
//! 50-process smoke run so it cannot rot.

use std::process::{Child, Command};
use std::time::Instant;

use corral::internals::backend::SamplerProbe;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (count, rounds) = if full { (1000, 10) } else { (50, 2) };
    let mut children: Vec<Child> = (0..count)
        .map(|_| Command::new("setsid").args(["sleep", "1000"]).spawn().expect("setsid sleep"))
        .collect();
    let leaders: Vec<u32> = children.iter().map(Child::id).collect();
    // Until every one has exec'd `sleep` in its own session, a round would see fewer.
    std::thread::sleep(std::time::Duration::from_millis(if full { 2000 } else { 500 }));
    let mut probe = SamplerProbe::default();
    let started = Instant::now();
    let first = probe.round(&leaders);
    let opening = started.elapsed();
    let started = Instant::now();
    let mut seen = 0;
    for _ in 0..rounds {
        seen = probe.round(&leaders).len();
    }
    let per_round = started.elapsed() / rounds;
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    let per_thousand = |d: std::time::Duration| d.as_secs_f64() * 1e3 * 1000.0 / count as f64;
    println!(
        "\nsampler: {count} processes, each its own session ({} build)",
        if full { "release" } else { "smoke" }
    );
    println!(
        "first round (opens every stat file): {:.2} ms per 1000 processes ({} sampled)",
        per_thousand(opening),
        first.len()
    );
    println!(
        "later rounds (re-reads open files):  {:.2} ms per 1000 processes ({seen} sampled, mean of {rounds})",
        per_thousand(per_round)
    );
    assert_eq!(seen, count, "every process was sampled");
}
