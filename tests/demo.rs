//! The demo (README.md): two HTTP workers share one port; killing one in the middle of a run
//! of requests costs at most the request in flight, and its replacement serves again.

use crate::util::http::hello;
use crate::util::{
    Corral, DEADLINE, free_port, of_worker, pid_alive, send_signal, spawned, wait_until,
};

const REQUESTS: usize = 200;
const KILL_AT: usize = 100;
/// A request in flight on the killed worker may fail (reset or closed); nothing else may.
const ALLOWED_FAILURES: usize = 2;

#[test]
fn demo_serves_through_a_worker_kill() {
    let port = free_port().to_string();
    let mut corral = Corral::start_raw(&[
        "demo",
        "--port",
        &port,
        "--crash-after",
        "60s",
        "--no-ui",
        "--log-format",
        "json",
        "-w",
        "2",
        "--jobs",
        "0",
    ]);
    let port: u16 = port.parse().expect("port");
    let first = corral.wait_spawned(2);
    corral.wait_for("both demo workers ready", DEADLINE, |events| {
        first.iter().all(|&(w, _)| !of_worker(events, "ready", w).is_empty()).then_some(())
    });
    let (victim, victim_pid) = first[0];

    let mut answers: Vec<(usize, u32)> = Vec::new();
    let mut failures: Vec<(usize, String)> = Vec::new();
    for i in 0..REQUESTS {
        if i == KILL_AT {
            assert!(send_signal(victim_pid, libc::SIGKILL), "demo worker {victim_pid} is gone");
        }
        match hello(port) {
            Ok(pid) => answers.push((i, pid)),
            Err(error) => failures.push((i, error)),
        }
    }
    assert!(failures.len() <= ALLOWED_FAILURES, "failed requests: {failures:?}\n{}", corral.dump());
    let known: Vec<u32> = spawned(&corral.events()).into_iter().map(|(_, pid)| pid).collect();
    for &(i, pid) in &answers {
        assert!(known.contains(&pid), "request {i} answered by {pid}, not a worker: {known:?}");
        // SIGKILL is final once kill(2) returns: the victim runs no more code.
        assert!(i < KILL_AT || pid != victim_pid, "request {i} answered by the killed worker");
    }

    // The slot comes back under a new pid, and that pid serves too. Which worker accepts a
    // connection is the kernel's choice, so keep asking (bounded) until the new one does.
    let replacement = corral.wait_for("the killed worker's replacement", DEADLINE, |events| {
        spawned(events).into_iter().filter(|&(w, _)| w == victim).nth(1).map(|(_, pid)| pid)
    });
    assert_ne!(replacement, victim_pid);
    let answered = wait_until(DEADLINE, || hello(port) == Ok(replacement));
    assert!(answered, "the replacement {replacement} never answered\n{}", corral.dump());
    let events = corral.events();
    let exited = of_worker(&events, "exited", victim);
    assert_eq!(exited.first().map(|e| &e["signal"]), Some(&"SIGKILL".into()), "{exited:?}");
    assert_eq!(exited.first().map(|e| &e["reason"]), Some(&"crashed".into()), "{exited:?}");
    assert!(!pid_alive(victim_pid), "the killed worker {victim_pid} is still alive");

    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

/// The whole demo: beside the HTTP group, a group of job workers whose jobs arrive as events.
#[test]
fn the_demo_runs_job_workers_beside_the_http_ones() {
    let port = free_port().to_string();
    let mut corral = Corral::start_raw(&[
        "demo",
        "--port",
        &port,
        "--crash-after",
        "60s",
        "--no-ui",
        "--log-format",
        "json",
    ]);
    let events = corral.wait_for("a job done", DEADLINE, |events| {
        events
            .iter()
            .any(|e| e["event"] == "message" && e["group"] == "jobs" && e["data"]["type"] == "job")
            .then(|| events.to_vec())
    });
    let mut groups: Vec<(String, u64)> = events
        .iter()
        .filter(|e| e["event"] == "spawned")
        .map(|e| {
            (e["group"].as_str().unwrap_or_default().to_string(), e["worker"].as_u64().unwrap_or(0))
        })
        .collect();
    groups.sort();
    let expected =
        [("jobs", 1), ("jobs", 2), ("web", 1), ("web", 2)].map(|(g, w)| (g.to_string(), w));
    assert_eq!(groups, expected, "{}", corral.dump());
    let port: u16 = port.parse().expect("port");
    assert!(hello(port).is_ok(), "the HTTP group answers\n{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}
