//! corral's CPU with the dashboard on, in a real pseudo-terminal: 64 idle workers (goal:
//! under 1% of a core), then the same with one worker flooding its output (goal: under one
//! core, and the keys still answer: the time from pressing `?` to the help on screen).
//!
//! Then the metrics history (docs/dashboard.md#the-profiler-view): every worker reports 10 metric series, and `m` shows
//! them; first the workers stop reporting after 5 s (idle with a full history: goal under
//! 1% too), then they keep reporting every second. Memory: corral's resident size with
//! 64 × 10 series against the idle run without any (goal: under 2 MiB more).
//!
//! `cargo bench --bench dashboard_cpu`; under `cargo test` a short smoke run.
//! `CORRAL_BENCH_PARTS=idle` measures only the idle dashboard (the others: `metrics`,
//! `flood`); `CORRAL_BENCH_WINDOW` sets the window in seconds (default 20, smoke 1);
//! `CORRAL_BENCH_BIN` measures another corral binary.

mod common;

use common::cpu_seconds;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

struct Run {
    pid: u32,
    screen: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

fn start(script: &str) -> Run {
    let pair = native_pty_system()
        .openpty(PtySize { rows: 40, cols: 120, pixel_width: 0, pixel_height: 0 })
        .expect("pty");
    let mut cmd = CommandBuilder::new(common::corral_bin());
    // A control socket of its own: another corral named `sh` may be running.
    cmd.env(
        "XDG_RUNTIME_DIR",
        std::env::temp_dir().join(format!("corral-bench-{}", std::process::id())),
    );
    cmd.args(["-w", "64", "--", "sh", "-c", script]);
    cmd.env("TERM", "xterm-256color");
    let child = pair.slave.spawn_command(cmd).expect("spawn corral");
    drop(pair.slave);
    let size = |n: u16| std::num::NonZeroU16::new(n).expect("non-zero");
    let screen = Arc::new(Mutex::new(vt100::Parser::new(size(40), size(120), 0)));
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let sink = Arc::clone(&screen);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut p) = sink.lock() {
                p.process(&buf[..n]);
            }
        }
    });
    let writer = pair.master.take_writer().expect("writer");
    std::mem::forget(pair.master); // keep the terminal open for the run
    let pid = child.process_id().expect("pid");
    Run { pid, screen, writer, child }
}

fn wait_screen(run: &Run, what: &str, deadline: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < deadline {
        if run.screen.lock().is_ok_and(|p| p.screen().contents().contains(what)) {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if let Ok(p) = run.screen.lock() {
        eprintln!("screen while waiting for {what:?}:\n{}", p.screen().contents());
    }
    None
}

fn measure(run: &Run, window: Duration) -> f64 {
    let c0 = cpu_seconds(run.pid).unwrap_or(0.0);
    std::thread::sleep(window);
    (cpu_seconds(run.pid).unwrap_or(c0) - c0) / window.as_secs_f64() * 100.0
}

/// Resident kilobytes of a process, from `/proc`.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the metrics history itself costs, measured in this process: 64 workers' full
/// 5-minute histories of 10 series each, plus their CPU and memory series, as corral keeps
/// them (the RSS difference, in KiB).
fn history_kib() -> u64 {
    use corral::internals::runtime::logs::WorkerMetrics;
    use corral::internals::runtime::logs::history::{History, Kind};
    let before = rss_kib(std::process::id()).unwrap_or(0);
    let mut workers: Vec<WorkerMetrics> = (0..64).map(|_| WorkerMetrics::default()).collect();
    let mut usage: Vec<[History; 2]> =
        (0..64).map(|_| [History::new(Kind::Gauge), History::new(Kind::Gauge)]).collect();
    let names: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    for second in 1..=600u64 {
        for (m, u) in workers.iter_mut().zip(&mut usage) {
            for name in &names {
                let data = serde_json::json!({"type": "metric", "name": name, "value": second});
                m.record(second, 1, &data);
            }
            u[0].set(second, 1, 1.0);
            u[1].set(second, 1, 1.0);
        }
    }
    let after = rss_kib(std::process::id()).unwrap_or(0);
    std::hint::black_box((&workers, &usage));
    after.saturating_sub(before)
}

/// A worker that sends 10 metrics a second, `rounds` times, then sleeps.
fn reporting(rounds: u32) -> String {
    format!(
        r#"i=0; while :; do i=$((i+1)); for m in 0 1 2 3 4 5 6 7 8 9; do printf '{{"type":"metric","name":"m%s","value":%s}}\n' $m $i >&"$CORRAL_EVENT_FD"; done; [ $i -ge {rounds} ] && exec sleep 3600; sleep 1; done"#
    )
}

/// Starts 64 reporting workers, opens the metrics view, waits until it charts `m9`.
fn start_metrics(rounds: u32) -> Run {
    let mut run = start(&reporting(rounds));
    wait_screen(&run, "64/64 up", Duration::from_secs(30)).expect("64 workers on screen");
    let _ = run.writer.write_all(b"m");
    let _ = run.writer.flush();
    wait_screen(&run, "m9", Duration::from_secs(30)).expect("the metrics view");
    run
}

fn stop(mut run: Run) {
    let _ = run.writer.write_all(b"q");
    let _ = run.writer.flush();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(_)) = run.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = run.child.kill();
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let window = std::env::var("CORRAL_BENCH_WINDOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|_| full)
        .map_or(if full { Duration::from_secs(20) } else { Duration::from_secs(1) }, |s| {
            Duration::from_secs(s)
        });
    println!("\ndashboard CPU ({} s windows, 64 workers, 120×40 pty)", window.as_secs());
    // A smoke run (debug build, `cargo test`) only checks that the bench works: goals
    // are for release runs, so it states none.
    let goal = |text: &'static str| if full { text } else { "" };

    let mut idle_rss = None;
    if common::wants("idle") {
        let idle = start("exec sleep 3600");
        wait_screen(&idle, "64/64 up", Duration::from_secs(30)).expect("64 workers on screen");
        std::thread::sleep(Duration::from_secs(2)); // the first CPU samples settle
        let idle_cpu = measure(&idle, window);
        idle_rss = rss_kib(idle.pid);
        stop(idle);
        common::record("dashboard_idle_pct", idle_cpu);
        println!(
            "  idle:                    {idle_cpu:5.2}% of one core{}",
            goal(" (goal: under 1%)")
        );
    }

    if common::wants("metrics") {
        let quiet = start_metrics(5);
        std::thread::sleep(Duration::from_secs(6)); // the last reports are in
        let quiet_cpu = measure(&quiet, window);
        let quiet_rss = rss_kib(quiet.pid).unwrap_or(0);
        stop(quiet);

        let live = start_metrics(u32::MAX);
        let live_cpu = measure(&live, window);
        stop(live);
        println!(
            "  metrics view, 64×10 series, idle:   {quiet_cpu:5.2}%{}",
            goal(" (goal: under 1%)")
        );
        println!("  metrics view, 640 metrics a second: {live_cpu:5.2}%");
        println!(
            "  metrics history of 64 workers × (10 + CPU + memory) series, 5 min full: {} KiB{}",
            history_kib(),
            goal(" (goal: under 2048)")
        );
        if let Some(idle_rss) = idle_rss {
            let added = quiet_rss.saturating_sub(idle_rss);
            println!(
                "  resident: {idle_rss} KiB without metrics, {quiet_rss} KiB with 64×10 series \
                 (+{added} KiB: the history and the events view's tail of those messages)"
            );
        }
    }

    if common::wants("flood") {
        let flood = start(
            r#"if [ "$CORRAL_WORKER_ID" = 1 ]; then exec yes "flood flood flood"; else exec sleep 3600; fi"#,
        );
        wait_screen(&flood, "64/64 up", Duration::from_secs(30)).expect("64 workers on screen");
        let flood_cpu = measure(&flood, window);
        let mut flood = flood;
        let _ = flood.writer.write_all(b"?");
        let _ = flood.writer.flush();
        let help = wait_screen(&flood, "Ctrl-Z", Duration::from_secs(30));
        stop(flood);
        println!(
            "  one worker floods (yes): {flood_cpu:5.1}% of one core{}",
            goal(" (goal: under 100%)")
        );
        match help {
            Some(t) => {
                println!(
                    "  '?' → help on screen during the flood: {:.0} ms",
                    t.as_secs_f64() * 1000.0
                );
            }
            None => println!("  '?' → help on screen during the flood: did not appear in 30 s"),
        }
    }
}
