//! What a Prometheus scrape of 1,000 workers costs (`--metrics`, docs/production.md#prometheus):
//!
//! - render: the exposition (`OpenMetrics` text) of a 1,000-worker model, in process
//!   (`corral::internals::fleet::metrics::render`), without metrics of the workers' own and with 10
//!   `metric` names each;
//! - serve: `GET /metrics` over loopback from the real endpoint, a new model published
//!   before each request so every scrape renders (connect, render, transfer);
//! - whole corral: `corral -w 1000 --metrics PORT -- sleep …`, scraped once a second (each
//!   scrape then asks the supervision loop for a fresh model: snapshot, usage, counters),
//!   and back to back (within the second: the model and text already made); and the
//!   loop's own share, as corral logs it at debug level (`metrics model published`).
//!
//! `cargo bench --bench metrics_scrape` runs the full measurement. Under `cargo test` it
//! runs a small smoke version (20 workers, a few scrapes) so it cannot rot, and states no
//! goal.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corral::internals::core::WorkerState;
use corral::internals::fleet::metrics::{
    EXIT_REASONS, GroupModel, Model, WorkerModel, render, state_index,
};
use corral::internals::fleet::metrics_server;

fn model(workers: u32, names: u32) -> Model {
    let groups = vec![GroupModel {
        name: "web".into(),
        workers,
        exits: [7; EXIT_REASONS.len()],
        messages: 123_456_789,
        protocol_errors: 3,
    }];
    let workers = (1..=workers)
        .map(|slot| WorkerModel {
            group: 0,
            slot,
            state: state_index(&WorkerState::Running),
            up: true,
            restarts: slot % 5,
            uptime: f64::from(slot) * 7.25,
            cpu: Some(0.031),
            memory: Some(40 << 20),
            metrics: (0..names).map(|i| (format!("metric_{i}"), f64::from(slot * i))).collect(),
            metrics_dropped: 0,
        })
        .collect();
    Model { instance: "bench".into(), groups, workers, problems: Vec::new() }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let workers = if full { 1000 } else { 20 };
    let runs = if full { 300 } else { 3 };

    let mut sizes = Vec::new();
    let mut renders = Vec::new();
    for names in [0, 10] {
        let m = Arc::new(model(workers, names));
        let mut text = String::new();
        renders.push(timed(runs, || {
            text.clear();
            render(&m, &mut text).expect("render");
        }));
        let series = text.lines().filter(|l| !l.starts_with('#')).count();
        sizes.push(format!("{names} names each: {series} series, {} KiB", text.len() / 1024));
    }

    let served = serve_in_process(workers, runs);
    let (fresh, cached, loop_share) = whole_corral(workers, if full { 20 } else { 2 }, runs);

    let build = if full { "release" } else { "test/debug smoke" };
    println!("\n/metrics with {workers} workers ({build} build)");
    println!("exposition: {}\n", sizes.join("; "));
    println!("{:<52} {:>9} {:>9}", "", "median", "p99");
    for (name, v) in [
        ("render, no metrics of their own (in process)", &renders[0]),
        ("render, 10 metric names each (in process)", &renders[1]),
        ("GET /metrics, 10 names each, new model each time", &served),
        ("whole corral: scrape 1 s apart (fresh model)", &fresh),
        ("whole corral: scrapes back to back (same model)", &cached),
        ("whole corral: the supervision loop's share (fresh)", &loop_share),
    ] {
        let (median, p99) = stats(v);
        println!("{name:<52} {median:>6.3} ms {p99:>6.3} ms");
    }
    if full {
        println!("\ngoal: a scrape of 1000 workers under 5 ms");
    }
}

/// Milliseconds of each of `n` runs of `f`.
fn timed(n: usize, mut f: impl FnMut()) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

fn stats(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let at = |q: usize| s[(s.len() * q / 100).min(s.len() - 1)];
    (at(50), at(99))
}

/// One `GET /metrics`; the body's length.
fn scrape(addr: SocketAddr) -> usize {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let head = "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).expect("send");
    let mut response = Vec::with_capacity(4 << 20);
    stream.read_to_end(&mut response).expect("read");
    assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"), "not a 200");
    assert!(response.ends_with(b"# EOF\n"), "cut short");
    response.len()
}

fn serve_in_process(workers: u32, runs: usize) -> Vec<f64> {
    let listener = metrics_server::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let publisher = metrics_server::start(listener, "bench".into()).expect("start");
    let m = model(workers, 10);
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        publisher.publish(m.clone());
        let t = Instant::now();
        scrape(addr);
        out.push(t.elapsed().as_secs_f64() * 1e3);
    }
    out
}

struct Corral(Child);

impl Drop for Corral {
    fn drop(&mut self) {
        // SAFETY: kill with integer arguments.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// The `took_us` of every `metrics model published` line corral logs, in milliseconds.
fn loop_times(stderr: impl Read + Send + 'static) -> Arc<Mutex<Vec<f64>>> {
    let times = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&times);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let took = line.split_once("took_us=").and_then(|(_, v)| v.trim().parse::<f64>().ok());
            if let (Some(us), Ok(mut v)) = (took, sink.lock()) {
                v.push(us / 1e3);
            }
        }
    });
    times
}

/// Scrapes of a real corral running `workers` sleeps: `fresh` ones a second apart (each
/// makes the loop build a model), then `runs` back to back; and the loop's share of each.
fn whole_corral(workers: u32, fresh: usize, runs: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let mut corral = Corral(
        Command::new(common::corral_bin())
            // A control socket of its own: another corral of the same name may run.
            .env(
                "XDG_RUNTIME_DIR",
                std::env::temp_dir().join(format!("corral-bench-{}", std::process::id())),
            )
            .args(["--no-ui", "--log-format", "json", "-w", &workers.to_string()])
            .args(["--metrics", &port.to_string(), "--", "sleep", "100000"])
            .env("RUST_LOG", "corral::runtime::metrics_glue=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start corral"),
    );
    let logged = loop_times(corral.0.stderr.take().expect("stderr"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let up =
        format!("corral_worker_up{{instance=\"sleep\",group=\"sleep\",worker=\"{workers}\"}} 1");
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let body = TcpStream::connect(addr).ok().and_then(|mut s| {
            s.write_all(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n").ok()?;
            let mut text = String::new();
            s.read_to_string(&mut text).ok()?;
            Some(text)
        });
        if body.is_some_and(|b| b.contains(&up)) {
            break;
        }
        assert!(Instant::now() < deadline, "corral's {workers} workers never all came up");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut fresh_times = Vec::with_capacity(fresh);
    let before = logged.lock().map_or(0, |v| v.len());
    for _ in 0..fresh {
        std::thread::sleep(metrics_server::FRESH + Duration::from_millis(50));
        let t = Instant::now();
        scrape(addr);
        fresh_times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let loop_share = logged.lock().map(|v| v[before..].to_vec()).unwrap_or_default();
    let cached = timed(runs, || {
        scrape(addr);
    });
    drop(corral);
    (fresh_times, cached, loop_share)
}
