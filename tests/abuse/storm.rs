//! An exit storm: workers that exit as fast as they are spawned keep SIGCHLD always
//! pending. Control and the watchdog must still get their turn.

use std::time::{Duration, Instant};

use std::process::Command;

use serde_json::Value;

use crate::util::{Corral, DEADLINE, corral_bin, wait_until};

/// Restarts so far, summed over the workers `ctl status` lists.
fn restarts(corral: &Corral) -> Option<u64> {
    let out = corral.ctl(&["status", "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).ok()?;
    Some(rows.iter().filter_map(|w| w["restarts"].as_u64()).sum())
}

/// Every `corral ctl status` (a whole process) during the storm is answered within this.
/// Generous: the test suite runs beside it on 2 cores, and before the fix replies took ~10 s
/// or never came.
const REPLY_BOUND: Duration = Duration::from_secs(2);
/// `WATCHDOG_USEC` for the test; no silence may exceed half of it (before the fix: 3–6 s).
const WATCHDOG: Duration = Duration::from_secs(2);

#[test]
fn an_exit_storm_starves_neither_control_nor_the_watchdog() {
    let pings = super::Manager::listen();
    let usec = WATCHDOG.as_micros().to_string();
    // Headless text to /dev/null: the test reads nothing but control and the pings, so
    // its own parsing of thousands of events a second does not compete for the 2 cores.
    let mut command = Command::new("sh");
    command.args(["-c", "exec \"$@\" >/dev/null", "sh", corral_bin(), "--no-ui"]);
    command.args(["-I", "storm", "-w", "8", "--backoff", "0", "--", "sh", "-c", "exit 1"]);
    command.env("NOTIFY_SOCKET", &pings.path).env("WATCHDOG_USEC", usec);
    let mut corral = Corral::start_command(command);
    // The storm is on once hundreds of workers have come and gone.
    let stormed = wait_until(DEADLINE, || restarts(&corral).is_some_and(|n| n >= 200));
    assert!(stormed, "no storm: {:?}", restarts(&corral));
    let before = restarts(&corral).unwrap_or_default();
    let from = Instant::now();
    let mut worst = Duration::ZERO;
    while from.elapsed() < Duration::from_secs(4) {
        let asked = Instant::now();
        let out = corral.ctl(&["status"]);
        let took = asked.elapsed();
        // Answered: 1, since the fleet crash-loops (2 would be no answer).
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "ctl status: {stderr}");
        worst = worst.max(took);
    }
    let to = Instant::now();
    let during = restarts(&corral).unwrap_or_default() - before;
    assert!(during > 100, "the storm went on ({during} restarts)");
    assert!(worst < REPLY_BOUND, "worst ctl status reply {worst:?} during the storm");
    let silence = pings.longest_silence(from, to);
    assert!(silence < WATCHDOG / 2, "no WATCHDOG=1 for {silence:?} during the storm");
    corral.signal(libc::SIGTERM);
    assert!(wait_until(DEADLINE, || corral.try_exit().is_some()), "corral stops");
    corral.assert_nothing_left();
}
