//! The library builder (docs/library.md) for real: `examples/cluster.rs` is its own primary and its
//! own workers on one shared port. It serves from several workers, a killed worker comes
//! back, SIGTERM ends it cleanly, and run as a worker of another corral it is a primary of
//! its own.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::http::hello;
use crate::util::{
    Corral, DEADLINE, free_port, named, of_worker, pid_alive, send_signal, spawned, stat,
    wait_until, with_command,
};

/// The example, built once per test run. WHY cargo here: `CARGO_BIN_EXE_*` names only
/// binaries, and `cargo test --test main` does not build examples, so a file found under
/// target/ could be stale; cargo says where the fresh one is.
fn example() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let output = Command::new(env!("CARGO"))
            .args(["build", "--locked", "--example", "cluster", "--message-format=json"])
            .args(["--manifest-path", manifest])
            .output()
            .expect("cargo runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "cargo build --example cluster failed:\n{stderr}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "cluster")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| panic!("cargo named no executable for the example:\n{stderr}"))
    })
}

fn ready(events: &[Value], workers: &[(u64, u32)]) -> bool {
    workers.iter().all(|&(w, pid)| {
        of_worker(events, "ready", w).iter().any(|e| e["pid"].as_u64() == Some(pid.into()))
    })
}

#[test]
fn the_cluster_example_serves_from_its_workers_restarts_one_killed_and_stops_cleanly() {
    let port = free_port();
    let args = ["--no-ui", "--json", "--workers", "2", "--port", &port.to_string()];
    let mut primary = Corral::start_program(example(), &args);
    let first = primary.wait_spawned(2);
    primary.wait_for("both workers ready", DEADLINE, |events| ready(events, &first).then_some(()));
    let events = primary.events();
    let started = named(&events, "supervisor_started");
    let group = started.first().map(|e| &e["groups"][0]);
    assert_eq!(group.map(|g| &g["name"]), Some(&"web".into()), "{}", primary.dump());
    for &(_, pid) in &first {
        let parent = stat(pid).map(|s| s.ppid);
        assert_eq!(parent, Some(primary.pid()), "workers are the primary's own children");
    }

    // Both workers accept on the one socket; which one gets a connection is the kernel's
    // choice, so keep asking (bounded) until both have answered.
    let mut answered = BTreeSet::new();
    let both = wait_until(DEADLINE, || {
        answered.extend(hello(port));
        answered.len() == 2
    });
    let pids: BTreeSet<u32> = first.iter().map(|&(_, pid)| pid).collect();
    assert!(both && answered == pids, "answers from {answered:?}, workers {pids:?}");
    primary.wait_for("a requests metric above 0", DEADLINE, |events| {
        named(events, "message")
            .iter()
            .any(|e| {
                let data = &e["data"];
                data["type"] == "metric"
                    && data["name"] == "requests"
                    && data["value"].as_f64() > Some(0.0)
            })
            .then_some(())
    });

    let (victim, victim_pid) = first[0];
    assert!(send_signal(victim_pid, libc::SIGKILL));
    let replacement = primary.wait_for("the killed worker's replacement", DEADLINE, |events| {
        spawned(events).into_iter().filter(|&(w, _)| w == victim).nth(1).map(|(_, pid)| pid)
    });
    assert_ne!(replacement, victim_pid);
    let exited =
        of_worker(&primary.events(), "exited", victim).first().map(|e| e["signal"].clone());
    assert_eq!(exited, Some("SIGKILL".into()), "{}", primary.dump());
    let serves = wait_until(DEADLINE, || hello(port) == Ok(replacement));
    assert!(serves, "the replacement {replacement} never answered\n{}", primary.dump());

    primary.signal(libc::SIGTERM);
    assert_eq!(primary.wait_exit(DEADLINE).code(), Some(0), "{}", primary.dump());
    let events = primary.events();
    let complete = named(&events, "shutdown_complete");
    assert_eq!(complete.first().map(|e| &e["exit_code"]), Some(&0.into()), "{}", primary.dump());
    assert!(!pid_alive(replacement) && !pid_alive(first[1].1));
    primary.assert_nothing_left();
    // Its keeper is a copy of the example too (it knows no `__keeper`): it must have run.
    assert!(!primary.stderr().contains("keeper"), "{}", primary.dump());
}

/// The command line's options reach a `Cluster` through the same rules: with `metrics`, the
/// primary serves Prometheus text about its workers.
#[test]
fn the_cluster_example_serves_metrics_when_asked() {
    let (port, metrics) = (free_port(), free_port());
    let (port_arg, metrics_arg) = (port.to_string(), metrics.to_string());
    let args = ["--no-ui", "--json", "--workers", "1", "--port", &port_arg];
    let mut primary =
        Corral::start_program(example(), &[&args[..], &["--metrics", &metrics_arg]].concat());
    let first = primary.wait_spawned(1);
    primary.wait_for("the worker ready", DEADLINE, |events| ready(events, &first).then_some(()));
    let body = primary.wait_for("metrics with the worker up", DEADLINE, |_| {
        let (status, body) = crate::metrics::get(metrics, "/metrics").ok()?;
        (status == "HTTP/1.1 200 OK" && body.contains("corral_worker_up")).then_some(body)
    });
    assert!(body.contains("group=\"web\""), "{body}");
    primary.signal(libc::SIGTERM);
    assert_eq!(primary.wait_exit(DEADLINE).code(), Some(0), "{}", primary.dump());
    primary.assert_nothing_left();
}

/// A `Cluster` program that a plain corral runs as its worker inherits corral's variables
/// (`CORRAL_PRIMARY_PID`, `CORRAL_GROUP` …), but not the builder's marker: it is a primary
/// with workers of its own, not a worker of the outer corral.
#[test]
fn run_by_another_corral_the_cluster_program_is_a_primary() {
    let port = free_port().to_string();
    let example = example().to_string_lossy().into_owned();
    let inner = [&example, "--no-ui", "--workers", "1", "--port", &port];
    let command: Vec<String> = inner.iter().map(ToString::to_string).collect();
    let mut outer = Corral::start(&with_command(&["-n", "outer", "-w", "1"], &command));
    let program = outer.wait_spawned(1)[0].1;
    let port: u16 = port.parse().expect("port");
    let answer = outer.wait_for("an answer from the inner cluster", DEADLINE, |_| hello(port).ok());
    assert_ne!(answer, program, "the outer worker is a primary; its own worker answers");
    assert_eq!(stat(answer).map(|s| s.ppid), Some(program), "{}", outer.dump());
    // The inner primary's headless lines are its output, as any worker's.
    outer.wait_for("the inner primary's start line", DEADLINE, |events| {
        named(events, "output")
            .iter()
            .any(|e| {
                e["line"].as_str().is_some_and(|l| l.contains("web.1") && l.contains("spawned pid"))
            })
            .then_some(())
    });
    outer.signal(libc::SIGTERM);
    assert_eq!(outer.wait_exit(DEADLINE).code(), Some(0), "{}", outer.dump());
    outer.assert_nothing_left();
}
