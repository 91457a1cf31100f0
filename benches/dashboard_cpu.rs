//! corral's CPU with the dashboard on, in a real pseudo-terminal: 64 idle workers (goal:
//! under 1% of a core), then the same with one worker flooding its output (goal: under one
//! core, and the keys still answer: the time from pressing `?` to the help on screen).
//!
//! `cargo bench --bench dashboard_cpu`; under `cargo test` a short smoke run.

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
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_corral"));
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
    let window = if full { Duration::from_secs(20) } else { Duration::from_secs(1) };

    let idle = start("exec sleep 3600");
    wait_screen(&idle, "64/64 up", Duration::from_secs(30)).expect("64 workers on screen");
    std::thread::sleep(Duration::from_secs(2)); // the first CPU samples settle
    let idle_cpu = measure(&idle, window);
    stop(idle);

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

    println!("\ndashboard CPU ({} s windows, 64 workers, 120×40 pty)", window.as_secs());
    // A smoke run (debug build, `cargo test`) only checks that the bench works: goals
    // are for release runs, so it states none.
    let goal = |text: &'static str| if full { text } else { "" };
    println!("  idle:                    {idle_cpu:5.2}% of one core{}", goal(" (goal: under 1%)"));
    println!(
        "  one worker floods (yes): {flood_cpu:5.1}% of one core{}",
        goal(" (goal: under 100%)")
    );
    match help {
        Some(t) => {
            println!("  '?' → help on screen during the flood: {:.0} ms", t.as_secs_f64() * 1000.0);
        }
        None => println!("  '?' → help on screen during the flood: did not appear in 30 s"),
    }
}
