//! The demo worker (`corral __demo-worker`): the article's cluster-demo.js worker, an HTTP
//! server on the inherited socket that reports through the event channel and crashes on a
//! timer. Written only on the public `corral::worker` API; it never touches the primary.

mod crash;
mod http;
mod jobs;

use std::ffi::OsString;
use std::io;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

pub use crash::{CrashAfter, CrashAfterError, CrashMeans};

use crate::worker::{self, Channel, ListenerSocket};

/// The article's warning time between "will crash" and the crash.
const CRASH_NOTICE: Duration = Duration::from_secs(5);
/// How often the heartbeat, the `requests` metric and the status go out.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How long a graceful stop waits for in-flight requests; well under corral's kill timeout.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Runs the demo worker; `args` are the arguments after the subcommand name
/// (`[--crash-after MIN..MAX]`, default `10s..40s`).
///
/// Serves `Hello from worker <pid>` on the first inherited TCP listener until SIGTERM or
/// SIGINT (exit 0), or until its crash (see `CrashMeans`). Exit 2 for a bad argument or
/// when no listener was passed; exit 1 if the server cannot start.
///
/// ```no_run
/// // main.rs, for `corral __demo-worker ...`:
/// let args: Vec<_> = std::env::args_os().skip(2).collect();
/// let code = corral::internals::demo::worker_main(args);
/// ```
pub fn worker_main(args: Vec<OsString>) -> ExitCode {
    let DemoArgs { crash_after, jobs } = match parse_args(args) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("corral __demo-worker: {message}");
            return ExitCode::from(2);
        }
    };
    let pid = std::process::id();
    println!("Worker {pid} started");
    let listener = if jobs {
        None
    } else {
        match first_tcp_listener() {
            Ok(listener) => Some(listener),
            Err(message) => {
                eprintln!("corral __demo-worker: {message}");
                return ExitCode::from(2);
            }
        }
    };
    let means = CrashMeans::from_env();
    let reporter =
        Reporter { channel: Channel::from_env(), last_status: String::new(), last_latency: (0, 0) };
    let crash_after = crash_after.pick();
    let outcome =
        tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|runtime| {
            runtime.block_on(async move {
                match listener {
                    Some(listener) => run(listener, reporter, crash_after, means).await,
                    None => jobs::run(reporter, crash_after, means).await,
                }
            })
        });
    // The runtime is gone here: whatever happens next happens on the main thread.
    match outcome {
        Ok(Outcome::Stopped) => ExitCode::SUCCESS,
        Ok(Outcome::Crash) => crash::crash(means, pid),
        Err(error) => {
            eprintln!("Worker {pid}: {error}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct DemoArgs {
    crash_after: CrashAfter,
    /// A background worker working through made-up jobs instead of an HTTP server.
    jobs: bool,
}

/// Reads `[--jobs] [--crash-after VALUE | --crash-after=VALUE]`.
fn parse_args(args: Vec<OsString>) -> Result<DemoArgs, String> {
    let mut crash_after = CrashAfter::default();
    let mut jobs = false;
    let mut args = args.into_iter().map(|arg| {
        arg.into_string().map_err(|arg| format!("argument '{}' is not UTF-8", arg.display()))
    });
    while let Some(arg) = args.next() {
        let arg = arg?;
        if arg == "--jobs" {
            jobs = true;
            continue;
        }
        let value = if arg == "--crash-after" {
            args.next().ok_or("--crash-after needs a value like 10s..40s")??
        } else if let Some(value) = arg.strip_prefix("--crash-after=") {
            value.to_owned()
        } else {
            return Err(format!(
                "unexpected argument '{arg}' (usage: __demo-worker [--jobs] [--crash-after MIN..MAX])"
            ));
        };
        crash_after = value.parse().map_err(|e: CrashAfterError| e.to_string())?;
    }
    Ok(DemoArgs { crash_after, jobs })
}

fn first_tcp_listener() -> Result<std::net::TcpListener, String> {
    let listeners = worker::listeners().map_err(|e| format!("cannot take the listeners: {e}"))?;
    listeners
        .into_iter()
        .find_map(|listener| match listener.socket {
            ListenerSocket::Tcp(tcp) => Some(tcp),
            ListenerSocket::Unix(_) => None,
        })
        .ok_or_else(|| {
            "no TCP listening socket was passed (LISTEN_FDS); run it as `corral demo`, or \
             under corral with --listen"
                .to_owned()
        })
}

enum Outcome {
    Stopped,
    Crash,
}

async fn run(
    listener: std::net::TcpListener,
    mut reporter: Reporter,
    crash_after: Duration,
    means: CrashMeans,
) -> io::Result<Outcome> {
    let pid = std::process::id();
    // Before anything can take time: until these exist, SIGTERM kills instead of stopping.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    println!("Worker {pid} listening on {}", listener.local_addr()?);
    reporter.report(Channel::ready);

    let requests = Arc::new(AtomicU64::new(0));
    let (stop, stop_requested) = watch::channel(false);
    let mut http_task =
        tokio::spawn(http::serve(listener, Arc::clone(&requests), stop_requested, SHUTDOWN_GRACE));
    let mut clock = CrashClock::new(crash_after);
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            next = clock.next() => match next {
                CrashStep::Crash => return Ok(Outcome::Crash),
                CrashStep::Warn => {
                    clock.warn(&mut reporter, means);
                    let served = requests.load(Ordering::Relaxed);
                    reporter.status(&status_text(served, clock.crash_at, means));
                }
            },
            _ = tick.tick() => {
                reporter.report(Channel::heartbeat);
                let served = requests.load(Ordering::Relaxed);
                reporter.metrics(served);
                reporter.status(&status_text(served, clock.crash_at, means));
            }
            ended = &mut http_task => {
                return Err(io::Error::other(format!("the HTTP server stopped: {ended:?}")));
            }
        }
    }
    println!("Worker {pid} shutting down gracefully");
    reporter.status("shutting down");
    let _ = stop.send(true);
    http_task.await.map_err(io::Error::other)?;
    Ok(Outcome::Stopped)
}

/// The crash timeline every demo worker follows: a warning after its random time, the
/// crash `CRASH_NOTICE` later.
struct CrashClock {
    announce_at: Instant,
    crash_at: Option<Instant>,
}

enum CrashStep {
    Warn,
    Crash,
}

impl CrashClock {
    fn new(after: Duration) -> CrashClock {
        CrashClock { announce_at: Instant::now() + after, crash_at: None }
    }

    async fn next(&self) -> CrashStep {
        if let Some(at) = self.crash_at {
            tokio::time::sleep_until(at).await;
            CrashStep::Crash
        } else {
            tokio::time::sleep_until(self.announce_at).await;
            CrashStep::Warn
        }
    }

    /// Says the crash is coming, on stdout and as a custom event (counted and charted in
    /// the metrics view).
    fn warn(&mut self, reporter: &mut Reporter, means: CrashMeans) {
        println!("Worker {} will crash in 5 seconds...", std::process::id());
        self.crash_at = Some(Instant::now() + CRASH_NOTICE);
        let warning = serde_json::json!({
            "type": "crash_warning",
            "in_ms": CRASH_NOTICE.as_millis() as u64,
            "means": means.to_string(),
        });
        reporter.report(|channel| channel.send(&warning));
    }
}

/// The worker's row in the dashboard: its traffic, or its countdown once announced.
fn status_text(requests: u64, crash_at: Option<Instant>, means: CrashMeans) -> String {
    let noun = if requests == 1 { "request" } else { "requests" };
    match crash_at {
        None => format!("serving, {requests} {noun}"),
        Some(at) => {
            let left = at.saturating_duration_since(Instant::now());
            // Round up, so the countdown starts at the announced 5 s and never shows 0.
            let secs = left.as_millis().div_ceil(1000).max(1);
            format!("crashing in {secs}s by {means}, {requests} {noun}")
        }
    }
}

/// The event channel, if any, as the demo uses it: reports are best effort, and after the
/// first failure (the primary closed the channel) the worker stops reporting and serves on.
struct Reporter {
    channel: Option<Channel>,
    /// The last status sent, so an unchanged status is not repeated every second.
    last_status: String,
    /// Requests and microseconds at the last report, for the latency of the last second.
    last_latency: (u64, u64),
}

impl Reporter {
    fn report(&mut self, send: impl FnOnce(&Channel) -> io::Result<()>) {
        if let Some(channel) = &self.channel
            && let Err(error) = send(channel)
        {
            eprintln!("Worker {}: event channel: {error}; reporting stops", std::process::id());
            self.channel = None;
        }
    }

    /// The numbers the metrics view charts: requests served, the mean latency of the last
    /// second's requests (only when there were some), connections accepted.
    fn metrics(&mut self, served: u64) {
        self.report(|channel| channel.metric("requests", served as f64));
        let micros = http::LATENCY_US.load(Ordering::Relaxed);
        let (before_served, before_micros) =
            std::mem::replace(&mut self.last_latency, (served, micros));
        if let Some(n) = served.checked_sub(before_served).filter(|&n| n > 0) {
            let ms = micros.saturating_sub(before_micros) as f64 / n as f64 / 1000.0;
            self.report(|channel| channel.metric("latency_ms", ms));
        }
        let connections = http::CONNECTIONS.load(Ordering::Relaxed);
        self.report(|channel| channel.metric("connections", connections as f64));
    }

    fn status(&mut self, text: &str) {
        if self.last_status != text {
            text.clone_into(&mut self.last_status);
            self.report(|channel| channel.status(text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn arguments_set_the_crash_range() {
        let secs = Duration::from_secs;
        let http = |crash_after| Ok(DemoArgs { crash_after, jobs: false });
        assert_eq!(parse_args(args(&[])), http(CrashAfter::default()));
        let range = parse_args(args(&["--crash-after", "1s..2s"]));
        assert_eq!(range, http(CrashAfter { min: secs(1), max: secs(2) }));
        let fixed = parse_args(args(&["--crash-after=3s"]));
        assert_eq!(fixed, http(CrashAfter { min: secs(3), max: secs(3) }));
        let jobs = parse_args(args(&["--jobs", "--crash-after=3s"])).expect("jobs");
        assert!(jobs.jobs);
    }

    #[test]
    fn argument_errors_are_one_clear_line() {
        assert_eq!(
            parse_args(args(&["--crash-after"])),
            Err("--crash-after needs a value like 10s..40s".to_owned())
        );
        let reversed = parse_args(args(&["--crash-after", "9s..1s"]));
        assert_eq!(
            reversed,
            Err("invalid --crash-after '9s..1s': MIN is longer than MAX".to_owned())
        );
        let unknown = parse_args(args(&["--port", "3000"])).expect_err("unknown");
        assert!(unknown.starts_with("unexpected argument '--port'"), "{unknown}");
    }

    #[test]
    fn status_counts_requests_then_counts_down() {
        let means = CrashMeans::Abort;
        assert_eq!(status_text(0, None, means), "serving, 0 requests");
        assert_eq!(status_text(1, None, means), "serving, 1 request");
        let at = Instant::now() + CRASH_NOTICE;
        assert_eq!(status_text(42, Some(at), means), "crashing in 5s by abort, 42 requests");
        let past = Instant::now();
        assert_eq!(status_text(2, Some(past), means), "crashing in 1s by abort, 2 requests");
    }

    #[test]
    fn reporter_stops_after_the_primary_goes_away() {
        let (ours, primary) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        drop(primary);
        let mut reporter = Reporter {
            channel: Some(Channel::from_fd(ours.into())),
            last_status: String::new(),
            last_latency: (0, 0),
        };
        reporter.report(Channel::heartbeat);
        assert!(reporter.channel.is_none());
        reporter.status("still serving");
    }
}
