//! Zero downtime on a shared port (issue: rolling reload, scaling, chaos): bounded request
//! loops on 127.0.0.1 against the demo workers while corral reloads, scales, or loses a
//! worker every 500 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::util::http::hello;
use crate::util::{Corral, DEADLINE, free_port, named, of_worker, send_signal, spawned};

/// Requests sent back to back by one client thread until stopped (bounded anyway).
pub struct Load {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Vec<u32>, Vec<String>)>,
}

/// At most this many requests per client, so a test can never loop forever.
const MAX_REQUESTS: usize = 20_000;

impl Load {
    pub fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (mut answers, mut failures) = (Vec::new(), Vec::new());
            for _ in 0..MAX_REQUESTS {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                match hello(port) {
                    Ok(pid) => answers.push(pid),
                    Err(e) => failures.push(e),
                }
            }
            (answers, failures)
        });
        Load { stop, thread }
    }

    /// (pids that answered, in order; failures)
    pub fn finish(self) -> (Vec<u32>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("client thread")
    }
}

fn demo(workers: &str) -> (Corral, u16) {
    let port = free_port();
    let p = port.to_string();
    let corral =
        Corral::start(&["demo", "--port", &p, "--crash-after", "1h", "-w", workers, "--jobs", "0"]);
    let first = corral.wait_spawned(workers.parse().expect("workers"));
    corral.wait_for("every demo worker ready", DEADLINE, |events| {
        first.iter().all(|&(w, _)| !of_worker(events, "ready", w).is_empty()).then_some(())
    });
    (corral, port)
}

/// Lets the load run a while (the client keeps going in its thread).
fn let_run(d: Duration) {
    std::thread::sleep(d);
}

#[test]
fn a_rolling_reload_under_load_fails_no_request_and_replaces_every_pid() {
    let (corral, port) = demo("3");
    let before: Vec<u32> = spawned(&corral.events()).into_iter().map(|(_, pid)| pid).collect();
    let load = Load::start(port);
    let_run(Duration::from_millis(300));
    corral.signal(libc::SIGHUP);
    let finished = corral.wait_for("reload_finished", DEADLINE, |events| {
        named(events, "reload_finished").first().map(|e| (*e).clone())
    });
    let_run(Duration::from_millis(300));
    let (answers, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} failed requests during the reload: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(finished["replaced"], 3, "{finished}");
    assert_eq!(finished["failed"], false);
    let events = corral.events();
    let after: Vec<u32> = (1..=3)
        .map(|w| {
            spawned(&events)
                .into_iter()
                .filter(|&(s, _)| s == w)
                .map(|(_, pid)| pid)
                .next_back()
                .expect("pid")
        })
        .collect();
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "every pid replaced: {before:?} → {after:?}"
    );
    let reloads: Vec<_> =
        named(&events, "exited").into_iter().filter(|e| e["reason"] == "reload").collect();
    assert_eq!(reloads.len(), 3, "each old worker stopped with reason reload");
    assert!(answers.iter().rev().take(10).all(|p| after.contains(p)), "new workers serve after it");
    assert!(answers.len() > 20, "the load really ran: {} requests", answers.len());
}

#[test]
fn scaling_up_and_down_under_load_fails_no_request() {
    let (corral, port) = demo("2");
    let load = Load::start(port);
    let_run(Duration::from_millis(200));
    for (signal, workers) in
        [(libc::SIGTTIN, 3), (libc::SIGTTIN, 4), (libc::SIGTTOU, 3), (libc::SIGTTOU, 2)]
    {
        corral.signal(signal);
        corral.wait_for(&format!("scaled to {workers}"), DEADLINE, |events| {
            named(events, "scaled").iter().any(|e| e["workers"] == workers).then_some(())
        });
        let_run(Duration::from_millis(200));
    }
    corral.wait_for("both scaled-down workers gone", DEADLINE, |events| {
        let down = named(events, "exited").into_iter().filter(|e| e["reason"] == "scaled_down");
        (down.count() == 2).then_some(())
    });
    let_run(Duration::from_millis(200));
    let (answers, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} failed requests while scaling: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(answers.len() > 20, "the load really ran: {} requests", answers.len());
    let events = corral.events();
    let started: Vec<u64> = spawned(&events).into_iter().map(|(w, _)| w).collect();
    assert!(
        started.contains(&3) && started.contains(&4),
        "workers 3 and 4 were added: {started:?}"
    );
    let down: Vec<_> =
        named(&events, "exited").into_iter().filter(|e| e["reason"] == "scaled_down").collect();
    let removed: Vec<u64> = down.iter().filter_map(|e| e["worker"].as_u64()).collect();
    assert_eq!(removed, vec![4, 3], "the highest-numbered workers go first");
}

#[test]
fn killing_a_worker_every_500ms_keeps_99_percent_success() {
    let (corral, port) = demo("2");
    let load = Load::start(port);
    let t0 = Instant::now();
    let mut kills = 0;
    while t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(500));
        // The most recently spawned live pid of worker 1 or 2, alternating.
        let slot = 1 + kills % 2;
        let pid = spawned(&corral.events())
            .into_iter()
            .filter(|&(w, _)| w == slot)
            .map(|(_, p)| p)
            .next_back();
        if let Some(pid) = pid {
            send_signal(pid, libc::SIGKILL);
            kills += 1;
        }
    }
    let_run(Duration::from_millis(300));
    let (answers, failures) = load.finish();
    let total = answers.len() + failures.len();
    let rate = answers.len() as f64 / total as f64;
    assert!(kills >= 8, "the chaos really ran: {kills} kills");
    assert!(total > 50, "the load really ran: {total} requests");
    assert!(
        rate >= 0.99,
        "success {:.2}% ({} of {total}); failures: {:?}",
        rate * 100.0,
        answers.len(),
        &failures[..failures.len().min(5)]
    );
}
