//! systemd's notification protocol (`Type=notify`, `Type=notify-reload`, `WatchdogSec=`):
//! datagrams of `KEY=VALUE` lines to the socket named by `NOTIFY_SOCKET`. corral says
//! `READY=1` once every worker of every group is up, `STATUS=` with its summary when it
//! changes, `RELOADING=1` then `READY=1` around a rolling reload, `STOPPING=1` at shutdown,
//! and `WATCHDOG=1` from the supervision loop itself, so a stuck loop is caught.
//!
//! Nothing here may hurt supervision: a send that fails is logged once and forgotten.

use std::collections::VecDeque;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::time::{ClockId, clock_gettime};

/// `STATUS=` goes out at most this often.
const STATUS_EVERY: Duration = Duration::from_secs(1);

pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// A quarter of `WATCHDOG_USEC`, when the watchdog is on and meant for corral.
    watchdog: Option<Duration>,
    /// When `WATCHDOG=1` last went out.
    pinged: Option<Instant>,
    ready: bool,
    reloading: bool,
    status: String,
    status_at: Option<Instant>,
    failed: bool,
    /// State changes the manager has not taken yet (its queue was full): sent again on the
    /// next tick, in order. Status lines and pings are not kept: the next one replaces them.
    unsent: VecDeque<String>,
}

/// At most this many state changes wait for a manager that does not read.
const UNSENT_MAX: usize = 16;

impl Notifier {
    /// From `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace); `None` when
    /// corral is not run by a service manager that listens.
    pub fn from_env() -> Option<Notifier> {
        let target = std::env::var_os("NOTIFY_SOCKET")?;
        let target = target.to_str()?;
        let addr = match target.strip_prefix('@') {
            Some(name) => {
                <SocketAddr as SocketAddrExt>::from_abstract_name(name.as_bytes()).ok()?
            }
            None => SocketAddr::from_pathname(target).ok()?,
        };
        let socket = match UnixDatagram::unbound() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot notify the service manager: {e}");
                return None;
            }
        };
        // WHY nonblocking: a manager that stopped reading must not stall supervision.
        let _ = socket.set_nonblocking(true);
        Some(Notifier {
            socket,
            addr,
            watchdog: watchdog_interval(),
            pinged: None,
            ready: false,
            reloading: false,
            status: String::new(),
            status_at: None,
            failed: false,
            unsent: VecDeque::new(),
        })
    }

    /// How often `WATCHDOG=1` must go out, if at all.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    pub fn ready_sent(&self) -> bool {
        self.ready
    }

    /// Every worker is up: `READY=1`, once (again only after a reload).
    pub fn ready(&mut self) {
        if !self.ready {
            self.ready = true;
            self.change("READY=1".to_string());
        }
    }

    /// `RELOADING=1`, only once `READY=1` was said: a service still starting has nothing to
    /// reload in its manager's eyes, and `READY=1` comes when it is up.
    pub fn reloading(&mut self) {
        if self.ready && !self.reloading {
            self.reloading = true;
            self.change(format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
        }
    }

    pub fn reloaded(&mut self) {
        if self.reloading {
            self.reloading = false;
            self.change("READY=1".to_string());
        }
    }

    pub fn stopping(&mut self) {
        self.reloading = false;
        self.change("STOPPING=1".to_string());
    }

    /// `WATCHDOG=1` when one is due.
    pub fn watchdog_if_due(&mut self, now: Instant) {
        let Some(every) = self.watchdog else { return };
        if self.pinged.is_none_or(|at| now.saturating_duration_since(at) >= every) {
            self.pinged = Some(now);
            self.watchdog_ping();
        }
    }

    /// Also retries state changes the manager could not take before.
    fn watchdog_ping(&mut self) {
        self.retry();
        self.send("WATCHDOG=1");
    }

    /// A state change must reach the manager: kept and retried if its queue is full.
    fn change(&mut self, message: String) {
        if self.unsent.len() >= UNSENT_MAX {
            self.unsent.pop_front();
        }
        self.unsent.push_back(message);
        self.retry();
    }

    /// Sends what is still unsent, in order, until the manager's queue is full again.
    pub fn retry(&mut self) {
        while let Some(message) = self.unsent.front() {
            match self.socket.send_to_addr(message.as_bytes(), &self.addr) {
                Ok(_) => {
                    self.unsent.pop_front();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.report(&e);
                    self.unsent.pop_front();
                }
            }
        }
    }

    /// `STATUS=…` when the text changed, at most once a second; true when it was sent.
    pub fn status(&mut self, now: Instant, text: &str) -> bool {
        if text == self.status || self.status_at.is_some_and(|t| now - t < STATUS_EVERY) {
            return false;
        }
        self.status_at = Some(now);
        self.status = text.to_string();
        self.send(&format!("STATUS={text}"));
        true
    }

    fn send(&mut self, message: &str) {
        match self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            Ok(_) => {}
            // The manager's queue is full: this one is replaced by the next.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => self.report(&e),
        }
    }

    fn report(&mut self, e: &std::io::Error) {
        if !self.failed {
            self.failed = true;
            tracing::warn!("cannot notify the service manager: {e}");
        }
    }
}

/// `WATCHDOG_USEC`/2, when set and meant for this process (`WATCHDOG_PID`, if set, is ours).
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    // WHY a quarter, not systemd's suggested half: a ping that comes a little late (a turn
    // of the loop under load) still lands well inside the first half of the period.
    (usec > 0).then(|| Duration::from_micros(usec / 4))
}

fn monotonic_usec() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux; zero is what the raw call left before.
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).unwrap_or_else(|_| TimeSpec::new(0, 0));
    (ts.tv_sec() as u64) * 1_000_000 + (ts.tv_nsec() as u64) / 1000
}

/// The header's summary: `web 4/4 up · queue 2/2 up · restarts 2`.
pub fn summary(snapshot: &crate::core::Snapshot) -> String {
    // Up means running (ready, with --wait-ready): a worker still `starting` is not.
    let running = |g: usize| {
        let of_group = |w: &&crate::core::WorkerView| usize::from(w.key.group) == g;
        let running = |w: &&crate::core::WorkerView| w.state == crate::core::WorkerState::Running;
        snapshot.workers.iter().filter(of_group).filter(running).count()
    };
    let mut parts: Vec<String> = snapshot
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| format!("{} {}/{} up", g.name, running(i), g.workers))
        .collect();
    parts.push(format!("restarts {}", snapshot.total_restarts));
    parts.join(" · ")
}
