//! What corral tells systemd must be true: READY, STATUS.

use super::Manager;
use crate::util::{Corral, DEADLINE, named, wait_until};

#[test]
fn a_crash_looping_fleet_is_never_ready() {
    let manager = Manager::listen();
    let args = ["-w", "2", "--backoff", "0", "--", "sh", "-c", "sleep 0.3; exit 1"];
    let mut corral = Corral::start_with_env(&args, &[("NOTIFY_SOCKET", manager.path.as_str())]);
    // Both workers run at once again and again, but never for long.
    corral.wait_for("20 crashes", DEADLINE, |e| (named(e, "exited").len() >= 20).then_some(()));
    let heard = manager.heard();
    assert!(!heard.iter().any(|m| m == "READY=1"), "{heard:?}");
    assert!(heard.iter().any(|m| m.starts_with("STATUS=")), "{heard:?}");
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
}

#[test]
fn workers_still_starting_are_not_counted_up() {
    let manager = Manager::listen();
    let args = ["-n", "web", "-w", "2", "--wait-ready", "--", "sleep", "1000"];
    let mut corral = Corral::start_with_env(&args, &[("NOTIFY_SOCKET", manager.path.as_str())]);
    corral.wait_spawned(2);
    let said = wait_until(DEADLINE, || manager.heard().iter().any(|m| m.starts_with("STATUS=")));
    assert!(said, "no STATUS: {:?}", manager.heard());
    let status: Vec<String> =
        manager.heard().into_iter().filter(|m| m.starts_with("STATUS=")).collect();
    assert_eq!(status, ["STATUS=web 0/2 up · restarts 0"]);
    assert!(!manager.heard().iter().any(|m| m == "READY=1"));
    corral.signal(libc::SIGTERM);
    assert!(corral.wait_exit(DEADLINE).success());
}
