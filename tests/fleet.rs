//! corral under a service manager: systemd's notification protocol, spoken to a socket
//! the test listens on exactly as systemd would (`NOTIFY_SOCKET`, `WATCHDOG_USEC`).

use crate::util::notify::NotifySocket as Manager;
use crate::util::{Corral, DEADLINE, named, wait_until, with_command};

impl Manager {
    fn wait(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        self.wait_after(0, what, want)
    }

    /// The same, among the messages after the first `skip`.
    fn wait_after(&self, skip: usize, what: &str, want: impl Fn(&str) -> bool) -> String {
        let mut found = None;
        let arrived = wait_until(DEADLINE, || {
            found = self.heard().into_iter().skip(skip).find(|m| want(m));
            found.is_some()
        });
        assert!(arrived, "no {what} from corral; heard {:?}", self.heard());
        found.expect("found")
    }

    fn count(&self, message: &str) -> usize {
        self.heard().iter().filter(|m| m.as_str() == message).count()
    }
}

#[test]
fn a_notify_service_hears_ready_status_reloading_and_stopping() {
    let manager = Manager::listen();
    let script = "echo \"notify=[$NOTIFY_SOCKET] watchdog=[$WATCHDOG_USEC]\"; exec sleep 1000";
    let args = with_command(&["-n", "web", "-w", "2"], &["sh".into(), "-c".into(), script.into()]);
    let path = manager.path.clone();
    let mut corral = Corral::start_with_env(
        &args,
        &[("NOTIFY_SOCKET", path.as_str()), ("WATCHDOG_USEC", "200000")],
    );
    manager.wait("READY=1", |m| m == "READY=1");
    corral.wait_spawned(2);
    manager.wait("a STATUS", |m| m == "STATUS=web 2/2 up · restarts 0");
    manager.wait("a WATCHDOG ping", |m| m == "WATCHDOG=1");
    // The workers never see corral's own manager.
    let lines = corral.wait_for("both workers' output", DEADLINE, |events| {
        let lines: Vec<String> = named(events, "output")
            .iter()
            .filter_map(|e| e["line"].as_str().map(String::from))
            .collect();
        (lines.len() == 2).then_some(lines)
    });
    assert!(lines.iter().all(|l| l == "notify=[] watchdog=[]"), "{lines:?}");
    // A rolling reload: RELOADING=1 with the monotonic time, then READY=1 again.
    corral.signal(libc::SIGHUP);
    let reloading = manager.wait("RELOADING=1", |m| m.starts_with("RELOADING=1\n"));
    let at = manager.heard().iter().position(|m| m == &reloading).expect("heard");
    let usec = reloading.strip_prefix("RELOADING=1\nMONOTONIC_USEC=").expect("MONOTONIC_USEC");
    assert!(usec.parse::<u64>().is_ok_and(|u| u > 0), "{reloading:?}");
    corral
        .wait_for("reload_finished", DEADLINE, |e| named(e, "reload_finished").first().map(|_| ()));
    manager.wait_after(at, "READY=1 after the reload", |m| m == "READY=1");
    let pings = manager.count("WATCHDOG=1");
    assert!(wait_until(DEADLINE, || manager.count("WATCHDOG=1") > pings), "pings go on");
    corral.signal(libc::SIGTERM);
    manager.wait("STOPPING=1", |m| m == "STOPPING=1");
    assert!(corral.wait_exit(DEADLINE).success());
    corral.assert_nothing_left();
}

#[test]
fn a_watchdog_meant_for_another_process_is_not_fed() {
    let manager = Manager::listen();
    let path = manager.path.clone();
    let args = with_command(&["-w", "1"], &["sleep".into(), "1000".into()]);
    let mut corral = Corral::start_with_env(
        &args,
        &[("NOTIFY_SOCKET", path.as_str()), ("WATCHDOG_USEC", "100000"), ("WATCHDOG_PID", "1")],
    );
    manager.wait("READY=1", |m| m == "READY=1");
    corral.signal(libc::SIGTERM);
    manager.wait("STOPPING=1", |m| m == "STOPPING=1");
    assert!(corral.wait_exit(DEADLINE).success());
    assert_eq!(manager.count("WATCHDOG=1"), 0, "{:?}", manager.heard());
}

#[test]
fn a_shutdown_during_a_reload_is_never_followed_by_ready() {
    let manager = Manager::listen();
    let path = manager.path.clone();
    let args =
        with_command(&["-w", "2", "--reload-settle", "2s"], &["sleep".into(), "1000".into()]);
    let mut corral = Corral::start_with_env(&args, &[("NOTIFY_SOCKET", path.as_str())]);
    manager.wait("READY=1", |m| m == "READY=1");
    corral.signal(libc::SIGHUP);
    manager.wait("RELOADING=1", |m| m.starts_with("RELOADING=1\n"));
    // The replacements are settling: the shutdown ends the reload.
    corral.signal(libc::SIGTERM);
    manager.wait("STOPPING=1", |m| m == "STOPPING=1");
    assert!(corral.wait_exit(DEADLINE).success());
    let heard = manager.heard();
    let stopping = heard.iter().position(|m| m == "STOPPING=1").expect("heard");
    assert!(
        !heard[stopping..].iter().any(|m| m == "READY=1"),
        "READY=1 after STOPPING=1: {heard:?}"
    );
    corral.assert_nothing_left();
}
