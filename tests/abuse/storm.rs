//! An exit storm: workers that exit as fast as they are spawned keep SIGCHLD always
//! pending. Control and the watchdog must still get their turn.

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{Corral, DEADLINE, named, wait_until};

/// Every `ctl status` during the storm is answered within this (generous: a loaded
/// 2-core machine; before the fix replies took ~10 s or never came).
const REPLY_BOUND: Duration = Duration::from_secs(1);
/// `WATCHDOG_USEC` for the test; no silence may exceed half of it.
const WATCHDOG: Duration = Duration::from_secs(1);

/// The test's `NOTIFY_SOCKET`: when each `WATCHDOG=1` arrived.
struct Pings {
    _dir: tempfile::TempDir,
    path: String,
    at: Arc<Mutex<Vec<Instant>>>,
}

impl Pings {
    fn listen() -> Pings {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        let at = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&at);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                if &buf[..n] == b"WATCHDOG=1" {
                    sink.lock().expect("lock").push(Instant::now());
                }
            }
        });
        Pings { path: path.display().to_string(), _dir: dir, at }
    }

    /// The longest gap between pings (or since the last one) within `from..to`.
    fn longest_silence(&self, from: Instant, to: Instant) -> Duration {
        let at = self.at.lock().expect("lock").clone();
        let mut last = from;
        let mut longest = Duration::ZERO;
        for t in at.into_iter().filter(|t| *t > from && *t <= to).chain([to]) {
            longest = longest.max(t - last);
            last = t;
        }
        longest
    }
}

#[test]
fn an_exit_storm_starves_neither_control_nor_the_watchdog() {
    let pings = Pings::listen();
    let usec = WATCHDOG.as_micros().to_string();
    let args = ["-I", "storm", "-w", "8", "--backoff", "0", "--", "sh", "-c", "exit 1"];
    let mut corral = Corral::start_with_env(
        &args,
        &[("NOTIFY_SOCKET", pings.path.as_str()), ("WATCHDOG_USEC", usec.as_str())],
    );
    // The storm is on once hundreds of workers have come and gone.
    corral.wait_for("200 exits", DEADLINE, |e| (named(e, "exited").len() >= 200).then_some(()));
    let from = Instant::now();
    let mut worst = Duration::ZERO;
    while from.elapsed() < Duration::from_secs(4) {
        let asked = Instant::now();
        let out = corral.ctl(&["status"]);
        let took = asked.elapsed();
        assert!(out.status.success(), "ctl status: {}", String::from_utf8_lossy(&out.stderr));
        worst = worst.max(took);
    }
    let to = Instant::now();
    let exits = named(&corral.events(), "exited").len();
    assert!(exits > 400, "the storm went on ({exits} exits)");
    assert!(worst < REPLY_BOUND, "worst ctl status reply {worst:?} during the storm");
    let silence = pings.longest_silence(from, to);
    assert!(silence < WATCHDOG / 2, "no WATCHDOG=1 for {silence:?} during the storm");
    corral.signal(libc::SIGTERM);
    assert!(wait_until(DEADLINE, || corral.try_exit().is_some()), "corral stops");
    corral.assert_nothing_left();
}
