//! The demo's background group (`__demo-worker --jobs`): a queue consumer working through
//! made-up jobs, each one an event on the channel, so the events view has something besides
//! HTTP traffic. It crashes on the same timer as the HTTP workers, with the same warning.

use std::io;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use super::{CrashClock, CrashMeans, CrashStep, Outcome, REPORT_EVERY, Reporter};
use crate::worker::Channel;

/// What the made-up jobs are, picked in turn.
const KINDS: &[&str] = &["send-email", "resize-image", "charge-card", "build-report"];

pub(super) async fn run(
    mut reporter: Reporter,
    crash_after: Duration,
    means: CrashMeans,
) -> io::Result<Outcome> {
    let pid = std::process::id();
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    reporter.report(Channel::ready);
    reporter.status("working through the queue");
    println!("Worker {pid} waiting for jobs");
    let mut rng = fastrand::Rng::new();
    let mut clock = CrashClock::new(crash_after);
    let mut done: u64 = 0;
    let mut tick = tokio::time::interval(REPORT_EVERY);
    let mut job = Job::next(&mut rng, 1);
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            next = clock.next() => match next {
                CrashStep::Crash => return Ok(Outcome::Crash),
                CrashStep::Warn => clock.warn(&mut reporter, means),
            },
            () = tokio::time::sleep_until(job.until) => {
                done += 1;
                println!("Worker {pid} finished job {} ({}) in {} ms", job.id, job.kind, job.ms);
                let event = serde_json::json!({
                    "type": "job", "id": job.id, "kind": job.kind, "ms": job.ms,
                });
                reporter.report(|channel| channel.send(&event));
                job = Job::next(&mut rng, job.id + 1);
            }
            _ = tick.tick() => {
                reporter.report(Channel::heartbeat);
                reporter.report(|channel| channel.metric("jobs", done as f64));
            }
        }
    }
    println!("Worker {pid} finishing up and stopping");
    reporter.status("stopping");
    Ok(Outcome::Stopped)
}

struct Job {
    id: u64,
    kind: &'static str,
    ms: u64,
    until: Instant,
}

impl Job {
    fn next(rng: &mut fastrand::Rng, id: u64) -> Job {
        let ms = rng.u64(200..1500);
        let kind = KINDS[(id as usize) % KINDS.len()];
        Job { id, kind, ms, until: Instant::now() + Duration::from_millis(ms) }
    }
}
