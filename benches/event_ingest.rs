//! Event ingest: messages per second from 2 Rust workers into corral over the event
//! channel, counted exactly (every `exited` says how many messages its slot sent), and
//! corral's CPU time per million messages; beside the same number of messages through
//! Node's own `cluster` IPC (`process.send` to a Node primary) in the same run.
//!
//! The workers are this binary (`CORRAL_BENCH_ROLE=sender`), sending with the library's
//! buffered sender. corral runs headless with JSON output to a file, so every message is
//! also formatted and written as a `message` line: the number is the whole pipeline.
//!
//! `cargo bench --bench event_ingest` (`CORRAL_BENCH_MESSAGES` per worker, default
//! 1,000,000); under `cargo test` a 10,000-message smoke run. `CORRAL_BENCH_PARTS=corral`
//! leaves Node out; `CORRAL_BENCH_BIN` measures another corral binary (the senders stay
//! this build's library).

mod common;

use common::wait_measuring;

use std::io::Write;
use std::process::{Command, Stdio};

fn main() {
    if std::env::var_os("CORRAL_BENCH_ROLE").is_some() {
        send_role();
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let per_worker: u64 = if full {
        std::env::var("CORRAL_BENCH_MESSAGES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    } else {
        10_000
    };
    let corral = under_corral(per_worker);
    println!(
        "\nevent ingest: 2 workers × {per_worker} messages ({} build)\n",
        if full { "release" } else { "debug smoke" }
    );
    println!("{:<40} {:>14} {:>16} {:>10}", "", "messages/s", "CPU s / million", "received");
    corral.print("corral (Rust workers, headless JSON)");
    common::record("ingest_per_s", corral.rate());
    common::record("ingest_cpu_per_million", corral.cpu_seconds / (corral.messages as f64 / 1e6));
    if !common::wants("node") {
        return;
    }
    match node_cluster(per_worker) {
        Some(node) => {
            node.print("Node cluster IPC (process.send)");
            println!("\ncorral / Node: {:.1}× the rate", corral.rate() / node.rate());
        }
        None => println!("Node cluster IPC: node not found, comparison skipped"),
    }
}

/// What a profiler would stream: a small typed event, serialized without a map.
#[derive(serde::Serialize)]
struct Tick {
    r#type: &'static str,
    n: u64,
}

/// A worker: `CORRAL_BENCH_MESSAGES` custom events as fast as the channel takes them.
fn send_role() {
    let n: u64 =
        std::env::var("CORRAL_BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let Some(channel) = corral::worker::Channel::from_env() else {
        eprintln!("no event channel");
        std::process::exit(2);
    };
    let mut out = channel.buffered();
    for n in 0..n {
        out.send(&Tick { r#type: "tick", n }).expect("send");
    }
    out.flush().expect("flush");
}

struct Run {
    messages: u64,
    seconds: f64,
    cpu_seconds: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.seconds
    }

    fn print(&self, name: &str) {
        let per_million = self.cpu_seconds / (self.messages as f64 / 1e6);
        println!("{name:<40} {:>14.0} {per_million:>16.3} {:>10}", self.rate(), self.messages);
    }
}

fn ts_ms(v: &serde_json::Value) -> f64 {
    let ts = v["ts"].as_str().expect("ts");
    let t = humantime::parse_rfc3339(ts).expect("rfc3339");
    t.duration_since(std::time::UNIX_EPOCH).expect("after epoch").as_secs_f64() * 1000.0
}

fn under_corral(per_worker: u64) -> Run {
    let me = std::env::current_exe().expect("own path");
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("out.jsonl");
    let out = std::fs::File::create(&out_path).expect("output file");
    let mut child = Command::new(common::corral_bin())
        // A control socket of its own: another corral of the same name may run.
        .env(
            "XDG_RUNTIME_DIR",
            std::env::temp_dir().join(format!("corral-bench-{}", std::process::id())),
        )
        .args(["--no-ui", "--log-format", "json", "--restart", "never", "-w", "2", "--"])
        .arg(&me)
        .env("CORRAL_BENCH_ROLE", "sender")
        .env("CORRAL_BENCH_MESSAGES", per_worker.to_string())
        .stdout(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("start corral");
    // corral exits by itself when both senders are done; its CPU is read until then.
    let cpu = wait_measuring(&mut child);
    let text = std::fs::read_to_string(&out_path).expect("read output");
    let events: Vec<serde_json::Value> =
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let first_spawn =
        events.iter().filter(|e| e["event"] == "spawned").map(ts_ms).fold(f64::MAX, f64::min);
    let exits: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "exited").collect();
    assert_eq!(exits.len(), 2, "both senders exited");
    for e in &exits {
        assert_eq!(e["code"], 0, "sender failed: {e}");
        assert_eq!(e["messages"].as_u64(), Some(per_worker), "every message arrived: {e}");
    }
    let last_exit = exits.iter().map(|e| ts_ms(e)).fold(0.0, f64::max);
    let reported = events.iter().filter(|e| e["event"] == "message").count();
    let _ = writeln!(
        std::io::stderr(),
        "(corral also wrote {reported} message lines; {} dropped by a slow stdout)",
        2 * per_worker - reported as u64
    );
    Run {
        messages: 2 * per_worker,
        seconds: (last_exit - first_spawn).max(1.0) / 1000.0,
        cpu_seconds: cpu,
    }
}

fn node_cluster(per_worker: u64) -> Option<Run> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/node_cluster_ipc.js");
    let out = Command::new("node").arg(script).arg(per_worker.to_string()).output().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(Run {
        messages: v["messages"].as_u64()?,
        seconds: v["seconds"].as_f64()?,
        cpu_seconds: v["cpu_seconds"].as_f64()?,
    })
}
